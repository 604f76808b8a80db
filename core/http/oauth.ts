/**
 * OAuth 2.0 client credentials (RFC 6749 §4.4): building the token request, reading the token
 * response, and a cache that refreshes shortly before expiry with one token request in flight
 * at a time.
 */
import type { HttpAuth } from '../plugin-api/types.ts';
import { PermanentError } from '../plugin-api/errors.ts';
import { registerSecretValue } from '../plugin-api/secret.ts';
import { classifyHttpOutcome, type HttpError, type HttpOutcome, type OutcomeContext } from './classify.ts';

export type ClientCredentialsAuth = Extract<HttpAuth, { type: 'oauth2_client_credentials' }>;

export interface AccessToken {
  value: string;
  /** Epoch milliseconds after which the token must not be used. */
  expiresAtMs: number;
  /** Epoch milliseconds from which a new token is fetched. */
  refreshAtMs: number;
  /**
   * Bound to the client's DPoP key (`token_type: DPoP`, RFC 9449 §5): presented as
   * `Authorization: DPoP <token>` with a proof. Absent for a bearer token.
   */
  dpop?: true;
}

/** Lifetime assumed when the token response has no `expires_in`. */
export const DEFAULT_TOKEN_LIFETIME_MS = 5 * 60 * 1000;

/** Refresh a tenth of the lifetime before expiry, at most a minute early. */
export function refreshMarginMs(lifetimeMs: number): number {
  return Math.min(60_000, Math.floor(lifetimeMs / 10));
}

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before Basic encoding. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/%20/g, '+');
}

export interface TokenRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Reads the answer when the endpoint is not an OAuth token endpoint (default: RFC 6749 §5.1). */
  parse?: (body: string, nowMs: number) => AccessToken;
}

export function buildTokenRequest(auth: ClientCredentialsAuth): TokenRequest {
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (auth.scope) form.set('scope', auth.scope);
  if (auth.audience) form.set('audience', auth.audience);
  for (const [name, value] of Object.entries(auth.extraParams ?? {})) form.set(name, value);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (auth.clientAuth === 'body') {
    form.set('client_id', auth.clientId);
    form.set('client_secret', auth.clientSecret.reveal());
  } else {
    const basic = Buffer.from(
      `${formEncode(auth.clientId)}:${formEncode(auth.clientSecret.reveal())}`,
    ).toString('base64');
    registerSecretValue(basic);
    headers['authorization'] = `Basic ${basic}`;
  }
  return { url: auth.tokenUrl, headers, body: form.toString() };
}

function tokenError(message: string): PermanentError {
  return new PermanentError(message, { code: 'SSF_ERR_HTTP_OAUTH_RESPONSE' });
}

/**
 * Reads a token endpoint's JSON answer. The body is never quoted in errors: it holds the token.
 * The token value is registered so the logger scrubs it wherever it might appear. `proofSent`
 * says the request carried a DPoP proof, without which a DPoP-bound token cannot be used.
 */
export function parseTokenResponse(body: string, nowMs: number, proofSent = false): AccessToken {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw tokenError('the token endpoint answered with a body that is not JSON');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw tokenError('the token endpoint answered with JSON that is not an object');
  }
  const fields = json as Record<string, unknown>;
  const token = fields['access_token'];
  if (typeof token !== 'string' || token.length === 0) {
    throw tokenError(
      `the token endpoint's answer has no access_token (fields: ${Object.keys(fields).join(', ') || 'none'})`,
    );
  }
  const type = typeof fields['token_type'] === 'string' ? fields['token_type'].toLowerCase() : 'bearer';
  // RFC 9449 §5: a server that does not do DPoP ignores the proof and issues a bearer token.
  const dpop = type === 'dpop';
  if (dpop && !proofSent) {
    throw tokenError('the token endpoint issued a DPoP-bound token to a request that carried no DPoP proof');
  }
  if (!dpop && type !== 'bearer') {
    throw tokenError(
      `the token endpoint issued a "${String(fields['token_type'])}" token; only bearer and DPoP tokens are supported`,
    );
  }
  const expiresIn = Number(fields['expires_in']);
  const lifetimeMs =
    Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn * 1000 : DEFAULT_TOKEN_LIFETIME_MS;
  return { ...accessToken(token, nowMs, lifetimeMs), ...(dpop ? { dpop: true as const } : {}) };
}

/**
 * A token valid for `lifetimeMs` from `nowMs`, registered so the logger scrubs it until a while
 * after it expires (then forgotten: a client refreshes tokens for as long as it runs).
 */
function accessToken(value: string, nowMs: number, lifetimeMs: number): AccessToken {
  registerSecretValue(value, { lifetimeMs });
  return {
    value,
    expiresAtMs: nowMs + lifetimeMs,
    refreshAtMs: nowMs + lifetimeMs - refreshMarginMs(lifetimeMs),
  };
}

