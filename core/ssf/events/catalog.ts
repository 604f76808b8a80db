import {
  EventTypeConflictError,
  EventValidationError,
  UnknownEventTypeError,
  type Problem,
} from '../errors.ts';
import { validateSubject, type SubjectIdentifier } from '../subjects.ts';
import { CAEP_EVENT_TYPES } from './caep.ts';
import { zodProblems } from './common.ts';
import { RISC_EVENT_TYPES } from './risc.ts';
import { OKTA_EVENT_TYPES, SSF_EVENT_TYPES } from './ssf.ts';
import type { EventClaims, EventTypeDefinition, EventTypeRegistration } from './types.ts';

const SHORT_NAME = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*\.[a-z0-9]+(?:-[a-z0-9]+)*$/;
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

export type EventCheckResult =
  | {
      ok: true;
      event: EventClaims;
      /** Members a receiver ignored (SSF 1.0 §4.2.3), each with why; only when `receiving`. */
      ignored?: Problem[];
    }
  | { ok: false; problems: Problem[] };

export interface EventCheckOptions {
  /**
   * Check the event as a receiver does (SSF 1.0 §4.2.3: a receiver MUST ignore members it does
   * not understand): an event-level `subject` in a type that defines none (an SSF control event
   * from a transmitter written before SSF 1.0 Final, say) is ignored, dropped from the event and
   * listed in `ignored`, instead of refused. Transmitters (SET building) leave it false: they
   * must not send such members (SSF 1.0 §3.1.2).
   */
  receiving?: boolean;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Levenshtein distance, for "did you mean" hints on mistyped event types. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] as number;
      row[j] = Math.min(current + 1, (row[j - 1] as number) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] as number;
}

/**
 * The Okta SecurityEventSubject shape: `{user?, device?}`, each a simple subject identifier,
 * at least one present.
 */
export function checkOktaEventSubject(value: unknown, path: string): Problem[] {
  if (!isPlainObject(value)) return [{ path, message: 'Okta requires {"user": …, "device": …} here' }];
  const problems: Problem[] = [];
  const members = Object.keys(value);
  if (!members.includes('user') && !members.includes('device')) {
    problems.push({ path, message: 'needs a user or a device subject (Okta SecurityEventSubject)' });
  }
  for (const member of members) {
    if (member !== 'user' && member !== 'device') {
      problems.push({ path: `${path}.${member}`, message: 'Okta knows only user and device here' });
      continue;
    }
    const checked = validateSubject(value[member], { path: `${path}.${member}` });
    if (!checked.ok) problems.push(...checked.problems);
    else if (checked.subject.format === 'complex' || checked.subject.format === 'aliases') {
      problems.push({ path: `${path}.${member}`, message: 'must be a simple subject identifier' });
    }
  }
  return problems;
}

function checkEventSubject(definition: EventTypeDefinition, value: unknown, path: string): Problem[] {
  if (definition.eventSubject === 'okta') {
    if (value === undefined) return [{ path, message: `is required by ${definition.shortName} (Okta ITP)` }];
    return checkOktaEventSubject(value, path);
  }
  if (value === undefined) return [];
  if (definition.eventSubject === 'none') {
    return [{ path, message: 'new event types must not carry a subject inside the event (SSF 1.0 §3.1.2)' }];
  }
  const checked = validateSubject(value, { lenient: true, path });
  return checked.ok ? [] : checked.problems;
}

/**
 * The event type catalog: every CAEP 1.0, RISC 1.0 and SSF 1.0 type, Okta's own types, and
 * types connectors register. Lookups take a URI or a short name.
 */
export class EventCatalog {
  readonly #byUri = new Map<string, EventTypeDefinition>();
  readonly #byShortName = new Map<string, EventTypeDefinition>();

  constructor(definitions: readonly EventTypeDefinition[] = BUILT_IN_EVENT_TYPES) {
    for (const definition of definitions) this.#add(definition);
  }

