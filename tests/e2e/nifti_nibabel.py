"""nifti_nibabel.py - golden test of the NIfTI writer and the NIfTI / NRRD
readers against nibabel (the reference Python reader), through the test
tool niftool ($R3D_BUILD/niftool).

Cases:
  synth   every dtype x NIfTI-1/2 x .nii/.nii.gz, plus 4-D, a left-handed
          grid (qfac -1) and a sheared grid (sform only): nibabel must read
          the values niftool put in (recomputed here) and the affine.
  nifti   .nii / .nii.gz under $R3D_DATA, two of every distinct header
          signature (type, dtype, rank, q/sform codes, scaling, byte
          order, compression): `niftool copy` must give a
          file whose voxels, scaling and affine equal nibabel's reading of
          the original; files nibabel reads but we refuse (5-D, complex)
          must fail with a message, never crash.
  nrrd    every .nrrd / .nhdr under $R3D_DATA: expectations come from
          parsing the NRRD header here by hand (no pynrrd): sizes, type,
          endian, encoding, space directions and origin.
  inv3    Debian's Cranium.inv3 (package invesalius-examples), if installed:
          image and mask label map against Python's tarfile + plistlib
          reading of the project and the geometry convention documented in
          src/io/inv3_load.c.
Run by CTest with /usr/bin/python3 (Debian's, with nibabel and numpy).
Prints "nifti_nibabel: N passed, M failed" and exits 1 on any failure.
Without $R3D_DATA only the synthetic cases run (one line says so).
"""
import gzip
import os
import plistlib
import tarfile
import subprocess
import sys
import tempfile

import numpy as np

try:
    import nibabel as nib
except ImportError:
    print("nifti_nibabel: skipped: nibabel is not installed for", sys.executable)
    sys.exit(0)

BUILD = os.environ.get("R3D_BUILD", "")
DATA = os.environ.get("R3D_DATA", "")
TOOL = os.path.join(BUILD, "niftool")
passed = 0
failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def run(*args):
    return subprocess.run([TOOL] + [str(a) for a in args], capture_output=True, text=True)


# ---- synthetic volumes ---------------------------------------------------

DTYPES = {
    "uint8": np.uint8, "int8": np.int8, "int16": np.int16, "uint16": np.uint16,
    "int32": np.int32, "uint32": np.uint32, "float32": np.float32,
    "float64": np.float64, "rgb24": None,
}


def synth_expected(name, shape):
    """The values niftool's synth_value() writes, in NIfTI (Fortran) order."""
    n = np.arange(int(np.prod(shape)), dtype=np.int64)
    if name == "uint8":
        v = (n * 7 + 3) % 256
    elif name == "int8":
        v = (n * 7 + 3) % 256 - 128
    elif name == "int16":
        v = (n * 263) % 65536 - 32768
    elif name == "uint16":
        v = (n * 263) % 65536
    elif name == "int32":
        v = n * 100003 % 2000000000 - 1000000000
    elif name == "uint32":
        v = n * 100003 % 4000000000
    elif name == "float32":
        v = (n * 0.25 - 100.0).astype(np.float32)
    elif name == "float64":
        v = n / 3.0 - 1000.0
    else:
        # channels interleaved per voxel, voxel index i fastest
        v = np.stack([(n * 5 + 50 * c) % 256 for c in range(3)], axis=-1)
        nd = len(shape)
        return v.reshape(tuple(reversed(shape)) + (3,)).transpose(
            list(reversed(range(nd))) + [nd])
    return v.reshape(shape, order="F")


def synth_affine(left, shear):
    a = 0.3
    m = np.array([[0.9 * np.cos(a), -0.8 * np.sin(a), 0, -50.25],
                  [0.9 * np.sin(a) * 0.6, 0.8 * np.cos(a) * 0.6, -2.5 * 0.8, 20.5],
                  [0.9 * np.sin(a) * 0.8, 0.8 * np.cos(a) * 0.8, 2.5 * 0.6, -30.125],
                  [0, 0, 0, 1]])
    if left:
        m[:3, 0] = -m[:3, 0]
    if shear:
        m[0, 2] += 0.4
    return m


