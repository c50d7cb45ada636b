// The supervisor dashboard: state loaded from REST, then kept live from `/ws` events.

import {
  session, clearSession, api, bindLogin, Live, el, fmtDuration, fmtTime, num, quality, mosClass,
  showConnection,
} from './common.js';
import { Chart } from './charts.js';

const $ = (sel) => document.querySelector(sel);
const MINUTE = 60000;
const HOUR = 60 * MINUTE;
const CHANNELS = ['calls', 'agents', 'sip', 'metrics', 'recordings', 'performance'];
const RINGING = new Set(['queued', 'initiated', 'ringing', 'connecting', 'dialing', 'early-media']);
const FINAL = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled', 'cancelled', 'ended', 'abandoned']);
const RANK = { viewer: 0, agent: 1, supervisor: 2, admin: 3, owner: 4 };
const DEFAULT_CAP = 0.03;
// What a call event says about the call's status when its data carries none.
const STATUS_OF = {
  callInitiated: 'initiated', callRinging: 'ringing', callConnected: 'connected',
  agentConnected: 'connected', callEnded: 'completed',
};

const st = {
  user: {},
  calls: new Map(), // id → {id, phone, status, start, agentId, campaignId, q, source, touched}
  agents: new Map(), // id → {id, name, status, since, calls}
  campaigns: new Map(), // id → campaign as the API returns it
  trunks: new Map(), // trunk id (else name) → {id, name, status, detail, since}
  started: new Map(), // call id → ms it started (calls per minute), last hour only
  outcomes: new Map(), // call id → {t, answered, abandoned}, last hour only
  mos: [], // [{t, v}] quality samples, last hour only
  gone: new Map(), // call id → when (local ms) its end was seen, for a minute
  server: { abandon: null, cpm: null, mos: null },
  loaded: false,
};
let live = null;
let timers = [];
let charts = null;
let rendering = false;

function boot() {
  $('#logout').addEventListener('click', () => logout());
  window.addEventListener('sb:unauthorized', () => logout('Your session has ended: sign in again.'));
  bindLogin($('[data-testid="login-form"]'), start);
  const s = session();
  if (s) start(s);
  else showLogin();
}

function showLogin(message) {
  $('#app').hidden = true;
  $('#logout').hidden = true;
  $('[data-testid="whoami"]').textContent = '';
  $('#login').hidden = false;
  $('[data-testid="login-error"]').textContent = message || '';
  $('#email').focus();
}

function logout(message) {
  if (live) live.stop();
  live = null;
  timers.forEach(clearInterval);
  timers = [];
  clearSession();
  for (const m of [st.calls, st.agents, st.campaigns, st.trunks, st.started, st.outcomes, st.gone]) m.clear();
  st.mos = [];
  st.loaded = false;
  $('#app').dataset.loaded = 'false';
  $('#event-log').replaceChildren();
  showLogin(message);
}

function start(s) {
  st.user = s.user || {};
  $('#login').hidden = true;
  $('#app').hidden = false;
  $('#logout').hidden = false;
  $('[data-testid="whoami"]').textContent = [st.user.email, st.user.role].filter(Boolean).join(' · ');
  if (!charts) {
    charts = {
      cpm: new Chart($('#chart-cpm'), { kind: 'bars', color: '#1d5fd1' }),
      mos: new Chart($('#chart-mos'), {
        kind: 'line', min: 1, max: 5, color: '#17804a', format: (v) => v.toFixed(1),
        guides: [{ value: 4, color: '#17804a' }, { value: 3.6, color: '#a86a00' }],
      }),
    };
  }
  live = new Live({
    channels: CHANNELS,
    onMessage,
    onState: (state) => showConnection($('[data-testid="ws-status"]'), state),
    onResync: resync,
  });
  live.start();
  loadHistory();
  timers.push(setInterval(tick, 1000));
  timers.push(setInterval(drawCharts, 10000));
  // Only the engine's start and completion of a campaign are events: refresh the list now
  // and then for the rest.
  timers.push(setInterval(() => loadCampaigns().catch(() => {}), 30000));
  schedule();
}

// ---- loading from REST ----------------------------------------------------------------

