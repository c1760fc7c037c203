#!/usr/bin/env python3
"""export_dicom.py - `recon3d export-dicom` end to end on a real CT series.

Source: dcmqi's 3-slice abdominal CT ($R3D_DATA/dicom/dcmqi/.../ct-3slice)
with its liver + spine label map (NRRD), turned here into what `recon3d
segment` writes: DIR/labels.nii.gz with registry values (liver 5, spine
215), DIR/labels.json, and DIR/meshes/<name>.stl made by `recon3d mesh`.

Checked:
  - one SEG and one Encapsulated STL per mesh, named
    <StudyUID>/<SeriesUID>/<SOPInstanceUID>.dcm, all in the source's study
    and frame of reference; dciodvfy reports no error, dcmdump reads each
    file cleanly, pydicom reads each without force;
  - each STL instance: SOP class 1.2.840.10008.5.1.4.1.1.104.3, model/stl,
    EncapsulatedDocumentLength = the STL's length, the STL inside has the
    mesh file's triangles and vertices exactly (LPS mm), units mm (UCUM),
    ModelModification/ModelMirroring NO, a model usage code, the source
    instances in SourceInstanceSequence and ReferencedSeriesSequence;
  - --models obj: an OBJ and an MTL instance per mesh sharing one
    ModelGroupUID, the OBJ text naming its material library (pydicom and
    dcmdump; dciodvfy too where it knows the OBJ/MTL IODs);
  - a bare label map (no meshes folder): surfaces made from it, one per label;
  - --deidentify: the source series comes along de-identified, the SEG and
    the models refer to its new UIDs, no output keeps the patient's name;
  - refusals: a source without study/series UIDs (TotalSegmentator's
    anonymised example) exits 2 and writes nothing; INPUT without --source
    is a usage error.
Ends with `export_dicom: N passed, M failed`; "SKIP: ..." without data.
"""
import json
import os
import shutil
import struct
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


def dciodvfy(path):
    r = subprocess.run(["dciodvfy", path], capture_output=True, text=True, errors="replace")
    return [l for l in (r.stdout + r.stderr).splitlines() if l.startswith("Error")]


def dcmdump_clean(path):
    r = subprocess.run(["dcmdump", "-q", path], capture_output=True, text=True, errors="replace")
    return r.returncode == 0 and "E: " not in r.stderr and "W: " not in r.stderr


def stl(raw):
    """Triangles (n, 3, 3) of a binary STL."""
    n = struct.unpack_from("<I", raw, 80)[0]
    rec = np.frombuffer(raw, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]),
                        count=n, offset=84)
    return rec["v"]


def outputs(out):
    return sorted(os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs if f.endswith(".dcm"))


