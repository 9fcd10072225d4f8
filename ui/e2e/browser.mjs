// Chromium for the console's browser tests: Debian's /usr/bin/chromium driven by playwright-core
// (never a downloaded browser). Waits are on status elements, never on network idle: the page
// keeps an event stream open, so the network never idles.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launch() {
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS });
}

export function need(name) {
  const value = process.env[name];
  if (!value) throw new Error(`set ${name}`);
  return value;
}

export function outDir() {
  const dir = need('CONSOLE_OUT');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Log one step (pytest shows the output when a test fails). */
export function step(text) {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${text}`);
}

/** Page errors fail the test: a view that throws must be seen, not hidden by its boundary. */
export function watchErrors(page, errors) {
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console.error: ${m.text()}`);
  });
}
