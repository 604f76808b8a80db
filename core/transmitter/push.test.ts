import { describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { classifyPush, parseSetError } from './push.ts';

const ctx = {
  url: 'https://rx.example/push',
  attempt: 0,
  invalidKeyRetries: 2,
  invalidKeyRetryAfterMs: 60_000,
  nowMs: 0,
};

describe('push answers (RFC 8935 §2.2–2.4)', () => {
  it('any 2xx is delivered', () => {
    expect(classifyPush({ ok: true, status: 202 }, ctx)).toBeUndefined();
  });

  it('parses RFC 8935 error bodies and cleans their text', () => {
    expect(parseSetError('{"err":"invalid_key","description":"no\\nkid"}')).toEqual({
      err: 'invalid_key',
      description: 'no kid',
    });
    expect(parseSetError('{"error":"x"}')).toBeUndefined();
    expect(parseSetError('<html>')).toBeUndefined();
  });

  it('PUSH-11: refused SETs are permanent except invalid_key, which is retried a bounded number of times', () => {
    const refused = classifyPush({ ok: false, status: 400, err: 'invalid_audience' }, ctx);
    expect(refused).toBeInstanceOf(PermanentError);
    expect(refused?.code).toBe('SSF_ERR_TRANSMITTER_PUSH_REJECTED');
    const key = classifyPush({ ok: false, status: 400, err: 'invalid_key' }, ctx);
    expect(key).toBeInstanceOf(RetryableError);
    expect((key as RetryableError).retryAfterMs).toBe(60_000);
    expect(
      classifyPush({ ok: false, status: 400, err: 'invalid_key' }, { ...ctx, attempt: 2 }),
    ).toBeInstanceOf(PermanentError);
    const auth = classifyPush(
      { ok: false, status: 400, err: 'authentication_failed' },
      ctx,
    ) as PermanentError;
    expect(auth.authFailure).toBe(true);
  });

  it('other statuses and network failures follow the shared HTTP classification', () => {
    const unavailable = classifyPush(
      { ok: false, status: 503, outcome: { kind: 'response', status: 503, headers: { 'retry-after': '7' } } },
      ctx,
    );
    expect(unavailable).toBeInstanceOf(RetryableError);
    expect((unavailable as RetryableError).retryAfterMs).toBe(7_000);
    expect(classifyPush({ ok: false, outcome: { kind: 'response', status: 404 } }, ctx)).toBeInstanceOf(
      PermanentError,
    );
    expect(classifyPush({ ok: false, outcome: { kind: 'timeout', timeoutMs: 10 } }, ctx)).toBeInstanceOf(
      RetryableError,
    );
    expect(
      classifyPush({ ok: false, outcome: { kind: 'ssrf', reason: 'loopback', message: 'no' } }, ctx)?.code,
    ).toBe('SSF_ERR_HTTP_SSRF_REFUSED');
  });
});
