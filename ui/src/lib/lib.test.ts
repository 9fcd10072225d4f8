import { describe, expect, it } from 'vitest';
import { parseSse } from './api';
import { AMBER_ERROR_RATIO, RED_ERROR_RATIO, bandFor, formatRatio } from './health';
import { LiveStore } from './live';
import { SeriesBuilder } from './series';
import type { ConnectorFigures } from './types';

function conn(ok: number, failures: Record<string, number> = {}, extra: Partial<ConnectorFigures> = {}): ConnectorFigures {
  return { calls: 0, ok, failures, attempts: 0, retries: 0, token_refreshes: 0, rate_limited: 0, dlq: 0, circuit: 'closed', ...extra };
}

describe('parseSse', () => {
  it('splits named events, skips comments and keeps a partial frame for later', () => {
    const text = 'id: 1\nevent: hello\ndata: {"a":1}\n\n: keep-alive\n\nevent: tick\ndata: {"b":2}\n\nevent: ti';
    const { messages, rest } = parseSse(text);
    expect(messages.map((m) => [m.event, m.data])).toEqual([
      ['hello', { a: 1 }],
      ['tick', { b: 2 }],
    ]);
    expect(rest).toBe('event: ti');
    expect(messages[0].bytes).toBe('id: 1\nevent: hello\ndata: {"a":1}\n\n'.length);
  });
});

describe('health bands', () => {
  it('follows the thresholds, inclusive at the boundaries', () => {
    expect(bandFor(null)).toBe('idle');
    expect(bandFor(0)).toBe('healthy');
    expect(bandFor(AMBER_ERROR_RATIO - 1e-9)).toBe('healthy');
    expect(bandFor(AMBER_ERROR_RATIO)).toBe('degraded');
    expect(bandFor(RED_ERROR_RATIO)).toBe('failing');
    expect(formatRatio(null)).toBe('no traffic');
    expect(formatRatio(0.25)).toBe('25% errors');
  });
});

describe('SeriesBuilder', () => {
  it('turns cumulative counters into rates, new classes start at zero, resets count from zero', () => {
    const b = new SeriesBuilder();
    b.add(100, { 's:a': conn(0) });
    b.add(101, { 's:a': conn(10, {}, { retries: 2 }) });
    b.add(103, { 's:a': conn(30, { rate_limit: 4 }, { retries: 2, dlq: 1 }) });
    b.add(104, { 's:a': conn(5, { rate_limit: 1 }) }); // the counters went down: a new run
    const s = b.connectors.get('s:a')!;
    expect(s.t).toEqual([100, 101, 103, 104]);
    expect(s.ok).toEqual([0, 10, 10, 5]);
    expect(s.retries).toEqual([0, 2, 0, 0]);
    expect(s.failures.get('rate_limit')).toEqual([0, 0, 2, 1]);
    expect(s.dlq).toEqual([0, 0, 1, 0]);
  });
});

describe('LiveStore', () => {
  it('follows hello, ticks, a run and its verdict', () => {
    const store = new LiveStore();
    let changes = 0;
    store.subscribe(() => (changes += 1));
    store.handle({ event: 'hello', bytes: 10, data: { runs: [], timers: {}, invariants: ['no_lost_writes'], last_tick: null, running: null } });
    expect(store.invariantNames).toEqual(['no_lost_writes']);
    const tick = (t: number, ok: number) => ({
      t,
      run: { id: 'r1', scenario: 'storm', mode: 'storm', profile: 'full', phase: 'running', elapsed: t, duration: 10, writes_issued: 0, surfaced: {} },
      chaos: { level: 'storm', services: {} },
      farm_error: null,
      services: {},
      faults: {},
      connectors: { 'stripe:acme': conn(ok) },
      workflows: {},
      topology: { window_seconds: 10, nodes: [], edges: [] },
    });
    store.handle({ event: 'run', bytes: 10, data: { id: 'r1', status: 'running', scenario: 'storm', mode: 'storm', profile: 'full', error: null, t: 1 } });
    store.handle({ event: 'tick', bytes: 100, data: tick(1, 0) });
    store.handle({ event: 'tick', bytes: 100, data: tick(2, 7) });
    expect(store.runId).toBe('r1');
    expect(store.series.connectors.get('stripe:acme')!.ok).toEqual([0, 7]);
    store.handle({ event: 'verdict', bytes: 50, data: { run_id: 'r1', verdict: 'PASSED', invariants: [], totals: {}, dlq: {} } });
    expect(store.verdict?.verdict).toBe('PASSED');
    expect(store.runs.find((r) => r.id === 'r1')?.verdict).toBe('PASSED');
    expect(store.bytes).toBe(270);
    expect(changes).toBe(5);
    // The next run starts its series over.
    store.handle({ event: 'run', bytes: 10, data: { id: 'r2', status: 'running', scenario: 'storm', mode: 'storm', profile: 'naive', error: null, t: 3 } });
    expect(store.verdict).toBeNull();
    expect(store.series.connectors.size).toBe(0);
  });
});

describe('LiveStore hello after a run', () => {
  it('starts with the last verdict when nothing runs', () => {
    const store = new LiveStore();
    const verdict = { run_id: 'r9', verdict: 'FAILED', invariants: [{ name: 'bounded_dlq', status: 'fail', detail: '' }], totals: {}, dlq: {} };
    store.handle({ event: 'hello', bytes: 1, data: { runs: [], timers: {}, invariants: [], last_tick: null, running: null, verdict } });
    expect(store.verdict?.verdict).toBe('FAILED');
    expect(store.runId).toBe('r9');
  });
});

describe('queueDraw', () => {
  it('draws each chart once with its latest data, spread over frames', async () => {
    const { queueDraw, pendingDraws } = await import('./drawQueue');
    const drawn: string[] = [];
    const a = {};
    const b = {};
    queueDraw(a, () => drawn.push('a1'));
    queueDraw(b, () => drawn.push('b1'));
    queueDraw(a, () => drawn.push('a2'));
    expect(pendingDraws()).toBe(2);
    await new Promise((r) => setTimeout(r, 100));
    expect(drawn.sort()).toEqual(['a2', 'b1']);
    expect(pendingDraws()).toBe(0);
  });
});
