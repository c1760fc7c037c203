"""segment_small.py - `recon3d segment` end to end on TotalSegmentator's small
CT (3 mm, 30 slices) and on bad requests: every output present and atomic
(no temp files left), labels.nii.gz on the input's grid (nibabel), labels.json
volumes equal to voxel counts x voxel volume (numpy), one STL per structure
that VTK reads as a closed surface enclosing its label's volume, absent structures listed, lungs agree
with TotalSegmentator (Dice > 0.9, scipy-free numpy count), and bad input or
options refused with a non-zero exit and nothing written."""
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

R = os.environ.get("RECON3D", "build/recon3d")
DATA = os.environ.get("R3D_DATA", "../shared/data")
REF = os.path.join(DATA, "ct", "totalseg", "tests", "reference_files")
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
    ct = os.path.join(REF, "example_ct_sm.nii.gz")
    if not os.path.exists(ct):
        print("SKIP: no shared data at %s" % DATA)
        return 0
    with tempfile.TemporaryDirectory() as t:
        out = os.path.join(t, "seg")
        r = subprocess.run([R, "segment", ct, "-o", out, "--formats", "stl,ply"], capture_output=True,
                           text=True)
        check(r.returncode == 0, "segment exits 0 (%s)" % r.stderr[-300:].replace("\n", " | "))
        for f in ("labels.nii.gz", "labels.json", "report.json"):
            check(os.path.isfile(os.path.join(out, f)), f + " written")
        left = [f for f in os.listdir(out) + os.listdir(os.path.join(out, "meshes")) if ".tmp" in f]
        check(not left, "no temporary files left (%s)" % left)
        check("segment: lungs" in r.stderr and "segment: bones" in r.stderr,
              "progress printed per structure")
        img = nib.load(ct)
        lab_img = nib.load(os.path.join(out, "labels.nii.gz"))
        lab = np.asanyarray(lab_img.dataobj)
        check(lab.shape == img.shape and np.allclose(lab_img.affine, img.affine, atol=1e-4),
              "labels on the input grid")
        table = json.load(open(os.path.join(out, "labels.json")))
        report = json.load(open(os.path.join(out, "report.json")))
        vox_ml = float(np.prod(img.header.get_zooms()[:3])) / 1000
        ok = True
        for l in table["labels"]:
            n = int((lab == l["value"]).sum())
            ok &= n == l["voxels"] and abs(l["volume_ml"] - n * vox_ml) < 1e-3 + 1e-6 * n
            ok &= bool(l["name_zh"]) and len(l["color"]) == 3
        check(ok and table["labels"], "labels.json: counts, volumes, Chinese names, colours match the map")
        present = set(int(v) for v in np.unique(lab) if v)
        check(present == set(l["value"] for l in table["labels"]), "every label in the map is in the table")
        check("airway" in report["absent"], "no trachea in this crop: airway reported absent")
        check(report["software"]["name"] == "recon3d" and report["timings_s"]["total"] > 0,
              "report: software, timings")
        check(report["acquisition"]["Geometry"]["Dimensions"] == list(img.shape),
              "report: acquisition geometry")
        ref = np.asanyarray(nib.load(os.path.join(REF, "example_seg.nii.gz")).dataobj)
        names = {l["name"]: l["value"] for l in table["labels"]}
        for side, rv in (("lung_left", [10, 11]), ("lung_right", [12, 13, 14])):
            a, b = lab == names.get(side, -1), np.isin(ref, rv)
            d = 2 * (a & b).sum() / max(1, a.sum() + b.sum())
            check(d > 0.9, "%s agrees with TotalSegmentator: Dice %.3f" % (side, d))
        try:
            import vtk
            closed, vols = True, []
            for l in table["labels"]:
                p = os.path.join(out, "meshes", l["name"] + ".stl")
                rd = vtk.vtkSTLReader()
                rd.SetFileName(p)
                rd.Update()
                fe = vtk.vtkFeatureEdges()
                fe.SetInputData(rd.GetOutput())
                fe.BoundaryEdgesOn(), fe.NonManifoldEdgesOn(), fe.FeatureEdgesOff(), fe.ManifoldEdgesOff()
                fe.Update()
                closed &= rd.GetOutput().GetNumberOfCells() > 0 and fe.GetOutput().GetNumberOfCells() == 0
                closed &= os.path.isfile(p[:-4] + ".ply")
                mp = vtk.vtkMassProperties()
                mp.SetInputData(rd.GetOutput())
                mp.Update()
                if l["volume_ml"] >= 5:  # smaller: a few 27 mm^3 voxels
                    vols.append((l["name"], mp.GetVolume() / 1000 / l["volume_ml"] - 1))
            check(closed, "one closed STL (+ PLY) per structure, read by VTK")
            # the label-aware smoothing holds a mesh to its mask's volume
            # (the plain low pass lost 3-23 % on these 3 mm lungs and ribs;
            # the offset is held to a quarter voxel: spine +0.85 %)
            check(vols and all(abs(e) < 0.02 for _, e in vols),
                  "meshes of 5 mL or more enclose their label's volume within 2 %: " +
                  ", ".join("%s %+.2f %%" % (n, 100 * e) for n, e in vols))
        except ImportError:
            print("  skip  VTK not available")
        # bad requests: nothing written
        for args, what in (([os.path.join(t, "missing.nii.gz"), "-o", os.path.join(t, "x1")], "missing input"),
                           ([ct, "-o", os.path.join(t, "x2"), "--structures", "lungs,nonsense"], "unknown structure"),
                           ([ct, "-o", os.path.join(t, "x3"), "--formats", "doc"], "unknown mesh format"),
                           ([ct], "no -o")):
            r = subprocess.run([R, "segment"] + args, capture_output=True, text=True)
            out_dir = args[2] if len(args) > 2 else None
            written = out_dir and os.path.exists(os.path.join(out_dir, "labels.nii.gz"))
            check(r.returncode != 0 and not written and "recon3d" in r.stderr,
                  "%s refused (exit %d)" % (what, r.returncode))
    print("segment_small: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
