/**
 * DPoP on the resource-server side (RFC 9449 §4.3, §7.1): a receiver whose authorization server
 * binds its access tokens to a key (`cnf.jkt`) presents them as `Authorization: DPoP <token>`
 * with a fresh proof of that key on every request. A proof names the request (method and URL),
 * the token (`ath`) and a moment (`iat`), is used once (`jti`), and, where the bridge asks for
 * one, carries a nonce it handed out (§9).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { accessTokenHash } from '../http/dpop.ts';
import type { VerificationAlgorithm } from '../ssf/algorithms.ts';
import type { OneTimeIdStore } from '../storage/types.ts';

/** How old a proof may be (§11.1: a short window limits replay; servers pick it). */
export const PROOF_MAX_AGE_MS = 60_000;
/** The scope of proof ids among the store's one-time ids. */
const PROOF_ID_SCOPE = 'dpop-proof';

/** How long a nonce is the current one (§9 leaves it to the server); the one before is still taken. */
export const NONCE_PERIOD_MS = 5 * 60_000;

export class DpopProofError extends Error {}

/** A proof without a nonce the bridge handed out, or with one no longer taken (§9). */
export class DpopNonceError extends Error {}

/** A valid proof, but of a key other than the one the access token is bound to (§7.1). */
export class DpopBindingError extends Error {}

export interface ProofRequest {
  method: string;
  /** The URLs this request is known by (the transmitter's public one); `htu` must name one. */
  urls: string[];
  accessToken: string;
  /** The thumbprint the access token is bound to (`cnf.jkt`): the proof's key must have it. */
  boundTo: string;
}

export interface DpopVerifierOptions {
  algorithms: readonly VerificationAlgorithm[];
  clockToleranceMs: number;
  now: () => number;
  /**
   * Where used proof ids are kept: the store, so that a proof used at one instance is refused
   * at every other instance sharing the database.
   */
  usedProofs: OneTimeIdStore;
  /** Nonces proofs must carry, when the bridge asks for them. */
  nonces?: DpopNonces | undefined;
}

/**
 * The nonces a resource server hands out (§9): an HMAC of the current period under a secret, so
 * every instance holding the secret hands out and takes the same ones with no state to share,
 * and nobody without it can predict one (§8.1), which is what keeps proofs from being made
 * ahead of time (§11.2). The current period's nonce and the one before it are taken, so a nonce
 * handed out just before a period ends still serves its client for one more.
 */
export class DpopNonces {
  readonly #key: Buffer;
  readonly #now: () => number;

  /** Without a secret the nonces are this process's own (enough for one instance). */
  constructor(secret: string | undefined, now: () => number) {
    this.#key = secret === undefined ? randomBytes(32) : Buffer.from(secret, 'utf8');
    this.#now = now;
  }

  /** The nonce to hand out now. */
  current(): string {
    return this.#of(Math.floor(this.#now() / NONCE_PERIOD_MS));
  }

