/**
 * Maps every outcome of an HTTP exchange to the plugin-api error classes, which decide what the
 * core does next (retry after a delay, dead-letter, flag the instance). Pure: no I/O, the time is
 * a parameter.
 */
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { DEFAULT_MAX_RETRY_AFTER_MS, retryAfterFromHeaders } from './retry-after.ts';
import { bodyExcerpt, scrubUrl } from './redact.ts';
import { SsrfRefusedError, type SsrfReason } from './ssrf.ts';
import { TransportError } from './transport.ts';

export type HttpOutcome =
  /** The remote answered (any status). `body` is the raw start of the body, not yet scrubbed. */
  | { kind: 'response'; status: number; statusText?: string; headers?: Record<string, string>; body?: string }
  /** Our own deadline passed before the exchange completed. */
  | { kind: 'timeout'; timeoutMs: number }
  /** Cancelled: the owning instance is stopping, or the caller's signal fired. */
  | { kind: 'aborted'; by: 'stop' | 'caller' }
  /** The connection failed or broke (refused, reset, DNS, TLS …). */
  | { kind: 'network'; code?: string; message: string }
  /** The response (or the request body) is larger than the configured limit. */
  | { kind: 'too_large'; direction: 'response' | 'request'; limitBytes: number }
  /** The request cannot be sent as built (bad URL, invalid header, unsupported option). */
  | { kind: 'invalid_request'; message: string }
  /** A 2xx whose body is not what was asked for (e.g. invalid JSON). */
  | { kind: 'bad_body'; status: number; message: string; body?: string }
  /** Redirects went on past the limit, or to a place that cannot be followed. */
  | { kind: 'redirect_failed'; message: string }
  /** Refused by the SSRF policy before or while connecting. */
  | { kind: 'ssrf'; reason: SsrfReason; message: string };

export interface OutcomeContext {
  method: string;
  url: string;
  /** Says what the URL is, e.g. `OAuth token endpoint`; shown after it in messages. */
  label?: string;
  nowMs?: number;
  maxRetryAfterMs?: number;
}

export type HttpError = RetryableError | PermanentError;

const TLS_CODE = /^(CERT_|ERR_TLS_|ERR_SSL_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|EPROTO$)/;

const INVALID_REQUEST_CODES = new Set([
  'ERR_INVALID_URL',
  'ERR_BAD_OPTION',
  'ERR_BAD_OPTION_VALUE',
  'ERR_INVALID_CHAR',
  'ERR_INVALID_HTTP_TOKEN',
  'ERR_HTTP_INVALID_HEADER_VALUE',
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_INVALID_PROTOCOL',
  'ERR_UNESCAPED_CHARACTERS',
  'ERR_NOT_SUPPORT',
]);

/**
 * 5xx answers that describe the request, not the server's health: 501 Not Implemented (the
 * method or feature is not supported, RFC 9110 §15.6.2; SCIM's answer to an operation the
 * service provider lacks, RFC 7644 §3.12) and 505 HTTP Version Not Supported (§15.6.6). The
 * same request gets the same answer however often it is sent.
 */
const UNSUPPORTED = new Set([501, 505]);

function describeStatus(status: number, statusText?: string): string {
  return statusText ? `${status} ${statusText}` : String(status);
}

function withExcerpt(message: string, body: string | undefined): string {
  const excerpt = bodyExcerpt(body);
  return excerpt ? `${message}: ${excerpt}` : message;
}

