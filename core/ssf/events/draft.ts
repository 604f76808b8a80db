/**
 * Checks an event as a connector emits it (an EventDraft) against the catalog: a known, current
 * type; a valid subject in a format the type allows; claims that follow the type's definition,
 * with `event_timestamp` filled from the occurrence time for types that define it. The pipeline
 * (at acceptance) and the SET builder (at signing) apply the same rules through this module.
 */
import type { EventDraft, SubjectIdentifier } from '../../plugin-api/index.ts';
import { EventValidationError, UnknownEventTypeError, type Problem } from '../errors.ts';
import { parseSubject, validateSubject } from '../subjects.ts';
import { MAX_EVENT_NESTING, nestsDeeperThan } from '../../plugin-api/json-depth.ts';
import { eventCatalog, type EventCatalog } from './catalog.ts';
import type { EventClaims, EventTypeDefinition } from './types.ts';

/** An event draft that passed every check, in canonical form. */
export interface CheckedEvent {
  definition: EventTypeDefinition;
  /** The subject in canonical form (older spellings rewritten). */
  subject: SubjectIdentifier;
  /** Claims valid for the type, `event_timestamp` filled where the type defines it. */
  claims: EventClaims;
  /** When the event happened, in seconds since the epoch. */
  occurredAt: number;
}

export interface DraftCheckOptions {
  /** The time used when the draft has no occurredAt (the time the event was accepted). */
  now?: Date;
  catalog?: EventCatalog;
}

export type DraftCheckResult = { ok: true; event: CheckedEvent } | { ok: false; problems: Problem[] };

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The occurrence time in seconds, or undefined when occurredAt is not a date. */
function occurrenceSeconds(draft: EventDraft, now: Date): number | undefined {
  const value: unknown = draft.occurredAt ?? now;
  // A number is ambiguous (seconds or milliseconds?); only a Date or a date string says which.
  if (!(value instanceof Date) && typeof value !== 'string') return undefined;
  const date = value instanceof Date ? value : new Date(value);
  const ms = date.getTime();
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

function occurredAtProblem(value: unknown): string {
  return typeof value === 'number'
    ? `must be a Date or an RFC 3339 date string, not a number (${value}: seconds or milliseconds?)`
    : `"${String(value)}" is not a date`;
}

function withTimestamp(definition: EventTypeDefinition, claims: unknown, time: number): unknown {
  const given = claims ?? {};
  // Types that define event_timestamp get the occurrence time unless the connector gave one.
  return definition.timestamp && isPlainObject(given) && given.event_timestamp === undefined
    ? { ...given, event_timestamp: time }
    : given;
}

function deprecation(definition: EventTypeDefinition): EventValidationError | undefined {
  if (!definition.deprecated) return undefined;
  return new EventValidationError(
    definition.shortName,
    [{ path: 'type', message: definition.deprecated }],
    'SSF_ERR_EVENT_DEPRECATED',
  );
}

/**
 * Subject and claims nested deeper than any event may be (MAX_EVENT_NESTING): checked before
 * anything walks them recursively, so that every path (acceptance, dry runs, the mapping rules)
 * refuses them alike.
 */
function nestingProblems(draft: EventDraft): Problem[] {
  return (['subject', 'claims'] as const)
    .filter((part) => nestsDeeperThan(draft[part], MAX_EVENT_NESTING))
    .map((part) => ({ path: part, message: `nests more than ${MAX_EVENT_NESTING} levels deep` }));
}

/** Checks a draft; throws UnknownEventTypeError, SubjectValidationError or EventValidationError. */
export function checkEventDraft(draft: EventDraft, options: DraftCheckOptions = {}): CheckedEvent {
  const catalog = options.catalog ?? eventCatalog;
  const tooDeep = nestingProblems(draft);
  if (tooDeep.length > 0) throw new EventValidationError('event', tooDeep);
  if (typeof draft.type !== 'string') {
    throw new EventValidationError('event', [
      { path: 'type', message: 'must be an event type URI or short name (a non-empty string)' },
    ]);
  }
  const definition = catalog.get(draft.type);
  const deprecated = deprecation(definition);
  if (deprecated) throw deprecated;
  const subject = parseSubject(draft.subject, { lenient: true });
  const subjectProblems = catalog.checkSubjectFor(definition.uri, subject, 'subject');
  if (subjectProblems.length > 0) throw new EventValidationError(definition.shortName, subjectProblems);
  const occurredAt = occurrenceSeconds(draft, options.now ?? new Date());
  if (occurredAt === undefined) {
    throw new EventValidationError(definition.shortName, [
      { path: 'occurredAt', message: occurredAtProblem(draft.occurredAt) },
    ]);
  }
  const claims = catalog.parseClaims(definition.uri, withTimestamp(definition, draft.claims, occurredAt));
  return { definition, subject, claims, occurredAt };
}

/** Checks a draft and reports every problem at once, with paths (for acceptance and dry runs). */
export function validateEventDraft(draft: EventDraft, options: DraftCheckOptions = {}): DraftCheckResult {
  const catalog = options.catalog ?? eventCatalog;
  const tooDeep = nestingProblems(draft);
  if (tooDeep.length > 0) return { ok: false, problems: tooDeep };
  const problems: Problem[] = [];
  const definition = typeof draft.type === 'string' ? catalog.find(draft.type) : undefined;
  if (typeof draft.type !== 'string' || draft.type === '') {
    problems.push({ path: 'type', message: 'must be an event type URI or short name (a non-empty string)' });
  } else if (!definition) {
    try {
      catalog.get(draft.type);
    } catch (err) {
      if (!(err instanceof UnknownEventTypeError)) throw err;
      problems.push({ path: 'type', message: err.message });
    }
  } else {
    problems.push(...(deprecation(definition)?.problems ?? []));
  }
  const subject = validateSubject(draft.subject, { lenient: true, path: 'subject' });
  if (!subject.ok) problems.push(...subject.problems);
  else if (definition) problems.push(...catalog.checkSubjectFor(definition.uri, subject.subject, 'subject'));
  const occurredAt = occurrenceSeconds(draft, options.now ?? new Date());
  if (occurredAt === undefined) {
    problems.push({ path: 'occurredAt', message: occurredAtProblem(draft.occurredAt) });
  }
  let claims: EventClaims | undefined;
  if (definition) {
    try {
      claims = catalog.parseClaims(definition.uri, withTimestamp(definition, draft.claims, occurredAt ?? 0));
    } catch (err) {
      if (!(err instanceof EventValidationError)) throw err;
      problems.push(...err.problems);
    }
  }
  if (problems.length > 0 || !definition || !subject.ok || !claims || occurredAt === undefined) {
    return { ok: false, problems };
  }
  return { ok: true, event: { definition, subject: subject.subject, claims, occurredAt } };
}
