// recon3d workstation front end: NiiVue renders, the C server computes.
// Images and label maps arrive already in RAS voxel order (see docs/web.md),
// so NiiVue's drawing bitmap indexes the same grid the server edits.
import { Niivue, NVImage, NVMesh, SLICE_TYPE, SHOW_RENDER, MULTIPLANAR_TYPE } from '@niivue/niivue'
import { t, setLang, defaultLang, getLang } from './i18n.js'

const $ = (s) => document.querySelector(s)
const state = {
  csrf: '', user: '', caseId: 0, version: 0, labels: [], meshes: new Map(),
  selected: 0, tool: 'none', points: [], measurements: [], display: {},
  editing: 0, editOrig: null, pen: 'brush', undo: [],
}
window.r3d = state // tests read state (never secrets: the session cookie is HttpOnly)

// ---- errors and progress: a sentence for people, never a stack trace ----
function showError(msg) {
  const e = $('#error')
  e.textContent = msg
  e.hidden = !msg
}
function progress(frac, text) {
  const p = $('#progress')
  if (frac === null) { p.hidden = true; return }
  p.hidden = false
  $('#progress-bar').style.width = `${Math.round(frac * 100)}%`
  $('#progress-text').textContent = text || t('working')
}

async function api(method, path, body, opts = {}) {
  const headers = {}
  if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf
  let payload = body
  if (body !== undefined && !(body instanceof Blob) && !(body instanceof ArrayBuffer) && !(body instanceof Uint8Array)) {
    headers['Content-Type'] = 'application/json'
    payload = JSON.stringify(body)
  } else if (body !== undefined) headers['Content-Type'] = opts.type || 'application/octet-stream'
  let r
  try {
    r = await fetch(path, { method, headers, body: payload, credentials: 'same-origin' })
  } catch {
    throw new Error(t('error_network'))
  }
  if (!r.ok) {
    let msg = `${r.status}`
    try { const j = await r.json(); msg = j.message || msg; if (j.error === 'login_failed') msg = t('login_failed') } catch {}
    const err = new Error(msg)
    err.status = r.status
    throw err
  }
  if (opts.raw) return r
  return r.status === 204 ? {} : r.json()
}
// state.busy counts actions in flight (tests wait for 0)
state.busy = 0
// background work (a debounced save) must not wipe a message the user has not read
async function guarded(fn, { background = false } = {}) {
  state.busy++
  try { if (!background) showError(''); return await fn() } catch (e) { progress(null); showError(t('error_generic', { v: e.message })) } finally { state.busy-- }
}

async function waitJob(id) {
  for (;;) {
    const j = await api('GET', `/api/jobs/${id}`)
    progress(j.progress, `${t('working')} ${t('stage_' + j.stage) !== 'stage_' + j.stage ? t('stage_' + j.stage) : j.stage} ${Math.round(j.progress * 100)}%`)
    if (j.state === 'done') { progress(null); return j }
    if (j.state === 'failed') { progress(null); throw new Error(t('job_failed', { v: j.message })) }
    await new Promise((r) => setTimeout(r, 300))
  }
}

// ---- sections ----
function show(id) {
  for (const s of ['login', 'cases', 'viewer']) $('#' + s).hidden = s !== id
  $('#btn-cases').hidden = id === 'login'
  $('#btn-logout').hidden = id === 'login'
}

function showWho(s) {
  if (s) state.who = s
  if (state.who) $('#who').textContent = `${state.who.user} (${t('role_' + state.who.role)})`
}

async function boot() {
  setLang(defaultLang())
  $('#lang').value = getLang()
  $('#lang').onchange = () => { setLang($('#lang').value); renderObjects(); renderMeasure(); showWho() }
  try {
    const s = await api('GET', '/api/session')
    state.csrf = s.csrf
    state.user = s.user
    showWho(s)
    await openCases()
  } catch {
    const h = await api('GET', '/api/health').catch(() => ({}))
    $('#setup-hint').hidden = !h.needs_setup
    show('login')
  }
}