let resyncing = null;
async function resync() {
  if (resyncing) return resyncing;
  resyncing = Promise.allSettled([loadRealtime(), loadAgents(), loadCampaigns(), loadTrunks()])
    .then(() => {
      st.loaded = true;
      $('#app').dataset.loaded = 'true';
      schedule();
    })
    .finally(() => {
      resyncing = null;
    });
  return resyncing;
}

async function loadRealtime() {
  const asked = Date.now();
  const r = await api('GET', '/api/calls/metrics/realtime');
  const fresh = new Map();
  for (const c of r.activeCalls || []) {
    if (st.gone.has(c.id)) continue; // ended while we asked
    const prev = st.calls.get(c.id);
    fresh.set(c.id, {
      ...(prev || {}),
      id: c.id,
      phone: c.phoneNumber || (prev && prev.phone) || '',
      status: c.status,
      start: Number.isFinite(c.duration) ? asked - c.duration * 1000 : (prev && prev.start) || asked,
      agentId: c.agentId || null,
      campaignId: c.campaignId || null,
      q: quality(c.quality),
      source: prev ? prev.source : 'rest',
      touched: prev ? prev.touched : 0,
    });
  }
  // Keep what the socket told us after we asked: the answer may predate it.
  for (const [id, c] of st.calls) {
    if (!fresh.has(id) && c.touched > asked) fresh.set(id, c);
  }
  st.calls = fresh;
  const mos = r.performance && num(r.performance, 'averageMos');
  st.server.mos = mos && mos > 0 ? mos : null;
  schedule();
}

async function loadAgents() {
  const r = await api('GET', '/api/agents');
  const fresh = new Map();
  for (const a of r.data || r.agents || []) {
    const prev = st.agents.get(a.id);
    const since = prev && prev.status === a.status ? prev.since : Date.parse(a.last_active_at || a.updated_at) || Date.now();
    fresh.set(a.id, { id: a.id, name: a.name, status: a.status, since, calls: a.total_calls_handled ?? 0 });
  }
  st.agents = fresh;
  schedule();
}

async function loadCampaigns() {
  const r = await api('GET', '/api/campaigns?limit=100');
  st.campaigns = new Map((r.data || r.campaigns || []).map((c) => [c.id, c]));
  schedule();
}

/** Trunk registrations: `/api/sip/status`, else `/api/health/sip`; neither → a note. */
async function loadTrunks() {
  let body = null;
  let why = '';
  for (const path of ['/api/sip/status', '/api/health/sip']) {
    try {
      body = await api('GET', path);
      break;
    } catch (e) {
      why = e.status ? `HTTP ${e.status}` : e.message;
      if (e.status === 401 || e.status === 403) break;
    }
  }
  const note = $('[data-testid="trunks-note"]');
  if (!body) {
    note.textContent = `trunk status unavailable (${why}); showing SIP events only`;
    return;
  }
  note.textContent = '';
  const seen = new Set();
  for (const t of trunkList(body)) {
    seen.add(putTrunk(t, trunkStatus(t), Date.parse(t.since || t.updatedAt || t.updated_at) || Date.now()));
  }
  for (const id of [...st.trunks.keys()]) if (!seen.has(id)) st.trunks.delete(id);
  schedule();
}

/** A trunk from `/api/sip/status` or a `sip*` event: keyed by its id, shown by its name. */
function putTrunk(t, status, since) {
  const id = String(t.trunkId ?? t.trunk_id ?? t.id ?? t.name ?? t.trunk ?? t.server ?? 'trunk');
  const prev = st.trunks.get(id);
  const failed = /fail|error/.test(status);
  const where = [t.server ?? t.registrar, t.transport].filter(Boolean).join(' · ');
  const expires = t.expires ? `expires ${t.expires} s` : '';
  st.trunks.set(id, {
    id,
    name: String(t.name ?? t.trunk ?? (prev && prev.name) ?? id),
    status,
    detail: String((failed && (t.lastError ?? t.reason ?? t.error)) || [where, expires].filter(Boolean).join(', ') || ''),
    since: prev && prev.status === status ? prev.since : since,
  });
  return id;
}

