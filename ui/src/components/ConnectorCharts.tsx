import { memo, useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { cancelDraw, queueDraw } from '../lib/drawQueue';
import type { ConnectorSeries } from '../lib/series';

// Carbon's categorical palette, in order, for the failure classes.
export const PALETTE = [
  '#6929c4', '#1192e8', '#005d5d', '#9f1853', '#fa4d56', '#570408', '#198038', '#002d9c',
  '#ee538b', '#b28600', '#009d9a', '#012749', '#8a3800', '#a56eff',
];
const SUCCESS = '#24a148';

interface ChartProps {
  title: string;
  testid: string;
  x: number[];
  lines: { label: string; colour: string; values: number[] }[];
  version: number;
  height?: number;
}

/** A uPlot line chart; rebuilt when its set of lines changes, otherwise only fed new data. */
export const LineChart = memo(function LineChart({ title, testid, x, lines, version, height = 130 }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const [width, setWidth] = useState(320);
  const shape = lines.map((l) => l.label).join('|');
  const theme = typeof document === 'undefined' ? '' : (document.querySelector('[data-theme]')?.getAttribute('data-theme') ?? '');

  useEffect(() => {
    const el = box.current;
    if (!el || typeof ResizeObserver === 'undefined') return;
    const ro = new ResizeObserver((entries) => {
      const w = Math.floor(entries[0].contentRect.width);
      if (w > 0) setWidth(w);
    });
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    // Canvas cannot resolve CSS variables: read the theme's colour once per build.
    const ink = getComputedStyle(el).getPropertyValue('--cds-text-secondary').trim() || '#8d8d8d';
    const opts: uPlot.Options = {
      width,
      height,
      legend: { show: true, live: false },
      cursor: { show: false },
      scales: { x: { time: true } },
      axes: [
        { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.15)' }, size: 28 },
        { stroke: ink, grid: { stroke: 'rgba(128,128,128,0.15)' }, size: 40 },
      ],
      series: [{}, ...lines.map((l) => ({ label: l.label, stroke: l.colour, width: 1.5, points: { show: false } }))],
    };
    const u = new uPlot(opts, [x, ...lines.map((l) => l.values)] as uPlot.AlignedData, el);
    plot.current = u;
    return () => {
      cancelDraw(box);
      u.destroy();
      plot.current = null;
    };
    // Rebuilt only when the lines or the size change; data goes through setData below.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [shape, width, height, theme]);

  // Only a chart on screen is redrawn each tick; one scrolled away catches up when it comes back.
  const visible = useRef(true);
  const stale = useRef(false);
  const latest = useRef<() => void>(() => undefined);
  latest.current = () => {
    const data = [x, ...lines.map((l) => l.values)] as uPlot.AlignedData;
    queueDraw(box, () => plot.current?.setData(data));
  };

  useEffect(() => {
    const el = box.current;
    if (!el || typeof IntersectionObserver === 'undefined') return;
    const io = new IntersectionObserver(
      (entries) => {
        visible.current = entries[entries.length - 1].isIntersecting;
        if (visible.current && stale.current) {
          stale.current = false;
          latest.current();
        }
      },
      { rootMargin: '200px' },
    );
    io.observe(el);
    return () => io.disconnect();
  }, []);

  useEffect(() => {
    if (!visible.current) {
      stale.current = true;
      return;
    }
    latest.current();
  }, [version]);

  return (
    <div data-testid={testid}>
      <div className="muted" style={{ fontSize: 12 }}>
        {title}
      </div>
      <div ref={box} />
    </div>
  );
});

interface CardProps {
  id: string;
  series: ConnectorSeries;
  version: number;
}

/** One connector: calls/s (successes vs failures by class), and retries, token refreshes, DLQ. */
export const ConnectorCard = memo(function ConnectorCard({ id, series, version }: CardProps) {
  const classes = [...series.failures.keys()].sort();
  const last = series.last;
  const failed = last ? Object.values(last.failures).reduce((a, b) => a + b, 0) : 0;
  return (
    <div className="chart-card" data-testid={`connector-card-${id}`}>
      <h4>
        {id}{' '}
        <span className="muted num">
          {last ? `${last.ok} ok · ${failed} failed · circuit ${last.circuit ?? '–'}` : ''}
        </span>
      </h4>
      <LineChart
        title="calls per second: successes vs failures by class"
        testid={`chart-calls-${id}`}
        x={series.t}
        version={version}
        lines={[
          { label: 'ok', colour: SUCCESS, values: series.ok },
          ...classes.map((cls, i) => ({
            label: cls,
            colour: PALETTE[i % PALETTE.length],
            values: series.failures.get(cls) ?? [],
          })),
        ]}
      />
      <LineChart
        title="retries/s, token refreshes/s, DLQ entries (total)"
        testid={`chart-defences-${id}`}
        x={series.t}
        version={version}
        height={100}
        lines={[
          { label: 'retries', colour: '#1192e8', values: series.retries },
          { label: 'token refreshes', colour: '#6929c4', values: series.tokenRefreshes },
          { label: 'DLQ', colour: '#da1e28', values: series.dlq },
        ]}
      />
    </div>
  );
});
