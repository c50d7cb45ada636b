// The agent page: sign in, join as one's agent over `/ws`, set the status, receive the
// screen pop (`incoming:call`) and post the disposition (`POST /api/calls/{id}/end`).

import { session, clearSession, api, bindLogin, Live, el, fmtTime, showConnection } from './common.js';

const $ = (sel) => document.querySelector(sel);
const RANK = { viewer: 0, agent: 1, supervisor: 2, admin: 3, owner: 4 };

const st = { user: {}, agent: null, live: null, call: null };

function boot() {
  $('#logout').addEventListener('click', () => logout());
  window.addEventListener('sb:unauthorized', () => logout('Your session has ended: sign in again.'));
  bindLogin($('[data-testid="login-form"]'), start);
  $('#pick-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const id = $('#pick-agent').value;
    if (id) join(st.agents.find((a) => a.id === id));
  });
  for (const b of document.querySelectorAll('[data-status]')) {
    b.addEventListener('click', () => setStatus(b.dataset.status));
  }
  $('#dispo-form').addEventListener('submit', submitDisposition);
  $('#pop-close').addEventListener('click', closePop);
  const s = session();
  if (s) start(s);
  else showLogin();
}

function showLogin(message) {
  for (const id of ['#app', '#pick', '#logout']) $(id).hidden = true;
  $('[data-testid="whoami"]').textContent = '';
  $('#login').hidden = false;
  $('[data-testid="login-error"]').textContent = message || '';
  $('#email').focus();
}

function logout(message) {
  if (st.live) st.live.stop();
  st.live = null;
  st.agent = null;
  st.call = null;
  clearSession();
  showLogin(message);
}

/** Finds the agent record: `?agent=ID`, else the one linked to this user. */
async function start(s) {
  st.user = s.user || {};
  $('#login').hidden = true;
  $('#logout').hidden = false;
  $('[data-testid="whoami"]').textContent = [st.user.email, st.user.role].filter(Boolean).join(' · ');
  let agents;
  try {
    const r = await api('GET', '/api/agents');
    agents = r.data || r.agents || [];
  } catch (e) {
    showPick(`Could not load the agents: ${e.message}`, []);
    return;
  }
  st.agents = agents;
  const wanted = new URLSearchParams(location.search).get('agent');
  const supervisor = (RANK[st.user.role] ?? 0) >= RANK.supervisor;
  const mine = agents.filter((a) => a.user_id === st.user.id);
  const byId = wanted && agents.find((a) => a.id === wanted && (supervisor || a.user_id === st.user.id));
  if (byId) return join(byId);
  if (mine.length === 1) return join(mine[0]);
  if (mine.length > 1) return showPick('Your user is linked to several agents.', mine);
  if (supervisor) return showPick('As a supervisor you may take calls as any agent.', agents);
  showPick('No agent record is linked to your user. Ask a supervisor to create one with your user id.', []);
}

function showPick(note, agents) {
  $('#pick').hidden = false;
  $('#pick-note').textContent = note;
  $('#pick-agent').replaceChildren(...agents.map((a) => el('option', { value: a.id }, `${a.name} (${a.status})`)));
  $('#pick-form').hidden = agents.length === 0;
}

function join(agent) {
  st.agent = agent;
  $('#pick').hidden = true;
  $('#app').hidden = false;
  $('[data-testid="agent-name"]').textContent = agent.name;
  showStatus(agent.status);
  if (st.live) st.live.stop();
  st.live = new Live({
    channels: [],
    onMessage,
    onState: (state) => showConnection($('[data-testid="ws-status"]'), state),
    onOpen: () => st.live.send({ type: 'agent:join', agentId: st.agent.id }),
  });
  st.live.start();
}

function showStatus(status) {
  const b = $('[data-testid="agent-state"]');
  b.textContent = status;
  b.className = `badge ${status}`;
  $('#app').dataset.status = status;
  for (const btn of document.querySelectorAll('[data-status]')) {
    btn.setAttribute('aria-pressed', String(btn.dataset.status === status));
    btn.disabled = false;
  }
}

/** Over the socket when it is up (the dialer spec's `agent:status`), else over REST. */
async function setStatus(status) {
  $('[data-testid="agent-error"]').textContent = '';
  for (const btn of document.querySelectorAll('[data-status]')) btn.disabled = true;
  if (st.live && st.live.send({ type: 'agent:status', agentId: st.agent.id, status })) {
    // The answer is `agent:status:updated` (or an `error`).
    setTimeout(() => {
      for (const btn of document.querySelectorAll('[data-status]')) btn.disabled = false;
    }, 5000);
    return;
  }
  try {
    const r = await api('PUT', `/api/agents/${encodeURIComponent(st.agent.id)}/status`, { status });
    showStatus((r.agent || r.data).status);
  } catch (e) {
    $('[data-testid="agent-error"]').textContent = `Could not set the status: ${e.message}`;
    showStatus(st.agent.status);
  }
}