function trunkList(body) {
  const d = body && body.data !== undefined ? body.data : body;
  for (const v of [d, d && d.trunks, d && d.registrations, body && body.trunks]) {
    if (Array.isArray(v)) return v;
  }
  if (d && typeof d === 'object' && ('registered' in d || 'status' in d)) return [{ name: d.name || d.server || 'default', ...d }];
  return [];
}

function trunkStatus(t) {
  const s = t.status ?? t.state ?? t.registration;
  if (typeof s === 'string' && s) return s.toLowerCase();
  if (t.registered === true) return 'registered';
  if (t.registered === false) return 'unregistered';
  return 'unknown';
}

/** Calls of the last hour, for the charts and the abandon estimate (at most 500). */
async function loadHistory() {
  const since = new Date(Date.now() - HOUR).toISOString();
  for (let page = 1; page <= 5; page++) {
    let r;
    try {
      r = await api('GET', `/api/calls?start_date=${encodeURIComponent(since)}&limit=100&page=${page}&sort_by=started_at&sort_order=desc`);
    } catch {
      return;
    }
    const calls = (r.data && r.data.calls) || r.calls || [];
    for (const c of calls) {
      const t = Date.parse(c.started_at || c.start_time || c.created_at);
      if (Number.isFinite(t) && !st.started.has(c.id)) st.started.set(c.id, t);
      const end = Date.parse(c.ended_at || c.end_time);
      const m = quality(c.quality).mos;
      if (m !== null && Number.isFinite(end)) st.mos.push({ t: end, v: m });
      if (FINAL.has(c.status)) {
        const abandoned = isAbandon(c);
        if (abandoned || c.answer_time) st.outcomes.set(c.id, { t: Number.isFinite(end) ? end : t, answered: true, abandoned });
      }
    }
    const p = r.data && r.data.pagination;
    if (!p || !p.has_next) break;
  }
  drawCharts();
  schedule();
}

function isAbandon(d) {
  return [d.disposition, d.outcome, d.status, d.reason].some((v) => typeof v === 'string' && /abandon/i.test(v));
}

// ---- live events ----------------------------------------------------------------------

function onMessage(msg) {
  const d = msg.data || {};
  const at = Date.parse(msg.timestamp) || Date.now();
  switch (msg.type) {
    case 'connected':
    case 'subscribed':
    case 'unsubscribed':
    case 'pong':
      return;
    case 'metricsUpdate':
      onMetrics(d);
      return;
    case 'callInitiated':
    case 'callRinging':
    case 'callConnected':
    case 'callUpdated':
    case 'callQualityUpdate':
    case 'amdResult':
    case 'agentConnected':
    case 'recordingStarted':
    case 'recordingStopped':
      onCall(msg.type, d, at);
      break;
    case 'callEnded':
      onCallEnded(d, at);
      break;
    case 'agent:status:updated':
      onAgentStatus(d, at);
      break;
    case 'sipRegistered':
    case 'sipRegistrationFailed':
    case 'sipUnregistered':
      onSip(msg.type, d, at);
      break;
    case 'campaignStarted':
    case 'campaignCompleted':
      campaignsSoon();
      break;
    default:
      break;
  }
  logEvent(msg.type, d, at);
  if (msg.channel === 'calls') chartsSoon();
  schedule();
}

function callId(d) {
  return d.callId ?? d.call_id ?? d.id ?? null;
}

