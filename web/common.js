// Shared by the dashboard and the agent page: the session, REST calls, the live WebSocket
// with reconnects, and small DOM and formatting helpers. Text reaches the page through
// textContent only, never as HTML.

const TOKEN_KEY = 'switchboard.token';
const USER_KEY = 'switchboard.user';

/** The signed-in user, or null. */
export function session() {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return null;
  try {
    return { token, user: JSON.parse(sessionStorage.getItem(USER_KEY) || '{}') };
  } catch {
    return { token, user: {} };
  }
}

export function clearSession() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(USER_KEY);
}

export class ApiError extends Error {
  constructor(status, message, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** A JSON request to the API with the session's token; a 401 ends the session. */
export async function api(method, path, body) {
  const s = session();
  const headers = { accept: 'application/json' };
  if (s) headers.authorization = `Bearer ${s.token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, 'the server is unreachable', 'network');
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && s && !path.startsWith('/api/auth/')) {
      window.dispatchEvent(new CustomEvent('sb:unauthorized'));
    }
    const message = (data && (data.error || data.message)) || `HTTP ${res.status}`;
    throw new ApiError(res.status, message, data && data.code);
  }
  return data;
}

/** Wires a login form (fields `email`, `password`; an element `[role=alert]` for errors). */
export function bindLogin(form, onDone) {
  const error = form.querySelector('[role="alert"]');
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const button = form.querySelector('button[type="submit"]');
    error.textContent = '';
    button.disabled = true;
    try {
      const r = await api('POST', '/api/auth/login', {
        email: form.elements.email.value.trim(),
        password: form.elements.password.value,
      });
      sessionStorage.setItem(TOKEN_KEY, r.token);
      sessionStorage.setItem(USER_KEY, JSON.stringify(r.user || {}));
      form.elements.password.value = '';
      onDone(session());
    } catch (e) {
      error.textContent = e.status === 401 ? 'Wrong e-mail or password.' : e.message;
    } finally {
      button.disabled = false;
    }
  });
}

/**
 * The live connection to `/ws`: authenticates with the token, subscribes to `channels`,
 * and reconnects with exponential backoff (0.5 s doubling to 30 s, with jitter).
 * Callbacks: onMessage(msg), onState('connecting' | 'live' | 'offline'),
 * onResync() after every (re)connection, so the page reloads its state from REST.
 */
export class Live {
  constructor({ channels = [], onMessage, onState, onResync, onOpen }) {
    this.channels = channels;
    this.onMessage = onMessage || (() => {});
    this.onState = onState || (() => {});
    this.onResync = onResync || (() => {});
    this.onOpen = onOpen || (() => {});
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.stopped = true;
    this.pending = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, 'bye');
    this.ws = null;
    this.onState('offline');
  }

  send(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(msg));
      return true;
    }
    return false;
  }

  connect() {
    const s = session();
    if (!s || this.stopped) return;
    this.onState('connecting');
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const ws = new WebSocket(`${proto}//${location.host}/ws?token=${encodeURIComponent(s.token)}`);
    this.ws = ws;
    ws.onmessage = (ev) => {
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      if (msg.type === 'connected') {
        this.attempt = 0;
        this.pending = this.channels.length;
        for (const channel of this.channels) ws.send(JSON.stringify({ type: 'subscribe', channel }));
        if (this.pending === 0) this.onState('live');
        this.onOpen(msg.data || {});
        this.onResync();
      } else if (msg.type === 'subscribed') {
        this.pending -= 1;
        if (this.pending === 0) this.onState('live');
      } else if (msg.type === 'missed') {
        // The server dropped events while we were slow: reload the state.
        this.onResync();
      }
      this.onMessage(msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.onState('offline');
      if (this.stopped) return;
      if (ev.code === 4401) {
        window.dispatchEvent(new CustomEvent('sb:unauthorized'));
        return;
      }
      const base = Math.min(30000, 500 * 2 ** this.attempt);
      this.attempt += 1;
      const delay = base * (0.8 + Math.random() * 0.4);
      this.timer = setTimeout(() => this.checkThenConnect(), delay);
    };
  }

  // A refused upgrade looks like any other close in a browser: ask the API whether the token
  // is still good before trying again.
  async checkThenConnect() {
    if (this.stopped) return;
    try {
      await api('GET', '/api/auth/me');
    } catch (e) {
      if (e.status === 401) return;
    }
    this.connect();
  }
}

/** `el('td', {class: 'num', dataset: {x: 1}}, 'text', child)`. */
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

/** 75 → "1:15", 3725 → "1:02:05". */
export function fmtDuration(sec) {
  if (!Number.isFinite(sec) || sec < 0) return '—';
  sec = Math.floor(sec);
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = String(sec % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}` : `${m}:${s}`;
}

export function fmtTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

/** A number or null from the first present key. */
export function num(obj, ...keys) {
  if (!obj || typeof obj !== 'object') return null;
  for (const k of keys) {
    const v = obj[k];
    if (typeof v === 'number' && Number.isFinite(v)) return v;
    if (typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v))) return Number(v);
  }
  return null;
}

/** Call quality in any of the shapes the API and the engine send. */
export function quality(q) {
  if (!q || typeof q !== 'object') return {};
  return {
    mos: num(q, 'mos', 'mos_score', 'mosScore', 'MOS'),
    jitter: num(q, 'jitter', 'jitterMs', 'jitter_ms'),
    loss: num(q, 'packetLoss', 'packet_loss', 'loss', 'lossPercent'),
    latency: num(q, 'latency', 'rtt', 'rttMs'),
  };
}

/** The class of a MOS: q-good (≥ 4), q-fair (≥ 3.6), q-poor. */
export function mosClass(mos) {
  if (mos === null || mos === undefined) return '';
  return mos >= 4 ? 'q-good' : mos >= 3.6 ? 'q-fair' : 'q-poor';
}

/** Sets the header's connection indicator. */
export function showConnection(node, state) {
  node.dataset.state = state;
  node.textContent = { live: 'live', connecting: 'connecting…', offline: 'offline' }[state] || state;
}
