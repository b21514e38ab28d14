/* gridkit field app: report a problem, my cases, patrol — offline first.
   Plain JavaScript, no build step. Every submission goes into a queue in IndexedDB
   with its own Idempotency-Key and is sent, in order, when the connection allows:
   a retry after a lost answer creates nothing twice on the server. */
'use strict';

/* ------------------------------------------------------------------ words */
const WORDS = {
  zh: {
    title: '网格外业', tab_report: '上报', tab_cases: '我的案件', tab_patrol: '巡查',
    tab_pending: '待发送', online: '在线', offline: '离线',
    insecure: '此页面通过 HTTP 打开：手机浏览器在非 HTTPS 页面上不允许离线缓存、定位和相机。请使用 https:// 地址打开。',
    signin: '登录', key: '密钥（API key）', key_hint: '输入管理员发给您的密钥，或扫描二维码。',
    scan: '扫描二维码', scan_none: '此浏览器不能识别二维码，请手动输入密钥。',
    signin_bad: '密钥无效或已停用。', signin_offline: '需要网络才能首次登录。',
    signout: '退出登录', signout_pending: '还有 {n} 项未发送，退出将丢弃它们。确定退出？',
    category: '问题类别', description: '问题描述', photos: '照片', add_photo: '拍照 / 选照片',
    position: '位置', gps_wait: '正在定位…', gps_acc: '精度约 {m} 米', gps_none: '无法定位：{e}',
    gps_retry: '重新定位', map_hint: '拖动标记可调整位置（WGS84）。', picked: '已在地图上调整',
    submit: '提交上报', queued: '已保存，将在联网时发送。', need_cat: '请选择问题类别。',
    need_pos: '还没有位置：请等待定位或在地图上点选。',
    pending_none: '没有待发送的内容。', sync: '立即发送', discard: '丢弃',
    failed: '发送失败', waiting: '等待网络', sent_n: '已发送 {n} 项。',
    k_report: '上报', k_evidence: '照片', k_patrol: '巡查记录', k_action: '案件操作',
    cases_none: '没有待办案件。', cases_cached: '离线：显示 {t} 的列表。', due: '期限',
    overdue: '已超期', paused: '已挂起', refresh: '刷新', reason: '原因', note: '说明',
    after_photo: '处置后照片', hours: '延期小时数', need_reason: '请填写原因。', need_photo: '请附处置后照片。',
    confirm: '确定', cancel: '取消', no_actions: '您对此案件暂无可办操作。',
    p_start: '开始巡查', p_pause: '暂停', p_resume: '继续', p_stop: '结束并保存',
    p_distance: '里程', p_duration: '时长', p_units: '经过网格', p_fixes: '定位点 {n} 个，最近精度 {m} 米',
    p_saved: '巡查已保存，将在联网时发送。', p_short: '还没有定位点，没有可保存的轨迹。放弃这次巡查？',
    checklist: '看·查·交 检查项', ok: '正常', problem: '问题', na: '不适用',
    p_notes: '巡查备注', problem_report: '此问题将作为案件上报：', from_patrol: '巡查发现',
  },
  en: {
    title: 'Field app', tab_report: 'Report', tab_cases: 'My cases', tab_patrol: 'Patrol',
    tab_pending: 'Pending', online: 'online', offline: 'offline',
    insecure: 'This page was opened over plain HTTP: phone browsers allow offline use, GPS and the camera only on HTTPS pages. Open the https:// address.',
    signin: 'Sign in', key: 'Key (API key)', key_hint: 'Type the key you were given, or scan its QR code.',
    scan: 'Scan QR code', scan_none: 'This browser cannot read QR codes; type the key.',
    signin_bad: 'Unknown or revoked key.', signin_offline: 'The first sign-in needs a connection.',
    signout: 'Sign out', signout_pending: '{n} items are not sent yet; signing out discards them. Sign out?',
    category: 'Category', description: 'Description', photos: 'Photos', add_photo: 'Take / choose photo',
    position: 'Position', gps_wait: 'Locating…', gps_acc: 'accuracy about {m} m', gps_none: 'No position: {e}',
    gps_retry: 'Locate again', map_hint: 'Drag the marker to adjust (WGS84).', picked: 'adjusted on the map',
    submit: 'Submit report', queued: 'Saved; it is sent when the connection allows.', need_cat: 'Choose a category.',
    need_pos: 'No position yet: wait for GPS or tap the map.',
    pending_none: 'Nothing waiting to be sent.', sync: 'Send now', discard: 'Discard',
    failed: 'failed', waiting: 'waiting for network', sent_n: '{n} sent.',
    k_report: 'Report', k_evidence: 'Photo', k_patrol: 'Patrol', k_action: 'Case action',
    cases_none: 'No open cases.', cases_cached: 'Offline: the list as of {t}.', due: 'due',
    overdue: 'overdue', paused: 'paused', refresh: 'Refresh', reason: 'Reason', note: 'Note',
    after_photo: 'After photo', hours: 'Hours to extend by', need_reason: 'Give a reason.', need_photo: 'Add the after photo.',
    confirm: 'OK', cancel: 'Cancel', no_actions: 'No action of yours on this case now.',
    p_start: 'Start patrol', p_pause: 'Pause', p_resume: 'Resume', p_stop: 'Stop and save',
    p_distance: 'distance', p_duration: 'duration', p_units: 'units', p_fixes: '{n} fixes, last accuracy {m} m',
    p_saved: 'Patrol saved; it is sent when the connection allows.', p_short: 'No fixes yet: no track to save. Discard this patrol?',
    checklist: 'Look · check · hand over', ok: 'OK', problem: 'Problem', na: 'N/A',
    p_notes: 'Patrol notes', problem_report: 'This problem becomes a report:', from_patrol: 'found on patrol',
  },
};
const STAGES = {
  collected: ['采集', 'collected'], opened: ['立案', 'opened'], dispatched: ['派遣', 'dispatched'],
  handling: ['处置', 'handling'], reported_back: ['反馈', 'reported back'],
  verified: ['核查', 'verified'], closed: ['结案', 'closed'], returned: ['退回', 'returned'],
  rejected: ['不予立案', 'rejected'], reported: ['已上报', 'reported'], assigned: ['已交办', 'assigned'],
  in_progress: ['处理中', 'in progress'], resolved: ['已处理', 'resolved'],
};
const ACTIONS = {
  accept: ['受理', 'Accept'], report_back: ['反馈（附照片）', 'Report back (photo)'],
  verify: ['核查通过', 'Verified on site'], rework: ['返工', 'Send back for rework'],
  return: ['退回', 'Return'], open: ['立案', 'Open'], reject: ['不予立案', 'Reject'],
  close: ['结案', 'Close'], pause: ['挂起', 'Pause'], resume: ['恢复', 'Resume'],
  extend: ['申请延期', 'Extend'], dispatch: ['派遣', 'Dispatch'], redispatch: ['改派', 'Redispatch'],
  reopen: ['重办', 'Reopen'],
};
const STEPS = {look: ['看', 'look'], check: ['查', 'check']};
// one character per category in a coloured badge: no icon font, no emoji font needed
const ICONS = {
  encroachment: '占', reclamation: '垦', illegal_discharge: '污', illegal_aquaculture: '殖',
  sand_mining: '砂', waterway_damage: '航', illegal_fishing: '鱼', floating_garbage: '漂',
  street_light: '灯', road_damage: '路', cctv: '监', green_belt: '绿', fire_equipment: '消',
  sewage: '管', illegal_construction: '违', vegetable_plot: '菜',
};

