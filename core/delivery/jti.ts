/**
 * Deterministic identifiers. The SET `jti` depends only on (source instance, source record id,
 * event type, destination), so every redelivery of the same event to the same destination —
 * after a retry, a crash or a dead-letter replay — carries the same jti and receivers can
 * de-duplicate. The SET codec in core/ssf uses this same function.
 */
import { createHash } from 'node:crypto';

/** SHA-256 of the JSON array of the parts: unambiguous whatever characters the parts hold. */
function digest(parts: readonly string[]): Buffer {
  return createHash('sha256').update(JSON.stringify(parts)).digest();
}

/** Formats the first 16 bytes as an RFC 9562 version 8 (custom) UUID. */
function uuidShape(bytes: Buffer): string {
  const b = Buffer.from(bytes.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = b.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * The SET jti of one event for one destination: a UUID-shaped SHA-256 of
 * `JSON.stringify([instanceId, sourceRecordId, eventTypeUri, destinationId])`.
 */
export function deliveryJti(
  instanceId: string,
  sourceRecordId: string,
  eventTypeUri: string,
  destinationId: string,
): string {
  return uuidShape(digest([instanceId, sourceRecordId, eventTypeUri, destinationId]));
}

/** The SET `txn` when the source gives none: every SET born of one source record shares it. */
export function defaultTxn(instanceId: string, sourceRecordId: string): string {
  return uuidShape(digest(['txn', instanceId, sourceRecordId]));
}

/**
 * Deliveries with equal ordering keys go out one at a time in acceptance order: one key per
 * (destination, canonical subject). Hashed so the index stays compact whatever the subject.
 */
export function orderingKey(destinationId: string, subjectKey: string): string {
  return digest(['order', destinationId, subjectKey]).toString('base64url');
}

/** The dedupe key of an event: (instance, source record id, event type URI). */
export function dedupeKey(instanceId: string, sourceRecordId: string, eventTypeUri: string): string {
  return digest(['dedupe', instanceId, sourceRecordId, eventTypeUri]).toString('base64url');
}
