"""segment_cranium.py - `recon3d segment` on Debian's Cranium head CT
(invesalius-examples, converted with `recon3d convert`): a head has no
lungs, so no airway, lung, lobe, rib or sternum may be reported (the
pharynx, nasal cavity and sinuses are not a trachea); the skull is found
with a plausible volume (an adult skull's bone, vault to the teeth, is
about 0.3-1.2 L), and it lies above the neck's structures: labels.nii.gz
agrees with labels.json (numpy)."""
import json
import os
import subprocess
import sys
import tempfile

import nibabel as nib
import numpy as np

R = os.environ.get("RECON3D", "build/recon3d")
INV3 = "/usr/share/doc/invesalius-examples/examples/Cranium.inv3"
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
        print("  ok    " + what)
    else:
        failed += 1
        print("  FAIL  " + what)


FORBIDDEN = ("trachea", "bronchi", "bronchus", "lung", "rib", "sternum", "pulmonary", "airway")


def main():
    if not os.path.exists(INV3):
        print("SKIP: no %s (Debian package invesalius-examples)" % INV3)
        return 0
    with tempfile.TemporaryDirectory() as t:
        ct = os.path.join(t, "cranium.nii.gz")
        r = subprocess.run([R, "convert", INV3, "-o", ct], capture_output=True, text=True)
        check(r.returncode == 0, "convert Cranium.inv3 (%s)" % r.stderr[-200:])
        out = os.path.join(t, "seg")
        r = subprocess.run([R, "segment", ct, "-o", out, "--no-meshes", "--quiet"],
                           capture_output=True, text=True)
        check(r.returncode == 0, "segment exits 0 (%s)" % r.stderr[-300:].replace("\n", " | "))
        if r.returncode != 0:
            return 1
        rep = json.load(open(os.path.join(out, "report.json")))
        names = {s["name"]: s for s in rep["structures"]}
        bad = [n for n in names if any(f in n for f in FORBIDDEN)]
        check(not bad, "no airway, lung, rib or sternum structure reported (%s)" % bad)
        check("airway" in rep["absent"] and "lung_right" in rep["absent"]
              and "lung_left" in rep["absent"], "airway and lungs listed absent (%s)" % rep["absent"])
        check("airway" not in rep, "no airway tree in the report")
        check("skull" in names, "skull found")
        vol = names.get("skull", {}).get("volume_ml", 0)
        check(300 <= vol <= 1200, "skull volume plausible (%.0f mL)" % vol)
        bones = sum(s["volume_ml"] for n, s in names.items()
                    if n in ("skull", "mandible", "spine", "bones"))
        check(vol >= 0.8 * bones, "the skull is most of the bone (%.0f of %.0f mL)" % (vol, bones))
        img = nib.as_closest_canonical(nib.load(os.path.join(out, "labels.nii.gz")))
        lab = np.asanyarray(img.dataobj)
        table = {l["name"]: l for l in json.load(open(os.path.join(out, "labels.json")))["labels"]}
        sk = lab == table.get("skull", {}).get("value", -1)
        check(int(sk.sum()) == table.get("skull", {}).get("voxels", -1),
              "skull voxels in labels.nii.gz match labels.json")
        if sk.any():
            z = np.nonzero(sk.any(axis=(0, 1)))[0]
            # the vault reaches the scan's top (the Cranium CT ends at the vertex)
            check(z.max() >= lab.shape[2] - 4, "skull reaches the top of the head (slice %d of %d)"
                  % (z.max(), lab.shape[2]))
            if "spine" in table:
                sp = lab == table["spine"]["value"]
                zs = np.nonzero(sp.any(axis=(0, 1)))[0]
                check(zs.max() < z.max() - 40, "cervical spine only low in the head (top slice %d)"
                      % zs.max())
    print("segment_cranium: %d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
