// Browser end-to-end test of the workstation against `recon3d serve` on a
// free loopback port, in Debian's Chromium driven by playwright-core; with
// R3D_BROWSER=firefox in Debian's Firefox ESR (playwright-core over
// WebDriver BiDi, WebGL2 on Mesa's llvmpipe); with R3D_BROWSER=webkit in
// WebKitGTK, the engine of Safari, through its W3C WebDriver
// (tests/web/webdriver.mjs).
//
// What it proves, step by step (a screenshot of each under $OUT):
//  - first-run set-up and sign-in through the page;
//  - a real CT series (zip upload of ../shared/data) imports and the
//    automatic reconstruction runs from the "reconstruct" button with a
//    progress bar, leaving objects with meshes in the list;
//  - every view (axial, coronal, sagittal, 3D, multiplanar) and the
//    window/level presets change what NiiVue draws;
//  - on a phantom (a 40 mm cube in a 100 mm field, 1 mm voxels, written
//    here): a length measured between two known screen points is 60 mm;
//  - painting then erasing with the brush changes the label map on the
//    server by the painted voxels and back;
//  - clicking the cube in the 3D view picks it; deleting it removes its
//    label from the server's label map; undo restores it;
//  - regenerating a mesh at smoothness 0 and 10 stores two different meshes;
//  - in Chinese mode no English string of the interface remains visible.
import { spawn, execFileSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const RECON3D = process.env.RECON3D
const DATA = process.env.R3D_DATA
const SRC = process.env.R3D_SRC || path.resolve(import.meta.dirname, '../..')
const { STRINGS } = await import(path.join(SRC, 'web/src/i18n.js'))
const { launchBrowser, browserMissing } = await import('./browsers.mjs')
const BROWSER = process.env.R3D_BROWSER || 'chromium'
const OUT = process.env.OUT || path.join(process.env.R3D_BUILD || os.tmpdir(), 'web-ui')
const SERIES = path.join(DATA || '', 'ct/totalseg/tests/reference_files/example_ct_dicom')
fs.mkdirSync(OUT, { recursive: true })

let passed = 0, failed = 0
const started = Date.now()
// each line carries the seconds since the start, so a slow step shows in the log
function check(cond, what, got) {
  const at = `${((Date.now() - started) / 1000).toFixed(1).padStart(6)} s`
  if (cond) { passed++; console.log(`ok   ${at}  ${what}`) } else { failed++; console.log(`FAIL ${at}  ${what}${got !== undefined ? ` (got ${JSON.stringify(got)})` : ''}`) }
}

// ---- a phantom NIfTI: 100x100x20 int16, 1 mm, -1000 HU with a 1000 HU cube ----
function writePhantom(file) {
  const [nx, ny, nz] = [100, 100, 20]
  const hdr = Buffer.alloc(352)
  hdr.writeInt32LE(348, 0)
  hdr.writeInt16LE(3, 40); hdr.writeInt16LE(nx, 42); hdr.writeInt16LE(ny, 44); hdr.writeInt16LE(nz, 46)
  for (let i = 4; i < 8; i++) hdr.writeInt16LE(1, 40 + 2 * i)
  hdr.writeInt16LE(4, 70) // int16
  hdr.writeInt16LE(16, 72)
  for (let i = 0; i < 4; i++) hdr.writeFloatLE(1, 76 + 4 * i)
  hdr.writeFloatLE(352, 108) // vox_offset
  hdr.writeFloatLE(1, 112) // scl_slope
  hdr.writeInt16LE(0, 252); hdr.writeInt16LE(1, 254) // qform 0, sform 1
  const srow = [[1, 0, 0, -50], [0, 1, 0, -50], [0, 0, 1, -10]]
  srow.forEach((r, k) => r.forEach((v, i) => hdr.writeFloatLE(v, 280 + 16 * k + 4 * i)))
  hdr.write('n+1\0', 344, 'latin1')
  const img = Buffer.alloc(nx * ny * nz * 2)
  for (let z = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++) {
    const inCube = x >= 30 && x < 70 && y >= 30 && y < 70 && z >= 0 && z < 20
    img.writeInt16LE(inCube ? 1000 : -1000, 2 * (x + nx * (y + ny * z)))
  }
  fs.writeFileSync(file, Buffer.concat([hdr, img]))
}

function freeServer(tmp) {
  const store = path.join(tmp, 'store'), portFile = path.join(tmp, 'port')
  const web = path.join(SRC, 'web/dist')
  // stderr to a file checked at the end: in the ASan build this run is also
  // the server's memory check
  const log = fs.openSync(path.join(tmp, 'server.log'), 'w')
  const p = spawn(RECON3D, ['serve', '--store', store, '--port', '0', '--port-file', portFile, '--web', web, '--quiet', '--workers', '2'], { stdio: ['ignore', 'inherit', log] })
  return new Promise((resolve, reject) => {
    const t0 = Date.now()
    const poll = () => {
      if (fs.existsSync(portFile)) return resolve({ proc: p, port: Number(fs.readFileSync(portFile, 'utf8')) })
      if (p.exitCode !== null || Date.now() - t0 > 20000) return reject(new Error('the server did not start'))
      setTimeout(poll, 100)
    }
    poll()
  })
}

async function main() {
  if (!RECON3D) { console.log('SKIP: RECON3D is not set'); return }
  if (!DATA || !fs.existsSync(SERIES)) { console.log('SKIP: ../shared/data (example_ct_dicom) is missing'); return }
  const missing = browserMissing(BROWSER)
  if (missing) { console.log(`SKIP: ${missing}`); return }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'r3d-web-'))
  const phantom = path.join(tmp, 'phantom.nii')
  writePhantom(phantom)
  const zip = path.join(tmp, 'series.zip')
  execFileSync('/usr/bin/python3', ['-c', `import zipfile,os,sys
z=zipfile.ZipFile(sys.argv[2],'w')
for f in sorted(os.listdir(sys.argv[1])): z.write(os.path.join(sys.argv[1],f), 'series/'+f)
z.close()`, SERIES, zip])

  const { proc, port } = await freeServer(tmp)
  const base = `http://127.0.0.1:${port}`
  const browser = await launchBrowser(BROWSER)
  console.log(`browser: ${browser.version()}`)
  const ctx = await browser.newContext() // 1366x768, en-US (browsers.mjs)
  const page = await ctx.newPage()
  const pageErrors = []
  page.on('pageerror', (e) => pageErrors.push(String(e)))
  if (process.env.R3D_DEBUG) page.on('console', (m) => console.log('  console:', m.type(), m.text()))
  if (process.env.R3D_DEBUG) page.on('response', async (r) => { if (r.url().includes('/api/')) console.log('  <-', r.request().method(), r.url().replace(/^https?:\/\/[^/]+/, ''), r.status(), r.status() >= 400 ? await r.text().catch(() => '') : '') })
  page.setDefaultTimeout(120000)
  const shot = (name) => page.screenshot({ path: path.join(OUT, `${name}.png`), timeout: 120000 })
  // buttons are pressed through the DOM: playwright's "stable" check waits for
  // animation frames, which software WebGL on a busy machine hands out slowly
  const press = (sel) => page.$eval(sel, (el) => el.click())
  const api = (method, p, body) => page.evaluate(async ([method, p, body]) => {
    const r = await fetch(p, { method, headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': window.r3d.csrf }, body: body ? JSON.stringify(body) : undefined })
    return { status: r.status, json: r.headers.get('content-type')?.includes('json') ? await r.json() : null }
  }, [method, p, body])
  const idle = async () => {
    await page.waitForFunction(() => document.querySelector('#progress').hidden && window.r3d.busy === 0, null, { timeout: 120000 })
    await page.waitForTimeout(300)
  }
  try {
    // ---- sign in (first run makes the administrator) ----
    await page.goto(base + '/')
    await page.waitForSelector('#login:not([hidden])')
    check(await page.isVisible('#setup-hint'), 'first run offers to create the administrator')
    await page.fill('#login-user', 'admin')
    await page.fill('#login-pass', 'Web-Test-Passphrase-42')
    await shot('ui-01-login')
    await press('#login-go')
    await page.waitForSelector('#cases:not([hidden])')
    check(true, 'signed in; case list shown')

    // ---- real series: zip upload, reconstruction ----
    const t0 = Date.now()
    await page.setInputFiles('#import-zip', zip)
    await page.waitForSelector('#viewer:not([hidden])')
    await idle()
    check(await page.evaluate(() => window.nv.volumes.length) === 1, 'uploaded CT opens in the viewer')
    // the skeleton alone (the series is the upper abdomen: no airway in
    // view) keeps the test's software-rendered 3D light
    await page.selectOption('#recon-structures', 'bones')
    await press('#recon-go')
    await page.waitForSelector('#progress:not([hidden])', { timeout: 10000 }).catch(() => {})
    await shot('ui-02-reconstruct-progress')
    await idle()
    const nObjects = await page.evaluate(() => window.r3d.labels.length)
    const nMeshes = await page.evaluate(() => window.nv.meshes.length)
    check(nObjects >= 1 && nMeshes >= 1, 'automatic reconstruction leaves objects with meshes', { nObjects, nMeshes })
    console.log(`reconstruction of the uploaded 512x512x20 CT: ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    check(await page.evaluate(() => window.nv.volumes.length) === 2, 'the label map is overlaid on the slices')

    // ---- views and window/level ----
    for (const [v, st] of [['axial', 0], ['coronal', 1], ['sagittal', 2], ['render', 4], ['multi', 3]]) {
      await press(`[data-view=${v}]`)
      await page.waitForTimeout(400)
      const got = await page.evaluate(() => window.nv.opts.sliceType)
      check(got === st, `view ${v} selected`, got)
      await shot(`ui-03-view-${v}`)
    }
    // usable on a laptop screen (1366x768): nothing in the side panels is
    // wider than its panel (Firefox once drew the number fields past it)
    const overflow = await page.evaluate(() => [...document.querySelectorAll('#viewer aside')].map((a) => a.scrollWidth - a.clientWidth))
    check(overflow.every((d) => d <= 1), 'the side panels fit their width at 1366x768', overflow)
    await press('[data-wl=bone]')
    const wl = await page.evaluate(() => [window.nv.volumes[0].cal_min, window.nv.volumes[0].cal_max])
    check(wl[0] === -500 && wl[1] === 1300, 'bone window is level 400 / width 1800', wl)
    await press('[data-wl=lung]')
    await shot('ui-04-lung-window')

    // ---- phantom: measuring ----
    await press('#btn-cases')
    await page.fill('#import-path', phantom)
    await press('#import-path-go')
    await page.waitForSelector('#viewer:not([hidden])')
    await idle()
    await page.waitForFunction(() => window.r3d.caseId === 2 && window.nv.volumes.length === 1)
    await press('[data-view=axial]')
    await page.waitForTimeout(300)
    await press('[data-tool=length]')
    const canvasBox = await page.locator('#gl').boundingBox()
    const tile = await page.evaluate(() => {
      const s = window.nv.screenSlices[0].leftTopWidthHeight
      return { s, dpr: window.devicePixelRatio }
    })
    const [L0, T0, W0, H0] = tile.s.map((v) => v / tile.dpr)
    // the 100 mm square field is drawn as the largest centred square of the tile;
    // voxel centre i of 100 sits at (i + 0.5) / 100 of it
    const side = Math.min(W0, H0)
    const [L, T, W, H] = [L0 + (W0 - side) / 2, T0 + (H0 - side) / 2, side, side]
    const px = (i) => canvasBox.x + L + ((i + 0.5) / 100) * W
    const yMid = canvasBox.y + T + H / 2
    await page.mouse.click(px(20), yMid)
    await page.waitForTimeout(200)
    await page.mouse.click(px(80), yMid)
    await page.waitForTimeout(300)
    const measured = Number(await page.getAttribute('#measure-out', 'data-value'))
    check(Math.abs(measured - 60) <= 1.5, 'length between voxel centres 20 and 80 of a 1 mm phantom is 60 mm', measured)
    await shot('ui-05-measure-length')
    await press('[data-tool=angle]')
    await page.mouse.click(px(20), yMid)
    await page.waitForTimeout(150)
    await page.mouse.click(px(50), yMid)
    await page.waitForTimeout(150)
    await page.mouse.click(px(50), canvasBox.y + T + ((20 + 0.5) / 100) * H)
    await page.waitForTimeout(300)
    const angle = Number(await page.getAttribute('#measure-out', 'data-value'))
    check(Math.abs(angle - 90) <= 2, 'angle between a horizontal and a vertical line is 90 degrees', angle)
    await press('#measure-save')
    await page.waitForTimeout(300)
    const meas = await api('GET', '/api/cases/2/docs/measurements')
    check(meas.json.items?.length === 2, 'measurements are stored with the case', meas.json)

    // ---- threshold into a new object (live preview first) ----
    await press('[data-tool=none]')
    await page.fill('#thr-lo', '500')
    await page.fill('#thr-hi', '3000')
    await page.$eval('#thr-preview', (el) => { el.checked = true; el.dispatchEvent(new Event('input')) })
    await page.waitForTimeout(300)
    const preview = await page.evaluate(() => window.nv.drawBitmap ? window.nv.drawBitmap.reduce((a, b) => a + (b ? 1 : 0), 0) : 0)
    check(preview === 40 * 40 * 20, 'live threshold preview marks exactly the cube', preview)
    await shot('ui-06-threshold-preview')
    await press('#thr-go')
    await idle()
    const cube = await page.evaluate(() => window.r3d.labels[0])
    check(cube && cube.voxels === 32000, 'threshold object holds the 32000 cube voxels', cube)
    const label = cube.value

    // ---- paint then erase (brush) ----
    await press('[data-view=axial]')
    await page.waitForTimeout(300)
    await press('#edit-start')
    await press('[data-pen=brush]')
    await page.fill('#pen-size', '3')
    await page.dispatchEvent('#pen-size', 'input')
    await page.mouse.move(px(10), canvasBox.y + T + (10.5 / 100) * H)
    await page.mouse.down()
    await page.mouse.move(px(20), canvasBox.y + T + (10.5 / 100) * H, { steps: 10 })
    await page.mouse.up()
    await shot('ui-07-paint')
    await press('#edit-update')
    await idle()
    const afterPaint = (await api('GET', '/api/cases/2/labels')).json.labels.find((l) => l.value === label)
    check(afterPaint.voxels > 32000, 'painting outside the cube adds voxels to its label on the server', afterPaint.voxels)
    await press('#edit-start')
    await press('[data-pen=eraser]')
    await page.fill('#pen-size', '7')
    await page.dispatchEvent('#pen-size', 'input')
    await page.mouse.move(px(8), canvasBox.y + T + (10.5 / 100) * H)
    await page.mouse.down()
    await page.mouse.move(px(22), canvasBox.y + T + (10.5 / 100) * H, { steps: 14 })
    await page.mouse.up()
    await press('#edit-update')
    await idle()
    const afterErase = (await api('GET', '/api/cases/2/labels')).json.labels.find((l) => l.value === label)
    check(afterErase.voxels === 32000, 'erasing the stroke gives back exactly the cube', afterErase.voxels)
    await shot('ui-08-erase')

    // ---- 3D sphere brush: one click outside the cube paints a 3 mm ball ----
    await press('#edit-start')
    await press('[data-pen=sphere]')
    await page.fill('#pen-size', '3')
    await page.dispatchEvent('#pen-size', 'input')
    await page.mouse.click(px(85), canvasBox.y + T + (85.5 / 100) * H)
    await page.waitForTimeout(300)
    await press('#edit-update')
    await idle()
    const afterBall = (await api('GET', '/api/cases/2/labels')).json.labels.find((l) => l.value === label)
    // a 3 mm ball on a 1 mm grid holds 123 voxel centres (the slab is 20 thick)
    check(afterBall.voxels - 32000 >= 100 && afterBall.voxels - 32000 <= 130, 'the 3D sphere brush adds a 3 mm ball (about 123 voxels)', afterBall.voxels - 32000)
    const voxelsNow = afterBall.voxels

    // ---- object list: colour, opacity, transform saved with the case ----
    await page.$eval(`#objects tr[data-label="${label}"] input[type=range]`, (el) => { el.value = '0.5'; el.dispatchEvent(new Event('change')) })
    await page.$eval(`#objects tr[data-label="${label}"] input[type=color]`, (el) => { el.value = '#ff8000'; el.dispatchEvent(new Event('change')) })
    await page.evaluate((L) => { window.r3d.selected = L }, label)
    await page.fill('#tx', '10')
    await page.fill('#rz', '30')
    await press('#tf-apply')
    await page.waitForTimeout(1200)
    const disp = (await api('GET', '/api/cases/2/docs/display')).json.objects?.[label] || {}
    check(disp.opacity === 0.5 && JSON.stringify(disp.rgb) === '[255,128,0]' && JSON.stringify(disp.transform) === '[10,0,0,30]',
      'opacity, colour and transform of an object are saved with the case', disp)
    const moved = await page.evaluate((L) => { const m = window.r3d.meshes.get(L); return [m.opacity, Math.max(...m.pts.filter((_, i) => i % 3 === 0))] }, label)
    check(moved[0] === 0.5 && moved[1] > 20, 'the mesh shows the opacity and the move', moved)
    await shot('ui-09-object-display')
    await page.fill('#tx', '0'); await page.fill('#rz', '0')
    await press('#tf-apply')
    await idle()

    // ---- an error is a sentence, not a stack trace ----
    await page.fill('#thr-lo', '5000')
    await page.fill('#thr-hi', '6000')
    await press('#thr-go')
    await idle()
    const errText = await page.$eval('#error', (el) => el.hidden ? '' : el.textContent)
    check(/widen the range/.test(errText) && !/\bat \S+:\d+/.test(errText) && !/Error:/.test(errText), 'a failed job shows a sentence', errText)
    await shot('ui-09-error')

    // ---- smoothness: regenerate at 0 and 10 ----
    await page.evaluate((L) => window.r3d.selected = L, label)
    const meshBytes = async (s) => page.evaluate(async ([L, s]) => {
      const r = await fetch(`/api/cases/2/meshes/${L}.mz3?smooth=${s}`)
      const b = new Uint8Array(await r.arrayBuffer())
      let h = 0
      for (let i = 0; i < b.length; i += 7) h = (h * 31 + b[i]) >>> 0
      return { status: r.status, n: b.length, h }
    }, [label, s])
    for (const s of [0, 10]) {
      await page.fill('#smooth', String(s))
      await page.dispatchEvent('#smooth', 'input')
      await press('#regen-go')
      await idle()
      await shot(`ui-09-smooth-${s}`)
    }
    const m0 = await meshBytes(0), m10 = await meshBytes(10)
    check(m0.status === 200 && m10.status === 200 && m0.h !== m10.h, 'smoothness 0 and 10 give two different stored meshes', { m0, m10 })

    // ---- pick in 3D and delete, then undo ----
    await press('[data-view=render]')
    await page.waitForTimeout(500)
    await press('[data-tool=pick]')
    await page.evaluate(() => { window.r3d.selected = 0 })
    const rb = await page.evaluate(() => window.nv.screenSlices.map((s) => s.leftTopWidthHeight))
    await page.mouse.click(canvasBox.x + canvasBox.width / 2, canvasBox.y + canvasBox.height / 2)
    await page.waitForTimeout(500)
    const picked = await page.evaluate(() => window.r3d.selected)
    const where = await page.evaluate(() => ({ mm: window.r3d.lastMM, frac: Array.from(window.nv.scene.crosshairPos), id: window.nv.selectedObjectId }))
    check(picked === label, 'clicking the cube in 3D selects it', { picked, rb, where })
    await shot('ui-10-picked')
    await page.evaluate((L) => { window.r3d.selected = L }, label)
    await press('#obj-delete')
    await idle()
    const lab = await api('GET', '/api/cases/2/labels')
    check(!lab.json.labels.some((l) => l.value === label), 'after delete the server label map no longer has the object', lab.json.labels)
    const nii = await page.evaluate(async () => {
      const r = await fetch(`/api/cases/2/labels.nii.gz`)
      return r.status
    })
    check(nii === 200, 'label map still downloadable after delete')
    await press('#undo')
    await idle()
    const back = (await api('GET', '/api/cases/2/labels')).json.labels.find((l) => l.value === label)
    check(back && back.voxels === voxelsNow, 'undo restores the object with its voxels', back)

    // ---- language: Chinese everywhere ----
    await page.selectOption('#lang', 'zh')
    await page.waitForTimeout(300)
    // every visible translated element, then the whole page text
    const i18n = await page.evaluate(() => [...document.querySelectorAll('[data-i18n]')].filter((e) => e.offsetParent !== null).map((e) => e.textContent))
    const ascii = i18n.filter((s) => /[A-Za-z]{3,}/.test(s))
    check(ascii.length === 0, 'no English label remains in Chinese mode', ascii)
    const enStrings = Object.values(STRINGS.en).map((v) => v.split('{')[0].trim())
    const bodyText = await page.evaluate(() => document.body.innerText)
    const found = enStrings.filter((s) => s.length > 3 && bodyText.includes(s))
    check(found.length === 0, 'no English interface string in the page text in Chinese mode', found)
    await shot('ui-11-chinese')
    await page.selectOption('#lang', 'en')
    await page.waitForTimeout(200)
    const enText = await page.evaluate(() => document.querySelector('[data-i18n=objects]').textContent)
    check(enText === 'Objects', 'switching back to English at run time', enText)
    if (page.collectErrors) pageErrors.push(...await page.collectErrors())
    check(pageErrors.length === 0, 'no uncaught errors in the page', pageErrors)
  } catch (e) {
    failed++
    console.log(`FAIL ${e.message}`)
    await shot('ui-failure').catch(() => {})
  } finally {
    await browser.close()
    const exited = new Promise((r) => proc.on('exit', (code) => r(code)))
    proc.kill('SIGTERM')
    let timer
    const code = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r('timeout'), 60000) })])
    clearTimeout(timer) // a pending timer would keep node alive for its whole minute
    const bad = fs.readFileSync(path.join(tmp, 'server.log'), 'utf8').split('\n').filter((l) => /Sanitizer|runtime error/.test(l))
    check(code === 0 && bad.length === 0, 'the server stops cleanly, no sanitizer report', { code, bad: bad.slice(0, 5) })
    fs.rmSync(tmp, { recursive: true, force: true })
  }
  console.log(`web_ui: ${passed} passed, ${failed} failed`)
  process.exitCode = failed ? 1 : 0
}
main()
