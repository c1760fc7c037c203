#!/usr/bin/python3
"""The permission matrix of `recon3d serve` (issue 6): every API route of
docs/api.md for every role (admin, clinician, reviewer, engineer).

The expected answer is written here by hand from the source:
  ROUTES  route -> the r3d_action its handler passes to r3d_permit
          (src/server/routes*.c, meshes.c, jobs.c, read by hand), and
  ALLOWED action -> the roles allowed, copied from the table in
          src/store/perm.c (the one place the rule lives).
For each (route, role): allowed -> the route's success status (a real body
is sent); refused -> 403 with a JSON message, the refusal is in the audit
trail (`recon3d audit list` as admin) and a refused state-changing request
changed nothing (versions, labels, documents, cases, users). Engineers
never receive patient data. Also: no session -> 401 on every route except
the public ones (health, setup, login, static files); a missing or wrong
X-CSRF-Token on a state-changing route -> 403 and nothing changed.

Starts the server as tests/e2e/server_api.py does (free loopback port,
temporary store, first-run set-up through the API, SIGTERM at the end) and
imports the small real CT series of $R3D_DATA (512x512x20) from a server
path, plus a small phantom NIfTI for cases that are deleted or
reconstructed. A threshold job gives the labels and meshes to fetch."""
import gzip
import http.cookiejar
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import nibabel as nib
import numpy as np

RECON3D = os.environ.get("RECON3D")
DATA = os.environ.get("R3D_DATA", "")
SERIES = os.path.join(DATA, "ct/totalseg/tests/reference_files/example_ct_dicom")
NAMED = os.path.join(DATA, "dicom/deb_pydicom/CT_small.dcm")  # carries a patient name
PASSWORD = "Perm-Test-Passphrase-91"
ROLES = ("admin", "clinician", "reviewer", "engineer")

# ---- src/store/perm.c: action -> roles allowed (admin clin. review engineer) ----
ALLOWED = {
    "case.list": {"admin", "clinician", "reviewer"},
    "case.view": {"admin", "clinician", "reviewer"},
    "case.import": {"admin", "clinician"},
    "case.edit": {"admin", "clinician"},
    "case.delete": {"admin", "clinician"},
    "reconstruct": {"admin", "clinician"},
    "export": {"admin", "clinician", "reviewer"},
    "export.identified": {"admin", "clinician"},
    "identity.view": {"admin", "clinician"},
    "user.admin": {"admin"},
    "audit.read": {"admin"},
    "system.health": {"admin", "engineer"},
    "update.apply": {"admin"},
    "store.admin": {"admin"},
}
PUBLIC = "public"    # no session needed
SESSION = "session"  # any signed-in user, no r3d_permit

# ---- the routes (docs/api.md, src/server/*.c): route -> action ----
ROUTES = {
    "GET /api/health": PUBLIC,
    "POST /api/setup": PUBLIC,
    "POST /api/login": PUBLIC,
    "POST /api/logout": SESSION,
    "GET /api/session": SESSION,
    "POST /api/users": "user.admin",
    "GET /api/cases": "case.list",
    "POST /api/cases": "case.import",
    "GET /api/cases/{id}": "case.view",
    "DELETE /api/cases/{id}": "case.delete",
    "GET /api/cases/{id}/image.nii": "case.view",
    "GET /api/cases/{id}/image.nii.gz": "case.view",
    "GET /api/cases/{id}/versions": "case.view",
    "POST /api/cases/{id}/head": "case.edit",
    "GET /api/cases/{id}/docs/measurements": "case.view",
    "PUT /api/cases/{id}/docs/measurements": "case.edit",
    "GET /api/cases/{id}/docs/display": "case.view",
    "PUT /api/cases/{id}/docs/display": "case.edit",
    "POST /api/cases/{id}/reconstruct": "reconstruct",
    "POST /api/cases/{id}/export": "export",
    "GET /api/cases/{id}/labels": "case.view",
    "GET /api/cases/{id}/labels.nii": "case.view",
    "GET /api/cases/{id}/labels.nii.gz": "case.view",
    "POST /api/cases/{id}/labels/{L}/mask": "case.edit",
    "POST /api/cases/{id}/labels/{L}/strokes": "case.edit",
    "DELETE /api/cases/{id}/labels/{L}": "case.edit",
    "POST /api/cases/{id}/threshold": "case.edit",
    "GET /api/cases/{id}/meshes": "case.view",
    "GET /api/cases/{id}/meshes/{L}.mz3": "case.view",
    "GET /api/cases/{id}/meshes.bin": "case.view",
    "GET /api/cases/{id}/meshes/{L}.glb": "case.view",
    "POST /api/cases/{id}/labels/{L}/mesh": "reconstruct",
    "GET /api/jobs/{id}": "case.view",
    "GET /": PUBLIC,  # static front end
}
# routes whose answer carries patient data (never to an engineer)
PATIENT = {r for r, a in ROUTES.items() if a in ("case.list", "case.view", "export")}

