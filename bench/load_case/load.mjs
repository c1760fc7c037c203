// The browser half of bench/load_case/run.sh (see there).
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'

const { RECON3D, SERIES, STRUCTURES, SRC } = process.env
const { launchBrowser, browserMissing } = await import(path.join(SRC, 'tests/web/browsers.mjs'))
const BROWSER = process.env.R3D_BROWSER || 'chromium'
const missing = browserMissing(BROWSER)
if (missing) throw new Error(missing)
// BENCH_STORE=DIR keeps the store (and its reconstructed case) between runs
const keep = process.env.BENCH_STORE
const tmp = keep || fs.mkdtempSync(path.join(os.tmpdir(), 'r3d-bench-'))
fs.mkdirSync(tmp, { recursive: true })
if (fs.existsSync(path.join(tmp, 'port'))) fs.unlinkSync(path.join(tmp, 'port'))
const portFile = path.join(tmp, 'port')
const srv = spawn(RECON3D, ['serve', '--store', path.join(tmp, 'store'), '--port', '0', '--port-file', portFile, '--web', path.join(SRC, 'web/dist'), '--quiet'], { stdio: 'inherit' })
while (!fs.existsSync(portFile)) await new Promise((r) => setTimeout(r, 100))
const base = `http://127.0.0.1:${fs.readFileSync(portFile, 'utf8').trim()}`
const pass = 'Timing-Run-Passphrase-2026'
let cookie = '', csrf = ''
async function api(method, p, body) {
  const r = await fetch(base + p, { method, headers: { 'Content-Type': 'application/json', Cookie: cookie, 'X-CSRF-Token': csrf }, body: body && JSON.stringify(body) })
  const sc = r.headers.get('set-cookie')
  if (sc) cookie = sc.split(';')[0]
  return r
}
try {
  const su = await api('POST', '/api/setup', { user: 'bench', password: pass })
  if (su.status !== 201 && su.status !== 409) throw new Error('set-up failed: ' + (await su.text()))
  const li = await (await api('POST', '/api/login', { user: 'bench', password: pass })).json()
  if (!li.csrf) throw new Error('login failed: ' + JSON.stringify(li))
  csrf = li.csrf
  let t = performance.now()
  let c = (await (await api('GET', '/api/cases')).json()).cases.find((x) => x.head_version > 0)
  if (c) console.log(`reusing case ${c.id} (${c.dim.join('x')}) from ${tmp}`)
  else {
    c = await (await api('POST', '/api/cases', { path: SERIES })).json()
    if (!c.dim) throw new Error('import failed: ' + JSON.stringify(c))
    console.log(`import: ${((performance.now() - t) / 1000).toFixed(2)} s, ${c.dim.join('x')}`)
    t = performance.now()
    const { job } = await (await api('POST', `/api/cases/${c.id}/reconstruct`, { structures: STRUCTURES })).json()
    let j
    do { await new Promise((r) => setTimeout(r, 500)); j = await (await api('GET', `/api/jobs/${job}`)).json() } while (j.state === 'queued' || j.state === 'running')
    console.log(`reconstruction (${STRUCTURES}): ${((performance.now() - t) / 1000).toFixed(1)} s, ${j.state}${j.message ? ': ' + j.message : ''}`)
  }
  c = await (await api('GET', `/api/cases/${c.id}`)).json()
  const meshes = (await (await api('GET', `/api/cases/${c.id}/meshes`)).json()).meshes
  const mb = meshes.reduce((a, m) => a + m.bytes, 0) / 1e6
  console.log(`structures with meshes: ${meshes.length} (${mb.toFixed(1)} MB of MZ3)`)
  // server side: everything the page fetches, sequentially; the first time
  // encodes the NIfTI answers, the second finds them cached
  for (const pass of ['first', 'second']) {
    t = performance.now()
    let bytes = 0
    for (const p of [`/api/cases/${c.id}/image.nii`, `/api/cases/${c.id}/labels.nii.gz?version=${c.head_version}`, ...meshes.map((m) => m.url)]) bytes += (await (await api('GET', p)).arrayBuffer()).byteLength
    console.log(`server transfer of image + labels + meshes (${pass}): ${((performance.now() - t) / 1000).toFixed(2)} s, ${(bytes / 1e6).toFixed(1)} MB`)
  }
  const browser = await launchBrowser(BROWSER)
  const page = await (await browser.newContext()).newPage()
  console.log(`browser: ${browser.version()}`)
  await page.goto(base + '/')
  await page.fill('#login-user', 'bench'); await page.fill('#login-pass', pass); await page.$eval('#login-go', (el) => el.click())
  await page.waitForSelector('#cases:not([hidden])')
  const times = []
  const runs = Number(process.env.RUNS || 5)
  for (let i = 0; i < runs; i++) {
    // DOM clicks: playwright's "stable" check waits for animation frames, slow in software WebGL
    await page.$eval('#btn-cases', (el) => el.click())
    await page.waitForSelector('#cases:not([hidden])')
    await page.waitForSelector(`button[data-case="${c.id}"]`)
    await page.$eval(`button[data-case="${c.id}"]`, (el) => el.click())
    await page.waitForFunction(() => window.r3d.busy === 0 && window.r3d.loadSeconds, null, { timeout: 300000 })
    times.push(await page.evaluate(() => window.r3d.loadSeconds))
    const marks = await page.evaluate(() => window.r3d.marks)
    console.log(`  load ${i + 1}: ${times[i].toFixed(2)} s (` + marks.slice(1).map(([w, t], k) => `${w} +${((t - marks[k][1]) / 1000).toFixed(2)}`).join(', ') + ')')
    await page.evaluate(() => { window.r3d.loadSeconds = 0 })
  }
  times.sort((a, b) => a - b) // (logged above in order)
  console.log(`browser load (image + labels + ${meshes.length} meshes, NiiVue, software WebGL): median ${times[times.length >> 1].toFixed(2)} s, min ${times[0].toFixed(2)} s, max ${times[times.length - 1].toFixed(2)} s`)
  // SHOT=prefix: pictures of the loaded case (docs/img/ui-*.png come from here)
  if (process.env.SHOT) {
    for (const v of ['multi', 'render']) {
      await page.$eval(`[data-view=${v}]`, (el) => el.click())
      await page.waitForTimeout(3000)
      await page.screenshot({ path: `${process.env.SHOT}-${v}.png`, timeout: 300000 })
    }
  }
  await browser.close()
} finally {
  srv.kill('SIGTERM')
  await new Promise((r) => srv.on('exit', r))
  if (!keep) fs.rmSync(tmp, { recursive: true, force: true })
}
