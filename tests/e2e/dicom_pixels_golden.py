#!/usr/bin/python3
"""dicom_pixels_golden.py - every frame we decode compared with pydicom.

What: for each DICOM file with pixel data in dicom/cornerstone_wado,
dcm_qa_ts, pydicom_data, deb_pydicom, deb_octave_dicom (palette colour) and
dicom2nifti's compressed cases,
$R3D_BUILD/dcmpix decodes all frames to raw bytes; the reference is pydicom's
pixel_array of the same file (pydicom 2.3 with numpy, Pillow and, when the
python3-gdcm package is installed, GDCM), or, when pydicom cannot decode it,
the pixel_array of its uncompressed twin (the same image in another transfer
syntax, listed in TWINS). The reference is brought to dicom.h's output
contract first: values masked to BitsStored (unsigned) or sign-extended
(signed), YBR converted to RGB with pydicom's convert_color_space (we accept
the reference either converted or not, because pydicom's handlers differ in
whether they convert), PALETTE COLOR expanded with apply_color_lut.

Verdicts per file: "exact"; "within N" (lossy transfer syntaxes: the largest
absolute difference, failing only beyond a gross bound that means garbage);
"we refuse: <message>" (an error from us, printed, counted as passed when a
codec declines or the file is broken, failed when the data are native and
pydicom reads them); "reference unavailable" (pydicom cannot decode it and
there is no twin; we only check that decoding did not crash).
Fails: a lossless file that differs, a crash (signal / unexpected exit), a
native file we cannot read but pydicom can. Ends with
"dicom_pixels_golden: N passed, M failed" and exits 1 if M > 0.
"""
import json
import os
import re
import select
import subprocess
import sys
import tempfile
import warnings

warnings.filterwarnings("ignore")
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom.pixel_data_handlers.util import apply_color_lut, convert_color_space  # noqa: E402

BUILD = os.environ.get("R3D_BUILD", "")
DATA = os.environ.get("R3D_DATA", os.path.join(os.path.dirname(__file__), "../../../shared/data"))
DCMPIX = os.path.join(BUILD, "dcmpix")
ROOT = os.path.join(DATA, "dicom")

SETS = ["cornerstone_wado", "dcm_qa_ts", "pydicom_data", "deb_pydicom", "deb_octave_dicom"]

LOSSLESS = {
    "", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
    "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.1.98", "1.2.840.10008.1.2.8.1",
    "1.2.840.10008.1.2.5", "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70",
    "1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
}
NATIVE = {"", "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2",
          "1.2.840.10008.1.2.1.99"}
SHORT = {
    "": "none", "1.2.840.10008.1.2": "ILE", "1.2.840.10008.1.2.1": "ELE",
    "1.2.840.10008.1.2.2": "EBE", "1.2.840.10008.1.2.1.99": "DEFL",
    "1.2.840.10008.1.2.5": "RLE", "1.2.840.10008.1.2.8.1": "DEFL-FRAME",
}

# (regex on the path relative to dicom/, replacement) -> uncompressed twin.
TWINS = [
    (r"(cornerstone_wado/testImages/CTImage\.dcm)_.*", r"\1_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm"),
    (r"(dcm_qa_ts/In)/\d+\.dcm", r"\1/1.dcm"),
    (r"(pydicom_data/data_store/data/(693|MR2|US1|RG1|RG3))_J2K[IR]\.dcm", r"\1_UNCR.dcm"),
    (r"(pydicom_data/data_store/data/emri_small)_.*\.dcm", r"\1.dcm"),
    (r"(pydicom_data/data_store/data/liver_nonbyte_aligned)_.*\.dcm", r"\1.dcm"),
    (r"(pydicom_data/data_store/data/liver)_(j2k|rle|deflate|expb)\.dcm", r"\1.dcm"),
    (r"(pydicom_data/data_store/data/OBXXXX1A)_(rle|expb)(_2frame)?\.dcm", r"\1\3.dcm"),
    (r"(pydicom_data/data_store/data/SC_rgb)_expb(_\w+)?\.dcm", r"\1\2.dcm"),
    (r"(deb_pydicom/MR_small)_(RLE|bigendian|expb|implicit|jp2klossless|jpeg_ls_lossless|padded)\.dcm", r"\1.dcm"),
    (r"(deb_pydicom/rtdose)_(rle|expb)(_1frame)?\.dcm", r"\1\3.dcm"),
    (r"(deb_pydicom/SC_rgb)_rle(_\w+)?\.dcm", r"\1\2.dcm"),
]


