import type { EventDraft, OutboundConnector } from '../plugin-api/types.ts';
import type { Problem as PipelineProblem, ValidationResult } from '../pipeline/pipeline.ts';
import type { SetSigner } from '../delivery/types.ts';
import type { StoredEvent } from '../storage/types.ts';
import {
  eventCatalog,
  EventValidationError,
  UnknownEventTypeError,
  validateSubject,
  type SetCodec,
  type SubjectIdentifier,
} from '../ssf/index.ts';

/**
 * Checks an event draft against the catalog: known type (short names resolved to URIs), valid
 * claims, a valid subject in a format the type allows. Every problem is returned, with paths.
 */
export function validateDraft(draft: EventDraft): ValidationResult {
  const problems: PipelineProblem[] = [];
  const definition = eventCatalog.find(draft.type);
  if (!definition) {
    try {
      eventCatalog.get(draft.type);
    } catch (err) {
      problems.push({
        path: 'type',
        message: err instanceof UnknownEventTypeError ? err.message : String(err),
      });
    }
  }
  const subject = validateSubject(draft.subject, { path: 'subject' });
  if (!subject.ok) problems.push(...subject.problems);
  let claims: Record<string, unknown> | undefined;
  if (definition) {
    try {
      claims = eventCatalog.parseClaims(definition.uri, draft.claims ?? {}) as Record<string, unknown>;
    } catch (err) {
      if (err instanceof EventValidationError) problems.push(...err.problems);
      else throw err;
    }
    if (subject.ok)
      problems.push(...eventCatalog.checkSubjectFor(definition.uri, subject.subject, 'subject'));
  }
  if (problems.length > 0 || !definition || !subject.ok) return { ok: false, problems };
  return {
    ok: true,
    event: { ...draft, type: definition.uri, subject: subject.subject, claims: claims ?? {} },
  };
}

/**
 * Signs stored events for destinations with the SET codec. `iat` is the time the event was
 * accepted and the jti is the outbox row's, so every retry of a delivery is the same SET
 * (apart from the signature).
 */
export function codecSigner(
  codec: SetCodec,
  preparerOf: (destinationId: string) => OutboundConnector['prepare'] | undefined = () => undefined,
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
        },
        jti: delivery.jti,
        now: event.acceptedAt,
      });
      return { ...minted, attempt: delivery.attempt };
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