function onCall(kind, d, at) {
  const id = callId(d);
  if (!id) return;
  if (kind.startsWith('recording')) {
    const c = st.calls.get(id);
    if (c) c.recording = kind === 'recordingStarted';
    return;
  }
  const prev = st.calls.get(id);
  const status = typeof d.status === 'string' && d.status ? d.status : STATUS_OF[kind] || (prev && prev.status) || 'initiated';
  if (FINAL.has(status)) {
    onCallEnded(d, at);
    return;
  }
  const start = Date.parse(d.startTime || d.start_time || d.startedAt) || (prev && prev.start) || at;
  const q = { ...((prev && prev.q) || {}) };
  for (const [k, v] of Object.entries(quality(d.quality || (kind === 'callQualityUpdate' ? d : null)))) {
    if (v !== null) q[k] = v;
  }
  st.calls.set(id, {
    ...(prev || {}),
    id,
    phone: d.phoneNumber || d.phone || d.to || (prev && prev.phone) || '',
    status,
    start,
    agentId: d.agentId ?? d.agent_id ?? (prev && prev.agentId) ?? null,
    campaignId: d.campaignId ?? d.campaign_id ?? (prev && prev.campaignId) ?? null,
    amd: kind === 'amdResult' ? String(d.result ?? d.answeredBy ?? d.answered_by ?? '') : prev && prev.amd,
    q,
    source: prev ? prev.source : 'ws',
    touched: Date.now(),
  });
  if (!st.started.has(id)) st.started.set(id, start);
  if (kind === 'callConnected' || kind === 'agentConnected' || status === 'connected' || status === 'answered' || status === 'in-progress') {
    const o = st.outcomes.get(id) || { t: at, answered: false, abandoned: false };
    o.answered = true;
    o.t = at;
    st.outcomes.set(id, o);
  }
  if (kind === 'callQualityUpdate' && q.mos !== null && q.mos !== undefined) st.mos.push({ t: at, v: q.mos });
  // An agent put through to a call is on it, whether or not a status event says so.
  const agent = kind === 'agentConnected' && st.agents.get(d.agentId ?? d.agent_id);
  if (agent && agent.status !== 'busy') {
    agent.before = agent.status;
    agent.onCall = id;
    agent.status = 'busy';
    agent.since = at;
  }
}

function onCallEnded(d, at) {
  const id = callId(d);
  if (!id) return;
  const prev = st.calls.get(id);
  st.calls.delete(id);
  st.gone.set(id, Date.now());
  if (!st.started.has(id)) st.started.set(id, Date.parse(d.startTime || d.start_time) || at);
  const m = quality(d.quality).mos ?? (prev && prev.q && prev.q.mos);
  if (m !== null && m !== undefined) st.mos.push({ t: at, v: m });
  const abandoned = isAbandon(d);
  const o = st.outcomes.get(id);
  if (abandoned || (o && o.answered)) st.outcomes.set(id, { t: at, answered: true, abandoned });
  for (const a of st.agents.values()) {
    if (a.onCall === id && a.status === 'busy') {
      a.status = a.before || 'available';
      a.since = at;
    }
    if (a.onCall === id) a.onCall = null;
  }
}

function onAgentStatus(d, at) {
  const id = d.agentId ?? d.agent_id ?? d.id;
  const a = st.agents.get(id);
  if (!a) {
    agentsSoon();
    return;
  }
  if (a.status !== d.status) a.since = at;
  a.status = d.status;
  a.onCall = null;
}

/** Reloads the campaigns when the engine starts or completes one (events come in bursts). */
let campaignsTimer = null;
function campaignsSoon() {
  if (campaignsTimer) return;
  campaignsTimer = setTimeout(() => {
    campaignsTimer = null;
    loadCampaigns().catch(() => {});
  }, 500);
}

/** Reloads the agents for an unknown agent's event, at most every 5 s. */
let agentsAt = 0;
function agentsSoon() {
  const now = Date.now();
  if (now - agentsAt < 5000) return;
  agentsAt = now;
  loadAgents().catch(() => {});
}

function onSip(kind, d, at) {
  const status = { sipRegistered: 'registered', sipRegistrationFailed: 'failed', sipUnregistered: 'unregistered' }[kind];
  putTrunk(d, status, at);
}

function onMetrics(d) {
  let a = num(d, 'abandonRate', 'abandon_rate');
  if (a !== null && a > 1) a /= 100;
  st.server.abandon = a;
  st.server.cpm = num(d, 'callsPerMinute', 'calls_per_minute');
  const mos = num(d, 'averageMos', 'avgMos', 'mos');
  if (mos !== null && mos > 0) st.server.mos = mos;
  $('[data-testid="ws-status"]').title = `last metrics ${fmtTime(Date.now())}`;
}

// ---- event log ------------------------------------------------------------------------

