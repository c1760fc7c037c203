#!/usr/bin/env python3
"""deidentify.py - `recon3d deidentify` over every file in $R3D_DATA/dicom,
checked from outside with pydicom, dcmdump and dciodvfy.

Per written file:
  - no attribute the basic profile (PS3.15 Table E.1-1, parsed from the R(...)
    rows of src/io/dicom/deid.c) removes or replaces still holds its original
    value anywhere in the output (X/Z sequences gone or empty);
  - no private (odd-group) element, curve or overlay left at any depth;
  - PatientIdentityRemoved = YES and code 113100 in the method sequence;
  - pixel data unchanged: native bytes equal (big-endian inputs compared
    word-swapped), encapsulated items (offset table and fragments) equal;
  - dcmdump reads it without errors, pydicom reads it without force;
  - dciodvfy reports no error that the input does not have already (inputs
    from test suites lack Type 2 attributes and the like; we do not invent
    patient data to fill them).
Per refused file: the report lists it with a reason (no crash), by position
("input 17"), never by its name.
Privacy of names: every output is OUTDIR/<StudyUID>/<SeriesUID>/<SOPUID>.dcm
(digits and dots only: test folders are named after patient IDs), the report
names outputs and "input N" only, and no input's PatientID appears in any
output path; --map keeps the input -> output list outside OUTDIR.
Per folder whose files were all written: `recon3d convert` on the input and
the output series gives identical voxels and geometry; series that differ
because the profile removed private data they need convert identically with
--retain-safe-private, which keeps only the private creators it lists.
A zip archive is de-identified entry by entry like the folder it holds.
Ends with `deidentify: N passed, M failed`.

Speed (the checks are the same as when each file started its own tools):
per-file checks run in worker processes (pydicom parsing holds the GIL);
dcmdump reads 64 outputs per run (dcmtk parses its text dictionary at each
start), re-dumping file by file only a batch that reports a problem; the
input is re-encoded by dcmconv for dciodvfy only when the output has errors
the input as it is does not explain; headers read by several checks are
parsed once; the series conversions run four at a time.
"""
import concurrent.futures
import functools
import gzip
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

import pydicom

