/**
 * Issue 9, test 5: the dashboard in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against a real `ebb serve`. Signing in with the form (a wrong secret refused
 * first), the page shows a target go healthy → draining → gone as it happens (deregistered from the
 * page with a short delay while a slow request is in flight), the drain's chart draws, and
 * screenshots are saved to test-artifacts/ (dashboard-draining.png while it drains, dashboard.png
 * after). The one-time sign-in link `ebb dashboard` prints signs a fresh browser in once;
 * signing out ends the session; a library that fails to load is reported on the page, not left blank.
 *
 * Never skipped: `npm test` installs Debian's chromium when it is missing (scripts/run-tests.mjs).
 * Elsewhere, EBB_CHROMIUM=/path/to/chrome.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { ACCESS_KEY_ID, SECRET_ACCESS_KEY } from './api-harness.ts';
import { sign } from './ebb-api-harness.ts';
import { Cleanup, CLI, freePort, REPO_ROOT, slowOn, startBackend, tempDir, writeConfig } from './harness.ts';
import { serve } from './process-harness.ts';

const CHROMIUM = process.env['EBB_CHROMIUM'] ?? '/usr/bin/chromium';
const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');

/** The states a target's row has shown, in order, as the page itself recorded them (every 20 ms). */
async function recordStates(page: Page, target: string): Promise<void> {
  // A string, not a function: tsx compiles functions with a name helper the page does not have.
  await page.evaluate(`(() => {
    window.__states = [];
    // Still here at the end: the page was never reloaded, so every change came over the event stream.
    window.__marker = 'same page';
    const look = () => {
      const row = document.querySelector('tr[data-target="${target}"]');
      const state = row === null ? 'absent' : row.getAttribute('data-state');
      if (window.__states.at(-1) !== state) window.__states.push(state);
    };
    look();
    setInterval(look, 20);
  })()`);
}

const statesOf = (page: Page): Promise<{ states: string[]; marker: string | undefined }> =>
  page.evaluate('({ states: window.__states, marker: window.__marker })');

/** How many pixels of the canvas inside `selector` are drawn (not transparent). */
const drawnPixels = (page: Page, selector: string): Promise<number> =>
  page.$eval(selector, (el) => {
    const canvas = el.querySelector('canvas');
    if (canvas === null) return 0;
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
    let n = 0;
    for (let i = 3; data !== undefined && i < data.length; i += 4) if ((data[i] ?? 0) > 0) n++;
    return n;
  });