def twin_of(rel):
    for pat, rep in TWINS:
        if re.fullmatch(pat, rel):
            t = re.sub(pat, rep, rel)
            for base in (os.path.join(ROOT, t),
                         os.path.join(ROOT, t.replace("deb_pydicom/", "pydicom_data/data_store/data/"))):
                if t != rel and os.path.isfile(base):
                    return base
    return None


def candidates():
    out = []
    for s in SETS:
        for dp, _, fs in os.walk(os.path.join(ROOT, s)):
            for f in fs:
                out.append(os.path.join(dp, f))
    for dp, _, fs in os.walk(os.path.join(ROOT, "dicom2nifti")):
        if "compressed" in dp:
            for f in fs:
                out.append(os.path.join(dp, f))
    return sorted(out)


def read_header(path):
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception:
        return None
    if not any(t in ds for t in (0x7FE00010, 0x7FE00008, 0x7FE00009)):
        return None
    if not hasattr(ds, "file_meta") or "TransferSyntaxUID" not in ds.file_meta:
        if not hasattr(ds, "file_meta"):
            ds.file_meta = pydicom.dataset.FileMetaDataset()
        ds.file_meta.TransferSyntaxUID = (pydicom.uid.ImplicitVRLittleEndian
                                          if ds.is_implicit_VR else
                                          pydicom.uid.ExplicitVRLittleEndian
                                          if ds.is_little_endian else pydicom.uid.ExplicitVRBigEndian)
    return ds


def reference_here(path):
    """pydicom's array, shaped frames x rows x cols x samples, or raises."""
    from pydicom import config
    from pydicom.pixel_data_handlers import (numpy_handler, rle_handler, pillow_handler,
                                             gdcm_handler)
    # GDCM last: it is the only one that can abort the process.
    config.pixel_data_handlers = [numpy_handler, rle_handler, pillow_handler, gdcm_handler]
    ds = read_header(path)
    arr = ds.pixel_array
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    samples = int(getattr(ds, "SamplesPerPixel", 1) or 1)
    return arr.reshape(frames, ds.Rows, ds.Columns, samples)


class _Worker:
    """One child process decodes every reference in turn (pydicom and numpy
    are imported once, not 200 times); a decoder library that aborts (GDCM
    does on some files) takes only the child down, and the next file gets
    a new one."""
    proc = None

    @classmethod
    def ask(cls, path, out):
        if cls.proc is None or cls.proc.poll() is not None:
            cls.proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            cls.proc.stdin.write(json.dumps([path, out]) + "\n")
            cls.proc.stdin.flush()
            ready, _, _ = select.select([cls.proc.stdout], [], [], 300)
            line = cls.proc.stdout.readline() if ready else ""
            if not ready:
                cls.proc.kill()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            cls.proc.wait()
            cls.proc = None
            return "pydicom's decoder ended the process"
        return line.strip()


def serve():
    for line in sys.stdin:
        path, out = json.loads(line)
        try:
            np.save(out, reference_here(path))
            print("ok", flush=True)
        except Exception as e:  # noqa: BLE001 - any decoder failure is an answer
            msg = (str(e).splitlines() or [type(e).__name__])[0] or type(e).__name__
            print(msg, flush=True)


def reference(path, tmp):
    """reference_here, in the worker process."""
    out = os.path.join(tmp, "ref.npy")
    if os.path.exists(out):
        os.remove(out)
    answer = _Worker.ask(path, out)
    if answer != "ok" or not os.path.exists(out):
        raise RuntimeError(answer)
    return np.load(out)


