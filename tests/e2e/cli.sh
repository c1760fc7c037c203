#!/usr/bin/env bash
# cli.sh - end-to-end tests of the recon3d command line: every command on
# real and synthetic input, and every kind of bad input giving one clear
# line on stderr that names the file, the documented exit code, and no
# output left behind (docs/EXIT_CODES.md).
set -u
R=${RECON3D:-build/recon3d}
DATA=${R3D_DATA:-../shared/data}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0; fail=0

ok()  { pass=$((pass+1)); echo "  ok    $1"; }
bad() { fail=$((fail+1)); echo "  FAIL  $1"; }

# expect NAME CODE PATTERN -- command...: exit code and a stderr pattern
expect() {
  local name=$1 code=$2 pat=$3; shift 4
  "$@" >"$T/.stdout" 2>"$T/.stderr"; local rc=$?
  if [ "$rc" -ne "$code" ]; then bad "$name: exit $rc, expected $code; stderr: $(head -c 300 "$T/.stderr")"; return; fi
  if [ -n "$pat" ] && ! grep -qE "$pat" "$T/.stderr"; then bad "$name: stderr lacks /$pat/: $(head -c 300 "$T/.stderr")"; return; fi
  if grep -qiE "segmentation fault|AddressSanitizer|runtime error" "$T/.stderr"; then bad "$name: sanitizer/crash report"; return; fi
  ok "$name"
}
no_leftovers() {  # nothing but what is expected in the output folder
  local n; n=$(find "$1" -name '*.tmp-*' | wc -l)
  [ "$n" -eq 0 ] && ok "$2: no temporary files left" || bad "$2: $n temporary files left"
}

echo "== usage"
expect "no command" 1 "usage" -- "$R"
expect "unknown command" 1 "unknown command" -- "$R" frobnicate
expect "--help" 0 "" -- "$R" --help
expect "convert without -o" 1 "required" -- "$R" convert /nonexistent
expect "convert to .stl" 1 "must end in .nii" -- "$R" convert /nonexistent -o "$T/x.stl"
expect "info unknown option" 1 "unknown option" -- "$R" info --bogus x

echo "== bad input"
expect "missing path" 2 "/nonexistent/study: " -- "$R" info /nonexistent/study
mkdir -p "$T/empty"
expect "empty folder" 6 "empty: no files" -- "$R" convert "$T/empty" -o "$T/e.nii"
mkdir -p "$T/junk"; head -c 5000 /dev/urandom >"$T/junk/a.bin"; echo hello >"$T/junk/b.txt"
expect "folder without DICOM" 6 "junk: no DICOM images" -- "$R" convert "$T/junk" -o "$T/j.nii"
[ ! -e "$T/j.nii" ] && [ ! -e "$T/j.json" ] && ok "nothing written on failure" || bad "output written on failure"
head -c 348 /dev/zero >"$T/zero.nii"
expect "NIfTI with a zero header" 2 "zero.nii" -- "$R" info "$T/zero.nii"
printf 'PK\003\004garbage' >"$T/bad.zip"
expect "broken zip" 2 "bad.zip" -- "$R" info "$T/bad.zip"

if [ -d "$DATA/dicom" ]; then
  ct="$DATA/dicom/cornerstone_wado/testImages/CTImage.dcm_LittleEndianExplicitTransferSyntax_1.2.840.10008.1.2.1.dcm"
  head -c 2000 "$ct" >"$T/header_only.dcm"   # ends cleanly before the image module
  expect "DICOM without an image" 6 "header_only.dcm: no DICOM images" -- "$R" convert "$T/header_only.dcm" -o "$T/h.nii"
  head -c 6000 "$ct" >"$T/truncated.dcm"
  expect "truncated DICOM file" 2 "truncated.dcm" -- "$R" convert "$T/truncated.dcm" -o "$T/t.nii"
  [ ! -e "$T/t.nii" ] && ok "truncated: nothing written" || bad "truncated: output written"
  # a study folder with one broken file still converts, and info names the file
  mkdir -p "$T/mixed"; cp -r "$DATA"/ct/chest_ct_itkelastix/. "$T/mixed/"
  f=$(cd "$T/mixed" && find . -type f -name '*.dcm' | sort | sed -n 70p)
  head -c 1500 "$T/mixed/$f" >"$T/mixed/$f.cut"; rm "$T/mixed/$f"; f=$(basename "$f")
  expect "study with one cut file converts" 0 "" -- "$R" convert "$T/mixed" -o "$T/m.nii.gz" --quiet
  "$R" info "$T/mixed" >"$T/info.txt" 2>&1
  grep -q "$f.cut" "$T/info.txt" && ok "info names the cut file" || bad "info does not name the cut file"
  grep -q "slice missing" "$T/info.txt" && ok "info reports the missing slice" || bad "info does not report the missing slice"
  rm -rf "$T/mixed"

  echo "== conversions"
  mkdir -p "$T/out"
  expect "convert chest CT to .nii.gz" 0 "" -- "$R" convert "$DATA/ct/chest_ct_itkelastix" -o "$T/out/chest.nii.gz" --quiet
  /usr/bin/python3 - "$T/out" <<'PY' && ok "sidecar JSON is valid and states the acquisition" || bad "sidecar JSON"
import json, sys
j = json.load(open(sys.argv[1] + "/chest.json"))
assert j["Modality"] == "CT" and j["Manufacturer"] == "Philips", j
assert j["KVP"] == 120 and j["ConvolutionKernel"] == "C" and j["SliceThickness"] == 2
assert j["Geometry"]["Dimensions"] == [512, 512, 141]
assert "PatientName" not in json.dumps(j) and "PatientID" not in j
PY
  no_leftovers "$T/out" "convert"
  expect "NIfTI in, NIfTI out" 0 "" -- "$R" convert "$T/out/chest.nii.gz" -o "$T/out/copy.nii" --quiet
  /usr/bin/python3 -c "
import nibabel as nib, numpy as np, sys
a = nib.load('$T/out/chest.nii.gz'); b = nib.load('$T/out/copy.nii')
sys.exit(0 if np.array_equal(a.get_fdata(), b.get_fdata()) and np.allclose(a.affine, b.affine, atol=1e-4) else 1)
" && ok "NIfTI round trip identical" || bad "NIfTI round trip differs"
  "$R" info --json "$DATA/dicom/dicom2nifti/failing/gantrytilting/001" >"$T/tilt.json" 2>/dev/null
  /usr/bin/python3 -c "
import json; j = json.load(open('$T/tilt.json')); s = j['series'][0]
assert abs(s['gantry_tilt_deg'] - 14.0) < 0.1, s
" && ok "info --json reports the gantry tilt" || bad "info --json tilt"
  chmod 555 "$T/out"
  if [ "$(id -u)" -ne 0 ]; then
    expect "unwritable output folder" 4 "copy2.nii" -- "$R" convert "$T/out/chest.nii.gz" -o "$T/out/copy2.nii"
  fi
  chmod 755 "$T/out"
  expect "output folder missing" 4 "nodir/x.nii" -- "$R" convert "$T/out/chest.nii.gz" -o "$T/nodir/x.nii"
else
  echo "  skip  data-dependent CLI tests: no shared data at $DATA"
fi

echo "cli: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