function summary(kind, d) {
  const parts = [];
  const id = callId(d);
  if (kind.startsWith('call') || kind === 'amdResult' || kind === 'agentConnected' || kind.startsWith('recording')) {
    if (d.phoneNumber || d.phone) parts.push(d.phoneNumber || d.phone);
    if (d.status) parts.push(d.status);
    if (d.result || d.answeredBy) parts.push(String(d.result || d.answeredBy));
    const q = quality(d.quality || d);
    if (kind === 'callQualityUpdate' && q.mos !== null) parts.push(`MOS ${q.mos.toFixed(2)}`);
    if (d.disposition) parts.push(d.disposition);
    if (id) parts.push(`#${String(id).slice(-6)}`);
  } else if (kind === 'incoming:call' || kind === 'call:ended') {
    // A call put through to an agent (the screen pop), or its end on the agent's side.
    parts.push([d.first_name, d.last_name].filter(Boolean).join(' '), d.phone || '', d.disposition || '');
    if (id) parts.push(`#${String(id).slice(-6)}`);
  } else if (kind === 'agent:status:updated') {
    const a = st.agents.get(d.agentId);
    parts.push(a ? a.name : String(d.agentId || ''), '→', d.status);
  } else if (kind.startsWith('sip')) {
    parts.push(String(d.name ?? d.trunk ?? d.trunkId ?? ''), String(d.server ?? ''), String(d.reason ?? d.lastError ?? ''));
  } else if (kind === 'slowRequest') {
    parts.push(`${d.method || ''} ${d.route || ''} ${Math.round(d.durationMs || 0)} ms`);
  } else if (kind === 'error' || kind === 'missed') {
    parts.push(String(d.message ?? d.count ?? ''));
  } else {
    parts.push(JSON.stringify(d).slice(0, 120));
  }
  return parts.filter(Boolean).join(' ');
}

function logEvent(kind, d, at) {
  const log = $('#event-log');
  log.prepend(el('li', { dataset: { kind } },
    el('time', { datetime: new Date(at).toISOString() }, fmtTime(at)),
    el('span', { class: 'kind' }, kind),
    el('span', {}, summary(kind, d))));
  while (log.childElementCount > 200) log.lastElementChild.remove();
}

// ---- rendering ------------------------------------------------------------------------

function schedule() {
  if (rendering) return;
  rendering = true;
  requestAnimationFrame(() => {
    rendering = false;
    render();
  });
}

function render() {
  renderCounters();
  renderCalls();
  renderAgents();
  renderCampaigns();
  renderTrunks();
}

function prune(now) {
  const cut = now - HOUR;
  for (const [id, t] of st.started) if (t < cut) st.started.delete(id);
  for (const [id, o] of st.outcomes) if (o.t < cut) st.outcomes.delete(id);
  if (st.mos.some((s) => s.t < cut)) st.mos = st.mos.filter((s) => s.t >= cut);
  for (const [id, t] of st.gone) if (t < now - MINUTE) st.gone.delete(id);
}

function callsPerMinute(now) {
  if (st.server.cpm !== null) return st.server.cpm;
  let n = 0;
  for (const t of st.started.values()) if (t > now - MINUTE && t <= now + 5000) n++;
  return n;
}

function abandonCap() {
  const all = [...st.campaigns.values()];
  const active = all.filter((c) => c.status === 'active');
  const caps = (active.length ? active : all).map((c) => c.max_abandon_rate).filter((v) => typeof v === 'number' && v > 0);
  return caps.length ? Math.min(...caps) : DEFAULT_CAP;
}

