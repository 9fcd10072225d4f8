import { useState } from 'react';
import { InlineNotification, ProgressBar, Tag } from '@carbon/react';
import { BandLegend } from '../components/BandLegend';
import { ChaosPanel } from '../components/ChaosPanel';
import { ConnectorCard } from '../components/ConnectorCharts';
import { ErrorBoundary } from '../components/ErrorBoundary';
import { InvariantTable } from '../components/InvariantTable';
import { LaunchPanel } from '../components/LaunchPanel';
import { Topology } from '../components/Topology';
import { useLive } from '../lib/live';

export function RunStatus() {
  const store = useLive();
  const run = store.tick?.run;
  const last = store.runStatus;
  if (run) {
    return (
      <div data-testid="run-status" data-phase={run.phase} data-run={run.id} data-elapsed={run.elapsed}>
        <Tag type="blue">{run.phase}</Tag> <b>{run.scenario}</b> · {run.profile} · {run.mode} · run {run.id}{' '}
        <span className="num">
          {run.elapsed.toFixed(0)} / {run.duration.toFixed(0)} s
        </span>
        <ProgressBar
          label=""
          hideLabel
          size="small"
          value={Math.min(run.elapsed, run.duration)}
          max={Math.max(run.duration, 1)}
        />
      </div>
    );
  }
  return (
    <div data-testid="run-status" data-phase={last?.status ?? 'idle'} data-run={last?.id ?? ''}>
      {last ? (
        <>
          <Tag type={last.status === 'error' ? 'red' : 'gray'}>{last.status}</Tag> last run {last.id} ({last.scenario} ·{' '}
          {last.profile}){last.error ? `: ${last.error}` : ''}
        </>
      ) : (
        <span className="muted">No scenario running. Launch one on the right.</span>
      )}
    </div>
  );
}

export function VerdictCard({ names }: { names: string[] }) {
  const store = useLive();
  const v = store.verdict;
  const running = store.tick?.run;
  return (
    <div className="panel" data-testid="verdict-panel">
      <h3>Verdict</h3>
      {v ? (
        <p>
          <span className={`verdict ${v.verdict}`} data-testid="verdict" data-verdict={v.verdict}>
            {v.verdict}
          </span>{' '}
          <span className="muted">
            {v.scenario} · {v.profile} · {v.mode} · <a href={`#/runs/${v.run_id}`} data-testid="verdict-run-link">run {v.run_id}</a>
          </span>
        </p>
      ) : (
        <p className="muted" data-testid="verdict-pending">
          {running ? 'The verdict lands when the run has drained, replayed its DLQ and been checked.' : 'No verdict yet.'}
        </p>
      )}
      <InvariantTable
        names={names}
        invariants={v?.invariants ?? null}
        pendingLabel={running ? 'checked at the end' : '—'}
      />
    </div>
  );
}

export function Comparison() {
  const store = useLive();
  const done = store.runs.filter((r) => r.verdict).slice(0, 4);
  if (done.length < 2) return null;
  return (
    <div className="panel" data-testid="comparison">
      <h3>Latest runs side by side</h3>
      <div className="row">
        {done.map((r) => (
          <div key={r.id} style={{ minWidth: 140 }}>
            <div className="muted">
              {r.scenario} · {r.mode}
            </div>
            <b>{r.profile}</b>{' '}
            <span className={`verdict ${r.verdict}`} data-testid={`comparison-${r.id}`}>
              {r.verdict}
            </span>
          </div>
        ))}
      </div>
    </div>
  );
}

export function LivePage({ invariantNames }: { invariantNames: string[] }) {
  const store = useLive();
  const [selected, setSelected] = useState<string | null>(null);
  const tick = store.tick;
  const topo = tick?.topology;
  const ids = [...store.series.connectors.keys()].sort();
  const shown = selected?.startsWith('conn:')
    ? ids.filter((id) => `conn:${id}` === selected)
    : selected?.startsWith('svc:')
      ? ids.filter((id) => id.startsWith(`${selected.slice(4)}:`))
      : ids;
  return (
    <div className="grid-live">
      <div>
        <div className="panel">
          <ErrorBoundary name="run-status">
            <RunStatus />
          </ErrorBoundary>
          {tick?.farm_error && (
            <InlineNotification kind="warning" lowContrast hideCloseButton title="Farm" subtitle={tick.farm_error} />
          )}
        </div>
        <div className="panel">
          <h3>Topology</h3>
          <ErrorBoundary name="topology">
            {topo ? (
              <Topology
                nodes={topo.nodes}
                edges={topo.edges}
                windowSeconds={topo.window_seconds}
                selected={selected}
                onSelect={setSelected}
              />
            ) : (
              <p className="muted">Waiting for the first sample…</p>
            )}
            <BandLegend windowSeconds={topo?.window_seconds ?? 10} />
          </ErrorBoundary>
        </div>
        <div className="panel">
          <h3>
            Connectors{' '}
            <span className="muted">
              {selected ? `(${selected}; click the node again for all)` : '(click a node to filter)'}
            </span>
          </h3>
          <ErrorBoundary name="charts">
            {shown.length === 0 ? (
              <p className="muted">No connector has reported yet.</p>
            ) : (
              <div className="charts-grid">
                {shown.map((id) => (
                  <ConnectorCard key={id} id={id} series={store.series.connectors.get(id)!} version={store.version} />
                ))}
              </div>
            )}
          </ErrorBoundary>
        </div>
      </div>
      <div className="side">
        <ErrorBoundary name="verdict">
          <VerdictCard names={invariantNames} />
          <Comparison />
        </ErrorBoundary>
        <ErrorBoundary name="chaos">
          <ChaosPanel />
        </ErrorBoundary>
        <ErrorBoundary name="launch">
          <LaunchPanel />
        </ErrorBoundary>
      </div>
    </div>
  );
}
