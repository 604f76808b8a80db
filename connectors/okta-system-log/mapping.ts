import {
  isEmailAddress,
  PermanentError,
  z,
  type EventDraft,
  type MappingResult,
} from '../../core/plugin-api/index.ts';
import type { OktaSystemLogState } from './config.ts';
import {
  changedIdentifiers,
  forgetBeyond,
  forgetUser,
  PROFILE_UPDATE,
  rememberLogin,
} from './identifiers.ts';

const actorSchema = z.looseObject({
  id: z.string().min(1),
  type: z.string().min(1),
  alternateId: z.string().nullish(),
});

/** One System Log event. The fields the mapping reads are required; others are tolerated. */
export const logEventSchema = z.looseObject({
  uuid: z.string().min(1),
  published: z.iso.datetime({ offset: true }),
  eventType: z.string().min(1),
  displayMessage: z.string().nullish(),
  actor: actorSchema,
  target: z.array(actorSchema).nullish(),
  outcome: z.looseObject({ result: z.string().min(1) }).nullish(),
  debugContext: z.looseObject({ debugData: z.record(z.string(), z.unknown()).nullish() }).nullish(),
});

export type LogEvent = z.output<typeof logEventSchema>;
type Entity = z.output<typeof actorSchema>;

const ACCOUNT: Record<string, 'risc.account-disabled' | 'risc.account-enabled' | 'risc.account-purged'> = {
  'user.lifecycle.deactivate': 'risc.account-disabled',
  'user.lifecycle.suspend': 'risc.account-disabled',
  'user.lifecycle.activate': 'risc.account-enabled',
  'user.lifecycle.reactivate': 'risc.account-enabled',
  'user.lifecycle.unsuspend': 'risc.account-enabled',
  'user.lifecycle.delete.completed': 'risc.account-purged',
};

/** Event types with a Shared Signals counterpart that are left out on purpose, and why. */
const LEFT_OUT: Record<string, string> = {
  // Okta logs both steps of one deletion: one deletion, one account-purged, once it is done.
  'user.lifecycle.delete.initiated':
    'a deletion is emitted once, as account-purged, when Okta logs user.lifecycle.delete.completed',
};

const PASSWORD_CHANGES = new Set(['user.account.update_password', 'user.account.reset_password']);

/** Factor lifecycle → CAEP change_type, as Okta's own transmitter maps them. */
const FACTOR_CHANGES: Record<string, 'create' | 'delete' | 'revoke' | 'update'> = {
  'user.mfa.factor.activate': 'create',
  'user.mfa.factor.deactivate': 'delete',
  'user.mfa.factor.reset_all': 'delete',
  'user.mfa.factor.suspend': 'revoke',
  'user.mfa.factor.unsuspend': 'update',
  'user.mfa.factor.update': 'update',
};

const RISK_EVENTS = new Set(['security.threat.detected', 'user.risk.change', 'user.risk.detect']);

/** A user signing out of Okta, and an administrator clearing a user's sessions. */
const SIGN_OUTS = new Set(['user.session.end', 'user.session.clear']);

export interface MappingOptions {
  orgUrl: string;
  /** Emit caep.session-revoked for sign-outs and cleared sessions (SIGN_OUTS). */
  signOuts: boolean;
  /** Track logins and emails for RISC identifier-changed (identifier_changes). */
  identifierChanges?: boolean;
  /** How many users' identifiers are remembered (identifier_memory). */
  identifierMemory?: number;
}

export function mappingOptions(config: {
  org_url: string;
  sign_outs: boolean;
  identifier_changes: boolean;
  identifier_memory: number;
}): MappingOptions {
  return {
    orgUrl: config.org_url,
    signOuts: config.sign_outs,
    identifierChanges: config.identifier_changes,
    identifierMemory: config.identifier_memory,
  };
}

/** Outcomes that mean an action (a lifecycle, credential or session change) did not happen. */
const NOT_DONE = new Set(['FAILURE', 'DENY', 'SKIPPED', 'CHALLENGE', 'UNKNOWN']);

/**
 * Whether the event's outcome says nothing changed. A detection's outcome is what Okta did to
 * the request it detected a threat in (DENY when ThreatInsight blocks it), not whether the
 * detection happened: it never means nothing changed.
 */
function actionNotDone(eventType: string, result: string | undefined): boolean {
  return result !== undefined && NOT_DONE.has(result) && !RISK_EVENTS.has(eventType);
}

/**
 * Okta's id for a user it could not identify, e.g. the actor of a request ThreatInsight flagged
 * before anyone signed in: no account to name.
 */
const UNKNOWN_ID = 'unknown';