function renderCounters() {
  const now = Date.now();
  let ringing = 0;
  let connected = 0;
  let mosSum = 0;
  let mosN = 0;
  for (const c of st.calls.values()) {
    if (RINGING.has(c.status)) ringing++;
    else connected++;
    if (!RINGING.has(c.status) && c.q && c.q.mos !== null && c.q.mos !== undefined) {
      mosSum += c.q.mos;
      mosN++;
    }
  }
  set('counter-active', st.calls.size);
  set('counter-ringing', ringing);
  set('counter-connected', connected);
  const by = { available: 0, busy: 0, 'wrap-up': 0, break: 0, offline: 0 };
  for (const a of st.agents.values()) {
    const k = a.status === 'connecting' ? 'offline' : a.status === 'reserved' ? 'busy' : a.status;
    if (k in by) by[k]++;
  }
  for (const [k, v] of Object.entries(by)) set(`agents-${k}`, v);
  set('counter-cpm', callsPerMinute(now));
  const mos = mosN ? mosSum / mosN : st.server.mos;
  const mosNode = $('[data-testid="counter-mos"]');
  mosNode.textContent = mos ? mos.toFixed(2) : '—';
  mosNode.className = mosClass(mos || null);

  const cap = abandonCap();
  let rate = st.server.abandon;
  let source = 'reported by the engine';
  if (rate === null) {
    let answered = 0;
    let abandoned = 0;
    for (const o of st.outcomes.values()) {
      if (o.answered) answered++;
      if (o.abandoned) abandoned++;
    }
    rate = answered ? abandoned / answered : null;
    source = answered ? `estimate: last hour, ${abandoned} of ${answered} answered` : 'no answered calls yet';
  }
  set('counter-abandon', rate === null ? '—' : `${(rate * 100).toFixed(1)}%`);
  set('abandon-cap', `${(cap * 100).toFixed(1)}%`);
  $('#abandon-source').textContent = source;
  $('#abandon-meter').value = rate === null ? 0 : Math.min(1, rate / cap);
  $('#abandon-tile').classList.toggle('over', rate !== null && rate > cap);
}

function set(testid, v) {
  const n = document.querySelector(`[data-testid="${testid}"]`);
  const text = String(v);
  if (n && n.textContent !== text) n.textContent = text;
}

/** Keeps `tbody`'s rows in the order of `items`, creating and removing keyed rows. */
function syncRows(tbody, items, key, create, update, emptyText, cols) {
  const rows = new Map();
  for (const tr of tbody.querySelectorAll('tr[data-key]')) rows.set(tr.dataset.key, tr);
  const placeholder = tbody.querySelector('tr.empty');
  if (items.length === 0) {
    for (const tr of rows.values()) tr.remove();
    if (!placeholder) tbody.append(el('tr', { class: 'empty' }, el('td', { colspan: cols }, emptyText)));
    return;
  }
  if (placeholder) placeholder.remove();
  const keep = new Set(items.map(key));
  for (const [k, tr] of rows) if (!keep.has(k)) tr.remove();
  let i = 0;
  for (const item of items) {
    const k = key(item);
    let tr = rows.get(k);
    if (!tr) {
      tr = create(item);
      tr.dataset.key = k;
    }
    update(tr, item);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
    i++;
  }
}

function cell(tr, name) {
  return tr.querySelector(`[data-cell="${name}"]`);
}

function setText(node, text) {
  const t = text === null || text === undefined ? '' : String(text);
  if (node.textContent !== t) node.textContent = t;
}

function badge(node, status) {
  const b = node.firstElementChild || node.appendChild(el('span'));
  b.className = `badge ${String(status).replace(/[^a-z-]/gi, '').toLowerCase()}`;
  setText(b, status);
}

function campaignName(id) {
  if (!id) return '';
  const c = st.campaigns.get(id);
  return c ? c.name : `…${String(id).slice(-6)}`;
}

function agentName(id) {
  if (!id) return '';
  const a = st.agents.get(id);
  return a ? a.name : `…${String(id).slice(-6)}`;
}

function renderCalls() {
  const calls = [...st.calls.values()].sort((a, b) => b.start - a.start);
  const shown = calls.slice(0, 200);
  setText($('[data-testid="active-count"]'), calls.length > shown.length ? `${shown.length} of ${calls.length} shown` : `${calls.length}`);
  syncRows($('#calls-body'), shown, (c) => c.id,
    (c) => {
      const tr = el('tr', { class: 'fresh', dataset: { testid: 'call-row', callId: c.id, source: c.source } },
        el('td', { 'data-cell': 'phone', 'data-testid': 'call-phone' }),
        el('td', { 'data-cell': 'status', 'data-testid': 'call-status' }),
        el('td', { 'data-cell': 'campaign' }),
        el('td', { 'data-cell': 'agent' }),
        el('td', { 'data-cell': 'duration', 'data-testid': 'call-duration', class: 'num' }),
        el('td', { 'data-cell': 'mos', 'data-testid': 'call-mos', class: 'num' }),
        el('td', { 'data-cell': 'jitter', class: 'num' }),
        el('td', { 'data-cell': 'loss', class: 'num' }));
      setTimeout(() => tr.classList.remove('fresh'), 1600);
      return tr;
    },
    (tr, c) => {
      tr.dataset.status = c.status;
      setText(cell(tr, 'phone'), c.phone);
      badge(cell(tr, 'status'), c.amd ? `${c.status} · ${c.amd}` : c.status);
      setText(cell(tr, 'campaign'), campaignName(c.campaignId));
      setText(cell(tr, 'agent'), agentName(c.agentId));
      setText(cell(tr, 'duration'), fmtDuration((Date.now() - c.start) / 1000));
      const q = c.q || {};
      const mos = cell(tr, 'mos');
      setText(mos, q.mos != null ? q.mos.toFixed(2) : '—');
      mos.className = `num ${mosClass(q.mos)}`;
      setText(cell(tr, 'jitter'), q.jitter != null ? `${q.jitter.toFixed(1)} ms` : '—');
      setText(cell(tr, 'loss'), q.loss != null ? `${q.loss.toFixed(1)}%` : '—');
    },
    'No active calls', 8);
}

