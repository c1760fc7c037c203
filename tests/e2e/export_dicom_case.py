#!/usr/bin/env python3
"""export_dicom_case.py - `recon3d export-dicom CASE` from the case store.

A temporary store (`store init`, then a clinician and a reviewer added by
`user add`), dcmqi's 3-slice CT ($R3D_DATA/dicom/dcmqi/.../ct-3slice, copied
to a temporary folder) imported as a case, and two label-map versions
committed (store_tool labels -> r3d_labels_commit): liver 5 and spine 215 by
CT thresholds, then the same without the spine.

Checked:
  - as clinician, default: de-identified. No output holds the source's
    PatientName or PatientID or any of its UIDs; the source series comes
    along de-identified; the SEG's ReferencedSeriesSequence and every
    DerivationImage point at instances of that exported series;
    deidentification.json is there; dciodvfy: no error on the SEG and an STL;
  - the SEG read back (`export-dicom --seg-to-labels --source` the exported
    series, and pydicom frame by frame) equals the head label map voxel for
    voxel; --version 1 exports the first version (spine included);
  - --models obj: an OBJ and an MTL instance per structure;
  - --identified as clinician: allowed, PatientName/ID and UIDs kept;
  - --identified as reviewer: refused with exit 7, nothing written, the
    refusal in the audit trail; a reviewer's default export is allowed;
  - every exported file's SHA-256 is in the audit trail;
  - a source file changed since import, or gone: refused (exit 2) with a
    message saying so, nothing written.
Ends with `export_dicom_case: N passed, M failed`; "SKIP: ..." without data.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import warnings

import nibabel as nib
import numpy as np
import pydicom

warnings.filterwarnings("ignore")
RECON3D = os.environ.get("RECON3D", "recon3d")
DATA = os.environ.get("R3D_DATA", "")
BUILD = os.environ.get("R3D_BUILD", os.path.dirname(RECON3D))
NAME = "export_dicom_case"
passed = failed = 0
PW = {"admin": "Adm1n-passw0rd-x", "clin": "Cl1n-passw0rd-xy", "rev": "R3v-passw0rd-xyz"}


def verdict(ok, what, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}: {why}")


def run(args, user=None, new_pw=None, store=None, tool=None):
    env = dict(os.environ)
    for k in ("R3D_TOKEN", "R3D_USER", "R3D_PASSWORD", "R3D_NEW_PASSWORD", "R3D_KEY_FILE"):
        env.pop(k, None)
    if store:
        env["R3D_STORE"] = store
    if user:
        env["R3D_USER"] = user
        env["R3D_PASSWORD"] = PW[user]
    if new_pw:
        env["R3D_NEW_PASSWORD"] = new_pw
    r = subprocess.run([tool or RECON3D, *args], capture_output=True, text=True, env=env,
                       errors="replace")
    return r.returncode, r.stdout, r.stderr


def dciodvfy_errors(path):
    r = subprocess.run(["dciodvfy", path], capture_output=True, text=True, errors="replace")
    return [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]


def outputs(out):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".dcm"))


def seg_frames_to_labels(seg, src_by_sop, shape_ref):
    """pydicom: a label volume on the exported source's slices from the
    SEG's frames (segment value from SegmentLabel)."""
    values = {"liver": 5, "spine": 215}
    seg_val = {int(s.SegmentNumber): values.get(str(s.SegmentLabel), -1)
               for s in seg.SegmentSequence}
    px = seg.pixel_array
    if px.ndim == 2:
        px = px[None]
    out = {}
    for i, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
        num = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        ref = str(fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
        plane = out.setdefault(ref, np.zeros(shape_ref, np.int32))
        plane[px[i] > 0] = seg_val[num]
    return out


def main():
    base = os.path.join(DATA, "dicom", "dcmqi", "data", "segmentations")
    src0 = os.path.join(base, "ct-3slice")
    if not DATA or not os.path.isdir(src0):
        print(f"SKIP: no dcmqi CT series under {DATA or '(R3D_DATA unset)'}")
        print(f"{NAME}: 0 passed, 0 failed")
        return 0
    store_tool = os.path.join(BUILD, "store_tool")
    for tool in ("dciodvfy",):
        if not shutil.which(tool):
            print(f"FAIL {tool} not installed")
            print(f"{NAME}: 0 passed, 1 failed")
            return 1
    if not os.path.exists(store_tool):
        print(f"FAIL {store_tool} not built")
        print(f"{NAME}: 0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="r3d_expcase_")
    try:
        src = os.path.join(tmp, "source")
        shutil.copytree(src0, src)
        store = os.path.join(tmp, "store")
        rc, _, err = run(["store", "init", "--store", store, "--admin", "admin"],
                         new_pw=PW["admin"])
        verdict(rc == 0, "store init", err[-200:])
        for u, role in (("clin", "clinician"), ("rev", "reviewer")):
            rc, _, err = run(["user", "add", u, "--role", role], user="admin", store=store,
                             new_pw=PW[u])
            verdict(rc == 0, f"user add {u} ({role})", err[-200:])
        rc, out, err = run(["import", store, "clin", src], user="clin", tool=store_tool)
        verdict(rc == 0, "case imported", err[-200:])
        case = out.strip()

        # ---- two label-map versions on the case's own grid ----
        ct = os.path.join(tmp, "ct.nii.gz")
        rc, _, err = run(["convert", src, "-o", ct, "-q"])
        verdict(rc == 0, "CT converted", err[-200:])
        img = nib.load(ct)
        hu = np.asanyarray(img.dataobj).astype(np.float32)
        lab1 = np.zeros(hu.shape, np.uint16)
        lab1[(hu > 40) & (hu < 120)] = 5
        lab1[hu > 300] = 215
        lab2 = np.where(lab1 == 215, 0, lab1).astype(np.uint16)
        versions = []
        for k, lab in enumerate((lab1, lab2)):
            p = os.path.join(tmp, f"labels{k + 1}.nii.gz")
            nib.save(nib.Nifti1Image(lab, img.affine), p)
            rc, out, err = run(["labels", store, "clin", case, p], user="clin", tool=store_tool)
            verdict(rc == 0, f"label map version {k + 1} committed", err[-200:])
            versions.append(out.strip())
        verdict((lab1 == 5).sum() > 100 and (lab1 == 215).sum() > 100,
                "label maps have liver and spine voxels",
                f"{(lab1 == 5).sum()} {(lab1 == 215).sum()}")

        srcs = {}
        for f in sorted(os.listdir(src)):
            d = pydicom.dcmread(os.path.join(src, f), stop_before_pixels=True)
            srcs[str(d.SOPInstanceUID)] = d
        a0 = next(iter(srcs.values()))
        ident = [str(a0.PatientName).encode(), str(a0.PatientID).encode()]
        ident = [x for x in ident if len(x) >= 3]
        src_uids = set(srcs) | {str(a0.StudyInstanceUID), str(a0.SeriesInstanceUID)}

        # ---- clinician, default: de-identified ----
        o1 = os.path.join(tmp, "deid")
        rc, _, err = run(["export-dicom", f"case:{case}", "--source", src, "-o", o1, "-q"],
                         user="clin", store=store)
        files = outputs(o1)
        dss = {f: pydicom.dcmread(f) for f in files}
        segs = [f for f, d in dss.items() if d.Modality == "SEG"]
        stls = [f for f, d in dss.items() if d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.3"]
        imgs = {str(d.SOPInstanceUID): d for d in dss.values() if d.SOPClassUID == a0.SOPClassUID}
        verdict(rc == 0 and len(segs) == 1 and len(stls) == 1 and len(imgs) == len(srcs),
                "default export: one SEG, one STL (head: liver), the source series",
                f"exit {rc}, {len(segs)} SEG {len(stls)} STL {len(imgs)} images {err[-300:]}")
        leaks = []
        everything = [os.path.join(d, f) for d, _, fs in os.walk(o1) for f in fs]
        for f in everything:
            raw = open(f, "rb").read()
            leaks += [f"{os.path.basename(f)} holds {x!r}" for x in ident if x in raw]
            leaks += [f"{os.path.basename(f)} holds a source UID" for u in src_uids
                      if u.encode() in raw]
        verdict(not leaks and ident and len(everything) > len(files),
                "no source PatientName/PatientID/UID in any output file or the report",
                "; ".join(leaks[:4]) or "no identity in the source to look for")
        verdict(os.path.exists(os.path.join(o1, "deidentification.json")),
                "deidentification.json written")
        if segs:
            seg = dss[segs[0]]
            ref = seg.ReferencedSeriesSequence[0]
            refs = {str(r.ReferencedSOPInstanceUID) for r in ref.ReferencedInstanceSequence}
            der = {str(fg.DerivationImageSequence[0].SourceImageSequence[0]
                       .ReferencedSOPInstanceUID) for fg in seg.PerFrameFunctionalGroupsSequence}
            series_ok = all(str(d.SeriesInstanceUID) == str(ref.SeriesInstanceUID)
                            for d in imgs.values())
            verdict(series_ok and refs == set(imgs) and der <= set(imgs) and der,
                    "SEG references point at the exported de-identified source",
                    f"{len(refs)} refs, {len(der)} derivations, {len(imgs)} images")
            errs = dciodvfy_errors(segs[0]) + (dciodvfy_errors(stls[0]) if stls else ["no STL"])
            verdict(not errs, "dciodvfy: no error on the SEG and the STL", "; ".join(errs[:4]))

            # read back: the CLI on the exported source's grid, and pydicom
            back = os.path.join(tmp, "back.nii.gz")
            srcdir = os.path.dirname(next(iter(imgs.values())).filename)
            rc, _, err = run(["export-dicom", "--seg-to-labels", segs[0], "--source", srcdir,
                              "-o", back, "-q"])
            same = False
            if rc == 0:
                b = np.asanyarray(nib.load(back).dataobj).astype(np.int32)
                same = b.shape == lab2.shape and np.array_equal(b, lab2.astype(np.int32))
            verdict(same, "--seg-to-labels gives the head label map voxel for voxel",
                    f"exit {rc} {err[-200:]}")
            planes = seg_frames_to_labels(seg, imgs, (int(seg.Rows), int(seg.Columns)))
            # the source slices by position along the normal vs. the label map's slices
            order = sorted(imgs.values(), key=lambda d: float(d.ImagePositionPatient[2]))
            want = sum(int((lab2 == 5).sum()) for _ in [0])
            got = sum(int((p == 5).sum()) for p in planes.values())
            verdict(got == want and len(order) == lab2.shape[2],
                    "pydicom: the SEG's frames hold as many liver pixels as the label map",
                    f"{got} vs {want}")

        # ---- --version 1: spine included ----
        o1v = os.path.join(tmp, "v1")
        rc, _, err = run(["export-dicom", "--case", case, "--version", versions[0], "--source",
                          src, "-o", o1v, "-q", "--models", "none"], user="clin", store=store)
        seg1 = [pydicom.dcmread(f) for f in outputs(o1v)]
        seg1 = [d for d in seg1 if d.Modality == "SEG"]
        labels = sorted(str(s.SegmentLabel) for s in seg1[0].SegmentSequence) if seg1 else []
        verdict(rc == 0 and labels == ["liver", "spine"], "--version 1 exports the first version",
                f"exit {rc} {labels} {err[-200:]}")

        # ---- --models obj: an OBJ and its MTL per structure ----
        o1o = os.path.join(tmp, "obj")
        rc, _, err = run(["export-dicom", f"case:{case}", "--source", src, "-o", o1o, "-q",
                          "--models", "obj", "--version", versions[0]], user="clin", store=store)
        cls = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPClassUID) for f in outputs(o1o)]
        n_obj = cls.count("1.2.840.10008.5.1.4.1.1.104.4")
        n_mtl = cls.count("1.2.840.10008.5.1.4.1.1.104.5")
        verdict(rc == 0 and n_obj == 2 and n_mtl == 2,
                "--models obj: an OBJ and an MTL instance for liver and spine",
                f"exit {rc}, {n_obj} OBJ {n_mtl} MTL {err[-200:]}")

        # ---- identified: clinician yes, reviewer no ----
        o2 = os.path.join(tmp, "ident")
        rc, _, err = run(["export-dicom", f"case:{case}", "--identified", "--source", src, "-o",
                          o2, "-q"], user="clin", store=store)
        segs2 = [pydicom.dcmread(f) for f in outputs(o2)]
        segs2 = [d for d in segs2 if d.Modality == "SEG"]
        ok = rc == 0 and len(segs2) == 1 and str(segs2[0].PatientName) == str(a0.PatientName) \
            and str(segs2[0].PatientID) == str(a0.PatientID) \
            and str(segs2[0].StudyInstanceUID) == str(a0.StudyInstanceUID) \
            and str(segs2[0].ReferencedSeriesSequence[0].SeriesInstanceUID) == \
            str(a0.SeriesInstanceUID)
        verdict(ok, "--identified as clinician: identity and source UIDs kept",
                f"exit {rc} {err[-200:]}")
        verdict(not any(d.SOPClassUID == a0.SOPClassUID for d in
                        (pydicom.dcmread(f, stop_before_pixels=True) for f in outputs(o2))),
                "--identified does not copy the source images (they are the hospital's)")
        o3 = os.path.join(tmp, "rev_ident")
        rc, _, err = run(["export-dicom", f"case:{case}", "--identified", "--source", src, "-o",
                          o3, "-q"], user="rev", store=store)
        verdict(rc == 7 and not outputs(o3) and "reviewer" in err,
                "--identified as reviewer: refused, exit 7, nothing written",
                f"exit {rc} {err[-200:]}")
        o4 = os.path.join(tmp, "rev")
        rc, _, err = run(["export-dicom", f"case:{case}", "--source", src, "-o", o4, "-q",
                          "--models", "none"], user="rev", store=store)
        verdict(rc == 0 and len(outputs(o4)) == 1 + len(srcs),
                "reviewer's de-identified export allowed", f"exit {rc} {err[-200:]}")

        # ---- audit trail: the refusal, and each exported file's SHA-256 ----
        rc, out, err = run(["audit", "list", "--max", "100000"], user="admin", store=store)
        entries = json.loads(out) if rc == 0 else []
        refused = [e for e in entries if e.get("user") == "rev" and
                   "refused" in json.dumps(e) and "export.identified" in json.dumps(e)]
        verdict(refused, "the reviewer's refusal is audited", f"exit {rc} {err[-200:]}")
        logged = " ".join(e.get("outcome", "") for e in entries if e.get("what") ==
                          "export.file")
        missing = [f for f in files if hashlib.sha256(open(f, "rb").read()).hexdigest()
                   not in logged]
        verdict(files and not missing, "every exported file's SHA-256 is in the audit trail",
                f"{len(missing)} of {len(files)} missing")
        # ---- trace: an exported file leads back to its case, version and inputs ----
        traced = 0
        for f in files[:3]:
            rc, out, err = run(["trace", f], user="clin", store=store)
            try:
                t = json.loads(out) if rc == 0 else {}
            except ValueError:
                t = {}
            res = t.get("result", {})
            traced += (res.get("kind") == "export" and res.get("case") == int(case) and
                       res.get("deidentified") is True and "dicom" in res.get("format", ""))
        verdict(files and traced == min(3, len(files)),
                "recon3d trace follows an exported file back to its case",
                f"{traced} of {min(3, len(files))} traced")

        # ---- the source changed or gone since import ----
        victim = os.path.join(src, sorted(os.listdir(src))[1])
        raw = bytearray(open(victim, "rb").read())
        raw[-2] ^= 0x55
        open(victim, "wb").write(raw)
        o5 = os.path.join(tmp, "changed")
        rc, _, err = run(["export-dicom", f"case:{case}", "--source", src, "-o", o5, "-q"],
                         user="clin", store=store)
        verdict(rc == 2 and "changed since it was imported" in err and not outputs(o5),
                "a source file changed since import: refused", f"exit {rc} {err[-200:]}")
        os.unlink(victim)
        rc, _, err = run(["export-dicom", f"case:{case}", "--source", src, "-o", o5, "-q"],
                         user="clin", store=store)
        verdict(rc == 2 and "missing" in err and not outputs(o5),
                "a source file gone: refused", f"exit {rc} {err[-200:]}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{NAME}: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
