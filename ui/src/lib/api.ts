// The backend's API from the page: the bearer token lives in this tab's sessionStorage only.
const TOKEN_KEY = 'gauntlet.backend-token';

export class ApiError extends Error {
  constructor(
    public status: number,
    message: string,
  ) {
    super(message);
  }
}

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra?: Record<string, string>): Record<string, string> {
  const token = getToken();
  return { ...(token ? { Authorization: `Bearer ${token}` } : {}), ...(extra ?? {}) };
}

async function reason(response: Response): Promise<string> {
  try {
    const body = await response.json();
    const detail = body.detail ?? body.error ?? response.statusText;
    return typeof detail === 'string' ? detail : JSON.stringify(detail);
  } catch {
    return response.statusText;
  }
}

export async function api<T = any>(path: string, init?: { method?: string; body?: unknown }): Promise<T> {
  const response = await fetch(path, {
    method: init?.method ?? (init?.body === undefined ? 'GET' : 'POST'),
    headers: headers(init?.body === undefined ? undefined : { 'Content-Type': 'application/json' }),
    body: init?.body === undefined ? undefined : JSON.stringify(init.body),
  });
  if (!response.ok) throw new ApiError(response.status, await reason(response));
  return (await response.json()) as T;
}

/** Trade a one-time login code (from the demo's link fragment) for the backend token. */
export async function redeemLoginCode(code: string): Promise<string> {
  const response = await fetch('/api/login', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code }),
  });
  if (!response.ok) throw new ApiError(response.status, await reason(response));
  const body = await response.json();
  return body.token as string;
}

/** Download a backend file (auth header included) and save it under `filename`. */
export async function download(path: string, filename: string): Promise<void> {
  const response = await fetch(path, { headers: headers() });
  if (!response.ok) throw new ApiError(response.status, await reason(response));
  const blob = await response.blob();
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export interface SseMessage {
  event: string;
  data: any;
  bytes: number;
}

/** Parse SSE frames out of a text buffer; returns the messages and the unparsed rest. */
export function parseSse(buffer: string): { messages: SseMessage[]; rest: string } {
  const messages: SseMessage[] = [];
  let start = 0;
  for (;;) {
    const end = buffer.indexOf('\n\n', start);
    if (end < 0) break;
    const frame = buffer.slice(start, end);
    start = end + 2;
    let event = 'message';
    const data: string[] = [];
    for (const line of frame.split('\n')) {
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'event') event = value;
      else if (field === 'data') data.push(value);
    }
    if (data.length) {
      messages.push({ event, data: JSON.parse(data.join('\n')), bytes: frame.length + 2 });
    }
  }
  return { messages, rest: buffer.slice(start) };
}

/**
 * The one event stream (GET /api/stream), read with fetch so the token goes in a header (an
 * EventSource cannot send one, and a token in the URL would land in logs). Reconnects with
 * back-off until `signal` aborts.
 */
export async function openStream(
  onMessage: (m: SseMessage) => void,
  onStatus: (s: 'connecting' | 'open' | 'closed' | 'unauthorized') => void,
  signal: AbortSignal,
): Promise<void> {
  let delay = 500;
  while (!signal.aborted) {
    onStatus('connecting');
    try {
      const response = await fetch('/api/stream', { headers: headers(), signal });
      if (response.status === 401 || response.status === 403) {
        onStatus('unauthorized');
        return;
      }
      if (!response.ok || !response.body) throw new Error(`stream answered ${response.status}`);
      onStatus('open');
      delay = 500;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = '';
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const { messages, rest } = parseSse(buffer);
        buffer = rest;
        for (const m of messages) onMessage(m);
      }
    } catch (err) {
      if (signal.aborted) return;
    }
    onStatus('closed');
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 8000);
  }
}