def to_contract(arr, info):
    """Mask / sign-extend integers from bits_stored, as dicom.h promises."""
    if info["is_float"] or info["bits_alloc"] == 1 or arr.dtype.kind == "f":
        return arr
    bs = info["bits_stored"]
    a = arr.astype(np.int64)
    if bs < 64:
        a &= (1 << bs) - 1
        if info["is_signed"]:
            a = np.where(a & (1 << (bs - 1)), a - (1 << bs), a)
    return a


def ours_array(raw_path, info):
    if info["palette_bits"]:
        dt = np.uint8 if info["palette_bits"] == 8 else np.dtype("<u2")
        samples = 3
    elif info["is_float"]:
        dt = np.dtype("<f4") if info["bits_alloc"] == 32 else np.dtype("<f8")
        samples = info["samples"]
    else:
        ob = 1 if info["bits_alloc"] <= 8 else 2 if info["bits_alloc"] <= 16 else 4
        dt = np.dtype(("<i%d" if info["is_signed"] else "<u%d") % ob)
        samples = info["samples"]
    a = np.fromfile(raw_path, dtype=dt)
    return a.reshape(info["frames"], info["rows"], info["cols"], samples)


def rescale(ds):
    return (float(getattr(ds, "RescaleSlope", 1) or 1), float(getattr(ds, "RescaleIntercept", 0) or 0))


def max_diff(a, b):
    if a.shape != b.shape:
        return None
    if a.dtype.kind == "f" or b.dtype.kind == "f":
        d = np.abs(a.astype(np.float64) - b.astype(np.float64))
        d = np.nan_to_num(d, nan=0.0)
        return float(d.max()) if d.size else 0.0
    return int(np.abs(a.astype(np.int64) - b.astype(np.int64)).max()) if a.size else 0


def prepared_refs(ds, info, arr):
    """The reference in the forms the contract allows. ds is the dataset the
    reference came from (a twin may store other BitsStored / sign)."""
    info = dict(info, bits_stored=int(getattr(ds, "BitsStored", info["bits_stored"])),
                is_signed=int(getattr(ds, "PixelRepresentation", info["is_signed"])))
    refs = []
    photo = info["photometric"]
    if info["palette_bits"]:
        refs.append(apply_color_lut(arr.reshape(arr.shape[:3]), ds).reshape(
            arr.shape[0], arr.shape[1], arr.shape[2], 3))
        return refs
    base = to_contract(arr, info)
    refs.append(base)
    ts = str(ds.file_meta.TransferSyntaxUID)
    # JPEG streams may hold YCbCr whatever the header says, and pydicom's
    # handlers differ in whether they convert: accept either.
    jpeg = ts.startswith("1.2.840.10008.1.2.4.") and int(ts.split(".")[-1]) < 80
    if (photo.startswith("YBR") or jpeg) and info["samples"] == 3:
        try:
            conv = convert_color_space(arr.reshape(-1, arr.shape[2], 3).astype(arr.dtype),
                                       "YBR_FULL", "RGB")
            refs.append(to_contract(conv.reshape(arr.shape), info))
        except Exception:
            pass
    return refs


