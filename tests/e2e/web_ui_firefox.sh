#!/bin/bash
# ctest: release-only (software WebGL; the routes run under ASan in server_api.py)
# The browser end-to-end test (web_ui.sh, tests/web/ui.test.mjs) in Debian's
# Firefox ESR, driven by playwright-core over WebDriver BiDi, WebGL2 on
# Mesa's llvmpipe: the same 33 steps as in Chromium (issue 5: "works in
# current Chromium, Firefox and Safari"; Safari has no Linux build to test).
R3D_BROWSER=firefox exec bash "$(dirname "$0")/web_ui.sh"
