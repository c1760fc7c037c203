#!/usr/bin/python3
"""Pictures of a `recon3d segment` result for a reader to judge.

usage: render_result.py CT.nii.gz OUTDIR PREFIX [--slice-z MM] [--coronal-y MM]

CT is the input volume as NIfTI (`recon3d convert` gives it), OUTDIR the
folder `recon3d segment` wrote (labels.nii.gz, labels.json, report.json).
Writes PREFIX-axial.png, PREFIX-coronal.png (label outlines over the CT in
a lung window, nodules marked) and PREFIX-3d.png (VTK off-screen surfaces of
airway, lobes and nodules) and PREFIX-airway.png (airway coloured by
generation). Uses Debian's python3 with nibabel, matplotlib and VTK; this is
a documentation tool, not part of the product.
"""
import json
import os
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402


def load(ct_path, out):
    ct = nib.as_closest_canonical(nib.load(ct_path))
    lab = nib.as_closest_canonical(nib.load(os.path.join(out, "labels.nii.gz")))
    table = json.load(open(os.path.join(out, "labels.json")))["labels"]
    report = json.load(open(os.path.join(out, "report.json")))
    return ct, np.asanyarray(ct.dataobj).astype(np.float32), \
        np.asanyarray(lab.dataobj).astype(np.int32), table, report


def colour_image(lab, table, alpha=0.5):
    """Filled colours per label; body and skin are left unfilled (they
    would hide everything) and drawn as an outline instead."""
    rgba = np.zeros(lab.shape + (4,), np.float32)
    for t in table:
        if t["name"] in ("body", "skin"):
            continue
        m = lab == t["value"]
        if m.any():
            rgba[m, :3] = np.array(t["color"]) / 255.0
            rgba[m, 3] = alpha
    return rgba


def show(ax, img, rgba, aspect, title):
    ax.imshow(np.clip((img + 1200) / 1500, 0, 1).T, cmap="gray", origin="lower", aspect=aspect)
    ax.imshow(np.transpose(rgba, (1, 0, 2)), origin="lower", aspect=aspect)
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def main():
    args = sys.argv[1:]
    if len(args) < 3:
        sys.exit(__doc__)
    ct_path, out, prefix = args[:3]
    ct, img, lab, table, report = load(ct_path, out)
    aff = ct.affine
    sx, sy, sz = nib.affines.voxel_sizes(aff)
    nod = [t for t in table if t["value"] >= 1000]
    # Axial slice: through the largest nodule if any, else mid-lung.
    if nod:
        big = max(nod, key=lambda t: t.get("voxels", 0))
        zz = np.where((lab == big["value"]).any(axis=(0, 1)))[0]
        k = int(zz.mean())
    else:
        k = lab.shape[2] * 2 // 3
    if "--slice-z" in args:
        z = float(args[args.index("--slice-z") + 1])
        k = int(round(np.linalg.solve(aff, [0, 0, z, 1])[2]))
    rgba = colour_image(lab, table)
    fig, ax = plt.subplots(1, 2, figsize=(12, 6.2))
    show(ax[0], img[:, :, k], np.zeros_like(rgba[:, :, k]), sy / sx, "CT (lung window)")
    show(ax[1], img[:, :, k], rgba[:, :, k], sy / sx, "labels")
    body = np.isin(lab[:, :, k], [t["value"] for t in table if t["name"] in ("body", "skin")])
    if body.any():
        ax[1].contour(body.T.astype(float), [0.5], colors="orange", linewidths=0.6, origin="lower")
    for t in nod:
        m = lab[:, :, k] == t["value"]
        if m.any():
            ii, jj = np.where(m)
            rad = max(ii.max() - ii.min(), jj.max() - jj.min()) / 2 + 8
            ax[0].add_patch(plt.Circle((ii.mean(), jj.mean()), rad, fill=False, color="yellow", lw=1.2))
            ax[1].contour(m.T.astype(float), [0.5], colors="yellow", linewidths=1.0, origin="lower")
            ax[1].text(ii.mean() - rad, jj.mean() + rad + 4, t["name"], color="yellow", fontsize=8)
    fig.suptitle("axial slice %d (image right = patient left: RAS voxel axes shown radiologically)" % k,
                 fontsize=9)
    # Radiological convention: patient right on image left.
    for a in ax:
        a.invert_xaxis()
    fig.tight_layout()
    fig.savefig(prefix + "-axial.png", dpi=90)
    plt.close(fig)

    # Coronal slice through the carina region (trachea's lowest point) or centre.
    j = lab.shape[1] // 2
    tr = [t["value"] for t in table if t["name"] == "trachea"]
    if tr:
        jj = np.where((lab == tr[0]).any(axis=(0, 2)))[0]
        j = int(jj.mean())
    if "--coronal-y" in args:
        j = int(args[args.index("--coronal-y") + 1])
    fig, ax = plt.subplots(1, 2, figsize=(12, 6.2))
    show(ax[0], img[:, j, :], np.zeros_like(rgba[:, j, :]), sz / sx, "CT")
    show(ax[1], img[:, j, :], rgba[:, j, :], sz / sx, "labels")
    for a in ax:
        a.invert_xaxis()
    fig.suptitle("coronal slice %d (through the trachea; patient right on the image left)" % j, fontsize=9)
    fig.tight_layout()
    fig.savefig(prefix + "-coronal.png", dpi=90)
    plt.close(fig)

    render3d(lab, aff, table, report, prefix)


