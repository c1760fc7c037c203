#!/usr/bin/env bash
# mesh_cli.sh - end-to-end tests of `recon3d mesh` on real label maps and a
# real CT: every output read back by independent tools (assimp, admesh),
# enclosed volumes against voxel counts, names kept per structure, and
# bad requests refused with one clear line and nothing written.
set -u
R=${RECON3D:-build/recon3d}
DATA=${R3D_DATA:-../shared/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0
ok()  { pass=$((pass+1)); echo "  ok    $1"; }
bad() { fail=$((fail+1)); echo "  FAIL  $1"; }
run() { "$@" >"$T/.stdout" 2>"$T/.stderr"; }

seg=$DATA/ct/totalseg/tests/reference_files/example_seg.nii.gz
nod=$DATA/masks/medmpd/Data/Liver/Patient1/liver.nii.gz
ct=$DATA/ct/chest_ct_itkelastix
if [ ! -f "$seg" ]; then
  echo "  skip  mesh CLI tests: no shared data at $DATA"
  echo "mesh_cli: 0 passed, 0 failed"; exit 0
fi

echo "== a multi-organ label map, every format"
# OBJ gets every label (its object names are checked below); the other
# formats three of them - every writer on real anatomy, without meshing 41
# structures eight times (mesh_real_readback.py reads all of them back).
three=$(/usr/bin/python3 -c "import sys, nibabel as nib, numpy as np
v = [int(x) for x in np.unique(np.asanyarray(nib.load(sys.argv[1]).dataobj)) if x]
print(' '.join('--label %d' % x for x in v[:3]))" "$seg")
for ext in stl obj ply 3mf amf wrl 3ds glb; do
  sel=$three; [ "$ext" = obj ] && sel=""
  # shellcheck disable=SC2086
  if run "$R" mesh "$seg" -o "$T/seg.$ext" $sel --quiet && [ -s "$T/seg.$ext" ]; then ok "mesh -> .$ext"
  else bad "mesh -> .$ext: $(head -c 300 "$T/.stderr")"; fi
done
if command -v assimp >/dev/null; then
  for ext in stl obj ply 3mf amf 3ds glb; do
    if assimp info "$T/seg.$ext" >"$T/ai.txt" 2>&1 && grep -qE "Faces: +[1-9]" "$T/ai.txt"; then ok "assimp reads .$ext ($(grep -E 'Faces:' "$T/ai.txt" | head -1 | tr -s ' '))"
    else bad "assimp cannot read .$ext: $(tail -3 "$T/ai.txt")"; fi
  done
else echo "  skip  assimp not installed"; fi
/usr/bin/python3 - "$T/seg.obj" "$seg" <<'PY' && ok "OBJ keeps one named object per label present" || bad "OBJ objects do not match the labels"
import sys, nibabel as nib, numpy as np
objs = [l.split()[1] for l in open(sys.argv[1]) if l.startswith("o ")]
labels = [int(v) for v in np.unique(np.asanyarray(nib.load(sys.argv[2]).dataobj)) if v]
sys.exit(0 if len(objs) == len(labels) else 1)
PY

echo "== volume and closure of one structure"
if run "$R" mesh "$nod" -o "$T/liver.stl" --smooth 0 && grep -q "closed, manifold" "$T/.stderr"; then ok "liver surface closed and manifold"
else bad "liver surface: $(head -c 300 "$T/.stderr")"; fi
/usr/bin/python3 - "$T/liver.stl" "$nod" <<'PY' && ok "liver mesh volume within 2 % of its voxel volume" || bad "liver mesh volume"
import sys, struct, nibabel as nib, numpy as np
b = open(sys.argv[1], "rb").read(); n = struct.unpack("<I", b[80:84])[0]
vol = 0.0
for i in range(n):
    o = 84 + 50 * i + 12
    a = np.frombuffer(b[o:o + 36], "<f4").reshape(3, 3).astype(float)
    vol += np.dot(a[0], np.cross(a[1], a[2])) / 6
img = nib.load(sys.argv[2]); vox = np.prod(img.header.get_zooms()[:3])
ref = np.count_nonzero(np.asanyarray(img.dataobj)) * vox
print(f"    mesh {abs(vol):.1f} mm3, voxels {ref:.1f} mm3")
sys.exit(0 if abs(abs(vol) - ref) <= 0.02 * ref else 1)
PY
if command -v admesh >/dev/null; then
  admesh "$T/liver.stl" >"$T/adm.txt" 2>&1
  e=$(grep -E "Edges fixed|Facets removed|Degenerate facets|Backwards edges|Normals fixed" "$T/adm.txt" | awk -F: '{s+=$2} END {print s+0}')
  [ "$e" = "0" ] && ok "admesh finds nothing to fix" || bad "admesh fixed things: $(grep -E 'fixed|removed|Backwards' "$T/adm.txt" | tr -s ' ' | tr '\n' ';')"
fi

echo "== threshold reconstruction of a CT, decimated"
if run "$R" mesh "$ct" -o "$T/bone.stl" --threshold 300 --keep-largest --decimate 0.2 --quiet && [ -s "$T/bone.stl" ]; then ok "bone at 300 HU from the DICOM series"
else bad "bone: $(head -c 300 "$T/.stderr")"; fi

echo "== bad requests"
run "$R" mesh "$ct" -o "$T/x.stl"; rc=$?
[ $rc -eq 1 ] || [ $rc -eq 2 ] && grep -q "threshold" "$T/.stderr" && [ ! -e "$T/x.stl" ] && ok "grey image without --threshold refused ($rc)" || bad "grey image without threshold: rc=$rc $(head -c 200 "$T/.stderr")"
run "$R" mesh "$seg" -o "$T/x.xyz"; rc=$?
[ $rc -eq 1 ] && grep -q "unknown mesh format" "$T/.stderr" && ok "unknown format refused" || bad "unknown format: rc=$rc"
run "$R" mesh "$seg" -o "$T/x.stl" --label 9999; rc=$?
[ $rc -eq 6 ] && grep -q "none of the requested labels" "$T/.stderr" && [ ! -e "$T/x.stl" ] && ok "absent label refused, nothing written" || bad "absent label: rc=$rc"
run "$R" mesh "$seg" -o "$T/nodir/x.stl"; rc=$?
[ $rc -eq 4 ] && ok "unwritable output is exit 4" || bad "unwritable output: rc=$rc"
n=$(find "$T" -name '*.tmp-*' | wc -l); [ "$n" -eq 0 ] && ok "no temporary files left" || bad "$n temporary files left"

echo "mesh_cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