$('#login-go').onclick = () => guarded(async () => {
  const user = $('#login-user').value, password = $('#login-pass').value
  if (!$('#setup-hint').hidden) await api('POST', '/api/setup', { user, password })
  const s = await api('POST', '/api/login', { user, password })
  state.csrf = s.csrf
  showWho(s)
  $('#setup-hint').hidden = true
  await openCases()
})
$('#btn-logout').onclick = () => guarded(async () => { await api('POST', '/api/logout', {}); location.reload() })
$('#btn-cases').onclick = () => guarded(openCases)

// navigation token: a slow answer for a page the user has already left
// must not bring that page back
state.nav = 0
async function openCases() {
  const tok = ++state.nav
  const { cases } = await api('GET', '/api/cases')
  if (tok !== state.nav) return
  const tb = $('#case-table tbody')
  tb.textContent = ''
  for (const c of cases) {
    const tr = document.createElement('tr')
    for (const v of [c.id, c.title, c.modality, c.dim.join('×'), c.created]) {
      const td = document.createElement('td'); td.textContent = v; tr.appendChild(td)
    }
    const td = document.createElement('td')
    const b = document.createElement('button')
    b.textContent = t('open'); b.dataset.i18n = 'open'; b.dataset.case = c.id
    b.onclick = () => guarded(() => openCase(c.id))
    td.appendChild(b); tr.appendChild(td); tb.appendChild(tr)
  }
  show('cases')
}
$('#import-path-go').onclick = () => guarded(async () => {
  progress(0.1, t('working'))
  const c = await api('POST', '/api/cases', { path: $('#import-path').value })
  progress(null)
  await openCase(c.id)
})
$('#import-zip').onchange = () => guarded(async () => {
  const f = $('#import-zip').files[0]
  if (!f) return
  progress(0.1, t('working'))
  const c = await api('POST', '/api/cases', f, { type: 'application/zip' })
  progress(null)
  await openCase(c.id)
})

// ---- NiiVue ----
const nv = new Niivue({
  backColor: [0.08, 0.08, 0.09, 1], show3Dcrosshair: true, isColorbar: false,
  meshThicknessOn2D: 1.5, dragAndDropEnabled: false, multiplanarShowRender: SHOW_RENDER.ALWAYS,
  multiplanarLayout: MULTIPLANAR_TYPE.GRID,
  isClipAllVolumes: true, // the clip plane hides the label map's 3D rendering too, not only the image's
  isDepthPickMesh: true, loadingText: '',
})
window.nv = nv
let nvReady = null
function ensureNv() {
  if (!nvReady) nvReady = nv.attachToCanvas($('#gl'))
  return nvReady
}

async function openCase(id) {
  ++state.nav
  show('viewer')
  await ensureNv()
  const t0 = performance.now()
  state.marks = []
  mark('start')
  progress(0.05, t('loading'))
  if (id !== state.caseId) state.wl = undefined // another case opens in the soft-tissue window; edits keep the window
  state.caseId = id
  state.selected = 0
  const [labels, meshes, display, meas] = await Promise.all([
    api('GET', `/api/cases/${id}/labels`),
    api('GET', `/api/cases/${id}/meshes`),
    api('GET', `/api/cases/${id}/docs/display`),
    api('GET', `/api/cases/${id}/docs/measurements`),
  ])
  state.display = display.objects ? display : { objects: {} }
  state.measurements = Array.isArray(meas.items) ? meas.items : []
  await loadScene(labels, meshes)
  const secs = ((performance.now() - t0) / 1000).toFixed(2)
  state.loadSeconds = Number(secs)
  $('#status').textContent = t('loaded_in', { v: secs })
  progress(null)
}

// where the time of opening a case goes (bench/load_case prints these)
function mark(what) { state.marks?.push([what, Math.round(performance.now())]) }