def render3d(lab, aff, table, report, prefix):
    """Surfaces by marching cubes (scikit-image) drawn with matplotlib's 3D
    axes (no display needed), seen from the front."""
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection
    from skimage import measure

    sp = nib.affines.voxel_sizes(aff)

    def add(ax, mask, rgb, alpha, step=2):
        if mask.sum() < 10:
            return
        drawn.append(mask)
        # Work at about 2 mm: fewer faces, still the shape.
        f = [max(1, int(round(step / s))) for s in sp]
        m = mask[::f[0], ::f[1], ::f[2]]
        if m.sum() < 5:
            return
        m = np.pad(m, 1).astype(np.float32)
        v, fc, _, _ = measure.marching_cubes(m, 0.5, spacing=tuple(sp[i] * f[i] for i in range(3)))
        col = Poly3DCollection(v[fc], facecolor=np.array(rgb) / 255.0, alpha=alpha, linewidth=0)
        ax.add_collection3d(col)

    drawn = []

    def finish(ax, fig, title, path):
        # Limits: the drawn structures' box (voxel axes RAS: +x patient right).
        box = np.zeros(3), np.array(lab.shape) * sp
        if drawn:
            m = np.zeros(lab.shape, bool)
            for d in drawn:
                m |= d
            idx = [np.where(m.any(axis=tuple(a for a in range(3) if a != ax_)))[0] for ax_ in range(3)]
            box = (np.array([i.min() for i in idx]) * sp - 10, np.array([i.max() for i in idx]) * sp + 10)
        ext = box[1] - box[0]
        ax.set_xlim(box[0][0], box[1][0])
        ax.set_ylim(box[0][1], box[1][1])
        ax.set_zlim(box[0][2], box[1][2])
        ax.set_box_aspect(ext, zoom=1.35)
        # From the front (camera on +y, anterior), superior up: the patient's
        # right (+x) is on the image's left, as a radiologist sees it.
        ax.view_init(elev=5, azim=90)
        ax.set_axis_off()
        ax.set_title(title, fontsize=10)
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)
        drawn.clear()

    airway = ("trachea", "bronchi", "bronchus_main_left", "bronchus_main_right", "bronchi_lobar",
              "bronchi_segmental", "bronchi_subsegmental")
    fig = plt.figure(figsize=(9, 9))
    ax = fig.add_subplot(111, projection="3d")
    for t in table:
        n = t["name"]
        if "lobe" in n or n in ("lung_left", "lung_right"):
            add(ax, lab == t["value"], t["color"], 0.08, step=4)
        elif n in airway:
            add(ax, lab == t["value"], t["color"], 1.0, step=1)
        elif t["value"] >= 1000:
            add(ax, lab == t["value"], (255, 200, 0), 1.0, step=1)
    finish(ax, fig, "lobes (translucent), airway by generation, nodules (yellow); front view",
           prefix + "-3d.png")
    fig = plt.figure(figsize=(9, 9))
    ax = fig.add_subplot(111, projection="3d")
    for t in table:
        if t["name"] in ("spine", "ribs", "sternum", "bones", "skull", "mandible"):
            add(ax, lab == t["value"], t["color"], 1.0, step=3)
    finish(ax, fig, "skeleton: spine, ribs, sternum, other bones; front view", prefix + "-bones.png")
    # The airway tree alone, coloured by generation.
    fig = plt.figure(figsize=(9, 9))
    ax = fig.add_subplot(111, projection="3d")
    gen_col = {"trachea": (40, 40, 40), "bronchus_main_left": (220, 30, 30), "bronchus_main_right": (220, 30, 30),
               "bronchi_lobar": (240, 140, 0), "bronchi_segmental": (30, 160, 30),
               "bronchi_subsegmental": (30, 80, 220), "bronchi": (150, 40, 200)}
    for t in table:
        if t["name"] in gen_col:
            add(ax, lab == t["value"], gen_col[t["name"]], 1.0, step=1)
    a = report.get("airway", {})
    finish(ax, fig, "airway by generation: 0 grey, 1 red, 2 orange, 3 green, 4 blue, 5+ purple\n"
           "branches per generation %s" % a.get("branches_per_generation"), prefix + "-airway.png")


if __name__ == "__main__":
    main()
