// webdriver.mjs - WebKit (the engine of Safari) for the browser test.
//
// Playwright drives WebKit only through its own patched build, which Debian
// does not ship. Debian does ship WebKitGTK with its W3C WebDriver server
// (webkit2gtk-driver: WebKitWebDriver, which runs WebKitGTK's MiniBrowser),
// so this file speaks plain WebDriver over HTTP and offers the part of
// Playwright's page API that tests/web/ui.test.mjs uses: the test itself
// is the same for all three engines. MiniBrowser needs an X display: Xvfb,
// started here through xvfb-run.
//
// Differences from Playwright, all on the test's side of the wire:
//  - uncaught page errors are collected by listeners installed after each
//    page.goto (window 'error' and 'unhandledrejection'), read back by
//    page.collectErrors(); an error thrown while the page first loads, before
//    the listeners exist, is not seen;
//  - mouse positions are rounded to whole CSS pixels (WebDriver's actions
//    take integers);
//  - page.fill and page.selectOption set the value and fire input/change
//    events from script, as a user's typing would end.
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import net from 'node:net'

const DRIVER = '/usr/bin/WebKitWebDriver'
const BROWSER = '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser'
const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf'
export const webkitAvailable = () => [DRIVER, BROWSER, '/usr/bin/xvfb-run'].every((f) => fs.existsSync(f))

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.on('error', reject)
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)) })
  })
}

// A function given as a value becomes source the page can call.
const src = (f) => (typeof f === 'function' ? f.toString() : `() => (${f})`)

