// Per-connector time series from cumulative tick counters: rates per second between samples.
import type { ConnectorFigures, Tick } from './types';

export interface ConnectorSeries {
  /** Unix seconds of each sample. */
  t: number[];
  ok: number[];
  /** Failed logical calls per second, by error class. */
  failures: Map<string, number[]>;
  retries: number[];
  tokenRefreshes: number[];
  /** DLQ entries so far (cumulative, not a rate). */
  dlq: number[];
  last: ConnectorFigures | null;
}

/** Most samples kept per connector (ten minutes at one a second). */
export const MAX_POINTS = 600;

function emptySeries(): ConnectorSeries {
  return { t: [], ok: [], failures: new Map(), retries: [], tokenRefreshes: [], dlq: [], last: null };
}

function rate(now: number, before: number, dt: number): number {
  const d = now >= before ? now - before : now; // a reset counts from zero
  return Math.round((d / dt) * 100) / 100;
}

function trim(s: ConnectorSeries): void {
  const extra = s.t.length - MAX_POINTS;
  if (extra <= 0) return;
  s.t.splice(0, extra);
  s.ok.splice(0, extra);
  s.retries.splice(0, extra);
  s.tokenRefreshes.splice(0, extra);
  s.dlq.splice(0, extra);
  for (const v of s.failures.values()) v.splice(0, extra);
}

export class SeriesBuilder {
  readonly connectors = new Map<string, ConnectorSeries>();
  private lastT: number | null = null;

  /** Add one sample (a tick's cumulative connector counters at time `t`). */
  add(t: number, connectors: Record<string, ConnectorFigures>): void {
    const dt = this.lastT === null ? 1 : Math.max(t - this.lastT, 0.001);
    this.lastT = t;
    for (const [cid, c] of Object.entries(connectors)) {
      let s = this.connectors.get(cid);
      if (!s) {
        s = emptySeries();
        this.connectors.set(cid, s);
      }
      const prev = s.last;
      const n = s.t.length;
      s.t.push(t);
      s.ok.push(prev ? rate(c.ok, prev.ok, dt) : 0);
      s.retries.push(prev ? rate(c.retries, prev.retries, dt) : 0);
      s.tokenRefreshes.push(prev ? rate(c.token_refreshes, prev.token_refreshes, dt) : 0);
      s.dlq.push(c.dlq);
      const classes = new Set([...s.failures.keys(), ...Object.keys(c.failures)]);
      for (const cls of classes) {
        let v = s.failures.get(cls);
        if (!v) {
          v = new Array(n).fill(0);
          s.failures.set(cls, v);
        }
        const now = c.failures[cls] ?? 0;
        v.push(prev ? rate(now, prev.failures[cls] ?? 0, dt) : 0);
      }
      s.last = c;
      trim(s);
    }
  }

  static fromTicks(ticks: Pick<Tick, 't' | 'connectors'>[]): SeriesBuilder {
    const b = new SeriesBuilder();
    for (const tick of ticks) b.add(tick.t, tick.connectors);
    return b;
  }
}
