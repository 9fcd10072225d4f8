import { useEffect, useState } from 'react';
import { InlineNotification, Table, TableBody, TableCell, TableHead, TableHeader, TableRow, Tag } from '@carbon/react';
import { api } from '../lib/api';
import { useLive } from '../lib/live';

interface TenantView {
  id: string;
  max_rps: number;
  burst: number;
  counters: Record<string, number>;
}

interface ServiceView {
  id: string;
  display_name: string;
  auth: string;
  token_ttl_seconds: number | null;
  rotate_token_every_calls: number | null;
  dialect: string;
  schema_version: number;
  resources: string[];
  error_preset: string | null;
  idempotency: { supported: boolean };
  drift_steps: number;
  chaos: string | null;
  tenants: TenantView[];
}

const COUNTERS = ['calls', '2xx', '429', '5xx', '401', 'network_faults', 'timeouts', 'tokens_issued', 'writes_committed'];

/** The farm's services: auth, limits, dialect, schema version, tenants, live counters. */
export function ServicesPage() {
  const store = useLive();
  const [services, setServices] = useState<ServiceView[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const second = Math.floor((store.tick?.t ?? 0) / 2);
  useEffect(() => {
    api<{ services: ServiceView[] }>('/api/services')
      .then((b) => {
        setServices(b.services);
        setError(null);
      })
      .catch((e) => setError((e as Error).message));
  }, [second]);
  return (
    <div className="page">
      <h2>Synthetic services</h2>
      {error && <InlineNotification kind="error" lowContrast title="Services" subtitle={error} />}
      <Table size="sm" data-testid="services-table">
        <TableHead>
          <TableRow>
            {['Service', 'Auth', 'Dialect', 'Schema', 'Chaos', 'Tenant', 'Limit', ...COUNTERS].map((h) => (
              <TableHeader key={h}>{h}</TableHeader>
            ))}
          </TableRow>
        </TableHead>
        <TableBody>
          {(services ?? []).flatMap((s) =>
            s.tenants.map((t, i) => (
              <TableRow key={`${s.id}/${t.id}`} data-testid={`service-row-${s.id}-${t.id}`}>
                <TableCell>
                  {i === 0 ? (
                    <>
                      <b>{s.id}</b>
                      <div className="muted">{s.display_name}</div>
                      <div className="muted">
                        {s.resources.join(', ')} · {s.idempotency.supported ? 'idempotency keys' : 'no idempotency'} ·{' '}
                        {s.drift_steps} drift steps · {s.error_preset}
                      </div>
                    </>
                  ) : null}
                </TableCell>
                <TableCell>
                  {i === 0
                    ? `${s.auth}${s.token_ttl_seconds ? ` (TTL ${s.token_ttl_seconds} s${s.rotate_token_every_calls ? `, rotates every ${s.rotate_token_every_calls} calls` : ''})` : ''}`
                    : ''}
                </TableCell>
                <TableCell>{i === 0 ? s.dialect : ''}</TableCell>
                <TableCell data-testid={i === 0 ? `service-schema-${s.id}` : undefined}>{i === 0 ? `v${s.schema_version}` : ''}</TableCell>
                <TableCell>{i === 0 ? <Tag size="sm" data-testid={`service-chaos-${s.id}`}>{s.chaos ?? '?'}</Tag> : ''}</TableCell>
                <TableCell>{t.id}</TableCell>
                <TableCell className="num">
                  {t.max_rps}/s, burst {t.burst}
                </TableCell>
                {COUNTERS.map((c) => (
                  <TableCell key={c} className="num">
                    {t.counters[c] ?? 0}
                  </TableCell>
                ))}
              </TableRow>
            )),
          )}
        </TableBody>
      </Table>
    </div>
  );
}
