import { describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { Secret } from '../plugin-api/secret.ts';
import { classifyHttpOutcome, outcomeFromError, type HttpOutcome } from './classify.ts';
import { SsrfRefusedError } from './ssrf.ts';
import { TransportError } from './transport.ts';

const NOW = Date.UTC(2026, 0, 1);
const ctx = { method: 'POST', url: 'https://api.example.com/v1/events?token=abc&x=1', nowMs: NOW };
const response = (
  status: number,
  extra: Partial<Extract<HttpOutcome, { kind: 'response' }>> = {},
): HttpOutcome => ({
  kind: 'response',
  status,
  ...extra,
});

describe('classifyHttpOutcome', () => {
  it.each([200, 201, 202, 204, 299])('treats %d as success', (status) => {
    expect(classifyHttpOutcome(response(status), ctx)).toBeUndefined();
  });

  it.each([
    [408, 'SSF_ERR_HTTP_TIMEOUT'],
    [429, 'SSF_ERR_HTTP_RATE_LIMITED'],
    [500, 'SSF_ERR_HTTP_SERVER'],
    [502, 'SSF_ERR_HTTP_SERVER'],
    [503, 'SSF_ERR_HTTP_SERVER'],
    [504, 'SSF_ERR_HTTP_SERVER'],
  ])('treats %d as retryable (%s)', (status, code) => {
    const err = classifyHttpOutcome(response(status), ctx);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err?.code).toBe(code);
  });

  it.each([400, 404, 405, 409, 410, 413, 422])('treats %d as permanent, not an auth failure', (status) => {
    const err = classifyHttpOutcome(response(status), ctx);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).authFailure).toBe(false);
    expect(err?.code).toBe('SSF_ERR_HTTP_CLIENT');
  });

  it.each([
    [501, 'Not Implemented'],
    [505, 'HTTP Version Not Supported'],
  ])(
    'RFC 9110 §15.6: treats %d %s as permanent (the request is not supported; RFC 7644 §3.12 answers an unsupported SCIM operation so), not an auth failure',
    (status, statusText) => {
      const body =
        '{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"501","detail":"PATCH not supported"}';
      const err = classifyHttpOutcome(
        response(status, { statusText, body, headers: { 'retry-after': '5' } }),
        ctx,
      );
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).authFailure).toBe(false);
      expect(err?.code).toBe('SSF_ERR_HTTP_NOT_SUPPORTED');
      expect(err?.message).toContain(
        `answered ${status} ${statusText}: the server does not support this request`,
      );
      expect(err?.message).toContain('PATCH not supported');
      expect(err?.detail).toMatchObject({ status });
    },
  );

  it.each([401, 403])('treats %d as a permanent auth failure', (status) => {
    const err = classifyHttpOutcome(response(status), ctx);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).authFailure).toBe(true);
    expect(err?.code).toBe('SSF_ERR_HTTP_AUTH');
  });

  it('treats an unfollowed redirect as permanent and names its target', () => {
    const err = classifyHttpOutcome(
      response(302, { headers: { location: 'https://other.example/x?sig=zz' } }),
      ctx,
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect(err?.code).toBe('SSF_ERR_HTTP_REDIRECT');
    expect(err?.message).toContain('https://other.example/x?sig=[redacted]');
  });

  it('carries Retry-After (seconds and HTTP-date) into retryAfterMs', () => {
    const seconds = classifyHttpOutcome(
      response(429, { headers: { 'retry-after': '7' } }),
      ctx,
    ) as RetryableError;
    expect(seconds.retryAfterMs).toBe(7_000);
    const date = new Date(NOW + 90_000).toUTCString();
    const dated = classifyHttpOutcome(
      response(503, { headers: { 'retry-after': date } }),
      ctx,
    ) as RetryableError;
    expect(dated.retryAfterMs).toBe(90_000);
    expect(dated.message).toContain('retry after 90 s');
  });

  it('clamps Retry-After to the configured maximum', () => {
    const err = classifyHttpOutcome(response(429, { headers: { 'retry-after': '86400' } }), {
      ...ctx,
      maxRetryAfterMs: 120_000,
    }) as RetryableError;
    expect(err.retryAfterMs).toBe(120_000);
  });

  it('names method, scrubbed URL, status and a scrubbed, truncated body excerpt', () => {
    const secret = new Secret('body-secret-7a7a7a');
    const body = `{"error":"bad field","echo":"${secret.reveal()}"}` + ' pad'.repeat(100);
    const err = classifyHttpOutcome(response(400, { statusText: 'Bad Request', body }), ctx)!;
    expect(err.message).toMatch(
      /^POST https:\/\/api\.example\.com\/v1\/events\?token=\[redacted\]&x=1 answered 400 Bad Request: \{"error":"bad field","echo":"\[redacted\]"\}/,
    );
    expect(err.message).not.toContain(secret.reveal());
    expect(err.message).not.toContain('abc');
    expect(err.message.length).toBeLessThan(400);
    expect(err.detail).toEqual({
      method: 'POST',
      url: 'https://api.example.com/v1/events?token=[redacted]&x=1',
      status: 400,
    });
  });

  it.each<[HttpOutcome, typeof RetryableError | typeof PermanentError, string]>([
    [{ kind: 'timeout', timeoutMs: 200 }, RetryableError, 'SSF_ERR_HTTP_TIMEOUT'],
    [{ kind: 'aborted', by: 'stop' }, RetryableError, 'SSF_ERR_HTTP_ABORTED'],
    [
      { kind: 'network', code: 'ECONNREFUSED', message: 'connect ECONNREFUSED' },
      RetryableError,
      'SSF_ERR_HTTP_NETWORK',
    ],
    [
      { kind: 'network', code: 'CERT_HAS_EXPIRED', message: 'certificate has expired' },
      RetryableError,
      'SSF_ERR_HTTP_TLS',
    ],
    [{ kind: 'too_large', direction: 'response', limitBytes: 10 }, PermanentError, 'SSF_ERR_HTTP_TOO_LARGE'],
    [{ kind: 'invalid_request', message: 'bad header' }, PermanentError, 'SSF_ERR_HTTP_INVALID_REQUEST'],
    [
      { kind: 'bad_body', status: 200, message: 'the body is not valid JSON' },
      PermanentError,
      'SSF_ERR_HTTP_BAD_BODY',
    ],
    [
      { kind: 'ssrf', reason: 'loopback', message: 'points at a loopback address' },
      PermanentError,
      'SSF_ERR_HTTP_SSRF_REFUSED',
    ],
  ])('classifies %j', (outcome, cls, code) => {
    const err = classifyHttpOutcome(outcome, ctx);
    expect(err).toBeInstanceOf(cls);
    expect(err?.code).toBe(code);
    expect(err?.message.startsWith('POST https://api.example.com/v1/events?token=[redacted]&x=1')).toBe(true);
  });
});

