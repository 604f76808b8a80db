/**
 * Google Workspace as a CAEP receiver: session-revoked only, audience
 * `https://sharedsignals.googleapis.com`, and an email subject both as the top-level `sub_id`
 * and inside the event.
 */
import { z } from 'zod';
import type { SubjectIdentifier } from '../../plugin-api/index.ts';
import { ProfileRefusalError } from '../errors.ts';
import { CAEP_BASE } from '../events/common.ts';
import {
  matchableIdentifier,
  refusedAudience,
  type ProfileInput,
  type ShapedEvent,
  type TargetProfile,
} from './types.ts';

const NAME = 'google-workspace';
export const GOOGLE_WORKSPACE_AUDIENCE = 'https://sharedsignals.googleapis.com';
const SESSION_REVOKED = `${CAEP_BASE}session-revoked`;

export const googleWorkspaceOptionsSchema = z.strictObject({});

function emailSubject(subject: SubjectIdentifier): SubjectIdentifier {
  const member = subject.format === 'complex' ? (subject.user as SubjectIdentifier | undefined) : subject;
  const user = member === undefined ? undefined : matchableIdentifier(member);
  if (user?.format === 'email') return user;
  throw new ProfileRefusalError(
    NAME,
    `Google identifies users by email; the subject is ${subject.format}${user ? ` with a ${user.format} user` : ''}`,
  );
}

/** Google takes its own audience only: none asked for means that one. */
function audienceFor(requested: string | string[] | undefined): string {
  const refused = refusedAudience(googleWorkspaceProfile, requested);
  if (refused !== undefined) {
    throw new ProfileRefusalError(
      NAME,
      `Google requires aud ${refused.only}, not ${refused.requested.join(', ')}`,
    );
  }
  return GOOGLE_WORKSPACE_AUDIENCE;
}

function shape(input: ProfileInput): ShapedEvent {
  if (input.definition.uri !== SESSION_REVOKED) {
    throw new ProfileRefusalError(
      NAME,
      `Google accepts only caep.session-revoked, not ${input.definition.shortName}`,
    );
  }
  const subject = emailSubject(input.subject);
  return {
    eventType: SESSION_REVOKED,
    event: { subject, ...input.claims },
    subId: subject,
    audience: audienceFor(input.audience),
    txn: true,
  };
}

export const googleWorkspaceProfile: TargetProfile<z.output<typeof googleWorkspaceOptionsSchema>> = {
  name: NAME,
  description: `Google Workspace: caep.session-revoked only, aud ${GOOGLE_WORKSPACE_AUDIENCE}, email subject in sub_id and in the event.`,
  optionsSchema: googleWorkspaceOptionsSchema,
  accepts: [SESSION_REVOKED],
  apply: shape,
  onlyAudience: GOOGLE_WORKSPACE_AUDIENCE,
};