async function loadScene(labels, meshes) {
  mark('documents')
  state.version = labels.version
  state.labels = labels.labels
  // window and label colours go in with the volumes: every later change
  // makes NiiVue rebuild all volume textures, the slowest step of a load
  // (nv.loadVolumes rebuilds them once per volume, and again for each
  // later change): both volumes are read, coloured, then handed over at once
  const [level, width] = WL[state.wl || 'soft']
  const loadV = Promise.all([
    NVImage.loadFromUrl({ url: `/api/cases/${state.caseId}/image.nii`, name: 'image.nii' }),
    state.version ? NVImage.loadFromUrl({ url: `/api/cases/${state.caseId}/labels.nii.gz?version=${state.version}`, name: 'labels.nii.gz', opacity: 0.45 }) : null,
  ]).then(([img, lab]) => {
    mark('volume download + parse')
    if (lab) lab.setColormapLabel(labelColormap())
    nv.volumes = lab ? [img, lab] : [img]
    nv.setVolume(img, 0)
    // setVolume resets the window to the image's robust range: set ours after
    img.cal_min = level - width / 2
    img.cal_max = level + width / 2
    state.wl = state.wl || 'soft'
    nv.updateGLVolume()
  })
  // NiiVue's addMesh/removeMesh re-upload every volume texture each time:
  // with twenty structures that is most of the load, so meshes go in and
  // out of nv.meshes directly with one redraw at the end
  for (const m of nv.meshes) m.unloadMesh(nv.gl)
  nv.meshes = []
  state.meshes.clear()
  // every mesh of the version in one answer: [u32 label][u32 n][n bytes] ...
  const loadM = (async () => {
    if (!meshes.meshes.length) return []
    const r = await api('GET', `/api/cases/${state.caseId}/meshes.bin?version=${meshes.version}`, undefined, { raw: true })
    const all = await r.arrayBuffer()
    const dv = new DataView(all), byLabel = new Map(meshes.meshes.map((m) => [m.label, m]))
    const out = []
    for (let o = 0; o + 8 <= all.byteLength;) {
      const label = dv.getUint32(o, true), n = dv.getUint32(o + 4, true)
      const m = byLabel.get(label)
      if (m) out.push({ m, buf: all.slice(o + 8, o + 8 + n) })
      o += 8 + n
    }
    return out
  })()
  await loadV
  mark('volume textures')
  const bufs = await loadM
  mark('mesh download')
  for (const { m, buf } of bufs) {
    const mesh = await NVMeshFromBuffer(buf, `${m.label}.mz3`, [...m.rgb, 255])
    state.meshes.set(m.label, mesh)
    // the body and skin surfaces enclose everything else: until the user
    // decides otherwise they are drawn as a faint shell
    const shell = (m.name === 'body' || m.name === 'skin') && bufs.length > 2 ? { opacity: 0.15 } : {}
    const d = { ...shell, ...(state.display.objects[m.label] || {}) }
    if (Object.keys(d).length) applyDisplay(m.label, d, false)
  }
  mark('mesh parse')
  if (!state.vol3dChosen) $('#vol3d').checked = !bufs.length
  clip()
  nv.drawScene()
  mark('draw')
  renderObjects()
  renderMeasure()
}

// MZ3 as the server writes it (uncompressed, faces + vertices): typed views
// on the buffer instead of NiiVue's element-by-element reader
async function NVMeshFromBuffer(buf, name, rgba) {
  const dv = new DataView(buf)
  const nt = dv.getUint32(4, true), nvx = dv.getUint32(8, true)
  let mesh
  if (dv.getUint16(0, true) === 23117 && dv.getUint16(2, true) === 3 && buf.byteLength === 16 + 12 * (nt + nvx)) {
    const tris = new Uint32Array(buf, 16, nt * 3), pts = new Float32Array(buf, 16 + 12 * nt, nvx * 3)
    mesh = new NVMesh(pts, tris, name, new Uint8Array(rgba), 1, true, nv.gl)
  } else mesh = await NVMesh.readMesh(buf, name, nv.gl, 1, new Uint8Array(rgba), true)
  mesh.basePts = Float32Array.from(mesh.pts)
  nv.meshes.push(mesh)
  return mesh
}

