/**
 * What a receiver's answer to an RFC 8935 push means for the delivery. Pure: it reads a status,
 * headers and body (as the HTTP client returns them with `acceptStatuses`) and returns the
 * plugin-api error to throw, or undefined when the SET was delivered.
 */
import { parseEpochRetryAfter, parseRetryAfter } from '../http/retry-after.ts';
import { PermanentError, RetryableError } from './errors.ts';
import { scrubSecrets } from './secret.ts';

/** RFC 8935 §2.4 error codes (plus SSF's invalid_state) and what each asks of the operator. */
const ERR_HINTS: Record<string, string> = {
  invalid_request: 'the receiver could not parse the SET or the event does not follow its definition',
  invalid_key: 'the receiver cannot verify the signature; it must know our current JWKS',
  invalid_issuer: "the SET's iss is not the issuer registered with the receiver",
  invalid_audience: "the SET's aud is not what the receiver expects; check the destination's audience",
  authentication_failed: 'the receiver could not authenticate us; check the credentials',
  access_denied: 'the receiver does not allow us to send this SET; check the credentials and permissions',
  invalid_state: 'the verification state does not match what the receiver asked for',
};
/** Codes about who we are, not about this SET: the instance's credentials are flagged. */
const CREDENTIAL_ERRS = new Set(['authentication_failed', 'access_denied']);

/**
 * `invalid_key` is retried this many times, this long apart, before it is final: the receiver may
 * hold a copy of our JWKS from before a key rotation and fetch it again meanwhile (RFC 8935
 * §2.4). The transmitter's `push.invalid_key_retries` and `push.invalid_key_retry_after` have
 * the same defaults.
 */
export const DEFAULT_INVALID_KEY_RETRIES = 3;
export const DEFAULT_INVALID_KEY_RETRY_AFTER_MS = 60_000;

const MAX_TEXT = 300;
/** Okta announces the end of a rate-limit window in epoch seconds, without Retry-After. */
const RATE_LIMIT_RESET = 'x-rate-limit-reset';
const DEFAULT_MAX_WAIT_MS = 60 * 60 * 1000;

export interface PushResponse {
  status: number;
  headers?: Record<string, string | undefined>;
  /** The body as text, or as parsed JSON. */
  body?: unknown;
}

export interface PushClassifyOptions {
  /** Names the receiver in messages, e.g. `POST https://example.okta.com/security/api/v1/security-events`. */
  target?: string;
  nowMs?: number;
  /** Upper bound for a requested wait; one hour by default. */
  maxRetryAfterMs?: number;
  /**
   * Earlier attempts of this SET (`SignedSet.attempt`, 0 on the first). Given, an `invalid_key`
   * refusal is retried for the first `invalidKeyRetries` attempts; without it, it is final.
   */
  attempt?: number;
  /** Retries of an `invalid_key` refusal; DEFAULT_INVALID_KEY_RETRIES (3) by default. */
  invalidKeyRetries?: number;
  /** Wait before each; DEFAULT_INVALID_KEY_RETRY_AFTER_MS (1 min) by default. */
  invalidKeyRetryAfterMs?: number;
}

export interface PushError {
  err: string;
  description?: string;
}

/** Printable, scrubbed and short: receiver text ends up in logs and operator views. */
function cleanText(text: string): string {
  let out = '';
  for (const ch of scrubSecrets(text).slice(0, MAX_TEXT)) {
    const code = ch.codePointAt(0) as number;
    out += code < 0x20 || code === 0x7f ? ' ' : ch;
  }
  return out.replace(/ {2,}/g, ' ').trim();
}

/** The `{err, description}` of an RFC 8935 §2.3 error body, if the body is one. */
export function parsePushError(body: unknown): PushError | undefined {
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body) as unknown;
    } catch {
      return undefined;
    }
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { err, description } = value as Record<string, unknown>;
  if (typeof err !== 'string' || err.length === 0) return undefined;
  return {
    err: cleanText(err),
    ...(typeof description === 'string' && description ? { description: cleanText(description) } : {}),
  };
}

function header(headers: PushResponse['headers'], name: string): string | undefined {
  for (const [key, value] of Object.entries(headers ?? {})) if (key.toLowerCase() === name) return value;
  return undefined;
}

function excerpt(body: unknown): string {
  if (body === undefined || body === '') return '';
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  return text ? `: ${cleanText(text)}` : '';
}

/** The wait a 429/5xx asks for: Retry-After, else Okta's X-Rate-Limit-Reset (epoch seconds). */
function retryAfter(res: PushResponse, options: PushClassifyOptions): number | undefined {
  const now = options.nowMs ?? Date.now();
  const max = options.maxRetryAfterMs ?? DEFAULT_MAX_WAIT_MS;
  return (
    parseRetryAfter(header(res.headers, 'retry-after'), now, max) ??
    (res.status === 429
      ? parseEpochRetryAfter(header(res.headers, RATE_LIMIT_RESET), now, max, 's')
      : undefined)
  );
}