/**
 * Maps one System Log event. The affected user is the `User` target (an administrator acted on
 * them) or, without one, the actor (self-service); subjects are emails when Okta's login is one.
 */
export function mapLogEvent(
  record: unknown,
  options: MappingOptions,
  state: OktaSystemLogState = {},
): MappingResult<OktaSystemLogState> {
  const result = mapEvent(record, options, state);
  // Only identifier_changes has state to carry from record to record.
  return options.identifierChanges ? ({ ...result, state } as MappingResult<OktaSystemLogState>) : result;
}

function mapEvent(
  record: unknown,
  options: MappingOptions,
  state: OktaSystemLogState,
): MappingResult<OktaSystemLogState> {
  const { orgUrl } = options;
  const parsed = logEventSchema.safeParse(record);
  if (!parsed.success) {
    throw new PermanentError(`malformed System Log event: ${z.prettifyError(parsed.error)}`, {
      code: 'SSF_ERR_OKTA_SYSTEM_LOG_EVENT',
    });
  }
  const event = parsed.data;
  const type = event.eventType;
  if (type === 'security.events.provider.receive_event') {
    // Okta logs the SETs it receives: re-emitting them would echo our own signals back.
    return { events: [], ignored: 'a Shared Signals event Okta received; never re-emitted' };
  }
  const left = LEFT_OUT[type];
  if (left !== undefined) return { events: [], ignored: `${type}: ${left}` };
  const result = event.outcome?.result;
  if (actionNotDone(type, result))
    return { events: [], ignored: `${type} with outcome ${result}: nothing changed` };
  const user = affectedUser(event);
  if (options.identifierChanges) {
    const awaited = trackIdentifiers(event, user, state, options.identifierMemory ?? 5000);
    if (awaited !== undefined) return { events: [], ignored: awaited };
  } else if (type === PROFILE_UPDATE) {
    return { events: [], ignored: `${type}: identifier changes are not emitted (identifier_changes: false)` };
  }
  const base = (): Omit<EventDraft, 'type'> => ({
    subject: subjectOf(user!, orgUrl),
    sourceRecordId: event.uuid,
    occurredAt: event.published,
  });
  const signOut = SIGN_OUTS.has(type);
  if (signOut && !options.signOuts)
    return { events: [], ignored: `${type}: sign-outs are not emitted (sign_outs: false)` };
  // Sessions Okta ended on its own or for a connected app (Universal Logout, a received
  // Shared Signal) have no User actor: emitting them would echo the bridge's own actions.
  if (signOut && event.actor.type !== 'User') {
    return { events: [], ignored: `${type} by ${event.actor.type}, not by a person; not re-emitted` };
  }
  const needsUser =
    ACCOUNT[type] ??
    (signOut || PASSWORD_CHANGES.has(type) || type in FACTOR_CHANGES || RISK_EVENTS.has(type));
  if (!needsUser) return { events: [], ignored: `event type ${type} has no Shared Signals equivalent` };
  if (!user) return { events: [], ignored: noUser(event) };

  const initiating = user.id === event.actor.id ? 'user' : 'admin';
  const sessionRevoked = (): EventDraft => ({
    ...base(),
    type: 'caep.session-revoked',
    claims: { initiating_entity: initiating },
  });
  const account = ACCOUNT[type];
  // A deactivated user's sessions end with the account, as Okta's own transmitter says.
  if (type === 'user.lifecycle.deactivate')
    return { events: [{ ...base(), type: account! }, sessionRevoked()] };
  if (account) return { events: [{ ...base(), type: account }] };
  if (signOut) return { events: [sessionRevoked()] };
  if (PASSWORD_CHANGES.has(type)) {
    return {
      events: [
        {
          ...base(),
          type: 'caep.credential-change',
          claims: { credential_type: 'password', change_type: 'update', initiating_entity: initiating },
        },
      ],
    };
  }
  const factorChange = FACTOR_CHANGES[type];
  if (factorChange) {
    return {
      events: [
        {
          ...base(),
          type: 'caep.credential-change',
          claims: {
            credential_type: credentialType(event),
            change_type: factorChange,
            initiating_entity: initiating,
          },
        },
      ],
    };
  }
  const risk = riskLevels(event);
  if (!risk) return { events: [], ignored: `${type} carries no risk level` };
  return {
    events: [
      {
        ...base(),
        type: 'caep.risk-level-change',
        claims: {
          principal: 'USER',
          current_level: risk.current,
          ...(risk.previous ? { previous_level: risk.previous } : {}),
          ...(risk.reason ? { risk_reason: risk.reason } : {}),
        },
        severity: risk.current === 'HIGH' ? 'high' : risk.current === 'MEDIUM' ? 'medium' : 'low',
      },
    ],
  };
}

