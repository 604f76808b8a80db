import type { z } from 'zod';
import type { SubjectIdentifier } from '../../plugin-api/index.ts';
import { ProfileRefusalError } from '../errors.ts';
import type { EventClaims, EventTypeDefinition } from '../events/types.ts';

/** An event checked against the catalog, ready to be shaped for one target. */
export interface ProfileInput {
  definition: EventTypeDefinition;
  /** The primary subject in canonical form. */
  subject: SubjectIdentifier;
  /** The event claims, valid for `definition`, without any subject. */
  claims: EventClaims;
  /** When the event happened, in seconds since the epoch. */
  occurredAt: number;
  /** The audience the destination asks for, if any. */
  audience: string | string[] | undefined;
}

/** What goes into the SET for this target. */
export interface ShapedEvent {
  /** Event type URI in the SET; differs from the input when the target names the event its own way. */
  eventType: string;
  /** The event object, `events[eventType]`. */
  event: EventClaims;
  /** Top-level `sub_id`; undefined only when the target refuses it. */
  subId: SubjectIdentifier | undefined;
  audience: string | string[];
  /** Whether the SET carries `txn`. */
  txn: boolean;
  /** Signing algorithms the target accepts, when it restricts them, and the rule that says so. */
  signing?: SigningRule;
}

export interface SigningRule {
  algorithms: readonly string[];
  profile: string;
  rule: string;
}

/** A target profile (dialect): shapes SETs the way one kind of receiver accepts them. */
export interface TargetProfile<O = unknown> {
  readonly name: string;
  readonly description: string;
  /** Options an operator may set per destination. */
  readonly optionsSchema: z.ZodType<O>;
  /** Event type URIs the target accepts (including those it accepts after translation); undefined for any. */
  readonly accepts: readonly string[] | undefined;
  /** Shapes the event; throws ProfileRefusalError when the target would not accept it. */
  apply(input: ProfileInput, options: O): ShapedEvent;
  /**
   * The one audience the target takes, for a target that takes no other (Google): a destination
   * asking for none gets this one, and apply refuses a SET for any other (refusedAudience says
   * which destinations). Absent when any audience will do.
   */
  readonly onlyAudience?: string;
}

/** A destination audience that a target profile refuses every SET for. */
export interface AudienceRefusal {
  /** The one audience the profile takes. */
  only: string;
  /** What the destination asks for instead, as a list. */
  requested: string[];
}

/**
 * Whether `profile` refuses every SET for the audience a destination asks for: the target takes
 * its `onlyAudience` only, and the destination asks for another (or for more than that one);
 * asking for none means that one. Undefined when the profile takes it. The one rule, for the
 * profile's apply and for checking a config when it loads.
 */
export function refusedAudience(
  profile: Pick<TargetProfile<unknown>, 'onlyAudience'>,
  requested: string | string[] | undefined,
): AudienceRefusal | undefined {
  const only = profile.onlyAudience;
  if (only === undefined) return undefined;
  const list = requested === undefined ? [] : Array.isArray(requested) ? requested : [requested];
  if (list.length === 0 || (list.length === 1 && list[0] === only)) return undefined;
  return { only, requested: list };
}

/**
 * The identifier a single-identifier target can match, out of an aliases subject (RFC 9493
 * §3.2.7): the first email among them, since the targets with these profiles find users by
 * email. Other subjects come back unchanged; undefined when the aliases hold no email.
 */
export function matchableIdentifier(subject: SubjectIdentifier): SubjectIdentifier | undefined {
  if (subject.format !== 'aliases') return subject;
  const identifiers = Array.isArray(subject.identifiers) ? (subject.identifiers as SubjectIdentifier[]) : [];
  return identifiers.find((alias) => alias.format === 'email');
}

/** The identifier to send to a target that matches one (matchableIdentifier), or the refusal. */
export function oneIdentifier(
  profile: string,
  target: string,
  subject: SubjectIdentifier,
): SubjectIdentifier {
  const chosen = matchableIdentifier(subject);
  if (chosen === undefined) {
    throw new ProfileRefusalError(
      profile,
      `${target} takes one identifier, and the aliases subject holds no email to send`,
    );
  }
  return chosen;
}
