#!/usr/bin/env python3
"""dicom_seg.py - DICOM SEG out of recon3d and back, checked from outside.

Source: the full chest CT series ($R3D_DATA/ct/chest_ct_itkelastix, 141
slices). A label map on its grid is made here with numpy/scipy from the CT
itself (bone > 250 HU, the air inside the body as "lungs", a 6 mm sphere as
lung nodule 1, and a box with a label the registry does not know), so some
segments span many slices and some a few.

`recon3d export-dicom labels.nii.gz --source CT` writes one SEG; then
  - dciodvfy reports no error, dcmdump reads it cleanly;
  - pydicom: BINARY, the source's study and frame of reference, the
    referenced series and every derivation image among the source
    instances, frames only where a segment has pixels (as many frames per
    segment as slices holding that label), segment names and codes;
  - the label map rebuilt with numpy from pydicom's frames and positions
    (pixel centre -> NIfTI voxel through nibabel's affine) equals the input;
  - our reader (`--seg-to-labels SEG --source CT`) gives the identical label
    map and affine, and the registry colours back (within 1 of 255);
  - with --deidentify: the SEG and the de-identified source are written
    together, the SEG names the new series and instances, no patient name
    is left, and the SEG still reads back to the same label map on the
    de-identified series;
  - every SEG in $R3D_DATA/dicom (dcmqi, pydicom's liver SEGs in every
    transfer syntax, LABELMAP objects) reads with our reader, and each
    voxel it sets is the one pydicom's frame pixels land on (later segment
    wins on overlaps, as documented).
Ends with `dicom_seg: N passed, M failed`; "SKIP: ..." without data.
"""
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
from scipy import ndimage

warnings.filterwarnings("ignore")
RECON3D = os.environ.get("RECON3D", "recon3d")
DATA = os.environ.get("R3D_DATA", "")
passed = failed = 0


