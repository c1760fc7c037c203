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


def colour_image(lab, table, alpha=0.45):
    rgba = np.zeros(lab.shape + (4,), np.float32)
    for t in table:
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
    for t in nod:
        m = lab[:, :, k] == t["value"]
        if m.any():
            ii, jj = np.where(m)
            for a in ax:
                a.add_patch(plt.Circle((ii.mean(), jj.mean()), 12, fill=False, color="yellow", lw=1.2))
            ax[1].text(ii.mean() + 14, jj.mean() + 14, t["name"], color="yellow", fontsize=8)
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
    fig.suptitle("coronal slice %d" % j, fontsize=9)
    fig.tight_layout()
    fig.savefig(prefix + "-coronal.png", dpi=90)
    plt.close(fig)

    render3d(lab, aff, table, report, prefix)


def render3d(lab, aff, table, report, prefix):
    import vtk
    from vtk.util import numpy_support as ns

    def surface(mask, rgb, opacity):
        m = np.ascontiguousarray(mask.astype(np.uint8).transpose(2, 1, 0))
        imgd = vtk.vtkImageData()
        imgd.SetDimensions(mask.shape)
        imgd.SetSpacing(*nib.affines.voxel_sizes(aff))
        arr = ns.numpy_to_vtk(m.ravel(), deep=True, array_type=vtk.VTK_UNSIGNED_CHAR)
        imgd.GetPointData().SetScalars(arr)
        mc = vtk.vtkFlyingEdges3D()
        mc.SetInputData(imgd)
        mc.SetValue(0, 0.5)
        sm = vtk.vtkWindowedSincPolyDataFilter()
        sm.SetInputConnection(mc.GetOutputPort())
        sm.SetNumberOfIterations(15)
        sm.SetPassBand(0.1)
        sm.NormalizeCoordinatesOn()
        mapper = vtk.vtkPolyDataMapper()
        mapper.SetInputConnection(sm.GetOutputPort())
        mapper.ScalarVisibilityOff()
        actor = vtk.vtkActor()
        actor.SetMapper(mapper)
        actor.GetProperty().SetColor(*(np.array(rgb) / 255.0))
        actor.GetProperty().SetOpacity(opacity)
        return actor

    def view(actors, path, title):
        ren = vtk.vtkRenderer()
        ren.SetBackground(1, 1, 1)
        for a in actors:
            ren.AddActor(a)
        win = vtk.vtkRenderWindow()
        win.SetOffScreenRendering(1)
        win.SetSize(900, 900)
        win.AddRenderer(ren)
        cam = ren.GetActiveCamera()
        ren.ResetCamera()
        # Anterior view: look from +A (front) toward the patient, S up.
        fp = np.array(cam.GetFocalPoint())
        d = cam.GetDistance()
        cam.SetPosition(*(fp + np.array([0, d, 0])))
        cam.SetViewUp(0, 0, 1)
        ren.ResetCamera()
        ren.ResetCameraClippingRange()
        txt = vtk.vtkTextActor()
        txt.SetInput(title)
        txt.GetTextProperty().SetColor(0, 0, 0)
        txt.GetTextProperty().SetFontSize(18)
        ren.AddActor2D(txt)
        win.Render()
        w2i = vtk.vtkWindowToImageFilter()
        w2i.SetInput(win)
        w2i.Update()
        wr = vtk.vtkPNGWriter()
        wr.SetFileName(path)
        wr.SetInputConnection(w2i.GetOutputPort())
        wr.Write()

    names = {t["name"]: t for t in table}
    actors = []
    for t in table:
        n = t["name"]
        if n.startswith("lung_") and ("lobe" in n or n in ("lung_left", "lung_right")):
            actors.append(surface(lab == t["value"], t["color"], 0.18))
        elif n in ("trachea", "bronchi", "bronchus_main_left", "bronchus_main_right", "bronchi_lobar",
                   "bronchi_segmental", "bronchi_subsegmental"):
            actors.append(surface(lab == t["value"], t["color"], 1.0))
        elif t["value"] >= 1000:
            actors.append(surface(lab == t["value"], (255, 220, 0), 1.0))
    view(actors, prefix + "-3d.png", "lobes (translucent), airway by generation, nodules (yellow); anterior view")
    bones = [surface(lab == names[n]["value"], names[n]["color"], 1.0)
             for n in ("spine", "ribs", "sternum", "bones") if n in names]
    if bones:
        view(bones, prefix + "-bones.png", "skeleton: spine, ribs, sternum, other bones; anterior view")


if __name__ == "__main__":
    main()
