#!/usr/bin/python3
"""Golden test: `recon3d convert` against dcm2niix (Debian package) on every
series of the public DICOM sets, plus the reference NIfTI files shipped with
the data (dcm_qa_ts/Ref, dcm_qa_enh/Ref, dicom2nifti ground truth).

For each case dcm2niix converts the folder into a temporary directory (file
names carry the SeriesInstanceUID); each of its outputs is matched with our
conversion of the same series, and we require
  - the same shape,
  - the same voxel values in real units (scl_slope/inter applied) exactly for
    integer data, within 1e-4 relative for float data,
  - affines equal within 1e-3 mm.
dcm2niix's reference outputs in the data are compared the same way; the
dicom2nifti ground truths are in another orientation convention, so both
sides are brought to the closest canonical (RAS) orientation first.

The malformed cases under dicom2nifti/failing must fail with a clear message
or warn, as that data set expects. Prints one line per case and ends with
"convert_dcm2niix: N passed, M failed".
"""
import glob
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

RECON3D = os.environ.get("RECON3D", "build/recon3d")
DATA = os.environ.get("R3D_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))

passed = failed = 0
report = []


def ok(name, msg=""):
    global passed
    passed += 1
    print(f"  ok    {name} {msg}")


def bad(name, msg):
    global failed
    failed += 1
    print(f"  FAIL  {name}: {msg}")


def run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def real(img):
    data = np.asanyarray(img.dataobj)
    if data.dtype.fields is not None:  # RGB24 structured array
        # dicom2nifti's RGB ground truth is RGBA; colour is R, G, B.
        return np.stack([data[f] for f in ("R", "G", "B")], -1).astype(np.float64)
    return np.asarray(img.get_fdata(dtype=np.float64))


def compare(name, ours_path, ref_path, canonical=False, linear_ok=False):
    a = nib.load(ours_path)
    b = nib.load(ref_path)
    if canonical:
        a = nib.as_closest_canonical(a)
        b = nib.as_closest_canonical(b)
    da, db = real(a), real(b)
    # dcm2niix drops singleton 4th dims the way we do; squeeze both to compare.
    da2, db2 = np.squeeze(da), np.squeeze(db)
    if da2.shape != db2.shape:
        return f"shape {da.shape} vs reference {db.shape}"
    def scaled(img):  # nibabel moves scl_slope/inter to the array proxy on load
        sl, it = getattr(img.dataobj, "slope", 1.0), getattr(img.dataobj, "inter", 0.0)
        return float(sl) != 1.0 or float(it) != int(it)
    floaty = any(np.issubdtype(x.get_data_dtype(), np.floating) or scaled(x) for x in (a, b))
    if floaty and linear_ok and da2.shape == db2.shape and da2.size:
        # dicom2nifti writes Philips display values, dcm2niix (and we) the
        # "precise" floating-point values: equal up to one linear map.
        A = np.vstack([da2.ravel(), np.ones(da2.size)]).T
        coef, *_ = np.linalg.lstsq(A, db2.ravel(), rcond=None)
        fit = A @ coef
        if np.max(np.abs(fit - db2.ravel())) <= 1e-3 * max(1.0, float(np.max(np.abs(db2)))):
            da2 = fit.reshape(db2.shape)
    if floaty:
        scale = max(1.0, float(np.max(np.abs(db2))))
        diff = float(np.max(np.abs(da2 - db2))) if da2.size else 0.0
        if diff > 1e-4 * scale:
            return f"voxels differ by up to {diff:g}"
    elif not np.array_equal(da2, db2):
        n = int(np.sum(da2 != db2))
        return f"{n} of {da2.size} voxels differ (max {float(np.max(np.abs(da2 - db2))):g})"
    aff = np.max(np.abs(a.affine - b.affine))
    if aff > 1e-3:
        return f"affine differs by {aff:.4g} mm:\nours\n{a.affine}\nreference\n{b.affine}"
    return None


def series_of(path):
    r = run([RECON3D, "info", "--json", path])
    if r.returncode != 0:
        return None, r.stderr.strip()
    return json.loads(r.stdout)["series"], None


def dcm2niix_case(name, path, tmp):
    """Convert with dcm2niix and with us; compare every output dcm2niix makes."""
    out = os.path.join(tmp, "d2n")
    os.makedirs(out, exist_ok=True)
    single = ["-s", "y"] if os.path.isfile(path) else []  # a file alone, not its folder
    r = run(["dcm2niix", "-z", "n", "-b", "n", "-f", "%j_%s_%e"] + single + ["-o", out, path])
    refs = sorted(glob.glob(os.path.join(out, "*.nii")))
    if "Unsupported transfer syntax" in r.stdout + r.stderr:
        print(f"  skip  {name}: this dcm2niix build cannot decode it (its reference NIfTI in the data is compared below)")
        return
    # Gantry tilt: dcm2niix writes the uncorrected stack and a _Tilt_1 copy;
    # we only produce the corrected one.
    tilted = [f for f in refs if "_Tilt_" in f]
    if tilted:
        refs = tilted
    if not refs:
        if "Unsupported transfer syntax" in r.stdout + r.stderr or "JPEG-LS" in r.stdout:
            print(f"  skip  {name}: this dcm2niix build cannot decode it (compared with the data's ground truth below)")
        else:
            bad(name, f"dcm2niix made nothing: {r.stdout[-300:]}")
        return
    ours, err = series_of(path)
    if ours is None:
        bad(name, f"recon3d info failed: {err}")
        return
    for ref in refs:
        base = os.path.basename(ref)
        uid = base.split("_")[0]
        # dcm2niix -s y leaves %j empty: one file, one series
        cands = [s for s in ours if s["uid"] == uid] if uid else ours
        if not cands:
            bad(f"{name} [{base}]", f"no series with UID {uid} found by recon3d")
            continue
        errors = []
        done = False
        for s in cands:
            mine = os.path.join(tmp, f"ours_{s['index']}.nii")
            r2 = run([RECON3D, "convert", path, "--series", str(s["index"]), "-o", mine, "--quiet"])
            if r2.returncode != 0:
                errors.append(r2.stderr.strip())
                continue
            e = compare(name, mine, ref)
            if e is None:
                ok(f"{name} [{base}]", f"{nib.load(ref).shape}")
                done = True
                break
            errors.append(e)
        if not done:
            bad(f"{name} [{base}]", "; ".join(errors))


def main():
    if not os.path.isdir(DATA):
        print(f"convert_dcm2niix: skipped: no shared data at {DATA}")
        print("convert_dcm2niix: 0 passed, 0 failed")
        return 0
    if run(["which", "dcm2niix"]).returncode != 0:
        print("convert_dcm2niix: dcm2niix is not installed (scripts/deps.sh --with-tests)")
        return 1
    d = os.path.join(DATA, "dicom")
    cases = []
    # dicom2nifti: every folder of .dcm files except the malformed ones
    for folder in sorted(set(os.path.dirname(p) for p in glob.glob(f"{d}/dicom2nifti/**/*.dcm", recursive=True))):
        if "/failing/" in folder and "gantrytilting" not in folder:
            continue
        cases.append((os.path.relpath(folder, d), folder))
    for f in sorted(glob.glob(f"{d}/dcm_qa_ts/In/*.dcm")):
        cases.append((os.path.relpath(f, d), f))
    cases.append(("dcm_qa_enh/In/Siemens/XA10", f"{d}/dcm_qa_enh/In/Siemens/XA10"))
    cases.append(("ct/chest_ct_itkelastix", os.path.join(DATA, "ct/chest_ct_itkelastix")))
    cases.append(("ct/totalseg/example_ct_dicom", os.path.join(DATA, "ct/totalseg/tests/reference_files/example_ct_dicom")))

    print("== recon3d convert vs dcm2niix")
    for name, path in cases:
        if not os.path.exists(path):
            print(f"  skip  {name}: not in this copy of the data")
            continue
        with tempfile.TemporaryDirectory() as tmp:
            dcm2niix_case(name, path, tmp)

    print("== recon3d convert vs the reference NIfTI files in the data")
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(1, 10):
            src, ref = f"{d}/dcm_qa_ts/In/{i}.dcm", f"{d}/dcm_qa_ts/Ref/{i}.nii"
            if not os.path.exists(ref):
                continue
            mine = os.path.join(tmp, f"ts{i}.nii")
            r = run([RECON3D, "convert", src, "-o", mine, "--quiet"])
            if r.returncode != 0:
                bad(f"dcm_qa_ts/Ref/{i}.nii", r.stderr.strip())
                continue
            e = compare("", mine, ref)
            ok(f"dcm_qa_ts/Ref/{i}.nii") if e is None else bad(f"dcm_qa_ts/Ref/{i}.nii", e)
        for gt in sorted(glob.glob(f"{d}/dicom2nifti/**/*_ground_truth.nii.gz", recursive=True)):
            folder = gt[: -len("_ground_truth.nii.gz")]
            name = os.path.relpath(gt, d)
            if not os.path.isdir(folder) or "/failing/" in folder:
                continue
            mine = os.path.join(tmp, "gt.nii")
            r = run([RECON3D, "convert", folder, "-o", mine, "--quiet"])
            if r.returncode != 0:
                bad(name, r.stderr.strip())
                continue
            e = compare("", mine, gt, canonical=True, linear_ok="philips" in name)
            ok(name) if e is None else bad(name, e)

    print("== malformed series (dicom2nifti/failing): clear error or warning")
    expectations = {
        # folder: what must be said (in the error, or in `info` warnings)
        "notavolume/001": "not a 3d volume",
        "slicecount/001": "only 2 slices",
        "sliceincrement/001": "spacing",
        "sliceincrement/002": "slice",
        "sliceorientation/001": "one seriesinstanceuid holds 2 image stacks",
        "gantrytilting/001": "gantry tilt",
    }
    for sub, must in expectations.items():
        path = f"{d}/dicom2nifti/failing/{sub}"
        if not os.path.isdir(path):
            continue
        with tempfile.TemporaryDirectory() as tmp:
            r = run([RECON3D, "convert", path, "-o", os.path.join(tmp, "x.nii"), "--quiet"])
            info = run([RECON3D, "info", path])
            said = (r.stderr + info.stdout + info.stderr).lower()
            crashed = r.returncode < 0 or r.returncode > 6
            if crashed:
                bad(f"failing/{sub}", f"crashed (status {r.returncode})")
            elif r.returncode != 0 and "recon3d: error:" not in r.stderr:
                bad(f"failing/{sub}", f"failed without a clear message: {r.stderr!r}")
            elif must and must not in said:
                bad(f"failing/{sub}", f"expected a word about '{must}', got: {said.strip()[:400]}")
            else:
                what = r.stderr.strip() if r.returncode else "converted; info says: " + \
                    " | ".join(l.strip() for l in info.stdout.splitlines() if l.strip().startswith("!"))
                ok(f"failing/{sub}", f"-> {what[:200]}")

    print(f"convert_dcm2niix: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
