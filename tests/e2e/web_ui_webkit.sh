#!/bin/bash
# ctest: release-only (software WebGL; the routes run under ASan in server_api.py)
# The browser end-to-end test (web_ui.sh, tests/web/ui.test.mjs) in WebKit,
# the engine of Safari: Debian's WebKitGTK MiniBrowser under Xvfb, driven
# through WebKitWebDriver (W3C WebDriver, tests/web/webdriver.mjs), the same
# 33 steps as in Chromium and Firefox (issue 5). Safari itself has no Linux
# build; its engine and JavaScriptCore are what this covers.
R3D_BROWSER=webkit exec bash "$(dirname "$0")/web_ui.sh"
