/**
 * The HTTP client factory every connector and core service uses to reach the network. Each
 * client owns its connection pool, always has a deadline, is cancelled when its
 * instance stops, caps response sizes, handles authentication (including an OAuth 2.0 token
 * cache), never logs credentials, and turns every failure into a classified plugin-api error.
 */
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import { PassThrough, Readable } from 'node:stream';
import type {
  HttpAuth,
  HttpClient,
  HttpClientFactory,
  HttpClientOptions,
  HttpRequest,
  HttpResponse,
  Logger,
} from '../plugin-api/types.ts';
import { ConfigError, PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { containsSecretValue, registerSecretValue, registeredSecretsVersion } from '../plugin-api/secret.ts';
import { classifyHttpOutcome, outcomeFromError, type HttpError, type HttpOutcome } from './classify.ts';
import {
  basicAuthorization,
  buildSessionTokenRequest,
  buildTokenRequest,
  classifyTokenOutcome,
  oauthErrorCode,
  parseTokenResponse,
  TokenCache,
  type AccessToken,
  type TokenRequest,
} from './oauth.ts';
import {
  buildAssertionTokenRequest,
  buildRemoteGrantTokenRequest,
  buildFileAssertionTokenRequest,
  checkAssertionFile,
  loadAssertionKey,
} from './assertion.ts';
import { DPOP_HEADER, DpopProver, asksForNonce } from './dpop.ts';
import { redactHeaders, scrubUrl } from './redact.ts';
import {
  checkTargetUrl,
  createGuardedAgents,
  assertValidSsrfPolicy,
  SsrfRefusedError,
  type SsrfPolicy,
} from './ssrf.ts';
import {
  createProxyRoute,
  exchange,
  proxyEnvironment,
  type Cancellation,
  type ExchangeResponse,
  type ProxyEnvironment,
  type ProxyRoute,
  type TransportAgents,
} from './transport.ts';
import { DEFAULT_MAX_RETRY_AFTER_MS } from './retry-after.ts';

export const DEFAULT_TIMEOUT_MS = 30_000;
export const DEFAULT_MAX_RESPONSE_BYTES = 10 * 1024 * 1024;
export const DEFAULT_MAX_REDIRECTS = 5;
// setTimeout cannot wait longer than 2^31-1 ms; a larger value would fire at once.
const MAX_TIMEOUT_MS = 2_147_483_647;
// How much of an error response is read to quote it and find an OAuth error code.
const ERROR_BODY_BYTES = 4096;

export interface HttpRequestObservation {
  method: string;
  host: string;
  /** HTTP status, when the remote answered. */
  status?: number;
  outcome: 'ok' | 'retryable' | 'permanent';
  /** Stable error code when the outcome is not ok. */
  code?: string;
  durationMs: number;
  /** True for a request to an OAuth token endpoint. */
  tokenRequest: boolean;
}

/** Optional hooks for the metrics layer; called once per attempt, errors in them are ignored. */
export interface HttpMetricsHooks {
  onRequest?(observation: HttpRequestObservation): void;
}

export interface HttpClientFactoryDeps {
  logger: Logger;
  /** Aborted when the owning instance stops: every in-flight request is cancelled. */
  signal: AbortSignal;
  /** Called when a remote refuses the credentials (401/403, or an OAuth credential error). */
  onAuthFailure(reason: string): void;
  metrics?: HttpMetricsHooks;
  /** When set, every client of this factory only reaches addresses the policy allows. */
  ssrfPolicy?: SsrfPolicy;
  /** Options every client starts from; `create()` options override them, headers are merged. */
  defaults?: HttpClientOptions;
  /** Milliseconds since the epoch; token expiry and Retry-After dates are measured with it. */
  now?: () => number;
  /** Upper bound for a Retry-After delay; defaults to one hour. */
  maxRetryAfterMs?: number;
  /** Proxy settings for clients without an SSRF policy; read from the environment by default. */
  proxyEnv?: ProxyEnvironment;
}

/** What core services may set beyond the plugin API's options. */
export interface CoreHttpClientOptions extends HttpClientOptions {
  /** Restricts the client to addresses the policy allows (replaces the factory's policy). */
  ssrfPolicy?: SsrfPolicy;
  /**
   * Redirects to follow; defaults to 5, and to 0 for clients with an SSRF policy. Token requests
   * never follow one.
   */
  maxRedirects?: number;
}

export interface CoreHttpClientFactory extends HttpClientFactory {
  create(options?: CoreHttpClientOptions): HttpClient;
}

interface ResolvedOptions {
  baseURL: string | undefined;
  timeoutMs: number;
  maxResponseBytes: number;
  headers: Record<string, string>;
  auth: HttpAuth | undefined;
  userAgent: string;
  ssrfPolicy: SsrfPolicy | undefined;
  maxRedirects: number;
}

function configError(message: string): ConfigError {
  return new ConfigError(message, { code: 'SSF_ERR_CONFIG_HTTP' });
}

/** A timeout in ms: a positive finite number that setTimeout can honour. */
export function checkTimeoutMs(value: number, field = 'timeoutMs'): number {
  if (!Number.isFinite(value) || value <= 0 || value > MAX_TIMEOUT_MS) {
    throw configError(
      `${field} must be a positive number of milliseconds up to ${MAX_TIMEOUT_MS} (got ${value}); ` +
        'a request without a deadline can hang forever',
    );
  }
  return Math.ceil(value);
}

function checkSize(value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw configError(`maxResponseBytes must be a positive whole number of bytes (got ${value})`);
  }
  return value;
}

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

