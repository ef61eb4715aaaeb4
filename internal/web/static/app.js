// govs web UI: vanilla JS, no dependencies. Every string from the server
// goes into the page through textContent / text nodes, never as HTML.
'use strict';
(() => {

// ---------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

const PROPS = new Set(['value', 'checked', 'type', 'name', 'title', 'disabled', 'readOnly',
  'placeholder', 'rows', 'step', 'min', 'colSpan', 'hidden', 'spellcheck', 'autocomplete']);

// h builds an element: attrs are properties (PROPS), class, text, on<event>
// handlers or attributes; children are nodes or strings (text nodes).
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of kids.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

// btn makes a button whose (async) action disables it while it runs.
function btn(text, cls, fn, title) {
  const b = h('button', {type: 'button', class: cls, title}, text);
  b.addEventListener('click', async ev => {
    if (b.disabled) return;
    b.disabled = true;
    try { await fn(ev); } finally { b.disabled = false; }
  });
  return b;
}

const badge = (cls, text, title) => h('span', {class: 'badge ' + cls, title: title || undefined}, text);
const thead = cols => h('thead', null, h('tr', null, cols.map(c =>
  Array.isArray(c) ? h('th', {class: c[1]}, c[0]) : h('th', null, c))));
const emptyRow = (n, text) => h('tr', null, h('td', {colSpan: n, class: 'empty'}, text));
const sum = (arr, f) => arr.reduce((a, x) => a + (Number(f(x)) || 0), 0);

function fmtSI(n) {
  n = Number(n) || 0;
  const u = ['', 'K', 'M', 'G', 'T', 'P'];
  let i = 0;
  while (Math.abs(n) >= 1000 && i < u.length - 1) { n /= 1000; i++; }
  if (i === 0) return String(Math.round(n));
  return n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0) + u[i];
}
function fmtBytes(n) {
  n = Number(n) || 0;
  const u = ['B', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)) + ' ' + u[i];
}
function fmtTime(s) {
  if (!s || String(s).startsWith('0001-')) return '—';
  const d = new Date(s);
  return isNaN(d) ? String(s) : d.toLocaleString();
}
function fmtExpire(sec) {
  sec = Math.max(0, Math.round(Number(sec) || 0));
  const m = Math.floor(sec / 60), s = sec % 60;
  return `${String(m).padStart(2, '0')}:${String(s).padStart(2, '0')}`;
}
const hostport = (addr, port) => (String(addr).includes(':') ? `[${addr}]` : addr) + ':' + port;
const lines = s => String(s).split('\n').map(l => l.trim().split(/\s+/).join(' ')).filter(Boolean);

// Go duration strings ("1h2m3.5s", "300ms", "0s") to seconds; NaN if bad.
const DUR_UNITS = {ns: 1e-9, us: 1e-6, 'µs': 1e-6, 'μs': 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600};
function parseDur(s) {
  if (s === null || s === undefined || s === '') return null;
  if (typeof s === 'number') return s / 1e9;
  let str = String(s).trim(), sign = 1;
  if (str[0] === '-' || str[0] === '+') { sign = str[0] === '-' ? -1 : 1; str = str.slice(1); }
  if (str === '0') return 0;
  const re = /(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)/y;
  let total = 0, pos = 0;
  while (pos < str.length) {
    re.lastIndex = pos;
    const m = re.exec(str);
    if (!m) return NaN;
    total += parseFloat(m[1]) * DUR_UNITS[m[2]];
    pos = re.lastIndex;
  }
  return pos === 0 ? NaN : sign * total;
}
const secsText = sec => (sec === null || isNaN(sec)) ? '' : String(Math.round(sec * 1e6) / 1e6);
const durText = d => { const s = parseDur(d); return s === null ? '' : isNaN(s) ? String(d) : secsText(s) + ' s'; };

function getPath(o, p) { return p.split('.').reduce((a, k) => (a === null || a === undefined) ? undefined : a[k], o); }
function setPath(o, p, v) {
  const ks = p.split('.');
  let a = o;
  for (const k of ks.slice(0, -1)) {
    if (a[k] === null || typeof a[k] !== 'object') { if (v === undefined) return; a[k] = {}; }
    a = a[k];
  }
  if (v === undefined) delete a[ks[ks.length - 1]]; else a[ks[ks.length - 1]] = v;
}

// ---------------------------------------------------------------- state

const S = {
  csrf: '',
  state: null,          // last live state (GET /api/v1/state or /events)
  config: null,         // config model
  revision: '',
  files: [],
  cfgProblems: [],
  tab: 'control',
  auto: true,
  es: null,
  esTimer: 0,
  lastEvent: 0,
  conns: [],
  vs: null,             // VS editor: {index (-1: new), base}
  sub: 'rs',
};

// ---------------------------------------------------------------- API

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

// api calls the server; a change refused for its CSRF token (the session
// was opened again in another tab) is retried once with the session's
// current token.
async function api(method, path, body) {
  try {
    return await api1(method, path, body);
  } catch (e) {
    if (method === 'GET' || e.status !== 403 || !/CSRF/.test(e.message) || path === '/login') throw e;
    await session();
    return api1(method, path, body);
  }
}

// session reads the session's CSRF token (401: the login form).
async function session() {
  const s = await api1('GET', '/session');
  if (s && s.csrf) S.csrf = s.csrf;
  return s;
}

async function api1(method, path, body) {
  const headers = {Accept: 'application/json'};
  const opt = {method, headers, credentials: 'same-origin', cache: 'no-store'};
  if (method !== 'GET') {
    if (S.csrf) headers['X-CSRF-Token'] = S.csrf;
    headers['Content-Type'] = 'application/json';
    opt.body = JSON.stringify(body === undefined ? {} : body);
  }
  let res;
  try { res = await fetch(path, opt); } catch (e) {
    throw new ApiError(0, {error: `cannot reach govs (${e.message})`});
  }
  const text = await res.text();
  let data = null;
  if (text) { try { data = JSON.parse(text); } catch { data = {error: text.trim().slice(0, 500)}; } }
  if (res.status === 401 && path !== '/login') {
    showLogin(S.csrf ? 'Your session expired: log in again.' : '');
    throw new ApiError(401, {error: 'not logged in'});
  }
  if (!res.ok) throw new ApiError(res.status, data || {error: `${res.status} ${res.statusText}`});
  return data === null ? {} : data;
}

// ---------------------------------------------------------------- messages

function setMessage(items) {
  const m = $('#message');
  m.replaceChildren();
  if (!items.length) { m.hidden = true; m.className = ''; return; }
  m.className = items.some(i => i.kind === 'error') ? 'error' : 'ok';
  for (const it of items) {
    const d = h('div', {class: it.kind}, it.text);
    if (it.list && it.list.length) d.append(h('ul', null, it.list.map(p => h('li', null, p))));
    m.append(d);
  }
  m.append(h('button', {type: 'button', class: 'close', title: 'dismiss', 'aria-label': 'dismiss', onclick: () => setMessage([])}));
  m.hidden = false;
}
const ok = text => setMessage([{kind: 'ok', text}]);
const err = (text, list) => setMessage([{kind: 'error', text, list}]);
function fail(e) {
  if (e && e.status === 401) return;
  const b = (e && e.body) || {};
  err(b.error || (e && e.message) || String(e), Array.isArray(b.problems) ? b.problems : []);
}

// ---------------------------------------------------------------- session

function showLogin(msg) {
  S.csrf = '';
  if (!$('#login').hidden) { if (msg) $('#login-error').textContent = msg; return; }
  closeEvents();
  setLive(false);
  $('#app').hidden = true;
  $('#tabs').hidden = true;
  $('#logout').hidden = true;
  $('#router-id').textContent = '';
  setMessage([]);
  $('#login').hidden = false;
  $('#login-error').textContent = msg || '';
  const pw = $('#login-password');
  pw.value = '';
  pw.focus();
}

async function doLogin(ev) {
  ev.preventDefault();
  const b = $('#login-submit');
  b.disabled = true;
  $('#login-error').textContent = '';
  try {
    const r = await api('POST', '/login', {password: $('#login-password').value});
    S.csrf = r.csrf || '';
    start();
  } catch (e) {
    $('#login-error').textContent = (e.body && e.body.error) || e.message;
    $('#login-password').select();
  } finally { b.disabled = false; }
}

async function doLogout() {
  try { await api('POST', '/logout'); } catch { /* going to the login form anyway */ }
  showLogin('Logged out.');
}

function start() {
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#tabs').hidden = false;
  $('#logout').hidden = false;
  showTab(S.tab);
  openEvents();
  refreshState();
  loadConfig().catch(fail);
}

// ---------------------------------------------------------------- live state

function setLive(on) {
  const l = $('#live');
  l.textContent = on ? 'live' : 'disconnected';
  l.className = 'live ' + (on ? 'on' : 'off');
  l.title = '';
}

function closeEvents() {
  clearTimeout(S.esTimer);
  if (S.es) { S.es.close(); S.es = null; }
}

function openEvents() {
  closeEvents();
  const es = new EventSource('/events');
  S.es = es;
  const onEvent = ev => {
    let st;
    try { st = JSON.parse(ev.data); } catch { return; }
    S.lastEvent = Date.now();
    setLive(true);
    onState(st);
  };
  es.onopen = () => setLive(true);
  es.addEventListener('state', onEvent);
  es.onmessage = onEvent;
  // the session ended: /session answers 401 and shows the login form
  es.addEventListener('expired', () => {
    es.close();
    if (S.es === es) S.es = null;
    setLive(false);
    session().then(openEvents, () => {});
  });
  // the director could not give its state this time
  es.addEventListener('failure', ev => {
    let msg = 'state unavailable';
    try { msg = JSON.parse(ev.data).error || msg; } catch { /* keep */ }
    const l = $('#live');
    l.textContent = 'state error';
    l.className = 'live off';
    l.title = msg;
  });
  es.onerror = () => {
    setLive(false);
    if (es.readyState === EventSource.CLOSED && S.es === es) {
      // The server refused the stream (session gone?) : ask /session,
      // which shows the login form on 401, else try again.
      S.es = null;
      S.esTimer = setTimeout(async () => {
        try { await session(); openEvents(); } catch (e) {
          if (e.status !== 401) S.esTimer = setTimeout(openEvents, 5000);
        }
      }, 2000);
    }
  };
}

async function refreshState(force) {
  try {
    const st = await api('GET', '/api/v1/state');
    onState(st, force);
  } catch (e) { fail(e); }
}

function onState(st, force) {
  S.state = st;
  $('#version').textContent = st.version ? 'version ' + st.version : '';
  if ((S.auto || force) && S.tab === 'control') renderControl();
  updateVRRPLive();
  updateVSLive();
  updateRSLive();
  const tf = $('#timeouts-form');
  if (!tf._dirty && st.timeouts) {
    for (const k of ['tcp', 'tcpfin', 'udp']) tf.elements.namedItem(k).value = st.timeouts[k] || '';
  }
}

function liveIndex() {
  const m = new Map();
  for (const s of (S.state && S.state.services) || []) m.set(s.id, s);
  return m;
}

// vsLive returns the live services of a config virtual server: one per
// protocol and port (or the firewall mark's).
function vsLive(vs, idx) {
  const out = [];
  if (!S.state || !vs) return out;
  if (vs.fwmark) {
    for (const s of S.state.services || []) {
      if (s.fwmark === vs.fwmark && s.id.startsWith('fwm') && (vs.ip_family === 'inet6') === !!s.v6) out.push(s);
    }
    return out;
  }
  const protos = vs.protocol && vs.protocol.length ? vs.protocol : ['TCP'];
  if (vs.group) {
    // a virtual_server_group: its fwmark entries, and its addresses (a
    // range first-last) with their port, for each protocol
    const g = ((S.config && S.config.virtual_server_groups) || []).find(x => x.name === vs.group);
    for (const e of (g && g.entries) || []) {
      for (const s of S.state.services || []) {
        if (e.fwmark) {
          if (s.fwmark === e.fwmark && s.id.startsWith('fwm') && !!e.inet6 === !!s.v6) out.push(s);
        } else if (!s.fwmark && protos.includes(s.proto) && (s.port || 0) === (e.port || 0) &&
                   addrInRange(s.addr, e.first, e.last || e.first)) out.push(s);
      }
    }
    return out;
  }
  if (!vs.addr) return out;
  idx = idx || liveIndex();
  for (const p of protos) {
    for (const r of vs.ports || []) {
      for (let port = r.from, n = 0; port <= r.to && n < 4096; port++, n++) {
        const s = idx.get(`${p.toLowerCase()}/${hostport(vs.addr, port)}`);
        if (s) out.push(s);
      }
    }
  }
  return out;
}

// addrNum turns an address into a BigInt (IPv4 and IPv6 apart), for
// range tests; null if it is not one.
function addrNum(a) {
  if (!a) return null;
  if (a.includes('.') && !a.includes(':')) {
    const p = a.split('.').map(Number);
    return p.length === 4 && p.every(x => x >= 0 && x < 256) ? p.reduce((n, x) => n * 256n + BigInt(x), 0n) : null;
  }
  // an IPv4 tail (::ffff:10.0.0.1): two groups
  const m4 = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (m4) {
    const v4 = addrNum(m4[2]);
    if (v4 === null) return null;
    a = m4[1] + (v4 >> 16n).toString(16) + ':' + (v4 & 0xffffn).toString(16);
  }
  let [head, tail] = a.split('::');
  const hs = head ? head.split(':') : [], ts = tail !== undefined && tail ? tail.split(':') : [];
  if (tail === undefined && hs.length !== 8) return null;
  const groups = [...hs, ...Array(8 - hs.length - ts.length).fill('0'), ...ts];
  return (1n << 128n) + groups.reduce((n, x) => n * 65536n + BigInt(parseInt(x || '0', 16)), 0n);
}
function addrInRange(a, first, last) {
  const n = addrNum(a), f = addrNum(first), l = addrNum(last);
  return n !== null && f !== null && l !== null && n >= f && n <= l;
}

