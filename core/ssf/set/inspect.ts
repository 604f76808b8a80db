/** Reads a SET without verifying its signature and lists every rule it breaks. */
import { SetVerificationError } from '../errors.ts';
import type { EventCatalog } from '../events/catalog.ts';
import { checkClaims, checkHeader, type Finding } from './checks.ts';
import { decodeCompact } from './verify.ts';

export interface SetInspection {
  header?: unknown;
  claims?: unknown;
  /** Errors first, then warnings. */
  findings: Finding[];
}

export interface InspectOptions {
  now?: Date;
  catalog?: EventCatalog;
  /** Accept a SET without sub_id when its event carries a subject (transmitters written before SSF 1.0). */
  legacySubject?: boolean;
}

export function inspectSet(token: string, options: InspectOptions = {}): SetInspection {
  let decoded;
  try {
    decoded = decodeCompact(token);
  } catch (err) {
    if (!(err instanceof SetVerificationError)) throw err;
    return { findings: [{ severity: 'error', err: err.err, code: err.code, description: err.description }] };
  }
  const header = checkHeader(decoded.header);
  const claims = checkClaims(decoded.payload, {
    issuer: null,
    audience: null,
    now: options.now ?? new Date(),
    ...(options.catalog ? { catalog: options.catalog } : {}),
    ...(options.legacySubject ? { legacySubject: true } : {}),
  });
  const findings = [...header, ...claims.findings];
  return {
    header: decoded.header,
    claims: decoded.payload,
    findings: [
      ...findings.filter((f) => f.severity === 'error'),
      ...findings.filter((f) => f.severity === 'warning'),
    ],
  };
}
