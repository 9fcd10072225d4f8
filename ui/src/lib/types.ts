// Shapes of the backend's events and API answers (workflows/live.py, workflows/console_api.py).
import type { BandState } from './health';

export interface TopoNode {
  id: string;
  kind: 'svc' | 'conn' | 'wf';
  title: string;
  state: BandState;
  ratio: number | null;
  rate: number;
}

export interface TopoEdge {
  id: string;
  source: string;
  target: string;
  state: BandState;
  ratio: number | null;
  rate: number;
}

export interface ConnectorFigures {
  calls: number;
  ok: number;
  failures: Record<string, number>;
  attempts: number;
  retries: number;
  token_refreshes: number;
  rate_limited: number;
  dlq: number;
  circuit: string | null;
  service?: string;
}

export interface RunView {
  id: string;
  scenario: string;
  mode: string;
  profile: string;
  phase: string;
  elapsed: number;
  duration: number;
  writes_issued: number;
  surfaced: Record<string, number>;
}

export interface ChaosState {
  level: string | null;
  services: Record<string, string>;
}

export interface Tick {
  t: number;
  run: RunView | null;
  chaos: ChaosState;
  farm_error: string | null;
  services: Record<
    string,
    { calls: number; errors: number; schema_version: number }
  >;
  faults: Record<string, Record<string, Record<string, number>>>;
  connectors: Record<string, ConnectorFigures>;
  workflows: Record<string, Record<string, { runs: number; errors: number }>>;
  topology: { window_seconds: number; nodes: TopoNode[]; edges: TopoEdge[] };
}

export interface InvariantRow {
  name: string;
  status: 'pass' | 'fail' | 'not_exercised';
  detail: string | null;
}

export interface Verdict {
  run_id: string;
  verdict: 'PASSED' | 'FAILED';
  scenario: string;
  mode: string;
  profile: string;
  invariants: InvariantRow[];
  totals: Record<string, unknown>;
  dlq: Record<string, unknown>;
}

export interface RunRow {
  id: string;
  scenario: string;
  mode: string;
  profile: string;
  seed?: number;
  status: string;
  verdict?: string | null;
  started_at?: string;
  finished_at?: string | null;
  error?: string | null;
  scorecard?: Record<string, any> | null;
}

export interface RunEvent {
  id: string;
  status: string;
  scenario: string;
  mode: string;
  profile: string;
  error: string | null;
  t: number;
}

export interface StoredEvent {
  seq: number;
  t: number;
  kind: string;
  data: any;
}
