// The supervisor dashboard against a running engine (`switchboard demo`): after signing in,
// calls the engine places through the carrier simulator appear in the active calls table
// over the WebSocket (no reload) with a running duration, a call's quality shows when its
// `callQualityUpdate` arrives, the call leaves the table when it ends, and the counters,
// the agents table and the charts follow.

import { run, step, check, signIn, text, env } from './lib.mjs';

// Real calls: the first one may take a while on a loaded machine (AMD, ringing, bridging).
const CALLS = 150000;

run('dashboard', async ({ page, snap, base }) => {
  let loads = 0;
  page.on('load', () => {
    loads += 1;
  });
  await page.goto(`${base}/`);
  await page.getByTestId('login-form').waitFor();
  await snap('login');
  await signIn(page, env('SB_EMAIL'), env('SB_PASSWORD'));
  await page.locator('#app[data-loaded="true"]').waitFor();
  await page.locator('[data-testid="ws-status"][data-state="live"]').waitFor();
  check(await page.getByTestId('active-calls').isVisible(), 'the active calls table is shown');
  for (const id of env('SB_AGENT_IDS').split(',')) {
    await page.locator(`[data-testid="agent-row"][data-agent-id="${id}"]`).waitFor();
  }
  await page.locator(`[data-testid="campaign-row"][data-campaign-id="${env('SB_CAMPAIGN_ID')}"][data-status="active"]`).waitFor();
  await snap('signed-in');

  // A call the engine starts after the page loaded: its row comes from the socket, and its
  // duration runs on its own (seen changing while the row is shown).
  const ticking = await page.waitForFunction(() => {
    const seen = (window.sbDurations ||= new Map());
    for (const tr of document.querySelectorAll('[data-testid="call-row"][data-source="ws"]')) {
      const d = tr.querySelector('[data-testid="call-duration"]').textContent;
      const was = seen.get(tr.dataset.callId);
      if (was === undefined) seen.set(tr.dataset.callId, d);
      else if (was !== d && d !== '—') return tr.dataset.callId;
    }
    return false;
  }, null, { timeout: CALLS, polling: 200 });
  const first = await ticking.jsonValue();
  check(typeof first === 'string' && first.length > 0, 'a live call row');
  await page.locator('#event-log li[data-kind="callInitiated"]').first().waitFor();
  await snap('call-appears');

  // A call answered by the simulated callee, with quality from a `callQualityUpdate` that came
  // after the answer: the row's MOS is the one the newest quality event for the call reported.
  const withQuality = await page.waitForFunction(() => {
    const log = [...document.querySelectorAll('#event-log li')]; // newest first
    for (const tr of document.querySelectorAll('[data-testid="call-row"][data-source="ws"]')) {
      const mos = tr.querySelector('[data-testid="call-mos"]').textContent;
      if (!/^\d\.\d\d$/.test(mos)) continue;
      const suffix = `#${tr.dataset.callId.slice(-6)}`;
      const quality = log.findIndex((li) => li.dataset.kind === 'callQualityUpdate' && li.textContent.includes(suffix));
      const answered = log.findIndex((li) => li.dataset.kind === 'callConnected' && li.textContent.includes(suffix));
      if (quality < 0 || answered < 0 || quality > answered) continue;
      const said = /MOS (\d\.\d\d)/.exec(log[quality].textContent);
      if (!said || said[1] !== mos) continue;
      const count = (testid) => Number(document.querySelector(`[data-testid="${testid}"]`).textContent);
      return {
        id: tr.dataset.callId,
        mos,
        status: tr.dataset.status,
        jitter: tr.querySelector('[data-cell="jitter"]').textContent,
        loss: tr.querySelector('[data-cell="loss"]').textContent,
        phone: tr.querySelector('[data-testid="call-phone"]').textContent,
        active: count('counter-active'),
        connected: count('counter-connected'),
        rows: document.querySelectorAll('[data-testid="call-row"]').length,
      };
    }
    return false;
  }, null, { timeout: CALLS, polling: 200 });
  const q = await withQuality.jsonValue();
  const mos = Number(q.mos);
  check(mos >= 1 && mos <= 5, `a MOS between 1 and 5 (${q.mos})`);
  check(/^\d+\.\d ms$/.test(q.jitter), `the jitter is shown (${q.jitter})`);
  check(/^\d+\.\d%$/.test(q.loss), `the loss is shown (${q.loss})`);
  check(!['initiated', 'ringing', 'queued'].includes(q.status), `the call was answered (${q.status})`);
  check(q.active === q.rows && q.active >= 1, `the active counter counts the rows (${q.active} of ${q.rows})`);
  check(q.connected >= 1, `the connected counter counts the answered call (${q.connected})`);
  check(/^\d\.\d\d$/.test(await text(page, 'counter-mos')), 'the average MOS is shown');
  const api = await step('call', { callId: q.id });
  check(api.callId === q.id, 'the API knows the call');
  check(q.phone === api.phone, `the row shows the number the engine dialed (${q.phone}, API ${api.phone})`);
  check(api.campaignId === env('SB_CAMPAIGN_ID'), 'the call belongs to the demo campaign');
  await snap('call-quality');

  // An agent is put through to a call: the agents table and its counters follow.
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="agents-busy"]').textContent) >= 1,
    null, { timeout: CALLS });
  await page.locator('[data-testid="agent-row"][data-status="busy"]').first().waitFor({ timeout: CALLS });
  await page.locator('#event-log li[data-kind="agent:status:updated"]').first().waitFor();
  // The screen pop the engine sent that agent is in the log, naming the lead.
  const popped = page.locator('#event-log li[data-kind="incoming:call"]').first();
  await popped.waitFor();
  check(/\+1\d{10} #[0-9a-f]{6}$/.test((await popped.textContent()).trim()), 'the logged pop names the lead\'s number and the call');

  // Hung up: it leaves the table, and the ended call is logged.
  await page.locator(`[data-testid="call-row"][data-call-id="${q.id}"]`).waitFor({ state: 'detached', timeout: CALLS });
  await page.waitForFunction((suffix) => [...document.querySelectorAll('#event-log li[data-kind="callEnded"]')]
    .some((li) => li.textContent.includes(suffix)), `#${q.id.slice(-6)}`);
  await page.waitForFunction(() => Number(document.querySelector('[data-testid="counter-cpm"]').textContent) >= 1);
  // The charts drew the calls and their quality.
  await page.waitForFunction(() => /: [1-9]\d* calls?,/.test(document.querySelector('#chart-cpm').getAttribute('aria-label')),
    null, { timeout: 30000 });
  await page.waitForFunction(() => / from [1-9]\d* samples?$/.test(document.querySelector('#chart-mos').getAttribute('aria-label')),
    null, { timeout: 30000 });
  await snap('call-ended');
  check(loads === 1, `the page never reloaded (${loads} loads)`);
});