function formatDelay(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function classifyResponse(
  outcome: Extract<HttpOutcome, { kind: 'response' }>,
  ctx: OutcomeContext,
  what: string,
): HttpError | undefined {
  const { status } = outcome;
  if (status >= 200 && status < 300) return undefined;
  const detail = { method: ctx.method, url: scrubUrl(ctx.url), status };
  const answered = `${what} answered ${describeStatus(status, outcome.statusText)}`;

  if (UNSUPPORTED.has(status)) {
    return new PermanentError(
      withExcerpt(
        `${answered}: the server does not support this request, so it is not retried`,
        outcome.body,
      ),
      { code: 'SSF_ERR_HTTP_NOT_SUPPORTED', detail },
    );
  }
  if (status === 408 || status === 429 || status >= 500) {
    const retryAfterMs = retryAfterFromHeaders(
      outcome.headers ?? {},
      ctx.nowMs ?? Date.now(),
      ctx.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS,
      status,
    );
    const code =
      status === 429
        ? 'SSF_ERR_HTTP_RATE_LIMITED'
        : status === 408
          ? 'SSF_ERR_HTTP_TIMEOUT'
          : 'SSF_ERR_HTTP_SERVER';
    const wait = retryAfterMs === undefined ? '' : ` (retry after ${formatDelay(retryAfterMs)})`;
    return new RetryableError(withExcerpt(`${answered}${wait}`, outcome.body), {
      code,
      retryAfterMs,
      detail: { ...detail, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
    });
  }
  if (status === 401 || status === 403) {
    return new PermanentError(
      withExcerpt(`${answered}; check the credentials and their permissions`, outcome.body),
      { code: 'SSF_ERR_HTTP_AUTH', authFailure: true, detail },
    );
  }
  if (status >= 300 && status < 400) {
    const location = outcome.headers?.['location'];
    const to = location ? ` to ${scrubUrl(location)}` : '';
    return new PermanentError(`${answered} (a redirect${to} that was not followed)`, {
      code: 'SSF_ERR_HTTP_REDIRECT',
      detail,
    });
  }
  return new PermanentError(withExcerpt(answered, outcome.body), { code: 'SSF_ERR_HTTP_CLIENT', detail });
}

/**
 * The error for an outcome, or undefined for a 2xx response.
 *
 * | outcome                                  | class     | code                          |
 * |------------------------------------------|-----------|-------------------------------|
 * | network error (refused, reset, DNS, TLS) | retryable | SSF_ERR_HTTP_NETWORK / _TLS   |
 * | our timeout, 408                         | retryable | SSF_ERR_HTTP_TIMEOUT          |
 * | 429                                      | retryable | SSF_ERR_HTTP_RATE_LIMITED     |
 * | 5xx but 501, 505                         | retryable | SSF_ERR_HTTP_SERVER           |
 * | 501, 505 (request not supported)         | permanent | SSF_ERR_HTTP_NOT_SUPPORTED    |
 * | aborted (stop or caller)                 | retryable | SSF_ERR_HTTP_ABORTED          |
 * | 401, 403                                 | permanent | SSF_ERR_HTTP_AUTH (authFailure) |
 * | other 4xx                                | permanent | SSF_ERR_HTTP_CLIENT           |
 * | 3xx not followed, too many redirects     | permanent | SSF_ERR_HTTP_REDIRECT         |
 * | body over the size limit                 | permanent | SSF_ERR_HTTP_TOO_LARGE        |
 * | 2xx body not as requested                | permanent | SSF_ERR_HTTP_BAD_BODY         |
 * | request cannot be built                  | permanent | SSF_ERR_HTTP_INVALID_REQUEST  |
 * | refused by the SSRF policy               | permanent | SSF_ERR_HTTP_SSRF_REFUSED     |
 */
export function classifyHttpOutcome(outcome: HttpOutcome, ctx: OutcomeContext): HttpError | undefined {
  const what = `${ctx.method} ${scrubUrl(ctx.url)}${ctx.label ? ` (${ctx.label})` : ''}`;
  const detail = { method: ctx.method, url: scrubUrl(ctx.url) };
  switch (outcome.kind) {
    case 'response':
      return classifyResponse(outcome, ctx, what);
    case 'timeout':
      return new RetryableError(`${what} timed out after ${outcome.timeoutMs} ms`, {
        code: 'SSF_ERR_HTTP_TIMEOUT',
        detail: { ...detail, timeoutMs: outcome.timeoutMs },
      });
    case 'aborted':
      return new RetryableError(
        `${what} was aborted ${outcome.by === 'stop' ? 'because the instance is stopping' : 'by the caller'}`,
        { code: 'SSF_ERR_HTTP_ABORTED', detail },
      );
    case 'network': {
      const tls = outcome.code !== undefined && TLS_CODE.test(outcome.code);
      const reason = bodyExcerpt(outcome.message) ?? outcome.code ?? 'unknown error';
      return new RetryableError(`${what} failed: ${reason}`, {
        code: tls ? 'SSF_ERR_HTTP_TLS' : 'SSF_ERR_HTTP_NETWORK',
        detail: { ...detail, ...(outcome.code ? { networkCode: outcome.code } : {}) },
      });
    }
    case 'too_large': {
      const subject = outcome.direction === 'response' ? 'response body' : 'request body';
      return new PermanentError(
        `${what}: the ${subject} is larger than the limit of ${outcome.limitBytes} bytes (maxResponseBytes)`,
        { code: 'SSF_ERR_HTTP_TOO_LARGE', detail: { ...detail, limitBytes: outcome.limitBytes } },
      );
    }
    case 'invalid_request':
      return new PermanentError(
        `${what} cannot be sent: ${bodyExcerpt(outcome.message) ?? 'invalid request'}`,
        {
          code: 'SSF_ERR_HTTP_INVALID_REQUEST',
          detail,
        },
      );
    case 'bad_body':
      return new PermanentError(
        withExcerpt(`${what} answered ${outcome.status} but ${outcome.message}`, outcome.body),
        {
          code: 'SSF_ERR_HTTP_BAD_BODY',
          detail: { ...detail, status: outcome.status },
        },
      );
    case 'redirect_failed':
      return new PermanentError(`${what} was redirected but ${outcome.message}`, {
        code: 'SSF_ERR_HTTP_REDIRECT',
        detail,
      });
    case 'ssrf':
      return new SsrfRefusedError(`${what} refused: ${outcome.message}`, outcome.reason);
  }
}

interface ErrorLike {
  code?: unknown;
  message?: unknown;
  cause?: unknown;
}

function errorChain(err: unknown): ErrorLike[] {
  const chain: ErrorLike[] = [];
  let current: unknown = err;
  while (current !== null && typeof current === 'object' && chain.length < 8) {
    chain.push(current as ErrorLike);
    current = (current as ErrorLike).cause;
  }
  return chain;
}

/**
 * The outcome of a failed exchange that produced no response: walks the cause chain for an SSRF
 * refusal, a transport failure (size limit, redirects) or a system error code.
 * `firedBy` says which of our own signals aborted the exchange, if any.
 */
export function outcomeFromError(
  err: unknown,
  limits: { timeoutMs: number; maxBytes: number },
  firedBy?: 'timeout' | 'stop' | 'caller',
): HttpOutcome {
  if (firedBy === 'timeout') return { kind: 'timeout', timeoutMs: limits.timeoutMs };
  if (firedBy) return { kind: 'aborted', by: firedBy };
  const chain = errorChain(err);
  const ssrf = chain.find((e): e is SsrfRefusedError => e instanceof SsrfRefusedError);
  if (ssrf) return { kind: 'ssrf', reason: ssrf.reason, message: ssrf.message };
  const messages = chain.map((e) => (typeof e.message === 'string' ? e.message : ''));
  const transport = chain.find((e): e is TransportError => e instanceof TransportError);
  if (transport?.failure === 'request_too_large') {
    return { kind: 'too_large', direction: 'request', limitBytes: limits.maxBytes };
  }
  if (transport) return { kind: 'redirect_failed', message: transport.message };
  const codes = chain
    .map((e) => (typeof e.code === 'string' ? e.code : undefined))
    .filter((c) => c !== undefined);
  if (codes.includes('ETIMEDOUT')) return { kind: 'timeout', timeoutMs: limits.timeoutMs };
  const invalid = codes.find((c) => INVALID_REQUEST_CODES.has(c));
  if (invalid) return { kind: 'invalid_request', message: messages.find((m) => m) ?? invalid };
  // The most specific code is the innermost system error (ECONNREFUSED rather than ERR_NETWORK).
  const code = [...codes].reverse().find((c) => !c.startsWith('ERR_')) ?? codes[0];
  const message = [...messages].reverse().find((m) => m.length > 0) ?? 'connection failed';
  return code === undefined ? { kind: 'network', message } : { kind: 'network', code, message };
}