passed = failed = 0


def check(cond, what, got=None):
    global passed, failed
    if cond:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}" + (f" (got {got!r})" if got is not None else ""))


class Client:
    def __init__(self, base):
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.op = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.csrf = None
        self.last_headers = {}

    def req(self, method, path, body=None, ctype=None, csrf=True, raw=False, token=None):
        data = None
        headers = {}
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                data = bytes(body)
                headers["Content-Type"] = ctype or "application/octet-stream"
            else:
                data = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
        if token is not None:
            headers["X-CSRF-Token"] = token
        elif csrf and self.csrf and method not in ("GET", "HEAD"):
            headers["X-CSRF-Token"] = self.csrf
        r = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.op.open(r, timeout=120) as resp:
                self.last_headers = dict(resp.headers)
                b = resp.read()
                if raw:
                    return resp.status, b
                try:
                    return resp.status, (json.loads(b) if b else {})
                except ValueError:
                    return resp.status, b
        except urllib.error.HTTPError as e:
            b = e.read()
            self.last_headers = dict(e.headers)
            try:
                return e.code, json.loads(b)
            except ValueError:
                return e.code, b

    def job(self, jid, timeout=120):
        t0 = time.time()
        while time.time() - t0 < timeout:
            st, j = self.req("GET", f"/api/jobs/{jid}")
            if st != 200 or j["state"] in ("done", "failed"):
                return j
            time.sleep(0.1)
        return {"state": "timeout"}


def start(tmp, *extra):
    store = os.path.join(tmp, "store")
    portf = os.path.join(tmp, "port")
    log = open(os.path.join(tmp, "server.log"), "w+")
    p = subprocess.Popen([RECON3D, "serve", "--store", store, "--port", "0", "--port-file", portf,
                          "--quiet", *extra], stderr=log)
    p.log = log
    t0 = time.time()
    while not os.path.exists(portf) or not open(portf).read().strip():
        if p.poll() is not None or time.time() - t0 > 30:
            log.seek(0)
            raise RuntimeError("server did not start: " + log.read())
        time.sleep(0.05)
    return p, int(open(portf).read())


