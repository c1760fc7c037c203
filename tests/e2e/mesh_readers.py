#!/usr/bin/python3
"""mesh_readers.py - every mesh format we write, read back by readers that
are not ours.

meshtool (tests/tools/meshtool.c) writes the synthetic scene of
tests/unit/mesh_fixture.h: an icosphere (162 vertices, 320 triangles, radius
20 mm at the origin) and a box (8 vertices, 12 triangles, 30..50 x -10..10
x -5..25 mm), so every count and bound below is known exactly, and differs
per axis so a swapped or flipped axis shows:

  assimp info (assimp-utils)  STL binary/ASCII, OBJ, PLY, 3MF, AMF (and the
                              document inside the zipped AMF), 3DS, GLB:
                              triangle and vertex counts, mesh count, bounds
                              (GLB in metres, Y-up: the root node's transform)
  admesh                      STL binary and ASCII (single solid: admesh
                              reads one solid per file): facets, no
                              disconnected, degenerate or flipped ones, 2 parts
  zipfile + ElementTree       3MF package: content types, relationship,
                              core namespace, unit, objects, build items
  VTK (python3-vtk9)          VRML 97 (vtkVRMLImporter), STL, OBJ, PLY and
                              GLB (vtkGLTFReader, which applies the root
                              node: metres, Y-up): triangles, points, bounds
  meshtool info               our own reader on what our writers wrote

A missing tool skips its checks with a one-line reason; the last line is
"mesh_readers: N passed, M failed".
"""
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
import xml.etree.ElementTree as ET

BUILD = os.environ.get("R3D_BUILD", os.path.join(os.path.dirname(__file__), "../../build"))
MESHTOOL = os.path.join(BUILD, "meshtool")
NV, NT = 162 + 8, 320 + 12
LO, HI = (-20.0, -20.0, -20.0), (50.0, 20.0, 25.0)
# GLB: the root node maps patient mm (LPS) to glTF metres: x -> X, z -> Y, -y -> Z
GLB_LO, GLB_HI = (-0.02, -0.02, -0.02), (0.05, 0.025, 0.02)
# assimp's 3DS importer turns 3DS's Z-up into its Y-up: (x, y, z) -> (x, z, -y)
DS_LO, DS_HI = (-20.0, -20.0, -20.0), (50.0, 25.0, 20.0)

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what} {detail}")


def skip(what, why):
    print(f"skip  {what}: {why}")


def run(cmd):
    # errors="replace": admesh prints the 80-byte STL header as a C string,
    # so the first facet's binary floats follow it and need not be UTF-8
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=300)


def write(out, fmt=None):
    r = run([MESHTOOL, "write", out] + ([fmt] if fmt else []))
    check(r.returncode == 0, f"meshtool write {os.path.basename(out)}", r.stderr.strip())
    return r.returncode == 0


def near(a, b, tol):
    return all(abs(x - y) <= tol for x, y in zip(a, b))


def assimp_check(path, meshes, vertices, lo=LO, hi=HI, tol=1e-4):
    """vertices None: not compared (assimp's post-processing of STL's
    unshared corners gives a count that is not the file's)."""
    name = os.path.basename(path)
    r = run(["assimp", "info", path])
    out = r.stdout + r.stderr
    if r.returncode != 0 or "ERROR" in out:
        check(False, f"assimp reads {name}", out.strip()[-300:])
        return

    def num(label):
        m = re.search(label + r":\s+(\d+)", out)
        return int(m.group(1)) if m else None

    def point(label):
        m = re.search(label + r"\s+\(([-\d.e]+) ([-\d.e]+) ([-\d.e]+)\)", out)
        return tuple(float(v) for v in m.groups()) if m else None

    got = (num("Meshes"), num("Vertices") if vertices is not None else None, num("Faces"))
    check(got == (meshes, vertices, NT), f"assimp {name}: meshes/vertices/faces",
          f"got {got}, expected {(meshes, vertices, NT)}")
    pmin, pmax = point("Minimum point"), point("Maximum point")
    check(pmin is not None and pmax is not None and near(pmin, lo, tol) and near(pmax, hi, tol),
          f"assimp {name}: bounds", f"got {pmin} {pmax}, expected {lo} {hi}")


