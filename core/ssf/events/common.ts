import { z } from 'zod';
import type { Problem } from '../errors.ts';

export const CAEP_BASE = 'https://schemas.openid.net/secevent/caep/event-type/';
export const RISC_BASE = 'https://schemas.openid.net/secevent/risc/event-type/';
export const SSF_BASE = 'https://schemas.openid.net/secevent/ssf/event-type/';
export const OKTA_BASE = 'https://schemas.okta.com/secevent/okta/event-type/';

/**
 * Where a SET may carry a `subject` member inside the event object (SSF 1.0 §3.1):
 * - `none`: new event types MUST NOT (§3.1.2);
 * - `legacy`: CAEP and RISC types defined before SSF 1.0 MAY, as a Subject Identifier (§3.1.1);
 * - `okta`: Okta's own types require one, shaped `{user?, device?}` (Okta SecurityEventSubject).
 */
export type EventSubjectRule = 'none' | 'legacy' | 'okta';

/** Upper bound of a NumericDate in seconds (9999-12-31); larger values are milliseconds by mistake. */
const MAX_SECONDS = 253_402_300_799;

/** CAEP 1.0 §2 `event_timestamp`: NumericDate in seconds (older drafts used milliseconds). */
export const eventTimestamp = z
  .number()
  .nonnegative()
  .max(MAX_SECONDS, 'must be in seconds since the epoch (CAEP 1.0 §2); this value looks like milliseconds');

/** CAEP 1.0 §2 `initiating_entity`. */
export const initiatingEntity = z.enum(['admin', 'user', 'policy', 'system']);

const LANGUAGE_TAG = /^[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*$/;

/** CAEP 1.0 §2 `reason_admin` / `reason_user`: BCP 47 language tag → message, at least one pair. */
export const reasonMap = z
  .record(
    z.string().regex(LANGUAGE_TAG, 'must be a BCP 47 language tag such as en or en-US'),
    z.string().min(1, 'must be a non-empty message'),
  )
  .refine((m) => Object.keys(m).length > 0, {
    message: 'must map at least one language tag to a message, e.g. {"en": "…"} (CAEP 1.0 §2)',
  });

/** Claims every CAEP event may carry (CAEP 1.0 §2). */
export const caepCommonClaims = {
  event_timestamp: eventTimestamp.optional(),
  initiating_entity: initiatingEntity.optional(),
  reason_admin: reasonMap.optional(),
  reason_user: reasonMap.optional(),
};

/** CAEP 1.0 §3.3 credential types; other values are allowed when agreed with the receiver. */
export const CREDENTIAL_TYPES = [
  'password',
  'pin',
  'x509',
  'fido2-platform',
  'fido2-roaming',
  'fido-u2f',
  'verifiable-credential',
  'phone-voice',
  'phone-sms',
  'app',
] as const;

export const credentialType = z
  .string()
  .min(1, 'must be a credential type such as password or fido2-platform');

function valueAt(input: unknown, path: readonly PropertyKey[]): unknown {
  let value = input;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/** Converts zod issues about `input` into problems with JSON paths under `prefix`. */
export function zodProblems(error: z.ZodError, prefix: string, input: unknown): Problem[] {
  return error.issues.map((issue) => {
    const path = [prefix, ...issue.path.map(String)].filter((p) => p.length > 0).join('.');
    if (issue.code === 'invalid_key' && issue.issues.length > 0) {
      return { path, message: `key ${issue.issues.map((i) => i.message).join('; ')}` };
    }
    if (issue.code !== 'custom' && issue.path.length > 0 && valueAt(input, issue.path) === undefined) {
      return { path, message: 'is required' };
    }
    return { path, message: issue.message };
  });
}