def main():
    base = os.path.join(DATA, "dicom", "dcmqi", "data", "segmentations")
    src = os.path.join(base, "ct-3slice")
    if not DATA or not os.path.isdir(src):
        print(f"SKIP: no dcmqi CT series under {DATA or '(R3D_DATA unset)'}")
        print("export_dicom: 0 passed, 0 failed")
        return 0
    for tool in ("dciodvfy", "dcmdump"):
        if not shutil.which(tool):
            print(f"FAIL {tool} not installed")
            print("export_dicom: 0 passed, 1 failed")
            return 1
    tmp = tempfile.mkdtemp(prefix="r3d_exp_")
    try:
        # ---- a segment folder, made here ----
        seg_dir = os.path.join(tmp, "case")
        os.makedirs(os.path.join(seg_dir, "meshes"))
        raw = os.path.join(tmp, "raw.nii.gz")
        rc, err = run("convert", os.path.join(base, "liver_spine_seg.nrrd"), "-o", raw, "-q")
        verdict(rc == 0, "label map converted", err[-200:])
        img = nib.load(raw)
        lab = np.asanyarray(img.dataobj).astype(np.uint16)
        lab = np.where(lab == 1, 5, np.where(lab == 2, 215, 0)).astype(np.uint16)  # liver, spine
        nib.save(nib.Nifti1Image(lab, img.affine), os.path.join(seg_dir, "labels.nii.gz"))
        json.dump({"labels": [
            {"value": 5, "name": "liver", "name_zh": "肝", "color": [40, 140, 40]},
            {"value": 215, "name": "spine", "name_zh": "脊柱", "color": [200, 170, 130]}]},
            open(os.path.join(seg_dir, "labels.json"), "w"), ensure_ascii=False)
        for name in ("liver", "spine"):
            rc, err = run("mesh", os.path.join(seg_dir, "labels.nii.gz"), "--label",
                          "5" if name == "liver" else "215", "-o",
                          os.path.join(seg_dir, "meshes", name + ".stl"), "--quiet")
            verdict(rc == 0, f"mesh {name}", err[-200:])
        src_ds = {}
        for f in sorted(os.listdir(src)):
            a = pydicom.dcmread(os.path.join(src, f), stop_before_pixels=True)
            src_ds[str(a.SOPInstanceUID)] = a
        a0 = next(iter(src_ds.values()))

        # ---- export: SEG + STL per mesh ----
        out = os.path.join(tmp, "out")
        rc, err = run("export-dicom", seg_dir, "--source", src, "-o", out, "-q")
        files = outputs(out)
        dss = {f: pydicom.dcmread(f) for f in files}
        segs = [f for f, d in dss.items() if d.Modality == "SEG"]
        stls = [f for f, d in dss.items() if d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.3"]
        verdict(rc == 0 and len(segs) == 1 and len(stls) == 2 and len(files) == 3,
                "one SEG and one Encapsulated STL per mesh", f"exit {rc} {len(files)} files {err[-300:]}")
        bad = []
        for f, d in dss.items():
            rel = os.path.relpath(f, out).split(os.sep)
            if rel != [d.StudyInstanceUID, d.SeriesInstanceUID, d.SOPInstanceUID + ".dcm"]:
                bad.append(f"{'/'.join(rel)} not named by its UIDs")
            if d.StudyInstanceUID != a0.StudyInstanceUID or d.FrameOfReferenceUID != a0.FrameOfReferenceUID:
                bad.append(f"{rel[-1]}: other study or frame of reference")
            e = dciodvfy(f)
            if e:
                bad.append(f"{rel[-1]}: dciodvfy {e[0]}")
            if not dcmdump_clean(f):
                bad.append(f"{rel[-1]}: dcmdump complains")
        verdict(not bad, f"{len(files)} files: UID names, source study and frame, dciodvfy and dcmdump clean",
                "; ".join(bad[:3]))
        for f in stls:
            d = dss[f]
            name = str(d.DocumentTitle)
            mesh = open(os.path.join(seg_dir, "meshes", name + ".stl"), "rb").read()
            n = int(d.EncapsulatedDocumentLength)
            doc = bytes(d.EncapsulatedDocument)[:n]
            why = []
            if d.MIMETypeOfEncapsulatedDocument != "model/stl":
                why.append("MIME type")
            if len(d.EncapsulatedDocument) != n + (n & 1):
                why.append("EncapsulatedDocumentLength does not match the element")
            t_in, t_doc = stl(mesh), stl(doc)
            if t_in.shape != t_doc.shape or not np.array_equal(t_in, t_doc):
                why.append(f"triangles {t_doc.shape} vs mesh file {t_in.shape}")
            u = d.MeasurementUnitsCodeSequence[0]
            if (u.CodeValue, u.CodingSchemeDesignator) != ("mm", "UCUM"):
                why.append("units")
            if d.ModelModification != "NO" or d.ModelMirroring != "NO" or \
                    not len(d.ModelUsageCodeSequence):
                why.append("manufacturing 3D model attributes")
            refs = {str(i.ReferencedSOPInstanceUID) for i in d.SourceInstanceSequence}
            rs = d.ReferencedSeriesSequence[0]
            if refs != set(src_ds) or rs.SeriesInstanceUID != a0.SeriesInstanceUID:
                why.append("source instances / series not referenced")
            verdict(not why, f"STL instance {name}: {len(t_doc)} triangles as the mesh file, "
                    f"units, model attributes, references", "; ".join(why))

        # ---- OBJ + MTL ----
        out_o = os.path.join(tmp, "out_obj")
        rc, err = run("export-dicom", seg_dir, "--source", src, "-o", out_o, "-q", "--models", "obj")
        dso = {f: pydicom.dcmread(f) for f in outputs(out_o)}
        objs = [d for d in dso.values() if d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.4"]
        mtls = [d for d in dso.values() if d.SOPClassUID == "1.2.840.10008.5.1.4.1.1.104.5"]
        why = []
        if rc != 0 or len(objs) != 2 or len(mtls) != 2:
            why.append(f"exit {rc}: {len(objs)} OBJ, {len(mtls)} MTL {err[-200:]}")
        for o in objs:
            g = [m for m in mtls if m.ModelGroupUID == o.ModelGroupUID]
            if len(g) != 1 or g[0].DocumentTitle != o.DocumentTitle:
                why.append(f"{o.DocumentTitle}: no MTL with its ModelGroupUID")
            if b"mtllib" not in bytes(o.EncapsulatedDocument) or o.MIMETypeOfEncapsulatedDocument != "model/obj":
                why.append(f"{o.DocumentTitle}: OBJ text or MIME type")
        for m in mtls:
            if b"newmtl" not in bytes(m.EncapsulatedDocument) or m.MIMETypeOfEncapsulatedDocument != "model/mtl":
                why.append(f"{m.DocumentTitle}: MTL text or MIME type")
        unknown = 0
        for f in dso:
            if not dcmdump_clean(f):
                why.append(f"dcmdump: {os.path.basename(f)}")
            e = dciodvfy(f)
            if any("Information Object Not found" in l for l in e):
                unknown += 1  # this dciodvfy predates the OBJ/MTL IODs
            elif e:
                why.append(f"dciodvfy: {e[0]}")
        verdict(not why, "--models obj: OBJ + MTL per mesh, one ModelGroupUID per pair"
                + (f" (dciodvfy knows no OBJ/MTL IOD: {unknown} files checked by dcmdump/pydicom only)"
                   if unknown else ""), "; ".join(why[:3]))

        # ---- a bare label map: surfaces made here ----
        out_l = os.path.join(tmp, "out_labels")
        shutil.copy(os.path.join(seg_dir, "labels.nii.gz"), os.path.join(tmp, "bare.nii.gz"))
        rc, err = run("export-dicom", os.path.join(tmp, "bare.nii.gz"), "--source", src, "-o", out_l, "-q")
        dsl = [pydicom.dcmread(f) for f in outputs(out_l)]
        titles = sorted(str(d.DocumentTitle) for d in dsl if d.Modality == "M3D")
        errs = [e for f in outputs(out_l) for e in dciodvfy(f)]
        verdict(rc == 0 and titles == ["liver", "spine"] and not errs,
                "a bare label map: SEG + a surface per label, dciodvfy clean",
                f"exit {rc} {titles} {errs[:1]} {err[-200:]}")

        # ---- de-identified as one set ----
        out_d = os.path.join(tmp, "out_deid")
        rc, err = run("export-dicom", seg_dir, "--source", src, "-o", out_d, "-q", "--deidentify")
        dsd = {f: pydicom.dcmread(f) for f in outputs(out_d)}
        imgs = {str(d.SOPInstanceUID): d for d in dsd.values() if d.Modality == "CT"}
        derived = [d for d in dsd.values() if d.Modality in ("SEG", "M3D")]
        why = []
        if rc != 0 or len(imgs) != len(src_ds) or len(derived) != 3:
            why.append(f"exit {rc}: {len(imgs)} images, {len(derived)} derived {err[-200:]}")
        else:
            i0 = next(iter(imgs.values()))
            for d in derived:
                rs = d.ReferencedSeriesSequence[0]
                refs = {str(i.ReferencedSOPInstanceUID) for i in rs.ReferencedInstanceSequence}
                if rs.SeriesInstanceUID != i0.SeriesInstanceUID or refs != set(imgs):
                    why.append(f"{d.Modality} does not refer to the de-identified series")
                if d.FrameOfReferenceUID != i0.FrameOfReferenceUID or d.StudyInstanceUID != i0.StudyInstanceUID:
                    why.append(f"{d.Modality}: frame of reference / study not the de-identified ones")
            pn = str(a0.get("PatientName", ""))
            for d in dsd.values():
                if str(d.get("PatientIdentityRemoved", "")) != "YES" or (pn and str(d.get("PatientName", "")) == pn):
                    why.append(f"{d.Modality}: identity not removed")
                    break
            if set(imgs) & set(src_ds):
                why.append("original instance UIDs kept")
            for f, d in dsd.items():
                e = dciodvfy(f) if d.Modality in ("SEG", "M3D") else []
                if e:
                    why.append(f"{d.Modality} dciodvfy: {e[0]}")
            rep = json.load(open(os.path.join(out_d, "deidentification.json")))
            if len([f for f in rep["files"] if f["status"] == "written"]) != len(dsd):
                why.append("the report does not list every output")
        verdict(not why, "--deidentify: source, SEG and models de-identified together, references kept",
                "; ".join(why[:3]))

        # ---- refusals ----
        ts = os.path.join(DATA, "ct", "totalseg", "tests", "reference_files")
        if os.path.isdir(os.path.join(ts, "example_ct_dicom")):
            out_r = os.path.join(tmp, "out_refused")
            rc, err = run("export-dicom", os.path.join(ts, "example_seg_dicom.nii.gz"), "--source",
                          os.path.join(ts, "example_ct_dicom"), "-o", out_r, "-q")
            verdict(rc == 2 and "SeriesInstanceUID" in err and not outputs(out_r),
                    "a source without study/series UIDs is refused, nothing written", f"exit {rc} {err[-200:]}")
        # A folder of several series: the one on the label map's grid is chosen
        # (dcmqi's 23x38x3 label map among the 3-slice CT and the 24x38x3 image).
        small = os.path.join(base, "23x38x3", "nrrd", "label.nrrd")
        if os.path.exists(small):
            out_p = os.path.join(tmp, "out_pick")
            rc, err = run("export-dicom", small, "--source", base, "-o", out_p, "--models", "none", "-q")
            want = str(pydicom.dcmread(os.path.join(base, "23x38x3", "image", "IMG0001.dcm"),
                                       stop_before_pixels=True).SeriesInstanceUID)
            got = [str(pydicom.dcmread(f).ReferencedSeriesSequence[0].SeriesInstanceUID)
                   for f in outputs(out_p)]
            verdict(rc == 0 and got == [want], "several series in --source: the one on the label grid",
                    f"exit {rc} {got} {err[-200:]}")
        rc, err = run("export-dicom", seg_dir, "-o", os.path.join(tmp, "x"))
        verdict(rc == 1 and "--source" in err, "no --source: usage error", f"exit {rc}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"export_dicom: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
