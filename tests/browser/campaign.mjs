// The dashboard's campaign controls against a running engine (`switchboard demo`): the demo
// campaign, being dialed, is paused from the UI (the Rust side then reads it over REST and
// checks that the engine starts no more of its calls); started again over REST, the page
// learns it from the engine's `campaignStarted`.

import { run, step, check, signIn, env } from './lib.mjs';

run('campaign', async ({ page, snap, base }) => {
  await page.goto(`${base}/`);
  // A wrong password is refused on the form.
  await signIn(page, env('SB_EMAIL'), 'not-the-password');
  await page.locator('[data-testid="login-error"]', { hasText: 'Wrong e-mail or password' }).waitFor();
  check(await page.getByTestId('dashboard').isHidden(), 'nothing is shown without a session');
  await signIn(page, env('SB_EMAIL'), env('SB_PASSWORD'));
  await page.locator('#app[data-loaded="true"]').waitFor();
  const row = page.locator(`[data-testid="campaign-row"][data-campaign-id="${env('SB_CAMPAIGN_ID')}"]`);
  await row.waitFor();
  check(await row.getAttribute('data-status') === 'active', 'the campaign starts active');
  check((await row.getByTestId('campaign-status').textContent()).trim() === 'active', 'its badge reads active');
  check((await row.locator('[data-cell="mode"]').textContent()).trim() === 'predictive', 'it dials predictively');
  // The engine is dialing it: its calls reach the page.
  await page.locator('#event-log li[data-kind^="call"]').first().waitFor({ timeout: 90000 });
  await snap('active');
  const pause = row.getByRole('button', { name: /^Pause campaign/ });
  check(await pause.getAttribute('data-testid') === 'campaign-pause', 'the button is the pause control');
  await pause.click();
  await page.locator(`[data-testid="campaign-row"][data-campaign-id="${env('SB_CAMPAIGN_ID')}"][data-status="paused"]`).waitFor();
  check((await row.getByTestId('campaign-status').textContent()).trim() === 'paused', 'its badge reads paused');
  await row.getByTestId('campaign-start').waitFor();
  check((await page.getByTestId('campaigns-error').textContent()) === '', 'no error was shown');
  await page.locator('#event-log li[data-kind="campaignPaused"]').waitFor();
  await snap('paused');
  // The Rust side checks the API and that the engine stops dialing it.
  await step('paused');

  // Started again elsewhere: the engine's `campaignStarted` brings the change to the page.
  // Resumed right after the page's periodic (30 s) refresh of the list, so only the event can
  // show it within the next 25 s.
  await page.waitForRequest((r) => r.method() === 'GET' && r.url().includes('/api/campaigns?'), { timeout: 45000 });
  const resumed = await step('resume');
  check(resumed.status === 'active', `the campaign was started again (${resumed.status})`);
  await page.locator('#event-log li[data-kind="campaignStarted"]').first().waitFor({ timeout: 25000 });
  await page.locator(`[data-testid="campaign-row"][data-campaign-id="${env('SB_CAMPAIGN_ID')}"][data-status="active"]`)
    .waitFor({ timeout: 25000 });
  await row.getByTestId('campaign-pause').waitFor();
  await snap('resumed');
});
