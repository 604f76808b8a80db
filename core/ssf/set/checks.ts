/**
 * The rules a SET must follow (RFC 8417, RFC 8935, SSF 1.0 §3–§4), as
 * findings. The verifier stops at the first error; `ssf-bridge decode` lists them all.
 */
import {
  DEFAULT_VERIFICATION_ALGORITHMS,
  isVerificationAlgorithm,
  type VerificationAlgorithm,
} from '../algorithms.ts';
import type { SetErrorCode } from '../errors.ts';
import { formatProblems } from '../errors.ts';
import { eventCatalog, type EventCatalog } from '../events/catalog.ts';
import { CREDENTIAL_TYPES } from '../events/common.ts';
import type { EventClaims } from '../events/types.ts';
import { validateSubject, type SubjectIdentifier } from '../subjects.ts';
import { SET_TYP } from './types.ts';

export interface Finding {
  severity: 'error' | 'warning';
  /** RFC 8935 error code a receiver answers with for an error. */
  err: SetErrorCode;
  /** Stable ssf-bridge code. */
  code: string;
  description: string;
}

function error(err: SetErrorCode, code: string, description: string): Finding {
  return { severity: 'error', err, code, description };
}

function warning(code: string, description: string): Finding {
  return { severity: 'warning', err: 'invalid_request', code, description };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export interface HeaderCheckOptions {
  algorithms?: readonly VerificationAlgorithm[];
}

/** SET-01, SET-03, SET-04: explicit typing, an accepted asymmetric algorithm, a kid. */
export function checkHeader(header: unknown, options: HeaderCheckOptions = {}): Finding[] {
  if (!isPlainObject(header))
    return [error('invalid_request', 'SSF_ERR_SET_MALFORMED', 'the JOSE header is not a JSON object')];
  const findings: Finding[] = [];
  const typ = header.typ;
  if (typ === undefined) {
    findings.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_TYP',
        `the typ header is missing; a SET is typed ${SET_TYP} (RFC 8417 §2.3, SSF 1.0 §4.1.1)`,
      ),
    );
  } else if (typ !== SET_TYP) {
    const lower = typeof typ === 'string' ? typ.toLowerCase() : '';
    if (lower === SET_TYP || lower === `application/${SET_TYP}`) {
      findings.push(
        warning(
          'SSF_ERR_SET_TYP',
          `typ "${String(typ)}" is accepted, but SSF 1.0 §4.1.1 writes it as ${SET_TYP}`,
        ),
      );
    } else {
      findings.push(
        error(
          'invalid_request',
          'SSF_ERR_SET_TYP',
          `typ is "${String(typ)}", not ${SET_TYP}: this token is not a SET (RFC 8417 §2.3)`,
        ),
      );
    }
  }
  const alg = header.alg;
  const allowed = options.algorithms ?? DEFAULT_VERIFICATION_ALGORITHMS;
  if (alg === undefined || (typeof alg === 'string' && alg.toLowerCase() === 'none')) {
    findings.push(
      error(
        'authentication_failed',
        'SSF_ERR_SET_UNSIGNED',
        'the SET is unsigned (alg none); only signed SETs authenticate their issuer',
      ),
    );
  } else if (!isVerificationAlgorithm(alg) || !allowed.includes(alg)) {
    const hmac = typeof alg === 'string' && /^HS\d+$/i.test(alg);
    findings.push(
      error(
        'invalid_key',
        'SSF_ERR_SET_ALG',
        `alg ${String(alg)} is not accepted${hmac ? ' (HMAC would let a public key act as a shared secret)' : ''}; accepted: ${allowed.join(', ')}`,
      ),
    );
  }
  if (header.kid === undefined) {
    findings.push(
      warning(
        'SSF_ERR_SET_KID',
        'no kid header; receivers such as Okta and the CAEP interoperability profile require one',
      ),
    );
  } else if (typeof header.kid !== 'string' || header.kid.length === 0) {
    findings.push(error('invalid_request', 'SSF_ERR_SET_KID', 'kid must be a non-empty string'));
  }
  if (header.crit !== undefined) {
    findings.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_CRIT',
        `critical header parameters ${JSON.stringify(header.crit)} are not supported`,
      ),
    );
  }
  return findings;
}