def stop(p):
    p.terminate()
    try:
        rc = p.wait(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = "killed"
    p.log.seek(0)
    err = p.log.read()
    p.log.close()
    bad = [l for l in err.splitlines() if "Sanitizer" in l or "runtime error" in l]
    check(rc == 0 and not bad, "the server stops cleanly on SIGTERM, no sanitizer report", (rc, bad[:5]))


def phantom(path):
    img = np.full((40, 40, 10), -1000, np.int16)
    img[10:30, 10:30, 2:8] = 1000
    aff = np.diag([1.0, 1.0, 1.0, 1.0])
    n = nib.Nifti1Image(img, aff)
    n.set_sform(aff, 1)
    n.set_qform(aff, 1)
    nib.save(n, path)


def audit_entries(store):
    env = dict(os.environ)
    for k in ("R3D_TOKEN", "R3D_USER", "R3D_KEY_FILE", "R3D_STORE"):
        env.pop(k, None)
    env["R3D_PASSWORD"] = PASSWORD
    p = subprocess.run([RECON3D, "audit", "list", "--max", "100000", "--store", store,
                        "--user", "admin"], env=env, capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        check(False, "recon3d audit list as admin", p.stderr)
        return []
    return json.loads(p.stdout)


def is_refusal(st, j):
    return st == 403 and isinstance(j, dict) and isinstance(j.get("message"), str) and j["message"] != ""


def main():
    if not RECON3D or not os.path.isdir(SERIES):
        print("SKIP: server_perm needs RECON3D and $R3D_DATA (example_ct_dicom)")
        return 0
    tmp = tempfile.mkdtemp(prefix="r3d-perm-")
    t0 = time.time()
    try:
        web = os.path.join(tmp, "web")
        os.makedirs(web)
        open(os.path.join(web, "index.html"), "w").write("<!doctype html><title>t</title>")
        p, port = start(tmp, "--web", web, "--workers", "2")
        try:
            matrix(tmp, port)
        finally:
            stop(p)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"server_perm: {time.time() - t0:.1f} s")
    return 0


def matrix(tmp, port):
    base = f"http://127.0.0.1:{port}"
    store = os.path.join(tmp, "store")
    ph_path = os.path.join(tmp, "phantom.nii.gz")
    phantom(ph_path)

    # ---- set-up, users, sessions ----
    anon = Client(base)
    st, j = anon.req("POST", "/api/setup", {"user": "admin", "password": PASSWORD})
    check(st == 201, "first-run set-up makes the administrator", (st, j))
    cl = {}
    adm = cl["admin"] = Client(base)
    st, j = adm.req("POST", "/api/login", {"user": "admin", "password": PASSWORD})
    adm.csrf = j.get("csrf")
    check(st == 200 and j.get("role") == "admin", "admin signs in", (st, j))
    for role in ROLES[1:]:
        st, j = adm.req("POST", "/api/users", {"user": role[:4], "password": PASSWORD, "role": role})
        check(st == 201, f"admin makes the {role} user", (st, j))
        c = cl[role] = Client(base)
        st, j = c.req("POST", "/api/login", {"user": role[:4], "password": PASSWORD})
        c.csrf = j.get("csrf")
        check(st == 200 and j.get("role") == role, f"{role} signs in with role {role}", (st, j))
    doc = cl["clinician"]

    # ---- data: the real CT series (server path), a named DICOM, phantoms ----
    st, ct = doc.req("POST", "/api/cases", {"path": SERIES})
    check(st == 201, "clinician imports the real CT series", (st, ct))
    cid = ct["id"]
    named_id = None
    if os.path.isfile(NAMED):
        st, j = doc.req("POST", "/api/cases", {"path": NAMED})
        check(st == 201, "clinician imports a DICOM file with a patient name", (st, j))
        named_id = j.get("id")
    st, rc = doc.req("POST", "/api/cases", {"path": ph_path})
    rcid = rc["id"]  # the reconstruct target (its versions are not watched)
    st, j = doc.req("POST", f"/api/cases/{cid}/threshold", {"lo": 300, "hi": 3000, "name": "bone"})
    check(st == 202, "clinician thresholds bone on the CT: 202", (st, j))
    tjob = j["job"]
    job = doc.job(tjob)
    check(job.get("state") == "done", "threshold job done", job)
    L = job["result"]["label"]
    E = 9  # a small label the edit routes work on, so their mesh jobs stay cheap
    st, b = doc.req("GET", f"/api/cases/{cid}/image.nii", raw=True)
    im = nib.Nifti1Image.from_bytes(b)
    centre = (im.affine @ np.array([*(np.array(im.shape[:3]) / 2.0), 1.0]))[:3]
    P = [float(x) for x in centre]  # RAS mm, inside the image
    P2 = [P[0] + 5.0, P[1] + 5.0, P[2]]

    def head():
        st, v = adm.req("GET", f"/api/cases/{cid}/versions")
        return v["head"]

    def paint(label, role="clinician"):
        st, j = cl[role].req("POST", f"/api/cases/{cid}/labels/{label}/strokes",
                             {"mode": "paint", "radius_mm": 3.0, "points": [P],
                              "base": head()})
        if st == 200 and "job" in j:
            cl[role].job(j["job"])
        return st, j

    st, j = paint(E)
    check(st == 200, "clinician paints the edit label", (st, j))

    def wait_jobs(st, j, c):
        if st in (200, 202) and isinstance(j, dict) and "job" in j:
            c.job(j["job"])

    # ---- one request per route: (method, path, body, ctype, success status) ----
    victims = {}  # role -> a case to delete

    def victim(role):
        st, j = doc.req("POST", "/api/cases", {"path": ph_path})
        victims[role] = j["id"]
        return j["id"]

    def request(route, role):
        """Send the route's request as role with a real, valid body."""
        c = cl[role]
        m, tpl = route.split(" ", 1)
        if route == "POST /api/setup":
            return c.req(m, tpl, {"user": "x" + role, "password": PASSWORD})
        if route == "POST /api/login":
            return Client(base).req(m, tpl, {"user": role[:4] if role != "admin" else "admin",
                                              "password": PASSWORD})
        if route == "POST /api/logout":
            # a session of its own, so the role's main session stays alive
            s = Client(base)
            st, j = s.req("POST", "/api/login", {"user": role[:4] if role != "admin" else "admin",
                                                 "password": PASSWORD})
            s.csrf = j.get("csrf")
            return s.req(m, tpl, {})
        if route == "POST /api/users":
            return c.req(m, tpl, {"user": "new" + role, "password": PASSWORD, "role": "reviewer"})
        if route == "POST /api/cases":
            return c.req(m, tpl, {"path": ph_path})
        if route == "DELETE /api/cases/{id}":
            return c.req(m, f"/api/cases/{victims[role]}")
        if route == "GET /api/jobs/{id}":
            return c.req(m, f"/api/jobs/{tjob}")
        if route == "POST /api/cases/{id}/reconstruct":
            return c.req(m, f"/api/cases/{rcid}/reconstruct", {"structures": "airway"})
        if route == "DELETE /api/cases/{id}/labels/{L}":
            return c.req(m, f"/api/cases/{cid}/labels/{E + 1}?base={head()}")
        path = tpl.replace("{id}", str(cid))
        lab = E if ("mask" in tpl or "strokes" in tpl or "/mesh" == tpl[-5:]) else L
        path = path.replace("{L}", str(lab))
        if route == "POST /api/cases/{id}/head":
            return c.req(m, path, {"version": head()})
        if route.startswith("PUT") and path.endswith("measurements"):
            return c.req(m, path, {"items": [{"kind": "length", "value": len(role)}]})
        if route.startswith("PUT") and path.endswith("display"):
            return c.req(m, path, {"objects": {str(L): {"visible": True, "opacity": 0.1 * len(role),
                                                        "rgb": [1, 2, 3], "transform": [0, 0, 0, 0]}}})
        if route == "POST /api/cases/{id}/export":
            return c.req(m, path, {"format": "stl", "labels": [E]}, raw=True)
        if route.endswith("/mask"):
            body = np.ones((2, 2, 2), np.uint8).tobytes()
            return c.req(m, path + f"?box=0,0,0,2,2,2&base={head()}", body)
        if route.endswith("/strokes"):
            return c.req(m, path, {"mode": "paint", "radius_mm": 2.0,
                                   "points": [P2], "base": head()})
        if route.endswith("/threshold"):
            return c.req(m, path, {"lo": 2500, "hi": 4000, "name": "dense " + role})
        if route.endswith("/mesh"):
            return c.req(m, path, {"smooth": 0})
        binary = any(path.endswith(x) for x in (".nii", ".nii.gz", ".mz3", ".glb", ".bin")) or path == "/"
        return c.req(m, path, raw=binary)

    SUCCESS = {"POST /api/setup": 409, "POST /api/users": 201, "POST /api/cases": 201,
               "POST /api/cases/{id}/reconstruct": 202, "POST /api/cases/{id}/threshold": 202,
               "POST /api/cases/{id}/labels/{L}/mesh": 202}

    def snapshot():
        """What a refused request must leave alone (read as admin)."""
        s = {}
        s["versions"] = adm.req("GET", f"/api/cases/{cid}/versions")[1]
        s["labels"] = adm.req("GET", f"/api/cases/{cid}/labels")[1]
        s["meas"] = adm.req("GET", f"/api/cases/{cid}/docs/measurements")[1]
        s["disp"] = adm.req("GET", f"/api/cases/{cid}/docs/display")[1]
        s["cases"] = sorted(x["id"] for x in adm.req("GET", "/api/cases")[1]["cases"])
        st, b = adm.req("GET", f"/api/cases/{cid}/labels.nii", raw=True)
        s["labelmap"] = b if st == 200 else st
        return s

    expected_refusals = {}  # (user, action) -> count
    user_of = {r: (r[:4] if r != "admin" else "admin") for r in ROLES}

    for route, action in ROUTES.items():
        m = route.split(" ", 1)[0]
        changing = m not in ("GET", "HEAD")
        for role in ROLES:
            allowed = action in (PUBLIC, SESSION) or role in ALLOWED[action]
            if route == "DELETE /api/cases/{id}":
                victim(role)
            if route == "DELETE /api/cases/{id}/labels/{L}":
                paint(E + 1)  # a label to delete (before the snapshot)
            before = snapshot() if (changing and not allowed) else None
            st, j = request(route, role)
            if allowed:
                want = SUCCESS.get(route, 200)
                check(st == want, f"{route} as {role}: allowed ({action}) -> {want}",
                      (st, j if isinstance(j, dict) else len(j)))
                wait_jobs(st, j, cl[role])
            else:
                check(is_refusal(st, j), f"{route} as {role}: refused ({action}) -> 403 with a message",
                      (st, j if isinstance(j, dict) else j[:80]))
                expected_refusals[(user_of[role], action)] = expected_refusals.get((user_of[role], action), 0) + 1
                if role == "engineer":
                    txt = json.dumps(j) if isinstance(j, dict) else repr(j)
                    check(isinstance(j, dict) and set(j) <= {"error", "message"} and ct["title"] not in txt
                          and "bone" not in txt,
                          f"{route} as engineer: no patient data in the answer", txt[:120])
                if before is not None:
                    after = snapshot()
                    check(after == before, f"{route} as {role}: the refused request changed nothing",
                          [k for k in before if before[k] != after[k]])
                if route == "POST /api/users":
                    st2, _ = Client(base).req("POST", "/api/login", {"user": "new" + role, "password": PASSWORD})
                    check(st2 == 401, f"{route} as {role}: no user was made", st2)
                if route == "DELETE /api/cases/{id}":
                    st2, _ = adm.req("GET", f"/api/cases/{victims[role]}")
                    check(st2 == 200, f"{route} as {role}: the case is still there", st2)
    # a user made by the allowed admin can sign in; a deleted case is gone
    st, _ = Client(base).req("POST", "/api/login", {"user": "newadmin", "password": PASSWORD})
    check(st == 200, "the user the admin made signs in", st)
    for role in ("admin", "clinician"):
        st, _ = adm.req("GET", f"/api/cases/{victims[role]}")
        check(st == 404, f"the case {role} deleted is gone", st)

    # ---- identity: only roles allowed identity.view see the patient's name ----
    if named_id is not None:
        for role in ROLES:
            st, j = cl[role].req("GET", f"/api/cases/{named_id}")
            st2, lst = cl[role].req("GET", "/api/cases")
            shown = st == 200 and bool(j.get("patient_name") or j.get("patient_id"))
            shown_l = st2 == 200 and any(x.get("patient_name") or x.get("patient_id") for x in lst["cases"])
            may = role in ALLOWED["identity.view"]
            if may:
                check(shown and shown_l, f"{role} sees the patient's identity (identity.view)", (j, st2))
            else:
                check(not shown and not shown_l, f"{role} never sees the patient's identity", (st, j))

    # ---- the audit trail: every refusal is there ----
    entries = audit_entries(store)
    got = {}
    for e in entries:
        if e.get("what") == "perm.refused":
            k = (e.get("user"), e.get("object"))
            got[k] = got.get(k, 0) + 1
    for (u, a), n in sorted(expected_refusals.items()):
        check(got.get((u, a), 0) >= n, f"audit: {n} refusal(s) of {a} for {u} recorded",
              got.get((u, a), 0))
    check(all("ndrew" not in json.dumps(e) for e in entries), "no patient name in the audit trail")

    # ---- no session: 401 everywhere but the public routes ----
    anon = Client(base)
    for route, action in ROUTES.items():
        if action == PUBLIC:
            continue
        m, tpl = route.split(" ", 1)
        path = tpl.replace("{id}", str(cid if "jobs" not in tpl else tjob)).replace("{L}", str(L))
        before = snapshot() if m != "GET" else None
        body = None if m in ("GET", "DELETE") else {}
        st, j = anon.req(m, path, body)
        check(st == 401 and isinstance(j, dict) and j.get("message"),
              f"{route} without a session: 401 with a message", (st, j))
        if before is not None:
            check(snapshot() == before, f"{route} without a session changed nothing")
    for route in ("GET /api/health", "GET /"):
        st, _ = anon.req("GET", route.split(" ", 1)[1], raw=True)
        check(st == 200, f"{route} is public: 200 without a session", st)
    st, j = anon.req("POST", "/api/login", {"user": "admin", "password": PASSWORD + "x"})
    check(st == 401, "POST /api/login is public: 401 for wrong credentials, not 403", (st, j))

    # ---- CSRF: a state-changing route without / with a wrong token -> 403 ----
    for route, action in ROUTES.items():
        m, tpl = route.split(" ", 1)
        if m in ("GET", "HEAD") or action == PUBLIC:
            continue
        for what, tok in (("no", ""), ("a wrong", "0" * 64)):
            before = snapshot()
            if route == "POST /api/logout":
                s = Client(base)
                st, j = s.req("POST", "/api/login", {"user": "admin", "password": PASSWORD})
                s.csrf = None
                st, j = s.req(m, tpl, {}, token=tok)
                check(st == 403, f"{route} with {what} CSRF token: refused ({st})", (st, j))
                st2, _ = s.req("GET", "/api/session")
                check(st2 == 200, f"{route} with {what} CSRF token: the session lives on", st2)
                continue
            # send as admin (allowed everywhere): only the token can refuse it
            saved = adm.csrf
            try:
                adm.csrf = None
                path = tpl.replace("{id}", str(cid)).replace("{L}", str(E))
                if route == "DELETE /api/cases/{id}":
                    path = f"/api/cases/{victim('csrf')}"
                    before = snapshot()
                if route == "POST /api/users":
                    body = {"user": "csrf" + what[0], "password": PASSWORD, "role": "admin"}
                elif route.endswith("/mask"):
                    path += f"?box=0,0,0,2,2,2&base={head()}"
                    body = np.zeros((2, 2, 2), np.uint8).tobytes()
                elif route.endswith("/strokes"):
                    body = {"mode": "erase", "radius_mm": 5.0, "points": [P]}
                elif route.endswith("/threshold"):
                    body = {"lo": 300, "hi": 3000}
                elif route.endswith("/head"):
                    body = {"version": 1}
                elif route.endswith("/export"):
                    body = {"format": "stl"}
                elif "docs" in route:
                    body = {"items": []}
                elif route == "POST /api/cases":
                    body = {"path": ph_path}
                elif m == "DELETE":
                    body = None
                else:
                    body = {}
                st, j = adm.req(m, path, body, token=tok)
            finally:
                adm.csrf = saved
            check(st == 403 and isinstance(j, dict) and j.get("message"),
                  f"{route} with {what} CSRF token: 403 with a message", (st, j))
            check(snapshot() == before, f"{route} with {what} CSRF token changed nothing")
            if route == "POST /api/users":
                st2, _ = Client(base).req("POST", "/api/login", {"user": "csrf" + what[0], "password": PASSWORD})
                check(st2 == 401, f"{route} with {what} CSRF token: no user was made", st2)


if __name__ == "__main__":
    rc = main()
    if RECON3D and os.path.isdir(SERIES):
        print(f"server_perm: {passed} passed, {failed} failed")
    sys.exit(1 if failed else rc)