// rsLive returns the live (service, real server) pairs of a config real
// server among the live services of its virtual server. A real server
// without a port takes the virtual port, which is 0 for a service of
// several ports (a list or range).
function rsLive(rs, svcs, vs) {
  const out = [];
  const multi = vs && !vs.fwmark && !vs.group && !singlePort(vs);
  for (const s of svcs) {
    const key = hostport(rs.addr, rs.port || (multi ? 0 : (s.port || 0)));
    for (const l of s.real_servers || []) if (l.addr === key && !l.sorry) out.push({svc: s, rs: l});
  }
  return out;
}

function healthOf(l) {
  if (!l.enabled) return ['disabled', 'disabled'];
  if (!l.healthy || !l.in_pool) return ['down', 'down'];
  if (l.weight === 0 && l.config_weight > 0) return ['drained', 'drained'];
  return ['up', 'up'];
}
function healthBadge(l) {
  const [cls, text] = healthOf(l);
  const why = [l.reason, l.since && !String(l.since).startsWith('0001-') ? 'since ' + fmtTime(l.since) : '']
    .filter(Boolean).join(', ');
  return badge(cls, text, why || (cls === 'disabled' ? 'disabled through the API' : ''));
}
function svcBadges(s) {
  const b = [];
  if (!s.enabled) b.push(badge('disabled', 'inactive', 'deactivated through the API'));
  else if (!s.quorum_up) b.push(badge('down', 'down', 'live weight below the quorum'));
  else b.push(badge('up', 'up'));
  if (s.sorry_active) b.push(badge('sorry', 'sorry', 'the sorry server takes the traffic'));
  return b;
}
function vrrpBadge(state) {
  const st = String(state || '?').toUpperCase();
  const cls = {MASTER: 'master', BACKUP: 'backup', FAULT: 'fault'}[st] || 'none';
  return badge(cls, st);
}

// ---------------------------------------------------------------- CONTROL

function renderControl() {
  const st = S.state;
  if (!st) return;
  const sm = $('#summary');
  sm.replaceChildren();
  const row = (k, v, cls) => sm.append(h('dt', null, k), h('dd', {class: cls}, v));
  const t = st.timeouts || {};
  row('Version', st.version || '');
  row('Dataplane', st.dataplane + (st.xdp_mode ? ` (xdp mode ${st.xdp_mode})` : ''));
  row('Started', fmtTime(st.started));
  row('Config file', h('span', {class: 'mono'}, st.config_file || ''));
  row('Config loaded', fmtTime(st.config_loaded));
  row('Conn table size', String(st.conn_table_size || ''));
  row('Timeouts', `tcp ${t.tcp} s, tcpfin ${t.tcpfin} s, udp ${t.udp} s`);
  row('Last reload error', st.last_reload_error || 'none', st.last_reload_error ? 'error' : '');

  const vt = $('#vrrp-live');
  vt.replaceChildren(thead(['Instance', 'State', 'Priority / effective', 'Interface', 'VRID', 'Master', 'Virtual addresses',
    'Last advert', ['Adverts sent / received', 'num']]));
  const vb = h('tbody');
  for (const v of st.vrrp || []) {
    const c = v.counters || {};
    vb.append(h('tr', {'data-vrrp-name': v.name},
      h('td', null, v.name, v.sync_group ? h('span', {class: 'hint'}, ` (${v.sync_group})`) : null),
      h('td', null, vrrpBadge(v.state)),
      h('td', null, `${v.priority} / ${v.effective_priority}`),
      h('td', {class: 'mono'}, v.interface),
      h('td', null, String(v.virtual_router_id)),
      h('td', {class: 'mono'}, v.master || ''),
      h('td', {class: 'mono wrap'}, (v.virtual_ipaddress || []).join(', ')),
      h('td', null, fmtTime(v.last_advert)),
      h('td', {class: 'num'}, `${c.adverts_sent || 0} / ${c.adverts_received || 0}`)));
  }
  if (!(st.vrrp || []).length) vb.append(emptyRow(9, 'No VRRP instance.'));
  vt.append(vb);

  // the BFD sessions (bfd_instance) VRRP instances and checkers track
  const fl = $('#bfd-line');
  const bfds = st.bfd || [];
  fl.hidden = !bfds.length;
  if (bfds.length) {
    const parts = [h('b', null, 'BFD: ')];
    bfds.forEach((b, i) => {
      if (i) parts.push(h('br'));
      const up = b.state === 'Up';
      parts.push(`${b.name} → ${b.neighbor_ip}: `, h('span', {class: up ? 'ok-text' : 'error', 'data-bfd-name': b.name}, b.state),
        up ? ` (tx ${Math.round(b.tx_interval_ns / 1e6)} ms, detect ${Math.round(b.detect_time_ns / 1e6)} ms)`
          : ` (${b.diagnostic === 'none' ? 'no answer from the neighbor yet' : b.diagnostic})`,
        b.error ? h('span', {class: 'error'}, ' — ' + b.error) : '');
    });
    fl.replaceChildren(...parts);
  }

  const sl = $('#sync-line');
  sl.hidden = !st.sync;
  if (st.sync) {
    const y = st.sync;
    sl.replaceChildren(h('b', null, 'Sync daemon: '),
      `role ${y.role}, interface ${y.interface}${y.instance ? ' (instance ' + y.instance + ')' : ''}, syncid ${y.syncid}, ` +
      `group ${y.group}:${y.port}, sent ${y.conns_sent} conns in ${y.messages_sent} msgs, ` +
      `received ${y.conns_received} (imported ${y.conns_imported}), errors ${y.send_errors}, dropped ${y.dropped}`,
      y.last_error ? h('span', {class: 'error'}, ' — ' + y.last_error) : null);
  }

  // the configuration sync with the peers (govs_config_sync_*)
  const cl = $('#config-sync-line');
  const cs = st.config_sync;
  cl.hidden = !cs;
  if (cs) {
    const parts = [h('b', null, 'Configuration sync: '), `revision ${cs.revision || '?'}` + (cs.listen ? `, takes peers' files on ${cs.listen}` : '')];
    for (const p of cs.peers || []) {
      parts.push(h('br'), `→ ${p.addr}: `);
      if (p.error) parts.push(h('span', {class: 'error'}, (p.pending ? 'not taken yet: ' : '') + p.error));
      else if (p.pending) parts.push('sending…');
      else if (p.result) parts.push(`${p.result} (revision ${p.revision}) at ${fmtTime(p.last_success)}`);
      else parts.push('nothing sent since govs started');
    }
    const r = cs.last_received;
    if (r) {
      parts.push(h('br'), `← from ${r.from} (${r.addr}) at ${fmtTime(r.at)}: `);
      parts.push(r.error ? h('span', {class: 'error'}, r.error) : `${r.result || 'refused'} (revision ${r.revision})`);
    }
    cl.replaceChildren(...parts);
  }

  // the BGP speaker (govs_bgp): routes announced and the sessions
  const bl = $('#bgp-line');
  const bg = st.bgp;
  $('#bgp-box').hidden = !bg;
  if (bg) {
    // maintenance: take this director out of the routers' ECMP groups
    // (govs bgp --withdraw) and back
    const tg = $('#bgp-toggle');
    tg.textContent = bg.drained ? 'Announce the routes again' : 'Withdraw the routes (maintenance)';
    tg.dataset.announce = bg.drained ? 'true' : 'false';
    tg.hidden = !!bg.withdrawn || !bg.running;
    let routes = bg.withdrawn ? 'none (withdrawn: govs is stopping)'
      : !bg.running ? 'none (the BGP speaker is not running)'
      : bg.drained ? 'none (withdrawn for maintenance)'
      : ((bg.routes || []).join(', ') || ((bg.held || []).length ? 'none' : 'none (no virtual service up)'));
    if ((bg.held || []).length) routes += `; held by announce_delay: ${bg.held.join(', ')}`;
    const parts = [h('b', null, 'BGP: '), `AS ${bg.local_as}, router id ${bg.router_id || '?'}, announcing ${routes}`];
    if (bg.last_error) parts.push(h('span', {class: 'error'}, ' — ' + bg.last_error));
    for (const n of bg.neighbors || []) {
      parts.push(h('br'), `↔ ${n.address} AS ${n.remote_as}: `,
        n.state === 'established' ? `established since ${fmtTime(n.since)}, ${n.advertised} advertised` : h('span', {class: 'error'}, n.state),
        n.bfd ? `, BFD ${n.bfd}` : '',
        n.last_down ? ` (last down: ${n.last_down})` : '');
    }
    bl.replaceChildren(...parts);
  }

  const lt = $('#lvs-table');
  lt.replaceChildren(thead(['Prot', 'LocalAddress:Port / RemoteAddress:Port', 'Scheduler / Forward', 'Weight', 'Status / Health',
    ['ActiveConn', 'num'], ['InActConn', 'num'], ['Conns', 'num'], ['CPS', 'num'], ['InPPS', 'num'], ['OutPPS', 'num'],
    ['In B/s', 'num'], ['Out B/s', 'num']]));
  const rates = (r, stats) => [
    h('td', {class: 'num'}, fmtSI(stats && stats.conns)), h('td', {class: 'num'}, fmtSI(r && r.cps)),
    h('td', {class: 'num'}, fmtSI(r && r.in_pps)), h('td', {class: 'num'}, fmtSI(r && r.out_pps)),
    h('td', {class: 'num'}, fmtBytes(r && r.in_bps)), h('td', {class: 'num'}, fmtBytes(r && r.out_bps))];
  const tb = h('tbody');
  for (const s of st.services || []) {
    const rss = s.real_servers || [];
    const sched = [s.scheduler, (s.flags || []).join(','), s.persistent ? `persistent ${s.persistent}` : '',
      s.persist_mask ? `mask ${s.persist_mask}` : '', s.ops ? 'ops' : '', s.pe ? `pe ${s.pe}` : ''].filter(Boolean).join(' ');
    tb.append(h('tr', {class: 'svc', 'data-service': s.id, title: s.source || undefined},
      h('td', null, s.proto),
      h('td', {class: 'mono'}, s.fwmark ? `FWM ${s.fwmark}${s.v6 ? ' IPv6' : ''}` : hostport(s.addr, s.port || 0),
        s.name ? h('span', {class: 'sub'}, s.name) : null),
      h('td', null, sched),
      h('td', null, ''),
      h('td', null, svcBadges(s)),
      h('td', {class: 'num'}, String(sum(rss, r => r.active_conns))),
      h('td', {class: 'num'}, String(sum(rss, r => r.inact_conns))),
      rates(s.rates, s.stats)));
    for (const r of rss) {
      const [cls] = healthOf(r);
      tb.append(h('tr', {class: 'rs', 'data-real': `${s.id}|${r.addr}`},
        h('td', null, r.sorry ? badge('sorry', 'sorry') : ''),
        h('td', {class: 'mono addr'}, r.addr),
        h('td', null, r.method),
        h('td', null, String(r.weight), r.config_weight !== r.weight ? h('span', {class: 'reason'}, `(config ${r.config_weight})`) : null),
        h('td', null, healthBadge(r), cls !== 'up' && r.reason ? h('span', {class: 'reason'}, r.reason) : null),
        h('td', {class: 'num'}, String(r.active_conns)),
        h('td', {class: 'num'}, String(r.inact_conns)),
        rates(r.rates, r.stats)));
    }
  }
  if (!(st.services || []).length) tb.append(emptyRow(13, 'No virtual service.'));
  lt.append(tb);
}

async function toggleBGP(announce) {
  try {
    await api('POST', '/api/v1/bgp', {announce});
    ok(announce ? 'BGP routes announced again.' : 'Every BGP route withdrawn: the routers send new flows to the other directors.');
  } catch (e) { fail(e); }
  refreshState(true);
}

async function doReload() {
  try {
    const r = await api('POST', '/api/v1/reload');
    ok(r.result === 'reloaded' ? 'Configuration reloaded.' : `Reload: ${r.result || 'done'}`);
  } catch (e) { fail(e); }
  refreshState(true);
  loadConfig().catch(() => {});
}

// ---------------------------------------------------------------- config

async function loadConfig() {
  const r = await api('GET', '/api/v1/config');
  S.config = r.config || {};
  S.revision = r.revision || '';
  S.files = r.files || S.config.files || [];
  S.cfgProblems = r.problems || [];
  renderConfigViews();
  return S.config;
}

function renderConfigViews() {
  const g = (S.config && S.config.global_defs) || {};
  $('#router-id').textContent = g.router_id || '';
  document.title = g.router_id ? `govs — ${g.router_id}` : 'govs';
  renderGlobalInfo();
  const gf = $('#global-form');
  if (!gf._dirty) fillGlobal();
  for (const e of Object.values(EDITORS)) e.render();
  renderSyncd();
  renderVSTable();
  if (S.vs) { renderRSTable(); renderChecks(); }
}

