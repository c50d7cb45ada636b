// The dashboard's campaign controls: an active campaign is paused from the UI (the Rust
// side then reads the campaign over REST).

import { run, check, signIn, env } from './lib.mjs';

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
});
