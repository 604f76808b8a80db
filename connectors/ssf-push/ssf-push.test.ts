import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import {
  BRIDGE_ISSUER,
  outboundHarness,
  receiverVerify,
  rfc8935,
  sleep,
  ssfReceiver,
  type Outcome,
  type OutboundHarness,
} from '../../test/helpers/outbound.ts';
import { ssfPush } from './index.ts';

const AUD = 'https://receiver.example.net/';
const PATH = '/ssf/events';
const PUSH_TOKEN = 'Bearer push-token-5c1d8e2f';
const CLIENT_SECRET = 'oauth-client-secret-77aa';

const sessionRevoked: EventDraft = {
  type: 'caep.session-revoked',
  subject: { format: 'email', email: 'dana.lee@example.com' },
  claims: { initiating_entity: 'policy', reason_admin: { en: 'EDR host contained' } },
  sourceRecordId: 'cs:ind:42',
  occurredAt: '2026-01-01T00:00:00Z',
};

const server = new MockServer();
let harness: OutboundHarness | undefined;
beforeAll(() => server.start());
afterAll(() => server.close());
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
  server.reset();
});

async function start(config: Record<string, unknown> = {}) {
  harness = await outboundHarness(ssfPush, {
    endpoint_url: `${server.url}${PATH}`,
    audience: AUD,
    request_timeout: '400ms',
    ...config,
  });
  return harness;
}

describe('ssf-push: delivery (RFC 8935 §2.1–2.2)', () => {
  it('POSTs the signed SET as application/secevent+jwt with no Authorization header; 202 is delivered', async () => {
    const received = ssfReceiver(server, { path: PATH, audience: AUD });
    const h = await start();
    const outcome = await h.attempt(sessionRevoked);
    expect(outcome.ok).toBe(true);
    if (!outcome.ok) return;
    expect(outcome.receipt).toEqual({
      status: 202,
      detail: `POST ${server.url}${PATH} accepted the SET (202)`,
    });
    const [request] = server.requests;
    expect(request).toMatchObject({ method: 'POST', path: PATH, body: outcome.set.jwt });
    expect(request?.headers['content-type']).toBe('application/secevent+jwt');
    expect(request?.headers['accept']).toBe('application/json');
    expect(request?.headers['authorization']).toBeUndefined();
    const [got] = received;
    expect(got?.set.header).toMatchObject({ typ: 'secevent+jwt', alg: 'RS256' });
    expect(got?.set.claims).toEqual({
      iss: BRIDGE_ISSUER,
      aud: AUD,
      iat: expect.any(Number),
      jti: outcome.set.jti,
      txn: expect.any(String),
      sub_id: { format: 'email', email: 'dana.lee@example.com' },
      events: {
        'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {
          initiating_entity: 'policy',
          reason_admin: { en: 'EDR host contained' },
          event_timestamp: 1767225600,
        },
      },
    });
    expect(await h.counter('ssf_push_sets_total', { outcome: 'ok' })).toBe(1);
  });

  it('sends the configured authorization header verbatim on every push, and never logs it', async () => {
    const received = ssfReceiver(server, { path: PATH, audience: AUD, authorization: PUSH_TOKEN });
    const h = await start({ authorization_header: PUSH_TOKEN });
    expect((await h.attempt(sessionRevoked)).ok).toBe(true);
    expect((await h.attempt({ ...sessionRevoked, sourceRecordId: 'cs:ind:43' })).ok).toBe(true);
    expect(received).toHaveLength(2);
    expect(h.logText()).not.toContain('push-token-5c1d8e2f');
  });

  it('fetches an OAuth 2.0 client-credentials token and pushes with it', async () => {
    server.on('POST', '/oauth2/token', () => ({
      status: 200,
      body: { access_token: 'at-push-0f9e8d7c', token_type: 'Bearer', expires_in: 3600 },
    }));
    const received = ssfReceiver(server, {
      path: PATH,
      audience: AUD,
      authorization: 'Bearer at-push-0f9e8d7c',
    });
    const h = await start({
      oauth: {
        token_url: `${server.url}/oauth2/token`,
        client_id: 'ssf-bridge',
        client_secret: CLIENT_SECRET,
        scope: 'caep.push',
      },
    });
    expect((await h.attempt(sessionRevoked)).ok).toBe(true);
    const token = server.requests.find((r) => r.path === '/oauth2/token');
    expect(new URLSearchParams(token?.body).get('grant_type')).toBe('client_credentials');
    expect(new URLSearchParams(token?.body).get('scope')).toBe('caep.push');
    expect(received).toHaveLength(1);
    expect(h.logText()).not.toContain(CLIENT_SECRET);
    expect(h.logText()).not.toContain('at-push-0f9e8d7c');
  });

  it('oauth.dpop: true binds the token to the bridge’s key and proves it on each push (RFC 9449)', async () => {
    server.on('POST', '/oauth2/token', (req) => ({
      status: 200,
      body: {
        access_token: 'at-bound-1a2b3c',
        // A server binds the token only when the request carried a proof.
        token_type: req.headers['dpop'] ? 'DPoP' : 'Bearer',
        expires_in: 3600,
      },
    }));
    const received = ssfReceiver(server, {
      path: PATH,
      audience: AUD,
      authorization: 'DPoP at-bound-1a2b3c',
    });
    const h = await start({
      oauth: {
        token_url: `${server.url}/oauth2/token`,
        client_id: 'ssf-bridge',
        client_secret: CLIENT_SECRET,
        dpop: true,
      },
    });
    expect((await h.attempt(sessionRevoked)).ok).toBe(true);
    expect(received).toHaveLength(1);
    const proof = decodeJwt(String(received[0]!.headers['dpop']));
    expect(proof).toMatchObject({ htm: 'POST', htu: `${server.url}${PATH}` });
    expect(proof.ath).toBe(createHash('sha256').update('at-bound-1a2b3c').digest('base64url'));
    expect(h.logText()).not.toContain('at-bound-1a2b3c');
  });

  it('refuses a config with both a static header and OAuth', () => {
    const result = ssfPush.configSchema.safeParse({
      endpoint_url: 'https://r.example.net/e',
      audience: AUD,
      authorization_header: 'Bearer x',
      oauth: { token_url: 'https://a.example.net/t', client_id: 'c', client_secret: 's' },
    });
    expect(result.success).toBe(false);
  });
});

