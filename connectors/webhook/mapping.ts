/** The webhook contract: the JSON body and its signature (see README.md for receivers). */
import { createHmac } from 'node:crypto';
import type { SignedSet } from '../../core/plugin-api/index.ts';

export interface WebhookPayload {
  /** The SET jti: stable across retries, so receivers can drop duplicates. */
  id: string;
  /** Event type URI. */
  type: string;
  /** When the event happened (RFC 3339). */
  occurred_at: string;
  subject: Record<string, unknown>;
  /** The event claims, as in the SET. */
  event: Record<string, unknown>;
  /**
   * Where the event came from: this bridge (issuer, txn), and, for events of the bridge's own
   * sources, the inbound instance, its connector and the source's record id (`ref`).
   */
  source: { issuer: string; txn?: string; instance?: string; connector?: string; ref?: string };
  /** The signed SET, when include_set is on. */
  set?: string;
}

/** The last second a NumericDate can name as a date (9999-12-31T23:59:59Z). */
const MAX_SECONDS = 253_402_300_799;

function isSeconds(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_SECONDS;
}

/**
 * The event's `event_timestamp`, else the SET's `iat`. Event types the catalog does not bound
 * (RISC's, a source's own) may carry a timestamp no date can hold (milliseconds by mistake): that
 * one is passed over, since it would fail every attempt of the delivery.
 */
function occurredAt(set: SignedSet): string {
  const seconds = isSeconds(set.event.event_timestamp) ? set.event.event_timestamp : Number(set.claims.iat);
  return new Date(seconds * 1000).toISOString();
}

export function webhookPayload(set: SignedSet, includeSet: boolean): WebhookPayload {
  const txn = typeof set.claims.txn === 'string' ? set.claims.txn : undefined;
  return {
    id: set.jti,
    type: set.eventType,
    occurred_at: occurredAt(set),
    subject: set.subject,
    event: set.event,
    source: {
      issuer: String(set.claims.iss),
      ...(txn ? { txn } : {}),
      ...(set.source
        ? {
            instance: set.source.instance,
            ...(set.source.connector ? { connector: set.source.connector } : {}),
            ref: set.source.record,
          }
        : {}),
    },
    ...(includeSet ? { set: set.jwt } : {}),
  };
}

/** `sha256=` + hex HMAC-SHA256 over `<timestamp>.<body>`: the timestamp is signed with the body, so a captured request cannot be replayed later with a new timestamp. */
export function signature(secret: string, timestamp: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')}`;
}
