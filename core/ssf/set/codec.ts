/**
 * The SET codec the delivery engine and the transmitter use: build a SET for a destination,
 * sign it with the active key, and hand back the compact JWS with its decoded form.
 */
import type { Clock } from '../../plugin-api/index.ts';
import type { EventCatalog } from '../events/catalog.ts';
import { ProfileRefusalError } from '../errors.ts';
import type { SigningKey } from '../keys/store.ts';
import { buildSet, type BuildSetInput } from './build.ts';
import { SET_TYP, type BuiltSet, type MintedSet, type SetClaims, type SetHeader } from './types.ts';

/** Anything that hands out the active signing key (the KeyStore does). */
export interface SigningKeyProvider {
  signingKey(): Promise<SigningKey>;
  /** Whether SETs signed by `kid` still verify against the published JWKS (absent: always). */
  publishes?(kid: string): boolean;
}

/** Signs SET claims as a compact JWS (RFC 7515 §7.1) with header {alg, kid, typ: secevent+jwt}. */
export async function signSetClaims(
  claims: SetClaims,
  key: SigningKey,
): Promise<{ jwt: string; header: SetHeader }> {
  return {
    jwt: await signPayload(Buffer.from(JSON.stringify(claims)).toString('base64url'), key),
    header: { alg: key.alg, kid: key.kid, typ: SET_TYP },
  };
}

/** The compact JWS of an already encoded payload segment, signed by `key`. */
async function signPayload(payloadSegment: string, key: SigningKey): Promise<string> {
  const signingInput = `${key.protectedHeader}.${payloadSegment}`;
  const signature = await key.sign(Buffer.from(signingInput));
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** The `kid` of a compact JWS's protected header, if it has one. */
function kidOf(jwt: string): string | undefined {
  try {
    const header: unknown = JSON.parse(Buffer.from(jwt.slice(0, jwt.indexOf('.')), 'base64url').toString());
    const kid = (header as { kid?: unknown } | null)?.kid;
    return typeof kid === 'string' ? kid : undefined;
  } catch {
    return undefined;
  }
}

/** Signs a built SET. */
export async function signSet(built: BuiltSet, key: SigningKey): Promise<MintedSet> {
  if (built.signing && !built.signing.algorithms.includes(key.alg)) {
    throw new ProfileRefusalError(
      built.signing.profile,
      `${built.signing.rule} requires ${built.signing.algorithms.join(' or ')} signatures; the signing key ${key.kid} is ${key.alg}`,
    );
  }
  const { jwt, header } = await signSetClaims(built.claims, key);
  return {
    jwt,
    header,
    jti: built.jti,
    claims: built.claims,
    eventType: built.eventType,
    event: built.event,
    subject: built.subject,
  };
}

export interface SetCodecOptions {
  /** The transmitter's issuer (identical to its metadata issuer). */
  issuer: string;
  keys: SigningKeyProvider;
  clock?: Clock;
  catalog?: EventCatalog;
}

export type CodecBuildInput = Omit<BuildSetInput, 'issuer' | 'now'> & { now?: Date };

export class SetCodec {
  readonly #issuer: string;
  readonly #keys: SigningKeyProvider;
  readonly #clock: Clock;
  readonly #catalog: EventCatalog | undefined;

  constructor(options: SetCodecOptions) {
    this.#issuer = options.issuer;
    this.#keys = options.keys;
    this.#clock = options.clock ?? { now: () => new Date() };
    this.#catalog = options.catalog;
  }

  /** Builds and checks a SET without signing it (throws for invalid events and profile refusals). */
  build(input: CodecBuildInput): BuiltSet {
    return buildSet(
      { ...input, issuer: this.#issuer, now: input.now ?? this.#clock.now() },
      this.#catalog ? { catalog: this.#catalog } : {},
    );
  }

  async sign(built: BuiltSet): Promise<MintedSet> {
    return signSet(built, await this.#keys.signingKey());
  }

  /**
   * A SET signed earlier (and queued since) as it can be handed out now: unchanged while the JWKS
   * publishes its key; once that key is retired (or gone from the configuration), the same
   * payload, byte for byte (jti, iat and all), signed by the active key, so the receiver can
   * still verify it.
   */
  async refresh(jwt: string): Promise<string> {
    const active = await this.#keys.signingKey();
    if (jwt.startsWith(`${active.protectedHeader}.`)) return jwt;
    const kid = kidOf(jwt);
    if (kid !== undefined && this.#keys.publishes?.(kid) !== false) return jwt;
    const parts = jwt.split('.');
    if (parts.length !== 3) return jwt;
    return signPayload(parts[1] as string, active);
  }

  /** Builds and signs in one step. */
  async mint(input: CodecBuildInput): Promise<MintedSet> {
    return this.sign(this.build(input));
  }
}
