import { AMBER_ERROR_RATIO, BAND_COLOURS, RED_ERROR_RATIO } from '../lib/health';

export function BandLegend({ windowSeconds }: { windowSeconds: number }) {
  const pct = (x: number) => `${Math.round(x * 100)}%`;
  const items: [keyof typeof BAND_COLOURS, string][] = [
    ['healthy', `< ${pct(AMBER_ERROR_RATIO)} errors`],
    ['degraded', `${pct(AMBER_ERROR_RATIO)}–${pct(RED_ERROR_RATIO)}`],
    ['failing', `≥ ${pct(RED_ERROR_RATIO)}`],
    ['idle', 'no traffic'],
  ];
  return (
    <p className="muted" data-testid="band-legend">
      {items.map(([state, text]) => (
        <span key={state} style={{ marginRight: '1rem' }}>
          <span className="band-dot" style={{ background: BAND_COLOURS[state] }} />
          {state} ({text})
        </span>
      ))}
      error ratio over the last {windowSeconds} s, same bands as the Grafana topology
    </p>
  );
}
