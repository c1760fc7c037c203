"""segment_chest.py - `recon3d segment` on the whole chest CT (DICOM folder,
512 x 512 x 141): what the issue asks to see on it, checked against what
is visible in the scan. ctest: release-only (minutes under ASan; the code is
covered under ASan by test_seg's phantoms).
- labels.nii.gz has the DICOM series' grid (pydicom: rows, columns, files);
- both lungs 1.5-4.5 L, all five lobes, each 0.2-2.5 L;
- airway: generations 0..4 at least, counts per generation consistent with
  the branch list, trachea and both main bronchi named;
- the right-upper-lobe mass (about 2.5 cm, visible on slices 75-80) found:
  a nodule in the right upper lobe, long axis 20-35 mm, solid;
- the report's timings and the meshes' files present."""
import glob
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

R = os.environ.get("RECON3D", "build/recon3d")
DATA = os.environ.get("R3D_DATA", "../shared/data")
CT = os.path.join(DATA, "ct", "chest_ct_itkelastix")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("  ok    " + what)
    else:
        failed += 1
        print("  FAIL  " + what)


def main():
    if not os.path.isdir(CT):
        print("SKIP: no chest CT at %s" % CT)
        return 0
    import pydicom
    files = sorted(glob.glob(os.path.join(CT, "**", "*"), recursive=True))
    dcm = []
    for f in files:
        if os.path.isfile(f):
            try:
                dcm.append(pydicom.dcmread(f, stop_before_pixels=True))
            except Exception:
                pass  # not DICOM (a licence or readme file)
    ds = dcm[0]
    with tempfile.TemporaryDirectory() as t:
        out = os.path.join(t, "seg")
        r = subprocess.run([R, "segment", CT, "-o", out, "--quiet"], capture_output=True, text=True)
        check(r.returncode == 0, "segment exits 0 %s" % r.stderr[-300:])
        if r.returncode:
            return 1
        lab = nib.load(os.path.join(out, "labels.nii.gz"))
        check(lab.shape == (int(ds.Columns), int(ds.Rows), len(dcm)),
              "labels on the DICOM grid %s" % (lab.shape,))
        rep = json.load(open(os.path.join(out, "report.json")))
        vol = {s["name"]: s["volume_ml"] for s in rep["structures"]}
        lobes = [n for n in vol if "lobe" in n]
        check(len(lobes) == 5, "five lobes: %s" % lobes)
        check(all(200 <= vol[n] <= 2500 for n in lobes), "lobe volumes plausible %s" %
              [round(vol[n]) for n in lobes])
        right = sum(vol[n] for n in lobes if n.endswith("right"))
        left = sum(vol[n] for n in lobes if n.endswith("left"))
        check(1500 < right < 4500 and 1500 < left < 4500, "lungs %.0f / %.0f mL" % (right, left))
        aw = rep.get("airway", {})
        pg = aw.get("branches_per_generation", [])
        check(aw.get("max_generation", -1) >= 4, "airway reaches generation %d" % aw.get("max_generation", -1))
        check(sum(pg) == len(aw.get("branches", [])), "branch counts per generation %s" % pg)
        named = {b.get("name") for b in aw.get("branches", [])}
        check({"trachea", "LMB", "RMB", "RUL", "RML", "RLL", "LUL", "LLL"} <= named,
              "main and lobar bronchi named")
        nods = rep.get("nodules", [])
        mass = [n for n in nods if n["lobe"] == "lung_upper_lobe_right" and 20 <= n["long_axis_mm"] <= 35]
        check(len(mass) == 1 and mass[0]["type"] == "solid",
              "right-upper-lobe mass found: %s" % [(n["lobe"], n["long_axis_mm"]) for n in nods])
        check(len(nods) <= 10, "few nodule candidates (%d)" % len(nods))
        check(rep["timings_s"]["total"] > 0 and len(os.listdir(os.path.join(out, "meshes"))) >= 10,
              "timings and meshes present")
        labels = np.asanyarray(lab.dataobj)
        check(int((labels >= 1000).sum()) > 0, "nodule voxels in the label map")
    print("segment_chest: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