  /** Whether a proof's `nonce` claim is one handed out in this period or the one before. */
  takes(nonce: unknown): boolean {
    if (typeof nonce !== 'string') return false;
    const period = Math.floor(this.#now() / NONCE_PERIOD_MS);
    const given = Buffer.from(nonce);
    return [period, period - 1].some((p) => {
      const expected = Buffer.from(this.#of(p));
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
  }

  #of(period: number): string {
    return createHmac('sha256', this.#key).update(`ssf-bridge DPoP nonce ${period}`).digest('base64url');
  }
}

/** `origin + path` of a URL: what `htu` is compared on (§4.3 step 9, query and fragment ignored). */
function target(url: string): string | undefined {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return undefined;
  }
}

export class DpopVerifier {
  readonly #options: DpopVerifierOptions;

  constructor(options: DpopVerifierOptions) {
    this.#options = options;
  }

  /** The algorithms proofs may use, for the `algs` of a DPoP challenge (§7.1). */
  get algorithms(): readonly string[] {
    return this.#options.algorithms;
  }

  /**
   * Checks a proof against its request (§4.3) and the key its access token is bound to (§7.1).
   * Throws DpopProofError, or DpopBindingError for a proof of another key, with the reason. The
   * proof's id is recorded only once everything else holds, so requests that fail leave nothing
   * in the store.
   */
  async verify(proof: string | undefined, request: ProofRequest): Promise<void> {
    // Node joins repeated headers with ", ", which a compact JWS never contains (§4.3 step 1).
    if (proof === undefined || proof === '') throw new DpopProofError('the DPoP proof is missing');
    if (proof.includes(',')) throw new DpopProofError('more than one DPoP proof was sent');
    let jwk: JWK;
    let claims: Record<string, unknown>;
    try {
      const header = decodeProtectedHeader(proof);
      if (header.typ !== 'dpop+jwt') throw new DpopProofError('the DPoP proof must have typ dpop+jwt');
      if (!this.#options.algorithms.includes(header.alg as VerificationAlgorithm)) {
        throw new DpopProofError(`the DPoP proof algorithm ${String(header.alg)} is not accepted`);
      }
      jwk = header.jwk as JWK;
      if (typeof jwk !== 'object' || jwk === null || 'd' in jwk || jwk.kty === 'oct') {
        throw new DpopProofError('the DPoP proof must carry a public key in jwk');
      }
      ({ payload: claims } = await jwtVerify(proof, await importJWK(jwk, header.alg), {
        typ: 'dpop+jwt',
        algorithms: [...this.#options.algorithms],
      }));
    } catch (err) {
      if (err instanceof DpopProofError) throw err;
      throw new DpopProofError(`the DPoP proof is not a valid signed JWT: ${(err as Error).message}`);
    }
    const { jti, htm, htu, iat, ath, nonce } = claims;
    if (typeof jti !== 'string' || jti.length === 0) throw new DpopProofError('the DPoP proof has no jti');
    if (htm !== request.method.toUpperCase()) {
      throw new DpopProofError(`the DPoP proof is for ${String(htm)}, not ${request.method.toUpperCase()}`);
    }
    const htuTarget = typeof htu === 'string' ? target(htu) : undefined;
    if (htuTarget === undefined || !request.urls.some((url) => target(url) === htuTarget)) {
      throw new DpopProofError(`the DPoP proof is for ${String(htu)}, not this URL`);
    }
    const now = this.#options.now();
    const tolerance = this.#options.clockToleranceMs;
    if (typeof iat !== 'number' || iat * 1000 > now + tolerance) {
      throw new DpopProofError('the DPoP proof is issued in the future');
    }
    if (iat * 1000 < now - PROOF_MAX_AGE_MS - tolerance)
      throw new DpopProofError('the DPoP proof is too old');
    if (ath !== accessTokenHash(request.accessToken)) {
      throw new DpopProofError('the DPoP proof does not name this access token (ath)');
    }
    const jkt = await calculateJwkThumbprint(jwk);
    if (jkt !== request.boundTo) {
      throw new DpopBindingError('the access token is not bound to the key of the DPoP proof');
    }
    // §9 / §4.3 step 10: before the proof is taken, so the client's retry with the nonce can be.
    const nonces = this.#options.nonces;
    if (nonces !== undefined && !nonces.takes(nonce)) {
      throw new DpopNonceError(
        nonce === undefined
          ? 'the DPoP proof must carry the nonce given in the DPoP-Nonce header'
          : 'the nonce of the DPoP proof is no longer taken; use the one given in the DPoP-Nonce header',
      );
    }
    // §11.1: a proof is accepted once. Its id is kept for as long as its iat would be accepted;
    // ids are per key, so one client cannot use up another's.
    const keptUntil = new Date(now + PROOF_MAX_AGE_MS + 2 * tolerance);
    if (!(await this.#options.usedProofs.claim(PROOF_ID_SCOPE, `${jkt}.${jti}`, keptUntil, new Date(now)))) {
      throw new DpopProofError('the DPoP proof was used before');
    }
  }
}
