/**
 * How events are adjusted for Okta before their SET is built (the okta-itp profile then shapes
 * them): RISC types Okta lacks are translated or refused per policy, CAEP risk-level-change
 * becomes Okta's own risk event with previous_level the last level sent for the subject, a reason
 * is supplied where Okta requires one, and device identifiers are left out unless the operator
 * opts in.
 */
import {
  caepRiskAsOkta,
  matchableIdentifier,
  type EventDraft,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import {
  ACCOUNT_DISABLED,
  CAEP,
  CREDENTIAL_COMPROMISE,
  OKTA,
  RISK_LEVEL_CHANGE,
  SESSION_REVOKED,
  isType,
  refuse,
  userSubject,
} from '../_shared/outbound-common.ts';
import type { OktaItpConfig } from './config.ts';

export const OKTA_USER_RISK = `${OKTA}user-risk-change`;
export const OKTA_DEVICE_RISK = `${OKTA}device-risk-change`;
const DEVICE_COMPLIANCE = `${CAEP}device-compliance-change`;
/** Types whose reason Okta requires; Okta's own types already require one in the catalog. */
const NEEDS_REASON = [SESSION_REVOKED, DEVICE_COMPLIANCE, RISK_LEVEL_CHANGE];
/**
 * Okta's risk levels as the level checkpoints hold them (uppercase, as they always have): CAEP's
 * three, and Okta's own `secure` and `none`, which Okta's native risk events can set.
 */
const OKTA_LEVELS = ['LOW', 'MEDIUM', 'HIGH', 'SECURE', 'NONE'];

export type OktaPolicy = Pick<
  OktaItpConfig,
  'include_device' | 'account_disabled' | 'credential_compromise' | 'default_reason'
>;

const NAME = 'okta-itp';

function pick(claims: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => claims[k] !== undefined).map((k) => [k, claims[k]]));
}

/** RISC types Okta has no event for, turned into ones it has (or refused), per policy. */
export function translateForOkta(draft: EventDraft, policy: OktaPolicy): EventDraft {
  const claims = draft.claims ?? {};
  if (isType(draft.type, ACCOUNT_DISABLED)) {
    if (policy.account_disabled === 'refuse') {
      throw refuse(NAME, 'Okta has no account-disabled event and account_disabled is refuse');
    }
    const why = typeof claims.reason === 'string' ? ` (${claims.reason})` : '';
    return {
      ...draft,
      type: SESSION_REVOKED,
      claims: {
        initiating_entity: 'admin',
        reason_admin: { en: `The account was disabled${why}` },
        ...pick(claims, ['event_timestamp', 'initiating_entity', 'reason_admin', 'reason_user']),
      },
    };
  }
  if (isType(draft.type, CREDENTIAL_COMPROMISE)) {
    if (policy.credential_compromise === 'refuse') {
      throw refuse(NAME, 'Okta has no credential-compromise event and credential_compromise is refuse');
    }
    return {
      ...draft,
      type: RISK_LEVEL_CHANGE,
      claims: {
        principal: 'USER',
        current_level: 'HIGH',
        risk_reason: `credential compromised (${String(claims.credential_type)})`,
        ...pick(claims, ['event_timestamp', 'reason_admin', 'reason_user']),
      },
    };
  }
  return draft;
}

/** Whose risk level a risk event sets: the user or the device, with that member's subject. */
export function riskSubject(
  draft: EventDraft,
): { kind: 'user' | 'device'; subject: SubjectIdentifier } | undefined {
  const claims = draft.claims ?? {};
  const kind = isType(draft.type, OKTA_DEVICE_RISK)
    ? 'device'
    : isType(draft.type, OKTA_USER_RISK)
      ? 'user'
      : isType(draft.type, RISK_LEVEL_CHANGE) &&
          (claims.principal === 'USER' || claims.principal === 'DEVICE')
        ? claims.principal === 'USER'
          ? 'user'
          : 'device'
        : undefined;
  if (!kind) return undefined;
  // A simple subject names a device only as an opaque id, as the okta-itp profile reads it.
  const member =
    draft.subject.format === 'complex'
      ? (draft.subject[kind] as SubjectIdentifier | undefined)
      : kind === 'user'
        ? userSubject(draft.subject)
        : draft.subject.format === 'opaque'
          ? draft.subject
          : undefined;
  // The identifier the okta-itp profile sends (an aliases subject's email): the level Okta holds
  // is remembered under it (connector.ts), so it must be looked up under it too.
  const subject = member && matchableIdentifier(member);
  return subject ? { kind, subject } : undefined;
}

