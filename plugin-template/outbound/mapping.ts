import { PermanentError, type SignedSet, type SubjectIdentifier } from '../../core/plugin-api/index.ts';

/** The vendor's action request: `POST /v1/actions`. */
export interface VendorAction {
  action: 'revoke_sessions' | 'suspend_user';
  user: string;
  /** The SET's jti: the vendor de-duplicates retried requests by it. */
  reference: string;
}

const ACTIONS: Record<string, VendorAction['action']> = {
  'https://schemas.openid.net/secevent/caep/event-type/session-revoked': 'revoke_sessions',
  'https://schemas.openid.net/secevent/risc/event-type/account-disabled': 'suspend_user',
};

/** The email of the user a subject names: an email subject, or the user of a complex subject. */
export function subjectEmail(subject: SubjectIdentifier): string | undefined {
  if (subject.format === 'email' && typeof subject.email === 'string') return subject.email;
  const user = subject.user as SubjectIdentifier | undefined;
  return user ? subjectEmail(user) : undefined;
}

/** Maps one SET to the vendor action it asks for. Pure. */
export function toVendorAction(set: SignedSet): VendorAction {
  const action = ACTIONS[set.eventType];
  if (!action) {
    throw new PermanentError(`this destination does not act on ${set.eventType}`, {
      code: 'SSF_ERR_EXAMPLE_OUTBOUND_EVENT_TYPE',
    });
  }
  const user = subjectEmail(set.subject);
  if (!user) {
    throw new PermanentError(`the vendor identifies users by email; the subject is ${set.subject.format}`, {
      code: 'SSF_ERR_EXAMPLE_OUTBOUND_SUBJECT',
    });
  }
  return { action, user, reference: set.jti };
}
