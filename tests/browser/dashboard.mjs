// The supervisor dashboard: sign in, then a call placed by the engine appears in the active
// calls table over the WebSocket (no reload), its status and quality update live, and it
// leaves the table when it ends.

import { run, step, check, signIn, text, env } from './lib.mjs';

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
  check(await text(page, 'counter-active') === '0', 'no call is active yet');
  const agentRow = page.locator(`[data-testid="agent-row"][data-agent-id="${env('SB_AGENT_ID')}"]`);
  await agentRow.waitFor();
  check(await agentRow.getAttribute('data-status') === 'offline', 'the agent starts offline');
  await snap('signed-in');

  // An agent goes available: the agents table and counters follow.
  await step('agent-available');
  await page.locator(`[data-testid="agent-row"][data-agent-id="${env('SB_AGENT_ID')}"][data-status="available"]`).waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="agents-available"]').textContent === '1');
  await page.locator('#event-log li[data-kind="agent:status:updated"]').first().waitFor();

  // The engine places a call; the row must come from the socket.
  const call = await step('place-call');
  const row = call.callId
    ? page.locator(`[data-testid="call-row"][data-call-id="${call.callId}"]`)
    : page.locator('[data-testid="call-row"]', { hasText: call.phone });
  await row.waitFor();
  const id = await row.getAttribute('data-call-id');
  check(await row.getAttribute('data-source') === 'ws', 'the call arrived over the WebSocket');
  if (call.phone) {
    check((await row.getByTestId('call-phone').textContent()) === call.phone, `the row shows ${call.phone}`);
  }
  await page.waitForFunction(() => document.querySelector('[data-testid="counter-active"]').textContent === '1');
  await page.locator('#event-log li[data-kind="callInitiated"]').first().waitFor();
  // The duration runs on its own.
  const first = await row.getByTestId('call-duration').textContent();
  await page.waitForFunction(
    ([id, was]) => {
      const cell = document.querySelector(`[data-testid="call-row"][data-call-id="${id}"] [data-testid="call-duration"]`);
      return cell && cell.textContent !== was;
    },
    [id, first],
    { timeout: 5000 },
  );
  await snap('call-appears');

  // Answered, with live quality.
  await step('connect-call', { callId: id });
  await page.locator(`[data-testid="call-row"][data-call-id="${id}"][data-status="connected"]`).waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="counter-connected"]').textContent === '1');
  if (call.mos) {
    const want = Number(call.mos).toFixed(2);
    await page.waitForFunction(
      (w) => document.querySelector('[data-testid="call-row"] [data-testid="call-mos"]').textContent === w,
      want,
    );
    check(await text(page, 'counter-mos') === want, `the average MOS reads ${want}`);
  }
  await snap('call-connected');

  // Hung up: it leaves the table.
  await step('end-call', { callId: id });
  await page.locator(`[data-testid="call-row"][data-call-id="${id}"]`).waitFor({ state: 'detached' });
  await page.waitForFunction(() => document.querySelector('[data-testid="counter-active"]').textContent === '0');
  await page.locator('#event-log li[data-kind="callEnded"]').first().waitFor();
  check(Number(await text(page, 'counter-cpm')) >= 1, 'calls per minute counts the call');
  // The charts drew the call and its quality.
  await page.waitForFunction(() => /: 1 call,/.test(document.querySelector('#chart-cpm').getAttribute('aria-label')));
  if (call.mos) {
    const want = Number(call.mos).toFixed(2);
    await page.waitForFunction((w) => document.querySelector('#chart-mos').getAttribute('aria-label').includes(`${w} from`), want);
  }
  await snap('call-ended');
  check(loads === 1, `the page never reloaded (${loads} loads)`);
});
