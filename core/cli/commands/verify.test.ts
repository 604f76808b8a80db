import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore, SetCodec, defaultKeysConfig, type MintedSet } from '../../ssf/index.ts';
import type { CliIo } from '../io.ts';
import { main } from '../main.ts';

function capture(stdin = ''): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    readStdin: async () => stdin,
  };
}

async function run(args: string[], stdin = '') {
  const io = capture(stdin);
  const code = await main(['node', 'ssf-bridge', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

let dir: string;
let jwksFile: string;
let set: MintedSet;
let server: Server;
let jwksUrl: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssf-cli-verify-'));
  const store = await KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ algorithm: 'ES256' }) });
  set = await new SetCodec({ issuer: 'https://tx.example', keys: store }).mint({
    event: {
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'dana@example.com' },
      sourceRecordId: 'r',
    },
    sourceInstanceId: 'edr',
    destination: { id: 'rx', audience: 'https://rx.example' },
  });
  jwksFile = join(dir, 'jwks.json');
  await writeFile(jwksFile, JSON.stringify(store.jwks()));
  server = createServer((_req, res) =>
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(store.jwks())),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await rm(dir, { recursive: true, force: true });
});

describe('ssf-bridge verify', () => {
  it('accepts a valid SET against a JWKS file and prints its claims', async () => {
    const result = await run([
      'verify',
      '--jwks',
      jwksFile,
      '--aud',
      'https://rx.example',
      '--iss',
      'https://tx.example',
      set.jwt,
    ]);
    expect(result.code).toBe(0);
    expect(result.out).toMatch(/^valid: caep.session-revoked \(jti [\w-]+\) signed with key \S+/);
    expect(result.out).not.toContain('note:');
    expect(result.out).toContain(`"jti": "${set.jti}"`);
  });

  it('fetches the JWKS from a URL, reads the SET from standard input, and notes unchecked iss/aud', async () => {
    const result = await run(['verify', '--jwks', jwksUrl, '-'], set.jwt);
    expect(result.code).toBe(0);
    expect(result.out).toContain('note: iss was not checked (give --iss)');
    expect(result.out).toContain('note: aud was not checked (give --aud)');
  });

  it('exits 2 with the RFC 8935 error code on refusal', async () => {
    const wrongAud = await run(['verify', '--jwks', jwksFile, '--aud', 'https://other.example', set.jwt]);
    expect(wrongAud.code).toBe(2);
    expect(wrongAud.err).toMatch(
      /^invalid_audience: aud "https:\/\/rx\.example" does not include this receiver/,
    );

    const wrongIss = await run(['verify', '--jwks', jwksFile, '--iss', 'https://evil.example', set.jwt]);
    expect([wrongIss.code, wrongIss.err]).toEqual([2, expect.stringMatching(/^invalid_issuer: /)]);

    const [h, p, s] = set.jwt.split('.');
    const tampered = `${h}.${p}.${(s as string).startsWith('A') ? 'B' : 'A'}${(s as string).slice(1)}`;
    const badSignature = await run(['verify', '--jwks', jwksFile, tampered]);
    expect([badSignature.code, badSignature.err]).toEqual([
      2,
      expect.stringMatching(/^invalid_key: the signature does not verify/),
    ]);

    const old = await run(['verify', '--jwks', jwksFile, '--alg', 'RS256', set.jwt]);
    expect([old.code, old.err]).toEqual([
      2,
      expect.stringMatching(/^invalid_key: alg ES256 is not accepted/),
    ]);
  });

  it('refuses a bad --max-age or --alg with exit 2, and an unreadable JWKS with exit 1', async () => {
    expect((await run(['verify', '--jwks', jwksFile, '--max-age', 'soon', set.jwt])).code).toBe(2);
    expect((await run(['verify', '--jwks', jwksFile, '--alg', 'HS256', set.jwt])).code).toBe(2);
    const missing = await run(['verify', '--jwks', join(dir, 'nope.json'), set.jwt]);
    expect([missing.code, missing.err]).toEqual([1, expect.stringMatching(/cannot read a JWKS/)]);
  });

  it('checklist SSF-02 / SET-14: --legacy-subject accepts the SETs of the legacy-sse-caep and okta-itp (top_level_sub_id false) profiles, which name their subject inside the event', async () => {
    const signDir = await mkdtemp(join(tmpdir(), 'ssf-cli-verify-legacy-'));
    try {
      const sign = async (...extra: string[]) => {
        const signed = await run([
          'events',
          'sign',
          '--aud',
          'https://rx.example',
          '--iss',
          'https://tx.example',
          '--data-dir',
          signDir,
          ...extra,
        ]);
        expect(signed.code, signed.err).toBe(0);
        return signed.out;
      };
      const legacySse = await sign(
        '--type',
        'caep.session-revoked',
        '--subject',
        '{"format":"email","email":"dana@example.com"}',
        '--profile',
        'legacy-sse-caep',
      );
      const oktaInside = await sign(
        '--type',
        'caep.risk-level-change',
        '--subject',
        '{"format":"complex","user":{"format":"email","email":"dana@example.com"}}',
        '--claims',
        '{"principal":"USER","current_level":"HIGH","reason_admin":{"en":"EDR"}}',
        '--profile',
        'okta-itp',
        '--profile-options',
        '{"top_level_sub_id":false}',
      );
      const signJwks = join(signDir, 'jwks.json');
      await writeFile(
        signJwks,
        JSON.stringify((await KeyStore.open({ dataDir: signDir, create: false })).jwks()),
      );
      const cases: Array<[string, string]> = [
        [legacySse, 'caep.session-revoked'],
        [oktaInside, 'okta.user-risk-change'],
      ];
      for (const [token, type] of cases) {
        const args = [
          'verify',
          '--jwks',
          signJwks,
          '--aud',
          'https://rx.example',
          '--iss',
          'https://tx.example',
        ];
        const refused = await run([...args, token]);
        expect(refused.code).toBe(2);
        expect(refused.err).toMatch(/^invalid_request: sub_id is required: .* \[SSF_ERR_SET_SUB_ID\]/);
        expect(refused.err).toContain('accepted with --legacy-subject');
        const accepted = await run([...args, '--legacy-subject', token]);
        expect(accepted.code, accepted.err).toBe(0);
        expect(accepted.out).toMatch(new RegExp(`^valid: ${type} `));
        expect(accepted.out).toContain('no sub_id; the subject was taken from inside the event');
      }
    } finally {
      await rm(signDir, { recursive: true, force: true });
    }
  });

  it('refuses a SET older than --max-age', async () => {
    const store = await KeyStore.open({ dataDir: dir });
    const old = await new SetCodec({ issuer: 'https://tx.example', keys: store }).mint({
      event: {
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'dana@example.com' },
        sourceRecordId: 'r',
      },
      sourceInstanceId: 'edr',
      destination: { id: 'rx', audience: 'https://rx.example' },
      now: new Date(Date.now() - 3_600_000),
    });
    expect((await run(['verify', '--jwks', jwksFile, '--max-age', '2h', old.jwt])).code).toBe(0);
    const result = await run(['verify', '--jwks', jwksFile, '--max-age', '5m', old.jwt]);
    expect(result.code).toBe(2);
    expect(result.err).toMatch(
      /^invalid_request: the SET was issued 36\d\d s ago; the limit is 300 s \[SSF_ERR_SET_TOO_OLD\]/,
    );
  });
});
