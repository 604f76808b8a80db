import {
  legacyEventSubject,
  relayedEventType,
  type EventDraft,
  type Logger,
  type MappingResult,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';

export const SSF_VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
export const SSF_STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';

/** Prefix of the `txn` of every event this connector emits. */
export const RELAY_TXN_PREFIX = 'ssf-relay;';

/** A SET that passed verification, as the mapping needs it. */
export interface ReceivedSet {
  claims: Record<string, unknown>;
  jti: string;
  eventType: string;
  event: Record<string, unknown>;
  subject: SubjectIdentifier;
}

/**
 * The provenance written into the `txn` of a re-emitted event:
 * `ssf-relay;via=<this bridge's issuer>;iss=<upstream issuer>;jti=<upstream jti>`, each value
 * URI-encoded. A `txn` the upstream SET carried is kept after `;txn=`.
 */
export function relayTxn(bridgeIssuer: string, set: ReceivedSet): string {
  const parts = [
    `via=${encodeURIComponent(bridgeIssuer)}`,
    `iss=${encodeURIComponent(String(set.claims.iss))}`,
    `jti=${encodeURIComponent(set.jti)}`,
  ];
  if (typeof set.claims.txn === 'string') parts.push(`txn=${encodeURIComponent(set.claims.txn)}`);
  return RELAY_TXN_PREFIX + parts.join(';');
}

/**
 * The issuers a relayed `txn` names: every bridge it passed through (`via`) and every issuer it
 * was received from (`iss`), from the latest hop to the first.
 */
export function relayChain(txn: unknown): { via: string[]; iss: string[] } {
  const chain = { via: [] as string[], iss: [] as string[] };
  if (typeof txn !== 'string') return chain;
  let rest = txn;
  // Each hop's txn nests the previous one, URI-encoded once more.
  for (let depth = 0; depth < 16 && rest.startsWith(RELAY_TXN_PREFIX); depth += 1) {
    const fields = new Map<string, string>();
    for (const part of rest.slice(RELAY_TXN_PREFIX.length).split(';')) {
      const eq = part.indexOf('=');
      if (eq > 0) fields.set(part.slice(0, eq), part.slice(eq + 1));
    }
    const via = fields.get('via');
    if (via !== undefined) chain.via.push(safeDecode(via));
    const iss = fields.get('iss');
    if (iss !== undefined) chain.iss.push(safeDecode(iss));
    const inner = fields.get('txn');
    if (inner === undefined) break;
    rest = safeDecode(inner);
  }
  return chain;
}

/** The bridges a relayed `txn` says the event already passed through. */
export function relayedVia(txn: unknown): string[] {
  return relayChain(txn).via;
}

function safeDecode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/**
 * Why a received SET must not be emitted again, or undefined: it was issued by this bridge, or
 * this bridge relayed it before (echo suppression).
 */
export function echoReason(bridgeIssuer: string, set: ReceivedSet): string | undefined {
  if (set.claims.iss === bridgeIssuer) return `issued by this bridge (${bridgeIssuer})`;
  const chain = relayChain(set.claims.txn);
  if (chain.via.includes(bridgeIssuer)) return `already relayed by this bridge (${bridgeIssuer})`;
  if (chain.iss.includes(bridgeIssuer))
    return `first issued by this bridge (${bridgeIssuer}) and relayed back`;
  return undefined;
}

/**
 * How far an event_timestamp may lie after the SET's iat: the event happened before the SET about
 * it was issued, give or take the clocks of the systems that wrote the two.
 */
export const EVENT_TIME_SKEW_S = 300;

/** Seconds since the epoch up to the year 5138, or undefined (milliseconds sent by mistake, say). */
function seconds(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value < 1e11
    ? value
    : undefined;
}

/**
 * When the event happened: its event_timestamp, else the SET's iat. A time that is not seconds
 * since the epoch up to the year 5138 (a transmitter sending milliseconds, say) is not believed:
 * it would hold the event for millennia, or be no date at all. Nor is an event_timestamp more
 * than EVENT_TIME_SKEW_S after the iat (after now, without an iat): an event does not happen
 * after the SET reporting it, and a far-future time would hold the relayed event
 * (delivery.future_events) until then. That one is logged at warn and the iat taken.
 */
function occurredAt(set: ReceivedSet, logger?: Pick<Logger, 'warn'>): string | undefined {
  const iat = seconds(set.claims.iat);
  let at = seconds(set.event.event_timestamp);
  const reference = iat ?? Date.now() / 1000;
  if (at !== undefined && at > reference + EVENT_TIME_SKEW_S) {
    logger?.warn(
      { jti: set.jti, eventType: set.eventType, event_timestamp: at, iat: set.claims.iat },
      `the event_timestamp is ${Math.round(at - reference)} s after ${iat === undefined ? 'now' : "the SET's iat"}; it is not believed, the event is taken as having happened at the iat`,
    );
    at = undefined;
  }
  const chosen = at ?? iat;
  return chosen === undefined ? undefined : new Date(chosen * 1000).toISOString();
}

/**
 * Maps a verified SET to the event emitted into the pipeline: the same event type (a deprecated
 * one as the type that replaces it), subject and claims, the upstream jti as sourceRecordId, and
 * the provenance in txn. Control events (verification, stream-updated) and echoes are ignored.
 */
export function mapSet(set: ReceivedSet, bridgeIssuer: string, logger?: Pick<Logger, 'warn'>): MappingResult {
  if (set.eventType === SSF_VERIFICATION || set.eventType === SSF_STREAM_UPDATED) {
    return { events: [], ignored: `stream control event ${set.eventType}` };
  }
  const echo = echoReason(bridgeIssuer, set);
  if (echo) return { events: [], ignored: `echo suppressed: ${echo}` };
  const at = occurredAt(set, logger);
  // The subject travels beside the claims, and each destination's profile places it as its
  // receiver expects. A pre-SSF 1.0 SET named it only inside its event (set.subject came from
  // there); an SSF 1.0 SET may name it in both places (SSF 1.0 §3.1.1), and sub_id is the one.
  const { subject: _inEvent, ...withoutSubject } = set.event;
  const draft: EventDraft = {
    type: relayedEventType(set.eventType),
    subject: set.subject,
    claims: withoutSubject,
    sourceRecordId: set.jti,
    txn: relayTxn(bridgeIssuer, set),
    ...(at ? { occurredAt: at } : {}),
  };
  return { events: [draft] };
}

/**
 * Decodes a compact SET's payload without verifying it, for dry runs of the mapping; with
 * `legacySubject`, a SET without sub_id names its subject inside the event.
 */
export function decodeUnverified(token: string, legacySubject = false): ReceivedSet | undefined {
  const parts = token.trim().split('.');
  if (parts.length !== 3) return undefined;
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(parts[1] as string, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
  } catch {
    return undefined;
  }
  const events = claims.events;
  if (!events || typeof events !== 'object') return undefined;
  const [eventType, event] = Object.entries(events as Record<string, unknown>)[0] ?? [];
  if (!eventType || !event || typeof event !== 'object') return undefined;
  const subject =
    claims.sub_id === undefined && legacySubject
      ? legacyEventSubject(event as Record<string, unknown>)
      : claims.sub_id;
  if (!subject || typeof subject !== 'object') return undefined;
  if (typeof claims.jti !== 'string') return undefined;
  return {
    claims,
    jti: claims.jti,
    eventType,
    event: event as Record<string, unknown>,
    subject: subject as SubjectIdentifier,
  };
}

/**
 * For dry runs (`ssf-bridge simulate`), where signatures are not checked: the RFC 8935 refusal a
 * SET's issuer or audience would get from this configuration, or undefined.
 */
export function claimRefusal(
  set: ReceivedSet,
  config: { issuer: string; audience?: string | readonly string[] | undefined },
): string | undefined {
  if (set.claims.iss !== config.issuer) {
    return `invalid_issuer: the SET's iss ${JSON.stringify(set.claims.iss)} is not ${config.issuer}`;
  }
  if (config.audience !== undefined) {
    const wanted = typeof config.audience === 'string' ? [config.audience] : config.audience;
    const aud = set.claims.aud;
    const got = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!got.some((a) => wanted.includes(a as string))) {
      return `invalid_audience: the SET's aud ${JSON.stringify(aud)} names none of ${wanted.join(', ')}`;
    }
  }
  return undefined;
}