function labelColormap() {
  const R = [0], G = [0], B = [0], A = [0], I = [0], L = ['']
  for (const l of state.labels) {
    const d = state.display.objects[l.value] || {}
    const rgb = d.rgb || l.rgb
    R.push(rgb[0]); G.push(rgb[1]); B.push(rgb[2]); A.push(d.visible === false ? 0 : 255); I.push(l.value)
    L.push(getLang() === 'zh' ? l.name_zh : l.name)
  }
  return { R, G, B, A, I, labels: L }
}
function applyLabelColormap() {
  nv.volumes[1].setColormapLabel(labelColormap())
  nv.updateGLVolume()
}

function labelName(l) { return getLang() === 'zh' ? (l.name_zh || l.name) : l.name }

function renderObjects() {
  const tb = $('#objects tbody')
  tb.textContent = ''
  if (!state.labels.length) {
    const tr = document.createElement('tr'); const td = document.createElement('td')
    td.colSpan = 4; td.textContent = t('no_labels'); tr.appendChild(td); tb.appendChild(tr)
  }
  for (const l of state.labels) {
    const d = state.display.objects[l.value] || {}
    const tr = document.createElement('tr')
    tr.dataset.label = l.value
    if (l.value === state.selected) tr.className = 'sel'
    const vis = document.createElement('input'); vis.type = 'checkbox'; vis.checked = d.visible !== false
    vis.onchange = () => setDisplay(l.value, { visible: vis.checked })
    const name = document.createElement('td'); name.textContent = labelName(l); name.onclick = () => select(l.value)
    const col = document.createElement('input'); col.type = 'color'
    const rgb = d.rgb || l.rgb
    col.value = '#' + rgb.map((c) => c.toString(16).padStart(2, '0')).join('')
    col.onchange = () => setDisplay(l.value, { rgb: [1, 3, 5].map((i) => parseInt(col.value.slice(i, i + 2), 16)) })
    const op = document.createElement('input'); op.type = 'range'; op.min = 0; op.max = 1; op.step = 0.05; op.value = d.opacity ?? state.meshes.get(l.value)?.opacity ?? 1
    op.onchange = () => setDisplay(l.value, { opacity: Number(op.value) })
    for (const el of [vis, name, col, op]) {
      const td = el.tagName === 'TD' ? el : document.createElement('td')
      if (td !== el) td.appendChild(el)
      tr.appendChild(td)
    }
    tb.appendChild(tr)
  }
  const sel = state.labels.find((l) => l.value === state.selected)
  $('#selected').textContent = sel ? t('selected', { v: labelName(sel) }) : t('none_selected')
  if (state.editing) $('#status').textContent = t('edit_active', { v: state.editing })
}

function select(value) {
  state.selected = value
  const d = state.display.objects[value] || {}
  const tf = d.transform || [0, 0, 0, 0]
  ;[$('#tx').value, $('#ty').value, $('#tz').value, $('#rz').value] = tf
  if (d.smooth !== undefined) { $('#smooth').value = d.smooth; $('#smooth-out').textContent = d.smooth }
  renderObjects()
}

function applyDisplay(label, d, redraw = true) {
  const mesh = state.meshes.get(label)
  if (!mesh) return
  if (d.visible !== undefined) mesh.visible = d.visible
  if (d.opacity !== undefined) mesh.opacity = d.opacity
  if (d.rgb) mesh.rgba255 = new Uint8Array([...d.rgb, 255])
  // rebuilding a mesh's buffers is costly (far more with opacity < 1):
  // only when its colour or geometry changed
  if (d.transform) applyTransform(mesh, d.transform)
  else if (d.rgb) mesh.updateMesh(nv.gl)
  if (redraw) nv.drawScene()
}

