import { useState } from 'react';
import { Button, InlineNotification, NumberInput, Select, SelectItem, Tag } from '@carbon/react';
import { api } from '../lib/api';
import { useLiveValue } from '../lib/live';

export const LEVELS = ['off', 'calm', 'mild', 'storm', 'hell'] as const;
const TAG: Record<string, 'gray' | 'green' | 'blue' | 'magenta' | 'red'> = {
  off: 'gray',
  calm: 'green',
  mild: 'blue',
  storm: 'magenta',
  hell: 'red',
};

/** Chaos for the farm or one service, an auto-off timer, and the kill switch. */
export function ChaosPanel() {
  // Re-rendered when the chaos levels, the timers or the last change differ, not every tick.
  const key = useLiveValue((s) =>
    JSON.stringify([s.tick?.chaos ?? null, Object.keys(s.tick?.services ?? {}), s.timers, s.chaosLog[0] ?? null]),
  );
  const [chaos, services, timersNow, lastChange] = JSON.parse(key) as [
    { level: string | null; services: Record<string, string> } | null,
    string[],
    Record<string, number>,
    { level: string; service: string | null; reason: string } | null,
  ];
  services.sort();
  const [scope, setScope] = useState('*');
  const [level, setLevel] = useState<string>('storm');
  const [autoOff, setAutoOff] = useState<number>(60);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  async function run(fn: () => Promise<unknown>) {
    setBusy(true);
    setError(null);
    try {
      await fn();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  const apply = () =>
    run(() =>
      api('/api/chaos', {
        body: {
          level,
          service: scope === '*' ? null : scope,
          auto_off_seconds: autoOff > 0 && level !== 'off' ? autoOff : null,
        },
      }),
    );
  const kill = () => run(() => api('/api/chaos/kill', { method: 'POST' }));
  const timers = Object.entries(timersNow);

  return (
    <div className="panel" data-testid="chaos-panel">
      <h3>Chaos</h3>
      <p className="muted" data-testid="chaos-status" data-level={chaos?.level ?? ""}>
        farm: <Tag size="sm" type={TAG[chaos?.level ?? ''] ?? 'gray'} data-testid="chaos-farm-level">{chaos?.level ?? 'unknown'}</Tag>
      </p>
      <p className="chaos-services">
        {services.map((s) => (
          <span key={s} className="chaos-chip" data-testid={`chaos-service-${s}`} data-level={chaos?.services[s]}>
            {s} <b>{chaos?.services[s] ?? '?'}</b>
          </span>
        ))}
      </p>
      <div className="row">
        <Select id="chaos-scope" labelText="Where" size="sm" value={scope} data-testid="chaos-scope" onChange={(e) => setScope(e.target.value)}>
          <SelectItem value="*" text="whole farm" />
          {services.map((s) => (
            <SelectItem key={s} value={s} text={s} />
          ))}
        </Select>
        <Select id="chaos-level" labelText="Level" size="sm" value={level} data-testid="chaos-level" onChange={(e) => setLevel(e.target.value)}>
          {LEVELS.map((l) => (
            <SelectItem key={l} value={l} text={l} />
          ))}
        </Select>
        <NumberInput
          id="chaos-auto-off"
          label="Auto-off after (s, 0 = never)"
          size="sm"
          min={0}
          max={86400}
          step={10}
          value={autoOff}
          data-testid="chaos-auto-off"
          onChange={(_e, { value }) => setAutoOff(Number(value) || 0)}
        />
        <Button size="sm" disabled={busy} onClick={apply} data-testid="chaos-apply">
          Set chaos
        </Button>
        <Button size="sm" kind="danger" disabled={busy} onClick={kill} data-testid="chaos-kill">
          Kill switch: stop the run, all off
        </Button>
      </div>
      {timers.length > 0 && (
        <p className="muted" data-testid="chaos-timers">
          {timers.map(([where, at]) => (
            <span key={where}>
              {where === '*' ? 'farm' : where} goes off at {new Date(at * 1000).toLocaleTimeString()}{' '}
            </span>
          ))}
        </p>
      )}
      {lastChange && (
        <p className="muted" data-testid="chaos-last">
          last change: {lastChange.service ?? 'farm'} → {lastChange.level} ({lastChange.reason})
        </p>
      )}
      {error && <InlineNotification kind="error" lowContrast title="Chaos" subtitle={error} data-testid="chaos-error" />}
    </div>
  );
}