function renderAgents() {
  const order = { busy: 0, 'wrap-up': 1, available: 2, break: 3, connecting: 4, offline: 5 };
  const agents = [...st.agents.values()].sort((a, b) => (order[a.status] ?? 9) - (order[b.status] ?? 9) || a.name.localeCompare(b.name));
  syncRows($('#agents-body'), agents, (a) => a.id,
    (a) => el('tr', { dataset: { testid: 'agent-row', agentId: a.id } },
      el('td', { 'data-cell': 'name' }),
      el('td', { 'data-cell': 'status', 'data-testid': 'agent-status' }),
      el('td', { 'data-cell': 'since', class: 'num' }),
      el('td', { 'data-cell': 'calls', class: 'num' })),
    (tr, a) => {
      tr.dataset.status = a.status;
      setText(cell(tr, 'name'), a.name);
      badge(cell(tr, 'status'), a.status);
      setText(cell(tr, 'since'), fmtDuration((Date.now() - a.since) / 1000));
      setText(cell(tr, 'calls'), a.calls);
    },
    'No agents', 4);
}

function renderCampaigns() {
  const canAct = (RANK[st.user.role] ?? 0) >= RANK.supervisor;
  const list = [...st.campaigns.values()].sort((a, b) => a.name.localeCompare(b.name));
  syncRows($('#campaigns-body'), list, (c) => c.id,
    (c) => el('tr', { dataset: { testid: 'campaign-row', campaignId: c.id } },
      el('td', { 'data-cell': 'name' }),
      el('td', { 'data-cell': 'status', 'data-testid': 'campaign-status' }),
      el('td', { 'data-cell': 'mode' }),
      el('td', { 'data-cell': 'cap', class: 'num' }),
      el('td', { 'data-cell': 'action' })),
    (tr, c) => {
      tr.dataset.status = c.status;
      setText(cell(tr, 'name'), c.name);
      badge(cell(tr, 'status'), c.status);
      setText(cell(tr, 'mode'), c.dial_mode || '');
      setText(cell(tr, 'cap'), typeof c.max_abandon_rate === 'number' ? `${(c.max_abandon_rate * 100).toFixed(1)}%` : '');
      const action = c.status === 'active' || c.status === 'scheduled' ? 'pause'
        : c.status === 'draft' || c.status === 'paused' ? 'start' : null;
      const td = cell(tr, 'action');
      const btn = td.firstElementChild;
      if (!canAct || !action) {
        td.replaceChildren();
      } else if (!btn || btn.dataset.action !== action) {
        td.replaceChildren(el('button', {
          type: 'button',
          class: `btn small ${action === 'pause' ? 'secondary' : ''}`,
          'data-testid': `campaign-${action}`,
          'aria-label': `${action === 'pause' ? 'Pause' : 'Start'} campaign ${c.name}`,
          dataset: { action },
          onclick: () => campaignAction(c.id, action),
        }, action === 'pause' ? 'Pause' : 'Start'));
      }
    },
    'No campaigns', 5);
}