describe('ssf-push: the receiver refuses (RFC 8935 §2.3–2.4)', () => {
  it('a receiver expecting another audience answers invalid_audience: permanent, reason kept', async () => {
    ssfReceiver(server, { path: PATH, audience: 'https://other-receiver.example.net/' });
    const h = await start();
    const outcome = await h.attempt(sessionRevoked);
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (outcome.ok) return;
    expect(outcome.error.message).toContain('refused the SET: invalid_audience');
    expect(await h.counter('ssf_push_sets_total', { outcome: 'permanent' })).toBe(1);
  });

  it.each([
    ['invalid_issuer', 'permanent'],
    ['invalid_request', 'permanent'],
    ['authentication_failed', 'credentials'],
    ['access_denied', 'credentials'],
  ] as const)('%s is %s', async (err, expected) => {
    server.on('POST', PATH, () => rfc8935(err, `the receiver says ${err}`));
    const h = await start();
    const outcome = await h.attempt(sessionRevoked);
    expect(outcome).toMatchObject({ ok: false, class: expected });
    if (outcome.ok) return;
    expect(outcome.error.message).toContain(`${err} (the receiver says ${err})`);
  });

  describe('RFC 8935 §2.4 invalid_key: a receiver may cache our JWKS from before a key rotation (retried as the transmitter does)', () => {
    it('answered twice, then 202: the third attempt delivers the same SET', async () => {
      let refusals = 0;
      const delivered: string[] = [];
      server.on('POST', PATH, async (req) => {
        if (refusals < 2) {
          refusals += 1;
          return rfc8935('invalid_key', 'kid not in the JWKS we hold');
        }
        const verified = await receiverVerify(req.body, { audience: AUD });
        if (!verified.ok) return rfc8935(verified.err, verified.description);
        delivered.push(verified.set.claims.jti as string);
        return { status: 202 };
      });
      const h = await start();
      const outcomes = [];
      // As the delivery engine calls it: set.attempt counts the earlier attempts.
      for (const attempt of [0, 1, 2]) outcomes.push(await h.attempt(sessionRevoked, { attempt }));
      const [first, second, third] = outcomes;
      for (const refused of [first, second]) {
        expect(refused).toMatchObject({ ok: false, class: 'retryable' });
        if (refused?.ok !== false) continue;
        expect(refused.error.code).toBe('SSF_ERR_PUSH_INVALID_KEY');
        expect(refused.error.retryAfterMs).toBe(60_000);
        expect(refused.error.message).toContain('invalid_key (kid not in the JWKS we hold)');
      }
      expect(third).toMatchObject({ ok: true, receipt: { status: 202 } });
      expect(delivered).toEqual([third?.set?.jti]);
      expect(new Set(outcomes.map((o) => o.set?.jti)).size).toBe(1);
      expect(server.requests.filter((r) => r.path === PATH)).toHaveLength(3);
    });

    it('answered every time: retried 3 times, then permanent (a dead letter)', async () => {
      server.on('POST', PATH, () => rfc8935('invalid_key', 'kid not in the JWKS we hold'));
      const h = await start();
      const classes = [];
      for (const attempt of [0, 1, 2, 3])
        classes.push((await h.attempt(sessionRevoked, { attempt })) as Outcome);
      expect(classes.map((o) => (o.ok ? 'ok' : o.class))).toEqual([
        'retryable',
        'retryable',
        'retryable',
        'permanent',
      ]);
      const last = classes[3];
      if (last && !last.ok) {
        expect(last.error.code).toBe('SSF_ERR_PUSH_REFUSED');
        expect(last.error.message).toContain('still refused after 3 retries');
      }
      expect(await h.counter('ssf_push_sets_total', { outcome: 'permanent' })).toBe(1);
    });
  });

  it.each([
    [401, { 'www-authenticate': 'Bearer error="invalid_token"' }, 'credentials'],
    [403, {}, 'credentials'],
    [500, {}, 'retryable'],
    [503, { 'retry-after': '120' }, 'retryable'],
    [404, {}, 'permanent'],
  ] as const)('HTTP %d is %s', async (status, headers, expected) => {
    server.on('POST', PATH, () => ({ status, headers, body: { error: 'x' } }));
    const h = await start();
    const outcome = await h.attempt(sessionRevoked);
    expect(outcome).toMatchObject({ ok: false, class: expected });
    if (status === 503 && !outcome.ok) expect(outcome.error.retryAfterMs).toBe(120_000);
  });

  it('429 with Retry-After waits as asked; without it the core backoff applies', async () => {
    server.on('POST', PATH, () => ({ status: 429, headers: { 'retry-after': '30' } }));
    const h = await start();
    const limited = await h.attempt(sessionRevoked);
    expect(limited).toMatchObject({ ok: false, class: 'retryable' });
    if (!limited.ok) expect(limited.error.retryAfterMs).toBe(30_000);
    server.on('POST', PATH, () => ({ status: 429 }));
    const bare = await h.attempt(sessionRevoked);
    expect(bare).toMatchObject({ ok: false, class: 'retryable' });
    if (!bare.ok) expect(bare.error.retryAfterMs).toBeUndefined();
  });

  it('RFC 8935 §2.3, RFC 9110 §15.6: 500, 502, 503 and 504 are retried; 501 and 505 (the push is not supported) are dead-lettered', async () => {
    const h = await start();
    for (const status of [500, 502, 503, 504]) {
      server.on('POST', PATH, () => ({ status, headers: { 'content-type': 'text/html' }, body: '<h1>Down' }));
      const outcome = await h.attempt(sessionRevoked);
      expect(outcome, String(status)).toMatchObject({ ok: false, class: 'retryable' });
    }
    for (const status of [501, 505]) {
      server.on('POST', PATH, () => ({
        status,
        headers: { 'content-type': 'text/plain' },
        body: 'POST is not implemented for /ssf/events',
      }));
      const outcome = await h.attempt(sessionRevoked);
      expect(outcome, String(status)).toMatchObject({ ok: false, class: 'permanent' });
      if (!outcome.ok) {
        expect(outcome.error.code).toBe('SSF_ERR_HTTP_NOT_SUPPORTED');
        expect(outcome.error.message).toContain('POST is not implemented');
      }
    }
    expect(await h.counter('ssf_push_sets_total', { outcome: 'permanent' })).toBe(2);
  });

  it('a receiver slower than the request timeout is retryable', async () => {
    server.on('POST', PATH, async () => {
      await sleep(1_000);
      return { status: 202 };
    });
    const h = await start();
    const outcome = await h.attempt(sessionRevoked);
    expect(outcome).toMatchObject({ ok: false, class: 'retryable' });
    if (!outcome.ok) expect(outcome.error.code).toBe('SSF_ERR_HTTP_TIMEOUT');
  });

  it('malformed answers: any 2xx body is delivered, a 400 that is not RFC 8935 JSON is permanent', async () => {
    server.on('POST', PATH, () => ({
      status: 200,
      headers: { 'content-type': 'text/html' },
      body: '<html>ok',
    }));
    const h = await start();
    expect((await h.attempt(sessionRevoked)).ok).toBe(true);
    server.on('POST', PATH, () => ({
      status: 400,
      headers: { 'content-type': 'text/html' },
      body: '<h1>Bad',
    }));
    const html = await h.attempt(sessionRevoked);
    expect(html).toMatchObject({ ok: false, class: 'permanent' });
    if (!html.ok) expect(html.error.message).toContain('answered 400: <h1>Bad');
    server.on('POST', PATH, () => ({ status: 400, body: '{"err": 42' }));
    expect(await h.attempt(sessionRevoked)).toMatchObject({ ok: false, class: 'permanent' });
  });
});

