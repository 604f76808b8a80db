/**
 * Receiver authentication (RFC 6750 bearer tokens, CAEP interop profile §2.7): static tokens
 * from the configuration and OAuth 2.0 JWT access tokens checked against the authorization
 * server's JWKS, presented as bearer tokens or, bound to a key of the receiver's, with DPoP
 * (RFC 9449 §7). Tokens are accepted in the Authorization header only; a token in the query
 * string is refused (RFC 6750 §2.3 is not supported).
 */
import { createHash } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import type { Clock, Logger } from '../plugin-api/types.ts';
import { RetryableError } from '../plugin-api/errors.ts';
import { remoteJwks, type JwksFetcher, type SetKeySource } from '../ssf/set/jwks.ts';
import type { OneTimeIdStore } from '../storage/types.ts';
import { SCOPE_MANAGE, SCOPE_READ, type TransmitterConfig } from './config.ts';
import { DpopBindingError, DpopNonceError, DpopNonces, DpopProofError, DpopVerifier } from './dpop.ts';
import { TransmitterHttpError } from './errors.ts';

export type Scope = typeof SCOPE_READ | typeof SCOPE_MANAGE;

/** Who is calling: a client id (streams belong to it), its scopes and the aud of its streams. */
export interface Principal {
  clientId: string;
  scopes: ReadonlySet<string>;
  audience: string | string[];
  method: 'static' | 'oauth';
  /** A nonce to send with the answer (`DPoP-Nonce`, RFC 9449 §9), to a DPoP request while nonces are asked for. */
  dpopNonce?: string;
}

const REALM = 'ssf-bridge';

/** Text allowed inside a quoted auth-param (RFC 6750 §3: no `"` or `\`). */
function quoted(text: string): string {
  return text.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, ' ');
}

/** A `WWW-Authenticate: Bearer …` challenge (RFC 6750 §3). */
export function bearerChallenge(
  params: { error?: string; description?: string; scope?: string } = {},
): string {
  const parts = [`realm="${REALM}"`];
  if (params.error) parts.push(`error="${params.error}"`);
  if (params.description) parts.push(`error_description="${quoted(params.description)}"`);
  if (params.scope) parts.push(`scope="${params.scope}"`);
  return `Bearer ${parts.join(', ')}`;
}

/** A `WWW-Authenticate: DPoP …` challenge (RFC 9449 §7.1), naming the proof algorithms accepted. */
function dpopChallenge(algorithms: readonly string[], error: string, description: string): string {
  return `DPoP algs="${algorithms.join(' ')}", error="${error}", error_description="${quoted(description)}"`;
}

function unauthorized(description: string, code: string, tokenPresented: boolean): TransmitterHttpError {
  const challenge = tokenPresented
    ? bearerChallenge({ error: 'invalid_token', description })
    : bearerChallenge();
  return new TransmitterHttpError(401, tokenPresented ? 'invalid_token' : 'unauthorized', description, code, {
    'www-authenticate': challenge,
  });
}

/** ssf.manage includes ssf.read: a client that may change a stream may also read it. */
export function hasScope(principal: Principal, scope: Scope): boolean {
  return principal.scopes.has(scope) || (scope === SCOPE_READ && principal.scopes.has(SCOPE_MANAGE));
}

/** Throws 403 insufficient_scope (RFC 6750 §3.1) unless the principal holds `scope`. */
export function requireScope(principal: Principal, scope: Scope): void {
  if (hasScope(principal, scope)) return;
  const description = `this operation needs the ${scope} scope`;
  throw new TransmitterHttpError(403, 'insufficient_scope', description, 'SSF_ERR_TRANSMITTER_AUTH_SCOPE', {
    'www-authenticate': bearerChallenge({ error: 'insufficient_scope', description, scope }),
  });
}

const CREDENTIALS = /^(Bearer|DPoP) +(\S+) *$/i;

function digest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

