/**
 * The default profile: SSF 1.0 Final as written. Top-level `sub_id`, one event, `txn`; the
 * subject goes inside the event only for types that require it (Okta's) or when a receiver asks
 * for it on the CAEP and RISC types that allow it (SSF 1.0 §3.1.1).
 */
import { z } from 'zod';
import { ProfileRefusalError } from '../errors.ts';
import { CAEP_BASE, SSF_BASE } from '../events/common.ts';
import type { EventClaims } from '../events/types.ts';
import { oktaEventSubject } from './okta-itp.ts';
import type { ProfileInput, ShapedEvent, TargetProfile } from './types.ts';

const NAME = 'ssf-1.0';

export const ssfOptionsSchema = z.strictObject({
  event_subject: z
    .boolean()
    .default(false)
    .meta({
      description:
        'Also put the subject inside the event for CAEP and RISC types that allow it, for receivers written ' +
        'before SSF 1.0 (the top-level sub_id stays).',
    }),
  caep_interop: z
    .boolean()
    .default(false)
    .meta({
      description:
        'Enforce the CAEP interoperability profile: RS256 signatures, email or iss_sub subjects (opaque for ' +
        'verification and stream-updated events) and a non-empty reason_admin on CAEP events.',
    }),
});
export type SsfOptions = z.output<typeof ssfOptionsSchema>;

const INTEROP_FORMATS = ['email', 'iss_sub'];

function checkInterop(input: ProfileInput): void {
  const { definition, subject, claims } = input;
  // SSF's own events name the stream by an opaque id (SSF 1.0 §8.1.4, §8.1.5).
  const control =
    definition.uri === `${SSF_BASE}verification` || definition.uri === `${SSF_BASE}stream-updated`;
  const formats = control ? ['opaque'] : INTEROP_FORMATS;
  if (!formats.includes(subject.format)) {
    throw new ProfileRefusalError(
      NAME,
      `the CAEP interoperability profile (§2.5) allows ${formats.join(' or ')} subjects here, not ${subject.format}`,
    );
  }
  if (definition.uri.startsWith(CAEP_BASE)) {
    const reason = claims.reason_admin as Record<string, string> | undefined;
    if (!reason || Object.keys(reason).length === 0) {
      throw new ProfileRefusalError(
        NAME,
        'the CAEP interoperability profile (§3) requires a non-empty reason_admin',
      );
    }
  }
}

function shape(input: ProfileInput, options: SsfOptions): ShapedEvent {
  if (options.caep_interop) checkInterop(input);
  const { definition, subject, claims } = input;
  let event: EventClaims = claims;
  if (definition.eventSubject === 'okta') {
    event = { subject: oktaEventSubject(NAME, subject, definition.uri, true), ...claims };
  } else if (definition.eventSubject === 'legacy' && options.event_subject) {
    event = { subject, ...claims };
  }
  return {
    eventType: definition.uri,
    event,
    subId: subject,
    audience: input.audience ?? [],
    txn: true,
    ...(options.caep_interop
      ? {
          signing: { algorithms: ['RS256'], profile: NAME, rule: 'the CAEP interoperability profile (§2.6)' },
        }
      : {}),
  };
}

export const ssfProfile: TargetProfile<SsfOptions> = {
  name: NAME,
  description: 'SSF 1.0 Final: top-level sub_id, one event per SET, txn; any event type.',
  optionsSchema: ssfOptionsSchema,
  accepts: undefined,
  apply: shape,
};
