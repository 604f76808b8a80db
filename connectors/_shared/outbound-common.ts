/**
 * What the outbound connectors that act on a target (rather than push the SET) share: event
 * type URIs, picking the user out of a subject, refusals with a reason, and counting outcomes.
 */
import {
  PermanentError,
  classOf,
  type Counter,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';

export const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
export const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
export const OKTA = 'https://schemas.okta.com/secevent/okta/event-type/';

export const SESSION_REVOKED = `${CAEP}session-revoked`;
export const RISK_LEVEL_CHANGE = `${CAEP}risk-level-change`;
export const ACCOUNT_DISABLED = `${RISC}account-disabled`;
export const ACCOUNT_PURGED = `${RISC}account-purged`;
export const CREDENTIAL_COMPROMISE = `${RISC}credential-compromise`;

/** `caep.session-revoked` for a catalog URI, for messages; other URIs as they are. */
export function shortName(uri: string): string {
  for (const [base, prefix] of [
    [CAEP, 'caep'],
    [RISC, 'risc'],
    [OKTA, 'okta'],
  ] as const) {
    if (uri.startsWith(base)) return `${prefix}.${uri.slice(base.length)}`;
  }
  return uri;
}

/** Whether a draft's type (a URI, or a short name from a source) is `uri`. */
export function isType(type: string, uri: string): boolean {
  return type === uri || type === shortName(uri);
}

/**
 * The event cannot be acted on here; the delivery is dead-lettered with this reason. Retrying
 * would not change the answer.
 */
export function refuse(connector: string, reason: string): PermanentError {
  return new PermanentError(`${connector} refuses this event: ${reason}`, {
    code: 'SSF_ERR_OUTBOUND_REFUSED',
  });
}

/** The member of a complex subject that names the user, or the subject itself. */
export function userSubject(subject: SubjectIdentifier): SubjectIdentifier | undefined {
  if (subject.format === 'complex') {
    const user = subject.user;
    return typeof user === 'object' && user !== null ? (user as SubjectIdentifier) : undefined;
  }
  return subject;
}

/**
 * The user's email address: an email subject, an `acct:` account URI, or the first of those in
 * an aliases subject — directly or as the user member of a complex subject.
 */
export function userEmail(subject: SubjectIdentifier): string | undefined {
  const user = userSubject(subject);
  if (!user) return undefined;
  if (user.format === 'email' && typeof user.email === 'string') return user.email;
  if (user.format === 'account' && typeof user.uri === 'string' && user.uri.startsWith('acct:')) {
    return user.uri.slice('acct:'.length);
  }
  if (user.format === 'aliases' && Array.isArray(user.identifiers)) {
    for (const alias of user.identifiers as SubjectIdentifier[]) {
      const found = userEmail(alias);
      if (found) return found;
    }
  }
  return undefined;
}

/** Describes a subject for a refusal without quoting more than its format. */
export function subjectFormats(subject: SubjectIdentifier): string {
  const user = subject.format === 'complex' ? userSubject(subject) : undefined;
  return subject.format === 'complex' ? `complex (user: ${user?.format ?? 'none'})` : subject.format;
}

export type OutcomeLabel = 'ok' | 'retryable' | 'permanent';

/** Runs `work` and counts its outcome under `labels`; the error is rethrown untouched. */
export async function counted<T>(
  counter: Counter,
  labels: Record<string, string>,
  work: () => Promise<T>,
): Promise<T> {
  try {
    const value = await work();
    counter.inc({ ...labels, outcome: 'ok' });
    return value;
  } catch (err) {
    const cls = classOf(err);
    counter.inc({ ...labels, outcome: cls === 'retryable' ? 'retryable' : 'permanent' });
    throw err;
  }
}

/** A small time-bounded cache (user lookups); a miss is never cached. */
export class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly maxEntries = 10_000,
  ) {}

  get(key: string): V | undefined {
    const hit = this.#entries.get(key);
    if (!hit) return undefined;
    if (hit.until <= this.now()) {
      this.#entries.delete(key);
      return undefined;
    }
    return hit.value;
  }

  set(key: string, value: V): void {
    if (this.ttlMs <= 0) return;
    if (this.#entries.size >= this.maxEntries) {
      const oldest = this.#entries.keys().next();
      if (!oldest.done) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, { value, until: this.now() + this.ttlMs });
  }

  delete(key: string): void {
    this.#entries.delete(key);
  }
}
