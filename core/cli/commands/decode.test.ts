import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
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

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
const header = { alg: 'RS256', kid: 'k1', typ: 'secevent+jwt' };
const claims = {
  iss: 'https://tx.example',
  iat: 1767225600,
  jti: 'c3d4',
  aud: 'https://rx.example',
  txn: 't-991',
  sub_id: { format: 'iss_sub', iss: 'https://idp.example', sub: 'u-42' },
  events: {
    'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {
      event_timestamp: 1767225590,
      initiating_entity: 'admin',
      reason_admin: { en: 'Admin revoked session' },
    },
  },
};
const good = `${b64(header)}.${b64(claims)}.c2lnbmF0dXJl`;

describe('ssf-bridge decode', () => {
  it('pretty-prints header and claims and reports no problems for a well-formed SET', async () => {
    const result = await run(['decode', good]);
    expect(result.code).toBe(0);
    expect(result.out).toContain(`Header:\n${JSON.stringify(header, null, 2)}`);
    expect(result.out).toContain(`Claims:\n${JSON.stringify(claims, null, 2)}`);
    expect(result.out).toMatch(/No problems found\. The signature was not checked/);
  });

  it('reads the SET from standard input with - or no argument', async () => {
    expect((await run(['decode', '-'], `${good}\n`)).code).toBe(0);
    expect((await run(['decode'], good)).out).toContain('"jti": "c3d4"');
    expect((await run(['decode'], '   ')).code).toBe(2);
  });

  it('lists every problem and exits 2 when any is an error', async () => {
    const bad = `${b64({ alg: 'none' })}.${b64({ ...claims, sub: 'u-42', exp: 1767229200, txn: undefined })}.`;
    const result = await run(['decode', bad]);
    expect(result.code).toBe(2);
    expect(result.out).toMatch(/Problems \(6\):/);
    expect(result.out).toContain('  - error invalid_request: the typ header is missing');
    expect(result.out).toContain('  - error authentication_failed: the SET is unsigned (alg none)');
    expect(result.out).toContain('  - error invalid_request: sub must not appear in a SET');
    expect(result.out).toContain('  - error invalid_request: exp must not appear in a SET');
    expect(result.out).toContain('  - warning: no kid header');
    expect(result.out).toContain('  - warning: no txn');
  });

  it('checklist SSF-02 / SET-14: --legacy-subject accepts a SET of the legacy-sse-caep profile, whose subject is inside the event', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ssf-cli-decode-legacy-'));
    try {
      const signed = await run([
        'events',
        'sign',
        '--type',
        'caep.credential-change',
        '--subject',
        '{"format":"email","email":"dana@example.com"}',
        '--claims',
        '{"credential_type":"password","change_type":"update"}',
        '--profile',
        'legacy-sse-caep',
        '--aud',
        'https://rx.example',
        '--data-dir',
        dir,
      ]);
      expect(signed.code, signed.err).toBe(0);
      const refused = await run(['decode', signed.out]);
      expect(refused.code).toBe(2);
      expect(refused.out).toContain('  - error invalid_request: sub_id is required');
      expect(refused.out).toContain('accepted with --legacy-subject');
      const accepted = await run(['decode', '--legacy-subject', signed.out]);
      expect(accepted.code, accepted.out).toBe(0);
      expect(accepted.out).not.toContain('  - error');
      expect(accepted.out).toContain('  - warning: no sub_id; the subject was taken from inside the event');
      expect(accepted.out).not.toContain('--legacy-subject');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prints JSON with --json', async () => {
    const result = await run(['decode', '--json', good]);
    expect(JSON.parse(result.out)).toEqual({ header, claims, problems: [] });
  });

  it('exits 2 for something that is not a JWS at all', async () => {
    const result = await run(['decode', 'hello']);
    expect(result.code).toBe(2);
    expect(result.out).toMatch(/error invalid_request: the body is not a compact JWS/);
  });
});
