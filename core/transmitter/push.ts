/**
 * RFC 8935 push delivery: one SET per POST, `Content-Type: application/secevent+jwt`,
 * `Accept: application/json`, the stream's authorization_header verbatim (none when the receiver
 * gave none). Any 2xx means delivered (202 is what the RFC asks of receivers). A 400 carries an
 * RFC 8935 §2.3 error body whose `err` code decides what happens next.
 *
 * Receiver-supplied URLs are reached through SSRF-guarded agents: the host name is resolved once
 * per connection, every address is checked, and the socket connects to the address checked.
 */
import http from 'node:http';
import https from 'node:https';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { classifyHttpOutcome, outcomeFromError, type HttpError, type HttpOutcome } from '../http/classify.ts';
import { checkTargetUrl, createGuardedAgents, type GuardedAgents, type SsrfPolicy } from '../http/ssrf.ts';
import { hideCredential, scrubUrl } from '../http/redact.ts';
import { SET_CONTENT_TYPE } from '../ssf/set/types.ts';

const MAX_ERROR_BODY = 8 * 1024;
const MAX_DESCRIPTION = 300;

export interface PushAnswer {
  /** The receiver answered 2xx. */
  ok: boolean;
  status?: number;
  /** RFC 8935 error code of a 400 answer. */
  err?: string;
  description?: string;
  /** What went wrong when there is no RFC 8935 error to go by. */
  outcome?: HttpOutcome;
}

export interface PushClientOptions {
  policy: SsrfPolicy;
  timeoutMs: number;
  maxSockets: number;
}

