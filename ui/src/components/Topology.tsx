import { memo } from 'react';
import { BAND_COLOURS, formatRatio } from '../lib/health';
import type { TopoEdge, TopoNode } from '../lib/types';

const COLUMNS: { kind: TopoNode['kind']; title: string }[] = [
  { kind: 'svc', title: 'Synthetic APIs' },
  { kind: 'conn', title: 'AAM connectors' },
  { kind: 'wf', title: 'Workflows' },
];
const NODE_W = 230;
const NODE_H = 34;
const GAP = 6;
const TOP = 28;
const WIDTH = 980;

interface Props {
  nodes: TopoNode[];
  edges: TopoEdge[];
  windowSeconds: number;
  selected?: string | null;
  onSelect?: (id: string | null) => void;
}

function layout(nodes: TopoNode[]): Map<string, { x: number; y: number; node: TopoNode }> {
  const out = new Map<string, { x: number; y: number; node: TopoNode }>();
  COLUMNS.forEach((col, ci) => {
    const x = 8 + ci * ((WIDTH - NODE_W - 16) / 2);
    nodes
      .filter((n) => n.kind === col.kind)
      .forEach((node, i) => out.set(node.id, { x, y: TOP + i * (NODE_H + GAP), node }));
  });
  return out;
}

function figure(n: { ratio: number | null; rate: number }): string {
  return n.ratio === null ? 'no traffic' : `${formatRatio(n.ratio)} · ${n.rate.toFixed(1)}/s`;
}

/** Three fixed columns, data flowing left to right; colour, figure and state side by side. */
export const Topology = memo(function Topology({ nodes, edges, windowSeconds, selected, onSelect }: Props) {
  const pos = layout(nodes);
  const rows = Math.max(1, ...COLUMNS.map((c) => nodes.filter((n) => n.kind === c.kind).length));
  const height = TOP + rows * (NODE_H + GAP) + 8;
  return (
    <div className="topology" data-testid="topology">
      <svg viewBox={`0 0 ${WIDTH} ${height}`} width="100%" role="img" aria-label="topology">
        {COLUMNS.map((c, ci) => (
          <text key={c.kind} className="col-title" x={8 + ci * ((WIDTH - NODE_W - 16) / 2)} y={16}>
            {c.title}
          </text>
        ))}
        {edges.map((e) => {
          const a = pos.get(e.source);
          const b = pos.get(e.target);
          if (!a || !b) return null;
          const x1 = a.x + NODE_W;
          const y1 = a.y + NODE_H / 2;
          const x2 = b.x;
          const y2 = b.y + NODE_H / 2;
          const mid = (x1 + x2) / 2;
          const width = e.rate > 0 ? Math.min(5, 1 + Math.log10(1 + e.rate)) : 1;
          return (
            <path
              key={e.id}
              data-testid={`topo-edge-${e.id}`}
              data-state={e.state}
              d={`M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`}
              fill="none"
              stroke={BAND_COLOURS[e.state]}
              strokeOpacity={e.state === 'idle' ? 0.35 : 0.8}
              strokeWidth={width}
            >
              <title>{`${e.source} → ${e.target}: ${e.state}, ${figure(e)}`}</title>
            </path>
          );
        })}
        {[...pos.values()].map(({ x, y, node }) => (
          <g
            key={node.id}
            transform={`translate(${x},${y})`}
            data-testid={`topo-node-${node.id}`}
            data-state={node.state}
            role="button"
            tabIndex={0}
            style={{ cursor: onSelect ? 'pointer' : 'default' }}
            onClick={() => onSelect?.(selected === node.id ? null : node.id)}
            onKeyDown={(ev) => {
              if (ev.key === 'Enter') onSelect?.(selected === node.id ? null : node.id);
            }}
          >
            <rect
              width={NODE_W}
              height={NODE_H}
              rx={2}
              fill="var(--cds-layer-02)"
              stroke={selected === node.id ? 'var(--cds-focus)' : BAND_COLOURS[node.state]}
              strokeWidth={selected === node.id ? 2 : 1}
            />
            <rect width={6} height={NODE_H} fill={BAND_COLOURS[node.state]} />
            <text x={12} y={14} fontWeight={600}>
              {node.title.length > 30 ? `${node.title.slice(0, 29)}…` : node.title}
            </text>
            <text x={12} y={28} className="node-figure">
              <tspan data-testid={`topo-state-${node.id}`} fill={BAND_COLOURS[node.state]} fontWeight={600}>
                {node.state}
              </tspan>
              <tspan dx={6}>{figure(node)}</tspan>
            </text>
            <title>{`${node.title}: ${node.state}, ${figure(node)} over the last ${windowSeconds} s`}</title>
          </g>
        ))}
      </svg>
    </div>
  );
});