def admesh_check(path):
    name = os.path.basename(path)
    r = run(["admesh", path])
    out = r.stdout

    def field(label):
        m = re.search(re.escape(label) + r"\s*:\s+(\d+)\s+(\d+)?", out)
        return int(m.group(1)) if m else None

    check(r.returncode == 0, f"admesh {name} runs", r.stderr.strip())
    check(field("Number of facets") == NT, f"admesh {name}: {NT} facets",
          f"got {field('Number of facets')}")
    for label in ("Total disconnected facets", "Degenerate facets", "Backwards edges",
                  "Facets reversed", "Normals fixed"):
        check(field(label) == 0, f"admesh {name}: {label} = 0", f"got {field(label)}")
    check(field("Number of parts") == 2, f"admesh {name}: 2 parts",
          f"got {field('Number of parts')}")
    m = re.search(r"Min X =\s*([-\d.]+), Max X =\s*([-\d.]+)", out)
    check(m is not None and near((float(m.group(1)), float(m.group(2))), (LO[0], HI[0]), 1e-4),
          f"admesh {name}: x range", m.group(0) if m else "missing")


def threemf_check(path):
    name = os.path.basename(path)
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        check({"[Content_Types].xml", "_rels/.rels", "3D/3dmodel.model"} <= names,
              f"3MF {name}: parts", str(names))
        ct = ET.fromstring(z.read("[Content_Types].xml"))
        ns_ct = "{http://schemas.openxmlformats.org/package/2006/content-types}"
        types = {d.get("Extension"): d.get("ContentType") for d in ct.iter(ns_ct + "Default")}
        check(types.get("model") == "application/vnd.ms-package.3dmanufacturing-3dmodel+xml"
              and types.get("rels") ==
              "application/vnd.openxmlformats-package.relationships+xml",
              f"3MF {name}: content types", str(types))
        rels = ET.fromstring(z.read("_rels/.rels"))
        ns_r = "{http://schemas.openxmlformats.org/package/2006/relationships}"
        rel = [(r.get("Target"), r.get("Type")) for r in rels.iter(ns_r + "Relationship")]
        check(("/3D/3dmodel.model", "http://schemas.microsoft.com/3dmanufacturing/2013/01/3dmodel")
              in rel, f"3MF {name}: start part relationship", str(rel))
        model = ET.fromstring(z.read("3D/3dmodel.model"))
        ns = "{http://schemas.microsoft.com/3dmanufacturing/core/2015/02}"
        check(model.tag == ns + "model", f"3MF {name}: core namespace", model.tag)
        check(model.get("unit") == "millimeter", f"3MF {name}: unit millimeter",
              str(model.get("unit")))
        objs = list(model.iter(ns + "object"))
        check([o.get("name") for o in objs] == ["skull", "肝脏"], f"3MF {name}: object names",
              str([o.get("name") for o in objs]))
        nv = sum(len(list(o.iter(ns + "vertex"))) for o in objs)
        tris = [t for o in objs for t in o.iter(ns + "triangle")]
        check((nv, len(tris)) == (NV, NT), f"3MF {name}: vertex/triangle counts", str((nv, len(tris))))
        ok = True
        for o in objs:
            n = len(list(o.iter(ns + "vertex")))
            for t in o.iter(ns + "triangle"):
                v = [int(t.get(k)) for k in ("v1", "v2", "v3")]
                ok &= all(0 <= i < n for i in v) and len(set(v)) == 3
        check(ok, f"3MF {name}: triangle indices distinct and in range")
        bases = [b.get("displaycolor") for b in model.iter(ns + "base")]
        check(bases == ["#E6DCC8", "#B43C28"], f"3MF {name}: base material colours", str(bases))
        items = [i.get("objectid") for i in model.iter(ns + "item")]
        check(sorted(items) == sorted(o.get("id") for o in objs), f"3MF {name}: build items",
              str(items))


