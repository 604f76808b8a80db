import { z } from 'zod';
import { duration, secret } from '../../plugin-api/index.ts';
import { MIN_RSA_BITS, SIGNING_ALGORITHMS } from '../algorithms.ts';

/**
 * How long receivers and caches may keep the JWKS (`Cache-Control: max-age` of the transmitter's
 * JWKS route). A key added by a rotation signs only after `keys.activation_delay`, which should
 * be at least this long.
 */
export const JWKS_MAX_AGE_SECONDS = 300;

/**
 * The `keys:` block of the root configuration. With neither `files` nor `secrets`, signing keys
 * live in the data directory: the first is generated on first run and `ssf-bridge keys rotate`
 * replaces it. With `files` or `secrets`, those keys are used as given: the first one listed
 * signs, the others stay in the JWKS so SETs they signed keep verifying.
 */
export const keysConfigSchema = z.strictObject({
  algorithm: z.enum(SIGNING_ALGORITHMS).default('RS256').meta({
    description:
      'Algorithm of generated signing keys. RS256 is what the CAEP interoperability profile requires.',
  }),
  rsa_modulus_bits: z
    .number()
    .int()
    .min(MIN_RSA_BITS)
    .max(8192)
    .refine((bits) => bits % 1024 === 0, { message: 'must be a multiple of 1024, e.g. 2048, 3072 or 4096' })
    .default(MIN_RSA_BITS)
    .meta({ description: 'RSA modulus size of generated RS256/PS256 keys, at least 2048.' }),
  rotation_grace_period: duration().prefault('7d').meta({
    format: 'duration',
    description:
      'How long a replaced key stays in the JWKS after the key replacing it starts signing, so SETs it signed still verify.',
  }),
  activation_delay: duration()
    .prefault('10m')
    .meta({
      format: 'duration',
      description: `How long a key added by a rotation is only published before it signs, so receivers and caches holding the JWKS (served with max-age ${JWKS_MAX_AGE_SECONDS}s) fetch it first; the current key signs until then. 0 signs with the new key at once.`,
    }),
  single_instance: z.boolean().default(false).meta({
    description:
      'With PostgreSQL storage and keys in the data directory: this bridge is the only instance using the database. Instances sharing a database need the same keys, given through files or secrets (docs/scaling.md).',
  }),
  files: z.array(z.string().min(1)).min(1).optional().meta({
    description: 'Private key files (PEM or JWK) to sign with instead of generated keys; the first signs.',
  }),
  secrets: z.array(secret('A private key as PEM or JWK text')).min(1).optional().meta({
    description: 'Private keys (PEM or JWK) given as secrets, e.g. ${env:SSF_SIGNING_KEY}; used after files.',
  }),
});

export type KeysConfigInput = z.input<typeof keysConfigSchema>;
export type KeysConfig = z.output<typeof keysConfigSchema>;

/** The keys block with every default applied. */
export function defaultKeysConfig(overrides: KeysConfigInput = {}): KeysConfig {
  return keysConfigSchema.parse(overrides);
}
