import { createHmac, timingSafeEqual } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import { FakeApi, type FakeRequest } from '../../test/helpers/fake-api.ts';
import {
  BRIDGE_ISSUER,
  outboundHarness,
  receiverVerify,
  type OutboundHarness,
} from '../../test/helpers/outbound.ts';
import { registeredSecretValues } from '../../core/plugin-api/testing/index.ts';
import { pathSecrets } from './connector.ts';
import { webhook } from './index.ts';

const SECRET = 'whsec-3f9a1c7e5b2d4f608a1b3c5d7e9f0a2b';

/** The verification recipe of README.md, as a receiver would write it. */
function verify(req: FakeRequest, secret: string, nowSeconds = Math.floor(Date.now() / 1000)): boolean {
  const timestamp = req.headers['x-timestamp'] ?? '';
  const given = req.headers['x-signature'] ?? '';
  if (!/^\d+$/.test(timestamp) || Math.abs(nowSeconds - Number(timestamp)) > 300) return false;
  const expected = `sha256=${createHmac('sha256', secret).update(`${timestamp}.${req.body}`).digest('hex')}`;
  return given.length === expected.length && timingSafeEqual(Buffer.from(given), Buffer.from(expected));
}

const received: FakeRequest[] = [];
const receiver = new FakeApi((req) => {
  if (!verify(req, SECRET)) return { status: 401, body: { error: 'bad signature' } };
  received.push(req);
  return { status: 200, headers: { 'content-type': 'text/plain' }, body: 'ok' };
});
let harness: OutboundHarness | undefined;
beforeAll(() => receiver.start());
afterAll(() => receiver.close());
beforeEach(() => {
  receiver.reset();
  received.length = 0;
});
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(config: Record<string, unknown> = {}) {
  harness = await outboundHarness(webhook, {
    url: `${receiver.url}/hooks/ssf`,
    signing_secret: SECRET,
    request_timeout: '400ms',
    ...config,
  });
  return harness;
}

const leaver: EventDraft = {
  type: 'risc.account-disabled',
  subject: { format: 'email', email: 'dana.lee@example.com' },
  claims: {},
  sourceRecordId: 'workday:WID-3341',
  occurredAt: '2026-01-02T09:30:00Z',
  txn: 'workday:WID-3341',
};

