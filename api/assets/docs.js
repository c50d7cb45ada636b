// Switchboard API explorer: renders /api/openapi.json and sends requests with the token
// from the login form (kept in sessionStorage for this tab only).
(function () {
  'use strict';
  const el = (tag, attrs, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'class') e.className = v; else if (k.startsWith('on')) e.addEventListener(k.slice(2), v); else e.setAttribute(k, v);
    }
    for (const k of kids) e.append(k && k.nodeType ? k : document.createTextNode(k == null ? '' : String(k)));
    return e;
  };
  const token = () => sessionStorage.getItem('sb_token') || '';
  const who = document.getElementById('who');
  const showWho = () => { who.textContent = token() ? 'token set' : 'not logged in'; };
  showWho();

  document.getElementById('login').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = JSON.stringify({ email: document.getElementById('email').value, password: document.getElementById('password').value });
    const r = await fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    const j = await r.json().catch(() => ({}));
    if (r.ok && j.token) { sessionStorage.setItem('sb_token', j.token); showWho(); } else { who.textContent = j.error || ('login failed: ' + r.status); }
  });

  function operation(path, method, op) {
    const params = (op.parameters || []);
    const inputs = {};
    const form = el('form', { class: 'op' });
    const summary = el('summary', {}, el('b', { class: 'm ' + method }, method.toUpperCase()), ' ', path, ' — ', op.summary || '');
    const det = el('details', {}, summary, form);
    if (op.description) form.append(el('p', {}, op.description));
    for (const p of params) {
      const i = el('input', { placeholder: p.name + ' (' + p.in + ')' + (p.required ? ' *' : '') });
      inputs[p.name] = { input: i, where: p.in };
      form.append(el('label', {}, p.name, ' ', i));
    }
    const isMultipart = op.requestBody && op.requestBody.content && op.requestBody.content['multipart/form-data'];
    let body = null, file = null;
    if (isMultipart) {
      file = el('input', { type: 'file' });
      body = el('textarea', { rows: 3, placeholder: 'other form fields as JSON, e.g. {"campaign_id": "..."}' });
      form.append(el('label', {}, 'file ', file), body);
    } else if (op.requestBody) {
      body = el('textarea', { rows: 6, placeholder: 'JSON body' });
      form.append(body);
    }
    const out = el('pre', { class: 'out' });
    form.append(el('button', { type: 'submit' }, 'Send'), out);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      let url = path;
      const q = new URLSearchParams();
      for (const [name, { input, where }] of Object.entries(inputs)) {
        if (!input.value) continue;
        if (where === 'path') url = url.replace('{' + name + '}', encodeURIComponent(input.value));
        else if (where === 'query') q.set(name, input.value);
      }
      if ([...q].length) url += '?' + q;
      const headers = {};
      if (token()) headers.authorization = 'Bearer ' + token();
      let payload;
      try {
        if (isMultipart) {
          payload = new FormData();
          if (file.files[0]) payload.append('file', file.files[0]);
          const extra = body.value ? JSON.parse(body.value) : {};
          for (const [k, v] of Object.entries(extra)) payload.append(k, typeof v === 'string' ? v : JSON.stringify(v));
        } else if (body && body.value) {
          headers['content-type'] = 'application/json';
          payload = body.value;
        }
      } catch (e) { out.textContent = 'bad JSON in the form: ' + e; return; }
      const r = await fetch(url, { method: method.toUpperCase(), headers, body: payload });
      const text = await r.text();
      let shown = text;
      try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
      out.textContent = r.status + ' ' + r.statusText + '\n' + shown;
    });
    return det;
  }

  fetch('/api/openapi.json').then((r) => r.json()).then((doc) => {
    const ops = document.getElementById('ops');
    ops.textContent = '';
    const byTag = {};
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || 'other';
        (byTag[tag] = byTag[tag] || []).push(operation(path, method, op));
      }
    }
    for (const [tag, list] of Object.entries(byTag)) ops.append(el('section', {}, el('h2', {}, tag), ...list));
  });
})();
