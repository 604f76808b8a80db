/**
 * Okta Identity Threat Protection as a receiver (Okta management API,
 * `SecurityEventTokenRequestJwtEvents`). Okta accepts six event types, wants the subject inside
 * the event as `{user, device}`, its own lowercase risk levels, an `en` reason, and an
 * `event_timestamp` on every event.
 */
import { z } from 'zod';
import type { SubjectIdentifier } from '../../plugin-api/index.ts';
import { ProfileRefusalError } from '../errors.ts';
import { CAEP_BASE, OKTA_BASE, RISC_BASE } from '../events/common.ts';
import type { EventClaims } from '../events/types.ts';
import {
  matchableIdentifier,
  oneIdentifier,
  type ProfileInput,
  type ShapedEvent,
  type TargetProfile,
} from './types.ts';

const NAME = 'okta-itp';

export const OKTA_SESSION_REVOKED = `${CAEP_BASE}session-revoked`;
export const OKTA_DEVICE_COMPLIANCE = `${CAEP_BASE}device-compliance-change`;
export const OKTA_IDENTIFIER_CHANGED = `${RISC_BASE}identifier-changed`;
export const OKTA_USER_RISK = `${OKTA_BASE}user-risk-change`;
export const OKTA_DEVICE_RISK = `${OKTA_BASE}device-risk-change`;
export const OKTA_IP_CHANGE = `${OKTA_BASE}ip-change`;
const CAEP_RISK_LEVEL_CHANGE = `${CAEP_BASE}risk-level-change`;

/** The six event types Okta's receiver schema lists. */
export const OKTA_ACCEPTED_EVENT_TYPES = [
  OKTA_SESSION_REVOKED,
  OKTA_DEVICE_COMPLIANCE,
  OKTA_IDENTIFIER_CHANGED,
  OKTA_USER_RISK,
  OKTA_DEVICE_RISK,
  OKTA_IP_CHANGE,
] as const;

/** Events about a device: a simple subject is the device, and the device member is always kept. */
const DEVICE_EVENTS = new Set<string>([OKTA_DEVICE_RISK, OKTA_DEVICE_COMPLIANCE]);
/** Okta documents "either reason_admin or reason_user is required" for these. */
const REASON_REQUIRED = new Set<string>([
  OKTA_SESSION_REVOKED,
  OKTA_DEVICE_COMPLIANCE,
  OKTA_USER_RISK,
  OKTA_DEVICE_RISK,
  OKTA_IP_CHANGE,
]);

export const oktaItpOptionsSchema = z.strictObject({
  top_level_sub_id: z.boolean().default(true).meta({
    description: 'Also send the SSF 1.0 top-level sub_id (Okta reads the subject inside the event).',
  }),
  include_device: z.boolean().default(false).meta({
    description:
      'Send the device member of a complex subject with user events too (device events always carry it).',
  }),
});
export type OktaItpOptions = z.output<typeof oktaItpOptionsSchema>;

export type OktaEventSubject = { user?: SubjectIdentifier; device?: SubjectIdentifier };

/**
 * The `{user, device}` subject Okta expects inside the event. A simple subject is the user,
 * except for device events when it is an opaque id (a device id; an address or an account names
 * the user). Complex members other than user and device are dropped.
 */
export function oktaEventSubject(
  profile: string,
  subject: SubjectIdentifier,
  eventType: string,
  includeDevice: boolean,
): OktaEventSubject {
  const deviceEvent = DEVICE_EVENTS.has(eventType);
  // Okta takes one identifier per member: out of aliases (as HR sources send), the email.
  const single = (candidate: SubjectIdentifier) => oneIdentifier(profile, 'Okta', candidate);
  if (subject.format !== 'complex') {
    return deviceEvent && subject.format === 'opaque'
      ? { device: single(subject) }
      : { user: single(subject) };
  }
  const out: OktaEventSubject = {};
  if (subject.user) out.user = subject.user as SubjectIdentifier;
  if (subject.device && (includeDevice || deviceEvent || !out.user))
    out.device = subject.device as SubjectIdentifier;
  if (!out.user && !out.device) {
    throw new ProfileRefusalError(
      profile,
      'the complex subject has neither a user nor a device member for Okta',
    );
  }
  return out;
}

const LEVELS: Record<string, string> = { LOW: 'low', MEDIUM: 'medium', HIGH: 'high' };

/**
 * The claims of a CAEP risk-level-change as Okta's user- or device-risk-change (no event type for
 * other principals). `previousLevel` is in Okta's enum (`low` … `secure`, `none`): the connector
 * gives the level Okta holds, which may be one CAEP cannot carry; by default, the event's own
 * previous_level, and `none` (Okta's "unknown") without one. A current level outside CAEP's enum
 * stays as it is, for the catalog to refuse.
 */