async function campaignAction(id, action) {
  const err = $('[data-testid="campaigns-error"]');
  err.textContent = '';
  const btn = document.querySelector(`tr[data-campaign-id="${CSS.escape(id)}"] button`);
  if (btn) btn.disabled = true;
  try {
    const r = await api('POST', `/api/campaigns/${encodeURIComponent(id)}/${action}`);
    const c = r.campaign || r.data;
    st.campaigns.set(c.id, c);
    logEvent(action === 'pause' ? 'campaignPaused' : 'campaignStarted', { name: c.name, status: c.status }, Date.now());
  } catch (e) {
    err.textContent = `Could not ${action} the campaign: ${e.message}`;
    if (btn) btn.disabled = false;
  }
  schedule();
}

function renderTrunks() {
  const list = [...st.trunks.values()].sort((a, b) => a.name.localeCompare(b.name));
  syncRows($('#trunks-body'), list, (t) => t.id,
    (t) => el('tr', { dataset: { testid: 'trunk-row', trunkId: t.id } },
      el('td', { 'data-cell': 'name' }),
      el('td', { 'data-cell': 'status', 'data-testid': 'trunk-status' }),
      el('td', { 'data-cell': 'detail' }),
      el('td', { 'data-cell': 'since', class: 'num' })),
    (tr, t) => {
      setText(cell(tr, 'name'), t.name);
      badge(cell(tr, 'status'), t.status);
      setText(cell(tr, 'detail'), t.detail);
      setText(cell(tr, 'since'), fmtDuration((Date.now() - t.since) / 1000));
    },
    'No trunks reported', 4);
}

/** Every second: durations, times in state, calls per minute. */
function tick() {
  const now = Date.now();
  prune(now);
  for (const tr of $('#calls-body').querySelectorAll('tr[data-key]')) {
    const c = st.calls.get(tr.dataset.key);
    if (c) setText(cell(tr, 'duration'), fmtDuration((now - c.start) / 1000));
  }
  for (const tr of $('#agents-body').querySelectorAll('tr[data-key]')) {
    const a = st.agents.get(tr.dataset.key);
    if (a) setText(cell(tr, 'since'), fmtDuration((now - a.since) / 1000));
  }
  for (const tr of $('#trunks-body').querySelectorAll('tr[data-key]')) {
    const t = st.trunks.get(tr.dataset.key);
    if (t) setText(cell(tr, 'since'), fmtDuration((now - t.since) / 1000));
  }
  set('counter-cpm', callsPerMinute(now));
}

function drawCharts() {
  if (!charts) return;
  const now = Date.now();
  prune(now);
  const to = Math.floor(now / MINUTE) * MINUTE + MINUTE;
  const from = to - HOUR;
  const calls = new Array(60).fill(0);
  for (const t of st.started.values()) {
    const i = Math.floor((t - from) / MINUTE);
    if (i >= 0 && i < 60) calls[i]++;
  }
  const sum = new Array(60).fill(0);
  const n = new Array(60).fill(0);
  for (const s of st.mos) {
    const i = Math.floor((s.t - from) / MINUTE);
    if (i >= 0 && i < 60) {
      sum[i] += s.v;
      n[i]++;
    }
  }
  charts.cpm.set(calls.map((v, i) => ({ t: from + i * MINUTE, v })), from, to, MINUTE);
  charts.mos.set(n.map((k, i) => ({ t: from + i * MINUTE, v: k ? sum[i] / k : null })), from, to, MINUTE);
  const total = calls.reduce((a, b) => a + b, 0);
  const peak = Math.max(...calls);
  $('#chart-cpm').setAttribute('aria-label', `Calls per minute over the last hour: ${total} call${total === 1 ? '' : 's'}, peak ${peak} per minute`);
  const all = st.mos.map((s) => s.v);
  $('#chart-mos').setAttribute('aria-label', all.length
    ? `Average MOS over the last hour: ${(all.reduce((a, b) => a + b, 0) / all.length).toFixed(2)} from ${all.length} samples`
    : 'Average MOS over the last hour: no samples yet');
}

/** Redraws the charts shortly (events come in bursts). */
let chartSoon = null;
function chartsSoon() {
  if (!chartSoon) {
    chartSoon = setTimeout(() => {
      chartSoon = null;
      drawCharts();
    }, 250);
  }
}

boot();