def verdict(ok, what, why=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok   {what}")
    else:
        failed += 1
        print(f"FAIL {what}: {why}")


def run(*args):
    r = subprocess.run([RECON3D, *args], capture_output=True, text=True)
    return r.returncode, r.stderr


def dciodvfy_errors(path):
    r = subprocess.run(["dciodvfy", path], capture_output=True, text=True, errors="replace")
    return [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]


def dcmdump_clean(path):
    r = subprocess.run(["dcmdump", "-q", path], capture_output=True, text=True, errors="replace")
    return r.returncode == 0 and "E: " not in r.stderr and "W: " not in r.stderr


def lps_to_ras_affine(nii):
    return nii.affine


def frame_voxels(ds, k, inv_ras, on):
    """Continuous voxel coordinates (i, j, k) in the NIfTI grid whose inverse
    RAS affine is inv_ras of frame k's pixels where on is set."""
    shared = ds.SharedFunctionalGroupsSequence[0]
    pf = ds.PerFrameFunctionalGroupsSequence[k]
    ipp = np.array([float(x) for x in pf.PlanePositionSequence[0].ImagePositionPatient])
    src = pf if "PlaneOrientationSequence" in pf else shared
    iop = np.array([float(x) for x in src.PlaneOrientationSequence[0].ImageOrientationPatient])
    src = pf if "PixelMeasuresSequence" in pf else shared
    dr, dc = [float(x) for x in src.PixelMeasuresSequence[0].PixelSpacing]
    r, c = np.nonzero(on)
    world = ipp[None, :] + c[:, None] * dc * iop[None, :3] + r[:, None] * dr * iop[None, 3:]
    ras = world * np.array([-1, -1, 1])
    ijk = ras @ inv_ras[:3, :3].T + inv_ras[:3, 3]
    return ijk


def rebuild_with_pydicom(seg_path, nii, value_of):
    """The label map from pydicom's frames on nii's grid (later segment wins)."""
    ds = pydicom.dcmread(seg_path)
    px = ds.pixel_array
    if px.ndim == 2:
        px = px[None]
    out = np.zeros(nii.shape[:3], np.uint16)
    inv = np.linalg.inv(nii.affine)
    order = sorted(range(int(ds.NumberOfFrames)), key=lambda k: int(
        ds.PerFrameFunctionalGroupsSequence[k].SegmentIdentificationSequence[0]
        .ReferencedSegmentNumber))
    off = 0.0
    for k in order:
        pf = ds.PerFrameFunctionalGroupsSequence[k]
        sn = int(pf.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        on = px[k] > 0
        ijk = frame_voxels(ds, k, inv, on)
        idx = np.rint(ijk).astype(int)
        off = max(off, float(np.abs(ijk - idx).max()) if len(idx) else 0)
        ok = np.all((idx >= 0) & (idx < np.array(out.shape)), axis=1)
        idx = idx[ok]
        out[idx[:, 0], idx[:, 1], idx[:, 2]] = value_of[sn]
    return out, off, ds


def make_labels(ct_path, out_dir):
    ct = nib.load(ct_path)
    hu = np.asanyarray(ct.dataobj).astype(np.float32)
    lab = np.zeros(hu.shape, np.uint16)
    lab[hu > 250] = 217  # bones
    air = hu < -500
    comp, n = ndimage.label(air)
    border = set(np.unique(np.concatenate([comp[0].ravel(), comp[-1].ravel(), comp[:, 0].ravel(),
                                           comp[:, -1].ravel()])))
    keep = np.ones(n + 1, bool)
    keep[0] = False
    keep[list(border)] = False
    inner = keep[comp]
    lab[inner] = 204  # lungs (and airway): air not connected to the outside
    # a 6 mm sphere in the middle of the lungs' bounding box: lung nodule 1
    zz = np.argwhere(inner)
    centre = zz.mean(axis=0) if len(zz) else np.array(hu.shape) / 2
    sp = np.sqrt((ct.affine[:3, :3] ** 2).sum(axis=0))
    lo = np.maximum(np.floor(centre - 7.0 / sp).astype(int), 0)
    hi = np.minimum(np.ceil(centre + 7.0 / sp).astype(int) + 1, np.array(hu.shape))
    g = np.indices(tuple(hi - lo)).transpose(1, 2, 3, 0) + lo
    d = np.sqrt((((g - centre) * sp) ** 2).sum(axis=-1))
    box = lab[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    box[d <= 6.0] = 1000
    # a box with a label unknown to the registry
    c = np.array(hu.shape) // 3
    lab[c[0]:c[0] + 12, c[1]:c[1] + 9, c[2]:c[2] + 4] = 777
    nib.save(nib.Nifti1Image(lab, ct.affine), os.path.join(out_dir, "labels.nii.gz"))
    json.dump({"labels": [{"value": 777, "name": "custom_roi", "name_zh": "", "color": [10, 200, 30]}]},
              open(os.path.join(out_dir, "labels.nii.gz.json"), "w"))
    return lab, ct


def main():
    src = os.path.join(DATA, "ct", "chest_ct_itkelastix", "00")
    if not DATA or not os.path.isdir(src):
        print(f"SKIP: no chest CT series under {DATA or '(R3D_DATA unset)'}")
        print("dicom_seg: 0 passed, 0 failed")
        return 0
    for tool in ("dciodvfy", "dcmdump"):
        if not shutil.which(tool):
            print(f"FAIL {tool} not installed")
            print("dicom_seg: 0 passed, 1 failed")
            return 1
    tmp = tempfile.mkdtemp(prefix="r3d_seg_")
    try:
        rc, err = run("convert", src, "-o", os.path.join(tmp, "ct.nii.gz"), "-q")
        verdict(rc == 0, "convert the chest CT", err[-300:])
        lab, ct = make_labels(os.path.join(tmp, "ct.nii.gz"), tmp)
        labels_path = os.path.join(tmp, "labels.nii.gz")
        values = sorted(int(v) for v in np.unique(lab) if v)

        # ---- export ----
        out = os.path.join(tmp, "out")
        rc, err = run("export-dicom", labels_path, "--source", src, "-o", out, "--models",
                      "none", "-q")
        files = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs]
        verdict(rc == 0 and len(files) == 1, "export-dicom writes one SEG", f"exit {rc} {err[-300:]}")
        if not files:
            return 1
        seg = files[0]
        parts = os.path.relpath(seg, out).split(os.sep)
        ds = pydicom.dcmread(seg)
        verdict(parts == [str(ds.StudyInstanceUID), str(ds.SeriesInstanceUID),
                          str(ds.SOPInstanceUID) + ".dcm"], "SEG named <study>/<series>/<sop>.dcm",
                "/".join(parts))
        errs = dciodvfy_errors(seg)
        verdict(not errs, "dciodvfy: no errors in the SEG", "; ".join(errs[:3]))
        verdict(dcmdump_clean(seg), "dcmdump reads the SEG cleanly")

        # ---- attributes, with pydicom ----
        srcs = {}
        for f in sorted(os.listdir(src)):
            a = pydicom.dcmread(os.path.join(src, f), stop_before_pixels=True, force=True)
            srcs[str(a.SOPInstanceUID)] = a
        a0 = next(iter(srcs.values()))
        why = []
        if ds.SOPClassUID != "1.2.840.10008.5.1.4.1.1.66.4" or ds.SegmentationType != "BINARY":
            why.append("not a BINARY SEG")
        if ds.StudyInstanceUID != a0.StudyInstanceUID:
            why.append("other study")
        if ds.FrameOfReferenceUID != a0.FrameOfReferenceUID:
            why.append("other frame of reference")
        if ds.ReferencedSeriesSequence[0].SeriesInstanceUID != a0.SeriesInstanceUID:
            why.append("ReferencedSeriesSequence names another series")
        refd = {str(i.ReferencedSOPInstanceUID) for i in
                ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
        if refd != set(srcs):
            why.append(f"ReferencedInstanceSequence {len(refd)} of {len(srcs)} instances")
        deriv = [str(pf.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
                 for pf in ds.PerFrameFunctionalGroupsSequence]
        if not set(deriv) <= set(srcs):
            why.append("a frame derives from an instance not in the source")
        verdict(not why, "study, frame of reference and references are the source's", "; ".join(why))
        segs = {int(s.SegmentNumber): s for s in ds.SegmentSequence}
        names = [str(segs[k].SegmentLabel) for k in sorted(segs)]
        verdict(names == ["lungs", "bones", "custom_roi", "lung_nodule_1"],
                "segments: registry names, the unknown label keeps its own", str(names))
        s_nod = next(s for s in segs.values() if s.SegmentLabel == "lung_nodule_1")
        s_lung = next(s for s in segs.values() if s.SegmentLabel == "lungs")
        codes_ok = (s_nod.SegmentedPropertyCategoryCodeSequence[0].CodeValue == "49755003" and
                    s_nod.SegmentedPropertyTypeCodeSequence[0].CodeValue == "27925004" and
                    s_nod.AnatomicRegionSequence[0].CodeValue == "39607008" and
                    s_lung.SegmentedPropertyTypeCodeSequence[0].CodeValue == "39607008" and
                    all(s.SegmentAlgorithmType == "AUTOMATIC" and s.SegmentAlgorithmName == "recon3d"
                        and len(s.RecommendedDisplayCIELabValue) == 3 for s in segs.values()))
        verdict(codes_ok, "SNOMED codes, algorithm and CIELab colour per segment")
        px = ds.pixel_array
        empty = [k for k in range(px.shape[0]) if not px[k].any()]
        verdict(not empty, f"{px.shape[0]} frames, none empty", f"empty frames {empty[:5]}")
        # frames per segment == slices holding that label (the grid is the series')
        value_of = {}
        for k, s in segs.items():
            value_of[k] = {"bones": 217, "lungs": 204, "custom_roi": 777,
                           "lung_nodule_1": 1000}.get(str(s.SegmentLabel), 0)
        per_seg = {}
        for pf in ds.PerFrameFunctionalGroupsSequence:
            n = int(pf.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
            per_seg[n] = per_seg.get(n, 0) + 1
        want = {k: int((lab == v).any(axis=(0, 1)).sum()) for k, v in value_of.items()}
        verdict(per_seg == want, "as many frames per segment as slices holding it",
                f"{per_seg} vs {want}")

        # ---- independent rebuild with pydicom + nibabel ----
        back, off, _ = rebuild_with_pydicom(seg, ct, value_of)
        verdict(np.array_equal(back, lab) and off < 1e-3,
                "pydicom + nibabel rebuild the identical label map",
                f"{int((back != lab).sum())} voxels differ, pixel centres {off:.2g} voxel off grid")

        # ---- our reader ----
        back_path = os.path.join(tmp, "back.nii.gz")
        rc, err = run("export-dicom", "--seg-to-labels", seg, "--source", src, "-o", back_path, "-q")
        ok = rc == 0 and os.path.exists(back_path)
        b = nib.load(back_path) if ok else None
        same = ok and np.array_equal(np.asanyarray(b.dataobj), lab) and \
            np.allclose(b.affine, ct.affine, atol=1e-4)
        verdict(same, "our reader gives the identical label map and affine",
                f"exit {rc} {err[-200:]}" if not ok else
                f"{int((np.asanyarray(b.dataobj) != lab).sum())} voxels differ")
        if ok:
            meta = json.load(open(back_path + ".json"))
            cols = {l["name"]: l["color"] for l in meta["labels"]}
            reg = {"bones": [241, 214, 145], "lungs": [150, 200, 235], "custom_roi": [10, 200, 30]}
            bad = [n for n, c in reg.items() if max(abs(x - y) for x, y in zip(cols.get(n, [0, 0, 0]), c)) > 1]
            vox = {l["value"]: l["voxels"] for l in meta["labels"]}
            bad += [f"{v}: {vox.get(v)} voxels" for v in values if vox.get(v) != int((lab == v).sum())]
            verdict(not bad, "colours back through CIELab, voxel counts per label", "; ".join(bad))

        # ---- de-identified, as one set with the source ----
        outd = os.path.join(tmp, "outd")
        rc, err = run("export-dicom", labels_path, "--source", src, "-o", outd, "--models", "none",
                      "--deidentify", "-q")
        fs = [os.path.join(d, f) for d, _, x in os.walk(outd) for f in x if f.endswith(".dcm")]
        dsets = {f: pydicom.dcmread(f, stop_before_pixels=True) for f in fs}
        segd = [f for f, d in dsets.items() if d.Modality == "SEG"]
        imgs = {str(d.SOPInstanceUID): d for f, d in dsets.items() if d.Modality != "SEG"}
        why = []
        if rc != 0 or len(segd) != 1 or len(imgs) != len(srcs):
            why.append(f"exit {rc}, {len(segd)} SEG, {len(imgs)} images {err[-200:]}")
        else:
            sd = dsets[segd[0]]
            i0 = next(iter(imgs.values()))
            if sd.ReferencedSeriesSequence[0].SeriesInstanceUID != i0.SeriesInstanceUID:
                why.append("the SEG names another series than the de-identified source")
            if sd.ReferencedSeriesSequence[0].SeriesInstanceUID == a0.SeriesInstanceUID:
                why.append("the SEG still names the original series")
            refs = {str(i.ReferencedSOPInstanceUID) for i in
                    sd.ReferencedSeriesSequence[0].ReferencedInstanceSequence}
            if refs != set(imgs):
                why.append("referenced instances are not the de-identified ones")
            if sd.FrameOfReferenceUID != i0.FrameOfReferenceUID or sd.StudyInstanceUID != i0.StudyInstanceUID:
                why.append("frame of reference or study differ from the de-identified source")
            pn = str(a0.get("PatientName", ""))
            for f, d in dsets.items():
                if pn and str(d.get("PatientName", "")) == pn:
                    why.append(f"patient name left in {os.path.basename(f)}")
                    break
                if str(d.get("PatientIdentityRemoved", "")) != "YES":
                    why.append("PatientIdentityRemoved is not YES")
                    break
            errs = dciodvfy_errors(segd[0])
            if errs:
                why.append("dciodvfy: " + errs[0])
            back_d = os.path.join(tmp, "back_d.nii.gz")
            rc2, err2 = run("export-dicom", "--seg-to-labels", segd[0], "--source",
                            os.path.dirname(next(f for f in fs if f != segd[0])), "-o", back_d, "-q")
            if rc2 != 0 or not np.array_equal(np.asanyarray(nib.load(back_d).dataobj), lab):
                why.append(f"de-identified SEG does not read back on the de-identified series {err2[-200:]}")
        verdict(not why, "--deidentify: SEG and source de-identified together, references kept",
                "; ".join(why[:3]))

        # ---- every SEG in the test data ----
        n_read = 0
        for d, _, fs in os.walk(os.path.join(DATA, "dicom")):
            for f in sorted(fs):
                p = os.path.join(d, f)
                try:
                    h = pydicom.dcmread(p, stop_before_pixels=True)
                except Exception:  # noqa: BLE001 - not DICOM
                    continue
                if not str(h.get("SOPClassUID", "")).startswith("1.2.840.10008.5.1.4.1.1.66."):
                    continue
                rel = os.path.relpath(p, DATA)
                outp = os.path.join(tmp, "read.nii.gz")
                rc, err = run("export-dicom", "--seg-to-labels", p, "-o", outp, "-q")
                if rc != 0:
                    verdict(False, f"read {rel}", err[-300:])
                    continue
                n_read += 1
                meta = json.load(open(outp + ".json"))
                nii = nib.load(outp)
                got = np.asanyarray(nii.dataobj)
                full = pydicom.dcmread(p)
                native = str(full.file_meta.get("TransferSyntaxUID", "")) in (
                    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
                try:
                    # Compressed 1-bit frames: Debian's pydicom handlers either
                    # lack the syntax or crash the interpreter (J2K), so only
                    # native pixel data is decoded by pydicom here.
                    if not native:
                        raise NotImplementedError(full.file_meta.TransferSyntaxUID)
                    px = full.pixel_array
                except Exception:  # noqa: BLE001 - a syntax pydicom has no handler for
                    # pydicom's liver_* files are one SEG in several transfer
                    # syntaxes: compare with the plain liver.dcm beside it.
                    base = f
                    for suffix in ("_deflate", "_j2k", "_rle"):
                        base = base.replace(suffix + ".dcm", ".dcm")
                    ref = os.path.join(d, base)
                    rc2, _ = run("export-dicom", "--seg-to-labels", ref, "-o",
                                 os.path.join(tmp, "ref.nii.gz"), "-q") if base != f and \
                        os.path.exists(ref) else (1, "")
                    same = rc2 == 0 and np.array_equal(
                        np.asanyarray(nib.load(os.path.join(tmp, "ref.nii.gz")).dataobj), got)
                    verdict(same, f"read {rel} (compressed): same labels as the native {base}",
                            "differs or no reference")
                    continue
                labelmap = str(full.get("SegmentationType", "")) == "LABELMAP"
                vmap = {l["segment_number"]: l["value"] for l in meta["labels"]}
                want = np.zeros(got.shape, np.uint16)
                if px.ndim == 2:
                    px = px[None]
                inv = np.linalg.inv(nii.affine)
                nfr = int(full.get("NumberOfFrames", 1))
                pfs = full.PerFrameFunctionalGroupsSequence
                segno = [0 if labelmap else int(
                    (pfs[k] if "SegmentIdentificationSequence" in pfs[k] else
                     full.SharedFunctionalGroupsSequence[0]).SegmentIdentificationSequence[0]
                    .ReferencedSegmentNumber) for k in range(nfr)]
                frac = str(full.get("SegmentationType", "")) == "FRACTIONAL"
                maxf = float(full.get("MaximumFractionalValue", 255))
                off = 0.0
                for k in sorted(range(nfr), key=lambda k: segno[k]):
                    on = (2.0 * px[k] >= maxf) & (px[k] > 0) if frac else px[k] > 0
                    if not on.any():
                        continue
                    ijk = frame_voxels(full, k, inv, on)
                    idx = np.rint(ijk).astype(int)
                    off = max(off, float(np.abs(ijk - idx).max()))
                    vals = np.array([vmap.get(int(v), int(v)) for v in px[k][on]]) if labelmap \
                        else vmap[segno[k]]
                    want[idx[:, 0], idx[:, 1], idx[:, 2]] = vals
                diff = int((want != got).sum())
                verdict(diff == 0 and off < 1e-3,
                        f"read {rel}: {len(meta['labels'])} segments, {nfr} frames, "
                        f"{int((got > 0).sum())} voxels as pydicom places them",
                        f"{diff} voxels differ, {off:.2g} off grid")
        verdict(n_read >= 10, f"{n_read} SEG objects in the test data read", "too few found")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"dicom_seg: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
