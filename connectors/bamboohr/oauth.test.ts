import { createDecipheriv, createHash, createHmac, hkdfSync } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { PermanentError, type InboundConnector } from '../../core/plugin-api/index.ts';
import { MockServer, registeredSecretValues } from '../../core/plugin-api/testing/index.ts';
import { bamboohrConnector } from './index.ts';
import type { BambooHrState } from './mapping.ts';
import {
  FINGERPRINT_INFO,
  OAUTH_CHECKPOINT,
  SEAL_INFO,
  refreshTokenSeal,
  type StoredRefreshToken,
} from './oauth.ts';
import { createTestContext, type TestContext } from '../_shared/hr-test-support.ts';

const server = new MockServer();
const API = '/api/v1';
const TOKEN = '/token.php';
const NOW = '2026-11-29T14:00:00.000Z';
const CONFIGURED = 'bamboo-refresh-token-configured-0001';

beforeAll(async () => {
  await server.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function config(extra: Record<string, unknown> = {}) {
  return bamboohrConnector.configSchema.parse({
    company_domain: 'acme',
    mode: 'poll',
    timezone: 'Europe/London',
    backfill_window: '9000d',
    api_base_url: `${server.url}${API}`,
    oauth: {
      client_id: 'bamboo-app-client-id',
      client_secret: 'bamboo-app-client-secret-7f3a',
      refresh_token: CONFIGURED,
      token_url: `${server.url}${TOKEN}?request=token`,
    },
    ...extra,
  });
}

async function started(tc = createTestContext<BambooHrState>({ now: NOW }), extra = {}) {
  const connector: InboundConnector = bamboohrConnector.create(tc.ctx, config(extra));
  await connector.start(tc.ctx.signal);
  return { connector, tc };
}

/** BambooHR's token endpoint: rotates the refresh token at each use, refusing a used one. */
function tokenEndpoint(valid: Set<string>, options: { rotate?: boolean } = {}) {
  let n = 0;
  server.on('POST', TOKEN, (req) => {
    const body = req.json as Record<string, string>;
    if (body.client_secret !== 'bamboo-app-client-secret-7f3a') {
      return {
        status: 401,
        body: { error: 'invalid_client', error_description: 'Client authentication failed' },
      };
    }
    if (body.grant_type !== 'refresh_token' || !valid.has(body.refresh_token ?? '')) {
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid refresh token' } };
    }
    n += 1;
    const rotated = `bamboo-refresh-token-rotated-${String(n).padStart(4, '0')}`;
    if (options.rotate !== false) {
      valid.delete(body.refresh_token!);
      valid.add(rotated);
    }
    return {
      body: {
        access_token: `bamboo-access-token-${n}`,
        expires_in: 3600,
        token_type: 'Bearer',
        scope: 'employee employee:job offline_access',
        ...(options.rotate !== false ? { refresh_token: rotated } : {}),
        id_token: 'eyJhbGciOiJSUzI1NiJ9.e30.sig',
      },
    };
  });
}

const changedNothing = () => ({ body: { latest: '2026-11-29T13:59:00+00:00', employees: {} } });

function stored(tc: TestContext<BambooHrState>): StoredRefreshToken | undefined {
  return tc.checkpoints.get(OAUTH_CHECKPOINT) as StoredRefreshToken | undefined;
}

/** The refresh token in the store, opened with the configured client secret. */
function storedToken(checkpoints: Map<string, unknown>): string | undefined {
  const row = checkpoints.get(OAUTH_CHECKPOINT) as StoredRefreshToken | undefined;
  return row && refreshTokenSeal(config().oauth!).open(row);
}

describe('bamboohr OAuth', () => {
  it('refuses a config with neither api_key nor oauth, or with both, saying what to set', () => {
    const base = { company_domain: 'acme', mode: 'poll' };
    expect(() => bamboohrConnector.configSchema.parse(base)).toThrow(/api_key .*or oauth/);
    expect(() =>
      bamboohrConnector.configSchema.parse({
        ...base,
        api_key: 'k',
        oauth: { client_id: 'c', client_secret: 's', refresh_token: 'r' },
      }),
    ).toThrow('set api_key or oauth, not both');
  });

  it('gets an access token with the refresh token (RFC 6749 §6) and sends it as Bearer, not Basic', async () => {
    const valid = new Set([CONFIGURED]);
    tokenEndpoint(valid);
    server.on('GET', `${API}/employees/changed`, changedNothing);
    const { connector, tc } = await started();
    await tc.runTask('poll');

    const [token, changed] = server.requests;
    expect(token?.path).toBe(TOKEN);
    expect(token?.query).toEqual({ request: 'token' });
    expect(token?.headers['content-type']).toContain('application/json');
    expect(token?.json).toEqual({
      grant_type: 'refresh_token',
      refresh_token: CONFIGURED,
      client_id: 'bamboo-app-client-id',
      client_secret: 'bamboo-app-client-secret-7f3a',
    });
    expect(changed?.path).toBe(`${API}/employees/changed`);
    expect(changed?.headers.authorization).toBe('Bearer bamboo-access-token-1');

    // The access token is reused until it is due.
    await tc.runTask('poll');
    expect(server.requests.filter((r) => r.path === TOKEN)).toHaveLength(1);
    await connector.stop(100);
  });

  it('stores a rotated refresh token durably and uses it after a restart; the old one is refused by then', async () => {
    const valid = new Set([CONFIGURED]);
    tokenEndpoint(valid);
    server.on('GET', `${API}/employees/changed`, changedNothing);
    const first = await started();
    await first.tc.runTask('poll');
    expect(storedToken(first.tc.checkpoints)).toBe('bamboo-refresh-token-rotated-0001');
    await first.connector.stop(100);

    // A restart (same store, a new process): the configured token is spent, the stored one works.
    const tc = createTestContext<BambooHrState>({ now: NOW, checkpoints: first.tc.checkpoints });
    const second = await started(tc);
    await second.tc.runTask('poll');
    const tokens = server.requests.filter((r) => r.path === TOKEN);
    expect((tokens[1]?.json as Record<string, string>).refresh_token).toBe(
      'bamboo-refresh-token-rotated-0001',
    );
    expect(storedToken(second.tc.checkpoints)).toBe('bamboo-refresh-token-rotated-0002');
    expect(second.tc.statuses.filter((s) => s.state === 'permanent_error')).toEqual([]);
    // Neither the rotated refresh tokens nor the access tokens reach the log, and all are scrubbed.
    const logged = JSON.stringify([first.tc.logs, second.tc.logs]);
    expect(logged).not.toContain('bamboo-refresh-token');
    expect(logged).not.toContain('bamboo-access-token');
    expect([...registeredSecretValues()]).toEqual(
      expect.arrayContaining([
        'bamboo-refresh-token-rotated-0001',
        'bamboo-refresh-token-rotated-0002',
        'bamboo-access-token-2',
      ]),
    );
    await second.connector.stop(100);
  });

  it('starts over from a newly configured refresh token rather than the one stored for the old', async () => {
    const tc = createTestContext<BambooHrState>({ now: NOW });
    tc.checkpoints.set(OAUTH_CHECKPOINT, {
      configured: 'digest-of-a-refresh-token-configured-before',
      refresh_token: 'bamboo-refresh-token-of-the-old-authorization',
    });
    tokenEndpoint(new Set([CONFIGURED]));
    server.on('GET', `${API}/employees/changed`, changedNothing);
    const { connector } = await started(tc);
    await tc.runTask('poll');
    expect((server.requests[0]?.json as Record<string, string>).refresh_token).toBe(CONFIGURED);
    await connector.stop(100);
  });

  it('takes the token another instance rotated in meanwhile instead of failing on invalid_grant', async () => {
    const valid = new Set([CONFIGURED]);
    tokenEndpoint(valid);
    let expire = false;
    server.on('GET', `${API}/employees/changed`, () => {
      if (!expire) return changedNothing();
      expire = false;
      return { status: 401, body: { error: 'expired token' } };
    });
    // Two instances share one store.
    const shared = new Map<string, unknown>();
    const a = await started(createTestContext<BambooHrState>({ now: NOW, checkpoints: shared }));
    const b = await started(createTestContext<BambooHrState>({ now: NOW, checkpoints: shared }));
    await a.tc.runTask('poll'); // configured → rotated-0001, stored
    await b.tc.runTask('poll'); // reads rotated-0001 from the store → rotated-0002, stored
    // a's access token is refused: its rotated-0001 is spent, so it takes rotated-0002 from the store.
    server.requests.length = 0;
    expire = true;
    await a.tc.runTask('poll');
    const used = server.requests
      .filter((r) => r.path === TOKEN)
      .map((r) => (r.json as { refresh_token: string }).refresh_token);
    expect(used).toEqual(['bamboo-refresh-token-rotated-0001', 'bamboo-refresh-token-rotated-0002']);
    expect(server.requests.at(-1)?.headers.authorization).toBe('Bearer bamboo-access-token-3');
    expect(storedToken(shared)).toBe('bamboo-refresh-token-rotated-0003');
    // The token endpoint refused nothing for good: no invalid_grant reached the status.
    expect(a.tc.statuses.filter((s) => /invalid_grant/.test(s.reason ?? ''))).toEqual([]);
    await a.connector.stop(100);
    await b.connector.stop(100);
  });

  it('fails permanently with what to do on invalid_grant, flagging the credentials, with no token in the message', async () => {
    tokenEndpoint(new Set(['some-other-refresh-token']));
    server.on('GET', `${API}/employees/changed`, changedNothing);
    const { connector, tc } = await started();
    const err = await tc.runTask('poll').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).authFailure).toBe(true);
    expect((err as Error).message).toContain('invalid_grant');
    expect((err as Error).message).toContain('set oauth.refresh_token to the new refresh token');
    expect((err as Error).message).not.toContain(CONFIGURED);
    expect(tc.statuses.at(-1)?.state).toBe('permanent_error');
    expect(server.requests.filter((r) => r.path === `${API}/employees/changed`)).toHaveLength(0);
    await connector.stop(100);
  });

  it('says which setting to check when the client is refused (invalid_client)', async () => {
    tokenEndpoint(new Set([CONFIGURED]));
    const tc = createTestContext<BambooHrState>({ now: NOW });
    const connector = bamboohrConnector.create(
      tc.ctx,
      config({
        oauth: {
          client_id: 'bamboo-app-client-id',
          client_secret: 'a-wrong-client-secret',
          refresh_token: CONFIGURED,
          token_url: `${server.url}${TOKEN}?request=token`,
        },
      }),
    );
    const result = await connector.check!(new AbortController().signal);
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect(result.message).toContain('check oauth.client_id and oauth.client_secret');
    expect(result.message).not.toContain('a-wrong-client-secret');
  });

  it('refreshes the access token once when the API answers 401, and keeps the refresh token when none is rotated in', async () => {
    tokenEndpoint(new Set([CONFIGURED]), { rotate: false });
    let calls = 0;
    server.on('GET', `${API}/employees/changed`, () => {
      calls += 1;
      return calls === 1 ? { status: 401, body: { error: 'expired token' } } : changedNothing();
    });
    const { connector, tc } = await started();
    await tc.runTask('poll');
    expect(server.requests.map((r) => [r.path, r.headers.authorization ?? null])).toEqual([
      [TOKEN, null],
      [`${API}/employees/changed`, 'Bearer bamboo-access-token-1'],
      [TOKEN, null],
      [`${API}/employees/changed`, 'Bearer bamboo-access-token-2'],
    ]);
    expect(stored(tc)).toBeUndefined();
    await connector.stop(100);
  });

  it('takes a 401 to an access token revoked early as a cue to refresh: the poll succeeds and the instance is never flagged', async () => {
    const valid = new Set([CONFIGURED]);
    tokenEndpoint(valid);
    const revoked = new Set(['Bearer bamboo-access-token-1']);
    server.on('GET', `${API}/employees/changed`, (req) =>
      revoked.has(req.headers.authorization ?? '')
        ? {
            status: 401,
            headers: { 'x-bamboohr-error-message': 'The access token is invalid or has been revoked' },
            body: '',
          }
        : changedNothing(),
    );
    const { connector, tc } = await started();
    await tc.runTask('poll');
    expect(server.requests.map((r) => [r.path, r.headers.authorization ?? null])).toEqual([
      [TOKEN, null],
      [`${API}/employees/changed`, 'Bearer bamboo-access-token-1'],
      [TOKEN, null],
      [`${API}/employees/changed`, 'Bearer bamboo-access-token-2'],
    ]);
    // Neither the HTTP client's refusal hook nor the connector reported an error.
    expect(tc.statuses.filter((s) => s.state === 'permanent_error')).toEqual([]);
    expect(tc.successes).toBe(1);
    expect(stored(tc)).toBeDefined();
    await connector.stop(100);
  });

  it('fails permanently, flagging the credentials, when a newly issued access token is refused too', async () => {
    tokenEndpoint(new Set([CONFIGURED]));
    server.on('GET', `${API}/employees/changed`, () => ({
      status: 401,
      body: { error: 'invalid_token', message: 'The access token is invalid' },
    }));
    const { connector, tc } = await started();
    const err = await tc.runTask('poll').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).authFailure).toBe(true);
    expect((err as Error).message).toContain(
      'BambooHR refused a newly issued OAuth access token for GET /employees/changed (401)',
    );
    expect((err as Error).message).toContain('authorize the app again');
    expect((err as Error).message).not.toContain('bamboo-access-token');
    // Refreshed once, then given up: two tokens, two API calls.
    expect(server.requests.map((r) => r.path)).toEqual([
      TOKEN,
      `${API}/employees/changed`,
      TOKEN,
      `${API}/employees/changed`,
    ]);
    expect(tc.statuses.at(-1)?.state).toBe('permanent_error');
    expect(tc.statuses.at(-1)?.reason).toContain('newly issued OAuth access token');
    await connector.stop(100);
  });

  it('check() says the same when every access token is refused', async () => {
    tokenEndpoint(new Set([CONFIGURED]));
    server.on('GET', `${API}/meta/fields`, () => ({ status: 401, body: '' }));
    const tc = createTestContext<BambooHrState>({ now: NOW });
    const connector = bamboohrConnector.create(tc.ctx, config());
    const result = await connector.check!(new AbortController().signal);
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect(result.message).toContain('newly issued OAuth access token for GET /meta/fields');
  });

  it('seals the stored refresh token: AES-256-GCM under an HKDF-SHA256 key of the client secret, the configured token named by an HMAC', async () => {
    tokenEndpoint(new Set([CONFIGURED]));
    server.on('GET', `${API}/employees/changed`, changedNothing);
    const { connector, tc } = await started();
    await tc.runTask('poll');
    // What anyone reading the database sees: no refresh token, and no bare hash of one.
    const row = JSON.stringify(Object.fromEntries(tc.checkpoints));
    expect(row).not.toContain('bamboo-refresh-token');
    expect(row).not.toContain(createHash('sha256').update(CONFIGURED).digest('hex'));
    expect(row).not.toContain('bamboo-app-client-secret');
    const sealed = stored(tc)!;
    expect(Object.keys(sealed).sort()).toEqual(['ciphertext', 'configured', 'iv', 'tag', 'v']);
    expect(sealed.v).toBe(1);
    // Opened independently, as the connector documents the construction.
    const secret = Buffer.from('bamboo-app-client-secret-7f3a');
    const salt = Buffer.from('bamboo-app-client-id');
    const macKey = Buffer.from(hkdfSync('sha256', secret, salt, FINGERPRINT_INFO, 32));
    expect(sealed.configured).toBe(createHmac('sha256', macKey).update(CONFIGURED).digest('hex'));
    const key = Buffer.from(hkdfSync('sha256', secret, salt, SEAL_INFO, 32));
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'base64url'));
    decipher.setAAD(Buffer.from(`v1:${sealed.configured}`));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'base64url'));
    const plain = Buffer.concat([
      decipher.update(Buffer.from(sealed.ciphertext, 'base64url')),
      decipher.final(),
    ]).toString();
    expect(plain).toBe('bamboo-refresh-token-rotated-0001');
    await connector.stop(100);
  });

  it('falls back to the configured refresh token, with a warning naming no secret, when the client secret changed', async () => {
    const first = await (async () => {
      tokenEndpoint(new Set([CONFIGURED]));
      server.on('GET', `${API}/employees/changed`, changedNothing);
      const s = await started();
      await s.tc.runTask('poll');
      await s.connector.stop(100);
      return s;
    })();
    expect(storedToken(first.tc.checkpoints)).toBe('bamboo-refresh-token-rotated-0001');
    server.reset();
    // The app's secret was rotated (and, as BambooHR asks then, the app authorized again).
    const newSecret = 'bamboo-app-client-secret-rotated-9c1e';
    server.on('POST', TOKEN, (req) => {
      const body = req.json as Record<string, string>;
      return body.client_secret === newSecret && body.refresh_token === CONFIGURED
        ? { body: { access_token: 'bamboo-access-token-9', expires_in: 3600, token_type: 'Bearer' } }
        : { status: 400, body: { error: 'invalid_grant' } };
    });
    server.on('GET', `${API}/employees/changed`, changedNothing);
    const tc = createTestContext<BambooHrState>({ now: NOW, checkpoints: first.tc.checkpoints });
    const connector = bamboohrConnector.create(
      tc.ctx,
      config({
        oauth: {
          client_id: 'bamboo-app-client-id',
          client_secret: newSecret,
          refresh_token: CONFIGURED,
          token_url: `${server.url}${TOKEN}?request=token`,
        },
      }),
    );
    await connector.start(tc.ctx.signal);
    await tc.runTask('poll');
    expect((server.requests[0]?.json as Record<string, string>).refresh_token).toBe(CONFIGURED);
    expect(tc.statuses.filter((s) => s.state === 'permanent_error')).toEqual([]);
    const warnings = tc.logs.filter((l) => l.level === 'warn');
    expect(warnings.map((w) => w.msg)).toEqual([
      expect.stringContaining('the stored BambooHR refresh token does not open with this configuration'),
    ]);
    const logged = JSON.stringify(tc.logs);
    expect(logged).not.toContain('bamboo-refresh-token');
    expect(logged).not.toContain('bamboo-app-client-secret');
    await connector.stop(100);
  });

  it('detects a stored row that was altered (GCM tag), and uses the configured refresh token', async () => {
    tokenEndpoint(new Set([CONFIGURED]), { rotate: false });
    server.on('GET', `${API}/employees/changed`, changedNothing);
    const sealing = refreshTokenSeal(config().oauth!);
    const genuine = sealing.seal('bamboo-refresh-token-rotated-0007', sealing.fingerprint(CONFIGURED));
    const flipped = Buffer.from(genuine.ciphertext, 'base64url');
    flipped[0] = flipped[0]! ^ 0x01;
    const tc = createTestContext<BambooHrState>({ now: NOW });
    tc.checkpoints.set(OAUTH_CHECKPOINT, { ...genuine, ciphertext: flipped.toString('base64url') });
    const { connector } = await started(tc);
    await tc.runTask('poll');
    expect((server.requests[0]?.json as Record<string, string>).refresh_token).toBe(CONFIGURED);
    expect(tc.logs.filter((l) => l.level === 'warn')).toHaveLength(1);
    // A genuine row moved under another fingerprint is refused too (the fingerprint is authenticated).
    const other = sealing.seal('bamboo-refresh-token-rotated-0008', sealing.fingerprint('another-token'));
    expect(sealing.open({ ...other, configured: genuine.configured })).toBeUndefined();
    expect(sealing.open(genuine)).toBe('bamboo-refresh-token-rotated-0007');
    await connector.stop(100);
  });

  it('defaults the token endpoint and the API base to the company domain', async () => {
    const { tokenUrl } = await import('./oauth.ts');
    const { apiBase } = await import('./client.ts');
    const c = bamboohrConnector.configSchema.parse({
      company_domain: 'acme',
      mode: 'poll',
      oauth: { client_id: 'c', client_secret: 's', refresh_token: 'r' },
    });
    expect(tokenUrl(c, c.oauth!)).toBe('https://acme.bamboohr.com/token.php?request=token');
    expect(apiBase(c)).toBe('https://acme.bamboohr.com/api/v1');
  });
});