function applyTransform(mesh, [tx, ty, tz, rzDeg]) {
  const p = mesh.basePts, out = mesh.pts
  let cx = 0, cy = 0
  const n = p.length / 3
  for (let i = 0; i < p.length; i += 3) { cx += p[i]; cy += p[i + 1] }
  cx /= n; cy /= n
  const a = (rzDeg * Math.PI) / 180, c = Math.cos(a), s = Math.sin(a)
  for (let i = 0; i < p.length; i += 3) {
    const x = p[i] - cx, y = p[i + 1] - cy
    out[i] = cx + c * x - s * y + tx
    out[i + 1] = cy + s * x + c * y + ty
    out[i + 2] = p[i + 2] + tz
  }
  mesh.updateMesh(nv.gl)
}

let saveTimer = 0
function setDisplay(label, patch) {
  const d = (state.display.objects[label] = { ...(state.display.objects[label] || {}), ...patch })
  applyDisplay(label, d)
  if (nv.volumes[1]) applyLabelColormap()
  nv.drawScene()
  // a pending save counts as work in flight until it has been sent
  if (saveTimer) clearTimeout(saveTimer)
  else state.busy++
  saveTimer = setTimeout(() => {
    saveTimer = 0
    state.busy--
    guarded(() => api('PUT', `/api/cases/${state.caseId}/docs/display`, state.display), { background: true })
  }, 300)
}
$('#tf-apply').onclick = () => {
  if (!state.selected) return showError(t('pick_first'))
  setDisplay(state.selected, { transform: ['#tx', '#ty', '#tz', '#rz'].map((s) => Number($(s).value)) })
}

// ---- views, window/level, oblique and clipping ----
const VIEWS = { axial: SLICE_TYPE.AXIAL, coronal: SLICE_TYPE.CORONAL, sagittal: SLICE_TYPE.SAGITTAL, render: SLICE_TYPE.RENDER, multi: SLICE_TYPE.MULTIPLANAR }
for (const b of document.querySelectorAll('[data-view]')) {
  b.onclick = () => {
    nv.setSliceType(VIEWS[b.dataset.view])
    state.view = b.dataset.view
    for (const o of document.querySelectorAll('[data-view]')) o.classList.toggle('active', o === b)
  }
}
$('#oblique').onchange = () => nv.setSliceMM($('#oblique').checked)
// The CT's own volume rendering hides the reconstructed surfaces, so with
// meshes the 3D view starts without it: a clip plane beyond the volume
// (depth -1.5) cuts all of it away; the checkbox and sliders bring it back.
function clip() {
  if (!$('#vol3d').checked) { nv.setClipPlane([-1.5, 0, 0]); return }
  const depth = Number($('#clip-depth').value) / 100
  nv.setClipPlane(depth > 1.5 ? [2, 0, 0] : [depth - 0.5, Number($('#clip-azi').value), Number($('#clip-ele').value)])
}
for (const s of ['#clip-azi', '#clip-ele', '#clip-depth']) $(s).oninput = clip
$('#vol3d').onchange = () => { state.vol3dChosen = true; clip() }
const WL = { bone: [400, 1800], lung: [-600, 1500], soft: [40, 400], brain: [40, 80] }
function setWL(name) {
  const v = nv.volumes[0]
  if (!v) return
  const [level, width] = WL[name]
  v.cal_min = level - width / 2
  v.cal_max = level + width / 2
  nv.updateGLVolume()
  state.wl = name
}
for (const b of document.querySelectorAll('[data-wl]')) b.onclick = () => setWL(b.dataset.wl)

