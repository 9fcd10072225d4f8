// The console end to end against a real farm and backend (started by
// tests/console/test_console_browser.py): sign in with the one-time link, set chaos and see the
// farm's status change, launch a short storm, watch a node turn amber or red and recover, read
// the verdict and the invariant table (the node recovers under a calm run; the kill switch stops
// that run), export the HTML report and open it offline, switch theme, look at the services page. Screenshots go to $CONSOLE_OUT.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, need, outDir, step, watchErrors } from './browser.mjs';

const base = need('CONSOLE_URL'); // http://127.0.0.1:<port>
const code = need('CONSOLE_LOGIN_CODE');
const duration = Number(process.env.CONSOLE_RUN_SECONDS || '15');
const out = outDir();
const T = { timeout: 30_000 };

const browser = await launch();
const errors = [];
try {
  const context = await browser.newContext({ viewport: { width: 1600, height: 1000 }, acceptDownloads: true });
  const page = await context.newPage();
  watchErrors(page, errors);

  step('the login form without a code; a wrong token is refused');
  await page.goto(`${base}/`);
  await page.getByTestId('login-token').fill('not-the-token');
  await page.getByTestId('login-submit').click();
  await page.getByTestId('login-error').waitFor(T);
  errors.length = 0; // the browser logs the refused request (403) on purpose here

  step('sign in with the one-time link: the code leaves the address bar at once');
  await page.goto(`${base}/#login=${code}`);
  await page.locator('[data-testid=stream-status][data-status=open]').waitFor(T);
  assert.ok(!page.url().includes(code), `the code is still in ${page.url()}`);
  await page.getByTestId('topology').waitFor(T);
  await page.locator('[data-testid^=invariant-]').first().waitFor(T);

  step('chaos: hell on stripe only, and the farm says so');
  await page.getByTestId('chaos-scope').selectOption('stripe');
  await page.getByTestId('chaos-level').selectOption('hell');
  await page.locator('[data-testid=chaos-auto-off]').fill('0');
  await page.getByTestId('chaos-apply').click();
  await page.locator('[data-testid=chaos-service-stripe][data-level=hell]').waitFor(T);
  await page.locator('[data-testid=chaos-service-salesforce][data-level=calm]').waitFor(T);
  step('kill switch: the whole farm off');
  await page.getByTestId('chaos-kill').click();
  await page.locator('[data-testid=chaos-status][data-level=off]').waitFor(T);
  await page.locator('[data-testid=chaos-service-stripe][data-level=off]').waitFor(T);

  step(`launch the storm scenario for ${duration} s with the full AAM`);
  await page.getByTestId('launch-library').selectOption('storm');
  await page.locator('[data-testid=launch-duration]').fill(String(duration));
  await page.getByTestId('launch-profile').selectOption('full');
  await page.getByTestId('launch-compare').selectOption('');
  await page.getByTestId('launch-start').click();
  await page.getByTestId('launch-notice').waitFor(T);
  await page.locator('[data-testid=run-status][data-phase=running]').waitFor(T);

  step('a node turns amber or red under the storm');
  const hot = page.locator(
    '[data-testid^=topo-node-svc][data-state=failing], [data-testid^=topo-node-svc][data-state=degraded]',
  );
  await hot.first().waitFor({ timeout: 45_000 });
  const hotIds = await hot.evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')));
  step(`  hot: ${hotIds.join(', ')}`);
  const text = await page.getByTestId(hotIds[0].replace('topo-node-', 'topo-state-')).textContent();
  assert.match(text, /failing|degraded/, 'the state is written beside the colour');
  await page.locator('.chart-card').first().waitFor(T);
  // Ten seconds of storm in the charts before the screenshot (waits on the run's own clock).
  await page.waitForFunction(
    () => Number(document.querySelector('[data-testid=run-status]')?.getAttribute('data-elapsed')) >= 10,
    null,
    { timeout: 30_000 },
  );
  await page.evaluate(() => [window, ...document.querySelectorAll('.side')].forEach((e) => e.scrollTo(0, 0)));
  await page.screenshot({ path: join(out, 'console-storm.png') });

  step('chaos cannot be changed under a running scenario (it holds the farm)');
  await page.getByTestId('chaos-scope').selectOption('*');
  await page.getByTestId('chaos-level').selectOption('off');
  await page.getByTestId('chaos-apply').click();
  await page.getByTestId('chaos-error').waitFor(T);
  errors.length = 0; // the refused request (409) is logged by the browser on purpose

  step('the verdict and every invariant with pass / fail / not exercised');
  const verdict = page.getByTestId('verdict');
  await verdict.waitFor({ timeout: (duration + 90) * 1000 });
  const word = await verdict.getAttribute('data-verdict');
  assert.ok(word === 'PASSED' || word === 'FAILED', word);
  const statuses = await page
    .locator('[data-testid=invariant-table] tr[data-status]')
    .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-status')));
  assert.ok(statuses.length >= 8, `invariants: ${statuses}`);
  for (const s of statuses) assert.ok(['pass', 'fail', 'not_exercised'].includes(s), s);
  step(`  verdict ${word}; invariants ${statuses.join(' ')}`);
  await page.evaluate(() => [window, ...document.querySelectorAll('.side')].forEach((e) => e.scrollTo(0, 0)));
  await page.screenshot({ path: join(out, 'console.png') });
  const stormRun = (await page.getByTestId('verdict-run-link').getAttribute('href')).replace('#/runs/', '');

  step('a calm run after the storm: the same synthetic APIs recover to green');
  await page.getByTestId('launch-mode').selectOption('calm');
  await page.locator('[data-testid=launch-duration]').fill('20');
  await page.getByTestId('launch-start').click();
  await page.locator('[data-testid=run-status][data-phase=running]').waitFor(T);
  const recovered = hotIds.map((id) => `[data-testid="${id}"][data-state=healthy]`).join(', ');
  await page.locator(recovered).first().waitFor({ timeout: 45_000 });
  const back = await page.locator(recovered).evaluateAll((els) => els.map((e) => e.getAttribute('data-testid')));
  step(`  recovered: ${back.join(', ')}`);

  step('the kill switch stops the run and turns every service off');
  await page.getByTestId('chaos-kill').click();
  await page.locator('[data-testid=run-status][data-phase=error]').waitFor(T);
  await page.locator('[data-testid=chaos-status][data-level=off]').waitFor(T);

  step('the run page: charts rebuilt from stored events, fault ledger, DLQ');
  await page.goto(`${base}/#/runs/${stormRun}`);
  await page.getByTestId('run-page').waitFor(T);
  await page.getByTestId('run-verdict').waitFor(T);
  await page.locator('[data-testid^=connector-card-]').first().waitFor(T);
  await page.getByTestId('fault-ledger').waitFor(T);
  await page.getByTestId('dlq-count').waitFor(T);
  await page.screenshot({ path: join(out, 'console-run.png'), fullPage: true });

  step('a reload keeps the session and the run page');
  await page.reload();
  await page.getByTestId('run-page').waitFor(T);
  await page.locator('[data-testid^=connector-card-]').first().waitFor(T);

  step('export the HTML report and open it offline');
  const [download] = await Promise.all([page.waitForEvent('download', T), page.getByTestId('download-report').click()]);
  const reportPath = join(out, 'report.html');
  await download.saveAs(reportPath);
  const html = readFileSync(reportPath, 'utf8');
  assert.ok(!/<script|<link|<img|@import|url\(/.test(html), 'the report fetches nothing');
  const offline = await browser.newContext({ offline: true, viewport: { width: 1280, height: 900 } });
  const requests = [];
  offline.on('request', (r) => {
    if (!r.url().startsWith('file:')) requests.push(r.url());
  });
  const reportPage = await offline.newPage();
  await reportPage.goto(`file://${reportPath}`);
  assert.equal(await reportPage.getByTestId('report-verdict').textContent(), word);
  assert.ok((await reportPage.locator('svg polyline').count()) > 0, 'the report has its charts');
  assert.deepEqual(requests, [], 'the report made no request');
  await reportPage.screenshot({ path: join(out, 'report.png'), fullPage: false });
  await offline.close();

  step('switch to the light theme and back');
  await page.getByTestId('nav-live').click();
  await page.getByTestId('topology').waitFor(T);
  const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.getByTestId('theme-toggle').click();
  await page.locator('[data-testid=app][data-theme=white]').waitFor(T);
  const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(dark, light);
  await page.evaluate(() => [window, ...document.querySelectorAll('.side')].forEach((e) => e.scrollTo(0, 0)));
  await page.screenshot({ path: join(out, 'console-light.png') });
  await page.getByTestId('theme-toggle').click();
  await page.locator('[data-testid=app][data-theme=g100]').waitFor(T);

  step('the services page: auth, limits, dialect, schema, live counters');
  await page.getByTestId('nav-services').click();
  await page.locator('[data-testid^=service-row-stripe-]').first().waitFor(T);
  const calls = await page.locator('[data-testid^=service-row-stripe-acme] td.num').nth(1).textContent();
  assert.ok(Number(calls) > 0, `stripe/acme served ${calls} calls`);
  await page.screenshot({ path: join(out, 'console-services.png') });

  step('history: the run is listed');
  await page.getByTestId('nav-runs').click();
  await page.locator('[data-testid^=run-row-]').first().waitFor(T);

  assert.deepEqual(errors, [], 'no page error');
  step('ok');
} finally {
  await browser.close();
}
