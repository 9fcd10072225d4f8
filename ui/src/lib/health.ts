// Health bands of the topology. The thresholds and colours are workflows/health.py's (the same
// module the Grafana topology uses); tests/workflows/test_console_health_sync.py keeps them equal.
// The backend computes each node's band; the page only needs the colours and the legend.
export const AMBER_ERROR_RATIO = 0.05;
export const RED_ERROR_RATIO = 0.2;

export type BandState = 'idle' | 'healthy' | 'degraded' | 'failing';

export const BAND_COLOURS: Record<BandState, string> = {
  idle: '#8E8E8E',
  healthy: '#73BF69',
  degraded: '#FF9830',
  failing: '#F2495C',
};

export function bandFor(ratio: number | null): BandState {
  if (ratio === null) return 'idle';
  if (ratio >= RED_ERROR_RATIO) return 'failing';
  if (ratio >= AMBER_ERROR_RATIO) return 'degraded';
  return 'healthy';
}

export function formatRatio(ratio: number | null): string {
  if (ratio === null) return 'no traffic';
  return `${(ratio * 100).toFixed(ratio < 0.1 ? 1 : 0)}% errors`;
}
