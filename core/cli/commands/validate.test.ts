import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { capturingIo } from '../../../test/helpers/capture.ts';
import { main } from '../main.ts';

const PLUGIN = new URL('../../../test/conformance/specimens/specimen-pusher/plugin.ts', import.meta.url);
const GOOD_TOKEN = 'validate-good-token-4e1a';
const BAD_TOKEN = 'validate-refused-token-8b7c';

let dir: string;
let api: Server;
let apiUrl: string;
const seen: Array<{ path: string; authorization: string | undefined }> = [];

beforeAll(async () => {
  // A receiver API: /ok answers, /refuse refuses the credentials.
  api = createServer((req, res) => {
    seen.push({ path: req.url ?? '', authorization: req.headers.authorization });
    res.writeHead(req.url === '/ok' ? 200 : 401, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.url === '/ok' ? { ok: true } : { error: 'invalid_token' }));
  });
  await new Promise<void>((resolve) => api.listen(0, '127.0.0.1', resolve));
  apiUrl = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => api.close(() => resolve())));

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-cli-validate-'));
  seen.length = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function config(instances: Array<{ id: string; path: string; token: string; enabled?: boolean }>): string {
  const file = join(dir, 'bridge.yaml');
  writeFileSync(
    file,
    [
      `plugins: [${JSON.stringify(pathToFileURL(PLUGIN.pathname).href)}]`,
      'outbound:',
      ...instances.flatMap((i) => [
        `  - id: ${i.id}`,
        '    connector: specimen-pusher',
        ...(i.enabled === false ? ['    enabled: false'] : []),
        `    config: {endpoint: "${apiUrl}${i.path}", api_token: "${i.token}"}`,
      ]),
    ].join('\n'),
  );
  return file;
}

async function validate(args: string[]) {
  const io = capturingIo();
  const code = await main(['node', 'ssf-bridge', 'validate', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

describe('ssf-bridge validate --check', () => {
  const two = () =>
    config([
      { id: 'receiver-ok', path: '/ok', token: GOOD_TOKEN },
      { id: 'receiver-refusing', path: '/refuse', token: BAD_TOKEN },
    ]);

  it('runs each instance check() against its target, one line each, and exits 1 when one fails', async () => {
    const { code, out, err } = await validate(['--config', two(), '--check']);
    expect(code).toBe(1);
    const lines = out.split('\n');
    expect(lines[0]).toMatch(/: valid \(0 inbound, 2 outbound instances\)$/);
    expect(lines[1]).toBe(`outbound receiver-ok (specimen-pusher): ok (${apiUrl}/ok answers)`);
    expect(lines[2]).toMatch(
      /^outbound receiver-refusing \(specimen-pusher\): failed: .*\/refuse refused with token \[redacted\]: .*401/,
    );
    // The check went out with each instance's own credentials, and never printed them.
    expect(seen).toEqual(
      expect.arrayContaining([
        { path: '/ok', authorization: `Bearer ${GOOD_TOKEN}` },
        { path: '/refuse', authorization: `Bearer ${BAD_TOKEN}` },
      ]),
    );
    expect(`${out}\n${err}`).not.toContain(BAD_TOKEN);
    expect(`${out}\n${err}`).not.toContain(GOOD_TOKEN);
  });

  it('checks only the instance named, and answers JSON with --json', async () => {
    const { code, out } = await validate([
      '--config',
      two(),
      '--check',
      '--instance',
      'receiver-ok',
      '--json',
    ]);
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({
      valid: true,
      problems: [],
      checks: [
        {
          instance: 'receiver-ok',
          kind: 'outbound',
          connector: 'specimen-pusher',
          outcome: 'ok',
          message: `${apiUrl}/ok answers`,
        },
      ],
    });
    expect(seen.map((s) => s.path)).toEqual(['/ok']);
  });

  it('skips disabled instances unless named', async () => {
    const file = config([{ id: 'off', path: '/refuse', token: BAD_TOKEN, enabled: false }]);
    const skipped = await validate(['--config', file, '--check']);
    expect(skipped.code).toBe(0);
    expect(skipped.out).toContain('outbound off (specimen-pusher): not checked: disabled');
    const named = await validate(['--config', file, '--check', '--instance', 'off']);
    expect(named.code).toBe(1);
    expect(named.out).not.toContain(BAD_TOKEN);
  });

  it('exits 2 for an unknown instance, --instance without --check, and an invalid config', async () => {
    expect((await validate(['--config', two(), '--check', '--instance', 'nope'])).code).toBe(2);
    expect((await validate(['--config', two(), '--instance', 'receiver-ok'])).code).toBe(2);
    const invalid = config([{ id: 'bad', path: 'not a url', token: BAD_TOKEN }]);
    const result = await validate(['--config', invalid, '--check']);
    expect(result.code).toBe(2);
    expect(seen).toEqual([]);
  });

  it('without --check, sends nothing', async () => {
    const { code } = await validate(['--config', two()]);
    expect(code).toBe(0);
    expect(seen).toEqual([]);
  });
});

describe('ssf-bridge validate: routes to disabled instances', () => {
  it('warns, naming the route, when a route sends to an outbound instance that is disabled; the config stays valid', async () => {
    const file = config([
      { id: 'live', path: '/ok', token: GOOD_TOKEN },
      { id: 'paused', path: '/ok', token: GOOD_TOKEN, enabled: false },
    ]);
    writeFileSync(
      file,
      [
        readFileSync(file, 'utf8'),
        'inbound:',
        '  - id: api',
        '    connector: events-api',
        '    config: {token: "ingest-token-for-validate-test"}',
        'routes:',
        '  - {id: both, from: [api], to: [live, paused]}',
      ].join('\n'),
    );
    const text = await validate(['--config', file]);
    expect(text.code).toBe(0);
    expect(text.err).toContain(
      'warning: routes[0].to: outbound instance paused is disabled: events this route matches are not queued for it while it is',
    );
    expect(text.err).not.toContain('instance live');
    const json = await validate(['--config', file, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({
      valid: true,
      warnings: [{ path: 'routes[0].to', message: expect.stringContaining('paused is disabled') }],
    });
  });
});
