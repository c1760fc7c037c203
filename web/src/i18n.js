// Every string the interface shows, in Chinese (default where the browser
// asks for it) and English. Keys are used by data-i18n attributes and t().
export const STRINGS = {
  zh: {
    cases: '病例', logout: '退出', sign_in: '登录', user: '用户名', password: '密码',
    setup_hint: '首次使用：输入的用户名和密码将成为管理员账户。', create_admin: '创建管理员',
    server_folder: '服务器文件夹', import: '导入', upload_zip: '上传 ZIP', title: '标题',
    modality: '模态', size: '尺寸', created: '创建时间', open: '打开', views: '视图',
    axial: '横断面', coronal: '冠状面', sagittal: '矢状面', view3d: '三维', multiplanar: '多平面',
    oblique: '斜切面（世界坐标）', clip_azimuth: '切割方位角', clip_elevation: '切割仰角',
    clip_depth: '切割深度', window: '窗宽窗位', wl_bone: '骨窗', wl_lung: '肺窗',
    wl_soft: '软组织窗', wl_brain: '脑窗', tools: '工具', tool_navigate: '浏览',
    tool_length: '测量长度', tool_angle: '测量角度', tool_pick: '选取对象',
    save_measurements: '保存测量', threshold: '阈值分割', lower: '下限', upper: '上限',
    preview: '实时预览', threshold_go: '分割为新对象', reconstruction: '三维重建',
    reconstruct: '自动重建', smoothness: '平滑度', regenerate: '重新生成网格', objects: '对象',
    show: '显示', name: '名称', colour: '颜色', opacity: '不透明度', delete_object: '删除对象',
    undo: '撤销', transform: '空间变换', rotate_z: '绕 Z 轴旋转（度）', apply: '应用',
    edit_mask: '编辑掩膜', edit_begin: '开始编辑所选对象', brush: '画笔', eraser: '橡皮擦',
    fill: '填充', sphere_brush: '三维球形画笔', brush_size: '画笔大小', update: '更新',
    cancel: '取消', export: '导出', mm: '毫米', deg: '度', length_is: '长度：{v} 毫米',
    angle_is: '角度：{v} 度', click_points: '请在图像上点击 {n} 个点', selected: '已选：{v}',
    none_selected: '未选择对象', loading: '正在加载…', working: '处理中…',
    loaded_in: '加载用时 {v} 秒', job_failed: '任务失败：{v}', saved: '已保存',
    no_labels: '此病例尚无对象', edit_active: '正在编辑：{v}', stage_load: '读取',
    stage_mesh: '生成网格', stage_threshold: '阈值', stage_save: '保存', stage_segment: '分割',
    error_generic: '操作失败：{v}', error_network: '无法连接服务器，请检查网络后重试。',
    login_failed: '用户名或密码不正确。', pick_first: '请先选择一个对象。',
    confirm_delete: '删除对象“{v}”？（可撤销）', exported: '已导出 {v}', structures: '结构',
    grp_all: '全部', grp_lungs: '肺', grp_airway: '气道', grp_bones: '骨骼', grp_vessels: '血管',
    grp_nodules: '结节', grp_body: '体表', role_admin: '管理员', role_clinician: '临床医生',
    role_reviewer: '审阅者', role_engineer: '维护工程师', image_in_3d: '三维视图中显示图像',
  },
  en: {
    cases: 'Cases', logout: 'Sign out', sign_in: 'Sign in', user: 'User name', password: 'Password',
    setup_hint: 'First run: the user name and password you enter become the administrator.',
    create_admin: 'Create administrator', server_folder: 'Server folder', import: 'Import',
    upload_zip: 'Upload ZIP', title: 'Title', modality: 'Modality', size: 'Size',
    created: 'Created', open: 'Open', views: 'Views', axial: 'Axial', coronal: 'Coronal',
    sagittal: 'Sagittal', view3d: '3D', multiplanar: 'Multiplanar',
    oblique: 'Oblique (world space)', clip_azimuth: 'Clip azimuth', clip_elevation: 'Clip elevation',
    clip_depth: 'Clip depth', window: 'Window / level', wl_bone: 'Bone', wl_lung: 'Lung',
    wl_soft: 'Soft tissue', wl_brain: 'Brain', tools: 'Tools', tool_navigate: 'Navigate',
    tool_length: 'Measure length', tool_angle: 'Measure angle', tool_pick: 'Pick object',
    save_measurements: 'Save measurements', threshold: 'Threshold segmentation', lower: 'Lower',
    upper: 'Upper', preview: 'Live preview', threshold_go: 'Segment into a new object',
    reconstruction: '3D reconstruction', reconstruct: 'Reconstruct automatically',
    smoothness: 'Smoothness', regenerate: 'Regenerate mesh', objects: 'Objects', show: 'Show',
    name: 'Name', colour: 'Colour', opacity: 'Opacity', delete_object: 'Delete object',
    undo: 'Undo', transform: 'Spatial transform', rotate_z: 'Rotate about Z (degrees)',
    apply: 'Apply', edit_mask: 'Edit mask', edit_begin: 'Edit the selected object',
    brush: 'Brush', eraser: 'Eraser', fill: 'Fill', sphere_brush: '3D sphere brush',
    brush_size: 'Brush size', update: 'Update', cancel: 'Cancel', export: 'Export', mm: 'mm',
    deg: 'degrees', length_is: 'Length: {v} mm', angle_is: 'Angle: {v} degrees',
    click_points: 'Click {n} points on the image', selected: 'Selected: {v}',
    none_selected: 'No object selected', loading: 'Loading…', working: 'Working…',
    loaded_in: 'Loaded in {v} s', job_failed: 'The job failed: {v}', saved: 'Saved',
    no_labels: 'This case has no objects yet', edit_active: 'Editing: {v}', stage_load: 'reading',
    stage_mesh: 'meshing', stage_threshold: 'threshold', stage_save: 'saving',
    stage_segment: 'segmenting', error_generic: 'That did not work: {v}',
    error_network: 'The server cannot be reached; check the connection and try again.',
    login_failed: 'Wrong user name or password.', pick_first: 'Select an object first.',
    confirm_delete: 'Delete the object "{v}"? (undo restores it)', exported: 'Exported {v}',
    structures: 'Structures', grp_all: 'All', grp_lungs: 'Lungs', grp_airway: 'Airway',
    grp_bones: 'Bones', grp_vessels: 'Vessels', grp_nodules: 'Nodules', grp_body: 'Body surface',
    role_admin: 'administrator', role_clinician: 'clinician', role_reviewer: 'reviewer',
    role_engineer: 'maintenance engineer', image_in_3d: 'Image in the 3D view',
  },
}

export function defaultLang() {
  const pref = (navigator.languages && navigator.languages[0]) || navigator.language || 'zh'
  const saved = localStorage.getItem('r3d.lang')
  if (saved && STRINGS[saved]) return saved
  return pref.toLowerCase().startsWith('en') ? 'en' : 'zh'
}

let lang = 'zh'
export function setLang(l) {
  lang = STRINGS[l] ? l : 'zh'
  localStorage.setItem('r3d.lang', lang)
  document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en'
  for (const el of document.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n)
}
export function getLang() { return lang }
export function t(key, vars = {}) {
  let s = STRINGS[lang][key] ?? STRINGS.en[key] ?? key
  for (const [k, v] of Object.entries(vars)) s = s.replace(`{${k}}`, v)
  return s
}