def synth_case(tmp, dtype, v2, gz, four_d=False, left=False, shear=False):
    ext = ".nii.gz" if gz else ".nii"
    tag = f"{dtype} v{2 if v2 else 1}{ext}{' 4d' if four_d else ''}" \
          f"{' left' if left else ''}{' shear' if shear else ''}"
    out = os.path.join(tmp, "synth" + ext)
    args = ["synth", out, dtype]
    args += ["--v2"] if v2 else []
    args += ["--4d"] if four_d else []
    args += ["--left"] if left else []
    args += ["--shear"] if shear else []
    r = run(*args)
    if r.returncode != 0:
        check(False, f"synth {tag}: niftool failed: {r.stderr.strip()}")
        return
    img = nib.load(out)
    hdr = img.header
    shape = (13, 11, 7, 3) if four_d else (13, 11, 7)
    ok_version = isinstance(img, nib.Nifti2Image) if v2 else \
        isinstance(img, nib.Nifti1Image) and not isinstance(img, nib.Nifti2Image)
    check(ok_version, f"synth {tag}: NIfTI version")
    check(img.shape == shape, f"synth {tag}: shape {img.shape} != {shape}")
    data = np.asanyarray(img.dataobj)
    if dtype == "rgb24":
        check(hdr["datatype"] == 128, f"synth {tag}: datatype {hdr['datatype']} != 128")
        got = np.stack([data["R"], data["G"], data["B"]], axis=-1)
        want = synth_expected(dtype, shape)
        check(np.array_equal(got, want), f"synth {tag}: RGB values")
    else:
        check(data.dtype == np.dtype(DTYPES[dtype]),
              f"synth {tag}: dtype {data.dtype} != {dtype}")
        want = synth_expected(dtype, shape)
        check(np.array_equal(data, want.astype(data.dtype)), f"synth {tag}: voxel values")
    want_aff = synth_affine(left, shear)
    tol = 0 if v2 else 1e-5  # NIfTI-1 keeps float32
    check(np.allclose(img.affine, want_aff, rtol=0, atol=tol + 1e-12),
          f"synth {tag}: affine\n{img.affine}\n!=\n{want_aff}")
    check(int(hdr["sform_code"]) == 1, f"synth {tag}: sform_code {hdr['sform_code']}")
    if shear:
        check(int(hdr["qform_code"]) == 0, f"synth {tag}: sheared affine has a qform")
    else:
        check(int(hdr["qform_code"]) == 1, f"synth {tag}: qform_code {hdr['qform_code']}")
        q = hdr.get_qform()
        check(np.allclose(q, want_aff, atol=1e-5), f"synth {tag}: qform\n{q}\n!=\n{want_aff}")
        check(float(hdr["pixdim"][0]) == (-1.0 if left else 1.0), f"synth {tag}: qfac")
    zooms = np.sqrt((want_aff[:3, :3] ** 2).sum(axis=0))
    check(np.allclose(hdr.get_zooms()[:3], zooms, atol=1e-5), f"synth {tag}: pixdim")
    if four_d:
        check(abs(float(hdr.get_zooms()[3]) - 2.5) < 1e-6, f"synth {tag}: time spacing")
    check(hdr.get_xyzt_units() == ("mm", "sec"), f"synth {tag}: units {hdr.get_xyzt_units()}")
    check(bytes(hdr["descrip"]).startswith(b"niftool synth"), f"synth {tag}: descrip")


# ---- NIfTI files in the shared data ---------------------------------------

def nib_raw(img):
    """Stored values (no scaling) and the slope/intercept nibabel applies."""
    prox = img.dataobj
    raw = np.asanyarray(prox.get_unscaled()) if hasattr(prox, "get_unscaled") \
        else np.asanyarray(prox)
    slope = prox.slope if hasattr(prox, "slope") else 1.0
    inter = prox.inter if hasattr(prox, "inter") else 0.0
    return raw, float(slope), float(inter)