function formatWait(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

/**
 * The error for an `invalid_key` refusal: retryable, after a wait, for the first attempts of a SET
 * (a receiver that cached our JWKS before a key rotation fetches it again), then permanent.
 */
function invalidKeyError(
  said: string,
  detail: Record<string, unknown>,
  options: PushClassifyOptions,
): RetryableError | PermanentError {
  const retries = options.invalidKeyRetries ?? DEFAULT_INVALID_KEY_RETRIES;
  const { attempt } = options;
  if (attempt !== undefined && attempt < retries) {
    const retryAfterMs = options.invalidKeyRetryAfterMs ?? DEFAULT_INVALID_KEY_RETRY_AFTER_MS;
    return new RetryableError(
      `${said}; the receiver may hold a stale copy of our JWKS and should fetch it again ` +
        `(retry ${attempt + 1} of ${retries}, after ${formatWait(retryAfterMs)})`,
      { code: 'SSF_ERR_PUSH_INVALID_KEY', retryAfterMs, detail: { ...detail, retryAfterMs } },
    );
  }
  const after = attempt === undefined || retries === 0 ? '' : ` (still refused after ${retries} retries)`;
  return new PermanentError(`${said}; ${ERR_HINTS.invalid_key}${after}`, {
    code: 'SSF_ERR_PUSH_REFUSED',
    detail,
  });
}

/**
 * Classifies a push answer (RFC 8935 §2.2–2.4, checklist PUSH-06…11):
 *
 * | answer                                            | result                                      |
 * |---------------------------------------------------|---------------------------------------------|
 * | 2xx (202 Accepted)                                | undefined: delivered                        |
 * | `err` authentication_failed, access_denied        | PermanentError, authFailure                 |
 * | `err` invalid_key, `attempt` < invalidKeyRetries  | RetryableError after invalidKeyRetryAfterMs |
 * | `err` invalid_key on a later (or unknown) attempt | PermanentError naming the code              |
 * | other `err` (invalid_issuer, invalid_audience, …) | PermanentError naming the code              |
 * | 400 without an RFC 8935 body, other 3xx/4xx       | PermanentError                              |
 * | 401, 403 (whatever the `err`)                     | PermanentError, authFailure                 |
 * | 408, 429, 5xx but 501 and 505                     | RetryableError with the wait it asks for    |
 * | 501, 505 (the request is not supported)           | PermanentError, as the shared HTTP rule has |
 */
/** RFC 9110 §15.6.2, §15.6.6: a server that cannot do the request will not do it on a retry. */
const NOT_SUPPORTED = new Set([501, 505]);

export function classifyPushResponse(
  res: PushResponse,
  options: PushClassifyOptions = {},
): RetryableError | PermanentError | undefined {
  const { status } = res;
  if (status >= 200 && status < 300) return undefined;
  const who = options.target ?? 'the receiver';
  const refusal = parsePushError(res.body);
  const detail: Record<string, unknown> = { status, ...(refusal ?? {}) };

  if (status === 408 || status === 429 || (status >= 500 && !NOT_SUPPORTED.has(status))) {
    const retryAfterMs = retryAfter(res, options);
    const wait = retryAfterMs === undefined ? '' : ` (retry after ${Math.ceil(retryAfterMs / 1000)} s)`;
    return new RetryableError(`${who} answered ${status}${wait}${excerpt(res.body)}`, {
      code: status === 429 ? 'SSF_ERR_PUSH_RATE_LIMITED' : 'SSF_ERR_PUSH_UNAVAILABLE',
      ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      detail: { ...detail, ...(retryAfterMs === undefined ? {} : { retryAfterMs }) },
    });
  }
  if (refusal) {
    const hint = ERR_HINTS[refusal.err];
    const said = `${who} refused the SET: ${refusal.err}${refusal.description ? ` (${refusal.description})` : ''}`;
    const authFailure = CREDENTIAL_ERRS.has(refusal.err) || status === 401 || status === 403;
    if (refusal.err === 'invalid_key' && !authFailure) return invalidKeyError(said, detail, options);
    return new PermanentError(hint ? `${said}; ${hint}` : said, {
      code: authFailure ? 'SSF_ERR_PUSH_AUTH' : 'SSF_ERR_PUSH_REFUSED',
      authFailure,
      detail,
    });
  }
  if (status === 401 || status === 403) {
    return new PermanentError(
      `${who} answered ${status}; check the credentials and their permissions${excerpt(res.body)}`,
      { code: 'SSF_ERR_PUSH_AUTH', authFailure: true, detail },
    );
  }
  return new PermanentError(`${who} answered ${status}${excerpt(res.body)}`, {
    code: 'SSF_ERR_PUSH_REFUSED',
    detail,
  });
}