// A base is what a form edits: the revision it was read at, a copy of the
// object, and pick(config) that finds the object again in a newer config
// (throwing if it moved).
async function freshBase(pick) {
  await loadConfig();
  return {revision: S.revision, obj: structuredClone(pick(S.config)), pick};
}

// saveEdit posts an edit; on 409 it re-reads the config, rebases the form
// and asks to save again. It returns the response, or null on error.
async function saveEdit(req, base, what, redo) {
  req.revision = base.revision;
  try {
    const r = await api('POST', '/api/v1/config/edit', req);
    const items = [{kind: 'ok', text: r.result === 'unchanged' ? `Nothing changed in ${what}: the file already says so.`
      : `Saved ${what} to ${(r.files || []).join(', ') || 'the configuration'}.`}];
    if (r.reload_error) items.push({kind: 'error', text: `The file was saved but the reload failed: ${r.reload_error}`});
    setMessage(items);
    try { await loadConfig(); rebaseAll(); } catch (e) { fail(e); }
    return r;
  } catch (e) {
    if (e.status === 409) {
      let moved = '';
      try {
        await loadConfig();
        base.obj = structuredClone(base.pick(S.config));
        base.revision = S.revision;
      } catch (e2) { moved = ' ' + e2.message; }
      err('The configuration file changed on disk since this form was opened (someone else edited it). ' +
        'The configuration was read again: ' + (redo || 'check the form and press Save again to redo your edit.') + moved);
    } else fail(e);
    return null;
  }
}

async function deleteObj(req, pick, what) {
  let base;
  try { base = await freshBase(pick); } catch (e) { return fail(e), null; }
  return saveEdit(Object.assign({op: 'delete'}, req), base, `the deletion of ${what}`, 'check it and delete again.');
}

// After a save of ours, the other open forms move onto the new revision
// (they write only the fields changed in them, onto the object as it is
// now); one whose object moved keeps its old base and will get a 409.
function rebaseAll() {
  const bases = [$('#global-form')._base];
  const rf = $('#rs-form'), cf = $('#check-form');
  if (S.vs) bases.push(S.vs.base);
  if (!rf.hidden && rf._ctx) bases.push(rf._ctx.base);
  if (!cf.hidden && cf._ctx) bases.push(cf._ctx.base);
  for (const e of Object.values(EDITORS)) if (!e.form.hidden) bases.push(e.form._base);
  for (const b of bases) {
    if (!b) continue;
    try { b.obj = structuredClone(b.pick(S.config)); b.revision = S.revision; } catch { /* moved */ }
  }
}

// ---------------------------------------------------------------- forms

function toInt(s, sp) {
  const t = String(s).trim();
  if (!/^-?\d+$/.test(t)) throw new Error(`${sp.label}: "${s}" is not a whole number`);
  return parseInt(t, 10);
}
function toDur(s, sp) {
  const t = String(s).trim(), n = Number(t);
  if (t === '' || !isFinite(n) || n < 0) throw new Error(`${sp.label}: "${s}" is not a number of seconds`);
  return `${n}s`;
}

// Field types: to() renders the JSON value for the form, from() reads the
// form back (undefined deletes the key).
const T = {
  text: {to: v => v === undefined || v === null ? '' : String(v), from: s => s.trim()},
  opttext: {to: v => v || '', from: s => s.trim() || undefined},
  int: {to: v => v === undefined || v === null ? '' : String(v), from: (s, sp) => s.trim() === '' ? 0 : toInt(s, sp)},
  optint: {to: v => v === undefined || v === null ? '' : String(v), from: (s, sp) => s.trim() === '' ? undefined : toInt(s, sp)},
  int0: {to: v => v ? String(v) : '', from: (s, sp) => { const n = s.trim() === '' ? 0 : toInt(s, sp); return n || undefined; }},
  dur: {to: v => v ? secsText(parseDur(v)) : '', from: (s, sp) => s.trim() === '' ? undefined : toDur(s, sp)},
  reqdur: {to: v => v ? secsText(parseDur(v)) : '', from: (s, sp) => s.trim() === '' ? '0s' : toDur(s, sp)},
  bool: {to: v => !!v, from: b => b ? true : undefined},
  lines: {to: v => (v || []).join('\n'), from: s => { const a = lines(s); return a.length ? a : undefined; }},
  select: {to: v => v || '', from: s => s || undefined},
};

function fieldInput(sp) {
  if (sp.type === 'bool') return h('input', {type: 'checkbox', name: sp.name});
  if (sp.type === 'lines' || sp.area) return h('textarea', {name: sp.name, rows: sp.rows || 3, spellcheck: false});
  if (sp.options) {
    return h('select', {name: sp.name}, sp.options.map(o => Array.isArray(o)
      ? h('option', {value: o[0]}, o[1]) : h('option', {value: o}, o)));
  }
  const num = ['int', 'optint', 'int0', 'dur', 'reqdur'].includes(sp.type);
  return h('input', {type: num ? 'number' : 'text', name: sp.name, step: num ? 'any' : undefined,
    class: sp.mono ? 'mono' : undefined, placeholder: sp.placeholder, spellcheck: false, autocomplete: 'off'});
}

function buildFields(container, specs) {
  for (const sp of specs) {
    const input = fieldInput(sp);
    const cls = 'fld' + (sp.type === 'bool' ? ' bool' : '') + (sp.wide ? ' wide' : '');
    container.append(sp.type === 'bool'
      ? h('label', {class: cls, title: sp.hint}, input, sp.label)
      : h('label', {class: cls}, sp.label, input, sp.hint ? h('span', {class: 'hint'}, sp.hint) : null));
  }
}

const field = (form, name) => form.elements.namedItem(name);
const rawValue = el => el.type === 'checkbox' ? el.checked : el.value;

function fill(form, specs, obj) {
  for (const sp of specs) {
    const el = field(form, sp.name);
    if (!el) continue;
    el.disabled = false;
    el.readOnly = false;
    const v = sp.get ? sp.get(obj, el) : T[sp.type].to(getPath(obj, sp.name));
    if (el.type === 'checkbox') { el.checked = !!v; continue; }
    if (el.tagName === 'SELECT' && !Array.from(el.options).some(o => o.value === v)) {
      el.append(h('option', {value: v}, v));
    }
    el.value = v;
  }
  form._init = {};
  for (const sp of specs) { const el = field(form, sp.name); if (el) form._init[sp.name] = rawValue(el); }
  form._dirty = false;
}

// collect writes into obj the fields the user changed (compared with what
// fill() showed); untouched fields stay as they were in the file.
function collect(form, specs, obj) {
  for (const sp of specs) {
    const el = field(form, sp.name);
    if (!el || el.disabled || el.readOnly) continue;
    if (el.validity && el.validity.badInput) throw new Error(`${sp.label}: not a number`);
    const v = rawValue(el);
    if (v === form._init[sp.name]) continue;
    if (sp.set) sp.set(obj, v, sp);
    else setPath(obj, sp.name, T[sp.type].from(v, sp));
  }
  return obj;
}

// objLines edits a list of objects as one line each; a line left as it was
// keeps its object (with the fields the line does not show).
function objLines(key, render, parse) {
  return {
    get: o => (o[key] || []).map(render).join('\n'),
    set: (o, s) => {
      const orig = new Map((o[key] || []).map(x => [render(x), x]));
      const arr = lines(s).map(l => orig.has(l) ? orig.get(l) : parse(l));
      if (arr.length) o[key] = arr; else delete o[key];
    },
  };
}
const renderPeer = p => [p.addr, p.min_ttl ? `min_ttl ${p.min_ttl}` : '', p.max_ttl ? `max_ttl ${p.max_ttl}` : ''].filter(Boolean).join(' ');
function parsePeer(l) {
  const w = l.split(' '), p = {addr: w[0]};
  for (let i = 1; i < w.length; i++) {
    if ((w[i] === 'min_ttl' || w[i] === 'max_ttl') && /^\d+$/.test(w[i + 1] || '')) { p[w[i]] = +w[i + 1]; i++; }
    else throw new Error(`unicast_peer "${l}": unknown word "${w[i]}"`);
  }
  return p;
}
const renderTrack = t => [t.name, t.has_weight || t.weight ? `weight ${t.weight || 0}` : '', t.reverse ? 'reverse' : '',
  t.noreverse ? 'noreverse' : ''].filter(Boolean).join(' ');
// trackParser reads "NAME [weight N] [reverse|noreverse]" for keyword kw.
const trackParser = kw => l => {
  const w = l.split(' '), t = {name: w[0]};
  for (let i = 1; i < w.length; i++) {
    if (w[i] === 'weight' && /^-?\d+$/.test(w[i + 1] || '')) { t.weight = +w[i + 1]; t.has_weight = true; i++; }
    else if (w[i] === 'reverse') t.reverse = true;
    else if (w[i] === 'noreverse') t.noreverse = true;
    else throw new Error(`${kw} "${l}": unknown word "${w[i]}"`);
  }
  return t;
};
const trackField = (kw, hint) => Object.assign({name: kw, label: `${kw} (NAME [weight N] [reverse], one per line)`, type: 'text', area: true, hint},
  objLines(kw, renderTrack, trackParser(kw)));
// scriptField edits a notify script's command line; its user stays.
const scriptField = (name, label) => ({name, label, type: 'opttext', mono: true, wide: true,
  get: o => (getPath(o, name) || {}).cmd || '',
  set: (o, v) => { const c = v.trim(); setPath(o, name, c ? Object.assign({}, getPath(o, name), {cmd: c}) : undefined); }});
const NOTIFY_FIELDS = [
  scriptField('notify.master', 'notify_master'),
  scriptField('notify.backup', 'notify_backup'),
  scriptField('notify.fault', 'notify_fault'),
  scriptField('notify.stop', 'notify_stop'),
  scriptField('notify.notify', 'notify (every state change)'),
];
const VIP_KEYS = ['brd', 'dev', 'scope', 'label', 'peer'];
const VIP_FLAGS = ['home', 'mngtmpaddr', 'noprefixroute', 'autojoin'];
const renderVIP = v => [v.prefix, ...VIP_KEYS.filter(k => v[k]).map(k => `${k} ${v[k]}`),
  v.no_track ? 'no_track' : '', v.nodad ? 'nodad' : '', ...(v.extra || [])].filter(Boolean).join(' ');
function parseVIP(l) {
  const w = l.split(' ');
  let prefix = w[0];
  if (!prefix.includes('/')) prefix += prefix.includes(':') ? '/128' : '/32';
  const v = {prefix};
  for (let i = 1; i < w.length; i++) {
    const k = w[i] === 'broadcast' ? 'brd' : w[i];
    if (VIP_KEYS.includes(k) && w[i + 1] !== undefined) { v[k] = w[i + 1]; i++; }
    else if (k === 'no_track') v.no_track = true;
    else if (k === 'nodad' || k === '-nodad') v.nodad = true;
    else if (VIP_FLAGS.includes(k)) (v.extra = v.extra || []).push(k);
    else if (k === 'preferred_lft' && w[i + 1] !== undefined) { (v.extra = v.extra || []).push(k, w[i + 1]); i++; }
    else throw new Error(`virtual_ipaddress "${l}": unknown word "${w[i]}"`);
  }
  return v;
}

function markDirty(form) { form.addEventListener('input', () => { form._dirty = true; }); }

// ---------------------------------------------------------------- GLOBAL

const GLOBAL_FIELDS = [
  {name: 'router_id', label: 'router_id', type: 'opttext'},
  {name: 'notification_email', label: 'notification_email (one per line)', type: 'lines', wide: true},
  {name: 'notification_email_from', label: 'notification_email_from', type: 'opttext'},
  {name: 'smtp_server', label: 'smtp_server', type: 'opttext', mono: true},
  {name: 'smtp_port', label: 'smtp_port', type: 'int0', placeholder: '25'},
  {name: 'smtp_connect_timeout', label: 'smtp_connect_timeout (s)', type: 'reqdur'},
  {name: 'lvs_timeouts.tcp', label: 'lvs_timeouts tcp (s)', type: 'dur', placeholder: 'default'},
  {name: 'lvs_timeouts.tcpfin', label: 'lvs_timeouts tcpfin (s)', type: 'dur', placeholder: 'default'},
  {name: 'lvs_timeouts.udp', label: 'lvs_timeouts udp (s)', type: 'dur', placeholder: 'default'},
];

function fillGlobal() {
  if (!S.config) return;
  const f = $('#global-form');
  f._base = {revision: S.revision, obj: structuredClone(S.config.global_defs || {}), pick: cfg => cfg.global_defs || {}};
  fill(f, GLOBAL_FIELDS, f._base.obj);
}

async function saveGlobal(ev) {
  ev.preventDefault();
  const f = $('#global-form'), base = f._base;
  if (!base) return;
  let obj;
  try { obj = collect(f, GLOBAL_FIELDS, structuredClone(base.obj)); } catch (e) { return err(e.message); }
  const r = await saveEdit({op: 'set', kind: 'global_defs', object: obj}, base, 'the global settings');
  if (r) { f._dirty = false; fillGlobal(); }
}

