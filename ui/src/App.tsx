import { useEffect, useState, useSyncExternalStore } from 'react';
import { Button, Header, HeaderGlobalBar, HeaderMenuItem, HeaderName, HeaderNavigation, Theme } from '@carbon/react';
import { ErrorBoundary } from './components/ErrorBoundary';
import { getToken, redeemLoginCode, setToken } from './lib/api';
import { live, useLive } from './lib/live';
import { LivePage } from './pages/LivePage';
import { LoginPage } from './pages/LoginPage';
import { RunPage } from './pages/RunPage';
import { RunsPage } from './pages/RunsPage';
import { ServicesPage } from './pages/ServicesPage';

type ThemeName = 'g100' | 'white';
const THEME_KEY = 'gauntlet.theme';

function subscribeHash(fn: () => void): () => void {
  window.addEventListener('hashchange', fn);
  return () => window.removeEventListener('hashchange', fn);
}

function useRoute(): string {
  return useSyncExternalStore(subscribeHash, () => window.location.hash || '#/live');
}

/** `#login=<code>` (the demo's one-time link): taken off the address bar at once, then redeemed. */
function takeLoginCode(): string | null {
  const match = /^#login=([A-Za-z0-9_-]+)$/.exec(window.location.hash);
  if (!match) return null;
  window.history.replaceState(null, '', `${window.location.pathname}#/live`);
  return match[1];
}

function StreamBadge() {
  const store = useLive();
  const colour = store.status === 'open' ? '#24a148' : store.status === 'unauthorized' ? '#da1e28' : '#f1c21b';
  return (
    <span data-testid="stream-status" data-status={store.status} style={{ color: '#c6c6c6', fontSize: 12, padding: '0 1rem', alignSelf: 'center' }}>
      <span className="band-dot" style={{ background: colour }} />
      live stream {store.status}
    </span>
  );
}

export function App() {
  const route = useRoute();
  const [theme, setTheme] = useState<ThemeName>(() => (localStorage.getItem(THEME_KEY) as ThemeName) || 'g100');
  const [authed, setAuthed] = useState<boolean>(() => !!getToken());
  const [problem, setProblem] = useState<string | null>(null);
  const store = useLive();

  useEffect(() => {
    // On load, and when a login link is opened in a tab that already shows the console.
    const code = takeLoginCode();
    if (!code) return;
    redeemLoginCode(code)
      .then((token) => {
        setToken(token);
        setAuthed(true);
        setProblem(null);
      })
      .catch((e) => setProblem((e as Error).message));
  }, [route]);

  useEffect(() => {
    if (!authed) return;
    live.start();
    return () => live.stop();
  }, [authed]);

  useEffect(() => {
    if (store.status === 'unauthorized') {
      setToken(null);
      setAuthed(false);
      setProblem('The backend refused the token (it changes with every demo): sign in again.');
    }
  }, [store.status]);

  useEffect(() => {
    localStorage.setItem(THEME_KEY, theme);
    document.body.style.background = theme === 'g100' ? '#161616' : '#ffffff';
  }, [theme]);

  const runMatch = /^#\/runs\/([A-Za-z0-9_-]+)$/.exec(route);
  let page;
  if (!authed) page = <LoginPage onLogin={() => setAuthed(true)} problem={problem} />;
  else if (runMatch)
    page = (
      <ErrorBoundary name="run" key={route}>
        <RunPage runId={runMatch[1]} />
      </ErrorBoundary>
    );
  else if (route.startsWith('#/runs'))
    page = (
      <ErrorBoundary name="runs" key={route}>
        <RunsPage />
      </ErrorBoundary>
    );
  else if (route.startsWith('#/services'))
    page = (
      <ErrorBoundary name="services" key={route}>
        <ServicesPage />
      </ErrorBoundary>
    );
  else
    page = (
      <ErrorBoundary name="live" key="live">
        <div className="page">
          <LivePage invariantNames={store.invariantNames} />
        </div>
      </ErrorBoundary>
    );

  return (
    <Theme theme={theme} className="app-shell" data-testid="app" data-theme={theme}>
      <Theme theme="g100">
        <Header aria-label="AAM Gauntlet">
          <HeaderName href="#/live" prefix="AAM" data-testid="nav-home">
            Gauntlet
          </HeaderName>
          <HeaderNavigation aria-label="pages">
            <HeaderMenuItem href="#/live" isActive={route.startsWith('#/live')} data-testid="nav-live">
              Live
            </HeaderMenuItem>
            <HeaderMenuItem href="#/runs" isActive={route.startsWith('#/runs')} data-testid="nav-runs">
              Runs
            </HeaderMenuItem>
            <HeaderMenuItem href="#/services" isActive={route.startsWith('#/services')} data-testid="nav-services">
              Services
            </HeaderMenuItem>
          </HeaderNavigation>
          <HeaderGlobalBar>
            {authed && <StreamBadge />}
            <Button
              kind="ghost"
              size="sm"
              data-testid="theme-toggle"
              onClick={() => setTheme(theme === 'g100' ? 'white' : 'g100')}
            >
              {theme === 'g100' ? 'Light theme' : 'Dark theme'}
            </Button>
            {authed && (
              <Button
                kind="ghost"
                size="sm"
                data-testid="sign-out"
                onClick={() => {
                  setToken(null);
                  live.stop();
                  setAuthed(false);
                  setProblem(null);
                }}
              >
                Sign out
              </Button>
            )}
          </HeaderGlobalBar>
        </Header>
      </Theme>
      {page}
    </Theme>
  );
}
