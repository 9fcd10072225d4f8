import { useEffect, useState } from 'react';
import { InlineNotification, Table, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from '@carbon/react';
import { api } from '../lib/api';
import { useLive } from '../lib/live';
import type { RunRow } from '../lib/types';

/** Every run the backend has recorded (history.sqlite: survives reloads and restarts). */
export function RunsPage() {
  const store = useLive();
  const [runs, setRuns] = useState<RunRow[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const latest = store.runs.map((r) => `${r.id}:${r.status}:${r.verdict ?? ''}`).join(',');
  useEffect(() => {
    api<{ runs: RunRow[] }>('/runs?limit=200')
      .then((b) => setRuns(b.runs))
      .catch((e) => setError((e as Error).message));
  }, [latest]);
  return (
    <div className="page">
      <h2>Run history</h2>
      {error && <InlineNotification kind="error" lowContrast title="History" subtitle={error} />}
      <Table size="md" data-testid="runs-table">
        <TableHead>
          <TableRow>
            {['Run', 'Scenario', 'Mode', 'Profile', 'Seed', 'Status', 'Verdict', 'Started (UTC)'].map((h) => (
              <TableHeader key={h}>{h}</TableHeader>
            ))}
          </TableRow>
        </TableHead>
        <TableBody>
          {(runs ?? []).map((r) => (
            <TableRow key={r.id} data-testid={`run-row-${r.id}`}>
              <TableCell>
                <a href={`#/runs/${r.id}`} data-testid={`run-link-${r.id}`}>
                  {r.id}
                </a>
              </TableCell>
              <TableCell>{r.scenario}</TableCell>
              <TableCell>{r.mode}</TableCell>
              <TableCell>{r.profile}</TableCell>
              <TableCell>{r.seed ?? ''}</TableCell>
              <TableCell>{r.status}</TableCell>
              <TableCell>
                {r.verdict ? <Tag type={r.verdict === 'PASSED' ? 'green' : 'red'}>{r.verdict}</Tag> : r.error ?? ''}
              </TableCell>
              <TableCell>{r.started_at ?? ''}</TableCell>
            </TableRow>
          ))}
        </TableBody>
      </Table>
      {runs && runs.length === 0 && <p className="muted">No runs yet.</p>}
    </div>
  );
}
