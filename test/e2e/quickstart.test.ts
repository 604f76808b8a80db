import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { QUICKSTART_CONFIG } from '../../core/runtime/quickstart.ts';
import { BridgeProcess } from '../helpers/bridge-process.ts';

// The README's promise, checked on a real process: `ssf-bridge run` with no arguments starts,
// logs where it listens and where its data lives, answers /healthz, turns an ingested event into
// a SET, and drains and exits 0 on SIGTERM.

const running: BridgeProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
});

function start(cwd: string, args: string[] = ['run'], env: Record<string, string> = {}) {
  const bridge = new BridgeProcess(args, { cwd, env: { SSF_BRIDGE_PORT: '0', ...env } });
  running.push(bridge);
  return bridge;
}

const EVENT = (email: string) =>
  JSON.stringify({ type: 'caep.session-revoked', subject: { format: 'email', email } });

async function ingest(url: string, body: string, token = 'quickstart-token') {
  return fetch(`${url}/ingest/quickstart`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body,
  });
}

describe('ssf-bridge run (quickstart, real child process)', () => {
  it('starts on embedded defaults, serves /healthz, delivers a SET to stdout, and exits 0 on SIGTERM', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-quickstart-'));
    const bridge = start(cwd);
    const url = await bridge.url();
    const listening = bridge.records().find((r) => String(r.msg).startsWith('ssf-bridge listening'));
    expect(listening).toMatchObject({ dataDir: join(cwd, 'data'), storage: 'sqlite' });
    expect(statSync(join(cwd, 'data', 'keys', 'signing-keys.json')).mode & 0o777).toBe(0o600);

    const health = await fetch(`${url}/healthz`);
    expect(health.status).toBe(200);

    const res = await ingest(url, EVENT('jane@example.com'));
    expect(res.status).toBe(202);
    const again = await ingest(url, EVENT('jane@example.com'));
    expect(await again.json()).toMatchObject({ duplicates: 1 });
    const line = await bridge.waitForLine(
      (l) => l.includes('delivered_set') && l.includes('jane@example.com'),
    );
    const set = JSON.parse(line) as { delivered_set: { claims: Record<string, unknown> } };
    expect(set.delivered_set.claims).toMatchObject({
      iss: url,
      aud: 'urn:ssf-bridge:quickstart',
      sub_id: { format: 'email', email: 'jane@example.com' },
    });
    expect(bridge.stderr.join('')).toContain(`curl -s -X POST ${url}/ingest/quickstart`);

    bridge.kill('SIGTERM');
    const exit = await bridge.exited;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(bridge.records().map((r) => r.msg)).toEqual(
      expect.arrayContaining(['draining before exit', 'stopped']),
    );
  });

  it('keeps an event accepted just before SIGTERM and delivers it at the latest after a restart', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-drain-'));
    const first = start(cwd);
    const url = await first.url();
    const res = await ingest(url, EVENT('last.one@example.com'));
    expect(res.status).toBe(202);
    first.kill('SIGTERM');
    expect((await first.exited).code).toBe(0);
    const deliveredBefore = first.stdout.some((l) => l.includes('last.one@example.com'));
    if (!deliveredBefore) {
      const second = start(cwd);
      await second.waitForLine((l) => l.includes('delivered_set') && l.includes('last.one@example.com'));
      second.kill('SIGTERM');
      expect((await second.exited).code).toBe(0);
    }
  });

  it('refuses a wrong ingest token with 403 and keeps serving', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-auth-'));
    const bridge = start(cwd);
    const url = await bridge.url();
    expect((await ingest(url, EVENT('x@example.com'), 'not-the-token')).status).toBe(403);
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    bridge.kill('SIGINT');
    expect((await bridge.exited).code).toBe(0);
  });

  it('exits 1 and names the failing unit when startup fails (port taken)', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-port-'));
    const holder = start(cwd);
    const url = await holder.url();
    const port = new URL(url).port;
    const other = start(mkdtempSync(join(tmpdir(), 'ssf-port2-')), ['run'], { SSF_BRIDGE_PORT: port });
    const exit = await other.exited;
    expect(exit.code).toBe(1);
    expect(other.stderr.join('')).toMatch(/startup failed: .*EADDRINUSE/);
  });

  it('exits 2 on a quickstart token too short to guard the transmitter, naming SSF_BRIDGE_QUICKSTART_TOKEN', async () => {
    const short = start(mkdtempSync(join(tmpdir(), 'ssf-short-')), ['run'], {
      SSF_BRIDGE_QUICKSTART_TOKEN: 'too-short',
    });
    const exit = await short.exited;
    expect(exit.code).toBe(2);
    const err = short.stderr.join('');
    expect(err).toMatch(/transmitter\.receivers\[0\]\.token: must be at least 16 characters/);
    expect(err).toContain('SSF_BRIDGE_QUICKSTART_TOKEN');
    expect(err).not.toContain('too-short');
  });

  it('a second bridge on the same data directory (another port) refuses to start; the first keeps serving', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-two-'));
    const first = start(cwd);
    const url = await first.url();
    const second = start(cwd);
    const exit = await second.exited;
    expect(exit.code).toBe(1);
    expect(second.stderr.join('')).toMatch(
      /startup failed: the database \S+ssf-bridge\.db is in use by another running bridge/,
    );
    // It stopped before serving anything, and the first bridge still accepts and delivers.
    expect(second.stdout.some((l) => l.includes('ssf-bridge listening'))).toBe(false);
    expect((await ingest(url, EVENT('still.one@example.com'))).status).toBe(202);
    await first.waitForLine((l) => l.includes('delivered_set') && l.includes('still.one@example.com'));
  });

  it('storage.lock_wait: a bridge started beside the one it replaces waits, then serves the moment the old one stops', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-upgrade-'));
    writeFileSync(
      join(cwd, 'bridge.yaml'),
      `${QUICKSTART_CONFIG}\nstorage:\n  driver: sqlite\n  lock_wait: 60s\n`,
    );
    const args = ['run', '--config', 'bridge.yaml'];
    const old = start(cwd, args);
    const oldUrl = await old.url();
    const next = start(cwd, args);
    await next.waitForLine((l) => l.includes('waiting for it to stop (storage.lock_wait)'));
    // While it waits, the old bridge is the one serving; the new one listens nowhere yet.
    expect((await ingest(oldUrl, EVENT('before.upgrade@example.com'))).status).toBe(202);
    expect(next.stdout.some((l) => l.includes('ssf-bridge listening'))).toBe(false);

    old.kill('SIGTERM');
    expect((await old.exited).code).toBe(0);
    const nextUrl = await next.url();
    expect(next.records().map((r) => r.msg)).toContain('the other bridge stopped; database lock taken');
    expect((await ingest(nextUrl, EVENT('after.upgrade@example.com'))).status).toBe(202);
    await next.waitForLine((l) => l.includes('delivered_set') && l.includes('after.upgrade@example.com'));
    const delivered = [...old.stdout, ...next.stdout].filter(
      (l) => l.includes('delivered_set') && l.includes('before.upgrade@example.com'),
    );
    expect(delivered.length).toBeGreaterThanOrEqual(1);

    // A bridge told to stop while it waits exits 0, without ever having served.
    const third = start(cwd, args);
    await third.waitForLine((l) => l.includes('waiting for it to stop (storage.lock_wait)'));
    third.kill('SIGTERM');
    expect(await third.exited).toEqual({ code: 0, signal: null });
    expect(third.records().map((r) => r.msg)).toContain('stopped before it started serving');
    expect((await ingest(nextUrl, EVENT('still.serving@example.com'))).status).toBe(202);
  });

  it('validate prints every problem of a file with three mistakes and exits 2', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-validate-'));
    writeFileSync(
      join(cwd, 'bridge.yaml'),
      [
        'sever:',
        '  port: 8080',
        'inbound:',
        '  - id: hr',
        '    connector: events-api',
        '    config: {token: "${env:HR_TOKEN_THAT_IS_NOT_SET}"}',
        'outbound:',
        '  - id: out',
        '    connector: log',
        '    config: {format: pretty}',
      ].join('\n'),
    );
    const validate = start(cwd, ['validate', '--config', 'bridge.yaml']);
    const exit = await validate.exited;
    expect(exit.code).toBe(2);
    const err = validate.stderr.join('');
    expect(err).toContain('bridge.yaml: 3 problems');
    expect(err).toMatch(/sever: unknown key "sever"; did you mean "server"\?/);
    expect(err).toMatch(
      /inbound\[0\]\.config\.token: environment variable HR_TOKEN_THAT_IS_NOT_SET is not set/,
    );
    expect(err).toMatch(
      /outbound\[0\]\.config\.format: Invalid option: expected one of "decoded"\|"compact"/,
    );
  });
});
