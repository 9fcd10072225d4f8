// How heavy is the live console? With the page open, measure for $PERF_SECONDS while nothing
// runs (the baseline: 9 services ticking once a second), then while a storm drives
// $PERF_CONNECTORS connectors: SSE bytes per second (the backend's own counter), the page's
// main-thread time per second (CDP Performance.getMetrics: ScriptDuration, TaskDuration,
// LayoutDuration, RecalcStyleDuration) and its frame intervals (requestAnimationFrame).
// Prints one JSON line "PERF {...}" and writes $CONSOLE_OUT/perf.json.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { launch, need, outDir, step, watchErrors } from './browser.mjs';

const base = need('CONSOLE_URL');
const code = need('CONSOLE_LOGIN_CODE');
const token = need('CONSOLE_TOKEN');
const connectors = Number(need('PERF_CONNECTORS'));
const seconds = Number(process.env.PERF_SECONDS || '20');
const spec = JSON.parse(need('PERF_SCENARIO'));
const out = outDir();
const T = { timeout: 60_000 };
const auth = { Authorization: `Bearer ${token}` };

async function serverBytes() {
  const r = await fetch(`${base}/api/figures`, { headers: auth });
  return (await r.json()).bytes_sent;
}

function quantile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

async function measure(page, cdp, label) {
  const metrics = async () =>
    Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((m) => [m.name, m.value]));
  await page.evaluate(() => {
    window.__frames = [];
    const loop = (t) => {
      window.__frames.push(t);
      window.__raf = requestAnimationFrame(loop);
    };
    window.__raf = requestAnimationFrame(loop);
  });
  const m0 = await metrics();
  const b0 = await serverBytes();
  const t0 = Date.now();
  await page.waitForTimeout(seconds * 1000);
  const m1 = await metrics();
  const b1 = await serverBytes();
  const wall = (Date.now() - t0) / 1000;
  const frames = await page.evaluate(() => {
    cancelAnimationFrame(window.__raf);
    const f = window.__frames;
    return f.slice(1).map((t, i) => t - f[i]);
  });
  const sorted = [...frames].sort((a, b) => a - b);
  const perSecond = (name) => Math.round(((m1[name] - m0[name]) / wall) * 1000 * 10) / 10;
  const result = {
    label,
    seconds: Math.round(wall * 10) / 10,
    sse_bytes_per_second: Math.round((b1 - b0) / wall),
    script_ms_per_second: perSecond('ScriptDuration'),
    task_ms_per_second: perSecond('TaskDuration'),
    layout_ms_per_second: perSecond('LayoutDuration'),
    style_ms_per_second: perSecond('RecalcStyleDuration'),
    frames: frames.length,
    frame_ms_p50: Math.round(quantile(sorted, 0.5) * 10) / 10,
    frame_ms_p95: Math.round(quantile(sorted, 0.95) * 10) / 10,
    frame_ms_p99: Math.round(quantile(sorted, 0.99) * 10) / 10,
    frame_ms_max: Math.round(sorted[sorted.length - 1] * 10) / 10,
    frames_over_50ms: frames.filter((f) => f > 50).length,
    js_heap_mb: Math.round((m1.JSHeapUsedSize / 1e6) * 10) / 10,
  };
  step(`${label}: ${JSON.stringify(result)}`);
  return result;
}

const browser = await launch();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  watchErrors(page, errors);
  await page.goto(`${base}/#login=${code}`);
  await page.locator('[data-testid=stream-status][data-status=open]').waitFor(T);
  await page.getByTestId('topology').waitFor(T);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');

  step(`baseline: the console open, nothing running, ${seconds} s`);
  const idle = await measure(page, cdp, 'idle');

  step(`a storm on ${connectors} connectors`);
  const started = await fetch(`${base}/scenarios/run`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ spec, profile: 'full' }),
  });
  assert.equal(started.status, 202);
  const runId = (await started.json()).run_id;
  await page.locator('[data-testid=run-status][data-phase=running]').waitFor(T);
  await page.waitForFunction((n) => document.querySelectorAll('[data-testid^=connector-card-]').length >= n, connectors, T);
  await page.waitForFunction(
    (n) => document.querySelectorAll('[data-testid^=topo-node-conn]').length >= n,
    connectors,
    T,
  );
  const live = await measure(page, cdp, 'live');
  const cards = await page.locator('[data-testid^=connector-card-]').count();
  const services = await page.locator('[data-testid^=topo-node-svc]').count();
  await page.evaluate(() => [window, ...document.querySelectorAll('.side')].forEach((e) => e.scrollTo(0, 0)));
  await page.screenshot({ path: join(out, `console-${connectors}-connectors.png`) });

  // The same ticks again with the backend idle: the page's own cost, without the storm's
  // farm, runner and 40 connectors competing with Chromium for the machine's cores.
  await fetch(`${base}/api/runs/stop`, { method: 'POST', headers: auth });
  await page.locator('[data-testid=run-status]:not([data-phase=running])').waitFor(T);
  const stored = await (await fetch(`${base}/api/runs/${runId}/events?kinds=tick`, { headers: auth })).json();
  const ticks = stored.events.filter((e) => e.data.run).map((e) => ({ ...e.data, t: e.t }));
  assert.ok(ticks.length >= seconds, `only ${ticks.length} ticks stored`);
  step(`replay: ${ticks.length} recorded ticks fed to the page once a second, backend idle`);
  await page.evaluate(
    ({ ticks, seconds }) => {
      const live = window.__gauntletLive;
      live.stop();
      live.status = 'open';
      live.runId = null;
      let i = 0;
      const feed = () => {
        const tick = ticks[i % ticks.length];
        const shifted = { ...tick, t: Date.now() / 1000 };
        live.handle({ event: 'tick', data: shifted, bytes: JSON.stringify(tick).length });
        i += 1;
      };
      feed();
      window.__feed = setInterval(feed, 1000);
      setTimeout(() => clearInterval(window.__feed), (seconds + 10) * 1000);
    },
    { ticks, seconds },
  );
  // The first replayed tick rebuilds every chart (a new series): leave that out of the window.
  await page.waitForTimeout(3000);
  const replay = await measure(page, cdp, 'replay');
  const report = {
    connectors: cards,
    services,
    idle,
    live,
    replay,
    ratios: {
      sse_bytes: Math.round((live.sse_bytes_per_second / Math.max(idle.sse_bytes_per_second, 1)) * 100) / 100,
      script: Math.round((live.script_ms_per_second / Math.max(idle.script_ms_per_second, 0.1)) * 100) / 100,
      task: Math.round((live.task_ms_per_second / Math.max(idle.task_ms_per_second, 0.1)) * 100) / 100,
      replay_script: Math.round((replay.script_ms_per_second / Math.max(idle.script_ms_per_second, 0.1)) * 100) / 100,
      replay_task: Math.round((replay.task_ms_per_second / Math.max(idle.task_ms_per_second, 0.1)) * 100) / 100,
    },
  };
  writeFileSync(join(out, 'perf.json'), JSON.stringify(report, null, 2));
  console.log(`PERF ${JSON.stringify(report)}`);
  assert.deepEqual(errors, [], 'no page error');
  step('ok');
} finally {
  await browser.close();
}