def same_values(want, got):
    """Equal values, NaN matching NaN; 64-bit integers that were narrowed to
    int32 or float64 must convert back exactly."""
    if want.dtype.names is not None:
        return np.array_equal(want, got)
    if want.dtype.kind == "f":
        return bool(((want == got) | (np.isnan(want) & np.isnan(got))).all())
    if want.dtype.itemsize == 8 and want.dtype.kind in "iu" and got.dtype != want.dtype:
        return np.array_equal(want, got.astype(want.dtype))
    return np.array_equal(want, got)


SUPPORTED = {np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32,
             np.float32, np.float64, np.int64, np.uint64}


def nifti_case(tmp, path):
    rel = os.path.relpath(path, DATA)
    try:
        src = nib.load(path)
        raw, slope, inter = nib_raw(src)
    except Exception as e:  # nibabel itself refuses: we must fail cleanly
        r = run("info", path)
        check(r.returncode == 1 and r.stderr.strip(),
              f"{rel}: nibabel refuses ({e}); niftool should fail with a message")
        return
    nd = len(src.shape)
    rgb = raw.dtype.names == ("R", "G", "B")
    supported = (rgb or (raw.dtype.names is None and raw.dtype.type in SUPPORTED)) and \
        (nd <= 4 or all(s == 1 for s in src.shape[4:])) and \
        isinstance(src, (nib.Nifti1Image, nib.Nifti2Image))
    out = os.path.join(tmp, "copy.nii.gz")
    r = run("copy", path, out)
    if not supported:
        check(r.returncode == 1 and "niftool:" in r.stderr,
              f"{rel}: unsupported ({raw.dtype}, shape {src.shape}) should fail cleanly, "
              f"got rc {r.returncode}: {r.stderr.strip()}")
        return
    if r.returncode != 0:
        check(False, f"{rel}: niftool copy failed: {r.stderr.strip()}")
        return
    dst = nib.load(out)
    got, gslope, ginter = nib_raw(dst)
    want = raw
    while want.ndim > 3 and want.shape[-1] == 1 and want.ndim > 4:
        want = want[..., 0]
    want = want.reshape(got.shape) if want.size == got.size else want
    same = want.shape == got.shape and same_values(want, got)
    check(same, f"{rel}: voxels differ (shape {want.shape} {want.dtype} -> "
                f"{got.shape} {got.dtype})")
    check(abs(gslope - slope) <= 1e-6 * abs(slope) and abs(ginter - inter) <= 1e-6 * max(1, abs(inter)),
          f"{rel}: scaling {slope},{inter} -> {gslope},{ginter}")
    a, b = src.affine, dst.affine
    scale = max(1.0, np.abs(a).max())
    check(np.allclose(a, b, rtol=0, atol=2e-6 * scale),
          f"{rel}: affine\n{a}\n->\n{b}")


# ---- NRRD files in the shared data ------------------------------------------

NRRD_TYPES = {
    "signed char": "i1", "int8": "i1", "int8_t": "i1", "uchar": "u1",
    "unsigned char": "u1", "uint8": "u1", "uint8_t": "u1", "short": "i2",
    "short int": "i2", "signed short": "i2", "signed short int": "i2", "int16": "i2",
    "int16_t": "i2", "ushort": "u2", "unsigned short": "u2", "unsigned short int": "u2",
    "uint16": "u2", "uint16_t": "u2", "int": "i4", "signed int": "i4", "int32": "i4",
    "int32_t": "i4", "uint": "u4", "unsigned int": "u4", "uint32": "u4",
    "uint32_t": "u4", "float": "f4", "double": "f8",
}


def parse_vec(s):
    return [float(x) for x in s.strip().strip("()").split(",")]