export async function launchWebKit({ viewport = { width: 1366, height: 768 }, locale = 'en-US' } = {}) {
  const port = await freePort()
  const lang = locale.replace('-', '_') + '.UTF-8'
  // the screen is larger than the window so the window keeps the size asked for
  const proc = spawn('/usr/bin/xvfb-run', ['-a', '-s', '-screen 0 1920x1200x24', DRIVER, `--port=${port}`], {
    detached: true, stdio: 'ignore', env: { ...process.env, LANG: lang, LANGUAGE: locale.split('-')[0] },
  })
  const W = `http://127.0.0.1:${port}`
  let timeout = 30000
  async function wd(method, p, body) {
    const r = await fetch(W + p, { method, headers: { 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) })
    const j = await r.json()
    if (!r.ok) throw new Error(`webdriver ${p.replace(/^\/session\/[^/]+/, '')}: ${j.value?.error}: ${j.value?.message}`)
    return j.value
  }
  const t0 = Date.now()
  for (;;) {
    try { if ((await wd('GET', '/status')).ready) break } catch {}
    if (Date.now() - t0 > 20000) { process.kill(-proc.pid, 'SIGTERM'); throw new Error('WebKitWebDriver did not start') }
    await sleep(200)
  }
  let s, S
  try {
    s = await wd('POST', '/session', { capabilities: { alwaysMatch: { 'webkitgtk:browserOptions': { binary: BROWSER, args: ['--automation'] } } } })
    S = `/session/${s.sessionId}`
    // the window is sized so that the page's viewport is the one asked for
    await wd('POST', `${S}/window/rect`, { width: viewport.width, height: viewport.height })
    const inner = await wd('POST', `${S}/execute/sync`, { script: 'return [innerWidth, innerHeight]', args: [] })
    await wd('POST', `${S}/window/rect`, { width: 2 * viewport.width - inner[0], height: 2 * viewport.height - inner[1] })
  } catch (e) {
    try { process.kill(-proc.pid, 'SIGTERM') } catch {} // Xvfb and the driver go too
    throw e
  }

  // run fn(arg) in the page; promises are awaited (WebDriver's execute does)
  const evaluate = (fn, arg) => wd('POST', `${S}/execute/sync`, { script: `return (${src(fn)})(arguments[0])`, args: [arg === undefined ? null : arg] })
  const $eval = (sel, fn, arg) => wd('POST', `${S}/execute/sync`, {
    script: `const el = document.querySelector(arguments[0]); if (!el) throw new Error('no element ' + arguments[0]); return (${src(fn)})(el, arguments[1])`,
    args: [sel, arg === undefined ? null : arg],
  })
  async function waitFor(fn, arg, ms, what) {
    const end = Date.now() + (ms ?? timeout)
    for (;;) {
      if (await evaluate(fn, arg)) return
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await sleep(100)
    }
  }
  const visible = (sel) => { const el = document.querySelector(sel); return !!el && !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length) }
  let mx = 0, my = 0
  const pointer = (actions) => wd('POST', `${S}/actions`, { actions: [{ type: 'pointer', id: 'mouse', parameters: { pointerType: 'mouse' }, actions }] })
  const move = (x, y) => ({ type: 'pointerMove', duration: 0, origin: 'viewport', x: Math.round(x), y: Math.round(y) })
  const page = {
    setDefaultTimeout(ms) { timeout = ms },
    on() {}, // see collectErrors
    async goto(url) {
      await wd('POST', `${S}/url`, { url })
      await evaluate(() => {
        window.__r3dErrors = []
        addEventListener('error', (e) => window.__r3dErrors.push(String(e.message)))
        addEventListener('unhandledrejection', (e) => window.__r3dErrors.push(String(e.reason)))
      })
    },
    collectErrors: () => evaluate(() => window.__r3dErrors || []),
    evaluate,
    $eval,
    waitForTimeout: sleep,
    waitForFunction: (fn, arg, opts = {}) => waitFor(fn, arg, opts.timeout, 'a condition in the page'),
    waitForSelector: (sel, opts = {}) => waitFor(visible, sel, opts.timeout, sel),
    isVisible: (sel) => evaluate(visible, sel),
    fill: (sel, v) => $eval(sel, (el, v) => { el.focus(); el.value = v; el.dispatchEvent(new Event('input', { bubbles: true })); el.dispatchEvent(new Event('change', { bubbles: true })) }, v),
    selectOption: (sel, v) => $eval(sel, (el, v) => { el.value = v; el.dispatchEvent(new Event('input', { bubbles: true })); el.dispatchEvent(new Event('change', { bubbles: true })) }, v),
    dispatchEvent: (sel, type) => $eval(sel, (el, type) => el.dispatchEvent(new Event(type, { bubbles: true })), type),
    getAttribute: (sel, name) => $eval(sel, (el, name) => el.getAttribute(name), name),
    locator: (sel) => ({ boundingBox: () => $eval(sel, (el) => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, width: r.width, height: r.height } }) }),
    async setInputFiles(sel, file) {
      // a file field hidden by the page's styling is shown for the moment
      // WebDriver types the path into it
      const was = await $eval(sel, (el) => { const d = el.style.display; el.style.display = 'block'; return d })
      const el = await wd('POST', `${S}/element`, { using: 'css selector', value: sel })
      await wd('POST', `${S}/element/${el[ELEMENT]}/value`, { text: file })
      await $eval(sel, (el, d) => { el.style.display = d }, was)
    },
    async screenshot({ path }) {
      fs.writeFileSync(path, Buffer.from(await wd('GET', `${S}/screenshot`), 'base64'))
    },
    mouse: {
      async move(x, y, opts = {}) {
        const n = opts.steps || 1, acts = []
        for (let i = 1; i <= n; i++) acts.push(move(mx + ((x - mx) * i) / n, my + ((y - my) * i) / n))
        mx = x; my = y
        await pointer(acts)
      },
      async down() { await pointer([move(mx, my), { type: 'pointerDown', button: 0 }]) },
      async up() { await pointer([move(mx, my), { type: 'pointerUp', button: 0 }]) },
      async click(x, y) { mx = x; my = y; await pointer([move(x, y), { type: 'pointerDown', button: 0 }, { type: 'pointerUp', button: 0 }]) },
    },
  }
  const browser = {
    version: () => `webkit ${s.capabilities.browserVersion} (WebKitGTK ${s.capabilities.browserName})`,
    newContext: async () => ({ newPage: async () => page }),
    async close() {
      await wd('DELETE', S).catch(() => {})
      try { process.kill(-proc.pid, 'SIGTERM') } catch {}
    },
  }
  return browser
}
