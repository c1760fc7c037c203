#!/bin/bash
# bench/load_case/run.sh - how long a clinician waits for a case to open in
# the browser: image + label map + every mesh, on localhost (issue 5,
# target under 5 s for a 512x512x300 CT with twenty structures).
#
#   bash bench/load_case/run.sh [SERIES_DIR] [STRUCTURES]
#
# Default series: ../shared/data/ct/chest_ct_itkelastix/00 (512x512x141, the
# largest real CT we have), reconstructed automatically ("all"). Starts
# `recon3d serve` on a free port with a temporary store, imports, runs the
# reconstruction, then opens the case five times in a headless browser and
# prints the server-side transfer times and the browser's own load times
# (R3D_BROWSER=chromium|firefox|webkit, default chromium; no GPU here, so
# WebGL is software: SwiftShader, llvmpipe; the browser figure is an
# upper bound for any machine with a GPU). Timing only; never a test.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
RECON3D=${RECON3D:-$SRC/build/recon3d}
SERIES=${1:-$SRC/../shared/data/ct/chest_ct_itkelastix/00}
STRUCTURES=${2:-all}
[ -x "$RECON3D" ] || { echo "build recon3d first (or set RECON3D)"; exit 1; }
[ -f "$SRC/web/dist/index.html" ] || (cd "$SRC/web" && npm ci --no-audit --no-fund && npm run build)
export RECON3D SERIES STRUCTURES SRC
exec node "$SRC/bench/load_case/load.mjs"