const S = {
  lang: localStorage.getItem('gk.lang') || (navigator.language || 'zh').slice(0, 2),
  key: localStorage.getItem('gk.key'),
  me: JSON.parse(localStorage.getItem('gk.me') || 'null'),
  tab: 'report', draft: null, syncing: false,
};
if (!WORDS[S.lang]) S.lang = 'zh';
const t = (k, vars) => (WORDS[S.lang][k] || k).replace(/\{(\w+)\}/g, (_, v) => vars[v]);
const pick = (pair) => (S.lang === 'zh' ? pair[0] : pair[1]);

/* ------------------------------------------------------------------ DOM (text only: no innerHTML) */
function el(tag, attrs, ...kids) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else if (k === 'class') node.className = v;
    else node.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid != null && kid !== false) node.append(kid instanceof Node ? kid : String(kid));
  }
  return node;
}
const $ = (sel) => document.querySelector(sel);
function show(...nodes) { $('#view').replaceChildren(...nodes.flat(2).filter((n) => n != null && n !== false)); }
function when(iso) {
  return new Date(iso).toLocaleString(S.lang === 'zh' ? 'zh-CN' : 'en-GB',
    {month: 'numeric', day: 'numeric', hour: '2-digit', minute: '2-digit'});
}
function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 15) | 64; b[8] = (b[8] & 63) | 128;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/* ------------------------------------------------------------------ IndexedDB: queue and state */
let dbp = null;
function db() {
  dbp = dbp || new Promise((ok, bad) => {
    const req = indexedDB.open('gridkit-app', 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore('queue', {keyPath: 'seq', autoIncrement: true});
      req.result.createObjectStore('kv');
    };
    req.onsuccess = () => ok(req.result);
    req.onerror = () => bad(req.error);
  });
  return dbp;
}
async function tx(store, mode, fn) {
  const d = await db();
  return new Promise((ok, bad) => {
    const x = d.transaction(store, mode);
    const out = fn(x.objectStore(store));
    x.oncomplete = () => ok(out && 'result' in out ? out.result : out);
    x.onerror = () => bad(x.error);
  });
}
const kvGet = (k) => tx('kv', 'readonly', (s) => s.get(k));
const kvSet = (k, v) => tx('kv', 'readwrite', (s) => s.put(v, k));
const queueAll = () => tx('queue', 'readonly', (s) => s.getAll());
const queueDel = (seq) => tx('queue', 'readwrite', (s) => s.delete(seq));
const queuePut = (item) => tx('queue', 'readwrite', (s) => s.put(item));

async function enqueue(items) {
  const now = new Date().toISOString();
  await tx('queue', 'readwrite', (s) => {
    for (const item of items) s.add({state: 'pending', created: now, ...item});
  });
  await badge();
  sync();
}

