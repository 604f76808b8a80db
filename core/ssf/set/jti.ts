import { hash } from 'node:crypto';

/** Identifies one delivery of one event: the same inputs always give the same SET `jti`. */
export interface JtiInput {
  /** Id of the inbound instance the event came from. */
  sourceInstanceId: string;
  /** Id of the upstream record at that source. */
  sourceRecordId: string;
  /** Event type URI as the event was emitted (before any target profile translated it). */
  eventType: string;
  /** Id of the destination (outbound instance or stream). */
  destinationId: string;
}

/**
 * Formats the first 16 bytes of a SHA-256 digest as an RFC 9562 version 8 UUID (the
 * version for application-defined bits), so ids look and sort like the UUIDs receivers expect.
 */
function uuidV8(parts: readonly string[]): string {
  // JSON keeps the parts unambiguous: ["a:b","c"] and ["a","b:c"] hash differently.
  const digest = hash('sha256', JSON.stringify(parts), 'buffer');
  digest[6] = ((digest[6] as number) & 0x0f) | 0x80;
  digest[8] = ((digest[8] as number) & 0x3f) | 0x80;
  const hex = digest.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * The deterministic SET `jti` of one delivery: a UUID-shaped SHA-256 of
 * `JSON.stringify([sourceInstanceId, sourceRecordId, eventType, destinationId])`. The formula is
 * part of the stored data (outbox rows carry it), so it never changes. A redelivery after a crash or a retry carries the
 * same `jti`, so receivers can de-duplicate (RFC 8935 §2, RFC 8936 §2.4).
 */
export function deterministicJti(input: JtiInput): string {
  return uuidV8([input.sourceInstanceId, input.sourceRecordId, input.eventType, input.destinationId]);
}

/**
 * The default SET `txn`, a UUID-shaped SHA-256 of `JSON.stringify(['txn', sourceInstanceId,
 * sourceRecordId])`: shared by every SET born of one source record, whatever its event type
 * or destination (SSF 1.0 §4.1.9), and distinct across sources.
 */
export function defaultTxn(sourceInstanceId: string, sourceRecordId: string): string {
  return uuidV8(['txn', sourceInstanceId, sourceRecordId]);
}