export interface ClaimCheckOptions {
  /** Expected issuer(s); null skips the check (inspection only). */
  issuer: string | readonly string[] | null;
  /** This receiver's audience value(s); null skips the check (inspection only). */
  audience: string | readonly string[] | null;
  now: Date;
  /** Refuse SETs whose iat is older than this. */
  maxAgeMs?: number;
  /** Tolerance for clocks that disagree; default 60 s. */
  clockSkewMs?: number;
  catalog?: EventCatalog;
  /** Accept a SET without sub_id when its event carries a subject (transmitters written before SSF 1.0). */
  legacySubject?: boolean;
  /** Refuse event types the catalog does not know (default: accept them, SSF 1.0 §4.2.3). */
  rejectUnknownEventTypes?: boolean;
  /**
   * Refuse a SET whose `events` holds more than one member even when they are alternative URIs
   * of the same event (the CAEP interoperability profile §2.8.1 wants exactly one). Default:
   * those are accepted and the event is taken once (SSF 1.0 §4.2.1); different events never are.
   */
  exactlyOneEvent?: boolean;
}

export interface ClaimCheckResult {
  findings: Finding[];
  eventType?: string;
  event?: EventClaims;
  subject?: SubjectIdentifier;
  knownEventType?: boolean;
}

const asList = (v: string | readonly string[]): readonly string[] => (typeof v === 'string' ? [v] : v);

function checkIssuer(claims: Record<string, unknown>, options: ClaimCheckOptions, out: Finding[]): void {
  const iss = claims.iss;
  if (typeof iss !== 'string' || iss.length === 0) {
    out.push(
      error('invalid_request', 'SSF_ERR_SET_CLAIM', 'iss is required and must be a string (RFC 8417 §2.2)'),
    );
  } else if (options.issuer !== null && !asList(options.issuer).includes(iss)) {
    out.push(
      error(
        'invalid_issuer',
        'SSF_ERR_SET_ISSUER',
        `iss "${iss}" is not the expected issuer ${asList(options.issuer).join(' or ')} (SSF 1.0 §4.1.6)`,
      ),
    );
  }
}

function checkAudience(claims: Record<string, unknown>, options: ClaimCheckOptions, out: Finding[]): void {
  const aud = claims.aud;
  if (aud === undefined) {
    if (options.audience === null)
      out.push(warning('SSF_ERR_SET_AUDIENCE', 'no aud; SSF streams give every SET an aud (SSF 1.0 §4.1.8)'));
    else
      out.push(
        error(
          'invalid_audience',
          'SSF_ERR_SET_AUDIENCE',
          'aud is missing; this receiver needs its own audience in the SET',
        ),
      );
    return;
  }
  const values = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : undefined;
  if (!values || values.length === 0 || values.some((v) => typeof v !== 'string')) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_CLAIM',
        'aud must be a string or a non-empty array of strings (RFC 7519 §4.1.3)',
      ),
    );
    return;
  }
  if (
    options.audience !== null &&
    !values.some((v) => asList(options.audience as string | readonly string[]).includes(v as string))
  ) {
    out.push(
      error(
        'invalid_audience',
        'SSF_ERR_SET_AUDIENCE',
        `aud ${JSON.stringify(aud)} does not include this receiver (${asList(options.audience).join(' or ')})`,
      ),
    );
  }
}

function checkTimes(claims: Record<string, unknown>, options: ClaimCheckOptions, out: Finding[]): void {
  const toe = claims.toe;
  if (toe !== undefined && (typeof toe !== 'number' || !Number.isFinite(toe))) {
    out.push(
      error('invalid_request', 'SSF_ERR_SET_CLAIM', 'toe must be a NumericDate when present (RFC 8417 §2.2)'),
    );
  }
  const iat = claims.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_CLAIM',
        'iat is required and must be a NumericDate (RFC 8417 §2.2)',
      ),
    );
    return;
  }
  const now = options.now.getTime() / 1000;
  const skew = (options.clockSkewMs ?? 60_000) / 1000;
  if (iat > now + skew) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_IAT_FUTURE',
        `iat ${iat} is ${Math.round(iat - now)} s in the future`,
      ),
    );
  }
  if (options.maxAgeMs !== undefined && now - iat > options.maxAgeMs / 1000 + skew) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_TOO_OLD',
        `the SET was issued ${Math.round(now - iat)} s ago; the limit is ${Math.round(options.maxAgeMs / 1000)} s`,
      ),
    );
  }
}

