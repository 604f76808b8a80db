import type { SignedSet, SubjectIdentifier } from '../../plugin-api/index.ts';
import type { EventClaims } from '../events/types.ts';
import type { SigningRule } from '../profiles/types.ts';

/** The media type of a SET (RFC 8417 §2.3), used as the JWS `typ`. */
export const SET_TYP = 'secevent+jwt';
/** The HTTP Content-Type of a pushed SET (RFC 8935 §2.1). */
export const SET_CONTENT_TYPE = 'application/secevent+jwt';

/** SET claims as ssf-bridge emits them (RFC 8417 §2.2, SSF 1.0 §4). Never `sub`, never `exp`. */
export type SetClaims = {
  iss: string;
  iat: number;
  jti: string;
  aud: string | string[];
  txn?: string;
  /** Top-level primary subject (SSF 1.0 §3.1); only a profile for a legacy target omits it. */
  sub_id?: SubjectIdentifier;
  /** Exactly one event. */
  events: Record<string, EventClaims>;
};

export type SetHeader = {
  alg: string;
  kid: string;
  typ: typeof SET_TYP;
};

/** Where a SET goes: its id is part of the jti, its audience and profile shape the claims. */
export interface SetDestination {
  /** Stable id of the destination (an outbound instance id or a stream id). */
  id: string;
  /** The SET `aud`; optional when the profile fixes the audience (google-workspace). */
  audience?: string | string[];
  /** Target profile name; `ssf-1.0` when absent. */
  profile?: string;
  /** Options of that profile (validated by the profile). */
  profileOptions?: unknown;
}

/** A SET built and checked, not yet signed. */
export interface BuiltSet {
  claims: SetClaims;
  jti: string;
  /** Event type URI in the SET (after any profile translation). */
  eventType: string;
  event: EventClaims;
  /** The primary subject in canonical form. */
  subject: SubjectIdentifier;
  /** The target profile's restriction of signing algorithms, checked against the key at signing. */
  signing?: SigningRule;
}

/** A signed SET; the delivery engine adds the attempt count to make it a SignedSet. */
export interface MintedSet extends Omit<SignedSet, 'attempt' | 'claims'> {
  claims: SetClaims;
  header: SetHeader;
}
