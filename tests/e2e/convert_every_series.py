#!/usr/bin/python3
"""Robustness: every series in every DICOM folder of the shared data either
converts to a NIfTI that nibabel loads with the announced shape, or fails
with one clear line naming the file - never a crash, never a sanitizer
report, never a half-written output. Lists what fails and why.
Ends with "convert_every_series: N passed, M failed"."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib

R = os.environ.get("RECON3D", "build/recon3d")
DATA = os.environ.get("R3D_DATA", "../shared/data")
passed = failed = 0
refused = []


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def sane(stderr):
    return not any(k in stderr for k in ("AddressSanitizer", "runtime error", "LeakSanitizer"))


def main():
    global passed, failed
    if not os.path.isdir(f"{DATA}/dicom"):
        print(f"convert_every_series: skipped: no shared data at {DATA}")
        print("convert_every_series: 0 passed, 0 failed")
        return 0
    roots = sorted(glob.glob(f"{DATA}/dicom/*")) + [f"{DATA}/ct/chest_ct_itkelastix"]
    with tempfile.TemporaryDirectory() as tmp:
        for root in roots:
            if not os.path.isdir(root):
                continue
            name = os.path.relpath(root, DATA)
            r = run([R, "info", "--json", root])
            if r.returncode != 0:
                if r.returncode < 0 or not sane(r.stderr) or "recon3d: error:" not in r.stderr:
                    failed += 1
                    print(f"  FAIL  {name}: info crashed or said nothing clear: {r.stderr[-300:]}")
                else:
                    passed += 1
                    refused.append((name, r.stderr.strip()))
                continue
            series = json.loads(r.stdout)["series"]
            for s in series:
                out = os.path.join(tmp, f"s{s['index']}.nii.gz")
                c = run([R, "convert", root, "--series", str(s["index"]), "-o", out, "--quiet"])
                tag = f"{name} #{s['index']} {s['modality']} {s['description'][:30]!r}"
                if c.returncode < 0 or c.returncode > 6 or not sane(c.stderr):
                    failed += 1
                    print(f"  FAIL  {tag}: crashed ({c.returncode}) {c.stderr[-400:]}")
                elif c.returncode != 0:
                    if "recon3d: error:" not in c.stderr or os.path.exists(out):
                        failed += 1
                        print(f"  FAIL  {tag}: unclear failure or output left: {c.stderr!r}")
                    else:
                        passed += 1
                        refused.append((tag, c.stderr.strip()))
                else:
                    img = nib.load(out)
                    want = tuple(s["dimensions"])
                    got = img.shape
                    # 3D MR is reoriented (dcm2niix does too): compare sorted sizes
                    if sorted(got) != sorted(want) and not (len(got) == 4 and got[3] == 3):
                        failed += 1
                        print(f"  FAIL  {tag}: shape {got}, info said {want}")
                    else:
                        import numpy as np
                        np.asanyarray(img.dataobj)  # RGB24 loads as a record array
                        passed += 1
                    os.remove(out)
    print("refused with a reason:")
    for tag, why in refused:
        print(f"  {tag}: {why[:200]}")
    print(f"convert_every_series: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
