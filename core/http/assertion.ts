/**
 * OAuth 2.0 with signed JWT assertions (RFC 7523): a JWT as the authorization grant (§2.1,
 * `jwt_bearer`, Google service accounts) and a JWT as the client's credential (§2.2,
 * `private_key_jwt`, Okta service apps). Keys are read once, when the client is created, so a
 * malformed key is a configuration error and not a failed delivery.
 */
import {
  X509Certificate,
  createHash,
  createPrivateKey,
  createPublicKey,
  randomUUID,
  type KeyObject,
} from 'node:crypto';
import { accessSync, constants } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { SignJWT } from 'jose';
import { ConfigError, RetryableError } from '../plugin-api/errors.ts';
import { registerSecretValue } from '../plugin-api/secret.ts';
import type { HttpAuth } from '../plugin-api/types.ts';
import type { TokenRequest } from './oauth.ts';

export type JwtBearerAuth = Extract<HttpAuth, { type: 'jwt_bearer' }>;
/** A JWT-bearer grant whose assertion another service signs. */
export type RemoteJwtBearerAuth = Extract<JwtBearerAuth, { signer: unknown }>;
export type PrivateKeyJwtAuth = Extract<HttpAuth, { type: 'oauth2_private_key_jwt' }>;
export type AssertionAuth = Exclude<JwtBearerAuth, RemoteJwtBearerAuth> | PrivateKeyJwtAuth;
export type AssertionFileAuth = Extract<HttpAuth, { type: 'oauth2_client_assertion_file' }>;

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const JWT_CLIENT_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Google caps grant assertions at one hour; a client assertion only has to reach the token endpoint. */
const GRANT_LIFETIME_S = 3600;
const CLIENT_ASSERTION_LIFETIME_S = 300;

export interface AssertionKey {
  key: KeyObject;
  alg: string;
  kid: string | undefined;
  /** Thumbprints of the key's certificate (RFC 7515 §4.1.7–4.1.8), when one is configured. */
  thumbprints?: { 'x5t#S256': string; x5t: string };
}

function keyError(message: string): ConfigError {
  return new ConfigError(`auth.privateKey: ${message}`, { code: 'SSF_ERR_CONFIG_HTTP' });
}

/** The JWS algorithm for a private key: RS256 for RSA (what Google and Okta take), ES* by curve. */
function algorithmFor(key: KeyObject, declared: unknown): string {
  const type = key.asymmetricKeyType;
  const curve = key.asymmetricKeyDetails?.namedCurve;
  const natural =
    type === 'rsa'
      ? 'RS256'
      : type === 'ec' && curve === 'prime256v1'
        ? 'ES256'
        : type === 'ec' && curve === 'secp384r1'
          ? 'ES384'
          : type === 'ed25519'
            ? 'EdDSA'
            : undefined;
  if (natural === undefined) throw keyError(`a ${type ?? 'symmetric'} key cannot sign JWT assertions`);
  if (typeof declared !== 'string') return natural;
  const family = natural.slice(0, 2);
  if (declared.slice(0, 2) !== family && !(natural === 'RS256' && declared.startsWith('PS'))) {
    throw keyError(`the JWK says alg ${declared}, which does not fit its ${type} key`);
  }
  return declared;
}

/**
 * Reads a PKCS#8 PEM (what Google's service-account JSON and Okta's key generator hand out) or
 * a private JWK. The message never quotes the key.
 */