// ---- measuring: clicks land on the crosshair, on slices or the 3D surface ----
for (const b of document.querySelectorAll('[data-tool]')) {
  b.onclick = () => {
    state.tool = b.dataset.tool
    state.points = []
    for (const o of document.querySelectorAll('[data-tool]')) o.classList.toggle('active', o === b)
    renderMeasure()
  }
}
function renderMeasure() {
  const out = $('#measure-out')
  const last = state.measurements[state.measurements.length - 1]
  if (state.tool === 'length' || state.tool === 'angle') {
    const need = state.tool === 'length' ? 2 : 3
    if (state.points.length < need && !(last && last.fresh)) { out.textContent = t('click_points', { n: need }); return }
  }
  if (!last) { out.textContent = ''; return }
  out.textContent = last.kind === 'length' ? t('length_is', { v: last.value.toFixed(1) }) : t('angle_is', { v: last.value.toFixed(1) })
  out.dataset.value = last.value
}
const dist = (a, b) => Math.hypot(a[0] - b[0], a[1] - b[1], a[2] - b[2])
nv.onLocationChange = (loc) => {
  const mm = Array.from(loc.mm).slice(0, 3)
  $('#status').textContent = `${mm.map((v) => v.toFixed(1)).join(', ')} ${t('mm')}`
  state.lastMM = mm
  if (state.tool === 'length' || state.tool === 'angle') {
    state.points.push(mm)
    const need = state.tool === 'length' ? 2 : 3
    if (state.points.length === need) {
      const p = state.points
      let value
      if (state.tool === 'length') value = dist(p[0], p[1])
      else {
        const u = [0, 1, 2].map((i) => p[0][i] - p[1][i]), v = [0, 1, 2].map((i) => p[2][i] - p[1][i])
        const dot = u[0] * v[0] + u[1] * v[1] + u[2] * v[2]
        value = (Math.acos(Math.max(-1, Math.min(1, dot / (Math.hypot(...u) * Math.hypot(...v))))) * 180) / Math.PI
      }
      for (const m of state.measurements) m.fresh = false
      state.measurements.push({ kind: state.tool, points: p, value, fresh: true, view: state.view || 'multi' })
      state.points = []
    }
    renderMeasure()
  } else if (state.tool === 'pick') {
    pickAt(mm)
  }
}
$('#measure-save').onclick = () => guarded(async () => {
  await api('PUT', `/api/cases/${state.caseId}/docs/measurements`, { items: state.measurements.map(({ fresh, ...m }) => m) })
  $('#status').textContent = t('saved')
})

// The label under (or right beside) a point: a click on a surface lands
// within a voxel or two of the mask that made it.
function labelAt(mm) {
  const v = nv.volumes[1]
  if (!v) return 0
  const vox = v.mm2vox(mm).map(Math.round)
  const d = v.dimsRAS
  const counts = new Map()
  for (let r = 0; r <= 2 && !counts.size; r++) {
    for (let z = -r; z <= r; z++) for (let y = -r; y <= r; y++) for (let x = -r; x <= r; x++) {
      const X = vox[0] + x, Y = vox[1] + y, Z = vox[2] + z
      if (X < 0 || Y < 0 || Z < 0 || X >= d[1] || Y >= d[2] || Z >= d[3]) continue
      const L = v.img[X + d[1] * (Y + d[2] * Z)]
      if (L) counts.set(L, (counts.get(L) || 0) + 1)
    }
  }
  let best = 0, n = 0
  for (const [L, c] of counts) if (c > n) { best = L; n = c }
  return best
}
// A plain left click picks in 3D too (NiiVue itself depth-picks on the
// right button): ask it for a depth pick at the last mouse position.
let downAt = null
$('#gl').addEventListener('pointerdown', (e) => { downAt = [e.clientX, e.clientY] })
$('#gl').addEventListener('pointerup', (e) => {
  if (state.tool !== 'pick' || !downAt || Math.hypot(e.clientX - downAt[0], e.clientY - downAt[1]) > 4) return
  nv.uiData.mouseDepthPicker = true
  nv.drawScene()
})
function pickAt(mm) {
  const L = labelAt(mm)
  if (L) select(L)
}

