/**
 * Builders and a manual clock for store, pipeline and delivery tests.
 */
import { randomUUID } from 'node:crypto';
import type { Clock } from '../../plugin-api/types.ts';
import type { NewEvent, StoredEvent } from '../types.ts';

/** A clock that moves only when told to. */
export class ManualClock implements Clock {
  #ms: number;
  constructor(start: string | number = '2026-01-01T00:00:00.000Z') {
    this.#ms = typeof start === 'number' ? start : Date.parse(start);
  }
  now(): Date {
    return new Date(this.#ms);
  }
  advance(ms: number): Date {
    this.#ms += ms;
    return this.now();
  }
}

let counter = 0;

export function storedEvent(overrides: Partial<StoredEvent> = {}): StoredEvent {
  counter += 1;
  const at = overrides.acceptedAt ?? new Date('2026-01-01T00:00:00.000Z');
  return {
    id: randomUUID(),
    instanceId: 'hr',
    sourceRecordId: `rec-${counter}`,
    type: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
    subject: { format: 'email', email: `user${counter}@example.com` },
    subjectKey: `email:user${counter}@example.com`,
    claims: { event_timestamp: 1767225600 },
    txn: `txn-${counter}`,
    occurredAt: at,
    acceptedAt: at,
    ...overrides,
  };
}

export interface NewEventOptions {
  event?: Partial<StoredEvent>;
  destinations?: string[];
  dedupeKey?: string;
  releaseAt?: Date;
  /** Ordering key suffix; defaults to the event's subject key. */
  orderingKey?: string;
}

/** An event routed to `destinations` with jti `<event id>/<destination>`. */
export function newEvent(options: NewEventOptions = {}): NewEvent {
  const event = storedEvent(options.event);
  return {
    event,
    deliveries: (options.destinations ?? ['dest-a']).map((destinationId) => ({
      destinationId,
      jti: `${event.id}/${destinationId}`,
      orderingKey: `${destinationId}|${options.orderingKey ?? event.subjectKey}`,
    })),
    ...(options.dedupeKey === undefined ? {} : { dedupeKey: options.dedupeKey }),
    ...(options.releaseAt === undefined ? {} : { releaseAt: options.releaseAt }),
  };
}