/* ------------------------------------------------------------------ network */
async function api(path, opts = {}) {
  const headers = {'X-API-Key': S.key, ...(opts.headers || {})};
  return fetch(path, {...opts, headers, cache: 'no-store'});
}
async function detail(resp) {
  try { const j = await resp.json(); return j.detail || j.title || resp.statusText; }
  catch (e) { return `${resp.status} ${resp.statusText}`; }
}

/* send the queue in order; stop at the first item the network refuses, keep going
   past items the server refuses for good (they stay, marked failed, for the user) */
async function sync() {
  if (S.syncing || !S.key || !navigator.onLine) return 0;
  S.syncing = true;
  let sent = 0;
  try {
    for (const item of await queueAll()) {
      if (item.state === 'failed') continue;
      let resp;
      try { resp = await send(item); } catch (e) { break; }  // no network: later
      if (resp.ok) { await queueDel(item.seq); sent++; continue; }
      // later: the server is busy or away; any other refusal is for the user to see
      if (resp.status >= 500 || [408, 425, 429].includes(resp.status)) break;
      if (resp.status === 401) break;  // key revoked: the user must sign in again
      await queuePut({...item, state: 'failed', error: `${resp.status}: ${await detail(resp)}`});
    }
  } finally {
    S.syncing = false;
    await badge();
    if (S.tab === 'pending') renderPending();
  }
  return sent;
}
function send(item) {
  const headers = {'Idempotency-Key': item.idem};
  if (item.kind === 'evidence') {
    const form = new FormData();
    form.append('photo', new Blob([item.photo], {type: 'image/jpeg'}), 'photo.jpg');
    for (const [k, v] of Object.entries(item.fields)) if (v != null) form.append(k, v);
    return api(item.url, {method: 'POST', headers, body: form});
  }
  headers['Content-Type'] = 'application/json';
  return api(item.url, {method: 'POST', headers, body: JSON.stringify(item.body)});
}
async function badge() {
  const n = (await queueAll()).length;
  const b = $('#badge');
  b.hidden = !n; b.textContent = n;
  return n;
}
function netState() {
  const on = navigator.onLine;
  const n = $('#net');
  n.textContent = t(on ? 'online' : 'offline');
  n.className = on ? 'net' : 'net off';
}

