/**
 * OAuth 2.0 Demonstrating Proof of Possession (DPoP, RFC 9449) for the HTTP client's token
 * grants: a key pair per client, a fresh proof JWT for every token and resource request, and the
 * nonces servers hand out (§8, §9).
 *
 * The key is made when the client is and lives only in its memory (§2 lets the client choose):
 * the tokens it binds live in the same memory, so a restart makes a new key and fetches new
 * tokens. ES256 because every DPoP server must accept an asymmetric JWS algorithm and P-256 is the
 * one they all list; signing one proof costs tens of microseconds.
 */
import { createHash, generateKeyPairSync, randomUUID, sign, type KeyObject } from 'node:crypto';

/** The header a proof travels in (§4.1), and the one servers send nonces in (§8.1). */
export const DPOP_HEADER = 'dpop';
export const DPOP_NONCE_HEADER = 'dpop-nonce';

export interface ProofOptions {
  /** The access token the request presents (§4.2 `ath`); absent at the token endpoint. */
  accessToken?: string;
}

/** `ath` (§4.2): base64url of the SHA-256 of the access token's ASCII. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}

export class DpopProver {
  readonly #privateKey: KeyObject;
  readonly #protectedHeader: string;
  /** RFC 7638 thumbprint of the public key: what the server binds tokens to (`cnf.jkt`). */
  readonly thumbprint: string;
  /** The last nonce each server (by origin) gave; a proof to it carries that nonce (§8, §9). */
  readonly #nonces = new Map<string, string>();

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#privateKey = privateKey;
    const { crv, x, y } = publicKey.export({ format: 'jwk' });
    // Only the public members (§4.2: the header must not hold a private key), in RFC 7638 order.
    const jwk = { crv: crv!, kty: 'EC', x: x!, y: y! };
    this.thumbprint = createHash('sha256').update(JSON.stringify(jwk)).digest('base64url');
    this.#protectedHeader = Buffer.from(JSON.stringify({ typ: 'dpop+jwt', alg: 'ES256', jwk })).toString(
      'base64url',
    );
  }

  /** A proof for one request (§4.2); a new `jti` every time, so a retry gets its own. */
  proof(method: string, url: string, options: ProofOptions = {}, nowMs = Date.now()): string {
    const target = new URL(url);
    const nonce = this.#nonces.get(target.origin);
    const claims = {
      jti: randomUUID(),
      htm: method.toUpperCase(),
      // §4.2: the target URI without its query and fragment.
      htu: `${target.origin}${target.pathname}`,
      iat: Math.floor(nowMs / 1000),
      ...(options.accessToken === undefined ? {} : { ath: accessTokenHash(options.accessToken) }),
      ...(nonce === undefined ? {} : { nonce }),
    };
    const input = `${this.#protectedHeader}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
    const signature = sign('sha256', Buffer.from(input), {
      key: this.#privateKey,
      dsaEncoding: 'ieee-p1363',
    });
    return `${input}.${signature.toString('base64url')}`;
  }

  /**
   * Keeps the nonce a response from `url`'s server carried. Says whether it is new: a refusal
   * asking for a nonce (`use_dpop_nonce`) is worth one more try only with a nonce not tried yet.
   */
  rememberNonce(url: string, headers: Record<string, string> | undefined): boolean {
    const nonce = headers?.[DPOP_NONCE_HEADER];
    // §8.1: `nonce = 1*NQCHAR`, printable ASCII but for the double quote and backslash.
    if (nonce === undefined || !/^[\x21\x23-\x5b\x5d-\x7e]{1,512}$/.test(nonce)) return false;
    const origin = new URL(url).origin;
    if (this.#nonces.get(origin) === nonce) return false;
    this.#nonces.set(origin, nonce);
    return true;
  }
}

/**
 * Whether a resource server's 401 asks for a proof with a (new) nonce (§9):
 * `WWW-Authenticate: DPoP error="use_dpop_nonce", …`.
 */
export function asksForNonce(headers: Record<string, string> | undefined): boolean {
  const challenge = headers?.['www-authenticate'];
  // Other challenges (Bearer) may come first: Node joins repeated headers with commas.
  return challenge !== undefined && /\bdpop\b[^]*\berror\s*=\s*"?use_dpop_nonce\b/i.test(challenge);
}
