// Shared by the browser scripts that tests/browser.rs runs against the real binary
// (`switchboard demo`: the engine dialing through the carrier simulator).
//
// Environment: SB_BASE_URL, SB_EMAIL, SB_PASSWORD, SB_SCREENSHOTS (a folder),
// SB_CHROMIUM (default /usr/bin/chromium), SB_TIMEOUT_MS (whole script, default 120000).
//
// Steps: a script that needs something from the Rust side prints `step NAME JSON` on stdout
// and reads one JSON line back on stdin (e.g. what the API says about a call it saw).

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';

export function env(name, fallback) {
  const v = process.env[name];
  if (v === undefined || v === '') {
    if (fallback === undefined) throw new Error(`${name} is not set`);
    return fallback;
  }
  return v;
}

const lines = createInterface({ input: process.stdin });
const waiting = [];
const buffered = [];
lines.on('line', (line) => {
  const w = waiting.shift();
  if (w) w(line);
  else buffered.push(line);
});

/** Asks the test driver to do `name`; resolves with its JSON answer. */
export async function step(name, data = {}) {
  process.stdout.write(`step ${name} ${JSON.stringify(data)}\n`);
  const line = buffered.length ? buffered.shift() : await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no answer to step ${name}`)), 60000);
    waiting.push((l) => {
      clearTimeout(t);
      resolve(l);
    });
  });
  const answer = JSON.parse(line);
  if (answer && answer.error) throw new Error(`step ${name}: ${answer.error}`);
  return answer;
}

export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

/**
 * Requests whose error responses are expected: optional endpoints the pages probe, and the
 * refused sign-in a script tries on purpose.
 */
const EXPECTED_ERRORS = ['/api/sip/status', '/api/health/sip', '/api/auth/login'];

/**
 * Launches Chromium, runs `fn({page, snap, base})`, screenshots each step and any failure,
 * and exits 0 on success, 1 on failure, 2 on timeout. Page errors, console errors and CSP
 * violations fail the script.
 */
export async function run(name, fn) {
  const timeout = Number(env('SB_TIMEOUT_MS', '120000'));
  const guard = setTimeout(() => {
    console.error(`${name}: timed out after ${timeout} ms`);
    process.exit(2);
  }, timeout);
  const base = env('SB_BASE_URL');
  const dir = env('SB_SCREENSHOTS');
  mkdirSync(dir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: env('SB_CHROMIUM', '/usr/bin/chromium'),
    headless: true,
    args: ['--headless=new', '--no-sandbox', '--disable-background-networking', '--disable-gpu',
      '--disable-dev-shm-usage', '--no-first-run', '--disable-component-update'],
    timeout: 30000,
  });
  let code = 1;
  const problems = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    page.setDefaultTimeout(30000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      if (m.type() !== 'error') return;
      const url = (m.location() && m.location().url) || '';
      if (m.text().startsWith('Failed to load resource') && EXPECTED_ERRORS.some((p) => url.includes(p))) return;
      problems.push(`console: ${m.text()} (${url})`);
    });
    let n = 0;
    const snap = async (label) => {
      n += 1;
      const file = join(dir, `${name}-${String(n).padStart(2, '0')}-${label}.png`);
      await page.screenshot({ path: file, fullPage: true });
      console.log(`screenshot ${file}`);
    };
    try {
      await fn({ page, snap, base });
      check(problems.length === 0, problems.join('; '));
      code = 0;
      console.log(`${name}: ok`);
    } catch (e) {
      console.error(`${name}: FAILED: ${e && e.stack ? e.stack : e}`);
      if (problems.length) console.error(problems.join('\n'));
      await snap('failure').catch(() => {});
    }
  } finally {
    await browser.close().catch(() => {});
    clearTimeout(guard);
    lines.close();
  }
  process.exit(code);
}

/** Signs in through the page's form. */
export async function signIn(page, email, password) {
  await page.getByLabel('E-mail').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByTestId('login-submit').click();
}

export async function text(page, testid) {
  return (await page.getByTestId(testid).first().textContent()).trim();
}