test('the dashboard in headless Chromium: sign in, a target healthy → draining → gone live, the drain chart, screenshots', { timeout: 90_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  const A = await startBackend('A', c);
  const B = await startBackend('B', c);
  const listenerPort = await freePort();
  const config = await writeConfig(dir, { listenerPort, targets: [A.port, B.port], delaySeconds: 30 });
  const ebb = await serve(c, join(dir, 'state'), ['--config', config]);
  const targetA = `127.0.0.1:${A.port}`;

  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  c.add(() => browser.close());
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  const pageErrors: string[] = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(m.text());
  });
  let passed = false;
  // Runs before the browser closes: what the page showed when the test failed.
  c.add(async () => {
    if (passed) return;
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard-failure.png'), fullPage: true });
  });

  // Not signed in: the form. A wrong secret is refused on the form; the right one opens the page.
  await page.goto(`${ebb.endpoint}/dashboard/`);
  await page.fill('input[name=accessKeyId]', ACCESS_KEY_ID);
  await page.fill('input[name=secretAccessKey]', 'not-the-secret');
  await page.click('button[type=submit]');
  await page.waitForSelector('.notice.error');
  assert.match(await page.textContent('.notice.error') ?? '', /not ebb.s admin credentials/);
  await page.fill('input[name=secretAccessKey]', SECRET_ACCESS_KEY);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-live="live"]', { timeout: 10_000 });
  assert.equal(new URL(page.url()).pathname, '/dashboard/');
  // The refused attempt's 401 is the only error the console may have logged so far.
  pageErrors.splice(0, pageErrors.length, ...pageErrors.filter((e) => !e.includes('401')));

  const [cookie] = await context.cookies();
  assert.ok(cookie !== undefined && cookie.name.startsWith('ebb_session_'));
  assert.equal(cookie.httpOnly, true);
  assert.equal(cookie.sameSite, 'Strict');
  assert.equal(cookie.path, '/');
  assert.ok(!(await page.content()).includes(SECRET_ACCESS_KEY), 'the secret is nowhere in the page');

  // The tree: the load balancer, its listener, the group and both targets.
  await page.waitForSelector(`[data-load-balancer="web"] [data-target-group="web"] tr[data-target="${targetA}"]`);
  await recordStates(page, targetA);
  // Health checks every 5 s, healthy after 2: the page shows it when it happens.
  await page.waitForSelector(`tr[data-target="${targetA}"][data-state="healthy"]`, { timeout: 20_000 });
  await page.waitForSelector(`tr[data-target="127.0.0.1:${B.port}"][data-state="healthy"]`, { timeout: 20_000 });

  // A slow request on A, then deregister A from the page with its own short delay.
  const slow = await slowOn(listenerPort, A, B, 2500);
  const row = `tr[data-target="${targetA}"]`;
  await page.click(`${row} [data-action="deregister-open"]`);
  await page.fill(`${row} input[name=delay]`, '8');
  const deregisteredAt = Date.now();
  await page.click(`${row} [data-action="deregister"]`);
  await page.waitForSelector(`${row}[data-state="draining"]`, { timeout: 3_000 });
  const drainingSeenMs = Date.now() - deregisteredAt;
  assert.equal(await page.textContent(`${row} [data-field="inflight"]`), '1', 'the request in flight is shown on the draining target');
  // The live chart has a few samples while the request is still in flight.
  await page.waitForFunction((sel) => Number((globalThis as any).document.querySelector(sel)?.getAttribute('data-samples') ?? 0) >= 3, `[data-drain-chart="live ${targetA}"]`, { timeout: 5_000 });
  await page.waitForSelector(`${row} .drain-progress`);
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-draining.png'), fullPage: true });

  const done = await slow.done;
  assert.equal(done.reply?.status, 200, 'the in-flight request finished');
  await page.waitForSelector(`${row}[data-state="gone"]`, { timeout: 5_000 });
  const goneMs = Date.now() - deregisteredAt;
  assert.ok(goneMs < 6_000, `the drain ended with its request (${goneMs} ms), not at the 8 s delay`);

  // The record of the drain, ended idle, with its chart drawn.
  const record = `[data-record="${targetA}"][data-outcome="idle"]`;
  await page.waitForSelector(`${record} [data-drain-chart] canvas`, { timeout: 5_000 });
  const samples = Number(await page.getAttribute(`${record} [data-drain-chart]`, 'data-samples'));
  assert.ok(samples >= 5, `the record keeps the drain's samples (${samples})`);
  assert.ok((await drawnPixels(page, `${record} [data-drain-chart]`)) > 500, 'the drain chart is drawn');
  await page.waitForSelector('[data-event="drain:end"]');

  const { states, marker } = await statesOf(page);
  assert.equal(marker, 'same page', 'the page was never reloaded');
  const seen = states.filter((s) => s === 'healthy' || s === 'draining' || s === 'gone');
  assert.deepEqual(seen.slice(seen.indexOf('healthy')), ['healthy', 'draining', 'gone'], `states in order: ${states.join(' → ')}`);
  assert.ok(drainingSeenMs < 2_000, `draining shown ${drainingSeenMs} ms after the click`);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // `ebb dashboard`'s link: a signed call makes it; it signs a fresh browser in once.
  const mintLink = async (): Promise<{ url: string; expiresAt: string }> => {
    const body = '{}';
    const headers = await sign(ebb.endpoint, 'POST', '/ebb/v1/dashboard/sign-in-link', body, { 'content-type': 'application/json' }, {
      accessKeyId: ACCESS_KEY_ID,
      secretAccessKey: SECRET_ACCESS_KEY,
    });
    const res = await fetch(`${ebb.endpoint}/ebb/v1/dashboard/sign-in-link`, { method: 'POST', headers, body });
    assert.equal(res.status, 200);
    return (await res.json()) as { url: string; expiresAt: string };
  };
  // The link `ebb dashboard --json` prints (the command signs with the credentials in its environment).
  const printed = await new Promise<string>((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', CLI, 'dashboard', '--endpoint', ebb.endpoint, '--json'],
      { cwd: REPO_ROOT, env: { ...process.env, EBB_ACCESS_KEY_ID: ACCESS_KEY_ID, EBB_SECRET_ACCESS_KEY: SECRET_ACCESS_KEY }, timeout: 30_000 },
      (error, stdout, stderr) => (error === null ? resolve(stdout) : reject(new Error(`ebb dashboard: ${error.message}\n${stderr}`))),
    );
  });
  const link = JSON.parse(printed) as { url: string; expiresAt: string };
  assert.ok(link.url.startsWith(`${ebb.endpoint}/dashboard/sign-in?token=`), link.url);
  const fresh = await browser.newContext();
  const other = await fresh.newPage();
  await other.goto(link.url);
  await other.waitForSelector('[data-live="live"]', { timeout: 10_000 });
  assert.equal(new URL(other.url()).search, '', 'the token is not left in the address bar');
  const again = await (await browser.newContext()).newPage();
  await again.goto(link.url);
  assert.match((await again.textContent('.notice.error')) ?? '', /used already or has expired/);

  // Signing out ends the session: the page goes back to the form, and the cookie no longer reads ebb's API.
  await other.click('button:text("Sign out")');
  await other.waitForSelector('form[action="/dashboard/sign-in"]');
  assert.equal((await other.request.get(`${ebb.endpoint}/ebb/v1/status`)).status(), 403);

  // Never a blank page: a library that does not load is reported by the page itself.
  const broken = await browser.newContext();
  await broken.route('**/dashboard/assets/vendor/uplot.mjs', (r) => r.fulfill({ status: 404, body: '' }));
  const brokenPage = await broken.newPage();
  await brokenPage.goto(`${ebb.endpoint}${(await mintLink()).url}`);
  await brokenPage.waitForSelector('.fatal[role=alert]', { timeout: 20_000 });
  assert.match((await brokenPage.textContent('.fatal')) ?? '', /could not start/);

  assert.deepEqual(pageErrors, []);
  assert.deepEqual(ebb.proc.problems(), []);
  passed = true;
});