RECON3D = os.environ.get("RECON3D", "recon3d")
DATA = os.path.join(os.environ.get("R3D_DATA", ""), "dicom")
SRC = os.environ.get("R3D_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))
DUMMIES = {"ANONYMIZED", "19000101", "19000101000000", "000000", "0", "000Y", "urn:none"}

passed = failed = 0


def verdict(ok, what, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}{(': ' + why) if why else ''}")
    else:
        failed += 1
        print(f"FAIL {what}: {why}")


def profile_table():
    """tag -> action from the R(0xGGGGEEEE, ACT, FLAGS) rows of deid.c."""
    src = open(os.path.join(SRC, "src", "io", "dicom", "deid.c")).read()
    names = {"X": "X", "Z": "Z", "D": "D", "U": "U", "ZD": "Z/D", "XZ": "X/Z", "XD": "X/D",
             "XZD": "X/Z/D", "XZU": "X/Z/U*"}
    rows = re.findall(r"^\s+R\(0x([0-9A-F]{8}),\s*(\w+),", src, re.M)
    return {int(t, 16): names[a] for t, a in rows}


def option_flags():
    """tag -> flags text (DT: dates kept by --retain-dates, DS: descriptor)."""
    src = open(os.path.join(SRC, "src", "io", "dicom", "deid.c")).read()
    return {int(t, 16): f for t, f in
            re.findall(r"^\s+R\(0x([0-9A-F]{8}),\s*\w+,\s*(\w+)\)", src, re.M)}


def check_options(rows, out, table, flags):
    """--retain-dates --clean-descriptors over one folder: dates the option
    lists are kept as they were, descriptors whose basic action allows X are
    gone, and the method says so (113106)."""
    why, n = [], 0
    for st, src, rel in rows:
        if st != "written":
            continue
        dst = os.path.join(out, rel)
        name = os.path.basename(src)
        if src.endswith(".gz"):
            src = gzip.open(src)  # written plain from a gzip'ed input
        a = pydicom.dcmread(src, force=True, stop_before_pixels=True)
        b = pydicom.dcmread(dst, stop_before_pixels=True)
        n += 1
        for el in a:
            t = int(el.tag)
            f = flags.get(t, "")
            if "DT" in f and el.VR != "SQ" and norm(el):
                if t not in b or norm(b[t]) != norm(el):
                    why.append(f"{name}: {el.keyword} not kept with --retain-dates")
            if "DS" in f and table[t].startswith("X") and t in b:
                why.append(f"{name}: {el.keyword} kept despite --clean-descriptors")
        codes = [str(i.get("CodeValue", "")) for i in b.get("DeidentificationMethodCodeSequence", [])]
        if "113106" not in codes:
            why.append(f"{name}: no 113106 in the method codes")
    return n, why


# Output names: UIDs only (or our placeholders for inputs without one).
NAME_RE = re.compile(r"^(?:[0-9.]+|no_study)/(?:[0-9.]+|no_series)/(?:[0-9.]+|no_instance)(?:_\d+)?\.dcm$")
# The private creators --retain-safe-private may keep (deid.c's list).
SAFE_CREATORS = {"SIEMENS CSA HEADER", "SIEMENS MR HEADER", "Philips MR Imaging DD 001",
                 "Philips MR Imaging DD 005"}
# Kept without a creator element (stripped by some anonymiser) only at the
# vendor's usual block: the elements --retain-safe-private lists there.
SAFE_BARE = {(0x0029, 0x1008), (0x0029, 0x1009), (0x0029, 0x1010), (0x2005, 0x100D),
             (0x2005, 0x100E), (0x2005, 0x140F)} | {(0x0019, 0x1000 | e) for e in
                                                   (0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F, 0x27, 0x29)}


def deidentify(src, out, tmp, *opts):
    """Run recon3d deidentify with --map; (returncode, stderr, map rows)."""
    mp = os.path.join(tmp, "map_%d.tsv" % len(os.listdir(tmp)))
    r = subprocess.run([RECON3D, "deidentify", src, "-o", out, "-q", "--map", mp, *opts],
                       capture_output=True, text=True)
    rows = []
    if os.path.exists(mp):
        with open(mp) as f:
            next(f, None)
            rows = [tuple(l.rstrip("\n").split("\t")) for l in f if l.strip()]
    return r.returncode, r.stderr, rows


def private_creators_ok(path):
    """Private elements of path whose creator is not in SAFE_CREATORS."""
    bad = []
    for ds in [pydicom.dcmread(path)]:
        stack = [ds]
        while stack:
            d = stack.pop()
            creators = {}
            for el in d:
                if el.tag.group % 2 and 0x10 <= el.tag.element <= 0xFF:
                    creators[(el.tag.group, el.tag.element)] = str(el.value).strip()
            for el in d:
                if el.tag.group % 2 and el.tag.element > 0xFF:
                    c = creators.get((el.tag.group, el.tag.element >> 8), "")
                    if c not in SAFE_CREATORS and not (
                            c == "" and (el.tag.group, el.tag.element) in SAFE_BARE):
                        bad.append(f"{el.tag} (creator {c!r})")
                if el.VR == "SQ":
                    stack.extend(el.value)
    return bad


def walk(ds, depth=0):
    """Every element of ds at every depth of every sequence."""
    for el in ds:
        yield el
        if el.VR == "SQ" and el.value is not None:
            for item in el.value:
                yield from walk(item, depth + 1)


def norm(el):
    """The value as text with padding removed, or None for binary/empty."""
    v = el.value
    if v is None or el.VR == "SQ":
        return None
    if isinstance(v, (bytes, bytearray)):
        v = bytes(v).rstrip(b"\0 ").decode("latin-1")
    elif isinstance(v, pydicom.multival.MultiValue):
        v = "\\".join(str(x) for x in v)
    else:
        v = str(v)
    v = v.strip("\0 ")
    return v or None


def items(raw):
    """Items of an encapsulated pixel data value (offset table first)."""
    out, p = [], 0
    while p + 8 <= len(raw):
        g, e, n = struct.unpack_from("<HHI", raw, p)
        p += 8
        if (g, e) == (0xFFFE, 0xE0DD):
            break
        out.append(bytes(raw[p:p + n]))
        p += n
    return out


def dciodvfy(path):
    r = subprocess.run(["dciodvfy", path], capture_output=True, text=True, errors="replace")
    lines = (r.stdout + r.stderr).splitlines()
    return ({l for l in lines if l.startswith("Error")}, [l for l in lines if l.startswith("Warning")])


def dcmdump_batch(paths):
    """{path: [problem]}: one dcmdump over many files (dcmtk spends ~0.2 s
    loading its dictionary per run); a batch that reports anything is dumped
    again file by file to say which."""
    r = subprocess.run(["dcmdump", "-q", *paths], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, errors="replace")
    if r.returncode == 0 and "E: " not in r.stderr:
        return {p: [] for p in paths}
    if len(paths) > 1:
        return {p: dcmdump_batch([p])[p] for p in paths}
    return {paths[0]: [f"dcmdump: rc {r.returncode} {r.stderr.strip()[:200]}"]}


def check_file(rel, src, dst, table, stats, dump=True):
    why = []
    try:
        a = pydicom.dcmread(src, force=True)
        b = pydicom.dcmread(dst)  # no force: it must be a proper Part 10 file
    except Exception as e:  # noqa: BLE001 - report any reader failure
        return [f"pydicom cannot read: {e}"]
    out_vals, out_tags = set(), {}
    for el in walk(b):
        t = int(el.tag)
        if el.tag.group % 2 == 1:
            why.append(f"private element {el.tag} left")
        if (el.tag.group & 0xFF00) in (0x5000, 0x6000):
            why.append(f"curve/overlay element {el.tag} left")
        out_tags.setdefault(t, []).append(el)
        v = norm(el)
        if v is not None:
            out_vals.add((t, v))
    for el in walk(a):
        t = int(el.tag)
        act = table.get(t)
        if act is None:
            continue
        if el.VR == "SQ":
            if act == "X" and t in out_tags:
                why.append(f"sequence {el.tag} {el.keyword} (X) still present")
            if act in ("Z", "X/Z") and any(len(x.value or []) for x in out_tags.get(t, [])):
                why.append(f"sequence {el.tag} {el.keyword} ({act}) not emptied")
            continue
        v = norm(el)
        if v is None or (act == "U" and v.startswith("1.2.840.10008.")):
            continue
        if (t, v) in out_vals and not (v in DUMMIES and act != "U"):
            why.append(f"{el.tag} {el.keyword} ({act}) still holds its original value")
    if str(b.get("PatientIdentityRemoved", "")) != "YES":
        why.append("PatientIdentityRemoved is not YES")
    codes = [str(i.get("CodeValue", "")) for i in b.get("DeidentificationMethodCodeSequence", [])]
    if "113100" not in codes:
        why.append("DeidentificationMethodCodeSequence lacks 113100")
    # Pixel data
    if "PixelData" in a:
        pa = a["PixelData"]
        pb = b["PixelData"] if "PixelData" in b else None
        if pb is None:
            why.append("PixelData lost")
        elif pa.is_undefined_length:
            if not pb.is_undefined_length:
                why.append("encapsulated pixel data written native")
            elif items(pa.value) != items(pb.value):
                why.append("encapsulated fragments differ")
            stats["encapsulated"] += 1
        else:
            raw = bytes(pa.value)
            if not a.is_little_endian and int(a.get("BitsAllocated", 8)) in (16, 32):
                w = int(a.BitsAllocated) // 8
                raw = b"".join(raw[i:i + w][::-1] for i in range(0, len(raw) - len(raw) % w, w)) + \
                    raw[len(raw) - len(raw) % w:]
                stats["big_endian"] += 1
            got = bytes(pb.value)
            if got[:len(raw)] != raw or len(got) - len(raw) > 1:
                why.append(f"native pixel bytes differ ({len(raw)} vs {len(got)} bytes)")
            stats["native"] += 1
    # dcmdump (the per-file run below batches it: dcmdump_batch)
    if dump:
        why += dcmdump_batch([dst])[dst]
    # dciodvfy: nothing new compared with the input. The input is also
    # checked re-encoded by dcmconv (dciodvfy cannot read deflated or some
    # big-endian files), messages are compared with their numbers masked
    # (they quote UIDs, which we replace), and an error about an attribute
    # that the output holds exactly as the input did (missing in both, say)
    # is the input's: dciodvfy only sees it once the output names its IOD
    # (a SOP Class UID restored from the meta) or can be read at all.
    # The re-encoded input is only needed when the output has errors that
    # the input as it is does not explain (adding input errors can only
    # remove output errors from `new`, so the verdict is the same as with
    # both always run; each dcmtk run costs ~0.2 s of dictionary loading).
    e_in, _ = dciodvfy(src)
    e_out, w_out = dciodvfy(dst)
    mask = lambda l: re.sub(r"[0-9][0-9.]*", "#", l)  # noqa: E731

    def unexplained(e_in):
        e_in_m = {mask(l) for l in e_in}
        new = []
        for l in sorted(e_out):
            if mask(l) in e_in_m:
                continue
            m = re.search(r"(?:Element=<|attribute <)(\w+)>", l)
            if m and m.group(1) not in ("PatientIdentityRemoved", "DeidentificationMethod",
                                        "DeidentificationMethodCodeSequence"):
                kw = m.group(1)
                if str(a.get(kw, None)) == str(b.get(kw, None)):
                    continue
            new.append(l)
        return new
    new = unexplained(e_in)
    if new:
        conv = dst + ".r3d_dcmconv.dcm"  # one per output: checks run concurrently
        if subprocess.run(["dcmconv", "+te", src, conv], capture_output=True).returncode == 0:
            e_in |= dciodvfy(conv)[0]
            os.remove(conv)
            new = unexplained(e_in)
        stats["inputs_reencoded"] += 1
    stats["dciodvfy_errors_out"] += len(e_out)
    stats["dciodvfy_errors_in"] += len(e_in)
    stats["dciodvfy_warnings_out"] += len(w_out)
    if not e_out:
        stats["dciodvfy_clean"] += 1
    if not e_in:
        stats["inputs_clean"] += 1
        stats["inputs_clean_outputs_clean"] += not e_out
    for w in w_out:
        stats["warning_kinds"][re.sub(r"\s+", " ", w)[:110]] = stats["warning_kinds"].get(
            re.sub(r"\s+", " ", w)[:110], 0) + 1
    if new:
        why.append("dciodvfy errors not in the input: " + "; ".join(new[:3]))
    return why


@functools.lru_cache(maxsize=None)
def hdr(path, force=False):
    """The header of a file read once (several checks below look at the same
    inputs and outputs); nothing changes the returned data sets."""
    return pydicom.dcmread(path, stop_before_pixels=True, force=force)


def one_check(item, tmp, out, table, template):
    """check_file for one (input rel, output rel), with its own tallies."""
    rel, dst = item
    st = {k: (v if not isinstance(v, dict) else {}) for k, v in template.items()}
    try:
        return rel, check_file(rel, plain_input(rel, tmp), os.path.join(out, dst), table, st,
                               dump=False), st
    except Exception as e:  # noqa: BLE001 - one broken check must not stop the run
        return rel, [f"check raised {e!r}"], st


def plain_input(rel, tmp):
    """A path to input rel that pydicom, dcmconv and dciodvfy can read."""
    src = os.path.join(DATA, rel)
    if not rel.endswith(".gz"):
        return src
    dst = os.path.join(tmp, "gunzip_" + rel.replace(os.sep, "_")[:-3])
    with gzip.open(src, "rb") as f, open(dst, "wb") as g:
        g.write(f.read())
    return dst


def nifti(path):
    """Geometry fields and voxel bytes of a NIfTI-1 file."""
    b = open(path, "rb").read()
    vox = int(struct.unpack_from("<f", b, 108)[0])
    return (b[40:56], b[70:74], b[76:108], b[112:120], b[252:328], b[vox:])


def convert_same(indir, outdir, uid_in, uid_out, tmp, tag="0"):
    """Convert one series from both folders; "" if identical, None if the
    input series is no volume, else what differs. tag: unique per
    concurrent call."""
    a, b = os.path.join(tmp, f"a_{tag}.nii"), os.path.join(tmp, f"b_{tag}.nii")
    ra = subprocess.run([RECON3D, "convert", indir, "--series", uid_in, "-o", a, "-q"],
                        capture_output=True, text=True)
    if ra.returncode != 0:
        return None  # the input is no volume either; nothing to compare
    rb = subprocess.run([RECON3D, "convert", outdir, "--series", uid_out, "-o", b, "-q"],
                        capture_output=True, text=True)
    if rb.returncode != 0:
        return f"output folder does not convert: {rb.stderr.strip()[:200]}"
    na, nb = nifti(a), nifti(b)
    os.remove(a)
    os.remove(b)
    labels = ["dim", "datatype", "pixdim", "scaling", "qform/sform", "voxels"]
    diff = [labels[i] for i in range(6) if na[i] != nb[i]]
    return ("differs in " + ", ".join(diff)) if diff else ""


def private_dependence(paths):
    """Why a series' volume needs private data the profile removes, or ""."""
    for p in paths[:1]:
        try:
            a = pydicom.dcmread(p, stop_before_pixels=True, force=True)
        except Exception:  # noqa: BLE001
            return ""
        if "MOSAIC" in [str(x).upper() for x in a.get("ImageType", [])]:
            return "Siemens mosaic: unpacked from the private CSA header (0029,1010)"
        if any(el.tag.group == 0x2005 and (el.tag.element & 0xFF) == 0x0E for el in walk(a)):
            return "Philips private scale slope (2005,xx0E) gives dcm2niix's precise values"
    return ""


def main():
    if not os.path.isdir(DATA):
        print(f"skip: no test data at {DATA}")
        print("deidentify: 0 passed, 0 failed")
        return 0
    for tool in ("dciodvfy", "dcmdump"):
        if not shutil.which(tool):
            print(f"FAIL {tool} not installed (apt-get install dicom3tools dcmtk)")
            print("deidentify: 0 passed, 1 failed")
            return 1
    table = profile_table()
    if len(table) < 400:
        verdict(False, "profile table", f"only {len(table)} rows parsed from deid.c")
    tmp = tempfile.mkdtemp(prefix="r3d_deid_")
    maps = os.path.join(tmp, "maps")
    os.makedirs(maps)
    try:
        out = os.path.join(tmp, "out")
        rc, err, rows = deidentify(DATA, out, maps)
        verdict(rc in (0, 2) and "Sanitizer" not in err and rows, "recon3d deidentify run",
                f"exit {rc}" + ("" if rc in (0, 2) else err[-400:]))
        report = json.load(open(os.path.join(out, "deidentification.json")))
        # Output names are checked below to be UIDs only; the value check
        # reads the rest (a PatientID such as "1234" is a substring of UIDs).
        rep_text = json.dumps([{k: v for k, v in f.items() if k != "file"}
                               for f in report["files"]] + [report.get("attributes")])
        rep_text = re.sub(r"\([0-9A-Fa-fgex]{4},[0-9A-Fa-fgex]{4}\)", "", rep_text)  # tags
        stats = {"native": 0, "encapsulated": 0, "big_endian": 0, "dciodvfy_errors_out": 0,
                 "dciodvfy_errors_in": 0, "dciodvfy_warnings_out": 0, "dciodvfy_clean": 0,
                 "inputs_clean": 0, "inputs_clean_outputs_clean": 0, "inputs_reencoded": 0,
                 "warning_kinds": {}}
        by_dir = {}
        written = {}  # input rel -> output rel
        n_written = n_refused = n_skipped = 0
        for st, src, dst in rows:
            rel = os.path.relpath(src, DATA)
            d = os.path.dirname(rel)
            by_dir.setdefault(d, []).append(st)
            if st == "skipped":
                n_skipped += 1
            elif st == "failed":
                n_refused += 1
            else:
                written[rel] = dst
        # Names: outputs and the report carry UIDs and positions only.
        bad = [dst for dst in written.values() if not NAME_RE.match(dst)]
        verdict(not bad, f"{len(written)} output names are UIDs only", "; ".join(bad[:3]))
        bad = [f["file"] for f in report["files"]
               if not (NAME_RE.match(f["file"]) or re.match(r"^input \d+$", f["file"]))]
        verdict(not bad, "report names outputs and input positions only", "; ".join(bad[:3]))
        refused = [f for f in report["files"] if f["status"] == "failed"]
        leaks = [f["error"] for f in refused for st, src, _ in rows
                 if st == "failed" and (src in f.get("error", "") or
                                        os.path.basename(src) in f.get("error", ""))]
        verdict(len(refused) == n_refused and all(f.get("error") for f in refused) and not leaks,
                f"{n_refused} refused inputs reported with a reason, without their names",
                "; ".join(leaks[:2]))
        idleak = []
        for rel, dst in sorted(written.items()):
            try:
                pid = str(hdr(os.path.join(DATA, rel), True).get("PatientID", "")).strip()
            except Exception:  # noqa: BLE001
                continue
            # the 2.25. UIDs are keyed hashes with a new key each run: a
            # numeric ID ("1234") turns up among their 39 digits by chance,
            # so the ID is looked for in what is not such a UID
            if len(pid) >= 4 and pid in re.sub(r"2\.25\.\d+", "", dst):
                idleak.append(f"{rel}: PatientID in {dst}")
        verdict(not idleak, "no PatientID in any output path", "; ".join(idleak[:2]))
        # Each file's checks parse it with pydicom and run dciodvfy (dcmconv
        # when needed): in worker processes (pydicom holds the GIL), dcmdump
        # over batches of files alongside.
        check = functools.partial(one_check, tmp=tmp, out=out, table=table,
                                  template={k: (0 if not isinstance(v, dict) else {})
                                            for k, v in stats.items()})
        outs = [os.path.join(out, dst) for _, dst in sorted(written.items())]
        with concurrent.futures.ProcessPoolExecutor(max_workers=4) as pool:
            dumps = [pool.submit(dcmdump_batch, outs[i:i + 64]) for i in range(0, len(outs), 64)]
            checked = list(pool.map(check, sorted(written.items()), chunksize=4))
            dumped = {}
            for f in dumps:
                dumped.update(f.result())
            for rel, why, st in checked:
                why += dumped.get(os.path.join(out, written[rel]), ["dcmdump: not run"])
                n_written += 1
                for k, v in st.items():
                    if isinstance(v, dict):
                        for w, n in v.items():
                            stats[k][w] = stats[k].get(w, 0) + n
                    else:
                        stats[k] += v
                verdict(not why, rel, "; ".join(why[:4]))
        # References across files survive: a de-identified SEG (or any object
        # referring to images) names the de-identified images of the same run.
        sop_map, refs_ok, refs_n = {}, [], 0
        for rel, dst in written.items():
            try:
                a = hdr(plain_input(rel, tmp), True)
                b = hdr(os.path.join(out, dst))
                sop_map[str(a.SOPInstanceUID)] = str(b.SOPInstanceUID)
            except Exception:  # noqa: BLE001
                continue
        for rel, dst in sorted(written.items()):
            try:
                a = hdr(plain_input(rel, tmp), True)
            except Exception:  # noqa: BLE001
                continue
            if "ReferencedSeriesSequence" not in a:
                continue
            b = hdr(os.path.join(out, dst))
            ra = [str(i.ReferencedSOPInstanceUID) for s_ in a.ReferencedSeriesSequence
                  for i in s_.get("ReferencedInstanceSequence", [])]
            rb = [str(i.ReferencedSOPInstanceUID) for s_ in b.ReferencedSeriesSequence
                  for i in s_.get("ReferencedInstanceSequence", [])]
            for x, y in zip(ra, rb):
                if x in sop_map:
                    refs_n += 1
                    if sop_map[x] != y:
                        refs_ok.append(f"{rel}: reference to {x[-12:]} not remapped like its image")
        verdict(refs_n > 0 and not refs_ok,
                f"{refs_n} references (SEG -> images) point at the de-identified images",
                "; ".join(refs_ok[:2]) or ("" if refs_n else "no cross-file reference found"))
        # The options, over one folder of varied test files.
        sub = os.path.join(DATA, "deb_pydicom")
        if os.path.isdir(sub):
            out2 = os.path.join(tmp, "out_options")
            _, _, rows2 = deidentify(sub, out2, maps, "--retain-dates", "--clean-descriptors")
            n, why = check_options(rows2, out2, table, option_flags())
            verdict(n > 0 and not why, f"--retain-dates --clean-descriptors on {n} files",
                    "; ".join(why[:3]))
        # The checker itself must see an untouched file as identifying.
        probe = next((rel for rel in sorted(written) if not rel.endswith(".gz") and
                      str(hdr(os.path.join(DATA, rel), True).get("PatientName", ""))),
                     None)
        if probe:
            src = os.path.join(DATA, probe)
            plain = os.path.join(tmp, "probe.dcm")
            pydicom.dcmread(src, force=True).save_as(plain, write_like_original=False)
            why = check_file(probe, src, plain, table, {k: (v if not isinstance(v, dict) else {})
                                                       for k, v in stats.items()})
            verdict(any("still holds its original value" in w for w in why) and
                    any("PatientIdentityRemoved" in w for w in why),
                    f"checker flags the untouched {probe}", "; ".join(why[:2]))
        # The report never carries a value: spot-check patient names of the inputs.
        leaked = []
        for rel in sorted(written)[:400]:
            try:
                a = hdr(plain_input(rel, tmp), True)
            except Exception:  # noqa: BLE001
                continue
            for kw in ("PatientName", "PatientID"):
                v = str(a.get(kw, "")).strip()
                if len(v) >= 4 and v in rep_text:
                    leaked.append(f"{kw} of {rel}")
        verdict(not leaked, "report holds no patient name or ID", "; ".join(leaked[:3]))
        # Same volume from input and output series.
        n_conv = n_expected = 0
        private_cases, jobs = [], []
        for d in sorted(by_dir):
            sts = by_dir[d]
            if "written" not in sts or any(s != "written" and s != "skipped" for s in sts):
                continue
            indir = os.path.join(DATA, d)
            if any(os.path.isdir(os.path.join(indir, x)) for x in os.listdir(indir)):
                continue  # leaf folders only: a parent would mix series from below
            # Series by UID, input UID -> output UID and folder through the same file.
            series = {}
            for rel in sorted(written):
                if os.path.dirname(rel) != d:
                    continue
                dst = os.path.join(out, written[rel])
                try:
                    ua = hdr(plain_input(rel, tmp), True).SeriesInstanceUID
                    ub = hdr(dst).SeriesInstanceUID
                except Exception:  # noqa: BLE001
                    continue
                series.setdefault(str(ua), (str(ub), [], []))
                series[str(ua)][1].append(dst)
                series[str(ua)][2].append(plain_input(rel, tmp))
            for ua, (ub, outs, paths) in sorted(series.items()):
                # The outputs of this folder's files only: an output series
                # folder also holds copies of the series from other folders.
                outdir = os.path.join(tmp, f"series_view_{len(jobs)}")
                os.makedirs(outdir)
                for k, o in enumerate(outs):
                    os.symlink(o, os.path.join(outdir, "%05d.dcm" % k))
                jobs.append((d, indir, outdir, ua, ub, paths))
        # The conversions (two recon3d runs each) a few at a time, verdicts in order.
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda j: convert_same(j[1][1], j[1][2], j[1][3], j[1][4],
                                                           tmp, str(j[0])), enumerate(jobs)))
        for (d, indir, outdir, ua, ub, paths), res in zip(jobs, results):
            if res is None:
                continue
            why = private_dependence(paths) if res else ""
            if why:
                # The basic profile removes private attributes; the
                # Retain Safe Private option below must bring them back.
                n_expected += 1
                private_cases.append((d, ua, why))
                print(f"note convert {d}/{ua[-12:]}: {res} under the basic profile: {why}")
                continue
            n_conv += 1
            verdict(res == "", f"convert {d or '.'} series ...{ua[-12:]}: same volume", res)
        # --retain-safe-private: those series convert identically, and
        # nothing private outside the safe list is kept.
        n_safe = 0
        for i, (d, ua, why0) in enumerate(private_cases):
            indir = os.path.join(DATA, d)
            out3 = os.path.join(tmp, f"out_safe_{i}")
            _, _, rows3 = deidentify(indir, out3, maps, "--retain-safe-private")
            ub, outdir, bad = None, None, []
            for st, src, dst in rows3:
                if st != "written":
                    continue
                a = pydicom.dcmread(gzip.open(src) if src.endswith(".gz") else src, force=True,
                                    stop_before_pixels=True)
                if str(a.get("SeriesInstanceUID", "")) != ua:
                    continue
                b = pydicom.dcmread(os.path.join(out3, dst), stop_before_pixels=True)
                ub, outdir = str(b.SeriesInstanceUID), os.path.dirname(os.path.join(out3, dst))
                bad += private_creators_ok(os.path.join(out3, dst))
                codes = [str(x.get("CodeValue", "")) for x in
                         b.get("DeidentificationMethodCodeSequence", [])]
                if "113111" not in codes:
                    bad.append("no 113111 (Retain Safe Private) in the method codes")
            res = convert_same(indir, outdir, ua, ub, tmp) if ub else "no output"
            n_safe += res == "" and not bad
            verdict(res == "" and not bad,
                    f"--retain-safe-private {d}/{ua[-12:]} ({why0.split(':')[0]}): same volume",
                    (res or "") + "; ".join(bad[:3]))
        # A zip archive: its entries go through like the folder they came from.
        zsrc = os.path.join(DATA, "dcmqi", "data", "segmentations", "ct-3slice")
        if os.path.isdir(zsrc):
            zpath = os.path.join(tmp, "study.zip")
            with zipfile.ZipFile(zpath, "w") as z:
                for name in sorted(os.listdir(zsrc)):
                    z.write(os.path.join(zsrc, name), "PATIENT_0042/" + name)
                z.writestr("PATIENT_0042/README.txt", "not DICOM")
            out4 = os.path.join(tmp, "out_zip")
            rc4, err4, rows4 = deidentify(zpath, out4, maps)
            outs = [dst for st, _, dst in rows4 if st == "written"]
            ua = str(pydicom.dcmread(os.path.join(zsrc, sorted(os.listdir(zsrc))[0]),
                                     stop_before_pixels=True).SeriesInstanceUID)
            ub = str(pydicom.dcmread(os.path.join(out4, outs[0]),
                                     stop_before_pixels=True).SeriesInstanceUID) if outs else ""
            res = convert_same(zsrc, os.path.dirname(os.path.join(out4, outs[0])), ua, ub,
                               tmp) if outs else "nothing written"
            verdict(rc4 == 0 and len(outs) == len(os.listdir(zsrc)) and res == "" and
                    all(NAME_RE.match(o) for o in outs) and
                    not any("PATIENT_0042" in o for o in outs),
                    f"zip archive: {len(outs)} entries de-identified, same volume as the folder",
                    f"exit {rc4} {err4[-200:]} {res}")
        print(f"files: {n_written} written, {n_refused} refused (reported), "
              f"{n_skipped} skipped (not DICOM); {n_conv} series converted the same, "
              f"{n_expected} differ through removed private data, {n_safe} of them the same "
              f"with --retain-safe-private")
        print(f"pixel data: {stats['native']} native ({stats['big_endian']} from big endian), "
              f"{stats['encapsulated']} encapsulated")
        print(f"dciodvfy: {stats['dciodvfy_clean']} of {n_written} outputs without errors; "
              f"errors {stats['dciodvfy_errors_out']} in outputs vs {stats['dciodvfy_errors_in']} "
              f"in inputs; {stats['dciodvfy_warnings_out']} warnings; of the "
              f"{stats['inputs_clean']} inputs without errors, "
              f"{stats['inputs_clean_outputs_clean']} outputs without errors; "
              f"{stats['inputs_reencoded']} inputs also checked re-encoded by dcmconv")
        for w, n in sorted(stats["warning_kinds"].items(), key=lambda x: -x[1])[:12]:
            print(f"  {n:4d} x {w}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"deidentify: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
