// browsers.mjs - the three browser engines the workstation is tested in,
// started the same way for the browser test (tests/web/ui.test.mjs) and the
// load bench (bench/load_case): R3D_BROWSER=chromium (default) | firefox |
// webkit. No GPU here, so each draws WebGL2 in software: Chromium on
// SwiftShader, Firefox on Mesa's llvmpipe, WebKitGTK on its own GL path
// under Xvfb.
import fs from 'node:fs'
import path from 'node:path'
import { createRequire } from 'node:module'
import { launchWebKit, webkitAvailable } from './webdriver.mjs'

const SRC = path.resolve(import.meta.dirname, '../..')
// playwright-core is web/'s dev dependency: resolve it from there
const { chromium, firefox } = createRequire(path.join(SRC, 'web/package.json'))('playwright-core')

const EXE = { chromium: '/usr/bin/chromium', firefox: '/usr/bin/firefox-esr', webkit: '/usr/bin/WebKitWebDriver' }

// why `name` cannot run here, or '' when it can
export function browserMissing(name) {
  if (!EXE[name]) return `unknown browser ${name} (chromium, firefox or webkit)`
  if (!fs.existsSync(EXE[name])) return `${EXE[name]} is missing`
  if (name === 'webkit' && !webkitAvailable()) return 'WebKitGTK MiniBrowser or xvfb-run is missing'
  return ''
}

export async function launchBrowser(name, { viewport = { width: 1366, height: 768 }, locale = 'en-US' } = {}) {
  if (name === 'webkit') return launchWebKit({ viewport, locale })
  const browser = name === 'firefox'
    ? await firefox.launch({
      channel: 'moz-firefox', executablePath: EXE.firefox, headless: true,
      // no GPU here: WebGL2 through Mesa's software rasteriser
      env: { ...process.env, LIBGL_ALWAYS_SOFTWARE: '1', MOZ_WEBGL_FORCE_EGL: '1' },
      firefoxUserPrefs: { 'webgl.force-enabled': true, 'webgl.disable-fail-if-major-performance-caveat': true, 'gfx.webrender.software': true },
    })
    : await chromium.launch({
      executablePath: EXE.chromium, headless: true,
      args: ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--no-sandbox', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'],
    })
  // the context takes the viewport and locale given here, as the WebDriver
  // adapter's does
  const newContext = browser.newContext.bind(browser)
  return {
    version: () => `${name} ${browser.version()}`,
    newContext: () => newContext({ viewport, locale }),
    close: () => browser.close(),
  }
}