/**
 * Remembers the login each User the event names goes by (alternateId), and for a profile update
 * that may have changed a login or email, notes it as awaiting the user's profile: the reason it
 * maps to nothing yet. An update_profile's own alternateId is not remembered: Okta does not say
 * whether it is the login from before the change or after it.
 */
function trackIdentifiers(
  event: LogEvent,
  user: Entity | undefined,
  state: OktaSystemLogState,
  limit: number,
): string | undefined {
  const type = event.eventType;
  if (type === 'user.lifecycle.delete.completed') {
    if (user) forgetUser(state, user.id);
    return undefined;
  }
  if (type !== PROFILE_UPDATE) {
    for (const entity of [event.actor, ...(event.target ?? [])]) {
      if (!isKnownUser(entity) || !entity.alternateId) continue;
      rememberLogin(state, entity.id, entity.alternateId, event.published);
    }
    if (state.users) forgetBeyond(state.users, limit);
    return undefined;
  }
  // An administrator's change names the user as target; a user's own change, as actor.
  const target = user;
  if (!target) return noUser(event);
  const changed = changedIdentifiers(debugData(event));
  if (changed !== undefined && changed.length === 0)
    return `${type} changed neither the login nor the email of Okta user ${target.id}`;
  const awaiting = (state.awaiting ??= {});
  awaiting[target.id] ??= { uuid: event.uuid, published: event.published };
  return `${type} of Okta user ${target.id}: awaiting the user's profile (Okta logs which attributes changed, not their values)`;
}

function isKnownUser(entity: Entity): boolean {
  return entity.type === 'User' && entity.id !== UNKNOWN_ID;
}

/** The `User` target, or else a `User` actor; never the user Okta could not identify. */
function affectedUser(event: LogEvent): Entity | undefined {
  const target = event.target?.find(isKnownUser);
  if (target) return target;
  return isKnownUser(event.actor) ? event.actor : undefined;
}

/** Why an event that would need a user names none. */
function noUser(event: LogEvent): string {
  const unknown = [event.actor, ...(event.target ?? [])].some(
    (entity) => entity.type === 'User' && entity.id === UNKNOWN_ID,
  );
  return unknown
    ? `${event.eventType} names a user Okta could not identify (id "unknown", e.g. a request before sign-in); no account to name`
    : `${event.eventType} names no user (neither a User target nor a User actor)`;
}

function subjectOf(user: Entity, orgUrl: string): EventDraft['subject'] {
  const login = user.alternateId ?? '';
  return isEmailAddress(login)
    ? { format: 'email', email: login.toLowerCase() }
    : { format: 'iss_sub', iss: orgUrl.replace(/\/+$/, ''), sub: user.id };
}

function debugData(event: LogEvent): Record<string, unknown> {
  return event.debugContext?.debugData ?? {};
}

/** CAEP credential_type of the factor Okta names in debugData.factor (e.g. SMS_FACTOR). */
function credentialType(event: LogEvent): string {
  const factor = String(debugData(event).factor ?? '').toUpperCase();
  if (factor.includes('SMS')) return 'phone-sms';
  if (factor.includes('CALL') || factor.includes('VOICE')) return 'phone-voice';
  if (factor.includes('U2F')) return 'fido-u2f';
  if (factor.includes('WEBAUTHN') || factor.includes('FIDO')) return 'fido2-roaming';
  if (factor.includes('PASSWORD')) return 'password';
  return 'app';
}

const LEVELS = ['LOW', 'MEDIUM', 'HIGH'] as const;
type Level = (typeof LEVELS)[number];

function level(value: string | undefined): Level | undefined {
  const upper = value?.toUpperCase();
  return LEVELS.find((l) => l === upper);
}

/**
 * Risk levels from debugData.risk, which Okta writes as `{level=HIGH, previousLevel=LOW, …}`.
 * A detected threat without a level counts as HIGH.
 */
function riskLevels(event: LogEvent): { current: Level; previous?: Level; reason?: string } | undefined {
  const data = debugData(event);
  const risk = typeof data.risk === 'string' ? data.risk : '';
  const field = (name: string) => new RegExp(`(?:^|[{,\\s])${name}=([^,}]+)`).exec(risk)?.[1]?.trim();
  const current =
    level(field('level')) ?? (event.eventType === 'security.threat.detected' ? 'HIGH' : undefined);
  if (!current) return undefined;
  const previous = level(field('previousLevel'));
  const reason = field('detectionName') ?? (event.displayMessage || undefined);
  return { current, ...(previous ? { previous } : {}), ...(reason ? { reason } : {}) };
}