def nrrd_expect(path):
    """Voxels (x fastest, as a Fortran-order array) and RAS affine from the
    NRRD header, read here without pynrrd."""
    with open(path, "rb") as f:
        blob = f.read()
    lines, pos = [], 0
    while pos < len(blob):
        end = blob.find(b"\n", pos)
        end = len(blob) if end < 0 else end
        line = blob[pos:end].rstrip(b"\r").decode("latin-1")
        pos = end + 1
        if line == "":
            break
        lines.append(line)
    fields = {}
    for line in lines[1:]:
        if line.startswith("#") or ":=" in line:
            continue
        k, v = line.split(":", 1)
        fields[k.strip()] = v.strip()
    sizes = [int(x) for x in fields["sizes"].split()]
    dt = np.dtype(NRRD_TYPES[fields["type"]])
    if dt.itemsize > 1:
        dt = dt.newbyteorder("<" if fields.get("endian", "little") == "little" else ">")
    if "data file" in fields:
        with open(os.path.join(os.path.dirname(path), fields["data file"]), "rb") as f:
            payload = f.read()
    else:
        payload = blob[pos:]
    if fields["encoding"] in ("gzip", "gz"):
        payload = gzip.decompress(payload)
    count = int(np.prod(sizes))
    data = np.frombuffer(payload[:count * dt.itemsize], dtype=dt).reshape(sizes, order="F")
    space = fields.get("space", "left-posterior-superior")
    dirs = [parse_vec(d) for d in fields["space directions"].replace(") (", ")|(").split("|")]
    org = parse_vec(fields.get("space origin", "(" + ",".join(["0"] * len(dirs[0])) + ")"))
    lps = np.eye(4)
    for c, d in enumerate(dirs):
        lps[:len(d), c] = d
    lps[:len(org), 3] = org
    if len(dirs) == 2:  # one slice: unit normal as third column
        n = np.cross(lps[:3, 0], lps[:3, 1])
        lps[:3, 2] = n / np.linalg.norm(n)
        data = data.reshape(sizes + [1], order="F")
    if space in ("right-anterior-superior", "RAS"):
        lps[:2, :] = -lps[:2, :]
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return data, ras


def nrrd_case(tmp, path):
    rel = os.path.relpath(path, DATA)
    want, ras = nrrd_expect(path)
    out = os.path.join(tmp, "nrrd.nii.gz")
    r = run("copy", path, out)
    if r.returncode != 0:
        check(False, f"{rel}: niftool copy failed: {r.stderr.strip()}")
        return
    img = nib.load(out)
    got = np.asanyarray(img.dataobj)
    check(got.shape == want.shape and np.array_equal(got, want.astype(got.dtype)),
          f"{rel}: voxels differ ({want.shape} {want.dtype} -> {got.shape} {got.dtype})")
    check(got.dtype == want.dtype.newbyteorder("="), f"{rel}: dtype {want.dtype} -> {got.dtype}")
    check(np.allclose(img.affine, ras, rtol=0, atol=1e-4),
          f"{rel}: affine\n{ras}\n->\n{img.affine}")


# ---- InVesalius project -------------------------------------------------------

CRANIUM = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3"