function checkIdentity(claims: Record<string, unknown>, out: Finding[]): void {
  if (typeof claims.jti !== 'string' || claims.jti.length === 0) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_CLAIM',
        'jti is required and must be a non-empty string (RFC 8417 §2.2)',
      ),
    );
  }
  if (claims.sub !== undefined) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_SUB',
        'sub must not appear in a SET; the subject is sub_id (SSF 1.0 §4.1.2)',
      ),
    );
  }
  if (claims.exp !== undefined) {
    out.push(error('invalid_request', 'SSF_ERR_SET_EXP', 'exp must not appear in a SET (SSF 1.0 §4.1.7)'));
  }
  if (claims.nonce !== undefined) {
    out.push(
      error('invalid_request', 'SSF_ERR_SET_NONCE', 'nonce marks an ID token, not a SET (RFC 8417 §4.6)'),
    );
  }
  if (claims.txn === undefined) {
    out.push(warning('SSF_ERR_SET_TXN', 'no txn; transmitters should set it (SSF 1.0 §4.1.9)'));
  } else if (typeof claims.txn !== 'string') {
    out.push(error('invalid_request', 'SSF_ERR_SET_TXN', 'txn must be a string (SSF 1.0 §4.1.9)'));
  }
}

function singleEvent(
  claims: Record<string, unknown>,
  options: ClaimCheckOptions,
  out: Finding[],
): [string, unknown] | undefined {
  const events = claims.events;
  if (!isPlainObject(events)) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_EVENTS',
        'events is required and must be a JSON object (RFC 8417 §2.2)',
      ),
    );
    return undefined;
  }
  const entries = Object.entries(events);
  let chosen = entries[0];
  if (entries.length > 1) {
    // SSF 1.0 §4.2.1 (checklist SET-13, SSF-12): one event, under several URIs only when they
    // are alternative names of the same event type; that event is taken once.
    const catalog = options.catalog ?? eventCatalog;
    const common = options.exactlyOneEvent ? undefined : catalog.sameEventType(entries.map(([uri]) => uri));
    if (common === undefined) {
      const why = options.exactlyOneEvent
        ? 'a SET carries exactly one (CAEP interoperability §2.8.1)'
        : 'a SET carries one event, under several URIs only when they are alternative names of the same event type (SSF 1.0 §4.2.1)';
      out.push(
        error('invalid_request', 'SSF_ERR_SET_EVENTS', `events holds ${entries.length} events; ${why}`),
      );
      return undefined;
    }
    const notObject = entries.find(([, event]) => !isPlainObject(event));
    if (notObject) {
      out.push(
        error(
          'invalid_request',
          'SSF_ERR_SET_EVENTS',
          `events["${notObject[0]}"] must be a JSON object (RFC 8417 §2.2)`,
        ),
      );
      return undefined;
    }
    chosen = entries.find(([uri]) => uri === common) ?? chosen;
    out.push(
      warning(
        'SSF_ERR_SET_EVENTS',
        `events names one event under ${entries.length} URIs (${entries.map(([uri]) => uri).join(', ')}); it is taken once, as ${(chosen as [string, unknown])[0]} (SSF 1.0 §4.2.1)`,
      ),
    );
  }
  if (chosen === undefined) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_EVENTS',
        'events holds no event; a SET carries one (SSF 1.0 §4.2.1)',
      ),
    );
    return undefined;
  }
  const [type, event] = chosen;
  if (!isPlainObject(event)) {
    out.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_EVENTS',
        `events["${type}"] must be a JSON object (RFC 8417 §2.2)`,
      ),
    );
    return undefined;
  }
  return [type, event];
}

function primarySubject(
  claims: Record<string, unknown>,
  event: Record<string, unknown> | undefined,
  options: ClaimCheckOptions,
  out: Finding[],
): SubjectIdentifier | undefined {
  let raw = claims.sub_id;
  let path = 'sub_id';
  if (raw === undefined) {
    if (options.legacySubject && event?.subject !== undefined) {
      out.push(
        warning(
          'SSF_ERR_SET_SUB_ID',
          'no sub_id; the subject was taken from inside the event (pre-SSF 1.0 transmitter)',
        ),
      );
      raw = event.subject;
      path = 'events.subject';
    } else {
      out.push(
        error(
          'invalid_request',
          'SSF_ERR_SET_SUB_ID',
          'sub_id is required: SSF SETs name their subject at the top level (SSF 1.0 §3.1)',
        ),
      );
      return undefined;
    }
  }
  const lenient = validateSubject(raw, { lenient: true, path });
  if (!lenient.ok) {
    out.push(error('invalid_request', 'SSF_ERR_SET_SUB_ID', formatProblems(lenient.problems)));
    return undefined;
  }
  const strict = validateSubject(raw, { path });
  if (!strict.ok) out.push(warning('SSF_ERR_SET_SUB_ID', formatProblems(strict.problems)));
  return lenient.subject;
}

