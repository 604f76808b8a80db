import { describe, expect, it, vi } from 'vitest';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { EXPIRED_SECRET_MARGIN_MS, registeredSecretValues, Secret } from '../plugin-api/secret.ts';
import {
  buildTokenRequest,
  classifyTokenOutcome,
  DEFAULT_TOKEN_LIFETIME_MS,
  parseTokenResponse,
  refreshMarginMs,
  TokenCache,
  type AccessToken,
  type ClientCredentialsAuth,
} from './oauth.ts';

const auth: ClientCredentialsAuth = {
  type: 'oauth2_client_credentials',
  tokenUrl: 'https://idp.example.com/oauth2/token',
  clientId: 'client a',
  clientSecret: new Secret('s3cr&t+value'),
  scope: 'read write',
  audience: 'https://api.example.com',
  extraParams: { resource: 'r1' },
};

describe('buildTokenRequest', () => {
  it('sends the credentials as form-encoded Basic auth by default (RFC 6749 §2.3.1)', () => {
    const req = buildTokenRequest(auth);
    const expected = Buffer.from('client+a:s3cr%26t%2Bvalue').toString('base64');
    expect(req.headers['authorization']).toBe(`Basic ${expected}`);
    const form = new URLSearchParams(req.body);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'client_credentials',
      scope: 'read write',
      audience: 'https://api.example.com',
      resource: 'r1',
    });
    expect(registeredSecretValues().has(expected)).toBe(true);
  });

  it('sends the credentials as form fields when asked to', () => {
    const req = buildTokenRequest({ ...auth, clientAuth: 'body' });
    expect(req.headers['authorization']).toBeUndefined();
    const form = new URLSearchParams(req.body);
    expect(form.get('client_id')).toBe('client a');
    expect(form.get('client_secret')).toBe('s3cr&t+value');
  });
});

describe('parseTokenResponse', () => {
  it('computes expiry and an early refresh time, and registers the token for scrubbing', () => {
    const token = parseTokenResponse(
      '{"access_token":"tok-123456","token_type":"Bearer","expires_in":1800}',
      1_000,
    );
    expect(token).toEqual({ value: 'tok-123456', expiresAtMs: 1_801_000, refreshAtMs: 1_741_000 });
    expect(registeredSecretValues().has('tok-123456')).toBe(true);
  });

  it('scrubs the token until a while after it expires, then forgets it: refreshes do not pile up', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.UTC(2026, 2, 1));
      parseTokenResponse('{"access_token":"tok-short-lived-1","expires_in":600}', 0);
      expect(registeredSecretValues().has('tok-short-lived-1')).toBe(true);
      vi.setSystemTime(Date.UTC(2026, 2, 1) + 600_000 + EXPIRED_SECRET_MARGIN_MS);
      expect(registeredSecretValues().has('tok-short-lived-1')).toBe(false);
      // The client's own secret is configuration: kept for good.
      expect(registeredSecretValues().has('s3cr&t+value')).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });

  it('marks a DPoP-bound token (RFC 9449 §5) when the request carried a proof; a bearer stays a bearer', () => {
    expect(parseTokenResponse('{"access_token":"tok-bound-1","token_type":"DPoP"}', 0, true).dpop).toBe(true);
    expect(
      parseTokenResponse('{"access_token":"tok-plain-1","token_type":"Bearer"}', 0, true),
    ).not.toHaveProperty('dpop');
  });

  it('assumes a default lifetime when expires_in is missing', () => {
    const token = parseTokenResponse('{"access_token":"tok-abcdef"}', 0);
    expect(token.expiresAtMs).toBe(DEFAULT_TOKEN_LIFETIME_MS);
  });

  it.each([
    ['not json', /not JSON/],
    ['[]', /not an object/],
    [
      '{"token_type":"bearer","refresh_token":"zzz"}',
      /no access_token \(fields: token_type, refresh_token\)/,
    ],
    ['{"access_token":"tok-mac-123","token_type":"mac"}', /only bearer and DPoP tokens/],
    // RFC 9449 §5: a DPoP-bound token is of no use to a client that sent no proof.
    ['{"access_token":"tok-dpop-123","token_type":"DPoP"}', /carried no DPoP proof/],
  ])('refuses %j without quoting the body', (body, message) => {
    expect(() => parseTokenResponse(body, 0)).toThrow(message);
    try {
      parseTokenResponse(body, 0);
    } catch (err) {
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as Error).message).not.toContain('zzz');
    }
  });

  it('refreshes a tenth of the lifetime early, at most a minute', () => {
    expect(refreshMarginMs(10_000)).toBe(1_000);
    expect(refreshMarginMs(3_600_000)).toBe(60_000);
  });
});

