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