/** `Authorization: Basic …` for a user and password, registered so the logger scrubs it. */
export function basicAuthorization(username: string, password: string): string {
  const basic = Buffer.from(`${username}:${password}`).toString('base64');
  registerSecretValue(basic);
  return `Basic ${basic}`;
}

/** OAuth error codes (RFC 6749 §5.2) that mean our credentials or grant are not accepted. */
const CREDENTIAL_ERRORS = new Set([
  'invalid_client',
  'unauthorized_client',
  'invalid_grant',
  'invalid_scope',
  // RFC 9449 §5: the DPoP proof is missing or refused, which the configuration decides.
  'invalid_dpop_proof',
]);

export function oauthErrorCode(body: string | undefined): string | undefined {
  if (!body) return undefined;
  try {
    const json = JSON.parse(body) as unknown;
    const code =
      json !== null && typeof json === 'object' ? (json as Record<string, unknown>)['error'] : undefined;
    return typeof code === 'string' ? code : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Token endpoint outcomes are classified like any other request, except that a 400 carrying an
 * OAuth credential error (invalid_client, …) is an authentication failure too.
 */
export function classifyTokenOutcome(outcome: HttpOutcome, ctx: OutcomeContext): HttpError | undefined {
  const error = classifyHttpOutcome(outcome, ctx);
  if (!(error instanceof PermanentError) || error.authFailure || outcome.kind !== 'response') return error;
  if (outcome.status >= 300 && outcome.status < 400) {
    return new PermanentError(
      `${error.message}: a token request carries the client's credentials, so it never follows a redirect; configure the token endpoint's own URL`,
      { code: error.code, ...(error.detail ? { detail: error.detail } : {}) },
    );
  }
  const code = oauthErrorCode(outcome.body);
  if (outcome.status !== 400 || code === undefined || !CREDENTIAL_ERRORS.has(code)) return error;
  const why =
    code === 'invalid_dpop_proof'
      ? 'the token endpoint wants a DPoP proof it accepts (invalid_dpop_proof): is auth.dpop false, or the clock off?'
      : `the token endpoint refused the client credentials (${code})`;
  return new PermanentError(`${error.message}; ${why}`, {
    code: 'SSF_ERR_HTTP_AUTH',
    authFailure: true,
    ...(error.detail ? { detail: { ...error.detail, oauthError: code } } : {}),
  });
}

/**
 * Holds one access token. Concurrent callers share a single token request; a failed request is
 * not cached, so the next caller tries again.
 */
export class TokenCache {
  readonly #fetch: () => Promise<AccessToken>;
  readonly #now: () => number;
  #token: AccessToken | undefined;
  #pending: Promise<AccessToken> | undefined;

  constructor(fetchToken: () => Promise<AccessToken>, now: () => number = Date.now) {
    this.#fetch = fetchToken;
    this.#now = now;
  }

  async get(): Promise<AccessToken> {
    const token = this.#token;
    if (token && this.#now() < token.refreshAtMs) return token;
    return this.#refresh();
  }

  /** Drops `value` if it is still the cached token (a resource server refused it). */
  invalidate(value: string): void {
    if (this.#token?.value === value) this.#token = undefined;
  }

  #refresh(): Promise<AccessToken> {
    this.#pending ??= this.#fetch().then(
      (token) => {
        this.#token = token;
        this.#pending = undefined;
        return token;
      },
      (err: unknown) => {
        this.#pending = undefined;
        throw err;
      },
    );
    return this.#pending;
  }
}

export type SessionTokenAuth = Extract<HttpAuth, { type: 'basic_session_token' }>;

/** Basic credentials exchanged for a session token (Jamf Pro's `POST /api/v1/auth/token`). */
export function buildSessionTokenRequest(auth: SessionTokenAuth): TokenRequest {
  return {
    url: auth.tokenUrl,
    headers: {
      authorization: basicAuthorization(auth.username, auth.password.reveal()),
      accept: 'application/json',
    },
    body: '',
    parse: parseSessionTokenResponse,
  };
}

/**
 * Reads `{"token": …, "expires": <ISO 8601 time>}`. An `expires` that is missing, unreadable or
 * already past counts as a five-minute token, like an OAuth answer without `expires_in`.
 */
export function parseSessionTokenResponse(body: string, nowMs: number): AccessToken {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    throw tokenError('the session token endpoint answered with a body that is not JSON');
  }
  const fields = (json !== null && typeof json === 'object' && !Array.isArray(json) ? json : {}) as Record<
    string,
    unknown
  >;
  const token = fields['token'];
  if (typeof token !== 'string' || token.length === 0) {
    throw tokenError(
      `the session token endpoint's answer has no token (fields: ${Object.keys(fields).join(', ') || 'none'})`,
    );
  }
  const expires = typeof fields['expires'] === 'string' ? Date.parse(fields['expires']) : Number.NaN;
  const lifetimeMs =
    Number.isFinite(expires) && expires > nowMs ? expires - nowMs : DEFAULT_TOKEN_LIFETIME_MS;
  return accessToken(token, nowMs, lifetimeMs);
}
