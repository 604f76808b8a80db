/**
 * The subject timeline: every event about a subject, matched across its aliases, newest first,
 * each with its deliveries. Operators search by one identifier (an e-mail, a phone number, a
 * device id); an event matches when that identifier appears anywhere in its subject (a simple
 * subject, a member of a complex one, one of an aliases set) or when it appears through a
 * configured subject alias.
 */
import { subjectStrings } from '../pipeline/subjects.ts';
import type { DeliveryRecord, EventCursor, Store, StoredEvent } from '../storage/types.ts';

/** Rows examined per request at most; beyond that the page ends early with a cursor. */
export const TIMELINE_SCAN_LIMIT = 5_000;

const fold = (text: string) => text.trim().toLowerCase();

/** The search terms: the identifier and everything a configured alias ties it to. */
export function timelineTerms(query: string, aliases: Array<{ from: unknown; to: unknown }>): string[] {
  const terms = new Set([fold(query)]);
  for (const { from, to } of aliases) {
    const strings = [...subjectStrings(from), ...subjectStrings(to)].map(fold);
    if (strings.some((s) => terms.has(s))) for (const s of strings) terms.add(s);
  }
  return [...terms].filter((t) => t.length > 0);
}

/** Exact match of an event's subject against the terms (case-insensitive per identifier). */
export function mentionsAny(event: StoredEvent, terms: string[]): boolean {
  return subjectStrings(event.subject).some((s) => terms.includes(fold(s)));
}

export interface TimelineEntry {
  event: StoredEvent;
  deliveries: DeliveryRecord[];
}

export interface TimelinePage {
  terms: string[];
  entries: TimelineEntry[];
  /** Where the next page starts, or undefined when there is no more. */
  next?: EventCursor;
}

export async function subjectTimeline(
  store: Store,
  request: { terms: string[]; limit: number; before?: EventCursor; since?: Date; until?: Date },
): Promise<TimelinePage> {
  const { terms, limit } = request;
  const found: StoredEvent[] = [];
  let before = request.before;
  let scanned = 0;
  let next: EventCursor | undefined;
  // One match more than the page tells whether another page exists.
  while (found.length <= limit) {
    const batch = Math.min(Math.max(limit * 2, 100), TIMELINE_SCAN_LIMIT - scanned);
    const rows = await store.operator.listEvents({
      subjectMentions: terms,
      limit: batch,
      ...(before ? { before } : {}),
      ...(request.since ? { since: request.since } : {}),
      ...(request.until ? { until: request.until } : {}),
    });
    for (const row of rows) {
      scanned += 1;
      before = { acceptedAt: row.acceptedAt, id: row.id };
      if (mentionsAny(row, terms)) found.push(row);
      if (found.length > limit) break;
    }
    if (rows.length < batch) break;
    if (scanned >= TIMELINE_SCAN_LIMIT && found.length <= limit) {
      next = before;
      break;
    }
  }
  if (found.length > limit) {
    found.length = limit;
    const last = found[limit - 1] as StoredEvent;
    next = { acceptedAt: last.acceptedAt, id: last.id };
  }
  const deliveries = await store.operator.deliveriesOf(found.map((e) => e.id));
  const byEvent = new Map<string, DeliveryRecord[]>();
  for (const d of deliveries) byEvent.set(d.eventId, [...(byEvent.get(d.eventId) ?? []), d]);
  return {
    terms,
    entries: found.map((event) => ({ event, deliveries: byEvent.get(event.id) ?? [] })),
    ...(next === undefined ? {} : { next }),
  };
}