export function loadAssertionKey(auth: AssertionAuth): AssertionKey {
  const text = auth.privateKey.reveal().trim();
  let jwk: Record<string, unknown> | undefined;
  if (text.startsWith('{')) {
    try {
      jwk = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw keyError('looks like JSON but does not parse; give a PKCS#8 PEM or a private JWK');
    }
  }
  let key: KeyObject;
  try {
    // Service-account JSON files carry the PEM with escaped newlines; accept it pasted as is.
    key = jwk
      ? createPrivateKey({ key: jwk as never, format: 'jwk' })
      : createPrivateKey(text.replace(/\\n/g, '\n'));
  } catch {
    throw keyError(
      'is not a private key (expected a PKCS#8 PEM "-----BEGIN PRIVATE KEY-----" or a private JWK)',
    );
  }
  if (key.type !== 'private') throw keyError('is a public key; the private key is needed to sign');
  const kid = auth.keyId ?? (typeof jwk?.kid === 'string' ? jwk.kid : undefined);
  const certificate = auth.type === 'oauth2_private_key_jwt' ? auth.certificate : undefined;
  if (certificate === undefined) return { key, alg: algorithmFor(key, jwk?.alg), kid };
  // Microsoft's current format: PS256 and the SHA-256 thumbprint; x5t (SHA-1) for older servers.
  const alg = algorithmFor(key, jwk?.alg ?? (key.asymmetricKeyType === 'rsa' ? 'PS256' : undefined));
  return { key, alg, kid, thumbprints: certificateThumbprints(certificate, key) };
}

/** The thumbprints of a PEM certificate, once it is known to hold the public half of `key`. */
function certificateThumbprints(pem: string, key: KeyObject): { 'x5t#S256': string; x5t: string } {
  const certError = (message: string) =>
    new ConfigError(`auth.certificate: ${message}`, { code: 'SSF_ERR_CONFIG_HTTP' });
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem.trim().replace(/\\n/g, '\n'));
  } catch {
    throw certError('is not an X.509 certificate (expected a PEM "-----BEGIN CERTIFICATE-----")');
  }
  if (!cert.publicKey.equals(createPublicKey(key))) {
    throw certError('is not the certificate of auth.privateKey (their public keys differ)');
  }
  return {
    'x5t#S256': createHash('sha256').update(cert.raw).digest('base64url'),
    x5t: createHash('sha1').update(cert.raw).digest('base64url'),
  };
}

async function sign(claims: Record<string, unknown>, key: AssertionKey): Promise<string> {
  const jwt = await new SignJWT(claims)
    .setProtectedHeader({
      alg: key.alg,
      typ: 'JWT',
      ...(key.kid ? { kid: key.kid } : {}),
      ...key.thumbprints,
    })
    .sign(key.key);
  // An assertion is a credential until it expires: keep it out of every log line until then.
  registerSecretValue(jwt, { lifetimeMs: claimedLifetimeMs(claims) });
  return jwt;
}

/** The lifetime the claims of an assertion signed here give it (`exp` − `iat`). */
function claimedLifetimeMs(claims: Record<string, unknown>): number {
  return (Number(claims['exp']) - Number(claims['iat'])) * 1000;
}

/** How long an assertion is kept out of logs when it names no expiry (`exp`) of its own. */
const UNKNOWN_ASSERTION_LIFETIME_MS = 24 * 60 * 60 * 1000;

/**
 * Milliseconds until a JWT expires by its `exp` claim (read, not verified: it only decides how long
 * the JWT is kept out of logs, as `registerSecretValue`'s `lifetimeMs`); a day when it has none
 * that can be read.
 */
export function assertionLifetimeMs(jwt: string, nowMs = Date.now()): number {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as unknown;
    const exp = (payload as { exp?: unknown } | null)?.exp;
    if (typeof exp === 'number' && Number.isFinite(exp)) return Math.max(0, exp * 1000 - nowMs);
  } catch {
    // Not a JWT this can read.
  }
  return UNKNOWN_ASSERTION_LIFETIME_MS;
}

const FORM_HEADERS = {
  'content-type': 'application/x-www-form-urlencoded',
  accept: 'application/json',
};

/** The claims of a JWT-bearer grant's assertion (RFC 7523 §3), issued at `iat`. */
function grantClaims(auth: JwtBearerAuth, iat: number): Record<string, unknown> {
  return {
    iss: auth.issuer,
    ...(auth.subject ? { sub: auth.subject } : {}),
    scope: auth.scope,
    aud: auth.audience ?? auth.tokenUrl,
    iat,
    exp: iat + GRANT_LIFETIME_S,
  };
}

