/**
 * Where reading the System Log resumes. Okta's next link is the cursor of choice, but it keeps the
 * query it was built from (limit, filter) for good, and cannot point into the middle of a page. A
 * position — the newest event emitted and every event emitted at that same instant — can always be
 * turned into a fresh query: `since` is inclusive, and the events in `seen` are skipped.
 */
import { instantSchema, type LogQuery } from './config.ts';

export interface Position {
  /** `published` of the newest event emitted. */
  since: string;
  /** uuids of the events published at `since` that were emitted. */
  seen: string[];
}

/**
 * A record's uuid and published time, when it has both as the checkpoint keeps them: a non-empty
 * uuid and an ISO 8601 instant. A malformed record has no place: taken as the position, it would
 * be saved in a checkpoint the next run cannot read.
 */
export function placeOf(record: unknown): { uuid: string; published: string } | undefined {
  if (typeof record !== 'object' || record === null) return undefined;
  const { uuid, published } = record as { uuid?: unknown; published?: unknown };
  if (typeof uuid !== 'string' || uuid.length === 0 || !instantSchema.safeParse(published).success)
    return undefined;
  return { uuid, published: published as string };
}

/** The position once `record` is emitted (or skipped for good); a record without a place leaves it. */
export function advance(position: Position | undefined, record: unknown): Position | undefined {
  const place = placeOf(record);
  if (place === undefined) return position;
  const at = Date.parse(place.published);
  const newest = position === undefined ? Number.NEGATIVE_INFINITY : Date.parse(position.since);
  if (position === undefined || at > newest) return { since: place.published, seen: [place.uuid] };
  if (at === newest && !position.seen.includes(place.uuid))
    return { since: position.since, seen: [...position.seen, place.uuid] };
  return position;
}

/** Whether `record` was emitted before: a query from `since` reads the events at `since` again. */
export function emittedBefore(position: Position | undefined, record: unknown): boolean {
  const place = placeOf(record);
  return place !== undefined && position !== undefined && position.seen.includes(place.uuid);
}

export function sameQuery(a: LogQuery, b: LogQuery): boolean {
  return a.limit === b.limit && (a.filter ?? '') === (b.filter ?? '');
}

/**
 * The query a next link carries, for a cursor saved without one (by an earlier version): Okta
 * repeats the original limit and filter in its next links.
 */
export function queryOfLink(link: string, fallbackLimit: number): LogQuery {
  const params = new URL(link).searchParams;
  const limit = Number(params.get('limit'));
  const filter = params.get('filter');
  return {
    limit: Number.isInteger(limit) && limit > 0 ? limit : fallbackLimit,
    ...(filter ? { filter } : {}),
  };
}

/** A polling query of the events published at `since` or later, oldest first. */
export function logsUrl(origin: string, since: string, query: LogQuery): string {
  const url = new URL('/api/v1/logs', origin);
  url.searchParams.set('since', since);
  url.searchParams.set('sortOrder', 'ASCENDING');
  url.searchParams.set('limit', String(query.limit));
  if (query.filter) url.searchParams.set('filter', query.filter);
  return url.href;
}
