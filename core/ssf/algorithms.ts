/**
 * JWS algorithms. ssf-bridge signs with RS256 by default (CAEP interoperability profile §2.6,
 * RSA ≥ 2048 bits) or ES256, PS256 or EdDSA by choice. Verification accepts only asymmetric
 * algorithms: `none` and the HMAC family can never be allowed, so a public key can never be
 * used as an HMAC secret.
 */
export const SIGNING_ALGORITHMS = ['RS256', 'ES256', 'PS256', 'EdDSA'] as const;
export type SigningAlgorithm = (typeof SIGNING_ALGORITHMS)[number];

export const VERIFICATION_ALGORITHMS = [
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
] as const;
export type VerificationAlgorithm = (typeof VERIFICATION_ALGORITHMS)[number];

/** What ssf-bridge accepts from other transmitters unless told otherwise. */
export const DEFAULT_VERIFICATION_ALGORITHMS: readonly VerificationAlgorithm[] = SIGNING_ALGORITHMS;

export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return (SIGNING_ALGORITHMS as readonly unknown[]).includes(value);
}

export function isVerificationAlgorithm(value: unknown): value is VerificationAlgorithm {
  return (VERIFICATION_ALGORITHMS as readonly unknown[]).includes(value);
}

/** Minimum RSA modulus for SET signing keys (CAEP interoperability profile §2.6). */
export const MIN_RSA_BITS = 2048;