function renderGlobalInfo() {
  const g = (S.config && S.config.global_defs) || {};
  const gv = g.govs || {};
  const dl = $('#govs-settings');
  dl.replaceChildren();
  const row = (k, v) => dl.append(h('dt', null, k), h('dd', {class: 'mono'}, v === undefined || v === '' ? '—' : String(v)));
  row('dataplane', gv.dataplane || 'auto');
  row('interfaces', (gv.interfaces || []).join(' '));
  row('xdp_mode', gv.xdp_mode);
  row('conn_table_size', gv.conn_table_size);
  row('web_listen', gv.web_listen);
  row('api_socket', gv.api_socket);
  row('api_listen', gv.api_listen);
  row('metrics_listen', gv.metrics_listen);
  row('web_allow', (gv.web_allow || []).join(' '));
  row('masquerade', (gv.masquerade || []).join(' '));
  row('log_level', gv.log_level);
  row('vrrp_version', g.vrrp_version);
  $('#config-files').replaceChildren(...S.files.map(f => h('li', null, f)),
    h('li', {class: 'hint'}, 'revision ' + S.revision));
  const p = $('#config-problems');
  p.replaceChildren();
  if (S.cfgProblems.length) {
    p.append(h('h2', null, 'Configuration warnings'), h('ul', {class: 'mono'}, S.cfgProblems.map(x => h('li', null, x))));
  }
}

async function setTimeouts(ev) {
  ev.preventDefault();
  const f = $('#timeouts-form'), body = {};
  try {
    for (const k of ['tcp', 'tcpfin', 'udp']) {
      const el = field(f, k);
      if (el.validity.badInput) throw new Error(`${k}: not a number`);
      body[k] = el.value.trim() === '' ? 0 : toInt(el.value, {label: k});
      if (body[k] < 0) throw new Error(`${k}: must not be negative`);
    }
  } catch (e) { return err(e.message); }
  const b = $('#timeouts-set');
  b.disabled = true;
  try {
    await api('POST', '/api/v1/timeouts', body);
    ok(`Timeouts set (tcp ${body.tcp || 'kept'}, tcpfin ${body.tcpfin || 'kept'}, udp ${body.udp || 'kept'}); the file is unchanged.`);
    f._dirty = false;
    refreshState();
  } catch (e) { fail(e); } finally { b.disabled = false; }
}

// ---------------------------------------------------------------- REDUNDANCY

const VRRP_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  {name: 'state', label: 'state (initial)', type: 'select', options: [['', '(not set)'], 'MASTER', 'BACKUP']},
  {name: 'interface', label: 'interface', type: 'text', mono: true},
  {name: 'virtual_router_id', label: 'virtual_router_id', type: 'int'},
  {name: 'priority', label: 'priority', type: 'int',
    hint: '255 is the address owner: MASTER at once, track weights and nopreempt ignored (state MASTER without a priority in the file is 255)'},
  {name: 'advert_int', label: 'advert_int (s)', type: 'reqdur'},
  {name: 'nopreempt', label: 'nopreempt', type: 'bool'},
  {name: 'unicast_src_ip', label: 'unicast_src_ip', type: 'text', mono: true},
  Object.assign({name: 'unicast_peer', label: 'unicast_peer (one address per line)', type: 'text', area: true},
    objLines('unicast_peer', renderPeer, parsePeer)),
  Object.assign({name: 'virtual_ipaddress', label: 'virtual_ipaddress (ADDR/LEN [dev IF] [brd B] [scope S] [label L], one per line)',
    type: 'text', area: true, wide: true}, objLines('virtual_ipaddress', renderVIP, parseVIP)),
  trackField('track_interface', 'interface names'),
  trackField('track_script', 'names of vrrp_script blocks (below)'),
  trackField('track_file', 'names of vrrp_track_file blocks (below)'),
  trackField('track_process', 'names of vrrp_track_process blocks (below)'),
  trackField('track_bfd', 'names of bfd_instance blocks (below)'),
  ...NOTIFY_FIELDS,
];

function updateVRRPLive() {
  if (!S.config) return;
  const live = new Map(((S.state && S.state.vrrp) || []).map(v => [v.name, v]));
  const byName = new Map((S.config.vrrp_instances || []).map(v => [v.name, v]));
  for (const tr of $$('#vrrp-instances-table tr[data-name]')) {
    const v = byName.get(tr.dataset.name);
    if (!v) continue;
    const l = live.get(v.name);
    $('.live-state', tr).replaceChildren(l ? vrrpBadge(l.state) : badge('none', 'n/a', 'not running'));
    $('.live-prio', tr).textContent = l ? `${v.priority} / ${l.effective_priority}` : String(v.priority);
    $('.live-master', tr).textContent = l ? l.master || '' : '';
  }
}

// ---------------------------------------------------------------- simple lists

// listEditor makes the editor of a kind of top-level block
// (vrrp_instance, vrrp_script, vrrp_sync_group, virtual_server_group):
// a table, ADD, and a form that edits one object; EDIT and DELETE on each
// row. spec: id, kind, key (the config's list), heading, fields, columns
// ([title, obj => text, class]), template() (a new object), after()
// (called after each rendering: live cells), renamed(old, name) (after
// a rename was saved).
function listEditor(spec) {
  const box = $('#' + spec.id);
  const table = h('table', {class: 'grid', id: spec.id + '-table'});
  const fields = h('div', {class: 'fields'});
  const title = h('h3');
  const form = h('form', {class: 'form', novalidate: true, hidden: true, id: spec.id + '-form'}, title, fields,
    h('div', {class: 'actions'}, h('button', {type: 'submit', class: 'primary'}, 'Save'),
      btn('Cancel', '', () => { form.hidden = true; })));
  box.append(h('div', {class: 'toolbar'}, h('h2', null, spec.heading), btn('ADD', 'list-add', () => open(-1))), table, form);
  buildFields(fields, spec.fields);
  const list = cfg => (cfg && cfg[spec.key]) || [];
  const pick = (i, name) => cfg => {
    const o = list(cfg)[i];
    if (!o || o.name !== name) throw new Error(`${spec.kind} ${name} was moved or deleted in the file: open it again.`);
    return o;
  };
  async function open(i) {
    const was = form.hidden;
    form.hidden = true;
    try {
      if (i < 0) {
        const tpl = spec.template();
        await loadConfig();
        form._base = {revision: S.revision, obj: tpl, pick: () => tpl};
      } else {
        form._base = await freshBase(pick(i, list(S.config)[i].name));
      }
    } catch (e) { form.hidden = was; return fail(e); }
    form._index = i;
    fill(form, spec.fields, form._base.obj);
    title.textContent = i < 0 ? `New ${spec.kind}` : `${spec.kind} ${form._base.obj.name}`;
    form.hidden = false;
    form.scrollIntoView({block: 'nearest'});
    field(form, 'name').focus();
  }
  form.addEventListener('submit', async ev => {
    ev.preventDefault();
    const base = form._base, i = form._index;
    let obj;
    try {
      obj = collect(form, spec.fields, structuredClone(base.obj));
      if (!obj.name) throw new Error('name: required');
    } catch (e) { return err(e.message); }
    const req = i < 0 ? {op: 'add', kind: spec.kind, object: obj} : {op: 'set', kind: spec.kind, index: i, object: obj};
    if (await saveEdit(req, base, `${spec.kind} ${obj.name}`)) {
      form.hidden = true;
      if (i >= 0 && base.obj.name !== obj.name && spec.renamed) spec.renamed(base.obj.name, obj.name);
    }
  });
  async function del(i) {
    const o = list(S.config)[i];
    if (!confirm(`Delete ${spec.kind} ${o.name}?`)) return;
    if (await deleteObj({kind: spec.kind, index: i}, pick(i, o.name), `${spec.kind} ${o.name}`)) form.hidden = true;
  }
  function render() {
    const items = list(S.config);
    table.replaceChildren(thead([...spec.columns.map(c => c[0]), '']));
    const tb = h('tbody');
    items.forEach((o, i) => tb.append(h('tr', {'data-name': o.name},
      spec.columns.map(c => h('td', {class: c[2]}, c[1](o))),
      h('td', {class: 'actions'}, btn('EDIT', 'list-edit', () => open(i)), btn('DELETE', 'list-delete danger', () => del(i))))));
    if (!items.length) tb.append(emptyRow(spec.columns.length + 1, `No ${spec.kind} in the configuration.`));
    table.append(tb);
    if (spec.after) spec.after();
  }
  return {render, form};
}

const SCRIPT_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  {name: 'script', label: 'script (command line; exit 0 is success)', type: 'text', mono: true, wide: true},
  {name: 'interval', label: 'interval (s)', type: 'reqdur'},
  {name: 'timeout', label: 'timeout (s)', type: 'dur', placeholder: 'interval'},
  {name: 'weight', label: 'weight (-253..253)', type: 'int0',
    hint: '0: FAULT while it fails; > 0 adds to the priority while it succeeds; < 0 subtracts while it fails'},
  {name: 'reverse', label: 'reverse (weight counts the other way)', type: 'bool'},
  {name: 'rise', label: 'rise', type: 'int0', placeholder: '1'},
  {name: 'fall', label: 'fall', type: 'int0', placeholder: '1'},
  {name: 'user', label: 'user [group]', type: 'opttext', placeholder: 'script_user'},
];

const TRACK_FILE_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  {name: 'file', label: 'file (its leading number, as strtol reads it)', type: 'text', mono: true, wide: true},
  {name: 'weight', label: 'weight (-254..254; 0: FAULT while not 0)', type: 'int'},
  {name: 'reverse', label: 'reverse', type: 'bool'},
  {name: 'init_file', label: 'init_file VALUE (written when the file is missing; empty: none)', type: 'text',
    get: o => o.init_file ? String(o.init_file.value) : '',
    set: (o, v, sp) => {
      const t = v.trim();
      if (t === '') { delete o.init_file; return; }
      o.init_file = Object.assign({}, o.init_file, {value: toInt(t, sp)});
    }},
  {name: 'init_file.overwrite', label: 'init_file overwrite (at start)', type: 'bool'},
];

const TRACK_PROCESS_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  {name: 'process', label: 'process (its name, or argv[0] with parameters or full_command)', type: 'text', mono: true},
  {name: 'params', label: 'parameters to match (words)', type: 'text', mono: true,
    get: o => (o.params || []).join(' '),
    set: (o, v) => { const w = v.trim().split(/\s+/).filter(Boolean); if (w.length) o.params = w; else delete o.params; }},
  {name: 'param_match', label: 'param_match', type: 'select', options: [['', 'exact (default)'], 'initial', 'partial']},
  {name: 'full_command', label: 'full_command', type: 'bool'},
  {name: 'weight', label: 'weight (0: FAULT while below quorum)', type: 'int0'},
  {name: 'reverse', label: 'reverse', type: 'bool'},
  {name: 'quorum', label: 'quorum (processes needed)', type: 'int0', placeholder: '1'},
  {name: 'quorum_max', label: 'quorum_max (empty: none)', type: 'text',
    get: o => o.has_quorum_max || o.quorum_max ? String(o.quorum_max || 0) : '',
    set: (o, v, sp) => {
      const t = v.trim();
      if (t === '') { delete o.quorum_max; delete o.has_quorum_max; return; }
      o.quorum_max = toInt(t, sp);
      o.has_quorum_max = true;
    }},
  {name: 'fork_delay', label: 'fork_delay (s)', type: 'dur'},
  {name: 'terminate_delay', label: 'terminate_delay (s)', type: 'dur'},
];

// ms edits a duration in milliseconds (BFD's intervals, as keepalived
// writes them).
const msField = (name, label) => ({name, label, type: 'text', placeholder: 'default',
  get: o => o[name] ? String(Math.round(parseDur(o[name]) * 1e6) / 1e3) : '',
  set: (o, v, sp) => {
    const t = v.trim(), n = Number(t);
    if (t === '') { delete o[name]; return; }
    if (!isFinite(n) || n <= 0) throw new Error(`${sp.label}: "${v}" is not a number of milliseconds`);
    o[name] = `${n}ms`;
  }});
const BFD_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  {name: 'neighbor_ip', label: 'neighbor_ip', type: 'text', mono: true},
  {name: 'source_ip', label: 'source_ip', type: 'opttext', mono: true},
  msField('min_rx', 'min_rx (ms, default 10)'),
  msField('min_tx', 'min_tx (ms, default 10)'),
  msField('idle_tx', 'idle_tx (ms, default 1000)'),
  {name: 'multiplier', label: 'multiplier', type: 'int0', placeholder: '5'},
  {name: 'passive', label: 'passive', type: 'bool'},
  {name: 'weight', label: 'weight (of track_bfd lines without one)', type: 'int0'},
  {name: 'reverse', label: 'reverse', type: 'bool'},
];

const SNAT_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  {name: 'addresses', label: 'addresses (one per line)', type: 'lines', rows: 4},
  {name: 'port_min', label: 'port_range from', type: 'int'},
  {name: 'port_max', label: 'port_range to', type: 'int'},
];

const SYNC_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  {name: 'group', label: 'group (vrrp_instance names, one per line)', type: 'lines', rows: 3},
  trackField('track_script'),
  trackField('track_file'),
  trackField('track_process'),
  trackField('track_bfd'),
  trackField('track_interface'),
  {name: 'sync_group_tracking_weight', label: 'sync_group_tracking_weight (members keep their own track weights)', type: 'bool'},
  {name: 'smtp_alert', label: 'smtp_alert', type: 'bool'},
  ...NOTIFY_FIELDS,
];