describe('webhook: the signed JSON contract', () => {
  it('POSTs id, type, occurred_at, subject, event and source, signed over timestamp and body', async () => {
    const h = await start();
    const outcome = await h.attempt(leaver);
    expect(outcome).toMatchObject({ ok: true, receipt: { status: 200 } });
    const [req] = received;
    expect(req).toMatchObject({ method: 'POST', path: '/hooks/ssf' });
    expect(req?.headers['content-type']).toBe('application/json');
    expect(req?.headers['authorization']).toBeUndefined();
    expect(Number(req?.headers['x-timestamp'])).toBeCloseTo(Date.now() / 1000, -1);
    expect(req?.json).toEqual({
      id: outcome.ok ? outcome.set.jti : '',
      type: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
      // RISC account-disabled carries no event_timestamp: the time the bridge accepted it (iat).
      occurred_at: outcome.ok ? new Date(Number(outcome.set.claims.iat) * 1000).toISOString() : '',
      subject: { format: 'email', email: 'dana.lee@example.com' },
      event: {},
      source: {
        issuer: BRIDGE_ISSUER,
        txn: 'workday:WID-3341',
        instance: 'source',
        connector: 'events-api',
        ref: 'workday:WID-3341',
      },
    });
    expect(verify(req as FakeRequest, 'a-different-secret')).toBe(false);
    expect(h.logText()).not.toContain(SECRET);
    const revoked = { ...leaver, type: 'caep.session-revoked', sourceRecordId: 'edr:1' };
    expect((await h.attempt(revoked)).ok).toBe(true);
    expect((received[1]?.json as { occurred_at: string }).occurred_at).toBe('2026-01-02T09:30:00.000Z');
  });

  it('a timestamp no date can hold (milliseconds of a RISC event, which the catalog leaves unbounded) is passed over for iat, not retried until it dead-letters', async () => {
    const h = await start();
    const outcome = await h.attempt({ ...leaver, claims: { event_timestamp: 1_767_346_200_000_000 } });
    expect(outcome).toMatchObject({ ok: true, receipt: { status: 200 } });
    const body = received[0]?.json as { occurred_at: string; event: { event_timestamp: number } };
    expect(body.occurred_at).toBe(
      outcome.ok ? new Date(Number(outcome.set.claims.iat) * 1000).toISOString() : '',
    );
    // The event's claims still go out exactly as in the SET.
    expect(body.event.event_timestamp).toBe(1_767_346_200_000_000);
  });

  it('POSTs to the url exactly as configured: a trailing slash, and a key in the query ending in one', async () => {
    const h = await start({ url: `${receiver.url}/api/hook/?code=k3y/` });
    expect((await h.attempt(leaver)).ok).toBe(true);
    expect(received[0]).toMatchObject({ path: '/api/hook/', query: { code: 'k3y/' } });
  });

  it('the id stays the same across retries of one event, so receivers can drop duplicates', async () => {
    const h = await start();
    await h.attempt(leaver);
    await h.attempt(leaver, { attempt: 1 });
    expect(new Set(received.map((r) => (r.json as { id: string }).id)).size).toBe(1);
  });

  it('include_set adds the signed SET, which verifies against the bridge JWKS', async () => {
    const h = await start({ include_set: true, audience: 'https://soar.example.com' });
    expect((await h.attempt(leaver)).ok).toBe(true);
    const set = (received[0]?.json as { set: string }).set;
    const checked = await receiverVerify(set, { audience: 'https://soar.example.com' });
    expect(checked.ok).toBe(true);
    if (checked.ok)
      expect(checked.set.eventType).toBe(
        'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
      );
  });

  it('sends an Authorization header when configured, and never logs it', async () => {
    const h = await start({ authorization_header: 'Bearer soar-token-7788aa' });
    expect((await h.attempt(leaver)).ok).toBe(true);
    expect(received[0]?.headers['authorization']).toBe('Bearer soar-token-7788aa');
    expect(h.logText()).not.toContain('soar-token-7788aa');
  });
});

