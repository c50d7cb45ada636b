// The agent page: sign in as an agent, join, go available over the WebSocket, receive the
// screen pop with the lead's details, and post the disposition (the Rust side then reads
// the call and the agent over REST).

import { run, step, check, signIn, text, env } from './lib.mjs';

run('agent', async ({ page, snap, base }) => {
  await page.goto(`${base}/agent`);
  await page.getByTestId('login-form').waitFor();
  await snap('login');
  await signIn(page, env('SB_EMAIL'), env('SB_PASSWORD'));
  await page.locator('#app[data-joined="true"]').waitFor();
  await page.locator('[data-testid="ws-status"][data-state="live"]').waitFor();
  check(await text(page, 'agent-name') === env('SB_AGENT_NAME'), 'the page found the user\'s agent');
  check(await page.getByTestId('waiting').isVisible(), 'it waits for a call');

  await page.getByTestId('status-available').click();
  await page.locator('#app[data-status="available"]').waitFor();
  check(await page.getByTestId('status-available').getAttribute('aria-pressed') === 'true', 'available is pressed');
  await snap('available');

  // The engine connects a call to this agent.
  const call = await step('pop');
  const pop = page.locator(`[data-testid="screen-pop"][data-call-id="${call.callId}"]`);
  await pop.waitFor();
  check(await text(page, 'pop-name') === `${call.first_name} ${call.last_name}`, 'the pop names the lead');
  check(await text(page, 'pop-phone') === call.phone, 'the pop shows the number');
  check(await text(page, 'pop-notes') === call.notes, 'the pop shows the notes');
  if (call.campaign) check(await text(page, 'pop-campaign') === call.campaign, 'the pop names the campaign');
  for (const [k, v] of Object.entries(call.custom_fields || {})) {
    const dl = page.getByTestId('pop-fields');
    check((await dl.textContent()).includes(String(v)), `the pop shows ${k}`);
  }
  check(await text(page, 'call-state') === 'on call', 'the call is live');
  const source = await pop.getAttribute('data-source');
  check(source === env('SB_POP_SOURCE'), `the pop came from ${env('SB_POP_SOURCE')}, not ${source}`);
  await snap('screen-pop');

  await page.getByLabel('Disposition').selectOption(env('SB_DISPOSITION'));
  await page.getByLabel('Notes').fill(env('SB_NOTES'));
  await page.getByTestId('disposition-submit').click();
  await page.locator('[data-testid="disposition-result"]', { hasText: 'Saved' }).waitFor();
  await page.locator('[data-testid="call-state"]', { hasText: 'ended' }).waitFor();
  check(await pop.getAttribute('data-state') === 'done', 'the pop is wrapped up');
  await snap('disposition');
  await page.getByTestId('pop-close').click();
  check(await page.getByTestId('waiting').isVisible(), 'ready for the next call');
  check((await page.getByTestId('recent-calls').textContent()).includes(env('SB_DISPOSITION')), 'the call is in this session\'s list');
});
