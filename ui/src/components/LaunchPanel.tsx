import { useEffect, useMemo, useState } from 'react';
import {
  Button,
  Checkbox,
  InlineNotification,
  NumberInput,
  Select,
  SelectItem,
  TextInput,
} from '@carbon/react';
import { api } from '../lib/api';
import { useLiveValue } from '../lib/live';

interface LibraryEntry {
  name: string;
  file: string;
  spec?: any;
  error?: string;
}

interface WorkflowRow {
  name: string;
  on: boolean;
  concurrency: number;
  services?: string[] | null;
}

const MODES = ['calm', 'mild', 'storm', 'hell'];

function splitList(text: string): string[] {
  return text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Launch a library scenario as is, or compose one from it; one profile or a side-by-side pair. */
export function LaunchPanel({ onLaunched }: { onLaunched?: (ids: string[]) => void }) {
  // Re-rendered when a run starts or ends, not on every tick (the form is large).
  const running = useLiveValue((s) => !!s.tick?.run);
  const [library, setLibrary] = useState<LibraryEntry[]>([]);
  const [profiles, setProfiles] = useState<string[]>(['full', 'naive']);
  const [registered, setRegistered] = useState<string[]>([]);
  const [file, setFile] = useState('storm');
  const [mode, setMode] = useState('storm');
  const [duration, setDuration] = useState(30);
  const [seed, setSeed] = useState(42);
  const [services, setServices] = useState('');
  const [tenants, setTenants] = useState('');
  const [workflows, setWorkflows] = useState<WorkflowRow[]>([]);
  const [profile, setProfile] = useState('full');
  const [compare, setCompare] = useState('naive');
  const [aamUrl, setAamUrl] = useState('');
  const [externalAam, setExternalAam] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    api<{ scenarios: LibraryEntry[]; profiles: string[]; external_aam: boolean }>('/api/scenarios')
      .then((b) => {
        setLibrary(b.scenarios);
        setProfiles(b.profiles);
        setExternalAam(b.external_aam);
      })
      .catch((e) => setError((e as Error).message));
    api<{ workflows: { name: string }[] }>('/workflows')
      .then((b) => setRegistered(b.workflows.map((w) => w.name)))
      .catch(() => undefined);
  }, []);

  const entry = useMemo(() => library.find((l) => l.file === file), [library, file]);
  useEffect(() => {
    const spec = entry?.spec;
    if (!spec) return;
    setMode(spec.mode);
    setDuration(Math.min(spec.duration_seconds, 30));
    setSeed(spec.seed);
    setServices(spec.services.join(', '));
    setTenants((spec.tenants ?? []).join(', '));
    const rows: WorkflowRow[] = spec.workflows.map((w: any) => ({
      name: w.name,
      on: true,
      concurrency: w.concurrency,
      services: w.services,
    }));
    for (const name of registered) {
      if (!rows.some((r) => r.name === name)) rows.push({ name, on: false, concurrency: 1, services: null });
    }
    setWorkflows(rows);
  }, [entry, registered]);

  function composed(): any {
    const base = entry?.spec ?? {};
    const chosen = splitList(services);
    return {
      ...base,
      mode,
      duration_seconds: duration,
      seed,
      services: chosen,
      tenants: splitList(tenants).length ? splitList(tenants) : null,
      workflows: workflows
        .filter((w) => w.on)
        .map((w) => {
          const only = (w.services ?? []).filter((s) => chosen.includes(s));
          return { name: w.name, concurrency: w.concurrency, ...(only.length ? { services: only } : {}), ...(base.workflows?.find((b: any) => b.name === w.name)?.params ? { params: base.workflows.find((b: any) => b.name === w.name).params } : {}) };
        }),
    };
  }

  async function launch() {
    setBusy(true);
    setError(null);
    setNotice(null);
    try {
      const chosenProfiles = compare && compare !== profile ? [compare, profile] : [profile];
      const body: Record<string, unknown> = { spec: composed(), profiles: chosenProfiles };
      if (externalAam && aamUrl.trim()) body.aam_url = aamUrl.trim();
      const res = await api<{ run_ids: string[] }>('/scenarios/run', { body });
      setNotice(`started ${res.run_ids.join(', ')} (${chosenProfiles.join(' then ')})`);
      onLaunched?.(res.run_ids);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  }

  async function stop() {
    setError(null);
    try {
      await api('/api/runs/stop', { method: 'POST' });
      setNotice('stop requested');
    } catch (e) {
      setError((e as Error).message);
    }
  }

  return (
    <div className="panel" data-testid="launch-panel">
      <h3>Launch a scenario</h3>
      <div className="row">
        <Select id="launch-library" labelText="From the library" size="sm" value={file} data-testid="launch-library" onChange={(e) => setFile(e.target.value)}>
          {library.map((l) => (
            <SelectItem key={l.file} value={l.file} text={l.error ? `${l.file} (invalid)` : l.file} disabled={!!l.error} />
          ))}
        </Select>
        <Select id="launch-mode" labelText="Mode" size="sm" value={mode} data-testid="launch-mode" onChange={(e) => setMode(e.target.value)}>
          {MODES.map((m) => (
            <SelectItem key={m} value={m} text={m} />
          ))}
        </Select>
        <NumberInput id="launch-duration" label="Duration (s)" size="sm" min={1} max={3600} value={duration} data-testid="launch-duration" onChange={(_e, { value }) => setDuration(Number(value) || 1)} />
        <NumberInput id="launch-seed" label="Seed" size="sm" min={0} value={seed} data-testid="launch-seed" onChange={(_e, { value }) => setSeed(Number(value) || 0)} />
      </div>
      <div className="row">
        <TextInput id="launch-services" labelText="Services (comma-separated)" size="sm" value={services} data-testid="launch-services" onChange={(e) => setServices(e.target.value)} />
        <TextInput id="launch-tenants" labelText="Tenants (empty = all)" size="sm" value={tenants} data-testid="launch-tenants" onChange={(e) => setTenants(e.target.value)} />
      </div>
      <fieldset style={{ margin: '0.5rem 0' }}>
        <legend className="muted">Workflows (copies per connector)</legend>
        {workflows.map((w, i) => (
          <div className="row" key={w.name}>
            <Checkbox
              id={`launch-wf-${w.name}`}
              labelText={`${w.name}${w.services?.length ? ` (only ${w.services.join(', ')})` : ''}`}
              checked={w.on}
              data-testid={`launch-wf-${w.name}`}
              onChange={(_e, { checked }) => setWorkflows(workflows.map((x, j) => (j === i ? { ...x, on: checked } : x)))}
            />
            <NumberInput
              id={`launch-wf-${w.name}-concurrency`}
              label=""
              hideLabel
              size="sm"
              min={1}
              max={256}
              value={w.concurrency}
              data-testid={`launch-wf-${w.name}-concurrency`}
              onChange={(_e, { value }) => setWorkflows(workflows.map((x, j) => (j === i ? { ...x, concurrency: Number(value) || 1 } : x)))}
            />
          </div>
        ))}
      </fieldset>
      <div className="row">
        <Select id="launch-profile" labelText="AAM profile" size="sm" value={profile} data-testid="launch-profile" onChange={(e) => setProfile(e.target.value)}>
          {profiles.map((p) => (
            <SelectItem key={p} value={p} text={p} />
          ))}
        </Select>
        <Select id="launch-compare" labelText="Side by side with" size="sm" value={compare} data-testid="launch-compare" onChange={(e) => setCompare(e.target.value)}>
          <SelectItem value="" text="nothing (one run)" />
          {profiles.map((p) => (
            <SelectItem key={p} value={p} text={p} />
          ))}
        </Select>
        <TextInput
          id="launch-aam-url"
          labelText="External AAM URL (instead of the profile)"
          size="sm"
          placeholder="http://127.0.0.1:9000"
          disabled={!externalAam}
          helperText={externalAam ? undefined : 'this backend runs the built-in AAM only'}
          value={aamUrl}
          data-testid="launch-aam-url"
          onChange={(e) => setAamUrl(e.target.value)}
        />
      </div>
      <div className="row" style={{ marginTop: '0.75rem' }}>
        <Button size="sm" disabled={busy || !!running} onClick={launch} data-testid="launch-start">
          Launch
        </Button>
        <Button size="sm" kind="danger--tertiary" disabled={!running} onClick={stop} data-testid="run-stop">
          Stop the run
        </Button>
      </div>
      {notice && <p className="muted" data-testid="launch-notice">{notice}</p>}
      {error && <InlineNotification kind="error" lowContrast title="Launch" subtitle={error} data-testid="launch-error" />}
    </div>
  );
}