function checkAuth(auth: HttpAuth | undefined): HttpAuth | undefined {
  if (auth?.type === 'header' && !HEADER_NAME.test(auth.name)) {
    throw configError(`auth.name "${auth.name}" is not a valid HTTP header name`);
  }
  if (
    auth?.type === 'oauth2_client_credentials' ||
    auth?.type === 'oauth2_private_key_jwt' ||
    auth?.type === 'oauth2_client_assertion_file' ||
    auth?.type === 'jwt_bearer' ||
    auth?.type === 'basic_session_token'
  ) {
    let url: URL;
    try {
      url = new URL(auth.tokenUrl);
    } catch {
      throw configError(`auth.tokenUrl "${scrubUrl(auth.tokenUrl)}" is not an absolute URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw configError(`auth.tokenUrl must use https (got ${url.protocol})`);
    }
  }
  return auth;
}

/** Merges defaults and options and refuses values that would make a client unsafe. */
export function resolveClientOptions(
  defaults: HttpClientOptions = {},
  options: CoreHttpClientOptions = {},
  factoryPolicy?: SsrfPolicy,
): ResolvedOptions {
  const ssrfPolicy = options.ssrfPolicy ?? factoryPolicy;
  if (ssrfPolicy) assertValidSsrfPolicy(ssrfPolicy);
  const maxRedirects = options.maxRedirects ?? (ssrfPolicy ? 0 : DEFAULT_MAX_REDIRECTS);
  if (!Number.isSafeInteger(maxRedirects) || maxRedirects < 0) {
    throw configError(`maxRedirects must be a whole number ≥ 0 (got ${maxRedirects})`);
  }
  return {
    baseURL: options.baseURL ?? defaults.baseURL,
    timeoutMs: checkTimeoutMs(options.timeoutMs ?? defaults.timeoutMs ?? DEFAULT_TIMEOUT_MS),
    maxResponseBytes: checkSize(
      options.maxResponseBytes ?? defaults.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    ),
    headers: { ...defaults.headers, ...options.headers },
    auth: checkAuth(options.auth ?? defaults.auth),
    userAgent: options.userAgent ?? defaults.userAgent ?? 'ssf-bridge',
    ssrfPolicy,
    maxRedirects,
  };
}

/** An absolute URL wins, otherwise baseURL and url are joined with one slash. */
export function buildUrl(baseURL: string | undefined, url: string, params?: HttpRequest['params']): string {
  const absolute = /^[a-z][a-z\d+.-]*:\/\//i.test(url);
  const joined = absolute || !baseURL ? url : `${baseURL.replace(/\/+$/, '')}/${url.replace(/^\/+/, '')}`;
  let parsed: URL;
  try {
    parsed = new URL(joined);
  } catch {
    throw new PermanentError(`the request URL ${scrubUrl(joined)} is not an absolute http(s) URL`, {
      code: 'SSF_ERR_HTTP_INVALID_REQUEST',
    });
  }
  for (const [name, value] of Object.entries(params ?? {})) {
    if (value !== undefined) parsed.searchParams.append(name, String(value));
  }
  return parsed.toString();
}

/** Header names compared case-insensitively; the last spelling given wins. */
function mergeHeaders(...sources: Array<Record<string, string> | undefined>): Map<string, [string, string]> {
  const merged = new Map<string, [string, string]>();
  for (const source of sources) {
    for (const [name, value] of Object.entries(source ?? {})) merged.set(name.toLowerCase(), [name, value]);
  }
  return merged;
}

interface EncodedBody {
  data: unknown;
  contentType?: string;
  /** False for streams, which cannot be sent twice (no retry after a token refresh). */
  replayable: boolean;
}

function encodeBody(body: unknown): EncodedBody {
  if (body === undefined) return { data: undefined, replayable: true };
  if (typeof body === 'string' || Buffer.isBuffer(body) || body instanceof Uint8Array) {
    return { data: body, replayable: true };
  }
  if (body instanceof URLSearchParams) {
    return { data: body.toString(), contentType: 'application/x-www-form-urlencoded', replayable: true };
  }
  if (body instanceof Readable) return { data: body, replayable: false };
  return { data: JSON.stringify(body), contentType: 'application/json', replayable: true };
}

type FiredBy = 'timeout' | 'stop' | 'caller';

/**
 * What ends an exchange early: the instance stopping, the caller's signal or the deadline,
 * remembering which, so the outcome names the right cause. The stop reaches every live exchange
 * through its client's set (one listener per instance, none per request).
 */
class ExchangeCancel implements Cancellation {
  firedBy: FiredBy | undefined;
  #callbacks: Array<() => void> = [];
  #timer: NodeJS.Timeout | undefined;
  readonly #live: Set<ExchangeCancel>;
  readonly #caller: AbortSignal | undefined;
  /** Bound, not an arrow field: the tsx loader names every arrow field per instance. */
  #onCaller: (() => void) | undefined;

  constructor(
    live: Set<ExchangeCancel>,
    stopped: boolean,
    caller: AbortSignal | undefined,
    timeoutMs: number,
  ) {
    this.#live = live;
    this.#caller = caller;
    if (stopped) this.firedBy = 'stop';
    else if (caller?.aborted) this.firedBy = 'caller';
    if (this.firedBy) return;
    live.add(this);
    if (caller) {
      this.#onCaller = this.fire.bind(this, 'caller');
      caller.addEventListener('abort', this.#onCaller, { once: true });
    }
    this.#timer = setTimeout(() => this.fire('timeout'), timeoutMs);
  }

  get fired(): boolean {
    return this.firedBy !== undefined;
  }

  onFire(fn: () => void): void {
    if (this.firedBy) fn();
    else this.#callbacks.push(fn);
  }

  fire(by: FiredBy): void {
    if (this.firedBy) return;
    this.firedBy = by;
    const callbacks = this.#callbacks;
    this.#callbacks = [];
    for (const fn of callbacks) fn();
  }

  /** The deadline covered the wait for the headers; a streamed body lives until stop or the caller. */
  clearDeadline(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  dispose(): void {
    this.clearDeadline();
    this.#live.delete(this);
    if (this.#onCaller) this.#caller?.removeEventListener('abort', this.#onCaller);
    this.#callbacks = [];
  }
}

class BodyTooLarge extends Error {}

function prematureClose(): Error {
  const err = new Error('the response body ended prematurely') as Error & { code: string };
  err.code = 'ERR_STREAM_PREMATURE_CLOSE';
  return err;
}

/**
 * The whole body, up to `limit` bytes. Listeners rather than `for await`: the async iterator
 * costs a push a few microseconds and several objects per response, most of them for bodies
 * that are empty.
 */
function readBody(stream: Readable, limit: number): Promise<Buffer> {
  if (stream.destroyed) return Promise.reject(stream.errored ?? prematureClose());
  return new Promise((resolve, reject) => new BodyReader(stream, limit, resolve, reject));
}

/**
 * Reads one response body. A class rather than four closures: every request makes one, and the
 * tsx loader wraps each named closure in a call that sets its name (about 1.5% of the event
 * loop's time at full delivery load went to that alone). Each handler removes all four, so
 * plain `on` listeners suffice.
 */
class BodyReader {
  readonly #chunks: Buffer[] = [];
  #total = 0;
  readonly #onData: (chunk: Buffer | Uint8Array) => void;
  readonly #onEnd: () => void;
  readonly #onError: (err: Error) => void;
  readonly #onClose: () => void;

  constructor(
    private readonly stream: Readable,
    private readonly limit: number,
    private readonly resolve: (body: Buffer) => void,
    private readonly reject: (err: unknown) => void,
  ) {
    this.#onData = this.#data.bind(this);
    this.#onEnd = this.#end.bind(this);
    this.#onError = this.#error.bind(this);
    // Closed before its end without an error: the body broke off.
    this.#onClose = this.#closed.bind(this);
    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('error', this.#onError);
    stream.on('close', this.#onClose);
  }

  #settle(): void {
    this.stream.off('data', this.#onData);
    this.stream.off('end', this.#onEnd);
    this.stream.off('error', this.#onError);
    this.stream.off('close', this.#onClose);
  }

  #data(chunk: Buffer | Uint8Array): void {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk);
    this.#total += buf.length;
    if (this.#total > this.limit) {
      this.#settle();
      this.stream.destroy();
      this.reject(new BodyTooLarge());
      return;
    }
    this.#chunks.push(buf);
  }

  #end(): void {
    this.#settle();
    this.resolve(this.#chunks.length === 1 ? this.#chunks[0]! : Buffer.concat(this.#chunks, this.#total));
  }

  #error(err: Error): void {
    this.#settle();
    this.reject(err);
  }

  #closed(): void {
    this.#settle();
    this.reject(prematureClose());
  }
}

/** The start of an error body, for quoting; reading stops early and never fails. */
async function readExcerpt(stream: Readable): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of stream) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      chunks.push(buf);
      total += buf.length;
      if (total >= ERROR_BODY_BYTES) break;
    }
  } catch {
    // A body that breaks off still leaves the status to classify by.
  } finally {
    stream.destroy();
  }
  return total === 0 ? undefined : Buffer.concat(chunks).subarray(0, ERROR_BODY_BYTES).toString('utf8');
}

function decodeText(buf: Buffer): string {
  const text = buf.toString('utf8');
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

interface PreparedRequest {
  method: string;
  url: string;
  headers: Map<string, [string, string]>;
  body: EncodedBody;
  timeoutMs: number;
  responseType: NonNullable<HttpRequest['responseType']>;
  signal: AbortSignal | undefined;
  tokenRequest: boolean;
  /** Non-2xx statuses handed back as responses. */
  acceptStatuses: ReadonlySet<number>;
}

type AttemptResult = { ok: true; response: HttpResponse<unknown> } | { ok: false; outcome: HttpOutcome };

/** The status of an attempt the server answered, whatever it was; undefined when none came. */
function statusOf(result: AttemptResult): number | undefined {
  if (result.ok) return result.response.status;
  return result.outcome.kind === 'response' ? result.outcome.status : undefined;
}

/** The response headers of an attempt the server answered, whatever the status. */
function headersOf(result: AttemptResult): Record<string, string> | undefined {
  if (result.ok) return result.response.headers;
  return result.outcome.kind === 'response' ? result.outcome.headers : undefined;
}

interface ClientDeps {
  agents: TransportAgents;
  proxy: ProxyRoute | undefined;
  options: ResolvedOptions;
  /** Aborts when the instance stops. */
  stopped: AbortSignal;
  /** The exchanges under way, cancelled all at once when the instance stops. */
  live: Set<ExchangeCancel>;
  log: Logger;
  metrics: HttpMetricsHooks | undefined;
  now: () => number;
  maxRetryAfterMs: number;
  sensitiveHeaders: Set<string>;
  onAuthFailure(reason: string): void;
}

/** How many URLs a client remembers the scrubbed form of. */
const DESCRIBED_URLS = 256;

class NodeHttpClient implements HttpClient {
  readonly #d: ClientDeps;
  readonly #described = new Map<string, { safeUrl: string; host: string; secrets: number }>();
  readonly #tokens: TokenCache | undefined;
  /** The auth's `dpop` setting: true always, false never, undefined when the token endpoint asks. */
  readonly #dpopSetting: boolean | undefined;
  /** The DPoP key and the nonces servers gave (RFC 9449), once this client uses DPoP. */
  #dpop: DpopProver | undefined;

  constructor(deps: ClientDeps) {
    this.#d = deps;
    const auth = deps.options.auth;
    if (auth?.type === 'oauth2_client_credentials') {
      this.#tokens = new TokenCache(() => this.#fetchToken(() => buildTokenRequest(auth)), deps.now);
    } else if (auth?.type === 'jwt_bearer' && auth.signer !== undefined) {
      this.#tokens = new TokenCache(
        () => this.#fetchToken(() => buildRemoteGrantTokenRequest(auth, this.#d.now())),
        deps.now,
      );
    } else if (auth?.type === 'oauth2_private_key_jwt' || auth?.type === 'jwt_bearer') {
      // Read the key now: a malformed key fails create() with a ConfigError, not every request.
      const key = loadAssertionKey(auth);
      // A fresh assertion for every token request: servers refuse a client assertion's jti twice.
      this.#tokens = new TokenCache(
        () => this.#fetchToken(() => buildAssertionTokenRequest(auth, key, this.#d.now())),
        deps.now,
      );
    } else if (auth?.type === 'oauth2_client_assertion_file') {
      checkAssertionFile(auth);
      this.#tokens = new TokenCache(
        () => this.#fetchToken(() => buildFileAssertionTokenRequest(auth)),
        deps.now,
      );
    } else if (auth?.type === 'basic_session_token') {
      this.#tokens = new TokenCache(() => this.#fetchToken(() => buildSessionTokenRequest(auth)), deps.now);
    }
    // Grants of a user's authority (jwt_bearer, Google) and session tokens never ask for DPoP.
    this.#dpopSetting =
      auth?.type === 'jwt_bearer' || auth?.type === 'basic_session_token'
        ? false
        : auth && 'dpop' in auth
          ? auth.dpop
          : undefined;
    if (this.#dpopSetting === true) this.#dpop = new DpopProver();
  }

  get<T = unknown>(url: string, req: Omit<HttpRequest, 'url' | 'method'> = {}): Promise<HttpResponse<T>> {
    return this.request<T>({ ...req, url, method: 'GET' });
  }

  post<T = unknown>(
    url: string,
    body?: unknown,
    req: Omit<HttpRequest, 'url' | 'method' | 'body'> = {},
  ): Promise<HttpResponse<T>> {
    return this.request<T>({ ...req, url, method: 'POST', body });
  }

  async request<T = unknown>(req: HttpRequest): Promise<HttpResponse<T>> {
    const prepared = this.#prepare(req);
    const usesToken = this.#tokens !== undefined && !prepared.headers.has('authorization');
    let refreshed = false;
    let nonceRetried = false;
    for (;;) {
      const token = usesToken ? await this.#tokenFor(prepared) : undefined;
      const result = await this.#attempt(prepared, token);
      if (token !== undefined && statusOf(result) === 401 && prepared.body.replayable) {
        const headers = headersOf(result);
        // RFC 9449 §9: the resource server wants a proof with its nonce: once more, same token.
        if (
          token.dpop &&
          !nonceRetried &&
          asksForNonce(headers) &&
          this.#dpop!.rememberNonce(prepared.url, headers)
        ) {
          nonceRetried = true;
          continue;
        }
        // One forced refresh: the token may have been revoked or rotated before its expiry.
        if (!refreshed) {
          refreshed = true;
          this.#tokens!.invalidate(token.value);
          continue;
        }
      }
      if (token?.dpop && result.ok) this.#dpop!.rememberNonce(prepared.url, result.response.headers);
      if (result.ok) return result.response as HttpResponse<T>;
      throw this.#raise(this.#classify(prepared, result.outcome, classifyHttpOutcome));
    }
  }

  /**
   * The access token, waited for only while the caller still wants its answer. The token request
   * is shared by every caller of the client and runs to its own deadline; a caller whose signal
   * aborts meanwhile (a delivery attempt past its timeout) stops waiting and sends nothing.
   */
  #tokenFor(prepared: PreparedRequest): ReturnType<TokenCache['get']> {
    const pending = this.#tokens!.get();
    const signal = prepared.signal;
    if (signal === undefined) return pending;
    const aborted = () =>
      this.#raise(this.#classify(prepared, { kind: 'aborted', by: 'caller' }, classifyHttpOutcome));
    if (signal.aborted) {
      pending.catch(() => undefined);
      return Promise.reject(aborted());
    }
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(aborted());
      signal.addEventListener('abort', onAbort, { once: true });
      void pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  #prepare(req: HttpRequest): PreparedRequest {
    const o = this.#d.options;
    const method = (req.method ?? 'GET').toUpperCase();
    const url = buildUrl(o.baseURL, req.url, req.params);
    const timeoutMs = req.timeoutMs === undefined ? o.timeoutMs : checkTimeoutMs(req.timeoutMs);
    const body = encodeBody(req.body);
    const responseType = req.responseType ?? 'json';
    const accept = responseType === 'json' ? 'application/json' : '*/*';
    const headers = mergeHeaders(
      { 'user-agent': o.userAgent, accept },
      o.headers,
      this.#staticAuthHeaders(),
      req.headers,
    );
    if (body.contentType && !headers.has('content-type')) {
      headers.set('content-type', ['content-type', body.contentType]);
    }
    return {
      method,
      url,
      headers,
      body,
      timeoutMs,
      responseType,
      signal: req.signal,
      tokenRequest: false,
      acceptStatuses: new Set(req.acceptStatuses ?? []),
    };
  }

  #staticAuthHeaders(): Record<string, string> {
    const auth = this.#d.options.auth;
    switch (auth?.type) {
      case 'bearer':
        return { authorization: `Bearer ${auth.token.reveal()}` };
      case 'basic':
        return { authorization: basicAuthorization(auth.username, auth.password.reveal()) };
      case 'header':
        return { [auth.name]: auth.value.reveal() };
      default:
        return {};
    }
  }

  /**
   * Fetches a token. With DPoP (RFC 9449 §5) each request carries a fresh proof; a server that
   * wants a nonce in it answers `use_dpop_nonce` with one, and gets one more request (§8). A
   * server that requires DPoP of a client not using it yet answers `invalid_dpop_proof`: unless
   * the auth says `dpop: false`, the client makes its key then and uses DPoP from then on.
   */
  async #fetchToken(build: () => TokenRequest | Promise<TokenRequest>): Promise<AccessToken> {
    let nonceRetried = false;
    let switched = false;
    for (;;) {
      let tokenReq: TokenRequest;
      try {
        tokenReq = await build();
      } catch (err) {
        // A signer or assertion source that was refused flags the credentials like the endpoint would.
        throw err instanceof PermanentError ? this.#raise(err) : err;
      }
      const prover = this.#dpop;
      const prepared: PreparedRequest = {
        method: 'POST',
        url: tokenReq.url,
        headers: mergeHeaders(
          { 'user-agent': this.#d.options.userAgent },
          this.#d.options.headers,
          tokenReq.headers,
          prover ? { [DPOP_HEADER]: prover.proof('POST', tokenReq.url) } : undefined,
        ),
        body: { data: tokenReq.body, replayable: true },
        timeoutMs: this.#d.options.timeoutMs,
        responseType: 'text',
        signal: undefined,
        tokenRequest: true,
        acceptStatuses: new Set(),
      };
      const result = await this.#attempt(prepared, undefined);
      if (result.ok) {
        prover?.rememberNonce(tokenReq.url, result.response.headers);
        const body = result.response.data as string;
        if (tokenReq.parse) return tokenReq.parse(body, this.#d.now());
        return parseTokenResponse(body, this.#d.now(), prover !== undefined);
      }
      const outcome = result.outcome;
      const code =
        outcome.kind === 'response' && outcome.status === 400 ? oauthErrorCode(outcome.body) : undefined;
      if (
        prover &&
        code === 'use_dpop_nonce' &&
        !nonceRetried &&
        prover.rememberNonce(tokenReq.url, headersOf(result))
      ) {
        nonceRetried = true;
        continue;
      }
      if (!prover && code === 'invalid_dpop_proof' && this.#dpopSetting === undefined && !switched) {
        switched = true;
        this.#dpop = new DpopProver();
        this.#d.log.info(
          { tokenUrl: scrubUrl(tokenReq.url) },
          'the OAuth token endpoint requires DPoP; this client proves possession of its own key from now on',
        );
        continue;
      }
      throw this.#raise(this.#classify(prepared, outcome, classifyTokenOutcome));
    }
  }

  #classify(
    prepared: PreparedRequest,
    outcome: HttpOutcome,
    classify: typeof classifyHttpOutcome,
  ): HttpError {
    const ctx = {
      method: prepared.method,
      url: prepared.url,
      ...(prepared.tokenRequest
        ? {
            label:
              this.#d.options.auth?.type === 'basic_session_token'
                ? 'session token endpoint'
                : 'OAuth token endpoint',
          }
        : {}),
      nowMs: this.#d.now(),
      maxRetryAfterMs: this.#d.maxRetryAfterMs,
    };
    return (
      classify(outcome, ctx) ??
      new PermanentError(`${prepared.method} ${scrubUrl(prepared.url)} failed unexpectedly`, {
        code: 'SSF_ERR_HTTP_CLIENT',
      })
    );
  }

  #raise(error: HttpError): HttpError {
    if (error instanceof PermanentError && error.authFailure) {
      try {
        this.#d.onAuthFailure(error.message);
      } catch (hookError) {
        this.#d.log.warn({ err: String(hookError) }, 'onAuthFailure hook failed');
      }
    }
    return error;
  }

  /** One exchange. Never throws for network outcomes: they come back as an HttpOutcome. */
  async #attempt(prepared: PreparedRequest, token: AccessToken | undefined): Promise<AttemptResult> {
    const d = this.#d;
    const started = performance.now();
    const limits = { timeoutMs: prepared.timeoutMs, maxBytes: d.options.maxResponseBytes };

    if (d.options.ssrfPolicy) {
      const check = checkTargetUrl(prepared.url, d.options.ssrfPolicy);
      if (!check.ok)
        return this.#finish(prepared, started, {
          ok: false,
          outcome: { kind: 'ssrf', reason: check.reason, message: check.message },
        });
    } else if (!/^https?:\/\//i.test(prepared.url)) {
      return this.#finish(prepared, started, {
        ok: false,
        outcome: { kind: 'invalid_request', message: 'only http and https URLs are supported' },
      });
    }

    const headers: Record<string, string> = {};
    for (const [name, value] of prepared.headers.values()) headers[name] = value;
    if (token?.dpop) {
      // RFC 9449 §7.1: the DPoP scheme, and a proof naming this request and the token (ath).
      headers['Authorization'] = `DPoP ${token.value}`;
      headers['DPoP'] = this.#dpop!.proof(prepared.method, prepared.url, { accessToken: token.value });
    } else if (token !== undefined) headers['Authorization'] = `Bearer ${token.value}`;
    if (levelEnabled(d.log, 'trace')) {
      d.log.trace(
        {
          method: prepared.method,
          url: this.#describe(prepared.url).safeUrl,
          headers: redactHeaders(headers, d.sensitiveHeaders),
        },
        'http request',
      );
    }

    const link = new ExchangeCancel(d.live, d.stopped.aborted, prepared.signal, prepared.timeoutMs);
    let keepLinked = false;
    try {
      if (link.fired)
        return this.#finish(prepared, started, {
          ok: false,
          outcome: outcomeFromError(undefined, limits, link.firedBy),
        });
      let res: ExchangeResponse;
      try {
        res = await exchange({
          url: prepared.url,
          method: prepared.method,
          headers,
          body: prepared.body.data as string | Buffer | Uint8Array | Readable | undefined,
          cancel: link,
          // A token request carries the client's credentials (a secret, a signed assertion) in its
          // body: it goes to the configured token endpoint or nowhere, and a 3xx is its answer.
          maxRedirects: prepared.tokenRequest ? 0 : d.options.maxRedirects,
          maxRequestBytes: d.options.maxResponseBytes,
          credentialHeaders: d.sensitiveHeaders,
          bodyCarriesCredentials: carriesCredentials,
          agents: d.agents,
          ...(d.proxy ? { proxy: d.proxy } : {}),
          ...(d.options.ssrfPolicy ? { checkRedirect: redirectCheck(d.options.ssrfPolicy) } : {}),
        });
      } catch (err) {
        return this.#finish(prepared, started, {
          ok: false,
          outcome: outcomeFromError(err, limits, link.firedBy),
        });
      }

      const stream = res.body;
      const status = res.status;
      const responseHeaders = res.headers;
      const statusText = res.statusText;
      if ((status < 200 || status >= 300) && !prepared.acceptStatuses.has(status)) {
        const body = await readExcerpt(stream);
        const fired = link.firedBy;
        if (fired)
          return this.#finish(prepared, started, {
            ok: false,
            outcome: outcomeFromError(undefined, limits, fired),
          });
        return this.#finish(prepared, started, {
          ok: false,
          outcome: {
            kind: 'response',
            status,
            headers: responseHeaders,
            ...(statusText ? { statusText } : {}),
            ...(body === undefined ? {} : { body }),
          },
        });
      }

      const declared = Number(responseHeaders['content-length']);
      if (Number.isFinite(declared) && declared > d.options.maxResponseBytes) {
        stream.destroy();
        return this.#finish(prepared, started, {
          ok: false,
          outcome: { kind: 'too_large', direction: 'response', limitBytes: limits.maxBytes },
        });
      }

      if (prepared.responseType === 'stream') {
        // The deadline covers the wait for the headers; the body lives until stop or the caller.
        link.clearDeadline();
        keepLinked = true;
        const data = this.#classifiedStream(stream, prepared, limits, link);
        return this.#finish(prepared, started, {
          ok: true,
          response: { status, headers: responseHeaders, data },
        });
      }

      let buf: Buffer;
      try {
        buf = await readBody(stream, d.options.maxResponseBytes);
      } catch (err) {
        const fired = link.firedBy;
        if (err instanceof BodyTooLarge) {
          return this.#finish(prepared, started, {
            ok: false,
            outcome: { kind: 'too_large', direction: 'response', limitBytes: limits.maxBytes },
          });
        }
        return this.#finish(prepared, started, { ok: false, outcome: outcomeFromError(err, limits, fired) });
      }
      const decoded = this.#decode(prepared, status, buf);
      return this.#finish(
        prepared,
        started,
        'outcome' in decoded
          ? { ok: false, outcome: decoded.outcome }
          : { ok: true, response: { status, headers: responseHeaders, data: decoded.data } },
      );
    } finally {
      if (!keepLinked) link.dispose();
    }
  }

  /** Records an attempt's result (metrics, log) and returns it. */
  #finish(prepared: PreparedRequest, started: number, result: AttemptResult): AttemptResult {
    this.#observe(prepared, result, performance.now() - started);
    return result;
  }

  /**
   * The body stream handed to the caller: every error it raises is a classified one (aborted on
   * stop, too large, connection reset), and it is torn down with the exchange.
   */
  #classifiedStream(
    source: Readable,
    prepared: PreparedRequest,
    limits: { timeoutMs: number; maxBytes: number },
    link: ExchangeCancel,
  ): Readable {
    const out = new PassThrough();
    const ctx = { method: prepared.method, url: prepared.url };
    const onAbort = () => source.destroy(new Error('aborted'));
    source.on('error', (err) => {
      out.destroy(classifyHttpOutcome(outcomeFromError(err, limits, link.firedBy), ctx));
    });
    link.onFire(onAbort);
    let received = 0;
    source.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received > limits.maxBytes) {
        source.unpipe(out);
        out.destroy(
          classifyHttpOutcome({ kind: 'too_large', direction: 'response', limitBytes: limits.maxBytes }, ctx),
        );
      }
    });
    out.once('close', () => {
      link.dispose();
      source.destroy();
    });
    source.pipe(out);
    return out;
  }

  #decode(
    prepared: PreparedRequest,
    status: number,
    buf: Buffer,
  ): { data: unknown } | { outcome: HttpOutcome } {
    switch (prepared.responseType) {
      case 'arraybuffer':
        return { data: buf };
      case 'text':
        return { data: decodeText(buf) };
      default: {
        const text = decodeText(buf);
        if (text.trim().length === 0) return { data: undefined };
        try {
          return { data: JSON.parse(text) as unknown };
        } catch {
          // An accepted error status often comes with an HTML error page; its status still speaks.
          if (status < 200 || status >= 300) return { data: undefined };
          return {
            outcome: {
              kind: 'bad_body',
              status,
              message: 'the body is not valid JSON',
              body: text.slice(0, ERROR_BODY_BYTES),
            },
          };
        }
      }
    }
  }

  /**
   * The URL as logs may show it, and its host for metrics, remembered per URL: a client mostly
   * calls the same few URLs, and scrubbing parses the URL and searches it for every known secret.
   * A secret registered or forgotten later invalidates what was remembered.
   */
  #describe(url: string): { safeUrl: string; host: string } {
    const secrets = registeredSecretsVersion();
    let described = this.#described.get(url);
    if (described === undefined || described.secrets !== secrets) {
      if (this.#described.size >= DESCRIBED_URLS) this.#described.clear();
      described = { safeUrl: scrubUrl(url), host: URL.canParse(url) ? new URL(url).host : '', secrets };
      this.#described.set(url, described);
    }
    return described;
  }

  #observe(prepared: PreparedRequest, result: AttemptResult, durationMs: number): void {
    const d = this.#d;
    const status = statusOf(result);
    let outcome: HttpRequestObservation['outcome'] = 'ok';
    let code: string | undefined;
    if (!result.ok) {
      const error = classifyHttpOutcome(result.outcome, {
        method: prepared.method,
        url: prepared.url,
        nowMs: d.now(),
      });
      outcome = error instanceof RetryableError ? 'retryable' : 'permanent';
      code = error?.code;
    }
    const rounded = Math.round(durationMs);
    const { safeUrl, host } = this.#describe(prepared.url);
    d.log.debug(
      {
        method: prepared.method,
        url: safeUrl,
        ...(status === undefined ? {} : { status }),
        durationMs: rounded,
        outcome,
        ...(code ? { code } : {}),
        ...(prepared.tokenRequest ? { tokenRequest: true } : {}),
      },
      'http response',
    );
    try {
      d.metrics?.onRequest?.({
        method: prepared.method,
        host,
        ...(status === undefined ? {} : { status }),
        outcome,
        ...(code ? { code } : {}),
        durationMs: rounded,
        tokenRequest: prepared.tokenRequest,
      });
    } catch {
      // Metrics must never break a request.
    }
  }
}

/** Whether a log line at `level` would be written; loggers without the probe write everything. */
function levelEnabled(log: Logger, level: string): boolean {
  const probe = (log as { isLevelEnabled?: (level: string) => boolean }).isLevelEnabled;
  return typeof probe === 'function' ? probe.call(log, level) : true;
}

/** RFC 9110 §11.4: `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`. */
const SCHEME_AND_CREDENTIALS = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+ +(\S[^]*)$/;

/**
 * An `Authorization` value set as a whole (`Bearer <token>`) is registered as a whole when it
 * becomes a Secret; a remote that quotes the credential alone (in an error body: "token … is
 * expired") would get it past the scrubbing. The credential after the scheme is registered too.
 */
function registerCredentialsAfterScheme(headerName: string, value: string): void {
  const name = headerName.toLowerCase();
  if (name !== 'authorization' && name !== 'proxy-authorization') return;
  const credentials = SCHEME_AND_CREDENTIALS.exec(value.trim())?.[1]?.trim();
  if (credentials) registerSecretValue(credentials);
}

/** Whether a request body holds a known secret value (a client secret, a password, a token). */
function carriesCredentials(body: string | Buffer | Uint8Array): boolean {
  return containsSecretValue(typeof body === 'string' ? body : Buffer.from(body).toString('utf8'));
}

/** Refuses a redirect target the SSRF policy refuses, before connecting to it. */
function redirectCheck(policy: SsrfPolicy): (url: URL) => void {
  return (url) => {
    const check = checkTargetUrl(url, policy);
    if (!check.ok) throw new SsrfRefusedError(check.message, check.reason);
  };
}

const AGENT_OPTIONS: http.AgentOptions = { keepAlive: true, maxFreeSockets: 16 };

/**
 * The factory the runtime gives each connector instance (`ctx.http`). Clients created from it
 * stop working, and their connection pools close, when `deps.signal` aborts.
 */
export function createHttpClientFactory(deps: HttpClientFactoryDeps): CoreHttpClientFactory {
  const log = deps.logger.child({ component: 'http-client' });
  const now = deps.now ?? Date.now;
  const maxRetryAfterMs = deps.maxRetryAfterMs ?? DEFAULT_MAX_RETRY_AFTER_MS;
  if (deps.ssrfPolicy) assertValidSsrfPolicy(deps.ssrfPolicy);
  // One internal signal follows the instance's: every client adds its pool's closing to it, and
  // the exchanges under way are cancelled through one set, not a listener each.
  const stopped = new AbortController();
  setMaxListeners(0, stopped.signal);
  const live = new Set<ExchangeCancel>();
  stopped.signal.addEventListener(
    'abort',
    () => {
      for (const exchange of [...live]) exchange.fire('stop');
    },
    { once: true },
  );
  if (deps.signal.aborted) stopped.abort();
  else deps.signal.addEventListener('abort', () => stopped.abort(), { once: true });
  // Validate the defaults once, so a bad default fails at wiring time rather than on first use.
  resolveClientOptions(deps.defaults, {}, deps.ssrfPolicy);

  return {
    create(options: CoreHttpClientOptions = {}): HttpClient {
      const resolved = resolveClientOptions(deps.defaults, options, deps.ssrfPolicy);
      const agents = resolved.ssrfPolicy
        ? createGuardedAgents(resolved.ssrfPolicy, AGENT_OPTIONS)
        : { http: new http.Agent(AGENT_OPTIONS), https: new https.Agent(AGENT_OPTIONS) };
      let proxy: ProxyRoute | undefined;
      if (!resolved.ssrfPolicy) {
        // A proxy would connect on a guarded client's behalf and bypass its address checks.
        try {
          proxy = createProxyRoute(deps.proxyEnv ?? proxyEnvironment(), AGENT_OPTIONS);
        } catch (err) {
          throw configError(`proxy settings: ${(err as Error).message}`);
        }
      }
      const closeAgents = () => {
        agents.http.destroy();
        agents.https.destroy();
        proxy?.destroy();
      };
      if (stopped.signal.aborted) closeAgents();
      else stopped.signal.addEventListener('abort', closeAgents, { once: true });

      const sensitiveHeaders = new Set<string>([
        'authorization',
        'proxy-authorization',
        'cookie',
        'x-api-key',
        // A DPoP proof names one request; it is not sent on to another origin, nor logged.
        DPOP_HEADER,
      ]);
      if (resolved.auth?.type === 'header') {
        sensitiveHeaders.add(resolved.auth.name.toLowerCase());
        registerCredentialsAfterScheme(resolved.auth.name, resolved.auth.value.reveal());
      }

      return new NodeHttpClient({
        agents,
        proxy,
        options: resolved,
        stopped: stopped.signal,
        live,
        log,
        metrics: deps.metrics,
        now,
        maxRetryAfterMs,
        sensitiveHeaders,
        onAuthFailure: (reason) => deps.onAuthFailure(reason),
      });
    },
  };
}
