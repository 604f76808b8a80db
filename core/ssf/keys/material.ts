/** Signing key material: generation, PEM/JWK parsing, public JWKs and key ids. */
import { constants, createPrivateKey, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import { MIN_RSA_BITS, isSigningAlgorithm, type SigningAlgorithm } from '../algorithms.ts';
import { KeyStoreError } from '../errors.ts';
import { signingThread } from './signing-thread.ts';

/** A private signing key as stored, with the algorithm it signs with. */
export interface KeyMaterial {
  kid: string;
  alg: SigningAlgorithm;
  /** The private JWK (never published). */
  privateJwk: JWK;
}

/** A public JWK as published in the JWKS: kid, alg, use=sig and public members only. */
export type PublicJwk = JWK & { kid: string; alg: SigningAlgorithm; use: 'sig' };

const PUBLIC_MEMBERS: Record<string, readonly string[]> = {
  RSA: ['kty', 'n', 'e'],
  EC: ['kty', 'crv', 'x', 'y'],
  OKP: ['kty', 'crv', 'x'],
};

/** The public part of a JWK; private members (d, p, q, dp, dq, qi, oth) never leave. */
export function publicJwkOf(material: KeyMaterial): PublicJwk {
  const members = PUBLIC_MEMBERS[material.privateJwk.kty ?? ''] ?? [];
  const out: Record<string, unknown> = {};
  for (const m of members) {
    const value = (material.privateJwk as Record<string, unknown>)[m];
    if (value !== undefined) out[m] = value;
  }
  return { ...out, kid: material.kid, alg: material.alg, use: 'sig' } as PublicJwk;
}

/** RFC 7638 thumbprint of the public key: a stable, collision-free key id. */
export async function thumbprintKid(privateJwk: JWK): Promise<string> {
  const members = PUBLIC_MEMBERS[privateJwk.kty ?? ''] ?? [];
  const pub: Record<string, unknown> = {};
  for (const m of members) pub[m] = (privateJwk as Record<string, unknown>)[m];
  return calculateJwkThumbprint(pub as JWK, 'sha256');
}

export interface GenerateOptions {
  rsaModulusBits?: number;
}

export async function generateKeyMaterial(
  alg: SigningAlgorithm,
  options: GenerateOptions = {},
): Promise<KeyMaterial> {
  const modulusLength = options.rsaModulusBits ?? MIN_RSA_BITS;
  const { privateKey } = await generateKeyPair(alg, {
    extractable: true,
    ...(alg === 'RS256' || alg === 'PS256' ? { modulusLength } : {}),
  });
  const privateJwk = await exportJWK(privateKey);
  return { kid: await thumbprintKid(privateJwk), alg, privateJwk };
}

function rsaBits(jwk: JWK): number {
  return Buffer.from(jwk.n ?? '', 'base64url').length * 8;
}

/** The algorithm a key signs with: its JWK `alg` if given, else what its type implies. */
function algorithmFor(jwk: JWK, preferred: SigningAlgorithm, origin: string): SigningAlgorithm {
  if (jwk.alg !== undefined) {
    if (!isSigningAlgorithm(jwk.alg)) {
      throw new KeyStoreError(
        `${origin}: alg ${jwk.alg} is not a SET signing algorithm (RS256, ES256, PS256, EdDSA)`,
        'SSF_ERR_KEYS_UNSUPPORTED',
      );
    }
    return jwk.alg;
  }
  if (jwk.kty === 'RSA') return preferred === 'PS256' ? 'PS256' : 'RS256';
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ES256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'EdDSA';
  throw new KeyStoreError(
    `${origin}: unsupported key (${jwk.kty ?? 'no kty'}${jwk.crv ? ` ${jwk.crv}` : ''}); use RSA ≥ 2048, EC P-256 or Ed25519`,
    'SSF_ERR_KEYS_UNSUPPORTED',
  );
}

function checkKeyFitsAlgorithm(jwk: JWK, alg: SigningAlgorithm, origin: string): void {
  const fits =
    ((alg === 'RS256' || alg === 'PS256') && jwk.kty === 'RSA') ||
    (alg === 'ES256' && jwk.kty === 'EC' && jwk.crv === 'P-256') ||
    (alg === 'EdDSA' && jwk.kty === 'OKP' && jwk.crv === 'Ed25519');
  if (!fits) {
    throw new KeyStoreError(`${origin}: a ${jwk.kty} key cannot sign ${alg}`, 'SSF_ERR_KEYS_UNSUPPORTED');
  }
  if (jwk.kty === 'RSA' && rsaBits(jwk) < MIN_RSA_BITS) {
    throw new KeyStoreError(
      `${origin}: RSA key has ${rsaBits(jwk)} bits; SET signing keys need at least ${MIN_RSA_BITS}`,
      'SSF_ERR_KEYS_WEAK',
    );
  }
}

function parseKeyText(text: string, origin: string): KeyObject {
  const trimmed = text.trim();
  try {
    if (trimmed.startsWith('{')) {
      return createPrivateKey({ key: JSON.parse(trimmed) as JsonWebKey, format: 'jwk' });
    }
    return createPrivateKey(trimmed);
  } catch (cause) {
    throw new KeyStoreError(
      `${origin}: not a private key in PEM (PKCS#8, PKCS#1 or SEC1) or JWK form`,
      'SSF_ERR_KEYS_UNREADABLE',
      cause,
    );
  }
}

/**
 * Reads a private key given as PEM or JWK text. The key id is the JWK `kid` when present,
 * otherwise the RFC 7638 thumbprint.
 */
export async function keyMaterialFromText(
  text: string,
  origin: string,
  preferred: SigningAlgorithm = 'RS256',
): Promise<KeyMaterial> {
  const keyObject = parseKeyText(text, origin);
  if (keyObject.type !== 'private') {
    throw new KeyStoreError(`${origin}: a private key is needed to sign`, 'SSF_ERR_KEYS_UNREADABLE');
  }
  const exported = keyObject.export({ format: 'jwk' }) as JWK;
  const declared = text.trim().startsWith('{') ? (JSON.parse(text) as JWK) : {};
  const alg = algorithmFor(
    { ...exported, ...(declared.alg ? { alg: declared.alg } : {}) },
    preferred,
    origin,
  );
  checkKeyFitsAlgorithm(exported, alg, origin);
  const kid =
    typeof declared.kid === 'string' && declared.kid.length > 0
      ? declared.kid
      : await thumbprintKid(exported);
  return { kid, alg, privateJwk: exported };
}

const signInThreadPool = promisify(sign);

/** Signs a JWS signing input and returns the raw JWS signature (RFC 7518 §3). */
export type SignFunction = (signingInput: Buffer) => Promise<Buffer>;

/**
 * A signer for the key, using Node's crypto directly (about half the CPU of WebCrypto, which
 * jose uses). RSA signatures take about 0.3 ms and run in libuv's thread pool, several at once on
 * a machine with cores to spare. ECDSA signatures go to the signing thread, a turn's worth per
 * message (signing-thread.ts). Ed25519 signatures cost less than a hand-off and are made inline.
 */
export function createSigner(material: KeyMaterial): SignFunction {
  const key = createPrivateKey({ key: material.privateJwk as JsonWebKey, format: 'jwk' });
  switch (material.alg) {
    case 'RS256':
      return (input) => signInThreadPool('sha256', input, { key, padding: constants.RSA_PKCS1_PADDING });
    case 'PS256':
      // RFC 7518 §3.5: the salt is as long as the hash output.
      return (input) =>
        signInThreadPool('sha256', input, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
    case 'ES256':
      return signingThread().signer(material);
    case 'EdDSA':
      return async (input) => sign(null, input, key);
  }
}
