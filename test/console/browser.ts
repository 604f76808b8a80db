/**
 * Real headless Chromium (Debian's package) driven by playwright-core, with a fresh profile,
 * no network services of its own, and a log of every request the pages make.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

const CONSOLE = join(ROOT, 'core/console');
const BUILT = join(CONSOLE, 'dist/index.html');

/** The newest modification time of the console's sources. */
function sourcesChangedAt(): number {
  let newest = 0;
  const walk = (path: string) => {
    const info = statSync(path);
    if (info.isDirectory()) for (const name of readdirSync(path)) walk(join(path, name));
    else newest = Math.max(newest, info.mtimeMs);
  };
  for (const path of ['src', 'index.html', 'vite.config.ts']) walk(join(CONSOLE, path));
  return newest;
}

/**
 * The console is built by `npm ci` (prepare); build it here when a checkout has not yet, or when
 * its sources changed since, so the browser tests never pass on an older build. Test files
 * running at once take turns (a lock directory), as a build empties the folder first.
 */
export function ensureConsoleBuilt(): void {
  const lock = join(CONSOLE, '.build-lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      // A lock left by a test run that was killed while building is taken over.
      if (Date.now() > deadline) rmSync(lock, { recursive: true, force: true });
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    if (existsSync(BUILT) && statSync(BUILT).mtimeMs >= sourcesChangedAt()) return;
    execFileSync(
      process.execPath,
      [join(ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--config', 'core/console/vite.config.ts'],
      { cwd: ROOT, stdio: 'ignore' },
    );
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

export interface Browser {
  context: BrowserContext;
  page: Page;
  requests: string[];
  problems: string[];
  shot(name: string): Promise<void>;
  close(): Promise<void>;
}

/** Logs in to the console at `baseUrl` with an admin token and waits for the dashboard. */
export async function logIn(browser: Browser, baseUrl: string, token: string): Promise<void> {
  const { page } = browser;
  await page.goto(`${baseUrl}/console/`);
  await page.fill('#token', token);
  await page.click('button[type=submit]');
  await page.waitForSelector('[data-test=dashboard]');
}

export async function openBrowser(): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'ssf-console-chromium-'));
  mkdirSync(SCREENSHOTS, { recursive: true });
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 900 },
  });
  const requests: string[] = [];
  const problems: string[] = [];
  context.on('request', (req) => requests.push(req.url()));
  const page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of 40[0-9]/.test(msg.text())) problems.push(msg.text());
  });
  page.on('pageerror', (err) => problems.push(err.message));
  return {
    context,
    page,
    requests,
    problems,
    shot: async (name) => {
      await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`), fullPage: true });
    },
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