function wrapped(inner: Error & { code?: string }, outerCode = 'ERR_NETWORK'): Error {
  const outer = new Error('request failed', { cause: inner }) as Error & { code?: string };
  outer.code = outerCode;
  return outer;
}

function sysError(code: string, message: string): Error & { code: string } {
  return Object.assign(new Error(message), { code });
}

describe('outcomeFromError', () => {
  const limits = { timeoutMs: 250, maxBytes: 1024 };

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH'])(
    'finds the system code %s under a wrapper',
    (code) => {
      const outcome = outcomeFromError(wrapped(sysError(code, `${code} happened`)), limits);
      expect(outcome).toEqual({ kind: 'network', code, message: `${code} happened` });
      expect(classifyHttpOutcome(outcome, ctx)).toBeInstanceOf(RetryableError);
    },
  );

  it('reads "socket hang up" as a retryable network failure', () => {
    const outcome = outcomeFromError(sysError('ECONNRESET', 'socket hang up'), limits);
    expect(outcome).toMatchObject({ kind: 'network', code: 'ECONNRESET' });
  });

  it('lets our own signals decide between timeout and abort', () => {
    expect(outcomeFromError(new Error('canceled'), limits, 'timeout')).toEqual({
      kind: 'timeout',
      timeoutMs: 250,
    });
    expect(outcomeFromError(new Error('canceled'), limits, 'stop')).toEqual({ kind: 'aborted', by: 'stop' });
    expect(outcomeFromError(new Error('canceled'), limits, 'caller')).toEqual({
      kind: 'aborted',
      by: 'caller',
    });
  });

  it('recognises socket timeouts, transport failures, SSRF refusals and unusable requests', () => {
    expect(outcomeFromError(sysError('ETIMEDOUT', 'connect ETIMEDOUT'), limits)).toEqual({
      kind: 'timeout',
      timeoutMs: 250,
    });
    expect(
      outcomeFromError(wrapped(new TransportError('request_too_large', 'too big')), limits),
    ).toMatchObject({
      kind: 'too_large',
      direction: 'request',
      limitBytes: 1024,
    });
    expect(
      outcomeFromError(new TransportError('too_many_redirects', 'the redirect limit was reached'), limits),
    ).toEqual({ kind: 'redirect_failed', message: 'the redirect limit was reached' });
    expect(outcomeFromError(wrapped(new SsrfRefusedError('no', 'metadata')), limits)).toEqual({
      kind: 'ssrf',
      reason: 'metadata',
      message: 'no',
    });
    expect(
      outcomeFromError(sysError('ERR_INVALID_CHAR', 'Invalid character in header'), limits),
    ).toMatchObject({
      kind: 'invalid_request',
    });
  });
});
