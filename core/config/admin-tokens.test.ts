/**
 * Admin tokens at load time: each one the admin API's alone and one a client can send. Problems
 * name paths, never a value.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testInbound, testOutbound } from '../../test/helpers/fake-connectors.ts';
import { defineConnector, z } from '../plugin-api/index.ts';
import { scrubSecrets } from '../plugin-api/secret.ts';
import { ConnectorRegistry } from '../runtime/registry.ts';
import { defaultRegistry } from '../runtime/defaults.ts';
import { loadConfigText, type LoadResult } from './index.ts';

/** A Secret as another copy of the plugin API makes it (a plugin that bundles its own). */
class ForeignSecret {
  readonly #value: string;
  constructor(value: string) {
    this.#value = value;
  }
  reveal(): string {
    return this.#value;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
}

const bundlingPlugin = defineConnector({
  manifest: {
    id: 'bundling-plugin',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'development',
    displayName: 'Bundling plugin',
    description: 'Validates its credential with its own copy of the plugin API.',
    accepts: ['caep.session-revoked'],
  },
  configSchema: z.strictObject({ api_token: z.string().transform((v) => new ForeignSecret(v)) }),
  create() {
    return {
      target: { audience: 'urn:test' },
      async start() {},
      async stop() {},
      async deliver() {
        return { detail: 'ok' };
      },
    };
  },
});

const registry = new ConnectorRegistry([
  ...defaultRegistry().list(),
  testInbound,
  testOutbound,
  bundlingPlugin,
]);
const dir = mkdtempSync(join(tmpdir(), 'ssf-config-admin-tokens-'));

async function problemsOf(yaml: string) {
  const result: LoadResult = await loadConfigText(yaml, {
    registry,
    env: {},
    file: join(dir, 'bridge.yaml'),
  });
  if (result.ok) throw new Error('expected the config to be refused');
  return result.problems;
}

const admin = (...tokens: string[]) =>
  [
    'admin:',
    '  tokens:',
    ...tokens.map(
      (t, i) =>
        `    - { name: holder-${i}, role: ${i === 0 ? 'write' : 'read'}, token: ${JSON.stringify(t)} }`,
    ),
    '',
  ].join('\n');

describe('admin tokens shared with another credential of the config', () => {
  const SHARED = 'shared-admin-ingest-token-0123';

  it.each([
    [
      'an events-api ingest token',
      'inbound[0].config.token',
      'connector: events-api, config: { token: <SHARED> }',
    ],
    [
      "an events-api's previous_token",
      'inbound[0].config.previous_token',
      'connector: events-api, config: { token: other-token-0123456789, previous_token: <SHARED> }',
    ],
    [
      "a generic-webhook's HMAC key, nested in its auth block",
      'inbound[0].config.auth.key',
      'connector: generic-webhook, config: { auth: { type: hmac, key: <SHARED> }, rules: [{ name: r, match: "true", event_type: caep.session-revoked, subject: \'{"format": "email", "email": user}\' }] }',
    ],
    [
      'a secret of a plugin-style connector',
      'inbound[0].config.token',
      'connector: test-inbound, config: { token: <SHARED> }',
    ],
  ])('refuses an admin token with the value of %s, naming both paths', async (_what, path, instance) => {
    const problems = await problemsOf(
      `inbound:\n  - { id: src, ${instance.replace('<SHARED>', SHARED)} }\n${admin(SHARED)}`,
    );
    expect(problems).toEqual([
      {
        path: 'admin.tokens[0].token',
        message: expect.stringMatching(
          new RegExp(`^has the same value as ${path.replace(/[[\].]/g, '\\$&')}; .*admin access`),
        ),
      },
    ]);
    expect(JSON.stringify(problems)).not.toContain(SHARED);
  });

  it('refuses one shared with a credential the bridge sends to a destination', async () => {
    const problems = await problemsOf(
      `outbound:\n  - { id: out, connector: test-outbound, config: { token: ${SHARED} } }\n${admin(SHARED)}`,
    );
    expect(problems).toEqual([
      {
        path: 'admin.tokens[0].token',
        message: expect.stringMatching(/^has the same value as outbound\[0\]\.config\.token; /),
      },
    ]);
  });

  it('refuses two admin tokens with one value, whose role would depend on their order', async () => {
    const problems = await problemsOf(
      admin('first-admin-token-0123456789', SHARED, 'x-admin-token-0123456789', SHARED),
    );
    expect(problems).toEqual([
      {
        path: 'admin.tokens[3].token',
        message: expect.stringMatching(
          /^has the same value as admin\.tokens\[1\]\.token; each holder needs a token of its own/,
        ),
      },
    ]);
    expect(JSON.stringify(problems)).not.toContain(SHARED);
  });

  it('accepts distinct values everywhere', async () => {
    const result = await loadConfigText(
      `inbound:\n  - { id: src, connector: events-api, config: { token: ingest-token-0123456789 } }\n${admin('write-token-0123456789ab', 'read-token-0123456789abc')}`,
      { registry, env: {} },
    );
    expect(result.ok ? [] : result.problems).toEqual([]);
  });
});

describe("a plugin's Secrets from its own copy of the plugin API", () => {
  it("are scrubbed from log lines like the bridge's own", async () => {
    const value = 'bundled-plugin-token-7c1e93';
    expect(scrubSecrets(`refresh failed for ${value}`)).toContain(value);
    const result = await loadConfigText(
      `outbound:\n  - { id: out, connector: bundling-plugin, config: { api_token: ${value} } }\n`,
      { registry, env: {} },
    );
    expect(result.ok ? [] : result.problems).toEqual([]);
    expect(scrubSecrets(`refresh failed for ${value}`)).toBe('refresh failed for [redacted]');
  });

  it('may not share a value with an admin token', async () => {
    const value = 'bundled-plugin-token-a51f08';
    const problems = await problemsOf(
      `outbound:\n  - { id: out, connector: bundling-plugin, config: { api_token: ${value} } }\n${admin(value)}`,
    );
    expect(problems).toEqual([
      {
        path: 'admin.tokens[0].token',
        message: expect.stringMatching(/^has the same value as outbound\[0\]\.config\.api_token; /),
      },
    ]);
  });
});

describe('admin token characters (RFC 6750 §2.1 b64token)', () => {
  it('accepts every b64token character, = only at the end', async () => {
    const result = await loadConfigText(admin('AZaz09-._~+/tokenvalue=='), { registry, env: {} });
    expect(result.ok ? [] : result.problems).toEqual([]);
  });

  it.each([
    ['a space inside', 'Zq9tokenwith aspace0123'],
    ['a trailing space', 'Zq9token-0123456789 '],
    ['a tab', 'Zq9token-0123\t456789'],
  ])('refuses %s, which could never authenticate, and says so without the value', async (_what, token) => {
    const problems = await problemsOf(admin(token));
    expect(problems).toEqual([
      { path: 'admin.tokens[0].token', message: expect.stringMatching(/^holds a space, tab or line break/) },
    ]);
    expect(JSON.stringify(problems)).not.toContain('Zq9');
  });

  it.each([
    ['a character outside b64token', 'admin-token-0123456789!'],
    ['= before the end', 'admin=token-0123456789'],
    ['a non-ASCII letter', 'admin-tökën-0123456789'],
  ])('refuses %s', async (_what, token) => {
    const problems = await problemsOf(admin(token));
    expect(problems).toEqual([
      { path: 'admin.tokens[0].token', message: expect.stringMatching(/RFC 6750 §2\.1/) },
    ]);
  });

  it('refuses a ${file:} secret with a trailing space, pointing at the file', async () => {
    const file = join(dir, 'admin-token-space.txt');
    writeFileSync(file, 'file-admin-token-0123456789 \n');
    const problems = await problemsOf(admin('${file:admin-token-space.txt}'));
    expect(problems).toEqual([
      { path: 'admin.tokens[0].token', message: expect.stringMatching(/\$\{file:\} secret.*trailing space/) },
    ]);
    expect(JSON.stringify(problems)).not.toContain('file-admin-token');
  });
});
