import { useEffect, useMemo, useState } from 'react';
import {
  Button,
  InlineNotification,
  Table,
  TableBody,
  TableCell,
  TableHead,
  TableHeader,
  TableRow,
} from '@carbon/react';
import { api, download } from '../lib/api';
import { ConnectorCard } from '../components/ConnectorCharts';
import { ErrorBoundary } from '../components/ErrorBoundary';
import { InvariantTable } from '../components/InvariantTable';
import { Topology } from '../components/Topology';
import { SeriesBuilder } from '../lib/series';
import type { RunRow, StoredEvent, Tick } from '../lib/types';

interface FaultRow {
  t: number;
  service: string;
  tenant: string;
  kind: string;
  count: number;
}

function FaultLedger({ runId, t0 }: { runId: string; t0: number }) {
  const [rows, setRows] = useState<FaultRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    api<{ faults: FaultRow[] }>(`/api/runs/${runId}/faults`)
      .then((b) => setRows(b.faults))
      .catch((e) => setError((e as Error).message));
  }, [runId]);
  const totals = useMemo(() => {
    const m = new Map<string, { service: string; tenant: string; kind: string; n: number; first: number; last: number }>();
    for (const r of rows ?? []) {
      const k = `${r.service}/${r.tenant}/${r.kind}`;
      const e = m.get(k) ?? { service: r.service, tenant: r.tenant, kind: r.kind, n: 0, first: r.t, last: r.t };
      e.n += r.count;
      e.last = r.t;
      m.set(k, e);
    }
    return [...m.values()].sort((a, b) => b.n - a.n);
  }, [rows]);
  if (error) return <InlineNotification kind="error" lowContrast title="Fault ledger" subtitle={error} />;
  if (!rows) return <p className="muted">Loading…</p>;
  if (!rows.length) return <p className="muted" data-testid="fault-ledger-empty">The farm injected no fault during this run.</p>;
  return (
    <Table size="sm" data-testid="fault-ledger">
      <TableHead>
        <TableRow>
          {['Service', 'Tenant', 'Fault', 'Injected', 'First (s)', 'Last (s)'].map((h) => (
            <TableHeader key={h}>{h}</TableHeader>
          ))}
        </TableRow>
      </TableHead>
      <TableBody>
        {totals.map((r) => (
          <TableRow key={`${r.service}/${r.tenant}/${r.kind}`}>
            <TableCell>{r.service}</TableCell>
            <TableCell>{r.tenant}</TableCell>
            <TableCell>{r.kind}</TableCell>
            <TableCell className="num">{r.n}</TableCell>
            <TableCell className="num">{(r.first - t0).toFixed(0)}</TableCell>
            <TableCell className="num">{(r.last - t0).toFixed(0)}</TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}

function Dlq({ runId }: { runId: string }) {
  const [entries, setEntries] = useState<any[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [report, setReport] = useState<string | null>(null);
  const load = () =>
    api<{ entries: any[] }>(`/dlq?run_id=${encodeURIComponent(runId)}`)
      .then((b) => setEntries(b.entries))
      .catch((e) => setError((e as Error).message));
  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [runId]);
  async function replay() {
    setError(null);
    try {
      const b = await api<{ report: Record<string, unknown> }>('/dlq/replay', { body: { run_id: runId } });
      setReport(JSON.stringify(b.report));
      await load();
    } catch (e) {
      setError((e as Error).message);
    }
  }
  const keys = entries && entries.length ? Object.keys(entries[0]).filter((k) => typeof entries[0][k] !== 'object').slice(0, 7) : [];
  return (
    <div data-testid="dlq">
      <p>
        <span className="muted" data-testid="dlq-count">
          {entries === null ? 'loading…' : `${entries.length} entries`}
        </span>{' '}
        <Button size="sm" kind="tertiary" onClick={replay} data-testid="dlq-replay">
          Replay the DLQ
        </Button>
      </p>
      {report && <p className="muted num" data-testid="dlq-replay-report">replay: {report}</p>}
      {error && <InlineNotification kind="error" lowContrast title="DLQ" subtitle={error} data-testid="dlq-error" />}
      {entries && entries.length > 0 && (
        <Table size="sm">
          <TableHead>
            <TableRow>
              {keys.map((k) => (
                <TableHeader key={k}>{k}</TableHeader>
              ))}
            </TableRow>
          </TableHead>
          <TableBody>
            {entries.slice(0, 200).map((e, i) => (
              <TableRow key={i}>
                {keys.map((k) => (
                  <TableCell key={k}>{String(e[k] ?? '')}</TableCell>
                ))}
              </TableRow>
            ))}
          </TableBody>
        </Table>
      )}
    </div>
  );
}

/** A finished (or running) run rebuilt from what the backend stored: charts, verdict, faults, DLQ. */
export function RunPage({ runId }: { runId: string }) {
  const [row, setRow] = useState<RunRow | null>(null);
  const [events, setEvents] = useState<StoredEvent[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    setRow(null);
    setEvents(null);
    Promise.all([api<RunRow>(`/runs/${runId}`), api<{ events: StoredEvent[] }>(`/api/runs/${runId}/events`)])
      .then(([r, e]) => {
        setRow(r);
        setEvents(e.events);
      })
      .catch((e) => setError((e as Error).message));
  }, [runId]);
  const ticks = useMemo(() => (events ?? []).filter((e) => e.kind === 'tick' && e.data.run), [events]);
  const series = useMemo(() => SeriesBuilder.fromTicks(ticks.map((e) => ({ t: e.t, connectors: e.data.connectors }))), [ticks]);
  const worst = useMemo(() => {
    // The topology at the sample with the most failing nodes: what the storm looked like.
    let best: Tick | null = null;
    let score = -1;
    for (const e of ticks) {
      const s = (e.data as Tick).topology.nodes.filter((n) => n.state === 'failing' || n.state === 'degraded').length;
      if (s > score) {
        score = s;
        best = e.data as Tick;
      }
    }
    return best;
  }, [ticks]);
  if (error) return <div className="page"><InlineNotification kind="error" lowContrast title={`Run ${runId}`} subtitle={error} /></div>;
  if (!row || !events) return <div className="page muted">Loading run {runId}…</div>;
  const card = row.scorecard;
  const t0 = ticks.length ? ticks[0].t : 0;
  return (
    <div className="page" data-testid="run-page" data-run={runId}>
      <h2>
        {row.scenario} · {row.profile} · {row.mode}{' '}
        {card?.verdict && (
          <span className={`verdict ${card.verdict}`} data-testid="run-verdict">
            {card.verdict}
          </span>
        )}
      </h2>
      <p className="muted">
        run {row.id} · seed {row.seed ?? card?.seed} · {row.status} · started {row.started_at ?? card?.started_at} ·
        finished {row.finished_at ?? card?.finished_at ?? '—'} ·{' '}
        {ticks.length} stored samples{row.error ? ` · error: ${row.error}` : ''}
      </p>
      <Button
        size="sm"
        data-testid="download-report"
        onClick={() => download(`/api/runs/${runId}/report.html`, `gauntlet-${runId}.html`).catch((e) => setError(e.message))}
      >
        Download the HTML report
      </Button>
      <div className="grid-live" style={{ marginTop: '1rem' }}>
        <div>
          <div className="panel">
            <h3>Topology at the worst moment of the run</h3>
            <ErrorBoundary name="run-topology">
              {worst ? (
                <Topology nodes={worst.topology.nodes} edges={worst.topology.edges} windowSeconds={worst.topology.window_seconds} />
              ) : (
                <p className="muted">No samples stored for this run.</p>
              )}
            </ErrorBoundary>
          </div>
          <div className="panel">
            <h3>Connectors (rebuilt from stored events)</h3>
            <ErrorBoundary name="run-charts">
              <div className="charts-grid">
                {[...series.connectors.keys()].sort().map((id) => (
                  <ConnectorCard key={id} id={id} series={series.connectors.get(id)!} version={ticks.length} />
                ))}
              </div>
            </ErrorBoundary>
          </div>
          <div className="panel">
            <h3>Fault ledger: what the farm injected, when, to whom</h3>
            <ErrorBoundary name="fault-ledger">
              <FaultLedger runId={runId} t0={t0} />
            </ErrorBoundary>
          </div>
        </div>
        <div>
          <div className="panel">
            <h3>Invariants</h3>
            <ErrorBoundary name="run-invariants">
              <InvariantTable names={[]} invariants={card?.invariants ?? []} pendingLabel="—" />
            </ErrorBoundary>
          </div>
          <div className="panel">
            <h3>Dead-letter queue</h3>
            <ErrorBoundary name="dlq">
              <Dlq runId={runId} />
            </ErrorBoundary>
          </div>
        </div>
      </div>
    </div>
  );
}
