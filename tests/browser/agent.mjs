// The agent page against a running engine (`switchboard demo`): the owner (a supervisor may
// take calls as any agent) opens `/agent?agent=ID`, joins as one of the demo's simulated
// agents, receives the screen pop from the engine's `incoming:call` when a real call is
// bridged to that agent, asks for a break after this call, and posts the disposition with
// notes (the Rust side then reads the call and the agent over REST).

import { run, step, check, signIn, text, env } from './lib.mjs';

// Waiting for the engine to bridge a call to this agent (AMD, ringing, the other agent).
const POP = 150000;

run('agent', async ({ page, snap, base }) => {
  // Every status the page shows, in order.
  await page.addInitScript(() => {
    window.sbStatuses = [];
    document.addEventListener('DOMContentLoaded', () => {
      const app = document.getElementById('app');
      new MutationObserver(() => window.sbStatuses.push(app.dataset.status))
        .observe(app, { attributes: true, attributeFilter: ['data-status'] });
    });
  });
  await page.goto(`${base}/agent?agent=${encodeURIComponent(env('SB_AGENT_ID'))}`);
  await page.getByTestId('login-form').waitFor();
  await snap('login');
  await signIn(page, env('SB_EMAIL'), env('SB_PASSWORD'));
  await page.locator('#app[data-joined="true"]').waitFor();
  await page.locator('[data-testid="ws-status"][data-state="live"]').waitFor();
  check(await text(page, 'agent-name') === env('SB_AGENT_NAME'), 'the page joined as the agent asked for');
  check((await text(page, 'whoami')).endsWith('owner'), 'signed in as the owner');
  await snap('joined');

  // The engine bridges a call to this agent.
  const pop = page.locator(`[data-testid="screen-pop"][data-source="${env('SB_POP_SOURCE')}"]`);
  await pop.waitFor({ state: 'visible', timeout: POP });
  const callId = await pop.getAttribute('data-call-id');
  check(Boolean(callId), 'the pop names its call');
  check(await text(page, 'call-state') === 'on call', 'the call is live');
  // No next call until this one is wrapped up: a break after it.
  await page.getByTestId('status-break').click();
  const shown = {
    name: await text(page, 'pop-name'),
    phone: await text(page, 'pop-phone'),
    notes: await text(page, 'pop-notes'),
    campaign: await text(page, 'pop-campaign'),
    fields: (await page.getByTestId('pop-fields').textContent()) || '',
  };

  await page.getByLabel('Disposition').selectOption(env('SB_DISPOSITION'));
  await page.getByLabel('Notes').fill(env('SB_NOTES'));
  await snap('screen-pop');
  check(await pop.getAttribute('data-call-id') === callId, 'still the same call');
  await page.getByTestId('disposition-submit').click();
  await page.locator('[data-testid="disposition-result"]', { hasText: 'Saved' }).waitFor({ timeout: 30000 });
  await page.locator('[data-testid="call-state"]', { hasText: 'ended' }).waitFor({ timeout: 30000 });
  check(await pop.getAttribute('data-state') === 'done', 'the pop is wrapped up');
  check(await pop.getAttribute('data-call-id') === callId, 'the disposition went to the popped call');
  await snap('disposition');

  // What the pop showed is the lead the engine called.
  const lead = await step('lead', { callId });
  check(lead.agentId === env('SB_AGENT_ID'), `the call was bridged to this agent (${lead.agentId})`);
  check(shown.name === `${lead.first_name} ${lead.last_name}`, `the pop names the lead (${shown.name})`);
  check(shown.phone === lead.phone, `the pop shows the number (${shown.phone})`);
  check(shown.notes === (lead.notes || '—'), `the pop shows the notes (${shown.notes})`);
  check(shown.campaign === lead.campaign, `the pop names the campaign (${shown.campaign})`);
  for (const [k, v] of Object.entries(lead.custom_fields || {})) {
    check(shown.fields.includes(typeof v === 'object' ? JSON.stringify(v) : String(v)), `the pop shows ${k}`);
  }

  // The engine said the agent was busy on the call; the break holds once it is over.
  await page.locator('#app[data-status="break"]').waitFor({ timeout: 30000 });
  const statuses = await page.evaluate(() => window.sbStatuses);
  check(statuses.includes('busy'), `the page showed the agent busy (${statuses.join(' → ')})`);
  await page.getByTestId('pop-close').click();
  check(await page.getByTestId('waiting').isVisible(), 'ready for the next call');
  check((await page.getByTestId('recent-calls').textContent()).includes(env('SB_DISPOSITION')), 'the call is in this session\'s list');
  await snap('break');
});
