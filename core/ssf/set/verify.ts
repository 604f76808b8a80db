/**
 * Verifies a SET as a receiver must (RFC 7519 §7.2, RFC 8417 §2, RFC 8935 §2, SSF 1.0 §4): the
 * compact JWS parses, `typ` is
 * secevent+jwt, the algorithm is on the allow-list, the signature verifies with the key its
 * `kid` names, iss and aud are this receiver's, required claims are there and sub/exp are not,
 * the event follows its definition, it is not too old, and its jti was not seen before.
 * Every refusal is a SetVerificationError carrying its RFC 8935 error code.
 */
import { compactVerify, errors, type CryptoKey, type JWSHeaderParameters } from 'jose';
import type { Clock } from '../../plugin-api/index.ts';
import { isBridgeError } from '../../plugin-api/index.ts';
import type { VerificationAlgorithm } from '../algorithms.ts';
import { SetVerificationError } from '../errors.ts';
import type { EventClaims } from '../events/types.ts';
import type { SubjectIdentifier } from '../subjects.ts';
import { checkClaims, checkHeader, type ClaimCheckOptions, type Finding } from './checks.ts';
import type { SetKeySource } from './jwks.ts';
import type { ReplayCache } from './replay.ts';

export interface DecodedCompact {
  header: unknown;
  payload: unknown;
}

const BASE64URL = /^[A-Za-z0-9_-]*$/;

function decodeSegment(segment: string): unknown {
  return JSON.parse(Buffer.from(segment, 'base64url').toString('utf8')) as unknown;
}

/** Splits and decodes a compact JWS without verifying it (RFC 7515 §7.1). */
export function decodeCompact(token: string): DecodedCompact {
  const parts = token.trim().split('.');
  if (parts.length === 5) {
    throw new SetVerificationError(
      'invalid_request',
      'the body is an encrypted JWT (JWE); SETs are sent signed',
      {
        code: 'SSF_ERR_SET_MALFORMED',
      },
    );
  }
  if (parts.length !== 3 || parts.some((p) => !BASE64URL.test(p)) || !parts[0] || !parts[1]) {
    throw new SetVerificationError(
      'invalid_request',
      'the body is not a compact JWS (three base64url parts)',
      {
        code: 'SSF_ERR_SET_MALFORMED',
      },
    );
  }
  try {
    return { header: decodeSegment(parts[0]), payload: decodeSegment(parts[1]) };
  } catch (cause) {
    throw new SetVerificationError(
      'invalid_request',
      'the JWS header or payload is not base64url-encoded JSON',
      {
        code: 'SSF_ERR_SET_MALFORMED',
        cause,
      },
    );
  }
}

/** A SET that passed every check. */
export interface VerifiedSet {
  header: JWSHeaderParameters;
  claims: Record<string, unknown>;
  jti: string;
  eventType: string;
  event: EventClaims;
  subject: SubjectIdentifier;
  /** False for event types outside the catalog: accepted, contents not checked (SSF 1.0 §4.2.3). */
  knownEventType: boolean;
  /** Rules the SET bends without breaking (e.g. no txn). */
  warnings: Finding[];
}

export interface VerifySetOptions extends Omit<ClaimCheckOptions, 'now'> {
  keys: SetKeySource;
  /** Accepted algorithms; default RS256, ES256, PS256, EdDSA. Never none or HMAC. */
  algorithms?: readonly VerificationAlgorithm[];
  clock?: Clock;
  /** Remembers jtis; a jti seen before is refused. */
  replayCache?: ReplayCache;
  /** Returns a reason to refuse a valid SET from this transmitter (answered access_denied). */
  authorize?: (set: VerifiedSet) => string | undefined | Promise<string | undefined>;
}

function firstError(findings: readonly Finding[]): Finding | undefined {
  return findings.find((f) => f.severity === 'error');
}

function refuse(finding: Finding, cause?: unknown): never {
  throw new SetVerificationError(finding.err, finding.description, { code: finding.code, cause });
}

async function verifySignature(token: string, key: CryptoKey, header: JWSHeaderParameters): Promise<void> {
  try {
    await compactVerify(token, key, { algorithms: [header.alg as string] });
  } catch (err) {
    if (err instanceof errors.JWSSignatureVerificationFailed) {
      throw new SetVerificationError(
        'invalid_key',
        `the signature does not verify with key ${header.kid ?? '(no kid)'}`,
        {
          code: 'SSF_ERR_SET_SIGNATURE',
          cause: err,
        },
      );
    }
    throw new SetVerificationError(
      'invalid_key',
      `the SET cannot be verified with key ${header.kid ?? '(no kid)'}: ${(err as Error).message}`,
      {
        code: 'SSF_ERR_SET_KEY_UNUSABLE',
        cause: err,
      },
    );
  }
}

/** Verifies a compact SET; resolves to its checked content or throws SetVerificationError. */
export async function verifySet(token: string, options: VerifySetOptions): Promise<VerifiedSet> {
  if (typeof token !== 'string') {
    throw new SetVerificationError('invalid_request', 'the SET must be a string', {
      code: 'SSF_ERR_SET_MALFORMED',
    });
  }
  const decoded = decodeCompact(token);
  const headerFindings = checkHeader(
    decoded.header,
    options.algorithms ? { algorithms: options.algorithms } : {},
  );
  const headerError = firstError(headerFindings);
  if (headerError) refuse(headerError);
  const header = decoded.header as JWSHeaderParameters;

  let key: CryptoKey;
  try {
    key = await options.keys.getKey(header);
  } catch (err) {
    if (isBridgeError(err)) throw err;
    throw new SetVerificationError(
      'invalid_key',
      `no usable key for kid ${header.kid ?? '(none)'}: ${(err as Error).message}`,
      {
        code: 'SSF_ERR_SET_UNKNOWN_KEY',
        cause: err,
      },
    );
  }
  await verifySignature(token.trim(), key, header);

  const now = (options.clock ?? { now: () => new Date() }).now();
  const result = checkClaims(decoded.payload, { ...options, now });
  const claimError = firstError(result.findings);
  if (claimError) refuse(claimError);

  const claims = decoded.payload as Record<string, unknown>;
  const verified: VerifiedSet = {
    header,
    claims,
    jti: claims.jti as string,
    eventType: result.eventType as string,
    event: result.event as EventClaims,
    subject: result.subject as SubjectIdentifier,
    knownEventType: result.knownEventType ?? false,
    warnings: [...headerFindings, ...result.findings],
  };

  const denial = options.authorize ? await options.authorize(verified) : undefined;
  if (denial) {
    throw new SetVerificationError('access_denied', denial, { code: 'SSF_ERR_SET_ACCESS_DENIED' });
  }
  if (options.replayCache) {
    const first = await options.replayCache.remember(
      `${claims.iss as string}\u0000${verified.jti}`,
      now.getTime(),
    );
    if (!first) {
      throw new SetVerificationError(
        'invalid_request',
        `jti ${verified.jti} was already received (replayed SET)`,
        {
          code: 'SSF_ERR_SET_REPLAYED',
        },
      );
    }
  }
  return verified;
}
