// The live state of the console, fed by the one event stream; React reads it with
// useSyncExternalStore. Charts read the series arrays directly (no copies per tick).
import { useSyncExternalStore } from 'react';
import { api, openStream, type SseMessage } from './api';
import { SeriesBuilder } from './series';
import type { RunEvent, RunRow, StoredEvent, Tick, Verdict } from './types';

export type StreamStatus = 'connecting' | 'open' | 'closed' | 'unauthorized';

export interface ChaosNotice {
  level: string;
  service: string | null;
  reason: string;
  t: number;
  timers: Record<string, number>;
}

export class LiveStore {
  version = 0;
  status: StreamStatus = 'connecting';
  tick: Tick | null = null;
  runId: string | null = null;
  runStatus: RunEvent | null = null;
  verdict: Verdict | null = null;
  series = new SeriesBuilder();
  runs: RunRow[] = [];
  chaosLog: ChaosNotice[] = [];
  timers: Record<string, number> = {};
  invariantNames: string[] = [];
  /** SSE bytes received, and when counting started (for the bytes-per-second figure). */
  bytes = 0;
  since = Date.now();
  private listeners = new Set<() => void>();
  private abort: AbortController | null = null;

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getVersion = (): number => this.version;

  private changed(): void {
    this.version += 1;
    for (const fn of this.listeners) fn();
  }

  start(): void {
    this.stop();
    this.abort = new AbortController();
    void openStream(
      (m) => this.handle(m),
      (s) => {
        this.status = s;
        this.changed();
      },
      this.abort.signal,
    );
  }

  stop(): void {
    this.abort?.abort();
    this.abort = null;
  }

  /** Start the series of run `id` over, from its stored ticks (a reload in the middle of a run). */
  async backfill(id: string): Promise<void> {
    const body = await api<{ events: StoredEvent[] }>(`/api/runs/${encodeURIComponent(id)}/events?kinds=tick`);
    if (this.runId !== id) return;
    const fresh = SeriesBuilder.fromTicks(
      body.events.filter((e) => e.data.run).map((e) => ({ t: e.t, connectors: e.data.connectors })),
    );
    const lastStored = body.events.length ? body.events[body.events.length - 1].t : 0;
    // Ticks that arrived while the request ran are newer than the stored ones: keep them.
    for (const [cid, s] of this.series.connectors) {
      if (!fresh.connectors.has(cid)) fresh.connectors.set(cid, s);
    }
    void lastStored;
    this.series = fresh;
    this.changed();
  }

  handle(m: SseMessage): void {
    this.bytes += m.bytes;
    const d = m.data;
    switch (m.event) {
      case 'hello':
        this.runs = d.runs ?? [];
        this.timers = d.timers ?? {};
        this.invariantNames = d.invariants ?? [];
        if (d.last_tick) this.applyTick(d.last_tick as Tick);
        if (d.running) {
          this.runId = d.running;
          void this.backfill(d.running).catch(() => undefined);
        } else if (d.verdict) {
          // Nothing running: show the last run as it ended (its verdict and its charts).
          this.verdict = d.verdict as Verdict;
          this.runId = d.verdict.run_id;
          void this.backfill(d.verdict.run_id).catch(() => undefined);
        }
        break;
      case 'tick':
        this.applyTick(d as Tick);
        break;
      case 'run': {
        const ev = d as RunEvent;
        if (ev.status === 'running' && this.runId !== ev.id) {
          this.runId = ev.id;
          this.series = new SeriesBuilder();
          this.verdict = null;
        }
        if (ev.id === this.runId || ev.status === 'running') this.runStatus = ev;
        const i = this.runs.findIndex((r) => r.id === ev.id);
        const row: RunRow = { ...(i >= 0 ? this.runs[i] : {}), ...ev } as RunRow;
        if (i >= 0) this.runs[i] = row;
        else this.runs.unshift(row);
        this.runs = [...this.runs];
        break;
      }
      case 'verdict':
        this.verdict = d as Verdict;
        this.runs = this.runs.map((r) => (r.id === d.run_id ? { ...r, verdict: d.verdict, status: 'done' } : r));
        break;
      case 'chaos':
        this.chaosLog = [d as ChaosNotice, ...this.chaosLog].slice(0, 20);
        this.timers = d.timers ?? {};
        break;
      default:
        return;
    }
    this.changed();
  }

  private applyTick(tick: Tick): void {
    this.tick = tick;
    if (tick.run) {
      if (this.runId !== tick.run.id) {
        this.runId = tick.run.id;
        this.series = new SeriesBuilder();
        this.verdict = null;
      }
      this.series.add(tick.t, tick.connectors);
    }
  }

  bytesPerSecond(): number {
    const seconds = (Date.now() - this.since) / 1000;
    return seconds > 0 ? this.bytes / seconds : 0;
  }
}

export const live = new LiveStore();

export function useLive(store: LiveStore = live): LiveStore {
  useSyncExternalStore(store.subscribe, store.getVersion);
  return store;
}

/**
 * One value of the live state: the component re-renders only when it changes (compared with
 * Object.is, so select a primitive, e.g. a flag or a JSON string), not on every tick.
 */
export function useLiveValue<T>(select: (s: LiveStore) => T, store: LiveStore = live): T {
  return useSyncExternalStore(store.subscribe, () => select(store));
}

// The live store on window, for the performance measurement (ui/e2e/perf.mjs replays recorded
// ticks through it). It holds nothing the page does not already show; the token is not in it.
if (typeof window !== 'undefined') (window as unknown as { __gauntletLive: LiveStore }).__gauntletLive = live;