/** Every rule about the claims, in the order a receiver reports them. */
export function checkClaims(claims: unknown, options: ClaimCheckOptions): ClaimCheckResult {
  if (!isPlainObject(claims)) {
    return {
      findings: [error('invalid_request', 'SSF_ERR_SET_MALFORMED', 'the SET payload is not a JSON object')],
    };
  }
  const findings: Finding[] = [];
  checkIssuer(claims, options, findings);
  checkAudience(claims, options, findings);
  checkTimes(claims, options, findings);
  checkIdentity(claims, findings);
  const single = singleEvent(claims, options, findings);
  const [eventType, event] = single ?? [undefined, undefined];
  const subject = primarySubject(claims, event as Record<string, unknown> | undefined, options, findings);
  if (!eventType) return { findings, ...(subject ? { subject } : {}) };

  const catalog = options.catalog ?? eventCatalog;
  // Member names of events are event-type URIs (RFC 8417 §2.2): a catalog short name such as
  // caep.session-revoked names no event type on the wire, so it counts as an unknown type.
  const found = catalog.find(eventType);
  const definition = found?.uri === eventType ? found : undefined;
  if (!definition) {
    const hint = found
      ? ` (events member names are event-type URIs, RFC 8417 §2.2; the catalog's ${eventType} is ${found.uri})`
      : '';
    if (options.rejectUnknownEventTypes) {
      findings.push(
        error(
          'invalid_request',
          'SSF_ERR_SET_EVENT_UNKNOWN',
          `event type ${eventType} is not one this receiver knows${hint}`,
        ),
      );
    } else {
      findings.push(
        warning(
          'SSF_ERR_SET_EVENT_UNKNOWN',
          `event type ${eventType} is not in the catalog; its contents were not checked${hint}`,
        ),
      );
    }
    return {
      findings,
      eventType,
      event: event as EventClaims,
      knownEventType: false,
      ...(subject ? { subject } : {}),
    };
  }
  if (definition.deprecated)
    findings.push(warning('SSF_ERR_EVENT_DEPRECATED', `${definition.shortName}: ${definition.deprecated}`));
  // The receiving side: members not understood are ignored (SSF 1.0 §4.2.3), with a warning.
  const checked = catalog.checkEvent(eventType, event, `events[${definition.shortName}]`, {
    receiving: true,
  });
  if (checked.ok && checked.ignored) {
    findings.push(warning('SSF_ERR_SET_EVENT_MEMBER_IGNORED', formatProblems(checked.ignored)));
  }
  if (!checked.ok) {
    findings.push(
      error(
        'invalid_request',
        'SSF_ERR_SET_EVENT_INVALID',
        `${definition.shortName} (${definition.spec}): ${formatProblems(checked.problems)}`,
      ),
    );
  }
  const credential = (event as Record<string, unknown>).credential_type;
  if (typeof credential === 'string' && !(CREDENTIAL_TYPES as readonly string[]).includes(credential)) {
    // CAEP 1.0 §3.3 (checklist CAEP-02): other values are allowed when agreed, so a warning.
    findings.push(
      warning(
        'SSF_ERR_EVENT_CREDENTIAL_TYPE',
        `${definition.shortName}: credential_type "${credential}" is none of CAEP 1.0's (${CREDENTIAL_TYPES.join(', ')}); taken as a value agreed with the transmitter`,
      ),
    );
  }
  if (subject) {
    const subjectProblems = catalog.checkSubjectFor(eventType, subject);
    if (subjectProblems.length > 0) {
      findings.push(error('invalid_request', 'SSF_ERR_SET_SUB_ID', formatProblems(subjectProblems)));
    }
  }
  return {
    findings,
    eventType,
    event: checked.ok ? checked.event : (event as EventClaims),
    knownEventType: true,
    ...(subject ? { subject } : {}),
  };
}
