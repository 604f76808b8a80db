import type { EventDraft, OutboundConnector } from '../plugin-api/types.ts';
import type { ValidationResult } from '../pipeline/pipeline.ts';
import type { SetSigner } from '../delivery/types.ts';
import type { StoredEvent } from '../storage/types.ts';
import { validateEventDraft, type SetCodec, type SubjectIdentifier } from '../ssf/index.ts';

/**
 * Checks an event draft against the catalog with the same rules the SET builder applies (known
 * type, valid claims once event_timestamp is filled in, a valid subject in a format the type
 * allows), returning every problem with its path. Short names are resolved to URIs.
 */
export function validateDraft(draft: EventDraft): ValidationResult {
  const result = validateEventDraft(draft);
  if (!result.ok) return { ok: false, problems: result.problems };
  return {
    ok: true,
    event: {
      ...draft,
      type: result.event.definition.uri,
      subject: result.event.subject,
      claims: draft.claims ?? {},
    },
  };
}

/** How the pipeline held future-dated events (`delivery.future_events`). */
export interface FutureEventsPolicy {
  hold: boolean;
  /** Milliseconds an occurred-at may lie ahead of the acceptance before the event is held. */
  tolerance: number;
}

/**
 * When a stored event's SET is issued (its `iat`, RFC 8417 §2.2): when the event was accepted,
 * or, for an event the pipeline held until its future occurred-at, that occurred-at (when it was
 * released, or shortly before a release that ran late). Derived from the stored event alone, so
 * every retry of a delivery carries the same `iat`.
 */
export function issuedAt(
  event: Pick<StoredEvent, 'acceptedAt' | 'occurredAt'>,
  future?: FutureEventsPolicy,
): Date {
  const held =
    future?.hold === true && event.occurredAt.getTime() > event.acceptedAt.getTime() + future.tolerance;
  return held ? event.occurredAt : event.acceptedAt;
}

/**
 * Signs stored events for destinations with the SET codec. `iat` is {@link issuedAt} and the jti
 * is the outbox row's, so every retry of a delivery is the same SET (apart from the signature).
 */
export function codecSigner(
  codec: SetCodec,
  preparerOf: (destinationId: string) => OutboundConnector['prepare'] | undefined = () => undefined,
  connectorOf: (instanceId: string) => string | undefined = () => undefined,
  futureEvents?: FutureEventsPolicy,
): SetSigner {
  return {
    async sign(event: StoredEvent, destination, delivery) {
      const prepare = preparerOf(destination.id);
      const draft = prepare ? await prepare(toDraft(event), AbortSignal.timeout(30_000)) : toDraft(event);
      const minted = await codec.mint({
        event: draft,
        sourceInstanceId: event.instanceId,
        destination: {
          id: destination.id,
          audience: destination.target.audience,
          profile: destination.target.profile,
          profileOptions: destination.target.profileOptions,
        },
        jti: delivery.jti,
        now: issuedAt(event, futureEvents),
      });
      const connector = connectorOf(event.instanceId);
      const source = {
        instance: event.instanceId,
        ...(connector === undefined ? {} : { connector }),
        record: event.sourceRecordId,
      };
      return { ...minted, attempt: delivery.attempt, source };
    },
  };
}

function toDraft(event: StoredEvent): EventDraft {
  return {
    type: event.type,
    subject: event.subject as SubjectIdentifier,
    claims: event.claims,
    sourceRecordId: event.sourceRecordId,
    occurredAt: event.occurredAt,
    txn: event.txn,
    ...(event.severity ? { severity: event.severity } : {}),
  };
}