describe('ssf-push: profiles', () => {
  it('shapes SETs with the configured profile; an event the profile refuses fails signing permanently', async () => {
    const received = ssfReceiver(server, { path: PATH, audience: 'https://sharedsignals.googleapis.com' });
    const h = await start({ profile: 'google-workspace', audience: 'https://sharedsignals.googleapis.com' });
    expect((await h.attempt(sessionRevoked)).ok).toBe(true);
    const event = received[0]?.set.event;
    expect(event?.subject).toEqual({ format: 'email', email: 'dana.lee@example.com' });
    const refused = await h.attempt({
      type: 'risc.account-disabled',
      subject: sessionRevoked.subject,
      sourceRecordId: 'hr:1',
    });
    expect(refused).toMatchObject({ ok: false, class: 'permanent', set: undefined });
    if (!refused.ok) expect(refused.error.message).toMatch(/Google accepts only caep.session-revoked/);
    expect(server.requests.filter((r) => r.path === PATH)).toHaveLength(1);
  });

  it('profile_options reach the profile: event_subject puts the subject inside the event too (SSF 1.0 §3.1.1)', async () => {
    const received = ssfReceiver(server, { path: PATH, audience: AUD });
    const h = await start({ profile: 'ssf-1.0', profile_options: { event_subject: true } });
    expect((await h.attempt(sessionRevoked)).ok).toBe(true);
    expect(received[0]?.set.event?.subject).toEqual({ format: 'email', email: 'dana.lee@example.com' });
  });

  it('a profile that takes one audience only (google-workspace) with another is a config problem at audience, naming the one it takes', () => {
    const parse = (audience: unknown) =>
      ssfPush.configSchema.safeParse({
        endpoint_url: 'https://push.example.com/google',
        audience,
        profile: 'google-workspace',
      });
    for (const wrong of [AUD, ['https://sharedsignals.googleapis.com', AUD]]) {
      expect(parse(wrong).error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
        [
          'audience',
          `the google-workspace profile takes only the audience https://sharedsignals.googleapis.com, not ${[wrong].flat().join(', ')}: every SET would be refused; set audience to https://sharedsignals.googleapis.com`,
        ],
      ]);
    }
    expect(parse('https://sharedsignals.googleapis.com').success).toBe(true);
    expect(parse(['https://sharedsignals.googleapis.com']).success).toBe(true);
    // Other profiles take any audience.
    expect(
      ssfPush.configSchema.safeParse({
        endpoint_url: 'https://r.example.net/e',
        audience: AUD,
        profile: 'okta-itp',
      }).success,
    ).toBe(true);
  });

  it('an unknown profile or a wrong profile option is a config problem, with its path', () => {
    const problems = (extra: Record<string, unknown>) =>
      ssfPush.configSchema
        .safeParse({ endpoint_url: 'https://r.example.net/e', audience: AUD, ...extra })
        .error?.issues.map((i) => i.path.join('.'));
    expect(problems({ profile: 'nope' })).toEqual(['profile']);
    expect(problems({ profile: 'ssf-1.0', profile_options: { caep_interop: 'yes' } })).toEqual([
      'profile_options.caep_interop',
    ]);
    expect(problems({ profile: 'okta-itp', profile_options: { include_device: true } })).toBeUndefined();
  });
});