function scopesOf(payload: JWTPayload): Set<string> {
  const raw = payload.scope ?? payload.scp;
  const list = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(' ') : [];
  return new Set(list.filter((s): s is string => typeof s === 'string' && s.length > 0));
}

const ACCESS_TOKEN_TYPES = new Set(['at+jwt', 'application/at+jwt', 'jwt']);

/** At most one "JWKS unavailable" warning per this long (each refused request would flood the log). */
const UNAVAILABLE_WARN_MS = 60_000;

/**
 * Whether the key lookup failed because no key of the authorization server's JWKS matches the
 * token's header (its kid, or its key type when it names no kid), as opposed to the JWKS being
 * out of reach. core/ssf's remoteJwks answers an unknown kid with SSF_ERR_JWKS_COOLDOWN while
 * the JWKS it holds is at most its cooldown old (a SET receiver retries such a SET later, as its
 * transmitter may have just rotated its keys), and with SSF_ERR_SET_UNKNOWN_KEY once the JWKS
 * fetched again for it still lacks the key. An access token that fails either way is invalid:
 * the client has nothing to retry, and asks its authorization server for a new token.
 */
function isUnknownKey(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return code === 'SSF_ERR_JWKS_COOLDOWN' || code === 'SSF_ERR_SET_UNKNOWN_KEY';
}

export interface AuthenticatorOptions {
  clock: Clock;
  logger: Logger;
  /** Fetches the authorization server's JWKS (tests inject one). */
  fetcher?: JwksFetcher;
  /** Where DPoP proof ids are kept once used (the store). */
  usedProofs: OneTimeIdStore;
}

/** What authentication reads of a request. */
export interface AuthRequest {
  authorization: string | undefined;
  /** The `DPoP` header: the proof that goes with a DPoP-bound token. */
  dpop: string | undefined;
  query: Record<string, unknown>;
  method: string;
  /**
   * The URLs the request is known by, which a DPoP proof must name: the transmitter's public URL
   * of the route (under the configured issuer), never one built from the client's Host header.
   */
  urls: string[];
}

interface StaticReceiver {
  clientId: string;
  scopes: Set<string>;
  audience: string | string[];
}

export class ReceiverAuthenticator {
  readonly #byDigest = new Map<string, StaticReceiver>();
  readonly #audiences = new Map<string, string | string[]>();
  readonly #oauth: TransmitterConfig['oauth'];
  readonly #keys: SetKeySource | undefined;
  readonly #dpop: DpopVerifier | undefined;
  readonly #nonces: DpopNonces | undefined;
  readonly #logger: Logger;
  readonly #now: () => number;
  /** When the last "JWKS unavailable" warning was logged, and requests refused since. */
  #unavailableWarnedAt: number | undefined;
  #unavailableRefusals = 0;