$('#obj-delete').onclick = () => guarded(async () => {
  const l = state.labels.find((x) => x.value === state.selected)
  if (!l) return showError(t('pick_first'))
  const before = state.version
  await api('DELETE', `/api/cases/${state.caseId}/labels/${l.value}?base=${state.version}`)
  state.undo.push(before)
  await reloadLabels()
})
$('#undo').onclick = () => guarded(async () => {
  const v = state.undo.pop()
  if (!v) return
  await api('POST', `/api/cases/${state.caseId}/head`, { version: v })
  await reloadLabels()
})
async function reloadLabels() {
  const [labels, meshes] = await Promise.all([api('GET', `/api/cases/${state.caseId}/labels`), api('GET', `/api/cases/${state.caseId}/meshes`)])
  await loadScene(labels, meshes)
}

// ---- reconstruction, smoothness, threshold ----
$('#recon-go').onclick = () => guarded(async () => {
  const { job } = await api('POST', `/api/cases/${state.caseId}/reconstruct`, { structures: $('#recon-structures').value, smooth: Number($('#smooth').value) })
  await waitJob(job)
  await reloadLabels()
})
$('#smooth').oninput = () => { $('#smooth-out').textContent = $('#smooth').value }
$('#regen-go').onclick = () => guarded(async () => {
  if (!state.selected) return showError(t('pick_first'))
  const smooth = Number($('#smooth').value)
  const { job } = await api('POST', `/api/cases/${state.caseId}/labels/${state.selected}/mesh`, { smooth })
  await waitJob(job)
  state.display.objects[state.selected] = { ...(state.display.objects[state.selected] || {}), smooth }
  await api('PUT', `/api/cases/${state.caseId}/docs/display`, state.display)
  await reloadLabels()
  state.lastRegen = { label: state.selected, smooth, triangles: state.meshes.get(state.selected)?.tris?.length / 3 }
})
// Live preview: the drawing layer shows the voxels in range as the numbers change.
function thresholdPreview() {
  const v = nv.volumes[0]
  if (!v || !$('#thr-preview').checked) { if (!state.editing && nv.drawBitmap) { nv.closeDrawing(); nv.drawScene() } return }
  const lo = Number($('#thr-lo').value), hi = Number($('#thr-hi').value)
  if (!nv.drawBitmap) nv.createEmptyDrawing()
  const img = v.img, s = v.hdr.scl_slope || 1, o = v.hdr.scl_inter || 0, d = nv.drawBitmap
  for (let i = 0; i < d.length; i++) { const x = img[i] * s + o; d[i] = x >= lo && x <= hi ? 2 : 0 }
  nv.refreshDrawing(true)
}
for (const s of ['#thr-lo', '#thr-hi', '#thr-preview']) $(s).oninput = thresholdPreview
$('#thr-go').onclick = () => guarded(async () => {
  const { job } = await api('POST', `/api/cases/${state.caseId}/threshold`, { lo: Number($('#thr-lo').value), hi: Number($('#thr-hi').value), smooth: Number($('#smooth').value) })
  const j = await waitJob(job)
  $('#thr-preview').checked = false
  thresholdPreview()
  await reloadLabels()
  select(j.result.label)
})