export function caepRiskAsOkta(
  claims: EventClaims,
  previousLevel?: string,
): { eventType: string | undefined; claims: EventClaims } {
  const {
    principal,
    current_level: current,
    previous_level: previous,
    risk_reason: riskReason,
    ...rest
  } = claims;
  const eventType =
    principal === 'USER' ? OKTA_USER_RISK : principal === 'DEVICE' ? OKTA_DEVICE_RISK : undefined;
  const out: EventClaims = {
    ...rest,
    current_level: LEVELS[current as string] ?? current,
    // Okta requires previous_level; an unknown previous level is what Okta calls "none".
    previous_level: previousLevel ?? (previous === undefined ? 'none' : LEVELS[previous as string]),
  };
  if (
    out.reason_admin === undefined &&
    out.reason_user === undefined &&
    typeof riskReason === 'string' &&
    riskReason
  ) {
    out.reason_admin = { en: riskReason };
  }
  return { eventType, claims: out };
}

/** CAEP risk-level-change → Okta user-risk-change or device-risk-change. */
function translateRisk(claims: EventClaims): { eventType: string; claims: EventClaims } {
  const { eventType, claims: out } = caepRiskAsOkta(claims);
  if (!eventType) {
    throw new ProfileRefusalError(
      NAME,
      `Okta has risk events for USER and DEVICE principals only, not ${String(claims.principal)}`,
    );
  }
  return { eventType, claims: out };
}

/** Why a device-risk-change names no device, for its refusal. */
function noDevice(subject: SubjectIdentifier): string {
  return subject.format === 'complex'
    ? 'device-risk-change needs a device subject; the complex subject has no device member'
    : `device-risk-change needs a device subject (an opaque id); a subject in the ${subject.format} format names a user`;
}

function checkReasons(eventType: string, claims: EventClaims): void {
  for (const key of ['reason_admin', 'reason_user'] as const) {
    const reason = claims[key] as Record<string, string> | undefined;
    if (reason !== undefined && typeof reason.en !== 'string') {
      throw new ProfileRefusalError(NAME, `Okta requires an "en" entry in ${key}`);
    }
  }
  if (
    REASON_REQUIRED.has(eventType) &&
    claims.reason_admin === undefined &&
    claims.reason_user === undefined
  ) {
    throw new ProfileRefusalError(NAME, 'Okta requires reason_admin or reason_user on this event');
  }
}

function shape(input: ProfileInput, options: OktaItpOptions): ShapedEvent {
  let eventType = input.definition.uri;
  let claims = input.claims;
  if (eventType === CAEP_RISK_LEVEL_CHANGE) ({ eventType, claims } = translateRisk(claims));
  if (!(OKTA_ACCEPTED_EVENT_TYPES as readonly string[]).includes(eventType)) {
    throw new ProfileRefusalError(
      NAME,
      `Okta accepts only ${OKTA_ACCEPTED_EVENT_TYPES.map((u) => u.slice(u.lastIndexOf('/') + 1)).join(', ')} ` +
        `and caep risk-level-change (translated); not ${input.definition.shortName}`,
    );
  }
  checkReasons(eventType, claims);
  const subject = oktaEventSubject(NAME, input.subject, eventType, options.include_device);
  if (eventType === OKTA_USER_RISK && !subject.user) {
    throw new ProfileRefusalError(NAME, 'user-risk-change needs a user subject');
  }
  if (eventType === OKTA_DEVICE_RISK && !subject.device) {
    throw new ProfileRefusalError(NAME, noDevice(input.subject));
  }
  if (eventType === OKTA_IDENTIFIER_CHANGED && !subject.user) {
    throw new ProfileRefusalError(NAME, 'identifier-changed needs the old email or phone number as the user');
  }
  const event: EventClaims = {
    subject,
    ...claims,
    event_timestamp: claims.event_timestamp ?? input.occurredAt,
  };
  return {
    eventType,
    event,
    // The identifier chosen out of aliases stands for them in sub_id too.
    subId: options.top_level_sub_id ? (matchableIdentifier(input.subject) ?? input.subject) : undefined,
    audience: input.audience ?? [],
    txn: true,
  };
}

export const oktaItpProfile: TargetProfile<OktaItpOptions> = {
  name: NAME,
  description:
    'Okta Identity Threat Protection: six event types, subject inside the event as {user, device}, ' +
    'CAEP risk-level-change sent as Okta user-risk-change or device-risk-change.',
  optionsSchema: oktaItpOptionsSchema,
  accepts: [...OKTA_ACCEPTED_EVENT_TYPES, CAEP_RISK_LEVEL_CHANGE],
  apply: shape,
};