/* ------------------------------------------------------------------ sign-in */
function renderSignin(message) {
  $('#tabs').hidden = true;
  const input = el('input', {type: 'password', id: 'key', autocomplete: 'off', autocapitalize: 'off',
    spellcheck: 'false'});
  const err = el('p', {class: 'error', id: 'signin-error'}, message || '');
  const go = async () => {
    const key = input.value.trim();
    if (!key) return;
    err.textContent = '';
    try {
      const resp = await fetch('/app/api/me', {headers: {'X-API-Key': key}, cache: 'no-store'});
      if (!resp.ok) { err.textContent = resp.status === 401 ? t('signin_bad') : await detail(resp); return; }
      S.key = key; S.me = await resp.json();
      localStorage.setItem('gk.key', key); localStorage.setItem('gk.me', JSON.stringify(S.me));
      start();
    } catch (e) { err.textContent = t('signin_offline'); }
  };
  const scan = el('button', {type: 'button', class: 'btn wide', id: 'scan',
    onclick: () => scanQr(input, go, err)}, t('scan'));
  show(el('h2', {}, t('signin')), el('p', {class: 'muted'}, t('key_hint')),
    el('label', {for: 'key'}, t('key')), input, err,
    el('button', {type: 'button', class: 'btn primary wide', id: 'signin', onclick: go}, t('signin')),
    scan);
}
async function scanQr(input, go, err) {
  if (!('BarcodeDetector' in window) || !navigator.mediaDevices) { err.textContent = t('scan_none'); return; }
  const video = el('video', {class: 'scan', playsinline: true, muted: true});
  const dlg = el('dialog', {}, video, el('button', {type: 'button', class: 'btn wide',
    onclick: () => dlg.close()}, t('cancel')));
  document.body.append(dlg);
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({video: {facingMode: 'environment'}});
  } catch (e) { err.textContent = `${t('scan_none')} (${e.name})`; dlg.remove(); return; }
  video.srcObject = stream; await video.play(); dlg.showModal();
  const detector = new BarcodeDetector({formats: ['qr_code']});
  const stop = () => { stream.getTracks().forEach((tr) => tr.stop()); dlg.remove(); };
  dlg.addEventListener('close', stop);
  while (dlg.open) {
    const codes = await detector.detect(video).catch(() => []);
    if (codes.length) { input.value = keyOf(codes[0].rawValue); dlg.close(); go(); return; }
    await new Promise((r) => setTimeout(r, 250));
  }
}
/* a QR code holds the key, or an app link https://host/app/#key=... */
function keyOf(text) { const m = /[#&]key=([\w-]+)/.exec(text); return m ? m[1] : text.trim(); }

async function signout() {
  const n = await badge();
  if (n && !confirm(t('signout_pending', {n}))) return;
  localStorage.removeItem('gk.key'); localStorage.removeItem('gk.me');
  await tx('queue', 'readwrite', (s) => s.clear());
  await tx('kv', 'readwrite', (s) => s.clear());
  S.key = null; S.me = null;
  await badge();
  renderSignin();
}

/* ------------------------------------------------------------------ position and the small map */
function locate(onFix, onError) {
  if (!navigator.geolocation) { onError('no GPS'); return; }
  navigator.geolocation.getCurrentPosition(
    (p) => onFix({lon: p.coords.longitude, lat: p.coords.latitude, accuracy_m: p.coords.accuracy}),
    (e) => onError(e.message || String(e.code)), {enableHighAccuracy: true, timeout: 20000, maximumAge: 10000});
}
let leafletP = null;
function leaflet() {
  if (window.L) return Promise.resolve(window.L);
  leafletP = leafletP || new Promise((ok, bad) => {
    document.head.append(el('link', {rel: 'stylesheet', href: '/assets/leaflet.css'}));
    const s = el('script', {src: '/assets/leaflet.js'});
    s.onload = () => ok(window.L); s.onerror = () => { leafletP = null; bad(new Error('no Leaflet')); };
    document.head.append(s);
  });
  return leafletP;
}
/* the unit outlines around the worker: from the server when online, else the last copy */
async function area() {
  if (navigator.onLine) {
    try {
      const resp = await api('/app/api/area');
      if (resp.ok) { const fc = await resp.json(); await kvSet('area', fc); return fc; }
    } catch (e) { /* offline after all */ }
  }
  return (await kvGet('area')) || {type: 'FeatureCollection', features: []};
}
async function miniMap(box, draft, onMove) {
  let L;
  try { L = await leaflet(); } catch (e) { box.hidden = true; return; }
  const map = L.map(box, {zoomControl: true, attributionControl: false});
  const fc = await area();
  const outlines = L.geoJSON(fc, {style: (f) => ({weight: f.properties.mine ? 2 : 1,
    color: f.properties.mine ? '#15588f' : '#8893a3', fillOpacity: f.properties.mine ? 0.15 : 0.04})}).addTo(map);
  const at = draft.pos ? [draft.pos.lat, draft.pos.lon] : null;
  if (at) map.setView(at, 15);
  else if (fc.features.length) map.fitBounds(outlines.getBounds());
  else map.setView([27.83, 113.15], 11);
  const marker = L.marker(at || map.getCenter(), {draggable: true}).addTo(map);
  const moved = (ll) => onMove({lon: ll.lng, lat: ll.lat, accuracy_m: null, picked: true});
  marker.on('dragend', () => moved(marker.getLatLng()));
  map.on('click', (e) => { marker.setLatLng(e.latlng); moved(e.latlng); });
  return {map, marker};
}

/* ------------------------------------------------------------------ photos: resized on the device */
async function resized(file, maxSide = 1600) {
  const img = await new Promise((ok, bad) => {
    const i = new Image(); i.onload = () => ok(i); i.onerror = bad; i.src = URL.createObjectURL(file);
  });
  const k = Math.min(1, maxSide / Math.max(img.naturalWidth, img.naturalHeight));
  const c = el('canvas', {width: Math.round(img.naturalWidth * k), height: Math.round(img.naturalHeight * k)});
  c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
  URL.revokeObjectURL(img.src);
  const blob = await new Promise((ok) => c.toBlob(ok, 'image/jpeg', 0.8));
  // capture time travels as a field: resizing drops the EXIF
  return {data: await blob.arrayBuffer(), url: URL.createObjectURL(blob),
    taken_at: new Date(file.lastModified || Date.now()).toISOString()};
}
function photoInput(list, thumbs) {
  return el('input', {type: 'file', accept: 'image/*', capture: 'environment', multiple: true,
    class: 'photo-input', onchange: async (e) => {
      for (const f of e.target.files) {
        const p = await resized(f); list.push(p);
        thumbs.append(el('img', {src: p.url, alt: ''}));
      }
      e.target.value = '';
    }});
}

/* ------------------------------------------------------------------ report a problem */
function newDraft(extra) { return {category: null, description: '', photos: [], pos: null, ...extra}; }
function reportItems(d, source = 'patrol') {
  const idem = uuid();
  const body = {category: d.category, description: d.description || null, source,
    lon: d.pos.lon, lat: d.pos.lat, crs: 'EPSG:4326', reported_at: new Date().toISOString()};
  if (d.patrol_id && S.me.accepts && S.me.accepts.report_patrol) body.patrol_id = d.patrol_id;
  const label = `${catLabel(d.category)} ${(d.description || '').slice(0, 30)}`;
  const items = [{kind: 'report', url: '/reports', idem, body, label}];
  for (const p of d.photos) {
    items.push({kind: 'evidence', url: `/reports/key:${encodeURIComponent(idem)}/evidence`,
      idem: uuid(), photo: p.data, label,
      fields: {kind: 'before', taken_at: p.taken_at, lon: d.pos.lon, lat: d.pos.lat}});
  }
  return items;
}
function catLabel(key) {
  const c = (S.me.categories || []).find((x) => x.key === key);
  return c ? (S.lang === 'zh' ? c.label_zh : c.label_en) : key;
}
function categoryPicker(d) {
  const buttons = (S.me.categories || []).map((c) => el('button', {type: 'button', class: 'cat',
    'data-cat': c.key, 'aria-pressed': String(d.category === c.key),
    onclick: (e) => {
      d.category = c.key;
      for (const b of e.currentTarget.parentNode.children) b.setAttribute('aria-pressed', String(b === e.currentTarget));
    }},
    el('span', {class: c.domain === 'river' ? 'ico river' : 'ico'}, ICONS[c.key] || c.label_zh.slice(0, 1)),
    S.lang === 'zh' ? c.label_zh : c.label_en));
  return el('div', {class: 'cats'}, buttons);
}
function reportForm(d, {onDone, source = 'patrol', title}) {
  const posText = el('p', {class: 'muted', id: 'pos'}, t('gps_wait'));
  const setPos = (p) => {
    d.pos = p;
    posText.textContent = `${p.lat.toFixed(6)}, ${p.lon.toFixed(6)} · ` +
      (p.picked ? t('picked') : t('gps_acc', {m: Math.round(p.accuracy_m)}));
  };
  let mapped = null;
  const fix = () => locate((p) => {
    if (d.pos && d.pos.picked) return;
    setPos(p);
    if (mapped) { mapped.marker.setLatLng([p.lat, p.lon]); mapped.map.setView([p.lat, p.lon], 15); }
  }, (e) => { if (!d.pos) posText.textContent = t('gps_none', {e}); });
  if (d.pos) setPos(d.pos); else fix();
  const thumbs = el('div', {class: 'thumbs'}, d.photos.map((p) => el('img', {src: p.url, alt: ''})));
  const desc = el('textarea', {id: 'desc', maxlength: 2000, oninput: (e) => { d.description = e.target.value; }});
  desc.value = d.description;
  const err = el('p', {class: 'error', id: 'report-error'});
  const box = el('div', {id: 'minimap'});
  const submit = async () => {
    if (!d.category) { err.textContent = t('need_cat'); return; }
    if (!d.pos) { err.textContent = t('need_pos'); return; }
    await enqueue(reportItems(d, source));
    onDone();
  };
  const nodes = [title ? el('h2', {}, title) : null,
    el('label', {}, t('category')), categoryPicker(d),
    el('label', {for: 'desc'}, t('description')), desc,
    el('label', {}, t('photos')), el('label', {class: 'btn'}, t('add_photo'), photoInput(d.photos, thumbs)), thumbs,
    el('label', {}, t('position')), posText,
    el('div', {class: 'row'}, el('button', {type: 'button', class: 'btn', onclick: () => { d.pos = null; fix(); }}, t('gps_retry'))),
    box, el('p', {class: 'muted'}, t('map_hint')), err,
    el('button', {type: 'button', class: 'btn primary wide', id: 'submit', onclick: submit}, t('submit'))];
  setTimeout(async () => { mapped = await miniMap(box, d, setPos); }, 0);
  return nodes;
}
function renderReport(message) {
  S.draft = S.draft || newDraft();
  show(...reportForm(S.draft, {title: t('tab_report'), onDone: () => {
    S.draft = null; renderReport(t('queued'));
  }}), message ? el('p', {class: 'muted', id: 'report-done'}, message) : null);
  if (message) $('#report-done').scrollIntoView();
}

/* ------------------------------------------------------------------ my cases */
async function renderCases() {
  const list = el('div', {id: 'cases'});
  const note = el('p', {class: 'muted', id: 'cases-note'});
  show(el('div', {class: 'row'}, el('h2', {style: 'flex:1'}, t('tab_cases')),
    el('button', {type: 'button', class: 'btn slim', onclick: renderCases}, t('refresh'))), note, list);
  let data = null;
  if (navigator.onLine) {
    try {
      const resp = await api('/app/api/cases');
      if (resp.ok) { data = await resp.json(); data.fetched = new Date().toISOString(); await kvSet('cases', data); }
    } catch (e) { /* offline */ }
  }
  if (!data) {
    data = await kvGet('cases');
    if (data) note.textContent = t('cases_cached', {t: when(data.fetched)});
  }
  const cases = (data && data.cases) || [];
  if (!cases.length) { list.append(el('p', {class: 'muted'}, t('cases_none'))); return; }
  for (const c of cases) list.append(caseCard(c));
}
function caseCard(c) {
  const stage = STAGES[c.status] ? pick(STAGES[c.status]) : c.status;
  const due = c.due_at ? when(c.due_at) : null;
  const actions = el('div', {class: 'row'}, (c.actions || []).map((a) => el('button', {
    type: 'button', class: a.reason ? 'btn danger' : 'btn', 'data-action': a.action,
    onclick: () => caseAction(c, a)}, actionLabel(a))));
  return el('div', {class: c.overdue ? 'card late' : 'card', 'data-case': c.report_id},
    el('h4', {}, `${catLabel(c.category)} · ${c.report_id}`),
    el('div', {}, el('span', {class: 'tag'}, stage), c.overdue ? el('span', {class: 'tag late'}, t('overdue')) : null,
      c.paused_at ? el('span', {class: 'tag'}, t('paused')) : null,
      due ? el('span', {class: 'muted'}, `${t('due')} ${due}`) : null),
    c.description ? el('p', {}, c.description) : null,
    (c.actions || []).length ? actions : el('p', {class: 'muted'}, t('no_actions')));
}
function actionLabel(a) {
  return S.lang === 'zh' ? a.label_zh : (ACTIONS[a.action] ? ACTIONS[a.action][1] : a.action);
}
function caseAction(c, step) {
  const action = step.action;
  const photos = [];
  const thumbs = el('div', {class: 'thumbs'});
  const reason = el('textarea', {id: 'action-note'});
  const err = el('p', {class: 'error', id: 'action-error'});
  const hours = el('input', {type: 'number', id: 'action-hours', min: 1, max: 1440, value: 24});
  // a report back carries the after photo its category asks for (the rules' evidence)
  const cat = (S.me.categories || []).find((x) => x.key === c.category);
  const withPhoto = action === 'report_back';
  const photoNeeded = withPhoto && (!cat || (cat.evidence || []).includes('after'));
  const dlg = el('dialog', {id: 'action-dialog'},
    el('h3', {}, `${actionLabel(step)} · ${c.report_id}`),
    el('label', {for: 'action-note'}, step.reason ? t('reason') : t('note')), reason,
    action === 'extend' ? [el('label', {for: 'action-hours'}, t('hours')), hours] : null,
    withPhoto ? [el('label', {}, t('after_photo')), el('label', {class: 'btn'}, t('add_photo'), photoInput(photos, thumbs)), thumbs] : null,
    err,
    el('div', {class: 'row'},
      el('button', {type: 'button', class: 'btn', onclick: () => dlg.close()}, t('cancel')),
      el('button', {type: 'button', class: 'btn primary', id: 'action-ok', onclick: async () => {
        if (step.reason && !reason.value.trim()) { err.textContent = t('need_reason'); return; }
        if (photoNeeded && !photos.length) { err.textContent = t('need_photo'); return; }
        const label = `${c.report_id} ${actionLabel(step)}`;
        const here = await new Promise((ok) => locate(ok, () => ok(null)));
        const items = photos.map((p) => ({kind: 'evidence', url: `/reports/${encodeURIComponent(c.report_id)}/evidence`,
          idem: uuid(), photo: p.data, label,
          fields: {kind: 'after', taken_at: p.taken_at, lon: here && here.lon, lat: here && here.lat}}));
        items.push({kind: 'action', url: `/reports/${encodeURIComponent(c.report_id)}/actions`, idem: uuid(), label,
          body: {action, note: reason.value.trim() || null,
            hours: action === 'extend' ? Number(hours.value) : null}});
        await enqueue(items);
        dlg.close();
        const card = document.querySelector(`[data-case="${CSS.escape(c.report_id)}"]`);
        if (card) card.append(el('p', {class: 'muted'}, t('queued')));
      }}, t('confirm'))));
  dlg.addEventListener('close', () => dlg.remove());
  document.body.append(dlg);
  dlg.showModal();
}

/* ------------------------------------------------------------------ patrol */
const R = 6371008.8;
function metres(a, b) {
  const r = Math.PI / 180, dl = (b.lat - a.lat) * r, dn = (b.lon - a.lon) * r;
  const h = Math.sin(dl / 2) ** 2 + Math.cos(a.lat * r) * Math.cos(b.lat * r) * Math.sin(dn / 2) ** 2;
  return 2 * R * Math.asin(Math.sqrt(h));
}
function inRing(p, ring) {
  let inside = false;
  for (let i = 0, j = ring.length - 1; i < ring.length; j = i++) {
    const [xi, yi] = ring[i], [xj, yj] = ring[j];
    if ((yi > p.lat) !== (yj > p.lat) && p.lon < ((xj - xi) * (p.lat - yi)) / (yj - yi) + xi) inside = !inside;
  }
  return inside;
}
function inFeature(p, f) {
  const g = f.geometry;
  if (!g) return false;
  const polys = g.type === 'Polygon' ? [g.coordinates] : g.type === 'MultiPolygon' ? g.coordinates : [];
  return polys.some((poly) => inRing(p, poly[0]) && !poly.slice(1).some((hole) => inRing(p, hole)));
}
const P = {watch: null, timer: null, area: null};
async function patrol() { return (await kvGet('patrol')) || null; }
async function savePatrol(p) { await kvSet('patrol', p); }
function onFix(pos) {
  patrol().then(async (p) => {
    // a fix from before the start (or the pause) is where the phone was, not the patrol
    if (!p || p.paused || pos.timestamp < p.resumed) return;
    const fix = {lon: pos.coords.longitude, lat: pos.coords.latitude,
      t: new Date(pos.timestamp).toISOString(), accuracy_m: pos.coords.accuracy};
    const last = p.points[p.points.length - 1];
    if (last && last.t === fix.t) return;
    if (last) p.distance_m += metres(last, fix);
    p.points.push(fix);
    for (const f of (P.area || {features: []}).features) {
      if (!p.units.includes(f.id) && inFeature(fix, f)) p.units.push(f.id);
    }
    await savePatrol(p);
    if (S.tab === 'patrol') patrolStats(p);
  });
}
function watchGps(on) {
  if (on && P.watch == null && navigator.geolocation) {
    P.watch = navigator.geolocation.watchPosition(onFix, () => {}, {enableHighAccuracy: true, maximumAge: 0});
  } else if (!on && P.watch != null) { navigator.geolocation.clearWatch(P.watch); P.watch = null; }
}
function duration(p) {
  const ms = p.elapsed_ms + (p.paused ? 0 : Date.now() - p.resumed);
  const m = Math.floor(ms / 60000);
  return `${Math.floor(m / 60)}:${String(m % 60).padStart(2, '0')}`;
}
function patrolStats(p) {
  const box = $('#patrol-stats');
  if (!box) return;
  const last = p.points[p.points.length - 1];
  box.replaceChildren(el('div', {class: 'stats'},
    el('div', {}, el('b', {id: 'p-distance'}, (p.distance_m / 1000).toFixed(2) + ' km'), t('p_distance')),
    el('div', {}, el('b', {id: 'p-duration'}, duration(p)), t('p_duration')),
    el('div', {}, el('b', {id: 'p-units'}, p.units.length), t('p_units'))),
  el('p', {class: 'muted', id: 'p-fixes'}, t('p_fixes', {n: p.points.length, m: last ? Math.round(last.accuracy_m) : '–'})));
}
async function renderPatrol(message) {
  const p = await patrol();
  P.area = P.area || await area();
  clearInterval(P.timer);
  if (!p) {
    watchGps(false);
    show(el('h2', {}, t('tab_patrol')), message ? el('p', {class: 'muted', id: 'patrol-done'}, message) : null,
      el('button', {type: 'button', class: 'btn primary wide', id: 'p-start', onclick: async () => {
        await savePatrol({patrol_id: `app-${uuid()}`, started: new Date().toISOString(), points: [],
          distance_m: 0, units: [], paused: false, resumed: Date.now(), elapsed_ms: 0, checklist: {}, notes: ''});
        renderPatrol();
      }}, t('p_start')));
    return;
  }
  watchGps(true);  // kept warm while paused: the fixes are left out (onFix)
  const notes = el('textarea', {id: 'p-notes', oninput: async (e) => { const q = await patrol(); q.notes = e.target.value; await savePatrol(q); }});
  notes.value = p.notes || '';
  show(el('h2', {}, t('tab_patrol')), el('div', {id: 'patrol-stats'}),
    el('div', {class: 'row'},
      el('button', {type: 'button', class: 'btn', id: 'p-pause', onclick: async () => {
        const q = await patrol();
        if (q.paused) { q.paused = false; q.resumed = Date.now(); }
        else { q.paused = true; q.elapsed_ms += Date.now() - q.resumed; }
        await savePatrol(q); renderPatrol();
      }}, p.paused ? t('p_resume') : t('p_pause')),
      el('button', {type: 'button', class: 'btn primary', id: 'p-stop', onclick: stopPatrol}, t('p_stop'))),
    checklist(p), el('label', {for: 'p-notes'}, t('p_notes')), notes,
    el('p', {class: 'error', id: 'patrol-error'}));
  patrolStats(p);
  P.timer = setInterval(() => patrolStats(p), 15000);
}
function checklist(p) {
  const items = (S.me && S.me.checklist) || [];
  if (!items.length) return null;
  const rows = items.map((it) => {
    const key = it.key;
    const label = S.lang === 'zh' ? (it.zh || key) : (it.en || it.zh || key);
    const opts = ['ok', 'problem', 'na'].map((v) => el('button', {type: 'button', class: v === 'problem' ? 'bad' : '',
      'data-item': key, 'data-value': v, 'aria-pressed': String((p.checklist[key] || {}).result === v),
      onclick: async () => {
        const q = await patrol();
        q.checklist[key] = {result: v, step: it.step || null};
        await savePatrol(q);
        if (v === 'problem') return problemFromItem(q, it, label);
        renderPatrol();
      }}, t(v)));
    const step = STEPS[it.step] ? pick(STEPS[it.step]) : (it.step || '');
    return el('div', {class: 'check', 'data-check': key}, el('span', {}, step ? `${step} · ${label}` : label),
      el('div', {class: 'opts'}, opts));
  });
  return el('section', {}, el('h3', {}, t('checklist')), rows);
}
function problemFromItem(p, item, label) {
  // 交 hand over: the item's category, the patrol named in the text until the server
  // links a report to its patrol
  const d = newDraft({description: `[${t('from_patrol')} ${p.patrol_id}] ${label}: `,
    patrol_id: p.patrol_id, category: item.category || null});
  const last = p.points[p.points.length - 1];
  if (last) d.pos = {lon: last.lon, lat: last.lat, accuracy_m: last.accuracy_m};
  show(el('p', {class: 'muted'}, t('problem_report')), ...reportForm(d, {source: 'patrol', title: label,
    onDone: async () => {
      const q = await patrol();
      q.checklist[item.key] = {...q.checklist[item.key], reported: true};
      await savePatrol(q); renderPatrol(t('queued'));
    }}));
}
async function stopPatrol() {
  const p = await patrol();
  if (!p.points.length) {  // started by mistake, or no GPS: nothing to keep
    if (!confirm(t('p_short'))) return;
    await kvSet('patrol', null); watchGps(false); renderPatrol(); return;
  }
  const body = {patrol_id: p.patrol_id, worker_id: S.me.worker_id || null, crs: 'EPSG:4326',
    points: p.points.map((f) => ({lon: f.lon, lat: f.lat, t: f.t, accuracy_m: f.accuracy_m}))};
  const results = Object.entries(p.checklist).map(([k, v]) => ({item: k, result: v.result, reported: !!v.reported}));
  // the record as gridkit.ops.ledger reads it: {"item": {"result": "ok|problem|na"}};
  // a problem already sent as a report is marked so, and not handed over twice
  if (S.me.accepts && S.me.accepts.patrol_checklist && results.length) {
    body.checklist = Object.fromEntries(results.map((r) => [r.item,
      r.reported ? {result: r.result, reported: true} : {result: r.result}]));
  }
  const written = results.map((r) => `${r.item}=${r.result}`).join('; ');
  body.notes = [p.notes, written && !body.checklist ? `[checklist] ${written}` : ''].filter(Boolean).join('\n') || null;
  await enqueue([{kind: 'patrol', url: '/patrols', idem: p.patrol_id, body,
    label: `${when(p.started)} · ${(p.distance_m / 1000).toFixed(2)} km`}]);
  await kvSet('patrol', null);
  watchGps(false);
  renderPatrol(t('p_saved'));
}

/* ------------------------------------------------------------------ pending */
async function renderPending(message) {
  const items = await queueAll();
  const list = items.map((it) => el('div', {class: 'card', 'data-seq': it.seq, 'data-kind': it.kind},
    el('h4', {}, `${t('k_' + it.kind)} · ${it.label || ''}`),
    el('span', {class: it.state === 'failed' ? 'tag failed' : 'tag'}, it.state === 'failed' ? t('failed') : t('waiting')),
    el('span', {class: 'muted'}, when(it.created)),
    it.error ? el('p', {class: 'error'}, it.error) : null,
    it.state === 'failed' ? el('button', {type: 'button', class: 'btn danger', onclick: async () => {
      await queueDel(it.seq); await badge(); renderPending();
    }}, t('discard')) : null));
  show(el('div', {class: 'row'}, el('h2', {style: 'flex:1'}, t('tab_pending')),
    el('button', {type: 'button', class: 'btn slim', id: 'sync', onclick: async () => {
      const n = await sync(); renderPending(t('sent_n', {n}));
    }}, t('sync'))),
  message ? el('p', {class: 'muted'}, message) : null,
  items.length ? list : el('p', {class: 'muted', id: 'pending-none'}, t('pending_none')),
  el('button', {type: 'button', class: 'btn danger wide', id: 'signout', onclick: signout}, t('signout')),
  el('p', {class: 'muted'}, S.me ? `${S.me.name} · ${S.me.role}${S.me.worker_id ? ' · ' + S.me.worker_id : ''}` : ''));
}

/* ------------------------------------------------------------------ shell */
const SCREENS = {report: renderReport, cases: renderCases, patrol: renderPatrol, pending: renderPending};
function go(tab) {
  S.tab = tab;
  for (const b of document.querySelectorAll('#tabs button')) b.classList.toggle('on', b.dataset.tab === tab);
  SCREENS[tab]();
}
function words() {
  document.documentElement.lang = S.lang === 'zh' ? 'zh' : 'en';
  $('#title').textContent = t('title');
  $('#lang').textContent = S.lang === 'zh' ? 'EN' : '中文';
  for (const n of document.querySelectorAll('[data-t]')) n.textContent = t(n.dataset.t);
  netState();
}
async function start() {
  $('#tabs').hidden = false;
  await badge();
  go(S.tab);
  sync();
  // refresh who I am (categories, checklist) quietly when online
  if (navigator.onLine) {
    api('/app/api/me').then(async (r) => {
      if (r.ok) { S.me = await r.json(); localStorage.setItem('gk.me', JSON.stringify(S.me)); }
      else if (r.status === 401) renderSignin(t('signin_bad'));
    }).catch(() => {});
  }
  if ((await patrol()) && !(await patrol()).paused) watchGps(true);
}
function boot() {
  const local = ['localhost', '127.0.0.1', '[::1]'].includes(location.hostname);
  if (location.protocol === 'http:' && !local) { $('#insecure').hidden = false; }
  $('#insecure').textContent = t('insecure');
  words();
  $('#lang').addEventListener('click', () => {
    S.lang = S.lang === 'zh' ? 'en' : 'zh'; localStorage.setItem('gk.lang', S.lang);
    words(); $('#insecure').textContent = t('insecure');
    if (S.key) go(S.tab); else renderSignin();
  });
  for (const b of document.querySelectorAll('#tabs button')) b.addEventListener('click', () => go(b.dataset.tab));
  addEventListener('online', () => { netState(); sync(); });
  addEventListener('offline', netState);
  setInterval(sync, 20000);
  if ('serviceWorker' in navigator && isSecureContext) {
    navigator.serviceWorker.register('/app/sw.js', {scope: '/app/'}).catch((e) => console.warn('service worker:', e));
  }
  // a link from the QR code (https://host/app/#key=...) signs in at once
  const fromLink = /[#&]key=([\w-]+)/.exec(location.hash);
  if (fromLink) {
    history.replaceState(null, '', location.pathname);
    renderSignin(); $('#key').value = fromLink[1]; $('#signin').click(); return;
  }
  if (S.key && S.me) start(); else renderSignin();
}
boot();