/** A stable text for a subject: keys sorted, email addresses compared case-insensitively. */
export function subjectText(kind: string, subject: SubjectIdentifier): string {
  const normal = Object.fromEntries(
    Object.entries(subject)
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([k, v]) => [k, k === 'email' && typeof v === 'string' ? v.toLowerCase() : v]),
  );
  return `${kind}:${JSON.stringify(normal)}`;
}

function isDeviceEvent(draft: EventDraft): boolean {
  return riskSubject(draft)?.kind === 'device';
}

const DEVICE_ONLY = 'the event names only a device, and include_device is off; Okta would get no subject';

/** Drops the device member unless the operator opted in, or the event is about the device. */
function withoutDevice(draft: EventDraft, policy: OktaPolicy): EventDraft {
  const subject = draft.subject;
  if (policy.include_device || isDeviceEvent(draft)) return draft;
  // The okta-itp profile sends a simple opaque subject of a device-compliance-change as the
  // device member: a device id, with no user.
  if (subject.format === 'opaque' && isType(draft.type, DEVICE_COMPLIANCE)) throw refuse(NAME, DEVICE_ONLY);
  if (subject.format !== 'complex' || !subject.device) return draft;
  const { device: _device, ...rest } = subject;
  if (!rest.user) throw refuse(NAME, DEVICE_ONLY);
  return { ...draft, subject: rest as SubjectIdentifier };
}

function hasReason(claims: Record<string, unknown>): boolean {
  return claims.reason_admin !== undefined || claims.reason_user !== undefined;
}

function nonEmpty(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0;
}

/**
 * Okta requires an `en` entry in every reason map (vendor-formats §3.1): a reason given only in
 * other languages keeps them, and gets `fallback` as its `en`.
 */
function withEnglishReasons(claims: Record<string, unknown>, fallback: string): Record<string, unknown> {
  const out = { ...claims };
  for (const key of ['reason_admin', 'reason_user']) {
    const reason = out[key];
    if (typeof reason === 'object' && reason !== null && !nonEmpty((reason as { en?: unknown }).en)) {
      out[key] = { ...reason, en: fallback };
    }
  }
  return out;
}

/**
 * A CAEP risk-level-change as Okta's own user- or device-risk-change, with previous_level the
 * level Okta holds. Translated here rather than left to the profile because that level may be
 * Okta's `secure` or `none`, which CAEP's LOW/MEDIUM/HIGH cannot carry. Other principals are left
 * as they are: the profile refuses them with its reason.
 */
function asOktaRisk(draft: EventDraft, lastLevel: string | undefined): EventDraft {
  // Okta requires previous_level; one never sent (or lost) is what Okta calls "none".
  const previous = lastLevel && OKTA_LEVELS.includes(lastLevel) ? lastLevel.toLowerCase() : 'none';
  const { eventType, claims } = caepRiskAsOkta(draft.claims ?? {}, previous);
  return eventType ? { ...draft, type: eventType, claims } : draft;
}

/**
 * The event as it goes to Okta. `lastLevel` is the level (LOW, MEDIUM, HIGH, SECURE, NONE) last
 * sent to this org for the risk event's subject: it becomes previous_level; without one, `none`,
 * Okta's "unknown".
 */
export function prepareForOkta(
  draft: EventDraft,
  policy: OktaPolicy,
  lastLevel: string | undefined,
): EventDraft {
  const claims = withEnglishReasons(draft.claims ?? {}, policy.default_reason);
  const needsReason = NEEDS_REASON.some((uri) => isType(draft.type, uri));
  const riskReason = isType(draft.type, RISK_LEVEL_CHANGE) && nonEmpty(claims.risk_reason);
  if (needsReason && !hasReason(claims) && !riskReason) claims.reason_admin = { en: policy.default_reason };
  const withClaims = { ...draft, claims };
  const prepared = isType(draft.type, RISK_LEVEL_CHANGE) ? asOktaRisk(withClaims, lastLevel) : withClaims;
  return withoutDevice(prepared, policy);
}

/** The level to remember after Okta accepted a risk SET: any of Okta's, `secure` and `none` too. */
export function levelSent(event: Record<string, unknown>): string | undefined {
  const level = typeof event.current_level === 'string' ? event.current_level.toUpperCase() : undefined;
  return level && OKTA_LEVELS.includes(level) ? level : undefined;
}