def vtk_vrml_check(path):
    try:
        import vtk
    except ImportError:
        skip("VTK VRML", "python3-vtk9 not installed")
        return
    imp = vtk.vtkVRMLImporter()
    imp.SetFileName(path)
    imp.Update()
    actors = imp.GetRenderer().GetActors()
    actors.InitTraversal()
    tris, bounds = 0, [1e30, -1e30] * 3
    for _ in range(actors.GetNumberOfItems()):
        a = actors.GetNextActor()
        pd = a.GetMapper().GetInput()
        tris += pd.GetNumberOfPolys()
        b = pd.GetBounds()
        for j in range(3):
            bounds[2 * j] = min(bounds[2 * j], b[2 * j])
            bounds[2 * j + 1] = max(bounds[2 * j + 1], b[2 * j + 1])
    check(actors.GetNumberOfItems() == 2, "VTK VRML: 2 shapes", str(actors.GetNumberOfItems()))
    check(tris == NT, f"VTK VRML: {NT} triangles", str(tris))
    check(near(bounds[0::2], LO, 1e-4) and near(bounds[1::2], HI, 1e-4), "VTK VRML: bounds",
          str(bounds))


def vtk_reader_check(cls, path, npts, lo=LO, hi=HI, tol=1e-4):
    """A VTK reader's triangles, points and bounds over every block it gives."""
    try:
        import vtk
    except ImportError:
        skip(f"VTK {cls}", "python3-vtk9 not installed")
        return
    name = os.path.basename(path)
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
    cells = sum(b.GetNumberOfCells() for b in blocks)
    pts = sum(b.GetNumberOfPoints() for b in blocks)
    bb = [b.GetBounds() for b in blocks if b.GetNumberOfPoints()]
    blo = [min(b[2 * j] for b in bb) for j in range(3)] if bb else None
    bhi = [max(b[2 * j + 1] for b in bb) for j in range(3)] if bb else None
    check(cells == NT and (npts is None or pts == npts), f"VTK {cls} {name}: triangles/points",
          f"got {cells}/{pts}, expected {NT}/{npts}")
    check(bb and near(blo, lo, tol) and near(bhi, hi, tol), f"VTK {cls} {name}: bounds",
          f"got {blo} {bhi}")


def glb_check(path):
    with open(path, "rb") as f:
        b = f.read()
    magic, ver, length = struct.unpack_from("<4sII", b)
    check((magic, ver, length) == (b"glTF", 2, len(b)), "GLB header", str((magic, ver, length)))
    jl, jt = struct.unpack_from("<II", b, 12)
    g = json.loads(b[20:20 + jl])
    check(jt == 0x4E4F534A and g["asset"]["version"] == "2.0", "GLB JSON chunk and asset 2.0")
    acc = g["accessors"]
    pos = [acc[p["primitives"][0]["attributes"]["POSITION"]] for p in g["meshes"]]
    lo = [min(a["min"][j] for a in pos) for j in range(3)]
    hi = [max(a["max"][j] for a in pos) for j in range(3)]
    check(near(lo, LO, 1e-5) and near(hi, HI, 1e-5), "GLB POSITION min/max in mm", f"{lo} {hi}")
    for p in g["meshes"]:
        n = acc[p["primitives"][0]["attributes"]["NORMAL"]]
        check(n["count"] == acc[p["primitives"][0]["attributes"]["POSITION"]]["count"],
              f"GLB {p['name']}: a normal per vertex")


