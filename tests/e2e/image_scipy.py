#!/usr/bin/python3
"""Golden test: libr3d's image operations against scipy.ndimage (Debian's
python3-scipy) on the same inputs - synthetic masks with anisotropic voxels
and a real label map from the shared data when present.
  distance   vs distance_transform_edt(sampling=spacing)   max |diff| <= 1e-3 mm
  dilate/erode/open/close with a ball of r mm vs binary_* with the same
             ball (offsets with |o|_mm <= r)               identical
  label 6/18/26 vs label (scan order matched)               identical
  fill holes vs binary_fill_holes                           identical
  gaussian   vs gaussian_filter(mode nearest, truncate 4)   max |diff| <= 1e-3
  resample   vs map_coordinates(order 0/1, mode constant)   nearest identical,
                                                            linear <= 1e-3
             B-spline vs map_coordinates(order 3, mode mirror) inside <= 1e-3
  median     vs median_filter(size, mode nearest)           identical
  grey dilate/erode with a ball vs grey_dilation/erosion    identical
  frangi     vs skimage.filters.frangi (0.19), c given      max |diff| <= 1e-3
  skeleton   vs skimage.morphology.skeletonize_3d           identical
Ends with "image_scipy: N passed, M failed"."""
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np
from scipy import ndimage as ndi
from skimage.filters import frangi
from skimage.filters.ridges import compute_hessian_eigenvalues
from skimage.morphology import skeletonize_3d

BUILD = os.environ.get("R3D_BUILD", "build")
DATA = os.environ.get("R3D_DATA", "../shared/data")
TOOL = os.path.join(BUILD, "imgtool")
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
        print(f"  ok    {what}")
    else:
        failed += 1
        print(f"  FAIL  {what}")


def run(*args):
    r = subprocess.run([TOOL, *map(str, args)], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(r.stderr)


def ball(spacing, r):
    n = [int(np.floor(r / s + 1e-9)) for s in spacing]
    g = np.mgrid[-n[0]:n[0] + 1, -n[1]:n[1] + 1, -n[2]:n[2] + 1].astype(float)
    d2 = sum((g[i] * spacing[i]) ** 2 for i in range(3))
    return d2 <= r * r * (1 + 1e-6) + 1e-9


def save(a, spacing, path, affine=None):
    if affine is None:
        affine = np.diag(list(spacing) + [1.0])
        affine[:3, 3] = [-10.0, 5.0, 2.5]
    nib.save(nib.Nifti1Image(a, affine), path)


def load(path):
    return np.asanyarray(nib.load(path).dataobj)


def save_mask(m, sp, t):
    path = os.path.join(t, "mask.nii")
    save(m, sp, path)
    return path


def frangi_cases(t):
    """Bright and dark tubes of two widths in noise, 1 mm voxels (scikit-
    image works in voxels). c is computed as ours is (half the largest
    Hessian norm per scale) and given to skimage scale by scale."""
    rng = np.random.default_rng(3)
    g = np.indices((48, 40, 36)).astype(float)
    img = rng.normal(0, 20, (48, 40, 36))
    img += 400 * np.exp(-((g[1] - 12) ** 2 + (g[2] - 10) ** 2) / (2 * 1.5 ** 2))     # along x
    img += 300 * np.exp(-((g[0] - 30) ** 2 + (g[1] - 25) ** 2) / (2 * 3.0 ** 2))     # along z
    img -= 350 * np.exp(-((g[0] - 20) ** 2 + (g[2] - 26) ** 2) / (2 * 2.0 ** 2))     # dark, along y
    src, out = os.path.join(t, "f.nii"), os.path.join(t, "fo.nii")
    save(img.astype(np.float32), (1.0, 1.0, 1.0), src)
    img = load(src).astype(float)
    sigmas = (1.0, 2.0, 3.0)
    for bright in (1, 0):
        work = img if bright else 1 - img
        want = np.zeros_like(img)
        for s_ in sigmas:
            ev = compute_hessian_eigenvalues(work, s_, sorting="abs", mode="nearest", cval=0)
            c = np.sqrt((ev ** 2).sum(0)).max() / 2
            # the Frobenius norm of the Hessian equals the eigenvalue norm
            want = np.maximum(want, frangi(img, sigmas=[s_], gamma=c, black_ridges=not bright, mode="nearest"))
        run("frangi", src, out, bright, 0, *sigmas)
        got = load(out).astype(float)
        inner = (slice(3, -3),) * 3
        d = np.max(np.abs(got[inner] - want[inner]))
        check(d <= 1e-3, f"frangi {'bright' if bright else 'dark'} tubes, c automatic: max diff {d:.2g}")
        # where it matters: the tube centres respond strongly
        centre = got[24, 12, 10] if bright else got[20, 20, 26]
        check(centre > 0.5, f"frangi {'bright' if bright else 'dark'}: tube centre {centre:.2f} > 0.5")


def cases():
    rng = np.random.default_rng(7)
    # blobs: smoothed noise thresholded, anisotropic voxels, a cavity
    a = ndi.gaussian_filter(rng.standard_normal((40, 36, 18)), 2.0) > 0.05
    a[15:22, 15:20, 8:11] = True
    a[17:20, 17:18, 9:10] = False  # a closed hole
    yield "blobs 0.7x0.8x2.5", a.astype(np.uint8), (0.7, 0.8, 2.5)
    s = np.zeros((33, 33, 33), np.uint8)
    g = np.mgrid[:33, :33, :33] - 16
    s[(g ** 2).sum(0) <= 100] = 1
    yield "sphere 1 mm", s, (1.0, 1.0, 1.0)
    real = os.path.join(DATA, "masks/medmpd/Data/Lungs/Patient1/nodule.nii.gz")
    if os.path.exists(real):
        img = nib.load(real)
        m = (np.asanyarray(img.dataobj) != 0)
        idx = np.argwhere(m)
        if len(idx):
            lo, hi = np.maximum(idx.min(0) - 6, 0), idx.max(0) + 7
            m = m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]]
            yield "LIDC nodule (cropped)", m.astype(np.uint8), tuple(float(z) for z in img.header.get_zooms()[:3])
    else:
        print(f"  skip  real nodule mask: {real} not found")


