/**
 * `ssf-bridge simulate` on System Log payloads with identifier_changes: the state carried from
 * file to file stands for the memory the running connector saves with its cursor, and a user
 * object (what GET /api/v1/users/{id} answers) for the read it makes after a profile update.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capturingIo } from '../helpers/capture.ts';
import { main } from '../../core/cli/main.ts';

const DANA = '00u9dleeABCDEF123456';
const IDENTIFIER_CHANGED = 'https://schemas.openid.net/secevent/risc/event-type/identifier-changed';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'okta-system-log-simulate-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  return path;
}

function config(identifierChanges: boolean): string {
  return file(
    'bridge.yaml',
    [
      'inbound:',
      '  - id: okta-log',
      '    connector: okta-system-log',
      '    config:',
      '      org_url: https://acme.okta.com',
      '      auth: {type: ssws, token: 00okta-simulated-token}',
      `      identifier_changes: ${identifierChanges}`,
    ].join('\n'),
  );
}

const event = (uuid: string, published: string, eventType: string, parts: Record<string, unknown>) => ({
  uuid,
  published,
  eventType,
  legacyEventType: null,
  severity: 'INFO',
  version: '0',
  actor: { id: '00u1adminXYZ123456789', type: 'User', alternateId: 'it.admin@example.com' },
  outcome: { result: 'SUCCESS', reason: null },
  target: null,
  debugContext: { debugData: { requestId: 'Z2xvYmFsLXRyYW5zYWN0aW9u' } },
  ...parts,
});

const signIn = event('uuid-in', '2026-01-15T17:00:01.000Z', 'user.session.start', {
  actor: { id: DANA, type: 'User', alternateId: 'dana.lee@example.com', displayName: 'Dana Lee' },
});
const update = event('uuid-upd', '2026-01-15T17:10:05.000Z', 'user.account.update_profile', {
  target: [{ id: DANA, type: 'User', alternateId: 'dana.kim@example.com', displayName: 'Dana Kim' }],
  debugContext: {
    debugData: { requestUri: `/api/v1/users/${DANA}`, changedAttributes: 'lastName, login, email' },
  },
});
const user = {
  id: DANA,
  status: 'ACTIVE',
  lastUpdated: '2026-01-15T17:10:05.000Z',
  profile: {
    firstName: 'Dana',
    lastName: 'Kim',
    login: 'dana.kim@example.com',
    email: 'dana.kim@example.com',
  },
};

async function simulate(args: string[]) {
  const io = capturingIo('');
  const code = await main(['node', 'ssf-bridge', 'simulate', '--connector', 'okta-system-log', ...args], io);
  return {
    code,
    lines: io.stdout.map((l) => JSON.parse(l) as Record<string, unknown>),
    err: io.stderr.join('\n'),
  };
}

describe('ssf-bridge simulate --connector okta-system-log (identifier_changes, RISC 1.0 §2.5)', () => {
  it('carries what the sign-in named the user by to the profile read: identifier-changed from old to new', async () => {
    const result = await simulate([
      '--config',
      config(true),
      file('1-sign-in.json', signIn),
      file('2-update-profile.json', update),
      file('3-user.json', user),
    ]);
    expect(result.err).toContain('2-update-profile.json: ignored: user.account.update_profile of Okta user');
    expect(result.code).toBe(0);
    expect(result.lines).toEqual([
      expect.objectContaining({
        type: IDENTIFIER_CHANGED,
        subject: { format: 'email', email: 'dana.lee@example.com' },
        claims: { 'new-value': 'dana.kim@example.com' },
        source_record_id: 'uuid-upd:login',
        occurred_at: '2026-01-15T17:10:05.000Z',
      }),
    ]);
  });

  it('emits nothing when no earlier login was seen: the old value is never guessed', async () => {
    const result = await simulate(['--config', config(true), file('1.json', update), file('2.json', user)]);
    expect(result.code).toBe(0);
    expect(result.lines).toEqual([]);
    expect(result.err).toContain('the login before the change was never seen');
  });

  it('ignores profile updates with identifier_changes off', async () => {
    const result = await simulate([
      '--config',
      config(false),
      file('1.json', signIn),
      file('2.json', update),
    ]);
    expect(result.lines).toEqual([]);
    expect(result.err).toContain('identifier changes are not emitted (identifier_changes: false)');
  });
});
