#!/bin/bash
# ctest: release-only (a browser on software WebGL takes minutes; the server's
# routes run under ASan in server_api.py)
# Browser end-to-end test of `recon3d serve` + web/ (tests/web/ui.test.mjs):
# Debian's Chromium (headless, SwiftShader WebGL2) driven by playwright-core;
# R3D_BROWSER=firefox runs the same steps in Debian's Firefox ESR
# (web_ui_firefox.sh), R3D_BROWSER=webkit in WebKitGTK (web_ui_webkit.sh).
# Builds the front end first when web/dist is missing or older than its
# sources (npm ci from the committed lock file when node_modules is missing).
set -euo pipefail
SRC=${R3D_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
: "${RECON3D:?RECON3D must name the recon3d binary}"
DATA=${R3D_DATA:-$SRC/../shared/data}
if [ ! -d "$DATA/ct/totalseg/tests/reference_files/example_ct_dicom" ]; then
    echo "SKIP: ../shared/data is missing"; exit 0
fi
export R3D_BROWSER=${R3D_BROWSER:-chromium}
exe=/usr/bin/chromium
[ "$R3D_BROWSER" = firefox ] && exe=/usr/bin/firefox-esr
[ "$R3D_BROWSER" = webkit ] && exe=/usr/bin/WebKitWebDriver
for tool in node npm "$exe"; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool is not installed"; exit 0; }
done
cd "$SRC/web"
# concurrent runs (release and ASan) must not build into each other
exec 9>"${TMPDIR:-/tmp}/r3d-web-build.lock"
flock 9
if [ ! -d node_modules/@niivue/niivue ] || [ ! -d node_modules/playwright-core ]; then
    npm ci --no-audit --no-fund >/dev/null
fi
if [ ! -f dist/index.html ] || [ -n "$(find src index.html package-lock.json vite.config.js -newer dist/index.html -print -quit)" ]; then
    npm run build >/dev/null
fi
flock -u 9
OUT=${R3D_BUILD:-/tmp}/web-ui-$R3D_BROWSER
mkdir -p "$OUT"
export RECON3D R3D_DATA="$DATA" R3D_SRC="$SRC" OUT
exec node "$SRC/tests/web/ui.test.mjs"