describe('classifyTokenOutcome', () => {
  const ctx = { method: 'POST', url: 'https://idp.example.com/oauth2/token' };

  it('marks a 400 invalid_client as an authentication failure', () => {
    const err = classifyTokenOutcome(
      { kind: 'response', status: 400, body: '{"error":"invalid_client"}' },
      ctx,
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).authFailure).toBe(true);
    expect(err?.message).toContain('invalid_client');
  });

  it('keeps other outcomes as the general classification does', () => {
    const bad = classifyTokenOutcome(
      { kind: 'response', status: 400, body: '{"error":"unsupported_grant_type"}' },
      ctx,
    );
    expect((bad as PermanentError).authFailure).toBe(false);
    expect(classifyTokenOutcome({ kind: 'response', status: 503 }, ctx)).toBeInstanceOf(RetryableError);
    expect((classifyTokenOutcome({ kind: 'response', status: 401 }, ctx) as PermanentError).authFailure).toBe(
      true,
    );
  });
});

describe('TokenCache', () => {
  function source() {
    let now = 0;
    let n = 0;
    const fetch = vi.fn(async (): Promise<AccessToken> => {
      n += 1;
      await new Promise((r) => setTimeout(r, 5));
      return { value: `t${n}`, expiresAtMs: now + 10_000, refreshAtMs: now + 9_000 };
    });
    return { fetch, clock: { set: (v: number) => (now = v), now: () => now } };
  }

  it('shares one token request among concurrent callers and caches the result', async () => {
    const { fetch, clock } = source();
    const cache = new TokenCache(fetch, clock.now);
    const tokens = await Promise.all([cache.get(), cache.get(), cache.get(), cache.get()]);
    expect(tokens.map((t) => t.value)).toEqual(['t1', 't1', 't1', 't1']);
    expect((await cache.get()).value).toBe('t1');
    expect(fetch).toHaveBeenCalledTimes(1);
  });

  it('refreshes once the refresh time is reached, before expiry', async () => {
    const { fetch, clock } = source();
    const cache = new TokenCache(fetch, clock.now);
    await cache.get();
    clock.set(8_999);
    expect((await cache.get()).value).toBe('t1');
    clock.set(9_000);
    expect((await cache.get()).value).toBe('t2');
    expect(fetch).toHaveBeenCalledTimes(2);
  });

  it('drops a refused token only if it is still the current one', async () => {
    const { fetch, clock } = source();
    const cache = new TokenCache(fetch, clock.now);
    await cache.get();
    cache.invalidate('t0');
    expect((await cache.get()).value).toBe('t1');
    cache.invalidate('t1');
    expect((await cache.get()).value).toBe('t2');
  });

  it('does not cache a failure', async () => {
    let calls = 0;
    const cache = new TokenCache(async () => {
      calls += 1;
      if (calls === 1) throw new RetryableError('idp down');
      return { value: 'ok', expiresAtMs: Infinity, refreshAtMs: Infinity };
    });
    await expect(cache.get()).rejects.toThrow('idp down');
    expect((await cache.get()).value).toBe('ok');
  });
});
