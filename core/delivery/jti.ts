/**
 * Deterministic identifiers. The SET `jti` depends only on (source instance, source record id,
 * event type, destination), so every redelivery of the same event to the same destination —
 * after a retry, a crash or a dead-letter replay — carries the same jti and receivers can
 * de-duplicate.
 */
import { hash } from 'node:crypto';
import { defaultTxn, deterministicJti } from '../ssf/set/jti.ts';

/** SHA-256 of the JSON array of the parts: unambiguous whatever characters the parts hold. */
function digest(parts: readonly string[]): Buffer {
  // One-shot: no Hash object per digest (several are made per accepted event).
  return hash('sha256', JSON.stringify(parts), 'buffer');
}

/**
 * The SET jti of one event for one destination: core/ssf's deterministic jti (a UUID-shaped
 * SHA-256 of `JSON.stringify([instanceId, sourceRecordId, eventTypeUri, destinationId])`), so the
 * outbox row and the SET it becomes always agree.
 */
export function deliveryJti(
  instanceId: string,
  sourceRecordId: string,
  eventTypeUri: string,
  destinationId: string,
): string {
  return deterministicJti({
    sourceInstanceId: instanceId,
    sourceRecordId,
    eventType: eventTypeUri,
    destinationId,
  });
}

export { defaultTxn };

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
