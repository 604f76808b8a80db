import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { KeyStore, decodeCompact, verifySet } from '../../ssf/index.ts';
import type { CliIo } from '../io.ts';
import { main } from '../main.ts';

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    readStdin: async () => '',
  };
}

async function run(...args: string[]) {
  const io = capture();
  const code = await main(['node', 'ssf-bridge', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

const subject = '{"format":"email","email":"dana@example.com"}';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssf-cli-events-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ssf-bridge events list', () => {
  it('lists every catalog type with its URI and marks the deprecated one', async () => {
    const result = await run('events', 'list');
    expect(result.code).toBe(0);
    const lines = result.out.split('\n');
    expect(lines).toHaveLength(27);
    expect(lines.find((l) => l.startsWith('caep.session-revoked'))).toMatch(
      /https:\/\/schemas\.openid\.net\/secevent\/caep\/event-type\/session-revoked$/,
    );
    expect(lines.find((l) => l.startsWith('risc.sessions-revoked'))).toMatch(/\(deprecated\)$/);
    const json = JSON.parse((await run('events', 'list', '--json')).out) as Array<{ short_name: string }>;
    expect(json).toHaveLength(27);
  });
});

describe('ssf-bridge events sign', () => {
  it('prints a compact SET signed with the data directory key, creating it on first use', async () => {
    const result = await run(
      'events',
      'sign',
      '--type',
      'caep.session-revoked',
      '--subject',
      subject,
      '--claims',
      '{"reason_admin":{"en":"Admin revoked session"}}',
      '--aud',
      'https://rx.example',
      '--iss',
      'https://tx.example',
      '--data-dir',
      dir,
    );
    expect(result.code).toBe(0);
    expect(result.err).toMatch(/^generated a signing key in .*signing-keys\.json/);
    expect(result.out).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const store = await KeyStore.open({ dataDir: dir, create: false });
    const verified = await verifySet(result.out, {
      keys: store.verificationKeys(),
      issuer: 'https://tx.example',
      audience: 'https://rx.example',
    });
    expect(verified.header).toMatchObject({ alg: 'RS256', typ: 'secevent+jwt' });
    expect(verified.event).toMatchObject({ reason_admin: { en: 'Admin revoked session' } });
    const again = await run(
      'events',
      'sign',
      '--type',
      'caep.session-revoked',
      '--subject',
      subject,
      '--aud',
      'x',
      '--data-dir',
      dir,
    );
    expect(again.err).toBe('');
  });

  it('shapes the SET with --profile and --profile-options', async () => {
    const result = await run(
      'events',
      'sign',
      '--type',
      'caep.risk-level-change',
      '--subject',
      '{"format":"complex","user":{"format":"email","email":"dana@example.com"}}',
      '--claims',
      '{"principal":"USER","current_level":"HIGH","reason_admin":{"en":"EDR"}}',
      '--aud',
      'https://example.okta.com',
      '--profile',
      'okta-itp',
      '--profile-options',
      '{"top_level_sub_id":false}',
      '--data-dir',
      dir,
      '--jti',
      'jti-7',
      '--txn',
      'txn-7',
    );
    expect(result.code).toBe(0);
    const { payload } = decodeCompact(result.out) as { payload: Record<string, unknown> };
    expect(payload).toMatchObject({
      iss: 'urn:ssf-bridge:cli',
      jti: 'jti-7',
      txn: 'txn-7',
      aud: 'https://example.okta.com',
    });
    expect(payload).not.toHaveProperty('sub_id');
    expect(Object.keys(payload.events as object)).toEqual([
      'https://schemas.okta.com/secevent/okta/event-type/user-risk-change',
    ]);
  });

  it('exits 2 with the reason for bad JSON, unknown types, invalid events and profile refusals', async () => {
    const sign = (...extra: string[]) =>
      run('events', 'sign', '--aud', 'https://rx.example', '--data-dir', dir, ...extra);
    const badJson = await sign('--type', 'caep.session-revoked', '--subject', '{format:email}');
    expect([badJson.code, badJson.err]).toEqual([2, expect.stringMatching(/--subject is not valid JSON/)]);
    const unknown = await sign('--type', 'caep.session-revokd', '--subject', subject);
    expect([unknown.code, unknown.err]).toEqual([
      2,
      expect.stringMatching(/did you mean "caep.session-revoked"/),
    ]);
    const invalid = await sign(
      '--type',
      'caep.device-compliance-change',
      '--subject',
      subject,
      '--claims',
      '{"current_status":"compliant"}',
    );
    expect([invalid.code, invalid.err]).toEqual([
      2,
      expect.stringMatching(/previous_status: is required \[SSF_ERR_EVENT_INVALID\]/),
    ]);
    const refused = await sign(
      '--type',
      'risc.account-purged',
      '--subject',
      subject,
      '--profile',
      'okta-itp',
    );
    expect([refused.code, refused.err]).toEqual([
      2,
      expect.stringMatching(/Okta accepts only .* \[SSF_ERR_PROFILE_REFUSED\]/),
    ]);
    const noProfile = await sign(
      '--type',
      'caep.session-revoked',
      '--subject',
      subject,
      '--profile',
      'apple',
    );
    expect([noProfile.code, noProfile.err]).toEqual([
      2,
      expect.stringMatching(/unknown target profile "apple"/),
    ]);
  });

  it('needs --type and --subject', async () => {
    expect((await run('events', 'sign', '--subject', subject)).code).toBe(2);
  });

  it('needs --aud, and a command refused for its arguments writes no key', async () => {
    const result = await run(
      'events',
      'sign',
      '--type',
      'caep.session-revoked',
      '--subject',
      subject,
      '--iss',
      'https://bridge.example',
      '--data-dir',
      dir,
    );
    expect(result.code).toBe(2);
    expect(result.err).toContain('a SET needs an audience: give --aud <receiver>');
    expect(existsSync(join(dir, 'keys'))).toBe(false);
  });

  it('an empty --jti is refused by its own name, before a key is written', async () => {
    const result = await run(
      'events',
      'sign',
      '--type',
      'caep.session-revoked',
      '--subject',
      subject,
      '--aud',
      'https://rx.example',
      '--jti',
      '',
      '--data-dir',
      dir,
    );
    expect(result.code).toBe(2);
    expect(result.err).toContain('--jti must not be empty (leave it out for a random UUID)');
    expect(existsSync(join(dir, 'keys'))).toBe(false);
  });
});

describe('ssf-bridge events: --data-dir', () => {
  it('refuses a data directory under /proc or /sys as the config does, instead of hanging (exit 2)', async () => {
    for (const dataDir of ['/proc/self/x', '/sys/kernel/x', '/proc']) {
      const result = await run(
        'events',
        'sign',
        '--aud',
        'https://rx.example',
        '--type',
        'caep.session-revoked',
        '--subject',
        subject,
        '--data-dir',
        dataDir,
      );
      expect([result.code, result.err]).toEqual([
        2,
        `--data-dir ${dataDir}: must not be under /proc or /sys`,
      ]);
    }
  }, 10_000);
});

describe('ssf-bridge events: which signing key', () => {
  it('without --data-dir or --config, signs with the key of the bridge `ssf-bridge run` starts (SSF_BRIDGE_DATA_DIR), as `keys` finds it', async () => {
    const data = join(dir, 'quickstart-data');
    vi.stubEnv('SSF_BRIDGE_CONFIG', undefined);
    vi.stubEnv('SSF_BRIDGE_DATA_DIR', data);
    try {
      expect((await run('keys', 'generate', '--algorithm', 'ES256')).code).toBe(0);
      const result = await run(
        'events',
        'sign',
        '--type',
        'caep.session-revoked',
        '--subject',
        subject,
        '--aud',
        'https://rx.example',
      );
      expect(result.code).toBe(0);
      expect(result.err).not.toMatch(/generated a signing key/);
      const store = await KeyStore.open({ dataDir: data, create: false });
      const verified = await verifySet(result.out, {
        keys: store.verificationKeys(),
        issuer: 'urn:ssf-bridge:cli',
        audience: 'https://rx.example',
      });
      expect(verified.header.alg).toBe('ES256');
      expect(verified.header.kid).toBe(store.list()[0]?.kid);
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe('ssf-bridge events send (RFC 8935 push)', () => {
  let server: Server;
  let url: string;
  let received: Array<{ method?: string; headers: IncomingHttpHeaders; body: string }> = [];
  let answer: { status: number; body?: string } = { status: 202 };
  let stall = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push({ method: req.method, headers: req.headers, body });
        if (stall) return;
        res.writeHead(
          answer.status,
          answer.body ? { 'content-type': 'application/json', 'content-language': 'en' } : {},
        );
        res.end(answer.body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ssf/push`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  beforeEach(() => {
    received = [];
    answer = { status: 202 };
    stall = false;
  });

  const send = (...extra: string[]) =>
    run(
      'events',
      'send',
      '--type',
      'caep.session-revoked',
      '--subject',
      subject,
      '--aud',
      'https://rx.example',
      '--data-dir',
      dir,
      '--to',
      url,
      ...extra,
    );

  it('POSTs the SET alone as application/secevent+jwt and prints the 202', async () => {
    const result = await send('--auth', 'Bearer rx-secret');
    expect(result.code).toBe(0);
    expect(result.out).toMatch(
      /^sent SET [\w-]+ to http:\/\/127\.0\.0\.1:\d+\/ssf\/push\nHTTP 202 Accepted$/,
    );
    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request?.method).toBe('POST');
    expect(request?.headers['content-type']).toBe('application/secevent+jwt');
    expect(request?.headers.accept).toBe('application/json');
    expect(request?.headers.authorization).toBe('Bearer rx-secret');
    expect(request?.body).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });

  it('checklist PUSH-04: sends no Authorization header when none is given', async () => {
    await send();
    expect(received[0]?.headers).not.toHaveProperty('authorization');
  });

  it('RFC 8935 §2.3: prints the receiver refusal and exits 1', async () => {
    answer = { status: 400, body: '{"err":"invalid_issuer","description":"iss is not registered"}' };
    const result = await send();
    expect(result.code).toBe(1);
    expect(result.out).toMatch(/HTTP 400 Bad Request\nrefused: invalid_issuer — iss is not registered$/);
  });

  it('prints the answer without the --auth credential, should the receiver echo it', async () => {
    const auth = 'Bearer rx-secret-4f8c2a91';
    answer = {
      status: 401,
      body: JSON.stringify({ message: `token ${auth} refused`, token: 'rx-secret-4f8c2a91' }),
    };
    const result = await send('--auth', auth);
    expect(result.code).toBe(1);
    expect(result.out).toContain('HTTP 401 Unauthorized');
    expect(result.out).toContain('"message": "token [redacted] refused"');
    expect(result.out).toContain('"token": "[redacted]"');
    expect(`${result.out}${result.err}`).not.toContain('rx-secret-4f8c2a91');
  });

  it('exits 2 for a --to that is no http(s) URL or a --timeout out of range, before signing anything', async () => {
    for (const [extra, message] of [
      [['--to', 'notaurl'], '--to "notaurl" is not a URL'],
      [['--to', 'ftp://receiver.example/x'], '--to must be an http or https URL (got ftp:)'],
      [['--timeout', '99999999999'], '--timeout "99999999999" is not a positive duration of at most a day'],
      [['--timeout', '0s'], 'is not a positive duration'],
    ] as const) {
      const result = await send(...extra);
      expect(result.code, extra.join(' ')).toBe(2);
      expect(result.err).toContain(message);
    }
    expect(received).toEqual([]);
    expect(existsSync(join(dir, 'keys'))).toBe(false);
  });

  it('gives up after --timeout and exits 1', async () => {
    stall = true;
    const result = await send('--timeout', '300ms');
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/no answer within 300ms/);
  });
});
