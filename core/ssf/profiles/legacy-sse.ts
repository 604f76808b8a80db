/**
 * The legacy Shared Signals and Events (SSE) draft 1 event shape that Apple Business Manager
 * and Apple School Manager still consume: the subject lives inside the event as
 * `{user, device, …}` (SSE draft 1 §3.2, no `format: complex` wrapper, a simple subject being
 * the user), and the SET has no top-level `sub_id` and no `txn`, which that draft did not define.
 * Only the two CAEP events Apple acts on are accepted.
 */
import { z } from 'zod';
import type { SubjectIdentifier } from '../../plugin-api/index.ts';
import { ProfileRefusalError } from '../errors.ts';
import { CAEP_BASE } from '../events/common.ts';
import { oneIdentifier, type ProfileInput, type ShapedEvent, type TargetProfile } from './types.ts';

const NAME = 'legacy-sse-caep';

export const LEGACY_SSE_ACCEPTED_EVENT_TYPES = [
  `${CAEP_BASE}session-revoked`,
  `${CAEP_BASE}credential-change`,
];

export const legacySseOptionsSchema = z.strictObject({});

/** SSE draft 1 subject: the members of a complex subject side by side; a simple subject as the user. */
export function sseSubject(subject: SubjectIdentifier): Record<string, SubjectIdentifier> {
  // The SSE draft has no aliases subjects: out of aliases (as HR sources send), the email.
  const single = (candidate: SubjectIdentifier) => oneIdentifier(NAME, 'The SSE draft', candidate);
  if (subject.format !== 'complex') return { user: single(subject) };
  const { format: _format, ...members } = subject;
  return members as Record<string, SubjectIdentifier>;
}

function shape(input: ProfileInput): ShapedEvent {
  if (!LEGACY_SSE_ACCEPTED_EVENT_TYPES.includes(input.definition.uri)) {
    throw new ProfileRefusalError(
      NAME,
      `receivers of the legacy SSE draft take caep.session-revoked and caep.credential-change, not ${input.definition.shortName}`,
    );
  }
  return {
    eventType: input.definition.uri,
    event: { subject: sseSubject(input.subject), ...input.claims },
    subId: undefined,
    audience: input.audience ?? [],
    txn: false,
  };
}

export const legacySseProfile: TargetProfile<z.output<typeof legacySseOptionsSchema>> = {
  name: NAME,
  description:
    'Legacy SSE draft 1 CAEP shape for Apple Business/School Manager: subject inside the event, no sub_id, ' +
    'session-revoked and credential-change only.',
  optionsSchema: legacySseOptionsSchema,
  accepts: LEGACY_SSE_ACCEPTED_EVENT_TYPES,
  apply: shape,
};
