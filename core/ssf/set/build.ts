/**
 * Builds SET claims from a typed event and a destination (RFC 8417 §2.2, SSF 1.0 §4): iss, iat,
 * jti, aud, txn, top-level sub_id and exactly one event; never sub, never exp. Everything is
 * checked here, before signing, so a SET that leaves ssf-bridge is valid for its target.
 */
import type { EventDraft } from '../../plugin-api/index.ts';
import { ConfigError } from '../../plugin-api/index.ts';
import { EventValidationError } from '../errors.ts';
import { checkEventDraft } from '../events/draft.ts';
import { eventCatalog, type EventCatalog } from '../events/catalog.ts';
import { DEFAULT_PROFILE, applyProfile } from '../profiles/index.ts';
import { defaultTxn, deterministicJti } from './jti.ts';
import type { BuiltSet, SetClaims, SetDestination } from './types.ts';

export interface BuildSetInput {
  event: EventDraft;
  /** Id of the inbound instance that emitted the event (part of the jti and default txn). */
  sourceInstanceId: string;
  destination: SetDestination;
  /** The transmitter's issuer; identical to its metadata `issuer` (SSF 1.0 §4.1.6). */
  issuer: string;
  /** Issuance time (`iat`); also the event time when the event has none. */
  now: Date;
  /** Overrides the deterministic jti (tools that sign one-off SETs). */
  jti?: string;
}

export interface BuildOptions {
  catalog?: EventCatalog;
}

function seconds(date: Date): number {
  return Math.floor(date.getTime() / 1000);
}

function checkedAudience(audience: string | string[], destination: SetDestination): string | string[] {
  const list = Array.isArray(audience) ? audience : [audience];
  if (list.length === 0 || list.some((a) => typeof a !== 'string' || a.length === 0)) {
    throw new ConfigError(`destination ${destination.id} has no SET audience; set its aud`, {
      code: 'SSF_ERR_SET_AUDIENCE',
    });
  }
  return Array.isArray(audience) && audience.length === 1 ? (audience[0] as string) : audience;
}

function requireText(value: unknown, what: string, code: string): string {
  if (typeof value !== 'string' || value.length === 0) {
    throw new ConfigError(`${what} must be a non-empty string`, { code });
  }
  return value;
}

/** Builds and checks the claims of the SET that carries `input.event` to `input.destination`. */
export function buildSet(input: BuildSetInput, options: BuildOptions = {}): BuiltSet {
  const catalog = options.catalog ?? eventCatalog;
  const { event, destination } = input;
  const issuer = requireText(input.issuer, 'the SET issuer', 'SSF_ERR_SET_ISSUER');
  const sourceRecordId = requireText(event.sourceRecordId, 'sourceRecordId', 'SSF_ERR_EVENT_SOURCE_RECORD');
  const { definition, subject, claims, occurredAt } = checkEventDraft(event, { now: input.now, catalog });

  const profileName = destination.profile ?? DEFAULT_PROFILE;
  const shaped = applyProfile(
    profileName,
    { definition, subject, claims, occurredAt, audience: destination.audience },
    destination.profileOptions,
  );
  // A profile that rewrote the event (translated type, added subject) is checked again against
  // the type it produced, so a SET never leaves invalid for its own event type.
  if (shaped.event !== claims) {
    const checked = catalog.checkEvent(shaped.eventType, shaped.event);
    if (!checked.ok) throw new EventValidationError(shaped.eventType, checked.problems);
  }

  const jti =
    input.jti ??
    deterministicJti({
      sourceInstanceId: input.sourceInstanceId,
      sourceRecordId,
      eventType: definition.uri,
      destinationId: destination.id,
    });
  const txn = shaped.txn
    ? requireText(event.txn ?? defaultTxn(input.sourceInstanceId, sourceRecordId), 'txn', 'SSF_ERR_SET_TXN')
    : undefined;
  const setClaims: SetClaims = {
    iss: issuer,
    iat: seconds(input.now),
    jti,
    aud: checkedAudience(shaped.audience, destination),
    ...(txn !== undefined ? { txn } : {}),
    ...(shaped.subId ? { sub_id: shaped.subId } : {}),
    events: { [shaped.eventType]: shaped.event },
  };
  return {
    claims: setClaims,
    jti,
    eventType: shaped.eventType,
    event: shaped.event,
    subject,
    ...(shaped.signing ? { signing: shaped.signing } : {}),
  };
}