// A virtual_server_group line: ADDR[-LAST] [PORT] or fwmark N [inet6];
// LAST is an address, or keepalived's short form (the last byte of an
// IPv4 address, the last group of an IPv6 one).
const renderVSGEntry = e => e.fwmark ? `fwmark ${e.fwmark}${e.inet6 ? ' inet6' : ''}`
  : [e.first === e.last || !e.last ? e.first : `${e.first}-${e.last}`, e.port ? String(e.port) : ''].filter(Boolean).join(' ');
function parseVSGEntry(l) {
  const w = l.split(' ');
  const bad = why => new Error(`virtual_server_group "${l}": ${why}`);
  if (w[0] === 'fwmark') {
    if (!/^\d+$/.test(w[1] || '') || +w[1] === 0) throw bad('want fwmark N [inet6] with N > 0');
    if (w.length > 3 || (w[2] && w[2] !== 'inet6')) throw bad(`unknown word "${w[2]}"`);
    return w[2] ? {fwmark: +w[1], inet6: true} : {fwmark: +w[1]};
  }
  if (w.length > 2) throw bad(`unknown word "${w[2]}"`);
  const dash = w[0].lastIndexOf('-');
  let first = w[0], last = w[0];
  if (dash > 0) {
    first = w[0].slice(0, dash);
    last = w[0].slice(dash + 1);
    if (!last.includes('.') && !last.includes(':')) {
      last = first.includes(':') ? first.replace(/[0-9a-f]*$/i, last) : first.replace(/\d+$/, last);
    }
  }
  const e = {first, last};
  if (w[1] !== undefined) {
    if (!/^\d+$/.test(w[1]) || +w[1] > 65535) throw bad(`"${w[1]}" is not a port`);
    e.port = +w[1];
  }
  return e;
}
const VSG_FIELDS = [
  {name: 'name', label: 'name', type: 'text'},
  Object.assign({name: 'entries', label: 'entries (ADDR[-LAST] PORT, or fwmark N [inet6], one per line)', type: 'text', area: true, wide: true, rows: 4},
    objLines('entries', renderVSGEntry, parseVSGEntry)),
];

// trackedBy names the instances and sync groups whose track lines of
// kind (track_script, track_file) name a block.
function trackedBy(name, kind) {
  const c = S.config || {};
  return [...(c.vrrp_instances || []), ...(c.vrrp_sync_groups || [])]
    .filter(o => (o[kind] || []).some(t => t.name === name)).map(o => o.name).join(', ');
}
const trackText = ts => (ts || []).map(renderTrack).join(', ');
// tracksText: an instance's or sync group's track lines, kind by kind
const tracksText = o => ['track_interface', 'track_script', 'track_file', 'track_process', 'track_bfd']
  .filter(k => (o[k] || []).length).map(k => `${k.slice(6)}: ${trackText(o[k])}`).join('; ');
const notifyText = n => ['master', 'backup', 'fault', 'stop', 'notify'].filter(k => n && n[k]).join(', ');
const EDITORS = {};

function renderSyncd() {
  const d = $('#syncd');
  const sd = S.config && S.config.global_defs && S.config.global_defs.lvs_sync_daemon;
  const live = S.state && S.state.sync;
  d.replaceChildren();
  if (!sd) { d.append(h('p', {class: 'hint'}, 'No lvs_sync_daemon configured.')); return; }
  const dl = h('dl', {class: 'summary'});
  const row = (k, v) => dl.append(h('dt', null, k), h('dd', {class: 'mono'}, v === undefined || v === '' ? '—' : String(v)));
  row('interface', sd.interface);
  row('instance', sd.instance);
  row('id', sd.id);
  row('maxlen', sd.maxlen);
  row('port', sd.port);
  row('ttl', sd.ttl);
  row('group', sd.group);
  row('live role', live ? live.role : 'not running');
  d.append(dl);
}

// ---------------------------------------------------------------- VIRTUAL SERVERS

const SCHEDS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh'];
const METHODS = ['NAT', 'DR', 'TUN', 'SNAT'];
const portsText = ports => (ports || []).map(r => r.from === r.to ? String(r.from) : `${r.from}-${r.to}`).join(',');
const protoText = vs => (vs.protocol && vs.protocol.length ? vs.protocol : ['TCP']).join('+');
const identVS = vs => JSON.stringify([vs.addr || '', vs.ports || [], vs.fwmark || 0, vs.group || '']);
const identRS = rs => `${rs.addr}|${rs.port || 0}`;
function vsAddrText(vs) {
  if (vs.fwmark) return `FWM ${vs.fwmark}`;
  if (vs.group) return `group ${vs.group}`;
  return vs.addr || '';
}
function vsLabel(vs) {
  const a = vs.fwmark ? `FWM ${vs.fwmark}` : vs.group ? `group ${vs.group}` : hostport(vs.addr || '?', portsText(vs.ports));
  return vs.name ? `${vs.name} (${a})` : a;
}
const singlePort = vs => !vs.ports || !vs.ports.length || (vs.ports.length === 1 && vs.ports[0].from === vs.ports[0].to);

const VS_FIELDS = [
  {name: 'name', label: 'name', type: 'opttext'},
  {name: 'addr', label: 'virtual IP (addr)', type: 'text', mono: true},
  {name: 'port', label: 'port', type: 'text', mono: true,
    get: (vs, el) => {
      el.title = '';
      if (singlePort(vs)) return vs.ports && vs.ports.length ? String(vs.ports[0].from) : '';
      el.readOnly = true;   // a list or range: shown, kept as it is
      el.title = 'a port list/range: edit it in the file';
      return portsText(vs.ports);
    },
    set: (vs, s, sp) => {
      const t = s.trim();
      // empty or 0: every port (needs persistence, as in IPVS)
      if (t === '' || t === '0') { vs.ports = [{from: 0, to: 0}]; return; }
      const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(t);
      if (!m) throw new Error(`${sp.label}: "${s}" is not a port (or FROM-TO)`);
      const from = +m[1], to = m[2] ? +m[2] : from;
      if (from < 1 || to > 65535 || to < from) throw new Error(`${sp.label}: ${t} is out of range 1-65535 (0: every port)`);
      vs.ports = [{from, to}];
    }},
  {name: 'protocol', label: 'protocol', type: 'select', options: ['TCP', 'UDP', 'TCP+UDP', 'SCTP'],
    get: vs => protoText(vs), set: (vs, s) => { vs.protocol = s.split('+'); }},
  {name: 'fwmark', label: 'fwmark (firewall mark; no addr/port)', type: 'int0'},
  {name: 'group', label: 'group (a virtual_server_group; no addr/port/fwmark)', type: 'opttext'},
  {name: 'snat_pool', label: 'snat_pool (a govs_snat_pool, lvs_method SNAT)', type: 'opttext'},
  {name: 'lvs_sched', label: 'lvs_sched (scheduler)', type: 'select', options: SCHEDS},
  {name: 'lvs_method', label: 'lvs_method (forwarding)', type: 'select', options: METHODS},
  {name: 'persistence_timeout', label: 'persistence_timeout (s)', type: 'dur', placeholder: 'off'},
  {name: 'persistence_granularity', label: 'persistence_granularity (netmask)', type: 'opttext', mono: true},
  {name: 'quorum', label: 'quorum', type: 'int'},
  {name: 'delay_loop', label: 'delay_loop (s)', type: 'dur', placeholder: 'default 60'},
  {name: 'reentry', label: 'reentry (s)', type: 'dur'},
  {name: 'service_timeout', label: 'service_timeout (s)', type: 'dur'},
  {name: 'sorry_server.addr', label: 'sorry_server addr', type: 'opttext', mono: true},
  {name: 'sorry_server.port', label: 'sorry_server port', type: 'int0'},
  {name: 'quiesce_server', label: 'quiesce_server', type: 'bool'},
  {name: 'inhibit_on_failure', label: 'inhibit_on_failure', type: 'bool'},
];

function pickVS(i, ident) {
  return cfg => {
    const v = (cfg.virtual_servers || [])[i];
    if (!v || identVS(v) !== ident) throw new Error('This virtual server was changed, moved or deleted in the file: close it and open it again.');
    return v;
  };
}
// curVS is the virtual server open in the editor, as in the config now
// (null if it moved in the file since it was opened).
function curVS() {
  if (!S.vs || S.vs.index < 0 || !S.config) return null;
  const v = (S.config.virtual_servers || [])[S.vs.index];
  return v && identVS(v) === S.vs.ident ? v : null;
}

function renderVSTable() {
  const t = $('#vs-table');
  const list = (S.config && S.config.virtual_servers) || [];
  t.replaceChildren(thead(['Status', 'Name', 'Virtual IP', 'Port(s)', 'Protocol', 'Scheduler', 'Method',
    ['Real servers', 'num'], ['Conns', 'num'], '']));
  const tb = h('tbody');
  list.forEach((vs, i) => tb.append(h('tr', {'data-vs-index': i, class: S.vs && S.vs.index === i ? 'selected' : undefined},
    h('td', {class: 'vs-status'}),
    h('td', null, vs.name || ''),
    h('td', {class: 'mono'}, vsAddrText(vs)),
    h('td', {class: 'mono'}, vs.fwmark ? '' : portsText(vs.ports)),
    h('td', null, vs.fwmark ? '' : protoText(vs)),
    h('td', null, vs.lvs_sched || ''),
    h('td', null, vs.lvs_method || ''),
    h('td', {class: 'num'}, String((vs.real_servers || []).length)),
    h('td', {class: 'num vs-conns'}),
    h('td', {class: 'actions'},
      btn('EDIT', 'vs-edit', () => openVS(i)),
      btn('DELETE', 'vs-delete danger', () => deleteVS(i)),
      btn('DEACTIVATE', 'vs-toggle', () => toggleVS(i))))));
  if (!list.length) tb.append(emptyRow(10, 'No virtual_server in the configuration.'));
  t.append(tb);
  updateVSLive();
}

function updateVSLive() {
  if (!S.config) return;
  const idx = liveIndex(), list = S.config.virtual_servers || [];
  for (const tr of $$('#vs-table tr[data-vs-index]')) {
    const vs = list[+tr.dataset.vsIndex];
    if (!vs) continue;
    const svcs = vsLive(vs, idx);
    let b;
    if (!svcs.length) b = badge('none', 'n/a', 'not in the live table');
    else if (svcs.every(s => s.enabled && s.quorum_up)) b = badge('up', 'UP', svcs.map(s => s.id).join(', '));
    else {
      const why = svcs.filter(s => !s.enabled || !s.quorum_up)
        .map(s => `${s.id}: ${!s.enabled ? 'deactivated' : 'quorum lost'}`).join(', ');
      b = badge('down', 'DOWN', why);
    }
    $('.vs-status', tr).replaceChildren(b);
    $('.vs-conns', tr).textContent = svcs.length ? fmtSI(sum(svcs, s => s.stats && s.stats.conns)) : '';
    const tg = $('.vs-toggle', tr);
    tg.textContent = svcs.length && svcs.every(s => !s.enabled) ? 'ACTIVATE' : 'DEACTIVATE';
    tg.title = svcs.length ? 'runtime (the file is unchanged): ' + svcs.map(s => s.id).join(', ') : 'not in the live table';
  }
}

async function toggleVS(i) {
  const vs = (S.config.virtual_servers || [])[i];
  const svcs = vsLive(vs);
  if (!svcs.length) return err(`${vsLabel(vs)} is not in the live table: nothing to (de)activate.`);
  const enabled = svcs.every(s => !s.enabled);
  try {
    for (const s of svcs) await api('POST', '/api/v1/service', {service: s.id, enabled});
    ok(`${enabled ? 'Activated' : 'Deactivated'} ${svcs.map(s => s.id).join(', ')} (runtime; the file is unchanged).`);
  } catch (e) { fail(e); }
  refreshState();
}

async function deleteVS(i) {
  const vs = S.config.virtual_servers[i];
  const n = (vs.real_servers || []).length;
  if (!confirm(`Delete virtual server ${vsLabel(vs)} and its ${n} real server(s)?`)) return;
  const r = await deleteObj({kind: 'virtual_server', index: i}, pickVS(i, identVS(vs)), `virtual server ${vsLabel(vs)}`);
  if (r && S.vs && S.vs.index >= i) closeVS();
}

async function openVS(i) {
  const ed = $('#vs-editor'), was = ed.hidden;
  ed.hidden = true;
  let base;
  try {
    if (i < 0) {
      await loadConfig();
      const tpl = {addr: '', ports: [{from: 80, to: 80}], protocol: ['TCP'], lvs_sched: 'wlc', lvs_method: 'NAT',
        quorum: 1, real_servers: []};
      base = {revision: S.revision, obj: tpl, pick: () => tpl};
    } else {
      base = await freshBase(pickVS(i, identVS(S.config.virtual_servers[i])));
    }
  } catch (e) { ed.hidden = was || !S.vs; return fail(e); }
  S.vs = {index: i, base, ident: i < 0 ? null : identVS(base.obj)};
  $('#rs-form').hidden = true;
  $('#check-form').hidden = true;
  fillVS();
  renderVSTable();
  renderRSTable();
  renderChecks();
  showSub(S.sub);
  $('#vs-editor').hidden = false;
  $('#vs-editor').scrollIntoView({block: 'start'});
}

