import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from '@carbon/react';
import type { InvariantRow } from '../lib/types';

interface Props {
  names: string[];
  invariants: InvariantRow[] | null;
  pendingLabel: string;
}

const LABEL: Record<string, string> = { pass: 'pass', fail: 'fail', not_exercised: 'not exercised' };

/** Every invariant with pass / fail / not exercised; before a verdict, each row says why not yet. */
export function InvariantTable({ names, invariants, pendingLabel }: Props) {
  const byName = new Map((invariants ?? []).map((i) => [i.name, i]));
  const order = [...names, ...(invariants ?? []).map((i) => i.name).filter((n) => !names.includes(n))];
  return (
    <Table size="sm" useZebraStyles={false} data-testid="invariant-table">
      <TableHead>
        <TableRow>
          <TableHeader>Invariant</TableHeader>
          <TableHeader>Status</TableHeader>
        </TableRow>
      </TableHead>
      <TableBody>
        {order.map((name) => {
          const row = byName.get(name);
          return (
            <TableRow key={name} data-testid={`invariant-${name}`} data-status={row?.status ?? 'pending'}>
              <TableCell title={row?.detail ?? undefined}>{name}</TableCell>
              <TableCell>
                {row ? (
                  <span className={`status-${row.status}`}>{LABEL[row.status] ?? row.status}</span>
                ) : (
                  <span className="muted">{pendingLabel}</span>
                )}
              </TableCell>
            </TableRow>
          );
        })}
      </TableBody>
    </Table>
  );
}