function grantRequest(auth: JwtBearerAuth, assertion: string): TokenRequest {
  const form = new URLSearchParams({ grant_type: JWT_BEARER_GRANT, assertion });
  return { url: auth.tokenUrl, headers: { ...FORM_HEADERS }, body: form.toString() };
}

/** The token request for an assertion-based grant, with a freshly signed assertion. */
export async function buildAssertionTokenRequest(
  auth: AssertionAuth,
  key: AssertionKey,
  nowMs: number,
): Promise<TokenRequest> {
  const iat = Math.floor(nowMs / 1000);
  if (auth.type === 'jwt_bearer') return grantRequest(auth, await sign(grantClaims(auth, iat), key));
  const assertion = await sign(
    {
      iss: auth.clientId,
      sub: auth.clientId,
      aud: auth.tokenUrl,
      iat,
      nbf: iat,
      exp: iat + CLIENT_ASSERTION_LIFETIME_S,
      jti: randomUUID(),
    },
    key,
  );
  const form = new URLSearchParams({ grant_type: 'client_credentials' });
  if (auth.scope) form.set('scope', auth.scope);
  for (const [name, value] of Object.entries(auth.extraParams ?? {})) form.set(name, value);
  form.set('client_assertion_type', JWT_CLIENT_ASSERTION);
  form.set('client_assertion', assertion);
  return { url: auth.tokenUrl, headers: { ...FORM_HEADERS }, body: form.toString() };
}

/** The token request for a JWT-bearer grant whose assertion the auth's signer signs. */
export async function buildRemoteGrantTokenRequest(
  auth: RemoteJwtBearerAuth,
  nowMs: number,
): Promise<TokenRequest> {
  const claims = grantClaims(auth, Math.floor(nowMs / 1000));
  const assertion = await auth.signer(claims);
  registerSecretValue(assertion, { lifetimeMs: claimedLifetimeMs(claims) });
  return grantRequest(auth, assertion);
}

/**
 * Checks at creation that the assertion file can be read, so that a wrong path is a
 * configuration error and not a failed delivery.
 */
export function checkAssertionFile(auth: AssertionFileAuth): void {
  try {
    accessSync(auth.assertionFile, constants.R_OK);
  } catch {
    throw new ConfigError(`auth.assertionFile: cannot read ${auth.assertionFile}`, {
      code: 'SSF_ERR_CONFIG_HTTP',
    });
  }
}

/**
 * The token request for a client whose assertion another identity provider issued: the file is
 * read now, as its issuer replaces it before it expires. A file that cannot be read, or is empty,
 * is retried later (it may be in the middle of being replaced).
 */
export async function buildFileAssertionTokenRequest(auth: AssertionFileAuth): Promise<TokenRequest> {
  let assertion: string;
  try {
    assertion = (await readFile(auth.assertionFile, 'utf8')).trim();
  } catch (err) {
    const reason = (err as Error).message;
    throw new RetryableError(`cannot read the client assertion file ${auth.assertionFile}: ${reason}`, {
      code: 'SSF_ERR_HTTP_ASSERTION_FILE',
    });
  }
  if (assertion.length === 0) {
    throw new RetryableError(`the client assertion file ${auth.assertionFile} is empty`, {
      code: 'SSF_ERR_HTTP_ASSERTION_FILE',
    });
  }
  registerSecretValue(assertion, { lifetimeMs: assertionLifetimeMs(assertion) });
  const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: auth.clientId });
  if (auth.scope) form.set('scope', auth.scope);
  for (const [name, value] of Object.entries(auth.extraParams ?? {})) form.set(name, value);
  form.set('client_assertion_type', JWT_CLIENT_ASSERTION);
  form.set('client_assertion', assertion);
  return { url: auth.tokenUrl, headers: { ...FORM_HEADERS }, body: form.toString() };
}