function fillVS() {
  const f = $('#vs-form'), {index, base} = S.vs, vs = base.obj;
  fill(f, VS_FIELDS, vs);
  vsFormMode();
  $('#vs-editor-title').textContent = index < 0 ? 'New virtual server' : `Virtual server ${vsLabel(vs)}`;
  const isNew = index < 0;
  $('#vs-subtabs').hidden = isNew;
  $('#vs-new-note').hidden = !isNew;
  for (const p of $$('#vs-editor .subpanel')) p.hidden = isNew || p.dataset.subpanel !== S.sub;
}

// followGroupRename keeps the open virtual server editor on its service
// when the group it names was renamed (the server renamed its group line
// too, which changes the service's identity).
function followGroupRename(old, name) {
  if (!S.vs || S.vs.index < 0) return;
  const v = (S.config.virtual_servers || [])[S.vs.index];
  if (!v || JSON.parse(S.vs.ident)[3] !== old || v.group !== name) return;
  S.vs.ident = identVS(v);
  const base = () => ({revision: S.revision, obj: structuredClone(v), pick: pickVS(S.vs.index, S.vs.ident)});
  S.vs.base = base();
  if (!$('#vs-form')._dirty) fillVS();
  // its open real server and check forms edit the service too
  for (const f of [$('#rs-form'), $('#check-form')]) {
    if (!f.hidden && f._ctx) f._ctx.base = base();
  }
}

// fwmark services have neither address nor port; group ones neither.
function vsFormMode() {
  const f = $('#vs-form');
  const mark = Number(field(f, 'fwmark').value) > 0, group = field(f, 'group').value.trim() !== '';
  for (const n of ['addr', 'port']) field(f, n).disabled = mark || group;
  field(f, 'fwmark').disabled = group;
  field(f, 'group').disabled = mark;
}

function closeVS() {
  S.vs = null;
  $('#vs-editor').hidden = true;
  renderVSTable();
}

async function saveVS(ev) {
  ev.preventDefault();
  if (!S.vs) return;
  const f = $('#vs-form'), {index, base} = S.vs;
  let obj;
  try {
    obj = collect(f, VS_FIELDS, structuredClone(base.obj));
    // a group, else a firewall mark, else the address and port: as the
    // form shows them now (the field vsFormMode disabled is left out by
    // collect, but it says what the user wants: empty)
    const group = field(f, 'group').value.trim(), mark = Number(field(f, 'fwmark').value) || 0;
    if (group) { obj.group = group; delete obj.fwmark; } else delete obj.group;
    if (!group && mark > 0) obj.fwmark = mark; else delete obj.fwmark;
    if (group || mark > 0) { delete obj.addr; delete obj.ports; }
    if (!obj.fwmark && !obj.group && !obj.addr) throw new Error('virtual IP (addr), fwmark or group: one is required');
    if (obj.lvs_method !== 'TUN') delete obj.tunnel;
    if (obj.sorry_server && !obj.sorry_server.addr) delete obj.sorry_server;
  } catch (e) { return err(e.message); }
  const req = index < 0 ? {op: 'add', kind: 'virtual_server', object: obj} : {op: 'set', kind: 'virtual_server', index, object: obj};
  const r = await saveEdit(req, base, `virtual server ${vsLabel(obj)}`);
  if (!r) return;
  const list = S.config.virtual_servers || [];
  let ni = index;
  if (index < 0) {
    // an add appends: the new one is the last (the server may have
    // written its address in another form)
    ni = r.result === 'saved' ? list.length - 1 : -1;
  }
  if (ni < 0 || !list[ni]) { closeVS(); return; }
  const pick = pickVS(ni, identVS(list[ni]));
  S.vs = {index: ni, base: {revision: S.revision, obj: structuredClone(list[ni]), pick}, ident: identVS(list[ni])};
  fillVS();
  renderVSTable();
  renderRSTable();
  renderChecks();
}

function showSub(name) {
  S.sub = name;
  for (const b of $$('#vs-subtabs .subtab')) b.classList.toggle('active', b.dataset.subtab === name);
  const isNew = !S.vs || S.vs.index < 0;
  for (const p of $$('#vs-editor .subpanel')) p.hidden = isNew || p.dataset.subpanel !== name;
}

// VS-level base for the real-server and check forms: the virtual server
// as in the file now, plus the real server's identity to check on save.
async function vsBase() {
  const vs = curVS();
  if (!vs) throw new Error('No virtual server selected.');
  return freshBase(pickVS(S.vs.index, identVS(vs)));
}
function rsOf(vsObj, j, ident) {
  const r = (vsObj.real_servers || [])[j];
  if (!r || identRS(r) !== ident) throw new Error('This real server was changed, moved or deleted in the file: open it again.');
  return r;
}
const rsAddrText = (vs, rs) => hostport(rs.addr, rs.port || (singlePort(vs) && vs.ports && vs.ports.length ? vs.ports[0].from : 0));

// ---------------------------------------------------------------- REAL SERVERS

const RS_FIELDS = [
  {name: 'name', label: 'name', type: 'opttext'},
  {name: 'addr', label: 'address', type: 'text', mono: true},
  {name: 'port', label: 'port', type: 'int0', placeholder: 'the virtual port'},
  {name: 'weight', label: 'weight', type: 'int'},
  {name: 'lvs_method', label: 'lvs_method', type: 'select', options: [['', "(virtual server's)"], ...METHODS]},
  {name: 'uthreshold', label: 'uthreshold (max conns)', type: 'int0'},
  {name: 'lthreshold', label: 'lthreshold', type: 'int0'},
];

function renderRSTable() {
  const t = $('#rs-table'), vs = curVS();
  t.replaceChildren(thead(['Name', 'Address', 'Port', 'Weight', 'Method', 'Health', 'Live weight', ['ActiveConn', 'num'],
    ['InActConn', 'num'], ['Conns', 'num'], ['CPS', 'num'], '', 'Runtime']));
  const tb = h('tbody');
  const list = (vs && vs.real_servers) || [];
  list.forEach((rs, j) => tb.append(h('tr', {'data-rs-index': j},
    h('td', null, rs.name || ''),
    h('td', {class: 'mono'}, rs.addr),
    h('td', {class: 'mono'}, rs.port ? String(rs.port) : h('span', {class: 'hint'}, 'virtual')),
    h('td', null, String(rs.weight)),
    h('td', null, rs.lvs_method || h('span', {class: 'hint'}, vs.lvs_method || '')),
    h('td', {class: 'live-health'}),
    h('td', {class: 'live-weight'}),
    h('td', {class: 'num live-active'}),
    h('td', {class: 'num live-inact'}),
    h('td', {class: 'num live-conns'}),
    h('td', {class: 'num live-cps'}),
    h('td', {class: 'actions'},
      btn('EDIT', 'rs-edit', () => openRS(j)),
      btn('DELETE', 'rs-delete danger', () => deleteRS(j))),
    h('td', {class: 'actions'},
      h('input', {type: 'number', class: 'rs-weight-input', min: '0', step: '1', title: 'new weight'}),
      btn('set weight', 'rs-weight', ev => rsWeight(j, ev)),
      btn('drain', 'rs-drain', () => rsDrain(j)),
      btn('disable', 'rs-toggle', () => rsToggle(j))))));
  if (!list.length) {
    tb.append(emptyRow(13, vs || !S.vs || S.vs.index < 0 ? 'No real server: ADD one.'
      : 'This virtual server changed in the file: close it and open it again.'));
  }
  t.append(tb);
  updateRSLive();
}

function updateRSLive() {
  const vs = curVS();
  if (!vs || $('#vs-editor').hidden) return;
  const svcs = vsLive(vs);
  const list = vs.real_servers || [];
  for (const tr of $$('#rs-table tr[data-rs-index]')) {
    const rs = list[+tr.dataset.rsIndex];
    if (!rs) continue;
    const m = rsLive(rs, svcs, vs);
    const set = (cls, v) => { $(cls, tr).textContent = v; };
    if (!m.length) {
      $('.live-health', tr).replaceChildren(badge('none', 'n/a', 'not in the live table'));
      for (const c of ['.live-weight', '.live-active', '.live-inact', '.live-conns', '.live-cps']) set(c, '');
    } else {
      const worst = m.find(x => healthOf(x.rs)[0] !== 'up') || m[0];
      $('.live-health', tr).replaceChildren(healthBadge(worst.rs));
      set('.live-weight', [...new Set(m.map(x => x.rs.weight))].join('/'));
      set('.live-active', String(sum(m, x => x.rs.active_conns)));
      set('.live-inact', String(sum(m, x => x.rs.inact_conns)));
      set('.live-conns', fmtSI(sum(m, x => x.rs.stats && x.rs.stats.conns)));
      set('.live-cps', fmtSI(sum(m, x => x.rs.rates && x.rs.rates.cps)));
    }
    const drained = m.length && m.every(x => x.rs.weight === 0 && x.rs.config_weight > 0);
    $('.rs-drain', tr).textContent = drained ? 'undrain' : 'drain';
    const disabled = m.length && m.every(x => !x.rs.enabled);
    $('.rs-toggle', tr).textContent = disabled ? 'enable' : 'disable';
    $('.rs-weight-input', tr).placeholder = m.length ? String(m[0].rs.weight) : '';
  }
}

// rsRuntime sends one /api/v1/realserver change per live service the
// real server is in.
async function rsRuntime(j, change, what) {
  const vs = curVS(), rs = vs && (vs.real_servers || [])[j];
  if (!rs) return;
  const m = rsLive(rs, vsLive(vs), vs);
  if (!m.length) { err(`${rsAddrText(vs, rs)} is not in the live table.`); return false; }
  let done = false;
  try {
    for (const x of m) await api('POST', '/api/v1/realserver', Object.assign({service: x.svc.id, server: x.rs.addr}, change(x)));
    ok(`${what} ${m.map(x => x.rs.addr + ' in ' + x.svc.id).join(', ')}.`);
    done = true;
    if (change(m[0]).persist) { await loadConfig(); rebaseAll(); }
  } catch (e) { fail(e); }
  refreshState();
  return done;
}

async function rsWeight(j, ev) {
  const input = $('.rs-weight-input', ev.currentTarget.closest('tr'));
  let v = input.value.trim();
  if (v === '') {
    const rs = curVS() && curVS().real_servers[j];
    v = (prompt(`New weight for ${rs ? rs.addr : 'the real server'}:`, input.placeholder) || '').trim();
    if (v === '') return;
  }
  if (!/^\d+$/.test(v)) return err(`Weight "${v}": type a whole number ≥ 0.`);
  const persist = $('#rs-persist').checked;
  const done = await rsRuntime(j, () => Object.assign({weight: +v}, persist ? {persist: true} : {}),
    `Weight ${v}${persist ? ' (also written to the file)' : ' (runtime)'} set for`);
  if (done) input.value = '';
}
function rsDrain(j) {
  const vs = curVS(), rs = vs.real_servers[j];
  const m = rsLive(rs, vsLive(vs), vs);
  const drained = m.length && m.every(x => x.rs.weight === 0 && x.rs.config_weight > 0);
  return rsRuntime(j, x => ({weight: drained ? (x.rs.config_weight || rs.weight || 1) : 0}), drained ? 'Undrained' : 'Drained (weight 0)');
}
function rsToggle(j) {
  const vs = curVS(), rs = vs.real_servers[j];
  const m = rsLive(rs, vsLive(vs), vs);
  const enable = m.length > 0 && m.every(x => !x.rs.enabled);
  return rsRuntime(j, () => ({enabled: enable}), enable ? 'Enabled' : 'Disabled');
}

async function openRS(j) {
  const f = $('#rs-form'), was = f.hidden;
  f.hidden = true;
  let base, obj;
  try {
    const id = j < 0 ? null : identRS(curVS().real_servers[j]);
    base = await vsBase();
    if (j < 0) {
      const first = (base.obj.real_servers || [])[0];
      obj = {addr: '', weight: 1};
      if (first && first.checks) obj.checks = structuredClone(first.checks);
      $('#rs-form-hint').textContent = first && first.checks ? 'the checks of the first real server are copied' : '';
    } else {
      obj = structuredClone(rsOf(base.obj, j, id));
      $('#rs-form-hint').textContent = '';
    }
  } catch (e) { f.hidden = was; return fail(e); }
  f._ctx = {base, j, ident: j < 0 ? null : identRS(obj), tpl: obj};
  fill(f, RS_FIELDS, obj);
  $('#rs-form-title').textContent = j < 0 ? 'New real server' : `Real server ${obj.name ? obj.name + ' ' : ''}${obj.addr}`;
  f.hidden = false;
  f.scrollIntoView({block: 'nearest'});
  field(f, j < 0 ? 'addr' : 'weight').focus();
}

async function saveRS(ev) {
  ev.preventDefault();
  const f = $('#rs-form'), ctx = f._ctx;
  if (!ctx || !S.vs) return;
  let obj;
  try {
    const orig = ctx.j < 0 ? ctx.tpl : rsOf(ctx.base.obj, ctx.j, ctx.ident);
    obj = collect(f, RS_FIELDS, structuredClone(orig));
    if (!obj.addr) throw new Error('address: required');
    // tunnel options belong to TUN alone (an inherited method: the
    // virtual server's)
    if (obj.lvs_method !== 'TUN') delete obj.tunnel;
  } catch (e) { return err(e.message); }
  const vi = S.vs.index;
  const req = ctx.j < 0 ? {op: 'add', kind: 'real_server', vs: vi, object: obj}
    : {op: 'set', kind: 'real_server', vs: vi, index: ctx.j, object: obj};
  const r = await saveEdit(req, ctx.base, `real server ${obj.addr}`);
  if (r) { f.hidden = true; afterVSChildSave(); }
}