describe('webhook: outcomes', () => {
  it('RFC 6750 §2.1: a receiver quoting the bare bearer token in its refusal gets it scrubbed from the error, status and logs', async () => {
    const token = 'soar-tok-5f2c9a7e1b3d';
    const h = await start({ authorization_header: `Bearer ${token}` });
    receiver.inject({ status: 401, body: { error: `token ${token} is expired` } });
    const outcome = await h.attempt(leaver);
    expect(outcome).toMatchObject({ ok: false, class: 'credentials' });
    if (!outcome.ok) {
      // The message is what a dead letter keeps as its last error.
      expect(outcome.error.message).toContain('token [redacted] is expired');
      expect(outcome.error.message).not.toContain(token);
    }
    expect(JSON.stringify(h.status())).not.toContain(token);
    expect(h.logText()).not.toContain(token);
  });

  it('a POST redirected to a sign-in page (302) is not delivered: permanent, and the page is never fetched', async () => {
    const h = await start();
    receiver.inject({ status: 302, headers: { location: `${receiver.url}/login` } });
    const outcome = await h.attempt(leaver);
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (!outcome.ok) expect(outcome.error.code).toBe('SSF_ERR_HTTP_REDIRECT');
    expect(receiver.requests.filter((r) => r.path === '/login')).toEqual([]);
  });

  it('a receiver that refuses the signature (401) flags the credentials; 403 too', async () => {
    const h = await start({ signing_secret: 'not-the-shared-secret-0000' });
    expect(await h.attempt(leaver)).toMatchObject({ ok: false, class: 'credentials' });
    receiver.inject({ status: 403 });
    const strict = await start();
    expect(await strict.attempt(leaver)).toMatchObject({ ok: false, class: 'credentials' });
  });

  it('429 with and without Retry-After, 5xx and slow answers retry; 410 and 422 are permanent; any 2xx body is fine', async () => {
    const h = await start();
    receiver.inject({ status: 429, headers: { 'retry-after': '4' } });
    const limited = await h.attempt(leaver);
    if (!limited.ok) expect(limited.error.retryAfterMs).toBe(4_000);
    expect(limited.ok).toBe(false);
    receiver.inject({ status: 429 });
    const bare = await h.attempt(leaver);
    if (!bare.ok) expect(bare.error.retryAfterMs).toBeUndefined();
    receiver.inject({ status: 502, body: '<html>bad gateway</html>' });
    expect(await h.attempt(leaver)).toMatchObject({ ok: false, class: 'retryable' });
    receiver.inject({ status: 200, delayMs: 1_000 });
    expect(await h.attempt(leaver)).toMatchObject({ ok: false, class: 'retryable' });
    receiver.inject({ status: 410, body: { error: 'gone' } });
    expect(await h.attempt(leaver)).toMatchObject({ ok: false, class: 'permanent' });
    receiver.inject({ status: 422, body: { error: 'unprocessable' } });
    expect(await h.attempt(leaver)).toMatchObject({ ok: false, class: 'permanent' });
    receiver.inject({ status: 204 });
    expect((await h.attempt(leaver)).ok).toBe(true);
    receiver.inject({ status: 202, headers: { 'content-type': 'application/json' }, body: '{"queued": tru' });
    expect((await h.attempt(leaver)).ok).toBe(true);
    expect(await h.counter('webhook_posts_total', { outcome: 'retryable' })).toBe(4);
    expect(await h.counter('webhook_posts_total', { outcome: 'ok' })).toBe(2);
  });

  it('a credential in the URL’s path (a Slack incoming webhook) stays out of the error, the dead letter, the status and the logs; the origin stays', async () => {
    const key = 'xK9fQ2mZ7rT4vB1nW8pL3sHd';
    const path = `/services/T0123ABCD/B0456EFGH/${key}`;
    const h = await start({ url: `${receiver.url}${path}` });
    // The receiver's error page quotes the path it was asked for.
    receiver.inject({
      status: 503,
      headers: { 'content-type': 'text/plain' },
      body: `upstream unavailable for POST ${path}`,
    });
    const outcome = await h.attempt(leaver);
    expect(outcome).toMatchObject({ ok: false, class: 'retryable' });
    if (!outcome.ok) {
      // The message is what a dead letter and lastError keep.
      expect(outcome.error.message).toContain(`POST ${receiver.url}/[redacted] answered 503`);
      expect(outcome.error.message).not.toContain(key);
      expect(outcome.error.message).not.toContain('T0123ABCD/B0456EFGH');
      expect(JSON.stringify((outcome.error as { detail?: unknown }).detail)).not.toContain(key);
    }
    // The HTTP client's own lines (trace request, debug response) name the origin only.
    const response = h.lines
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.msg === 'http response');
    expect(response).toMatchObject({ url: `${receiver.url}/[redacted]`, status: 503 });
    expect(h.logText()).not.toContain(key);
    // Registered with the scrubbing the delivery engine applies to every dead letter it stores.
    expect(registeredSecretValues()).toContain(path.slice(1));
    // A receiver that refuses the signature flags the instance: its lastError keeps no key either.
    receiver.inject({ status: 401, body: { error: `invalid_token for ${path}` } });
    expect(await h.attempt(leaver)).toMatchObject({ ok: false, class: 'credentials' });
    expect(h.status()?.lastError).toContain(`${receiver.url}/[redacted]`);
    expect(JSON.stringify(h.status())).not.toContain(key);
    expect(h.logText()).not.toContain(key);
    expect(received).toHaveLength(0);
    expect(receiver.requests.map((r) => r.path)).toEqual([path, path]);
  });

  it('a path of plain words (no key or id in it) stays readable in messages', async () => {
    const h = await start({ url: `${receiver.url}/api/events` });
    receiver.inject({ status: 503 });
    const outcome = await h.attempt(leaver);
    if (!outcome.ok) expect(outcome.error.message).toContain(`POST ${receiver.url}/api/events answered 503`);
    expect(outcome.ok).toBe(false);
  });

  it('which paths are taken for credentials: a key, a token or an id in a segment', () => {
    for (const url of [
      'https://hooks.slack.com/services/T00000000/B00000000/q7Rk2LmW9xTz4VbN8cYd1HsP',
      'https://discord.com/api/webhooks/1234567890123456789/aBcDeFgHiJkLmNoPqRsTuVwXyZ',
      'https://hooks.zapier.com/hooks/catch/123456/abcdefg/',
      'https://n8n.example.com/webhook/6f1c2d3e-4b5a-4c6d-8e7f-9a0b1c2d3e4f',
      'https://hook.eu1.make.com/abcdefghijklmnopqrstuvwxyzabcdef',
    ]) {
      expect(pathSecrets(url), url).toEqual([new URL(url).pathname.slice(1)]);
    }
    for (const url of [
      'https://soar.example.com/api/events',
      'https://hooks.example.com/ssf-bridge',
      'https://api.example.com/v1/hooks/',
      'https://hooks.example.com',
      'https://hooks.example.com/?code=k3y',
    ]) {
      expect(pathSecrets(url), url).toEqual([]);
    }
    // Written with characters the URL parser escapes: both spellings are scrubbed.
    expect(pathSecrets('https://hooks.example.com/in/k€y-0123456')).toEqual([
      'in/k%E2%82%ACy-0123456',
      'in/k€y-0123456',
    ]);
  });
});