def main():
    if not os.path.exists(TOOL):
        print(f"image_scipy: {TOOL} not built")
        return 1
    with tempfile.TemporaryDirectory() as t:
        for name, m, sp in cases():
            src = os.path.join(t, "m.nii")
            out = os.path.join(t, "o.nii")
            save(m, sp, src)
            run("distance", src, out)
            d = ndi.distance_transform_edt(m, sampling=sp)
            check(np.max(np.abs(load(out) - d)) <= 1e-3, f"{name}: distance")
            for r in (1.0, 2.6):
                b = ball(sp, r)
                ref = {
                    "dilate": ndi.binary_dilation(m, b),
                    "erode": ndi.binary_erosion(m, b),
                    "open": ndi.binary_dilation(ndi.binary_erosion(m, b), b),
                    "close": ndi.binary_erosion(ndi.binary_dilation(m, b), b),
                }
                for op, want in ref.items():
                    run(op, src, out, r)
                    got = load(out) != 0
                    check(np.array_equal(got, want), f"{name}: {op} r={r} mm ({int((got != want).sum())} voxels differ)")
            for conn, rank in ((6, 1), (18, 2), (26, 3)):
                run("label", src, out, conn)
                # our numbering follows memory order (x fastest): label the
                # transposed array so scipy scans in the same order
                want, _ = ndi.label(m.transpose(2, 1, 0), ndi.generate_binary_structure(3, rank))
                check(np.array_equal(load(out), want.transpose(2, 1, 0)), f"{name}: label {conn}")
            run("fill", src, out)
            check(np.array_equal(load(out) != 0, ndi.binary_fill_holes(m)), f"{name}: fill holes")
            grey = (m * 100 + np.arange(m.size).reshape(m.shape) % 17).astype(np.int16)
            save(grey, sp, src)
            # the spacing as stored (float32): 0.8 mm becomes 0.80000001, which
            # can move the kernel radius int(3 sd + 0.5) by one
            zooms = [float(z) for z in nib.load(src).header.get_zooms()[:3]]
            for sigma in (0.5, 2.0):
                run("gaussian", src, out, sigma)
                want = ndi.gaussian_filter(grey.astype(float), [sigma / s for s in zooms], mode="nearest", truncate=4.0)
                check(np.max(np.abs(load(out) - want)) <= 1e-3, f"{name}: gaussian {sigma} mm")
            # resample onto a shifted, finer grid
            A = nib.load(src).affine
            T = A.copy()
            # scale and shift chosen so no sample falls on a half-voxel tie
            T[:3, :3] = A[:3, :3] * 0.73
            T[:3, 3] = A[:3, 3] + np.array(sp) * 0.37
            shape = tuple(int(n / 0.73) for n in m.shape)
            tgt = os.path.join(t, "target.nii")
            nib.save(nib.Nifti1Image(np.zeros(shape, np.uint8), T), tgt)
            T = nib.load(tgt).affine  # as stored (float32), as imgtool reads it
            # our NIfTI affines are RAS; both grids in the same frame, so the
            # voxel map is inv(A) @ T either way
            M = np.linalg.inv(A) @ T
            ijk = np.indices(shape).reshape(3, -1)
            coords = (M[:3, :3] @ ijk) + M[:3, 3:4]
            for mode, order in (("nearest", 0), ("linear", 1)):
                run("resample", src, tgt, out, mode, -5)
                want = ndi.map_coordinates(grey.astype(float), coords, order=order, mode="constant", cval=-5).reshape(shape)
                got = load(out).astype(float)
                tol = 0 if order == 0 else 1e-3
                check(np.max(np.abs(got - want)) <= tol, f"{name}: resample {mode} (max diff {np.max(np.abs(got - want)):.3g})")
            run("resample", src, tgt, out, "bspline", -5)
            got = load(out).astype(float).reshape(-1)
            inside = np.all((coords > -1e-6) & (coords < np.array(m.shape)[:, None] - 1 + 1e-6), axis=0)
            want = ndi.map_coordinates(grey.astype(float), coords, order=3, mode="mirror")
            diff = np.max(np.abs(got[inside] - want[inside]))
            check(diff <= 1e-3 * max(1.0, np.abs(want).max()) and np.all(got[~inside] == -5),
                  f"{name}: resample bspline (max diff {diff:.3g} inside, fill outside)")
            for r in ((1, 1, 1), (2, 1, 0)):
                run("median", src, out, *r)
                want = ndi.median_filter(grey, size=[2 * x + 1 for x in r], mode="nearest")
                check(np.array_equal(load(out), want), f"{name}: median radius {r}")
            for r in (1.0, 2.6):
                b = ball(sp, r)
                for op, fn in (("grey_dilate", ndi.grey_dilation), ("grey_erode", ndi.grey_erosion)):
                    run(op, src, out, r)
                    want = fn(grey.astype(float), footprint=b, mode="nearest")
                    check(np.array_equal(load(out).astype(float), want), f"{name}: {op} r={r} mm")
            run("skeleton", save_mask(m, sp, t), out)
            want = skeletonize_3d(m.transpose(2, 1, 0).astype(np.uint8)).transpose(2, 1, 0) != 0
            got = load(out) != 0
            check(np.array_equal(got, want), f"{name}: skeleton ({int(got.sum())} vs {int(want.sum())} voxels, {int((got != want).sum())} differ)")
        frangi_cases(t)
        tree = os.path.join(DATA, "masks/medmpd/Data/Lungs/Patient1/bronchialTree.nii.gz")
        if os.path.exists(tree):
            img = nib.load(tree)
            m = np.asanyarray(img.dataobj) != 0
            idx = np.argwhere(m)
            lo, hi = idx.min(0), idx.max(0) + 1
            m = m[lo[0]:hi[0], lo[1]:hi[1], lo[2]:hi[2]].astype(np.uint8)
            src, out = save_mask(m, img.header.get_zooms()[:3], t), os.path.join(t, "so.nii")
            run("skeleton", src, out)
            want = skeletonize_3d(m.transpose(2, 1, 0)).transpose(2, 1, 0) != 0
            got = load(out) != 0
            check(np.array_equal(got, want) and want.sum() > 1000,
                  f"airway tree (medmpd Patient1): skeleton {int(got.sum())} vs {int(want.sum())} voxels, {int((got != want).sum())} differ")
        else:
            print(f"  skip  real airway tree: {tree} not found")
    print(f"image_scipy: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
