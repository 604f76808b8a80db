/** RISC 1.0 (Final) event types, §2.1–§2.11. */
import { z } from 'zod';
import { RISC_BASE, credentialType, eventTimestamp, reasonMap } from './common.ts';
import type { EventTypeDefinition } from './types.ts';

interface RiscOptions {
  shape?: z.ZodRawShape;
  timestamp?: boolean;
  subjectFormats?: readonly string[];
  deprecated?: string;
  replacedBy?: string;
}

function risc(
  name: string,
  section: string,
  description: string,
  options: RiscOptions = {},
): EventTypeDefinition {
  return {
    uri: `${RISC_BASE}${name}`,
    shortName: `risc.${name}`,
    spec: `RISC 1.0 §${section}`,
    description,
    claims: z.looseObject(options.shape ?? {}),
    eventSubject: 'legacy',
    timestamp: options.timestamp ?? false,
    ...(options.subjectFormats ? { subjectFormats: options.subjectFormats } : {}),
    ...(options.deprecated ? { deprecated: options.deprecated } : {}),
    ...(options.replacedBy ? { replacedBy: options.replacedBy } : {}),
  };
}

/** RISC 1.0 §2.5–2.6: identifier events are about an email address or a phone number. */
const IDENTIFIER_SUBJECTS = ['email', 'phone_number'] as const;

export const RISC_EVENT_TYPES: readonly EventTypeDefinition[] = [
  risc(
    'account-credential-change-required',
    '2.1',
    'The account needs a credential change (e.g. a password reset).',
  ),
  risc('account-purged', '2.2', 'The account was permanently deleted.'),
  risc('account-disabled', '2.3', 'The account was disabled.', {
    shape: { reason: z.enum(['hijacking', 'bulk-account']).optional() },
  }),
  risc('account-enabled', '2.4', 'The account was enabled.'),
  risc('identifier-changed', '2.5', 'The identifier (email or phone) of the account changed.', {
    shape: { 'new-value': z.string().min(1).optional() },
    subjectFormats: IDENTIFIER_SUBJECTS,
  }),
  risc('identifier-recycled', '2.6', 'The identifier (email or phone) now belongs to someone else.', {
    subjectFormats: IDENTIFIER_SUBJECTS,
  }),
  risc('credential-compromise', '2.7', 'A credential of the subject is known to be compromised.', {
    shape: {
      credential_type: credentialType,
      event_timestamp: eventTimestamp.optional(),
      reason_admin: reasonMap.optional(),
      reason_user: reasonMap.optional(),
    },
    timestamp: true,
  }),
  risc('opt-in', '2.8.1', 'The account opted in to RISC event exchange.'),
  risc('opt-out-initiated', '2.8.2', 'The account started to opt out of RISC event exchange.'),
  risc('opt-out-cancelled', '2.8.3', 'The account cancelled its opt-out and is opted in again.'),
  risc('opt-out-effective', '2.8.4', 'The account opt-out took effect.'),
  risc('recovery-activated', '2.9', 'Account recovery was activated.'),
  risc('recovery-information-changed', '2.10', 'Account recovery information changed.'),
  risc('sessions-revoked', '2.11', 'All sessions of the account were revoked (deprecated).', {
    deprecated: 'RISC 1.0 §2.11 deprecates it; new implementations MUST use caep.session-revoked',
    replacedBy: 'caep.session-revoked',
  }),
];