// After a real server or check was saved: re-read the config and rebase
// the virtual server form (its identity did not change).
// (saveEdit rebased the VS form; refill it unless the user typed in it).
function afterVSChildSave() {
  if (!curVS()) { closeVS(); return; }
  if (!$('#vs-form')._dirty) fillVS();
}

async function deleteRS(j) {
  const vs = curVS(), rs = vs.real_servers[j];
  if (!confirm(`Delete real server ${rsAddrText(vs, rs)} from ${vsLabel(vs)}?`)) return;
  const vi = S.vs.index, vsId = identVS(vs), rsId = identRS(rs);
  const r = await deleteObj({kind: 'real_server', vs: vi, index: j},
    cfg => rsOf(pickVS(vi, vsId)(cfg), j, rsId), `real server ${rsAddrText(vs, rs)}`);
  if (r) { $('#rs-form').hidden = true; $('#check-form').hidden = true; afterVSChildSave(); }
}

// ---------------------------------------------------------------- CHECKS

const CHECK_KINDS = ['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'SMTP_CHECK', 'DNS_CHECK', 'UDP_CHECK', 'PING_CHECK'];
const HTTP = ['HTTP_GET', 'SSL_GET'];
// the keys only some kinds have, dropped when the kind changes
const KIND_KEYS = {
  TCP_CHECK: ['send', 'expect', 'use_regex'],
  HTTP_GET: ['urls', 'virtualhost', 'http_protocol', 'enable_sni', 'sni_name', 'tls_verify'],
  SSL_GET: ['urls', 'virtualhost', 'http_protocol', 'enable_sni', 'sni_name', 'tls_verify'],
  MISC_CHECK: ['misc_path', 'misc_timeout', 'misc_dynamic', 'user'],
  SMTP_CHECK: ['helo_name'],
  DNS_CHECK: ['type', 'name'],
  UDP_CHECK: ['payload', 'require_reply', 'has_require_reply', 'min_reply_length', 'max_reply_length'],
  FILE_CHECK: ['track_file', 'weight', 'reverse', 'dynamic'],
  BFD_CHECK: ['bfd_name'],
  PING_CHECK: [],
};
const codeText = codes => (codes || []).map(c => {
  const f = c.From !== undefined ? c.From : c.from, t = c.To !== undefined ? c.To : c.to;
  return f === t ? String(f) : `${f}-${t}`;
}).join(',');
function parseCodes(s, sp) {
  return s.split(/[\s,]+/).filter(Boolean).map(p => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(p);
    if (!m) throw new Error(`${sp.label}: "${p}" is not a status code or range`);
    return {From: +m[1], To: m[2] ? +m[2] : +m[1]};
  });
}
const firstURL = c => (c.urls && c.urls[0]) || null;

const CHECK_FIELDS = [
  {name: 'kind', label: 'kind', type: 'select', options: CHECK_KINDS, get: c => c.kind || 'TCP_CHECK', set: (c, v) => { c.kind = v; }},
  {name: 'connect_ip', label: 'connect_ip', type: 'text', mono: true, placeholder: 'the real server'},
  {name: 'connect_port', label: 'connect_port', type: 'int0', placeholder: 'the real port'},
  {name: 'connect_timeout', label: 'connect_timeout (s)', type: 'dur', placeholder: 'inherited'},
  {name: 'retry', label: 'retry', type: 'optint', placeholder: 'inherited'},
  {name: 'delay_before_retry', label: 'delay_before_retry (s)', type: 'dur', placeholder: 'inherited'},
  {name: 'delay_loop', label: 'delay_loop (s)', type: 'dur', placeholder: 'inherited'},
  {name: 'send', label: 'send', type: 'opttext', mono: true, kinds: ['TCP_CHECK'], wide: true},
  {name: 'expect', label: 'expect', type: 'opttext', mono: true, kinds: ['TCP_CHECK'], wide: true},
  {name: 'use_regex', label: 'use_regex (expect is a regex)', type: 'bool', kinds: ['TCP_CHECK']},
  {name: 'url_path', label: 'url path', type: 'text', mono: true, kinds: HTTP, placeholder: '/',
    get: c => (firstURL(c) || {}).path || '',
    set: (c, s) => {
      const p = s.trim();
      if (!p) { if (c.urls) c.urls.shift(); if (c.urls && !c.urls.length) delete c.urls; return; }
      if (!c.urls || !c.urls.length) c.urls = [{path: p}]; else c.urls[0].path = p;
    }},
  {name: 'status_code', label: 'status_code (e.g. 200 or 200-299,301)', type: 'text', mono: true, kinds: HTTP, placeholder: '200-299',
    get: c => codeText((firstURL(c) || {}).status_code),
    set: (c, s, sp) => {
      const codes = parseCodes(s, sp);
      if (!c.urls || !c.urls.length) c.urls = [{path: '/'}];
      if (codes.length) c.urls[0].status_code = codes; else delete c.urls[0].status_code;
    }},
  {name: 'virtualhost', label: 'virtualhost', type: 'opttext', kinds: HTTP},
  {name: 'misc_path', label: 'misc_path (script; %h %p)', type: 'opttext', mono: true, kinds: ['MISC_CHECK'], wide: true},
  {name: 'misc_timeout', label: 'misc_timeout (s)', type: 'dur', kinds: ['MISC_CHECK']},
  {name: 'user', label: 'user', type: 'opttext', kinds: ['MISC_CHECK']},
  {name: 'misc_dynamic', label: 'misc_dynamic', type: 'bool', kinds: ['MISC_CHECK']},
  {name: 'helo_name', label: 'helo_name', type: 'opttext', kinds: ['SMTP_CHECK']},
  {name: 'type', label: 'DNS type', type: 'opttext', kinds: ['DNS_CHECK'], placeholder: 'SOA'},
  {name: 'name', label: 'DNS name', type: 'opttext', kinds: ['DNS_CHECK'], placeholder: '.'},
  {name: 'payload', label: 'payload (hex)', type: 'opttext', mono: true, kinds: ['UDP_CHECK']},
  {name: 'require_reply', label: 'require_reply (hex, X wildcards)', type: 'opttext', mono: true, kinds: ['UDP_CHECK'],
    set: (c, s) => {
      const v = s.trim();
      if (v) { c.require_reply = v; c.has_require_reply = true; } else { delete c.require_reply; delete c.has_require_reply; }
    }},
];

function checkDetails(c) {
  const q = s => JSON.stringify(s);
  switch (c.kind) {
    case 'TCP_CHECK':
      return [c.send ? 'send ' + q(c.send) : '', c.expect ? `expect ${q(c.expect)}${c.use_regex ? ' (regex)' : ''}` : ''].filter(Boolean).join(', ');
    case 'HTTP_GET': case 'SSL_GET':
      return (c.urls || []).map(u => `${u.path} → ${codeText(u.status_code) || '2xx'}${u.digest ? ' digest' : ''}${u.regex ? ' regex ' + q(u.regex) : ''}`)
        .join('; ') + (c.virtualhost ? ` (Host ${c.virtualhost})` : '');
    case 'MISC_CHECK': return (c.misc_path || '') + (c.misc_timeout ? ` (timeout ${durText(c.misc_timeout)})` : '') + (c.user ? ` as ${c.user}` : '');
    case 'SMTP_CHECK': return c.helo_name ? 'helo ' + c.helo_name : '';
    case 'DNS_CHECK': return `${c.type || 'SOA'} ${c.name || '.'}`;
    case 'UDP_CHECK': return [c.payload ? 'payload ' + c.payload : '', c.has_require_reply ? 'require ' + (c.require_reply || '') : ''].filter(Boolean).join(', ');
    case 'FILE_CHECK': return c.track_file || '';
    case 'BFD_CHECK': return c.bfd_name ? 'bfd_instance ' + c.bfd_name : '';
    default: return '';
  }
}

// inherited shows a checker timing and where it comes from.
function inherited(c, rs, vs, key) {
  if (c[key] !== undefined && c[key] !== null) return key === 'retry' ? String(c[key]) : durText(c[key]);
  const v = rs[key] !== undefined && rs[key] !== null ? rs[key] : vs[key];
  if (v === undefined || v === null) return h('span', {class: 'hint'}, 'default');
  return h('span', {class: 'hint', title: 'inherited'}, key === 'retry' ? String(v) : durText(v));
}

function renderChecks() {
  const t = $('#check-table'), vs = curVS();
  t.replaceChildren(thead(['Real server', '#', 'Kind', 'Connect to', 'Timeout', 'Retry', 'Delay before retry', 'Delay loop',
    'Details (send/expect, URL, script)', '']));
  const tb = h('tbody');
  const list = (vs && vs.real_servers) || [];
  list.forEach((rs, j) => {
    const checks = rs.checks || [];
    const add = btn('ADD CHECK', 'check-add', () => openCheck(j, -1));
    if (!checks.length) {
      tb.append(h('tr', {'data-check-rs': j},
        h('td', {class: 'mono'}, rsAddrText(vs, rs)),
        h('td', {colSpan: 8, class: 'hint'}, 'no health check: always up'),
        h('td', {class: 'actions'}, add)));
    }
    checks.forEach((c, k) => tb.append(h('tr', {'data-check-rs': j, 'data-check-index': k},
      h('td', {class: 'mono'}, k === 0 ? rsAddrText(vs, rs) : ''),
      h('td', null, String(k + 1)),
      h('td', null, c.kind),
      h('td', {class: 'mono'}, hostport(c.connect_ip || rs.addr, c.connect_port || rs.port ||
        (vs.ports && vs.ports[0] ? vs.ports[0].from : 0))),
      h('td', null, inherited(c, rs, vs, 'connect_timeout')),
      h('td', null, inherited(c, rs, vs, 'retry')),
      h('td', null, inherited(c, rs, vs, 'delay_before_retry')),
      h('td', null, inherited(c, rs, vs, 'delay_loop')),
      h('td', {class: 'mono wrap'}, checkDetails(c)),
      h('td', {class: 'actions'},
        btn('EDIT', 'check-edit', () => openCheck(j, k)),
        btn('DELETE', 'check-delete danger', () => deleteCheck(j, k)),
        k === checks.length - 1 ? add : null))));
  });
  if (!list.length) tb.append(emptyRow(10, 'No real server.'));
  t.append(tb);
}

function checkKindMode() {
  const f = $('#check-form'), kind = field(f, 'kind').value;
  for (const sp of CHECK_FIELDS) {
    if (!sp.kinds) continue;
    const el = field(f, sp.name), on = sp.kinds.includes(kind);
    el.disabled = !on;
    el.closest('.fld').hidden = !on;
  }
}

async function openCheck(j, k) {
  const f = $('#check-form'), was = f.hidden;
  f.hidden = true;
  let base, rs;
  try {
    const id = identRS(curVS().real_servers[j]);
    base = await vsBase();
    rs = rsOf(base.obj, j, id);
  } catch (e) { f.hidden = was; return fail(e); }
  const c = k < 0 ? {kind: 'TCP_CHECK'} : structuredClone((rs.checks || [])[k]);
  if (!c) return err('This check is gone from the file.');
  f._ctx = {base, j, k, ident: identRS(rs), orig: c};
  fill(f, CHECK_FIELDS, c);
  checkKindMode();
  $('#check-apply-all').checked = false;
  const more = c.urls && c.urls.length > 1 ? ` (${c.urls.length - 1} more URL(s) kept as they are)` : '';
  $('#check-form-hint').textContent = more;
  $('#check-form-title').textContent = (k < 0 ? 'New check' : `Check ${k + 1}`) + ` of real server ${rsAddrText(base.obj, rs)}`;
  f.hidden = false;
  f.scrollIntoView({block: 'nearest'});
}

async function saveCheck(ev) {
  ev.preventDefault();
  const f = $('#check-form'), ctx = f._ctx;
  if (!ctx || !S.vs) return;
  const all = $('#check-apply-all').checked, vi = S.vs.index;
  let req, rs;
  try {
    rs = structuredClone(rsOf(ctx.base.obj, ctx.j, ctx.ident));
    const checks = rs.checks || [];
    let c = ctx.k < 0 ? structuredClone(ctx.orig) : structuredClone(checks[ctx.k]);
    if (!c) throw new Error('This check is gone from the file: open it again.');
    const oldKind = f._init.kind, newKind = field(f, 'kind').value;
    if (oldKind !== newKind) {
      const keep = KIND_KEYS[newKind] || [];
      for (const key of KIND_KEYS[oldKind] || []) if (!keep.includes(key)) delete c[key];
    }
    c = collect(f, CHECK_FIELDS, c);
    if ((c.kind === 'HTTP_GET' || c.kind === 'SSL_GET') && !(c.urls && c.urls.length)) c.urls = [{path: '/'}];
    if (ctx.k < 0) checks.push(c); else checks[ctx.k] = c;
    rs.checks = checks;
    if (all) {
      const vs = structuredClone(ctx.base.obj);
      vs.real_servers = (vs.real_servers || []).map((r, j) => {
        if (j === ctx.j) return rs;
        r.checks = structuredClone(checks);
        return r;
      });
      req = {op: 'set', kind: 'virtual_server', index: vi, object: vs};
    } else {
      req = {op: 'set', kind: 'real_server', vs: vi, index: ctx.j, object: rs};
    }
  } catch (e) { return err(e.message); }
  const r = await saveEdit(req, ctx.base, all ? `the checks of every real server of ${vsLabel(ctx.base.obj)}` : `the checks of ${rs.addr}`);
  if (r) { f.hidden = true; afterVSChildSave(); }
}