  constructor(config: TransmitterConfig, options: AuthenticatorOptions) {
    this.#logger = options.logger;
    this.#now = () => options.clock.now().getTime();
    for (const r of config.receivers) {
      const audience = r.audience ?? r.client_id;
      this.#audiences.set(r.client_id, audience);
      if (r.token) {
        this.#byDigest.set(digest(r.token.reveal()), {
          clientId: r.client_id,
          scopes: new Set(r.scopes),
          audience,
        });
      }
    }
    this.#oauth = config.oauth;
    if (config.oauth) {
      this.#keys = remoteJwks(config.oauth.jwks_uri, {
        clock: options.clock,
        cacheMaxAgeMs: config.oauth.jwks_cache,
        ...(options.fetcher ? { fetcher: options.fetcher } : {}),
      });
      const now = () => options.clock.now().getTime();
      if (config.oauth.dpop_nonce) {
        this.#nonces = new DpopNonces(config.oauth.dpop_nonce_secret?.reveal(), now);
      }
      this.#dpop = new DpopVerifier({
        algorithms: config.oauth.algorithms,
        clockToleranceMs: config.oauth.clock_tolerance,
        now,
        usedProofs: options.usedProofs,
        nonces: this.#nonces,
      });
    }
  }

  /**
   * The principal of a request, or the error to answer: 400 for a token in the query string,
   * 401 (with a Bearer challenge) for a missing or invalid token, 503 when the authorization
   * server's keys cannot be fetched.
   */
  async authenticate(request: AuthRequest): Promise<Principal> {
    const { authorization, query } = request;
    if (query.access_token !== undefined) {
      const description =
        'access tokens in the query string are refused; send "Authorization: Bearer <token>"';
      throw new TransmitterHttpError(
        400,
        'invalid_request',
        description,
        'SSF_ERR_TRANSMITTER_AUTH_QUERY_TOKEN',
        {
          'www-authenticate': bearerChallenge({ error: 'invalid_request', description }),
        },
      );
    }
    if (authorization === undefined || authorization.trim() === '') {
      throw unauthorized('an access token is required', 'SSF_ERR_TRANSMITTER_AUTH_MISSING', false);
    }
    const [, scheme, token] = CREDENTIALS.exec(authorization) ?? [];
    if (scheme === undefined || token === undefined) {
      throw unauthorized(
        this.#dpop
          ? 'the Authorization header must use the Bearer or the DPoP scheme'
          : 'the Authorization header must use the Bearer scheme',
        'SSF_ERR_TRANSMITTER_AUTH_INVALID',
        // RFC 6750 §3.1: an unsupported scheme presents no token, so the challenge names no error.
        false,
      );
    }
    if (scheme.toLowerCase() === 'dpop') return this.#authenticateDpop(token, request);
    const known = this.#byDigest.get(digest(token));
    if (known) return { ...known, method: 'static' };
    if (this.#oauth && token.split('.').length === 3) {
      const { principal, jkt } = await this.#verifyAccessToken(token);
      // RFC 9449 §7.2: a token bound to a key is worth nothing without the key's proof.
      if (jkt !== undefined) {
        throw this.#dpopError(
          'invalid_token',
          'this access token is bound to a DPoP key: send it as "Authorization: DPoP <token>" with a DPoP proof',
        );
      }
      if (this.#oauth.dpop === 'required') {
        throw this.#dpopError('invalid_token', 'this bridge accepts only DPoP-bound access tokens');
      }
      return principal;
    }
    throw unauthorized('the access token is not valid', 'SSF_ERR_TRANSMITTER_AUTH_INVALID', true);
  }

  /** RFC 9449 §7.1: the proof fits this request and token, and the token is bound to its key. */
  async #authenticateDpop(token: string, request: AuthRequest): Promise<Principal> {
    const verifier = this.#dpop;
    if (verifier === undefined) {
      throw unauthorized(
        'DPoP-bound tokens are not accepted here: no authorization server is configured',
        'SSF_ERR_TRANSMITTER_AUTH_INVALID',
        true,
      );
    }
    // The token first: a request without a valid token never reaches the proof store.
    const { principal, jkt } = await this.#verifyAccessToken(token);
    if (jkt === undefined) {
      throw this.#dpopError('invalid_token', 'the access token is not bound to a DPoP key (no cnf.jkt)');
    }
    try {
      await verifier.verify(request.dpop, {
        method: request.method,
        urls: request.urls,
        accessToken: token,
        boundTo: jkt,
      });
    } catch (err) {
      if (err instanceof DpopBindingError) throw this.#dpopError('invalid_token', err.message);
      if (err instanceof DpopNonceError) throw this.#dpopError('use_dpop_nonce', err.message);
      if (!(err instanceof DpopProofError)) throw err;
      throw this.#dpopError('invalid_dpop_proof', err.message);
    }
    // §9: a fresh nonce with every answer, so the client's next proof carries a current one.
    return this.#nonces ? { ...principal, dpopNonce: this.#nonces.current() } : principal;
  }

  /**
   * One warning per UNAVAILABLE_WARN_MS while the JWKS cannot be fetched, with the number of
   * requests refused since the last one, rather than one per request.
   */
  #warnUnavailable(err: RetryableError): void {
    const now = this.#now();
    this.#unavailableRefusals += 1;
    if (this.#unavailableWarnedAt !== undefined && now - this.#unavailableWarnedAt < UNAVAILABLE_WARN_MS) {
      return;
    }
    this.#logger.warn(
      { err: err.message, code: err.code, refusedRequests: this.#unavailableRefusals },
      'cannot check access tokens: the JWKS is unavailable',
    );
    this.#unavailableWarnedAt = now;
    this.#unavailableRefusals = 0;
  }

  /** A DPoP refusal; while nonces are asked for it carries the current one, so one retry can fix it. */
  #dpopError(error: string, description: string): TransmitterHttpError {
    return new TransmitterHttpError(401, error, description, 'SSF_ERR_TRANSMITTER_AUTH_DPOP', {
      'www-authenticate': dpopChallenge(this.#dpop!.algorithms, error, description),
      ...(this.#nonces ? { 'dpop-nonce': this.#nonces.current() } : {}),
    });
  }

  async #verifyAccessToken(token: string): Promise<{ principal: Principal; jkt: string | undefined }> {
    const oauth = this.#oauth!;
    const keys = this.#keys!;
    let payload: JWTPayload;
    try {
      const typ = decodeProtectedHeader(token).typ;
      if (typ !== undefined && !ACCESS_TOKEN_TYPES.has(typ.toLowerCase())) {
        throw new Error(`a token of type ${typ} is not an access token`);
      }
      ({ payload } = await jwtVerify(token, (header) => keys.getKey(header), {
        issuer: oauth.issuer,
        audience: oauth.audience,
        algorithms: [...oauth.algorithms],
        clockTolerance: Math.ceil(oauth.clock_tolerance / 1000),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      if (isUnknownKey(err)) {
        // RFC 6750 §3.1: a token no key of the authorization server's current JWKS verifies is
        // an invalid token, whoever made it (another authorization server, a retired key, an
        // attacker). The JWKS was fetched moments ago, or fetched again for this token, so it is
        // not "unavailable": answering 503 would invite the client to retry for ever. Not logged
        // above debug: anyone can send such tokens, as many as they like.
        this.#logger.debug(
          { code: (err as { code?: string }).code },
          'access token refused: no key of the JWKS matches it',
        );
        throw unauthorized(
          "the access token is not valid: no key of the authorization server's JWKS matches its header",
          'SSF_ERR_TRANSMITTER_AUTH_INVALID',
          true,
        );
      }
      if (err instanceof RetryableError) {
        this.#warnUnavailable(err);
        throw new TransmitterHttpError(
          503,
          'temporarily_unavailable',
          "the authorization server's keys cannot be fetched; retry later",
          'SSF_ERR_TRANSMITTER_AUTH_UNAVAILABLE',
          { 'retry-after': '5' },
        );
      }
      const reason = err instanceof Error ? err.message : String(err);
      throw unauthorized(
        `the access token is not valid: ${reason}`,
        'SSF_ERR_TRANSMITTER_AUTH_INVALID',
        true,
      );
    }
    const clientId = [payload[oauth.client_id_claim], payload.azp, payload.sub].find(
      (v): v is string => typeof v === 'string' && v.length > 0,
    );
    if (clientId === undefined) {
      throw unauthorized('the access token names no client', 'SSF_ERR_TRANSMITTER_AUTH_INVALID', true);
    }
    const cnf = payload.cnf as { jkt?: unknown } | undefined;
    return {
      principal: {
        clientId,
        scopes: scopesOf(payload),
        audience: this.#audiences.get(clientId) ?? clientId,
        method: 'oauth',
      },
      jkt: typeof cnf?.jkt === 'string' ? cnf.jkt : undefined,
    };
  }
}