def main():
    if not os.path.exists(MESHTOOL):
        print(f"skip  everything: {MESHTOOL} not built")
        print("mesh_readers: 0 passed, 1 failed")
        return 1
    tmp = tempfile.mkdtemp(prefix="mesh_readers.")
    try:
        P = lambda n: os.path.join(tmp, n)
        have_assimp = shutil.which("assimp") is not None
        have_admesh = shutil.which("admesh") is not None
        if not have_assimp:
            skip("assimp checks", "assimp (assimp-utils) not installed")
        if not have_admesh:
            skip("admesh checks", "admesh not installed")
        # format, file, meshtool format word, assimp (meshes, vertices) or None
        cases = [
            ("STL binary", "scene.stl", None, (1, None)),
            ("STL ASCII", "scene_ascii.stl", "stl-ascii", (2, None)),
            ("OBJ", "scene.obj", None, (2, NV)),
            ("PLY", "scene.ply", None, (1, NV)),
            ("3MF", "scene.3mf", None, (2, NV)),
            ("AMF", "scene.amf", None, (2, NV)),
            ("AMF zip", "scene.amf.zip", None, None),
            ("VRML", "scene.wrl", None, None),
            ("3DS", "scene.3ds", None, (2, NV)),
            ("GLB", "scene.glb", None, (2, NV)),
        ]
        for what, fname, word, asm in cases:
            if not write(P(fname), word):
                continue
            if asm and have_assimp:
                if what == "GLB":
                    assimp_check(P(fname), *asm, lo=GLB_LO, hi=GLB_HI, tol=1e-7)
                elif what == "3DS":
                    assimp_check(P(fname), *asm, lo=DS_LO, hi=DS_HI)
                else:
                    assimp_check(P(fname), *asm)
        if have_admesh:
            admesh_check(P("scene.stl"))
            # admesh reads one solid per ASCII file; ours has one per object,
            # so admesh gets the merged scene as a single-solid ASCII STL
            r = run([MESHTOOL, "roundtrip", P("scene.stl"), P("single_ascii.stl"), "stl-ascii"])
            check(r.returncode == 0, "meshtool roundtrip STL -> single-solid ASCII STL", r.stderr)
            admesh_check(P("single_ascii.stl"))
        threemf_check(P("scene.3mf"))
        with zipfile.ZipFile(P("scene.amf.zip")) as z:
            check(z.namelist() == ["scene.amf"], "AMF zip: one entry scene.amf", str(z.namelist()))
            inner = z.read("scene.amf")
        with open(P("scene.amf"), "rb") as f:
            check(inner == f.read(), "AMF zip holds the plain AMF document")
        if have_assimp:
            with open(P("unzipped.amf"), "wb") as f:
                f.write(inner)
            assimp_check(P("unzipped.amf"), 2, NV)
        else:
            skip("assimp AMF zip", "assimp not installed")
        vtk_vrml_check(P("scene.wrl"))
        vtk_reader_check("vtkSTLReader", P("scene.stl"), NV)  # merges equal corners
        vtk_reader_check("vtkOBJReader", P("scene.obj"), None)
        vtk_reader_check("vtkPLYReader", P("scene.ply"), NV)
        vtk_reader_check("vtkGLTFReader", P("scene.glb"), NV, lo=GLB_LO, hi=GLB_HI, tol=1e-7)
        glb_check(P("scene.glb"))
        # our reader on our files: objects kept where the format keeps them
        for fname, objs in (("scene.stl", 1), ("scene_ascii.stl", 2), ("scene.obj", 2),
                            ("scene.ply", 2)):
            r = run([MESHTOOL, "info", P(fname)])
            lines = [l for l in r.stdout.splitlines() if l.startswith("object ")]
            nt = sum(int(l.split()[5]) for l in lines)
            check(r.returncode == 0 and len(lines) == objs and nt == NT,
                  f"meshtool info {fname}: {objs} objects, {NT} triangles", r.stdout + r.stderr)
        # round trip through our reader, then assimp on the re-written file
        r = run([MESHTOOL, "roundtrip", P("scene.obj"), P("again.3mf")])
        check(r.returncode == 0, "meshtool roundtrip OBJ -> 3MF", r.stderr)
        if r.returncode == 0 and have_assimp:
            assimp_check(P("again.3mf"), 2, NV)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"mesh_readers: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