async function deleteCheck(j, k) {
  const vs = curVS(), rs = vs.real_servers[j];
  if (!confirm(`Delete check ${k + 1} (${rs.checks[k].kind}) of ${rsAddrText(vs, rs)}?`)) return;
  let base, obj;
  try {
    base = await vsBase();
    obj = structuredClone(rsOf(base.obj, j, identRS(rs)));
    if (!obj.checks || !obj.checks[k]) throw new Error('This check is gone from the file.');
    obj.checks.splice(k, 1);
    if (!obj.checks.length) delete obj.checks;
  } catch (e) { return fail(e); }
  const r = await saveEdit({op: 'set', kind: 'real_server', vs: S.vs.index, index: j, object: obj}, base, `the checks of ${rs.addr}`);
  if (r) { $('#check-form').hidden = true; afterVSChildSave(); }
}

// ---------------------------------------------------------------- CONNECTIONS

async function loadConns() {
  const b = $('#conns-refresh');
  b.disabled = true;
  try {
    S.conns = (await api('GET', '/api/v1/conns')) || [];
    if (!Array.isArray(S.conns)) S.conns = [];
    renderConns();
  } catch (e) { fail(e); } finally { b.disabled = false; }
}

function renderConns() {
  const MAX = 2000;
  const q = $('#conns-filter').value.trim().toLowerCase();
  const rows = q ? S.conns.filter(c => [c.proto, c.client, c.virtual, c.real, c.local, c.state].join(' ').toLowerCase().includes(q)) : S.conns;
  const t = $('#conns-table');
  t.replaceChildren(thead(['Pro', 'Client (FromIP:port)', 'Virtual', 'Destination (real)', 'Local', 'State', ['Expires', 'num'], 'Flags']));
  const tb = h('tbody');
  for (const c of rows.slice(0, MAX)) {
    tb.append(h('tr', null,
      h('td', null, c.proto),
      h('td', {class: 'mono'}, c.client),
      h('td', {class: 'mono'}, c.fwmark ? `FWM ${c.fwmark} ${c.virtual || ''}` : c.virtual),
      h('td', {class: 'mono'}, c.real),
      h('td', {class: 'mono'}, c.local || ''),
      h('td', null, c.state),
      h('td', {class: 'num mono'}, fmtExpire(c.expires)),
      h('td', null, c.template ? 'template' : '')));
  }
  if (!rows.length) tb.append(emptyRow(8, S.conns.length ? 'No connection matches.' : 'No connection.'));
  t.append(tb);
  $('#conns-count').textContent = `${rows.length} connection(s)` + (rows.length > MAX ? `, first ${MAX} shown` : '') +
    (q ? ` of ${S.conns.length}` : '');
}

// ---------------------------------------------------------------- tabs & wiring

const TABS = ['control', 'global', 'redundancy', 'virtual', 'conns'];

function showTab(name) {
  if (!TABS.includes(name)) name = 'control';
  S.tab = name;
  for (const b of $$('#tabs [data-tab]')) b.classList.toggle('active', b.dataset.tab === name);
  for (const p of $$('main [data-panel]')) p.hidden = p.dataset.panel !== name;
  if (location.hash !== '#' + name) history.replaceState(null, '', '#' + name);
  if (name === 'control' && (S.auto || !$('#lvs-table').firstChild)) renderControl();
  if (name === 'conns') loadConns();
  if (name === 'global' && S.config && !$('#global-form')._dirty) fillGlobal();
}

function wire() {
  $('#login-form').addEventListener('submit', doLogin);
  $('#logout').addEventListener('click', doLogout);
  for (const b of $$('#tabs [data-tab]')) b.addEventListener('click', () => showTab(b.dataset.tab));
  window.addEventListener('hashchange', () => { const t = location.hash.slice(1); if (t !== S.tab && TABS.includes(t)) showTab(t); });

  // control
  const reload = $('#reload-button');
  reload.addEventListener('click', async () => { reload.disabled = true; try { await doReload(); } finally { reload.disabled = false; } });
  $('#auto-update').addEventListener('change', ev => { S.auto = ev.target.checked; if (S.auto) renderControl(); });
  const tg = $('#bgp-toggle');
  tg.addEventListener('click', async () => {
    const announce = tg.dataset.announce === 'true';
    if (!announce && !confirm('Withdraw every BGP route of this director until you announce them again (or govs restarts)? The routers will send its traffic to the other directors; an address no other director announces becomes unreachable.')) return;
    tg.disabled = true;
    try { await toggleBGP(announce); } finally { tg.disabled = false; }
  });
  const upd = $('#update-now');
  upd.addEventListener('click', async () => { upd.disabled = true; try { await refreshState(true); } finally { upd.disabled = false; } });

  // global
  buildFields($('#global-fields'), GLOBAL_FIELDS);
  const gf = $('#global-form');
  markDirty(gf);
  gf.addEventListener('submit', saveGlobal);
  $('#global-revert').addEventListener('click', async () => { try { await loadConfig(); gf._dirty = false; fillGlobal(); } catch (e) { fail(e); } });
  const tf = $('#timeouts-form');
  markDirty(tf);
  tf.addEventListener('submit', setTimeouts);

  // redundancy
  EDITORS.vrrp = listEditor({id: 'vrrp-instances', kind: 'vrrp_instance', key: 'vrrp_instances', heading: 'VRRP instances',
    fields: VRRP_FIELDS, after: updateVRRPLive,
    template: () => ({name: '', state: 'BACKUP', interface: '', virtual_router_id: 51, priority: 100, advert_int: '1s', notify: {}}),
    columns: [['Name', v => v.name], ['Live state', () => '', 'live-state'], ['Initial state', v => v.state || ''],
      ['Priority / effective', v => String(v.priority), 'live-prio'], ['Interface', v => v.interface, 'mono'],
      ['VRID', v => String(v.virtual_router_id)], ['Advert', v => durText(v.advert_int)], ['Master', () => '', 'mono live-master'],
      ['Virtual addresses', v => (v.virtual_ipaddress || []).map(x => x.prefix).join(', '), 'mono wrap'],
      ['Unicast peers', v => [v.unicast_src_ip ? v.unicast_src_ip + ' →' : '', ...(v.unicast_peer || []).map(p => p.addr)].filter(Boolean).join(' '), 'mono wrap'],
      ['Tracks', v => tracksText(v), 'wrap']]});

  EDITORS.scripts = listEditor({id: 'vrrp-scripts', kind: 'vrrp_script', key: 'vrrp_scripts', heading: 'VRRP scripts (vrrp_script)',
    fields: SCRIPT_FIELDS, template: () => ({name: '', script: '', interval: '1s'}),
    columns: [['Name', o => o.name], ['Script', o => o.script, 'mono wrap'], ['Interval', o => durText(o.interval)],
      ['Weight', o => String(o.weight || 0) + (o.reverse ? ' reverse' : '')], ['Rise / fall', o => `${o.rise || 1} / ${o.fall || 1}`],
      ['Tracked by', o => trackedBy(o.name, 'track_script')]]});
  EDITORS.files = listEditor({id: 'vrrp-track-files', kind: 'vrrp_track_file', key: 'vrrp_track_files',
    heading: 'Track files (vrrp_track_file)', fields: TRACK_FILE_FIELDS, template: () => ({name: '', file: '', weight: 1}),
    columns: [['Name', o => o.name], ['File', o => o.file, 'mono wrap'], ['Weight', o => String(o.weight) + (o.reverse ? ' reverse' : '')],
      ['init_file', o => o.init_file ? String(o.init_file.value) + (o.init_file.overwrite ? ' overwrite' : '') : ''],
      ['Tracked by', o => trackedBy(o.name, 'track_file')]]});
  EDITORS.procs = listEditor({id: 'vrrp-track-processes', kind: 'vrrp_track_process', key: 'vrrp_track_processes',
    heading: 'Tracked processes (vrrp_track_process)', fields: TRACK_PROCESS_FIELDS, template: () => ({name: '', process: ''}),
    columns: [['Name', o => o.name], ['Process', o => [o.process, ...(o.params || [])].join(' '), 'mono wrap'],
      ['Weight', o => String(o.weight || 0) + (o.reverse ? ' reverse' : '')],
      ['Quorum', o => String(o.quorum || 1) + (o.has_quorum_max || o.quorum_max ? `..${o.quorum_max || 0}` : '')],
      ['Tracked by', o => trackedBy(o.name, 'track_process')]]});
  EDITORS.bfd = listEditor({id: 'bfd-instances', kind: 'bfd_instance', key: 'bfd_instances',
    heading: 'BFD sessions (bfd_instance)', fields: BFD_FIELDS, template: () => ({name: '', neighbor_ip: ''}),
    columns: [['Name', o => o.name], ['Neighbor', o => o.neighbor_ip + (o.source_ip ? ` from ${o.source_ip}` : ''), 'mono'],
      ['Intervals (ms)', o => ['min_rx', 'min_tx'].map(k => o[k] ? Math.round(parseDur(o[k]) * 1e3) : 10).join(' / ') + ` × ${o.multiplier || 5}`],
      ['Tracked by', o => trackedBy(o.name, 'track_bfd')]]});
  EDITORS.sync = listEditor({id: 'sync-groups', kind: 'vrrp_sync_group', key: 'vrrp_sync_groups', heading: 'Sync groups (vrrp_sync_group)',
    fields: SYNC_FIELDS, template: () => ({name: '', group: [], notify: {}}),
    columns: [['Name', o => o.name], ['Instances', o => (o.group || []).join(', '), 'mono'],
      ['Tracks', o => tracksText(o), 'wrap'],
      ['Notify', o => notifyText(o.notify)]]});
  EDITORS.snat = listEditor({id: 'snat-pools', kind: 'govs_snat_pool', key: 'snat_pools',
    heading: 'Source NAT pools (govs_snat_pool)', fields: SNAT_FIELDS, template: () => ({name: '', addresses: [], port_min: 1024, port_max: 65535}),
    columns: [['Name', o => o.name], ['Addresses', o => (o.addresses || []).join(', '), 'mono wrap'], ['Ports', o => `${o.port_min}-${o.port_max}`],
      ['Used by', o => ((S.config && S.config.virtual_servers) || []).filter(v => v.snat_pool === o.name).length + ' virtual server(s)']]});
  EDITORS.vsg = listEditor({id: 'vs-groups', kind: 'virtual_server_group', key: 'virtual_server_groups',
    heading: 'Virtual server groups (virtual_server_group)', fields: VSG_FIELDS, template: () => ({name: '', entries: []}),
    renamed: followGroupRename,
    columns: [['Name', o => o.name], ['Entries', o => (o.entries || []).map(renderVSGEntry).join(', '), 'mono wrap'],
      ['Used by', o => ((S.config && S.config.virtual_servers) || []).filter(v => v.group === o.name).length + ' virtual server(s)']]});

  // virtual servers
  buildFields($('#vs-fields'), VS_FIELDS);
  const vf = $('#vs-form');
  markDirty(vf);
  vf.addEventListener('submit', saveVS);
  field(vf, 'fwmark').addEventListener('input', vsFormMode);
  field(vf, 'group').addEventListener('input', vsFormMode);
  $('#vs-add').addEventListener('click', () => openVS(-1));
  $('#vs-close').addEventListener('click', closeVS);
  $('#vs-revert').addEventListener('click', () => { if (S.vs && S.vs.index >= 0) openVS(S.vs.index); else if (S.vs) fillVS(); });
  for (const b of $$('#vs-subtabs .subtab')) b.addEventListener('click', () => showSub(b.dataset.subtab));
  buildFields($('#rs-fields'), RS_FIELDS);
  $('#rs-form').addEventListener('submit', saveRS);
  $('#rs-add').addEventListener('click', () => openRS(-1));
  $('#rs-cancel').addEventListener('click', () => { $('#rs-form').hidden = true; });
  buildFields($('#check-fields'), CHECK_FIELDS);
  $('#check-form').addEventListener('submit', saveCheck);
  field($('#check-form'), 'kind').addEventListener('change', checkKindMode);
  $('#check-cancel').addEventListener('click', () => { $('#check-form').hidden = true; });

  // connections
  $('#conns-refresh').addEventListener('click', loadConns);
  $('#conns-filter').addEventListener('input', renderConns);

  // the live indicator goes off when the stream stalls
  setInterval(() => { if (S.lastEvent && Date.now() - S.lastEvent > 5000) setLive(false); }, 1000);
}

async function boot() {
  wire();
  const t = location.hash.slice(1);
  if (TABS.includes(t)) S.tab = t;
  try {
    const s = await api('GET', '/session');
    S.csrf = s.csrf || '';
    if (s.version) $('#version').textContent = 'version ' + s.version;
    start();
  } catch (e) {
    if (e.status !== 401) showLogin(e.message);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', boot); else boot();
})();