function readLimited(res: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let total = 0;
    res.on('data', (chunk: Buffer) => {
      if (total < limit) chunks.push(chunk.subarray(0, limit - total));
      total += chunk.length;
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Printable text only: a receiver's description ends up in logs and operator views. */
function cleanText(text: string): string {
  let out = '';
  for (const ch of text.slice(0, MAX_DESCRIPTION)) {
    const code = ch.codePointAt(0) as number;
    out += code < 0x20 || code === 0x7f ? ' ' : ch;
  }
  return out.replace(/ {2,}/g, ' ');
}

/** The `{err, description}` of an RFC 8935 §2.3 error body, if the body is one. */
export function parseSetError(body: string): { err: string; description?: string } | undefined {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (typeof parsed !== 'object' || parsed === null) return undefined;
    const { err, description } = parsed as Record<string, unknown>;
    if (typeof err !== 'string' || err.length === 0) return undefined;
    return {
      err: cleanText(err),
      ...(typeof description === 'string' ? { description: cleanText(description) } : {}),
    };
  } catch {
    return undefined;
  }
}

function flatHeaders(res: http.IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(res.headers)) {
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

export class PushClient {
  readonly #options: PushClientOptions;
  readonly #agents: GuardedAgents;

  constructor(options: PushClientOptions) {
    this.#options = options;
    this.#agents = createGuardedAgents(options.policy, {
      keepAlive: true,
      maxSockets: options.maxSockets,
      maxFreeSockets: options.maxSockets,
    });
  }

  /** POSTs one SET. Never throws: every outcome comes back as a PushAnswer. */
  async send(
    url: string,
    jwt: string,
    authorization: string | undefined,
    signal?: AbortSignal,
  ): Promise<PushAnswer> {
    const check = checkTargetUrl(url, this.#options.policy);
    if (!check.ok)
      return { ok: false, outcome: { kind: 'ssrf', reason: check.reason, message: check.message } };
    const abort = new AbortController();
    let firedBy: 'timeout' | 'caller' | undefined;
    const fire = (by: 'timeout' | 'caller') => () => {
      firedBy ??= by;
      abort.abort();
    };
    const timer = setTimeout(fire('timeout'), this.#options.timeoutMs);
    const onCaller = fire('caller');
    signal?.addEventListener('abort', onCaller, { once: true });
    if (signal?.aborted) onCaller();
    const limits = { timeoutMs: this.#options.timeoutMs, maxBytes: MAX_ERROR_BODY };
    const secure = check.url.protocol === 'https:';
    const headers: Record<string, string> = {
      'content-type': SET_CONTENT_TYPE,
      accept: 'application/json',
      'content-length': String(Buffer.byteLength(jwt)),
      'user-agent': 'ssf-bridge',
    };
    if (authorization !== undefined) headers.authorization = authorization;
    const answered = new Promise<PushAnswer>((resolve) => {
      const req = (secure ? https : http).request(check.url, {
        method: 'POST',
        headers,
        agent: secure ? this.#agents.https : this.#agents.http,
        signal: abort.signal,
      });
      req.on('response', (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          res.resume();
          res.on('end', () => resolve({ ok: true, status }));
          res.on('error', () => resolve({ ok: true, status }));
          return;
        }
        void readLimited(res, MAX_ERROR_BODY).then((raw) => {
          // What the receiver answers is logged and kept with the delivery: never with the
          // stream's credential in it, should the receiver echo it.
          const body = hideCredential(raw, authorization);
          const setError = status === 400 ? parseSetError(body) : undefined;
          if (setError) resolve({ ok: false, status, ...setError });
          else {
            const answered = Object.fromEntries(
              Object.entries(flatHeaders(res)).map(([name, value]) => [
                name,
                hideCredential(value, authorization),
              ]),
            );
            resolve({
              ok: false,
              status,
              outcome: { kind: 'response', status, headers: answered, ...(body ? { body } : {}) },
            });
          }
        });
      });
      req.on('error', (err) => resolve({ ok: false, outcome: outcomeFromError(err, limits, firedBy) }));
      req.end(jwt);
    });
    try {
      return await answered;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onCaller);
    }
  }

  close(): void {
    this.#agents.http.destroy();
    this.#agents.https.destroy();
  }
}

export interface PushClassifyContext {
  url: string;
  /** Earlier attempts of this SET (0 on the first). */
  attempt: number;
  invalidKeyRetries: number;
  invalidKeyRetryAfterMs: number;
  nowMs: number;
}

/**
 * What a failed push means for the delivery (checklist PUSH-11, TX-11): a refused SET is not
 * retried blindly. invalid_key is retried a few times, later, because a receiver that cached our
 * JWKS before a key rotation fetches it again; authentication_failed and access_denied flag the
 * stream's credentials; other codes are permanent. Non-400 answers and network failures follow
 * the shared HTTP classification (5xx but 501 and 505, 408, 429 and timeouts retry, with
 * Retry-After).
 */
export function classifyPush(answer: PushAnswer, ctx: PushClassifyContext): HttpError | undefined {
  if (answer.ok) return undefined;
  const where = `POST ${scrubUrl(ctx.url)}`;
  if (answer.err !== undefined) {
    const detail = {
      status: answer.status,
      err: answer.err,
      ...(answer.description ? { description: answer.description } : {}),
    };
    const said = `${where} refused the SET: ${answer.err}${answer.description ? ` (${answer.description})` : ''}`;
    if (answer.err === 'invalid_key') {
      const hint = `${said}; the receiver may hold a stale copy of our JWKS and should fetch it again`;
      return ctx.attempt < ctx.invalidKeyRetries
        ? new RetryableError(hint, {
            code: 'SSF_ERR_TRANSMITTER_PUSH_INVALID_KEY',
            retryAfterMs: ctx.invalidKeyRetryAfterMs,
            detail,
          })
        : new PermanentError(hint, { code: 'SSF_ERR_TRANSMITTER_PUSH_INVALID_KEY', detail });
    }
    if (answer.err === 'authentication_failed' || answer.err === 'access_denied') {
      return new PermanentError(`${said}; check the stream's authorization_header`, {
        code: 'SSF_ERR_TRANSMITTER_PUSH_AUTH',
        authFailure: true,
        detail,
      });
    }
    return new PermanentError(said, { code: 'SSF_ERR_TRANSMITTER_PUSH_REJECTED', detail });
  }
  const outcome = answer.outcome ?? { kind: 'network', message: 'no answer' };
  return (
    classifyHttpOutcome(outcome, { method: 'POST', url: ctx.url, nowMs: ctx.nowMs }) ??
    new PermanentError(`${where} failed`, { code: 'SSF_ERR_TRANSMITTER_PUSH_REJECTED' })
  );
}
