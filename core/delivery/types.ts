import type { DeliveryReceipt, SignedSet, SigningTarget } from '../plugin-api/types.ts';
import type { LastError, StoredEvent } from '../storage/types.ts';
import type { DestinationPolicyOverride } from './config.ts';
import type { CircuitState } from './breaker.ts';
import { RetryableError } from '../plugin-api/errors.ts';

/**
 * Thrown by a destination that holds its deliveries for now (a stream its receiver or an
 * operator paused, seen by this instance only at delivery): the SET was not offered, so the
 * attempt is not counted and says nothing of the destination's health. The row is handed back
 * and the destination is not tried for `retryAfterMs` (1 s when absent).
 */
export class DestinationHeldError extends RetryableError {}

/** What the signer needs to know about a destination. */
export interface DestinationInfo {
  /** Outbound instance id, or `stream:<stream id>` for an SSF stream. */
  id: string;
  kind: 'outbound' | 'stream';
  target: SigningTarget;
}

/**
 * Where SETs go: an outbound connector instance or an SSF stream (push, or the stream's poll
 * queue). `deliver` resolves when the target accepted the SET and throws classified errors.
 */
export interface Destination extends DestinationInfo {
  deliver(set: SignedSet, signal: AbortSignal): Promise<DeliveryReceipt>;
  /** While true, the destination's deliveries are held in the outbox (a paused stream). */
  isPaused?(): boolean | Promise<boolean>;
  /** Overrides of the delivery settings for this destination. */
  policy?: DestinationPolicyOverride;
}

/** Builds and signs the SET of one event for one destination. */
export interface SetSigner {
  /**
   * Must be deterministic apart from the signature: the same event, destination and jti give
   * the same claims, so a redelivery is the same SET.
   */
  sign(
    event: StoredEvent,
    destination: DestinationInfo,
    delivery: { jti: string; attempt: number },
  ): Promise<SignedSet>;
}

export interface DeliveryNotice {
  destinationId: string;
  jti: string;
  eventId: string;
  eventType: string;
  /** Attempts including this one. */
  attempts: number;
}

/** Hooks for metrics, status and logs; every method optional. */
export interface DeliveryObserver {
  delivered?(notice: DeliveryNotice & { durationMs: number; sinceAcceptedMs: number; status?: number }): void;
  retrying?(notice: DeliveryNotice & { error: LastError; dueAt: Date }): void;
  deadLettered?(notice: DeliveryNotice & { error: LastError; reason: DeadLetterReason }): void;
  /** The destination refused our credentials (HTTP 401/403 or equivalent). */
  authFailure?(destinationId: string, error: LastError): void;
  circuit?(destinationId: string, state: CircuitState): void;
  /** Outcomes that found their lease taken over by another worker (expired meanwhile). */
  leaseLost?(count: number): void;
}

export type DeadLetterReason = 'permanent' | 'max_attempts' | 'max_age' | 'max_interrupted_attempts';