// ---- mask editing: brush, eraser, fill in NiiVue's drawing layer; the
// changed box goes to the server gzip'ed; a sphere brush goes as strokes ----
$('#pen-size').oninput = () => { $('#pen-size-out').textContent = $('#pen-size').value; nv.opts.penSize = Number($('#pen-size').value) }
function setPen(p) {
  state.pen = p
  for (const o of document.querySelectorAll('[data-pen]')) o.classList.toggle('active', o.dataset.pen === p)
  if (p === 'sphere') { nv.setDrawingEnabled(false); return }
  nv.setDrawingEnabled(true)
  nv.opts.penSize = Number($('#pen-size').value)
  nv.setPenValue(p === 'eraser' ? 0 : 1, p === 'fill')
}
for (const b of document.querySelectorAll('[data-pen]')) b.onclick = () => { if (state.editing) setPen(b.dataset.pen) }
$('#edit-start').onclick = () => {
  if (!state.selected) return showError(t('pick_first'))
  const v = nv.volumes[1]
  nv.createEmptyDrawing()
  const L = state.selected, d = nv.drawBitmap
  if (v) for (let i = 0; i < d.length; i++) d[i] = v.img[i] === L ? 1 : 0
  state.editOrig = Uint8Array.from(d)
  state.editing = L
  state.sphere = []
  nv.refreshDrawing(true)
  setPen('brush')
  renderObjects()
}
async function gzip(bytes) {
  const cs = new Blob([bytes]).stream().pipeThrough(new CompressionStream('gzip'))
  return new Uint8Array(await new Response(cs).arrayBuffer())
}
$('#edit-update').onclick = () => guarded(async () => {
  if (!state.editing) return
  const L = state.editing, d = nv.drawBitmap, o = state.editOrig
  const dims = nv.back.dimsRAS
  const [nx, ny, nz] = [dims[1], dims[2], dims[3]]
  let x0 = nx, y0 = ny, z0 = nz, x1 = -1, y1 = -1, z1 = -1
  for (let z = 0, i = 0; z < nz; z++) for (let y = 0; y < ny; y++) for (let x = 0; x < nx; x++, i++) {
    if ((d[i] ? 1 : 0) !== o[i]) {
      if (x < x0) x0 = x; if (x > x1) x1 = x; if (y < y0) y0 = y; if (y > y1) y1 = y; if (z < z0) z0 = z; if (z > z1) z1 = z
    }
  }
  let r = null
  const smooth = Number($('#smooth').value)
  if (x1 >= 0) {
    const bx = x1 - x0 + 1, by = y1 - y0 + 1, bz = z1 - z0 + 1
    const box = new Uint8Array(bx * by * bz)
    for (let z = 0, k = 0; z < bz; z++) for (let y = 0; y < by; y++) for (let x = 0; x < bx; x++, k++) box[k] = d[x0 + x + nx * (y0 + y + ny * (z0 + z))] ? 1 : 0
    r = await api('POST', `/api/cases/${state.caseId}/labels/${L}/mask?box=${x0},${y0},${z0},${bx},${by},${bz}&base=${state.version}&smooth=${smooth}`, await gzip(box))
    state.undo.push(state.version)
  }
  if (state.sphere.length) {
    for (const s of state.sphere) {
      r = await api('POST', `/api/cases/${state.caseId}/labels/${L}/strokes?smooth=${smooth}`, { mode: s.mode, radius_mm: s.r, points: [s.mm] })
    }
  }
  state.editing = 0
  nv.closeDrawing()
  nv.setDrawingEnabled(false)
  if (r && r.job) await waitJob(r.job)
  state.lastEdit = r
  await reloadLabels()
  select(L)
})
$('#edit-cancel').onclick = () => { state.editing = 0; nv.closeDrawing(); nv.setDrawingEnabled(false); nv.drawScene(); renderObjects() }
// sphere brush: each click while the pen is "sphere" paints a ball of the brush size (mm)
$('#gl').addEventListener('pointerup', () => {
  if (!state.editing || state.pen !== 'sphere' || !state.lastMM) return
  setTimeout(() => {
    state.sphere.push({ mode: 'paint', r: Number($('#pen-size').value), mm: state.lastMM })
    $('#status').textContent = `${t('sphere_brush')} ×${state.sphere.length}`
  }, 0)
})

// ---- export ----
$('#export-go').onclick = () => guarded(async () => {
  const format = $('#export-fmt').value
  const r = await api('POST', `/api/cases/${state.caseId}/export`, { format, smooth: Number($('#smooth').value) }, { raw: true })
  const blob = await r.blob()
  const a = document.createElement('a')
  a.href = URL.createObjectURL(blob)
  a.download = `case${state.caseId}.${format}`
  a.click()
  $('#status').textContent = t('exported', { v: a.download })
})

boot()
