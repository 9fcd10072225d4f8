import { afterEach, describe, expect, it, vi } from 'vitest';
import { cleanup, render, screen } from '@testing-library/react';
import { ErrorBoundary } from './ErrorBoundary';
import { InvariantTable } from './InvariantTable';
import { Topology } from './Topology';
import type { TopoEdge, TopoNode } from '../lib/types';

afterEach(cleanup);

describe('Topology', () => {
  const nodes: TopoNode[] = [
    { id: 'svc:stripe', kind: 'svc', title: 'stripe', state: 'failing', ratio: 0.31, rate: 40 },
    { id: 'svc:github', kind: 'svc', title: 'github', state: 'idle', ratio: null, rate: 0 },
    { id: 'conn:stripe:acme', kind: 'conn', title: 'stripe:acme', state: 'healthy', ratio: 0, rate: 25 },
    { id: 'wf:idempotent_write', kind: 'wf', title: 'idempotent_write', state: 'degraded', ratio: 0.06, rate: 3 },
  ];
  const edges: TopoEdge[] = [
    { id: 'svc:stripe->conn:stripe:acme', source: 'svc:stripe', target: 'conn:stripe:acme', state: 'failing', ratio: 0.3, rate: 40 },
  ];

  it('puts each node in its column with its state and figure written beside the colour', () => {
    const { container } = render(<Topology nodes={nodes} edges={edges} windowSeconds={10} />);
    const stripe = screen.getByTestId('topo-node-svc:stripe');
    expect(stripe.getAttribute('data-state')).toBe('failing');
    expect(stripe.textContent).toContain('failing');
    expect(stripe.textContent).toContain('31% errors · 40.0/s');
    expect(screen.getByTestId('topo-node-svc:github').textContent).toContain('no traffic');
    expect(screen.getByTestId('topo-state-wf:idempotent_write').textContent).toBe('degraded');
    // Three fixed columns: synthetic APIs left, connectors in the middle, workflows right.
    const x = (id: string) => Number(/translate\(([\d.]+)/.exec(screen.getByTestId(id).getAttribute('transform')!)![1]);
    expect(x('topo-node-svc:stripe')).toBeLessThan(x('topo-node-conn:stripe:acme'));
    expect(x('topo-node-conn:stripe:acme')).toBeLessThan(x('topo-node-wf:idempotent_write'));
    expect(x('topo-node-svc:stripe')).toBe(x('topo-node-svc:github'));
    expect(container.querySelector('[data-testid="topo-edge-svc:stripe->conn:stripe:acme"]')?.getAttribute('stroke')).toBe('#F2495C');
  });

  it('reports a click on a node', () => {
    const onSelect = vi.fn();
    render(<Topology nodes={nodes} edges={edges} windowSeconds={10} onSelect={onSelect} />);
    screen.getByTestId('topo-node-conn:stripe:acme').dispatchEvent(new MouseEvent('click', { bubbles: true }));
    expect(onSelect).toHaveBeenCalledWith('conn:stripe:acme');
  });
});

describe('InvariantTable', () => {
  it('lists every invariant before the verdict, then pass / fail / not exercised', () => {
    const names = ['no_lost_writes', 'drift_handled', 'bounded_dlq'];
    const { rerender } = render(<InvariantTable names={names} invariants={null} pendingLabel="checked at the end" />);
    for (const n of names) {
      expect(screen.getByTestId(`invariant-${n}`).getAttribute('data-status')).toBe('pending');
    }
    rerender(
      <InvariantTable
        names={names}
        pendingLabel="-"
        invariants={[
          { name: 'no_lost_writes', status: 'pass', detail: 'ok' },
          { name: 'drift_handled', status: 'not_exercised', detail: 'no drift' },
          { name: 'bounded_dlq', status: 'fail', detail: '80 > 50' },
        ]}
      />,
    );
    expect(screen.getByTestId('invariant-drift_handled').textContent).toContain('not exercised');
    expect(screen.getByTestId('invariant-bounded_dlq').getAttribute('data-status')).toBe('fail');
  });
});

describe('ErrorBoundary', () => {
  it('keeps the rest of the page when one view throws', () => {
    const Boom = () => {
      throw new Error('view exploded');
    };
    const quiet = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    render(
      <div>
        <ErrorBoundary name="charts">
          <Boom />
        </ErrorBoundary>
        <p data-testid="sibling">still here</p>
      </div>,
    );
    quiet.mockRestore();
    expect(screen.getByTestId('error-boundary-charts').textContent).toContain('view exploded');
    expect(screen.getByTestId('sibling').textContent).toBe('still here');
  });
});