describe('webhook: profiles', () => {
  const GOOGLE = 'https://sharedsignals.googleapis.com';
  const parse = (config: Record<string, unknown>) =>
    webhook.configSchema.safeParse({
      url: 'https://soar.example.com/hooks',
      signing_secret: SECRET,
      ...config,
    });
  const problems = (config: Record<string, unknown>) =>
    parse(config).error?.issues.map((i) => [i.path.join('.'), i.message]);
  const onlyGoogle = (requested: string) =>
    `the google-workspace profile takes only the audience ${GOOGLE}, not ${requested}: every SET would be refused; set audience to ${GOOGLE}`;

  it('google-workspace profile (Google takes SETs with aud https://sharedsignals.googleapis.com only): another audience, the default urn:ssf-bridge:webhook too, is a config problem at audience', () => {
    expect(problems({ profile: 'google-workspace' })).toEqual([
      ['audience', onlyGoogle('urn:ssf-bridge:webhook')],
    ]);
    expect(problems({ profile: 'google-workspace', audience: 'https://soar.example.com' })).toEqual([
      ['audience', onlyGoogle('https://soar.example.com')],
    ]);
    expect(problems({ profile: 'google-workspace', audience: [GOOGLE, 'https://soar.example.com'] })).toEqual(
      [['audience', onlyGoogle(`${GOOGLE}, https://soar.example.com`)]],
    );
    expect(parse({ profile: 'google-workspace', audience: GOOGLE }).success).toBe(true);
    expect(parse({ profile: 'google-workspace', audience: [GOOGLE] }).success).toBe(true);
    // The other profiles take any audience.
    for (const profile of ['ssf-1.0', 'okta-itp', 'legacy-sse-caep']) {
      expect(parse({ profile, audience: 'https://soar.example.com' }).success, profile).toBe(true);
    }
  });
});
