#!/usr/bin/python3
# ctest: release-only (every format of four real maps through five readers; the
# writers run under ASan in mesh_cli.sh and the unit tests)
"""mesh_real_readback.py - `recon3d mesh` on real label maps, every output
format read back by readers that are not ours.

Label maps (../shared/data):
  airway   MedMPD LIDC Patient1 bronchial tree (0.55 x 0.55 x 0.7 mm)
  vessels  MedMPD liver Patient1 hepatic vein (0.78 x 0.78 x 5 mm: the
           thick-slice smoothing)
  nodule   MedMPD LIDC Patient1 nodule (55 voxels)
  organs   TotalSegmentator example_seg (3 mm, 41 labels: organs, vessels,
           vertebrae, ribs) - one multi-object file

Each map is first cut to its labels' box plus 3 voxels (same surfaces, same
patient coordinates, ten times less to read per run). For each map the CLI
writes STL, OBJ, PLY, 3MF, AMF, zipped AMF, VRML, 3DS and GLB. The binary STL's triangle count (read with struct) is the
reference N and its corner bounds the reference box, and:
  assimp info     STL, OBJ, PLY, 3MF, AMF, the AMF inside the zip, 3DS, GLB:
                  faces == N; bounds == the STL's (GLB in metres with Y up:
                  (x, z, -y) / 1000; 3DS through assimp's Z-up fix: (x, z, -y))
  admesh          the STL: nothing to fix (no disconnected, degenerate,
                  flipped or reversed facets)
  3MF rules       content types, root relationship, core namespace,
                  unit="millimeter", one object per label, each with pid and
                  pindex into one basematerials group with a #RRGGBB colour
                  per object, triangles in range and distinct, a build item
                  per object, sum of triangles == N
  AMF zip         one entry, XML parses, triangles == N, one object per label
  VTK             vtkSTLReader, vtkOBJReader, vtkPLYReader, vtkGLTFReader,
                  vtkVRMLImporter: triangles == N, bounds == the STL's
  shared          on the 41-label map, before and after --decimate 0.3: the
                  positions two objects share == the label-label voxel faces
  nibabel         the STL's bounds against the label map's own extent in
                  patient LPS mm (voxel centres of the labels through the
                  affine): each face of the box within one voxel of the
                  outermost centres, half a voxel outside them
Prints "SKIP: <reason>" and exits 0 without ../shared/data; a missing tool
skips its checks with a line saying so. Last line:
"mesh_real_readback: N passed, M failed".
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import xml.etree.ElementTree as ET

import numpy as np

R = os.environ.get("RECON3D", "build/recon3d")
DATA = os.environ.get("R3D_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
CASES = [
    ("airway", "masks/medmpd/Data/Lungs/Patient1/bronchialTree.nii.gz"),
    ("vessels", "masks/medmpd/Data/Liver/Patient1/hepaticVein.nii.gz"),
    ("nodule", "masks/medmpd/Data/Lungs/Patient1/nodule.nii.gz"),
    ("organs", "ct/totalseg/tests/reference_files/example_seg.nii.gz"),
]
AMF_ASSIMP_MAX = 5000  # assimp's AMF importer is slow: 62 s for 161k triangles, 8 s for 36k
FORMATS = ["stl", "obj", "ply", "3mf", "amf", "amf.zip", "wrl", "3ds", "glb"]

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what} {detail}")


def run(cmd):
    # errors="replace": admesh prints the 80-byte STL header as a C string,
    # so the first facet's binary floats follow it and need not be UTF-8
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=600)


def near(a, b, tol):
    return a is not None and b is not None and all(abs(x - y) <= tol for x, y in zip(a, b))


def stl_binary(path):
    """Triangle count and corner bounds, straight from the bytes."""
    with open(path, "rb") as f:
        b = f.read()
    n = struct.unpack_from("<I", b, 80)[0]
    rec = np.frombuffer(b, dtype=np.dtype([("n", "<f4", 3), ("v", "<f4", (3, 3)), ("a", "<u2")]),
                        count=n, offset=84)
    pts = rec["v"].reshape(-1, 3).astype(float)
    return n, pts.min(axis=0), pts.max(axis=0)


def assimp_info(path):
    r = run(["assimp", "info", path])
    out = r.stdout + r.stderr
    if r.returncode != 0 or "ERROR" in out:
        return None, None, None, out.strip()[-300:]

    def point(label):
        m = re.search(label + r"\s+\(([-\d.e+]+) ([-\d.e+]+) ([-\d.e+]+)\)", out)
        return tuple(float(v) for v in m.groups()) if m else None

    m = re.search(r"Faces:\s+(\d+)", out)
    return (int(m.group(1)) if m else None), point("Minimum point"), point("Maximum point"), ""


def vtk_read(cls, path):
    import vtk
    if cls == "vtkVRMLImporter":
        imp = vtk.vtkVRMLImporter()
        imp.SetFileName(path)
        imp.Update()
        actors = imp.GetRenderer().GetActors()
        actors.InitTraversal()
        blocks = [actors.GetNextActor().GetMapper().GetInput()
                  for _ in range(actors.GetNumberOfItems())]
    else:
        r = getattr(vtk, cls)()
        r.SetFileName(path)
        r.Update()
        out = r.GetOutput()
        blocks = []
        if out.IsA("vtkCompositeDataSet"):
            it = out.NewIterator()
            it.InitTraversal()
            while not it.IsDoneWithTraversal():
                blocks.append(it.GetCurrentDataObject())
                it.GoToNextItem()
        else:
            blocks = [out]
    cells = sum(b.GetNumberOfPolys() if b.IsA("vtkPolyData") else b.GetNumberOfCells()
                for b in blocks)
    bb = [b.GetBounds() for b in blocks if b.GetNumberOfPoints()]
    lo = [min(b[2 * j] for b in bb) for j in range(3)] if bb else None
    hi = [max(b[2 * j + 1] for b in bb) for j in range(3)] if bb else None
    return cells, lo, hi


def threemf_check(path, name, n, nlabels):
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        check({"[Content_Types].xml", "_rels/.rels", "3D/3dmodel.model"} <= names,
              f"{name}.3mf: package parts", str(names))
        ct = ET.fromstring(z.read("[Content_Types].xml"))
        ns_ct = "{http://schemas.openxmlformats.org/package/2006/content-types}"
        types = {d.get("Extension"): d.get("ContentType") for d in ct.iter(ns_ct + "Default")}
        check(types.get("model") == "application/vnd.ms-package.3dmanufacturing-3dmodel+xml" and
              types.get("rels") == "application/vnd.openxmlformats-package.relationships+xml",
              f"{name}.3mf: content types", str(types))
        rels = ET.fromstring(z.read("_rels/.rels"))
        ns_r = "{http://schemas.openxmlformats.org/package/2006/relationships}"
        rel = [(r.get("Target"), r.get("Type")) for r in rels.iter(ns_r + "Relationship")]
        check(("/3D/3dmodel.model", "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel")
              in rel, f"{name}.3mf: start part relationship", str(rel))
        model = ET.fromstring(z.read("3D/3dmodel.model"))
    ns = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
    check(model.tag == ns + "model" and model.get("unit") == "millimeter",
          f"{name}.3mf: core namespace, unit millimeter", f"{model.tag} {model.get('unit')}")
    groups = list(model.iter(ns + "basematerials"))
    bases = [b for g in groups for b in g.iter(ns + "base")]
    objs = list(model.iter(ns + "object"))
    check(len(objs) == nlabels, f"{name}.3mf: one object per label ({nlabels})", str(len(objs)))
    gid = groups[0].get("id") if len(groups) == 1 else None
    colours = all(re.fullmatch(r"#[0-9A-F]{6}([0-9A-F]{2})?", b.get("displaycolor") or "")
                  for b in bases)
    refs = all(o.get("pid") == gid and o.get("pindex") is not None and
               0 <= int(o.get("pindex")) < len(bases) for o in objs)
    check(gid is not None and colours and refs and len(bases) == len(objs),
          f"{name}.3mf: pid/pindex colours per object",
          f"{len(groups)} groups, {len(bases)} bases, refs ok {refs}, colours ok {colours}")
    ntri, ok = 0, True
    for o in objs:
        nv = len(list(o.iter(ns + "vertex")))
        for t in o.iter(ns + "triangle"):
            v = (int(t.get("v1")), int(t.get("v2")), int(t.get("v3")))
            ok &= all(0 <= i < nv for i in v) and len(set(v)) == 3
            ntri += 1
    check(ok and ntri == n, f"{name}.3mf: triangles in range, distinct, {n} in all", str(ntri))
    items = sorted(i.get("objectid") for i in model.iter(ns + "item"))
    check(items == sorted(o.get("id") for o in objs), f"{name}.3mf: a build item per object")


def amf_zip_check(path, tmp, name, n, nlabels):
    with zipfile.ZipFile(path) as z:
        entries = z.namelist()
        check(len(entries) == 1 and entries[0].endswith(".amf"), f"{name}.amf.zip: one .amf entry",
              str(entries))
        inner = z.read(entries[0])
    doc = ET.fromstring(inner)
    objs = doc.findall("object")
    ntri = sum(len(o.findall(".//triangle")) for o in objs)
    check(doc.tag == "amf" and doc.get("unit") == "millimeter" and len(objs) == nlabels and
          ntri == n, f"{name}.amf.zip: XML, millimetre, {nlabels} objects, {n} triangles",
          f"{doc.tag} {doc.get('unit')} {len(objs)} {ntri}")
    out = os.path.join(tmp, name + ".unzipped.amf")
    with open(out, "wb") as f:
        f.write(inner)
    return out


def crop(path, out):
    """The label map cut to its labels' box plus 3 voxels (never past its
    own edges), uncompressed: the same surfaces in the same patient
    coordinates (the affine follows the cut), without reading and gunzipping
    the whole scan for each of the ten runs (the airway map is 84 M voxels
    for 0.2 M labelled ones)."""
    import nibabel as nib
    img = nib.load(path)
    a = np.asanyarray(img.dataobj)
    idx = np.argwhere(a != 0)
    lo = np.maximum(idx.min(axis=0) - 3, 0)
    hi = np.minimum(idx.max(axis=0) + 4, a.shape[:3])
    sub = img.slicer[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
    nib.save(sub, out)
    return out


def mask_extent(path, labels=None):
    """Outermost label voxel centres in LPS mm, and the patient extent of
    one voxel step along each axis (sum of |column| over the voxel axes)."""
    import nibabel as nib
    img = nib.load(path)
    a = np.asanyarray(img.dataobj)
    idx = np.argwhere(a != 0 if labels is None else np.isin(a, labels)).astype(float)
    aff = img.affine.copy()
    aff[:2] *= -1  # RAS -> LPS
    # the convex hull's extreme points are among the corners of the index box
    # only for axis-aligned grids; take every centre to be exact
    pts = idx @ aff[:3, :3].T + aff[:3, 3]
    step = np.abs(aff[:3, :3]).sum(axis=1)
    return pts.min(axis=0), pts.max(axis=0), step


def shared_boundary_check(obj_path, src, name):
    """Touching labels share their boundary vertices: every 6-neighbour pair
    of voxels with two different non-zero labels is one grid edge, and
    both labels' surfaces have a vertex on it at exactly the same place;
    so the positions found in two objects of the OBJ (%.9g round-trips
    float32) must be exactly as many as those voxel pairs (nibabel)."""
    import nibabel as nib
    objs, cur = [], None
    with open(obj_path) as f:
        for line in f:
            if line.startswith("o "):
                cur = []
                objs.append(cur)
            elif line.startswith("v ") and cur is not None:
                cur.append(line.split()[1:4])
    seen = {}
    for k, o in enumerate(objs):
        for p in set(map(tuple, o)):
            seen[p] = seen.get(p, 0) + 1
    shared = sum(1 for c in seen.values() if c >= 2)
    a = np.asanyarray(nib.load(src).dataobj)
    pairs = 0
    for ax in range(3):
        x = np.take(a, range(a.shape[ax] - 1), axis=ax)
        y = np.take(a, range(1, a.shape[ax]), axis=ax)
        pairs += int(np.count_nonzero((x != y) & (x > 0) & (y > 0)))
    check(pairs > 0 and shared == pairs,
          f"{name}: touching labels share their boundary vertices ({pairs} label-label voxel "
          f"faces, {shared} shared positions)")


def main():
    if not os.path.exists(os.path.join(DATA, CASES[0][1])):
        print(f"SKIP: no ../shared/data masks at {DATA}")
        return 0
    have = {t: shutil.which(t) is not None for t in ("assimp", "admesh")}
    for t, h in have.items():
        if not h:
            print(f"skip  {t} checks: {t} not installed")
    try:
        import vtk  # noqa: F401
        have_vtk = True
    except ImportError:
        have_vtk = False
        print("skip  VTK checks: python3-vtk9 not installed")
    tmp = tempfile.mkdtemp(prefix="mesh_real.")
    try:
        for name, rel in CASES:
            src = os.path.join(DATA, rel)
            if not os.path.exists(src):
                print(f"skip  {name}: {rel} missing")
                continue
            src = crop(src, os.path.join(tmp, f"{name}.nii"))
            out = {}
            for ext in FORMATS:
                p = os.path.join(tmp, f"{name}.{ext}")
                r = run([R, "mesh", src, "-o", p, "--quiet"])
                check(r.returncode == 0 and os.path.getsize(p) > 0, f"recon3d mesh {name} -> .{ext}",
                      r.stderr.strip()[-300:])
                out[ext] = p
            n, lo, hi = stl_binary(out["stl"])
            nlabels = len(re.findall(rb"\no ", open(out["obj"], "rb").read()))
            print(f"      {name}: {n} triangles, {nlabels} object(s), "
                  f"LPS box {np.round(lo, 2).tolist()} .. {np.round(hi, 2).tolist()} mm")
            # the label map's own extent (nibabel), in patient LPS mm
            mlo, mhi, step = mask_extent(src)
            ok = all(mlo - 0.5 * step - 1.01 * 0.5 * step <= lo) and all(lo <= mlo) and \
                all(hi <= mhi + 0.5 * step + 1.01 * 0.5 * step) and all(mhi <= hi)
            check(ok, f"{name}: STL box within half a voxel of the label map's (nibabel, LPS)",
                  f"mesh {lo} {hi}, centres {mlo} {mhi}, voxel {step}")
            if have["assimp"]:
                for ext in ("stl", "obj", "ply", "3mf", "amf", "3ds", "glb"):
                    if ext == "amf" and n > AMF_ASSIMP_MAX:
                        print(f"skip  assimp {name}.amf: {n} triangles, too many for assimp's slow "
                              f"AMF importer (ElementTree reads it below)")
                        continue
                    f, a, b, err = assimp_info(out[ext])
                    if ext == "glb":
                        want_lo, want_hi, tol = (lo[0] / 1e3, lo[2] / 1e3, -hi[1] / 1e3), \
                            (hi[0] / 1e3, hi[2] / 1e3, -lo[1] / 1e3), 1e-5
                    elif ext == "3ds":
                        want_lo, want_hi, tol = (lo[0], lo[2], -hi[1]), (hi[0], hi[2], -lo[1]), 1e-2
                    else:
                        want_lo, want_hi, tol = lo, hi, 1e-2
                    check(f == n and near(a, want_lo, tol) and near(b, want_hi, tol),
                          f"assimp {name}.{ext}: {n} faces, bounds",
                          f"got {f} {a} {b} {err}")
            if have["admesh"]:
                r = run(["admesh", out["stl"]])
                bad = {}
                for label in ("Number of facets", "Total disconnected facets", "Degenerate facets",
                              "Edges fixed", "Facets removed", "Facets added", "Facets reversed",
                              "Backwards edges", "Normals fixed"):
                    m = re.search(re.escape(label) + r"\s*:\s+(\d+)", r.stdout)
                    bad[label] = int(m.group(1)) if m else None
                nf = bad.pop("Number of facets")
                check(r.returncode == 0 and nf == n and all(v == 0 for v in bad.values()),
                      f"admesh {name}.stl: {n} facets, nothing to fix", f"{nf} {bad}")
            threemf_check(out["3mf"], name, n, nlabels)
            if nlabels > 1:
                shared_boundary_check(out["obj"], src, name)
                # decimation keeps the shared vertices (r3d_scene_decimate)
                p = os.path.join(tmp, f"{name}.decimated.obj")
                r = run([R, "mesh", src, "-o", p, "--decimate", "0.3", "--quiet"])
                check(r.returncode == 0, f"recon3d mesh {name} --decimate 0.3", r.stderr[-300:])
                if r.returncode == 0:
                    shared_boundary_check(p, src, name + " decimated to 30 %")
            doc = ET.parse(out["amf"]).getroot()
            check(len(doc.findall("object")) == nlabels and len(doc.findall(".//triangle")) == n,
                  f"{name}.amf: ElementTree reads {nlabels} objects, {n} triangles")
            inner = amf_zip_check(out["amf.zip"], tmp, name, n, nlabels)
            if have["assimp"] and n <= AMF_ASSIMP_MAX:
                f, a, b, err = assimp_info(inner)
                check(f == n and near(a, lo, 1e-2) and near(b, hi, 1e-2),
                      f"assimp {name}.amf.zip (inner document): {n} faces, bounds",
                      f"got {f} {a} {b} {err}")
            if have_vtk:
                for cls, ext, scale in (("vtkSTLReader", "stl", None), ("vtkOBJReader", "obj", None),
                                        ("vtkPLYReader", "ply", None),
                                        ("vtkVRMLImporter", "wrl", None),
                                        ("vtkGLTFReader", "glb", "glb")):
                    c, a, b = vtk_read(cls, out[ext])
                    if scale == "glb":
                        want_lo = (lo[0] / 1e3, lo[2] / 1e3, -hi[1] / 1e3)
                        want_hi = (hi[0] / 1e3, hi[2] / 1e3, -lo[1] / 1e3)
                        tol = 1e-5
                    else:
                        want_lo, want_hi, tol = lo, hi, 1e-2
                    check(c == n and near(a, want_lo, tol) and near(b, want_hi, tol),
                          f"VTK {cls} {name}.{ext}: {n} triangles, bounds", f"got {c} {a} {b}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"mesh_real_readback: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
