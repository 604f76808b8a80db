import { describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from './errors.ts';
import {
  classifyPushResponse,
  DEFAULT_INVALID_KEY_RETRIES,
  DEFAULT_INVALID_KEY_RETRY_AFTER_MS,
  parsePushError,
} from './push.ts';
import { Secret } from './secret.ts';

const NOW = Date.UTC(2026, 0, 1);
const options = { target: 'POST https://receiver.example.net/ssf', nowMs: NOW };

function refusal(err: string, description = 'details') {
  return classifyPushResponse({ status: 400, body: JSON.stringify({ err, description }) }, options);
}

describe('classifyPushResponse (RFC 8935 §2.2–2.4)', () => {
  it('any 2xx is delivered (202 is what receivers answer)', () => {
    expect(classifyPushResponse({ status: 202 })).toBeUndefined();
    expect(classifyPushResponse({ status: 204, body: '' })).toBeUndefined();
    expect(classifyPushResponse({ status: 200, body: 'OK' })).toBeUndefined();
  });

  it.each([
    'invalid_request',
    'invalid_key',
    'invalid_issuer',
    'invalid_audience',
    'invalid_state',
    'vendor_code',
  ])(
    '400 %s is permanent (invalid_key when the attempt is not given), names the code and does not flag the credentials',
    (err) => {
      const error = refusal(err, 'why it failed');
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).authFailure).toBe(false);
      expect(error?.code).toBe('SSF_ERR_PUSH_REFUSED');
      expect(error?.message).toContain(`refused the SET: ${err} (why it failed)`);
      expect(error?.detail).toEqual({ status: 400, err, description: 'why it failed' });
    },
  );

  describe('RFC 8935 §2.4 invalid_key: the receiver may hold our JWKS from before a key rotation', () => {
    const invalidKey = (attempt: number | undefined, extra: Record<string, number> = {}) =>
      classifyPushResponse(
        { status: 400, body: { err: 'invalid_key', description: 'kid k2 unknown' } },
        { ...options, ...(attempt === undefined ? {} : { attempt }), ...extra },
      );

    it('is retried for the first attempts, 1 min apart, as the transmitter does (3 retries, then final)', () => {
      expect([DEFAULT_INVALID_KEY_RETRIES, DEFAULT_INVALID_KEY_RETRY_AFTER_MS]).toEqual([3, 60_000]);
      for (const attempt of [0, 1, 2]) {
        const error = invalidKey(attempt);
        expect(error).toBeInstanceOf(RetryableError);
        expect(error).toMatchObject({
          code: 'SSF_ERR_PUSH_INVALID_KEY',
          retryAfterMs: 60_000,
          detail: { status: 400, err: 'invalid_key', description: 'kid k2 unknown', retryAfterMs: 60_000 },
        });
        expect(error?.message).toContain('refused the SET: invalid_key (kid k2 unknown)');
        expect(error?.message).toContain(`retry ${attempt + 1} of 3, after 60 s`);
      }
      const final = invalidKey(3) as PermanentError;
      expect(final).toBeInstanceOf(PermanentError);
      expect(final.authFailure).toBe(false);
      expect(final.code).toBe('SSF_ERR_PUSH_REFUSED');
      expect(final.message).toContain('it must know our current JWKS (still refused after 3 retries)');
      expect(final.detail).toEqual({ status: 400, err: 'invalid_key', description: 'kid k2 unknown' });
    });

    it('takes the number of retries and the wait from the caller', () => {
      const soon = invalidKey(0, { invalidKeyRetries: 1, invalidKeyRetryAfterMs: 50 }) as RetryableError;
      expect(soon).toBeInstanceOf(RetryableError);
      expect(soon.retryAfterMs).toBe(50);
      expect(soon.message).toContain('retry 1 of 1, after 50 ms');
      expect(invalidKey(1, { invalidKeyRetries: 1 })).toBeInstanceOf(PermanentError);
      expect(invalidKey(0, { invalidKeyRetries: 0 })).toBeInstanceOf(PermanentError);
    });

    it('is final when the caller does not say which attempt this is, and with 401/403 flags the credentials', () => {
      expect(invalidKey(undefined)).toBeInstanceOf(PermanentError);
      const forbidden = classifyPushResponse(
        { status: 403, body: { err: 'invalid_key' } },
        { ...options, attempt: 0 },
      ) as PermanentError;
      expect(forbidden).toBeInstanceOf(PermanentError);
      expect(forbidden.authFailure).toBe(true);
    });

    it('only invalid_key: the other codes stay final on a first attempt', () => {
      for (const err of ['invalid_request', 'invalid_issuer', 'invalid_audience', 'invalid_state']) {
        const error = classifyPushResponse({ status: 400, body: { err } }, { ...options, attempt: 0 });
        expect(error).toBeInstanceOf(PermanentError);
      }
    });
  });

  it.each(['authentication_failed', 'access_denied'])('400 %s flags the credentials', (err) => {
    const error = refusal(err) as PermanentError;
    expect(error.authFailure).toBe(true);
    expect(error.code).toBe('SSF_ERR_PUSH_AUTH');
  });

  it('401 and 403 flag the credentials, with or without an RFC 8935 body', () => {
    expect((classifyPushResponse({ status: 401 }) as PermanentError).authFailure).toBe(true);
    const error = classifyPushResponse({ status: 403, body: { err: 'invalid_key' } }) as PermanentError;
    expect(error.authFailure).toBe(true);
  });

  it('429 and 5xx are retryable, with Retry-After or Okta’s X-Rate-Limit-Reset', () => {
    const seconds = classifyPushResponse({ status: 429, headers: { 'Retry-After': '30' } }, options);
    expect(seconds).toBeInstanceOf(RetryableError);
    expect((seconds as RetryableError).retryAfterMs).toBe(30_000);
    const reset = classifyPushResponse(
      { status: 429, headers: { 'x-rate-limit-reset': String(NOW / 1000 + 12) } },
      options,
    ) as RetryableError;
    expect(reset.retryAfterMs).toBe(12_000);
    expect(reset.code).toBe('SSF_ERR_PUSH_RATE_LIMITED');
    const bare = classifyPushResponse({ status: 429 }, options) as RetryableError;
    expect(bare.retryAfterMs).toBeUndefined();
    const down = classifyPushResponse({ status: 503, body: '<html>maintenance</html>' }, options);
    expect(down).toBeInstanceOf(RetryableError);
    expect(down?.message).toContain('answered 503: <html>maintenance</html>');
    expect(classifyPushResponse({ status: 408 })).toBeInstanceOf(RetryableError);
  });

  it('RFC 9110 §15.6.2, §15.6.6: 501 and 505 are permanent (a retry cannot succeed); 500, 502, 504 retry', () => {
    for (const status of [501, 505]) {
      const error = classifyPushResponse({ status, body: 'Not Implemented' }, options);
      expect(error, String(status)).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).authFailure, String(status)).toBeFalsy();
    }
    for (const status of [500, 502, 504]) {
      expect(classifyPushResponse({ status }, options), String(status)).toBeInstanceOf(RetryableError);
    }
  });

  it('a 400 without an RFC 8935 body and other 4xx are permanent', () => {
    const plain = classifyPushResponse({ status: 400, body: 'Bad Request' }, options);
    expect(plain).toBeInstanceOf(PermanentError);
    expect(plain?.message).toBe('POST https://receiver.example.net/ssf answered 400: Bad Request');
    expect(classifyPushResponse({ status: 404 })).toBeInstanceOf(PermanentError);
    expect(classifyPushResponse({ status: 301 })).toBeInstanceOf(PermanentError);
  });

  it('receiver text is cleaned of control characters, cut short and scrubbed of secrets', () => {
    const token = new Secret('push-secret-9f8e7d');
    const error = refusal('invalid_request', `line1\nline2\u0007 ${token.reveal()} ${'x'.repeat(400)}`);
    expect(error?.message).not.toContain('\n');
    expect(error?.message).not.toContain('\u0007');
    expect(error?.message).not.toContain('push-secret-9f8e7d');
    expect(error?.message.length).toBeLessThan(500);
  });

  it('a credential the receiver quotes JSON-escaped or percent-encoded is scrubbed too', () => {
    const header = new Secret('Bearer Zm9v/YmFy+c2VjcmV0/dG9rZW4x==');
    // As PHP's json_encode writes it: every slash escaped.
    const escaped = JSON.stringify({ message: `token ${header.reveal()} rejected` }).replace(/\//g, '\\/');
    expect(escaped).toContain('Zm9v\\/YmFy');
    const forbidden = classifyPushResponse({ status: 403, body: escaped }, options);
    const encoded = classifyPushResponse(
      { status: 400, body: `invalid credential ${encodeURIComponent(header.reveal())}` },
      options,
    );
    for (const error of [forbidden, encoded]) {
      expect(error?.message).toContain('[redacted]');
      expect(error?.message).not.toContain('Zm9v');
    }
  });
});

describe('parsePushError', () => {
  it('reads {err, description} from text or parsed JSON, and nothing else', () => {
    expect(parsePushError('{"err":"invalid_key","description":"kid k1"}')).toEqual({
      err: 'invalid_key',
      description: 'kid k1',
    });
    expect(parsePushError({ err: 'invalid_audience' })).toEqual({ err: 'invalid_audience' });
    expect(parsePushError('{"error":"invalid_request"}')).toBeUndefined();
    expect(parsePushError('not json')).toBeUndefined();
    expect(parsePushError(['err'])).toBeUndefined();
  });
});