function onMessage(msg) {
  const d = msg.data || {};
  switch (msg.type) {
    case 'agent:joined':
      st.agent.status = d.status || st.agent.status;
      $('#app').dataset.joined = 'true';
      showStatus(st.agent.status);
      break;
    case 'agent:status:updated':
      if ((d.agentId ?? d.agent_id) === st.agent.id) {
        st.agent.status = d.status;
        showStatus(d.status);
      }
      break;
    case 'incoming:call':
      pop(d, 'incoming:call');
      break;
    case 'call:ended':
    case 'callEnded':
      ended(d);
      break;
    case 'error':
      $('[data-testid="agent-error"]').textContent = d.message || 'error';
      showStatus(st.agent.status);
      break;
    default:
      break;
  }
}

/** The engine put a call through to this agent: the lead's details come with it. */
function pop(d, kind) {
  const callId = d.callId ?? d.call_id ?? d.id;
  if (!callId) return;
  show({ ...d, callId }, kind);
}

function show(d, source) {
  const same = st.call && st.call.id === d.callId;
  if (st.call && !same && !st.call.done) remember(st.call, 'left without a disposition');
  st.call = { id: d.callId, name: fullName(d), ended: same ? st.call.ended : false, done: false };
  const p = $('#pop');
  p.hidden = false;
  p.dataset.callId = d.callId;
  p.dataset.source = source;
  p.dataset.state = st.call.ended ? 'ended' : 'live';
  $('#waiting').hidden = true;
  $('[data-testid="pop-name"]').textContent = st.call.name;
  $('[data-testid="pop-phone"]').textContent = d.phone || d.phoneNumber || '';
  $('[data-testid="pop-campaign"]').textContent = campaignText(d.campaign);
  $('[data-testid="pop-notes"]').textContent = d.notes || '—';
  $('[data-testid="pop-call-id"]').textContent = `call ${String(d.callId).slice(-8)}`;
  const fields = d.custom_fields && typeof d.custom_fields === 'object' ? Object.entries(d.custom_fields) : [];
  $('[data-testid="pop-fields"]').replaceChildren(...fields.flatMap(([k, v]) => [
    el('dt', {}, k.replace(/_/g, ' ')),
    el('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v)),
  ]));
  setCallState(st.call.ended ? 'ended' : 'on call');
  const form = $('#dispo-form');
  form.reset();
  for (const c of form.elements) c.disabled = false;
  $('[data-testid="disposition-result"]').textContent = '';
  $('#pop-close').hidden = true;
  document.title = `Call: ${st.call.name} — Switchboard`;
  $('#disposition').focus();
}

function fullName(d) {
  const n = [d.first_name ?? d.firstName, d.last_name ?? d.lastName].filter(Boolean).join(' ');
  return n || d.name || d.phone || 'Unknown caller';
}

function campaignText(c) {
  if (!c) return '—';
  if (typeof c === 'object') return c.name || c.id || '—';
  return String(c);
}

function setCallState(text) {
  const b = $('[data-testid="call-state"]');
  b.textContent = text;
  b.className = `badge ${text === 'on call' ? 'connected' : 'paused'}`;
}

function ended(d) {
  const callId = d.callId ?? d.call_id ?? d.id;
  if (!st.call || st.call.id !== callId) return;
  st.call.ended = true;
  if (!st.call.done) $('#pop').dataset.state = 'ended';
  setCallState('ended');
}

async function submitDisposition(ev) {
  ev.preventDefault();
  if (!st.call) return;
  const form = ev.currentTarget;
  const result = $('[data-testid="disposition-result"]');
  const disposition = form.elements.disposition.value;
  if (!disposition) {
    result.textContent = 'Choose a disposition first.';
    form.elements.disposition.focus();
    return;
  }
  for (const c of form.elements) c.disabled = true;
  result.textContent = 'Saving…';
  const call = st.call;
  try {
    const notes = form.elements.notes.value.trim();
    const body = { disposition };
    if (notes) body.notes = notes;
    const r = await api('POST', `/api/calls/${encodeURIComponent(call.id)}/end`, body);
    const saved = r.call || r.data || {};
    call.done = true;
    result.textContent = `Saved: ${saved.disposition || disposition}.`;
    result.className = 'ok';
    $('#pop').dataset.state = 'done';
    $('#pop-close').hidden = false;
    $('#pop-close').disabled = false;
    remember(call, saved.disposition || disposition);
    document.title = 'Switchboard — agent';
  } catch (e) {
    result.textContent = `Could not save: ${e.message}`;
    result.className = 'error';
    for (const c of form.elements) c.disabled = false;
  }
}

function closePop() {
  $('#pop').hidden = true;
  $('#waiting').hidden = false;
  st.call = null;
}

function remember(call, what) {
  const list = $('#recent');
  list.prepend(el('li', { dataset: { callId: call.id } },
    el('time', {}, fmtTime(Date.now())), el('span', { class: 'kind' }, call.name), el('span', {}, what)));
  while (list.childElementCount > 50) list.lastElementChild.remove();
}

boot();