def inv3_case(tmp, path):
    members = {}
    with tarfile.open(path, "r:*") as t:
        for m in t.getmembers():
            if m.isfile():
                members[os.path.basename(m.name)] = t.extractfile(m).read()
    main_pl = plistlib.loads(members["main.plist"])
    nz, ny, nx = main_pl["matrix"]["shape"]
    sx, sy, sz = main_pl["spacing"]
    img = np.frombuffer(members[main_pl["matrix"]["filename"]], "<i2")[:nz * ny * nx]
    img = img.reshape(nz, ny, nx).transpose(2, 1, 0)  # -> i, j, k
    labels = np.zeros((nx, ny, nz), np.uint16)
    for value, key in enumerate(sorted(main_pl["masks"], key=int), start=1):
        mp = plistlib.loads(members[main_pl["masks"][key]])
        m = np.frombuffer(members[mp["mask_file"]], np.uint8)[:(nz + 1) * (ny + 1) * (nx + 1)]
        m = m.reshape(nz + 1, ny + 1, nx + 1)[1:, 1:, 1:].transpose(2, 1, 0) >= 127
        labels[(labels == 0) & m] = value
    # axial (orientation 1): i +x, j -y (rows flipped), k +z in LPS, first
    # DICOM voxel at 0 -> RAS = diag(-1,-1,1) @ LPS
    lps = np.array([[sx, 0, 0, 0], [0, -sy, 0, (ny - 1) * sy], [0, 0, sz, 0], [0, 0, 0, 1]])
    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    out_i, out_l = os.path.join(tmp, "inv3.nii.gz"), os.path.join(tmp, "inv3_labels.nii.gz")
    r = run("inv3", path, out_i, out_l)
    if r.returncode != 0:
        check(False, f"Cranium.inv3: niftool failed: {r.stderr.strip()}")
        return
    a, b = nib.load(out_i), nib.load(out_l)
    check(main_pl["orientation"] == 1, "Cranium.inv3: expected an axial project")
    check(np.array_equal(np.asanyarray(a.dataobj), img), "Cranium.inv3: image voxels")
    check(np.array_equal(np.asanyarray(b.dataobj), labels), "Cranium.inv3: mask labels")
    check(np.allclose(a.affine, ras, atol=1e-5) and np.allclose(b.affine, ras, atol=1e-5),
          f"Cranium.inv3: affine\n{a.affine}\n!=\n{ras}")
    names = [line.split(" ", 2)[2].rsplit(" ", 3)[0] for line in r.stdout.splitlines()
             if line.startswith("label ")]
    want = [plistlib.loads(members[main_pl["masks"][k]])["name"]
            for k in sorted(main_pl["masks"], key=int)]
    check(names == want, f"Cranium.inv3: label names {names} != {want}")


def main():
    if not os.access(TOOL, os.X_OK):
        print(f"nifti_nibabel: cannot run {TOOL} (set R3D_BUILD to the build folder)")
        print("nifti_nibabel: 0 passed, 1 failed")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in DTYPES:
            for v2 in (False, True):
                for gz in (False, True):
                    synth_case(tmp, dtype, v2, gz)
        synth_case(tmp, "int16", False, True, four_d=True)
        synth_case(tmp, "float32", True, False, four_d=True)
        for v2 in (False, True):
            synth_case(tmp, "int16", v2, True, left=True)
            synth_case(tmp, "float32", v2, True, shear=True)
            synth_case(tmp, "uint8", v2, False, left=True, shear=True)

        if not DATA or not os.path.isdir(DATA):
            print(f"nifti_nibabel: shared data not found at '{DATA}': real-file cases skipped")
        else:
            niftis, nrrds = [], []
            for root, _, files in os.walk(DATA):
                for f in files:
                    p = os.path.join(root, f)
                    if f.endswith((".nii", ".nii.gz")):
                        niftis.append(p)
                    elif f.endswith((".nrrd", ".nhdr")):
                        nrrds.append(p)
            # Hundreds of the files are alike (one folder of per-structure
            # masks holds a hundred uint8 files with the same header): test
            # every distinct header signature, two files of each.
            seen, chosen = {}, []
            for p in sorted(niftis):
                try:
                    h = nib.load(p).header
                    sig = (p.endswith(".gz"), type(h).__name__, str(h.get_data_dtype()),
                           len(h.get_data_shape()), int(h["qform_code"]), int(h["sform_code"]),
                           h.get_slope_inter() != (None, None), h.endianness)
                except Exception:  # nibabel refuses it: we must refuse it too
                    sig = ("unreadable", p)
                if seen.get(sig, 0) < 2:
                    seen[sig] = seen.get(sig, 0) + 1
                    chosen.append(p)
            print(f"nifti_nibabel: {len(chosen)} of {len(niftis)} NIfTI files, "
                  f"{len(seen)} distinct header signatures")
            for p in chosen:
                nifti_case(tmp, p)
            for p in sorted(nrrds):
                nrrd_case(tmp, p)
        if os.path.exists(CRANIUM):
            inv3_case(tmp, CRANIUM)
        else:
            print(f"nifti_nibabel: {CRANIUM} absent (apt-get install invesalius-examples): "
                  "inv3 case skipped")
    print(f"nifti_nibabel: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
