import { ConfigError, PermanentError } from '../plugin-api/index.ts';

/**
 * The error codes of RFC 8935 §2.4 (IANA "Security Event Token Error Codes"), and SSF 1.0's
 * `invalid_state` for a verification event whose state the receiver did not ask for (§8.1.4).
 */
export const SET_ERROR_CODES = [
  'invalid_request',
  'invalid_key',
  'invalid_issuer',
  'invalid_audience',
  'authentication_failed',
  'access_denied',
  'invalid_state',
] as const;
export type SetErrorCode = (typeof SET_ERROR_CODES)[number];

const KNOWN_SET_ERRORS: ReadonlySet<string> = new Set(SET_ERROR_CODES);

/**
 * A receiver's `err` as a metric label: one of the codes above, else `other`. The receiver
 * chooses the string; taken as it is, each new one would make a new time series.
 */
export function setErrorLabel(err: string): SetErrorCode | 'other' {
  return KNOWN_SET_ERRORS.has(err) ? (err as SetErrorCode) : 'other';
}

/**
 * A SET was refused. `err` is the RFC 8935 error code a receiver answers with
 * (`400 {"err", "description"}`); `description` says precisely what was wrong.
 */
export class SetVerificationError extends PermanentError {
  readonly err: SetErrorCode;
  readonly description: string;

  constructor(err: SetErrorCode, description: string, options: { code: string; cause?: unknown }) {
    super(`${err}: ${description}`, { code: options.code, cause: options.cause });
    this.err = err;
    this.description = description;
  }

  /** The RFC 8935 §2.3 error response body. */
  toResponseBody(): { err: SetErrorCode; description: string } {
    return { err: this.err, description: this.description };
  }
}

/** One problem found in an event, a subject or a SET, with the JSON path it concerns. */
export interface Problem {
  path: string;
  message: string;
}

export function formatProblems(problems: readonly Problem[]): string {
  return problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ');
}

/** A subject identifier does not follow RFC 9493 / SSF §3. */
export class SubjectValidationError extends PermanentError {
  readonly problems: readonly Problem[];
  constructor(problems: readonly Problem[]) {
    super(`invalid subject identifier: ${formatProblems(problems)}`, { code: 'SSF_ERR_SUBJECT_INVALID' });
    this.problems = problems;
  }
}

/** An event's claims do not follow its event type's definition. */
export class EventValidationError extends PermanentError {
  readonly eventType: string;
  readonly problems: readonly Problem[];
  constructor(eventType: string, problems: readonly Problem[], code = 'SSF_ERR_EVENT_INVALID') {
    super(`invalid ${eventType} event: ${formatProblems(problems)}`, { code });
    this.eventType = eventType;
    this.problems = problems;
  }
}

/** An event type name that is neither a known URI nor a known short name. */
export class UnknownEventTypeError extends PermanentError {
  readonly eventType: string;
  constructor(eventType: string, suggestion?: string) {
    super(
      `unknown event type "${eventType}"${suggestion ? `; did you mean "${suggestion}"?` : ''} ` +
        '(see: ssf-bridge events list)',
      { code: 'SSF_ERR_EVENT_UNKNOWN_TYPE' },
    );
    this.eventType = eventType;
  }
}

/** Two connectors (or a connector and the built-in catalog) define the same event type differently. */
export class EventTypeConflictError extends ConfigError {
  constructor(message: string) {
    super(message, { code: 'SSF_ERR_EVENT_TYPE_CONFLICT' });
  }
}

/**
 * A target profile does not accept an event (its target would refuse it). Permanent: the same
 * event will never be accepted by that target, so the delivery is dead-lettered with this reason.
 */
export class ProfileRefusalError extends PermanentError {
  readonly profile: string;
  readonly reason: string;
  constructor(profile: string, reason: string) {
    super(`profile ${profile} refuses this event: ${reason}`, { code: 'SSF_ERR_PROFILE_REFUSED' });
    this.profile = profile;
    this.reason = reason;
  }
}

/** Signing keys are missing, unreadable or unusable. */
export class KeyStoreError extends ConfigError {
  constructor(message: string, code: string, cause?: unknown) {
    super(message, { code, cause });
  }
}