  #add(definition: EventTypeDefinition): void {
    this.#byUri.set(definition.uri, definition);
    this.#byShortName.set(definition.shortName, definition);
  }

  /**
   * Adds a vendor-specific event type. Registering the same definition again (a module loaded
   * twice) is harmless; a different definition under a known URI or short name is refused.
   */
  register(registration: EventTypeRegistration): EventTypeDefinition {
    if (!ABSOLUTE_URI.test(registration.uri)) {
      throw new EventTypeConflictError(`event type URI "${registration.uri}" is not an absolute URI`);
    }
    if (!SHORT_NAME.test(registration.shortName)) {
      throw new EventTypeConflictError(
        `short name "${registration.shortName}" must look like vendor.event-name (lowercase, one dot)`,
      );
    }
    const byUri = this.#byUri.get(registration.uri);
    const byName = this.#byShortName.get(registration.shortName);
    if (byUri && byUri === byName && byUri.claims === registration.claims) return byUri;
    if (byUri) throw new EventTypeConflictError(`event type ${registration.uri} is already defined`);
    if (byName) {
      throw new EventTypeConflictError(`short name ${registration.shortName} already names ${byName.uri}`);
    }
    const definition: EventTypeDefinition = Object.freeze({
      uri: registration.uri,
      shortName: registration.shortName,
      spec:
        registration.spec ??
        (registration.vendor ? `${registration.vendor} event type` : 'vendor event type'),
      description: registration.description,
      claims: registration.claims,
      eventSubject: registration.eventSubject ?? 'none',
      timestamp: registration.timestamp ?? false,
      ...(registration.subjectFormats ? { subjectFormats: [...registration.subjectFormats] } : {}),
      ...(registration.vendor ? { vendor: registration.vendor } : {}),
    });
    this.#add(definition);
    return definition;
  }

  /** The definition for a URI or short name, or undefined. */
  find(nameOrUri: string): EventTypeDefinition | undefined {
    return this.#byUri.get(nameOrUri) ?? this.#byShortName.get(nameOrUri);
  }

  /** The definition for a URI or short name; throws UnknownEventTypeError with a hint. */
  get(nameOrUri: string): EventTypeDefinition {
    const found = this.find(nameOrUri);
    if (found) return found;
    throw new UnknownEventTypeError(nameOrUri, this.#suggest(nameOrUri));
  }

  /** The URI of a short name or URI: `caep.session-revoked` → its full URI. */
  resolve(nameOrUri: string): string {
    return this.get(nameOrUri).uri;
  }

  list(): EventTypeDefinition[] {
    return [...this.#byUri.values()];
  }

  #suggest(input: string): string | undefined {
    let best: { name: string; score: number } | undefined;
    for (const definition of this.#byUri.values()) {
      for (const candidate of [definition.shortName, definition.uri]) {
        const score = distance(input, candidate);
        if (!best || score < best.score) best = { name: definition.shortName, score };
      }
      const tail = definition.uri.slice(definition.uri.lastIndexOf('/') + 1);
      if (input.endsWith(`.${tail}`) || input === tail) best = { name: definition.shortName, score: 0 };
    }
    return best && best.score <= Math.max(3, Math.floor(input.length / 4)) ? best.name : undefined;
  }

  /**
   * Checks an event object as it appears in a SET (`events[uri]`), including any event-level
   * subject, against its type. Returns the parsed claims or every problem.
   */
  checkEvent(
    nameOrUri: string,
    event: unknown,
    path = `events["${nameOrUri}"]`,
    options: EventCheckOptions = {},
  ): EventCheckResult {
    const definition = this.get(nameOrUri);
    if (!isPlainObject(event)) {
      return { ok: false, problems: [{ path, message: 'must be a JSON object (RFC 8417 §2.2)' }] };
    }
    const { subject: given, ...claims } = event;
    const ignored: Problem[] = [];
    let subject = given;
    if (options.receiving && subject !== undefined && definition.eventSubject === 'none') {
      // SSF 1.0 §4.2.3: not understood, so ignored; the subject of the SET is its sub_id.
      ignored.push({
        path: `${path}.subject`,
        message: `ignored: ${definition.shortName} defines no subject inside the event (SSF 1.0 §3.1.2); sub_id names the subject`,
      });
      subject = undefined;
    }
    const problems = checkEventSubject(definition, subject, `${path}.subject`);
    const parsed = definition.claims.safeParse(claims);
    if (!parsed.success) problems.push(...zodProblems(parsed.error, path, claims));
    if (problems.length > 0) return { ok: false, problems };
    const data = parsed.success ? parsed.data : claims;
    return {
      ok: true,
      event: subject === undefined ? data : { ...data, subject },
      ...(ignored.length > 0 ? { ignored } : {}),
    };
  }

  /**
   * SSF 1.0 §4.2.1: a SET carries one event, under several URIs only when they are alternative
   * names of the same event type. The catalog knows such names as a deprecated type and the one
   * that replaces it (`replacedBy`: RISC `sessions-revoked` and CAEP `session-revoked`). Returns
   * the URI of the event type every one of `uris` names (the replacing type), or undefined when
   * they name different types or one the catalog does not know. Only URIs count: a short name
   * names no event type in a SET (RFC 8417 §2.2).
   */
  sameEventType(uris: readonly string[]): string | undefined {
    let common: string | undefined;
    for (const uri of uris) {
      const definition = this.#byUri.get(uri);
      if (!definition) return undefined;
      const canonical = definition.replacedBy ? this.get(definition.replacedBy).uri : definition.uri;
      if (common !== undefined && common !== canonical) return undefined;
      common = canonical;
    }
    return common;
  }

  /**
   * Checks the claims a connector gives for an event (without any subject: the subject travels
   * beside the claims and profiles decide where it goes). Throws EventValidationError.
   */
  parseClaims(nameOrUri: string, claims: unknown): EventClaims {
    const definition = this.get(nameOrUri);
    const input = claims ?? {};
    if (!isPlainObject(input)) {
      throw new EventValidationError(definition.shortName, [
        { path: 'claims', message: 'must be a JSON object' },
      ]);
    }
    if (input.subject !== undefined) {
      throw new EventValidationError(definition.shortName, [
        {
          path: 'claims.subject',
          message:
            'give the subject beside the claims, not inside them; target profiles decide where it goes',
        },
      ]);
    }
    const parsed = definition.claims.safeParse(input);
    if (!parsed.success) {
      throw new EventValidationError(definition.shortName, zodProblems(parsed.error, 'claims', input));
    }
    return parsed.data;
  }

  /** Problems with a primary subject for this event type (format restrictions of the type). */
  checkSubjectFor(nameOrUri: string, subject: SubjectIdentifier, path = 'sub_id'): Problem[] {
    const definition = this.get(nameOrUri);
    const allowed = definition.subjectFormats;
    if (!allowed || allowed.includes(subject.format)) return [];
    return [
      {
        path: `${path}.format`,
        message: `${definition.shortName} requires a subject of format ${allowed.join(' or ')} (${definition.spec})`,
      },
    ];
  }
}

export const BUILT_IN_EVENT_TYPES: readonly EventTypeDefinition[] = Object.freeze([
  ...CAEP_EVENT_TYPES,
  ...RISC_EVENT_TYPES,
  ...SSF_EVENT_TYPES,
  ...OKTA_EVENT_TYPES,
]);

/** The process-wide catalog: the built-in types plus those connectors register. */
export const eventCatalog = new EventCatalog();

/** Registers a connector-defined event type in the process-wide catalog. */
export function registerEventType(registration: EventTypeRegistration): EventTypeDefinition {
  return eventCatalog.register(registration);
}

/** The URI of an event type written as a URI or short name (`caep.session-revoked`). */
export function resolveEventType(nameOrUri: string): string {
  return eventCatalog.resolve(nameOrUri);
}

export function getEventType(nameOrUri: string): EventTypeDefinition {
  return eventCatalog.get(nameOrUri);
}

export function findEventType(nameOrUri: string): EventTypeDefinition | undefined {
  return eventCatalog.find(nameOrUri);
}

export function listEventTypes(): EventTypeDefinition[] {
  return eventCatalog.list();
}