def run_dcmpix(path, out):
    try:
        r = subprocess.run([DCMPIX, path, out], capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return "crash", "timeout after 120 s"
    if r.returncode < 0 or r.returncode not in (0, 1):
        return "crash", "exit %d %s" % (r.returncode, r.stderr.strip()[-300:])
    try:
        j = json.loads(r.stdout.strip().splitlines()[-1])
    except Exception:
        return "crash", "unreadable output: %r" % r.stdout[-200:]
    if r.returncode == 1:
        return "error", j
    return "ok", j


def main():
    if not os.path.isfile(DCMPIX):
        print("dicom_pixels_golden: no %s (set R3D_BUILD)" % DCMPIX)
        print("dicom_pixels_golden: 0 passed, 1 failed")
        return 1
    passed = failed = 0
    counts = {}
    rows = []
    tmp = tempfile.mkdtemp(prefix="r3d_golden_")
    raw = os.path.join(tmp, "frames.raw")
    for path in candidates():
        rel = os.path.relpath(path, ROOT)
        ds = read_header(path)
        if ds is None:
            continue  # not DICOM or no pixel data
        ts = str(ds.file_meta.TransferSyntaxUID)
        tsn = SHORT.get(ts, ts.replace("1.2.840.10008.1.2.", ""))
        kind, res = run_dcmpix(path, raw)
        ok = True
        if kind == "crash":
            verdict, ok = "CRASH: " + res, False
        elif kind == "error":
            msg = res["message"].replace(ROOT + "/", "")
            verdict = "we refuse: %s %s" % (res["error"], msg)
            if ts in NATIVE and res["error"] != "R3D_EUNSUPPORTED":
                try:
                    reference(path, tmp)
                    verdict += "  [pydicom reads it]"
                    ok = False
                except Exception:
                    pass
        else:
            info = res
            ref = None
            src = "pydicom"
            ref_ds = ds
            try:
                ref = reference(path, tmp)
            except Exception as e:
                t = twin_of(rel)
                if t:
                    try:
                        ref = reference(t, tmp)
                        ref_ds = read_header(t)
                        src = "twin " + os.path.basename(t)
                    except Exception:
                        ref = None
                if ref is None:
                    verdict = "reference unavailable (%s)" % (str(e).splitlines()[0][:80] if str(e) else type(e).__name__)
            if ref is not None:
                ours = ours_array(raw, info)
                refs = prepared_refs(ref_ds, info, ref)
                if ref_ds is not ds and rescale(ref_ds) != rescale(ds):
                    # a lossy twin may be stored with another rescale
                    # (dcmtk shifts signed CT to unsigned): compare in
                    # real-world units
                    (ma, ba), (mt, bt) = rescale(ds), rescale(ref_ds)
                    ours = ours.astype(np.float64) * ma + ba
                    refs = [r.astype(np.float64) * mt + bt for r in refs]
                diffs = [d for d in (max_diff(ours, r) for r in refs) if d is not None]
                if not diffs:
                    verdict, ok = "SHAPE MISMATCH ours %s ref %s (%s)" % (ours.shape, ref.shape, src), False
                else:
                    d = min(diffs)
                    t = twin_of(rel) if d != 0 else None
                    if t and src == "pydicom":
                        # pydicom's own decoder can be the one that is wrong
                        # (1-bit JPEG 2000): the uncompressed twin decides.
                        try:
                            tref = reference(t, tmp)
                            td = [x for x in (max_diff(ours, r) for r in prepared_refs(read_header(t), info, tref))
                                  if x is not None]
                            if td and min(td) < d:
                                d, src = min(td), "twin %s; pydicom differs" % os.path.basename(t)
                        except Exception:
                            pass
                    if d == 0:
                        verdict = "exact (%s)" % src
                    elif ts in LOSSLESS:
                        verdict, ok = "MISMATCH max |diff| %s (%s)" % (d, src), False
                    else:
                        rng = 2.0 ** info["bits_stored"]
                        verdict = "within %.4g (%s)" % (d, src)
                        if d > 0.25 * rng:
                            verdict, ok = "GARBAGE: max |diff| %s of range %d (%s)" % (d, rng, src), False
        key = verdict.split(" (")[0].split(":")[0]
        for k in ("within", "MISMATCH", "GARBAGE", "SHAPE", "CRASH"):
            if key.startswith(k):
                key = k
        counts[key] = counts.get(key, 0) + 1
        rows.append((rel, tsn, verdict))
        if ok:
            passed += 1
        else:
            failed += 1
    w = max(len(r[0]) for r in rows) if rows else 10
    for rel, tsn, verdict in rows:
        print("%-*s  %-10s  %s" % (w, rel, tsn, verdict))
    print()
    for k in sorted(counts):
        print("  %-24s %d" % (k, counts[k]))
    try:
        os.remove(raw)
        os.rmdir(tmp)
    except OSError:
        pass
    print("dicom_pixels_golden: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    if len(sys.argv) == 2 and sys.argv[1] == "--serve":
        serve()
        sys.exit(0)
    sys.exit(main())
