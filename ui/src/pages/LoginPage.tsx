import { useState } from 'react';
import { Button, InlineNotification, PasswordInput } from '@carbon/react';
import { api, setToken } from '../lib/api';

/** Asked when the page has no token: paste the one the backend wrote to var/backend-token. */
export function LoginPage({ onLogin, problem }: { onLogin: () => void; problem: string | null }) {
  const [token, setTokenText] = useState('');
  const [error, setError] = useState<string | null>(problem);
  async function submit(ev: React.FormEvent) {
    ev.preventDefault();
    setToken(token.trim());
    try {
      await api('/api/session');
      onLogin();
    } catch (e) {
      setToken(null);
      setError((e as Error).message);
    }
  }
  return (
    <div className="page" style={{ maxWidth: 560 }}>
      <h2>Sign in to the console</h2>
      <p className="muted">
        Open the login link <code>make demo</code> printed (it works once), or paste the backend token:
        it is in <code>var/backend-token</code> (or <code>$GAUNTLET_BACKEND_TOKEN</code>). The token stays in
        this tab only.
      </p>
      <form onSubmit={submit} data-testid="login-form">
        <PasswordInput
          id="login-token"
          labelText="Backend token"
          value={token}
          data-testid="login-token"
          onChange={(e) => setTokenText(e.target.value)}
        />
        <Button type="submit" size="sm" style={{ marginTop: '1rem' }} data-testid="login-submit">
          Sign in
        </Button>
      </form>
      {error && <InlineNotification kind="error" lowContrast title="Sign-in" subtitle={error} data-testid="login-error" />}
    </div>
  );
}
