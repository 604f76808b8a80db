/**
 * Paging and query parsing for admin lists: every list takes `limit` and an opaque `cursor` and
 * answers `{ items, next_cursor }`; `next_cursor` is null on the last page.
 */
import { isStorableText, unstorableTextPath } from '../plugin-api/storable-text.ts';
export const DEFAULT_LIMIT = 50;
export const MAX_LIMIT = 500;

export class AdminQueryError extends Error {
  readonly statusCode = 400;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export function parseLimit(value: unknown): number {
  if (value === undefined || value === '') return DEFAULT_LIMIT;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) {
    throw new AdminQueryError(`limit must be an integer from 1 to ${MAX_LIMIT}`);
  }
  return n;
}

export function encodeCursor(position: unknown): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url');
}

/** Decodes a cursor and checks its shape; a tampered or foreign cursor is a 400. */
export function decodeCursor<T>(value: unknown, check: (decoded: unknown) => decoded is T): T | undefined {
  if (value === undefined || value === '') return undefined;
  try {
    const decoded: unknown = JSON.parse(Buffer.from(String(value), 'base64url').toString('utf8'));
    if (check(decoded)) return decoded;
  } catch {
    // falls through to the error below
  }
  throw new AdminQueryError('cursor is not valid for this list; start again without it');
}

/**
 * A row id as the stores keep it (an integer column): a whole number. A fraction or a number
 * beyond the column would reach PostgreSQL and fail there, a 500 for a cursor that is a 400.
 */
export const isRowId = (v: unknown): v is number => Number.isSafeInteger(v);
/** An offset into a list held in memory: a whole number, never negative. */
export const isOffset = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
/** The largest time a Date holds, in ms either side of the epoch. */
const MAX_TIME_MS = 8.64e15;
/** A keyset position: a time a Date can hold (ms) and an id. */
export const isEventPosition = (v: unknown): v is [number, string] =>
  Array.isArray(v) &&
  v.length === 2 &&
  Number.isSafeInteger(v[0]) &&
  Math.abs(v[0] as number) <= MAX_TIME_MS &&
  typeof v[1] === 'string' &&
  isStorableText(v[1]);

/**
 * The position of a dead-letter page: the `deadSeq` of its last letter, tagged so that a cursor
 * of another list, or an id from before letters paged in the order they died, is refused.
 */
function isDeadLetterPosition(v: unknown): v is { dead: number } {
  if (typeof v !== 'object' || v === null || Object.keys(v).length !== 1) return false;
  const dead = (v as { dead?: unknown }).dead;
  return Number.isSafeInteger(dead) && (dead as number) >= 0;
}

/** The cursor of the dead-letter page after the letter with this `deadSeq` (admin API and CLI). */
export function deadLetterCursor(deadSeq: number): string {
  return encodeCursor({ dead: deadSeq });
}

/** The `deadSeq` a dead-letter cursor holds; a cursor it did not make is an AdminQueryError. */
export function readDeadLetterCursor(value: unknown): number | undefined {
  return decodeCursor(value, isDeadLetterPosition)?.dead;
}

/** The id of a row named in a path (`/dead-letters/<id>`): a positive whole number, else none. */
export function pathRowId(text: string): number | undefined {
  const id = Number(text);
  return /^[1-9]\d*$/.test(text) && Number.isSafeInteger(id) ? id : undefined;
}

/**
 * Refuses a request whose path, query or JSON body holds text no store keeps (U+0000, half a
 * surrogate pair: PostgreSQL refuses both), naming where: a 400 here rather than a 500 there,
 * and the refusal can be audited.
 */
export function refuseUnstorable(parts: { params: unknown; query: unknown; body: unknown }): void {
  for (const [name, value] of Object.entries(parts)) {
    const at = unstorableTextPath(value, name);
    if (at !== undefined) throw new AdminQueryError(`${at} holds U+0000 or half of a surrogate pair`);
  }
}

/** Pages a list held in memory (instances, streams, keys): the cursor is an offset. */
export function pageOf<T>(all: T[], query: { limit?: unknown; cursor?: unknown }): Page<T> {
  const limit = parseLimit(query.limit);
  const offset = decodeCursor(query.cursor, isOffset) ?? 0;
  const items = all.slice(offset, offset + limit);
  return { items, next_cursor: offset + limit < all.length ? encodeCursor(offset + limit) : null };
}

/** Pages a keyset listing fetched with limit + 1 rows: the extra row says there is more. */
export function keysetPage<T>(rows: T[], limit: number, position: (last: T) => unknown): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items,
    next_cursor: rows.length > limit && last !== undefined ? encodeCursor(position(last)) : null,
  };
}

/** Whether year-month-day names a day of the calendar (2026-02-30 does not). */
function isCalendarDay(year: number, month: number, day: number): boolean {
  if (month < 1 || month > 12 || day < 1) return false;
  return day <= new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** What an operator's time reads as: the time, or why it is none. */
export type IsoTimeReading = { ok: true; at: Date } | { ok: false; problem: 'format' | 'calendar' };

/**
 * An ISO 8601 time as operators write it, read the same by the admin API and the CLI: a date
 * (the start of that day in UTC), or a date and a time of day after `T` or a space. A time of day
 * without a zone is UTC, as the console shows times: JavaScript would read it in the zone of the
 * process, whatever that is. A day the calendar does not have (2026-02-30, which `Date` would
 * read as March 2) is refused rather than moved.
 */
export function readIsoTime(text: string): IsoTimeReading {
  const date = /^(\d{4})-(\d{2})-(\d{2})/.exec(text);
  if (!date) return { ok: false, problem: 'format' };
  if (!isCalendarDay(Number(date[1]), Number(date[2]), Number(date[3])))
    return { ok: false, problem: 'calendar' };
  const iso = text.replace(/^(\d{4}-\d{2}-\d{2}) (?=\d)/, '$1T');
  const at = new Date(/T[\d:.]+$/.test(iso) ? `${iso}Z` : iso);
  return Number.isNaN(at.getTime()) ? { ok: false, problem: 'format' } : { ok: true, at };
}

/** An ISO 8601 time from a query string (see readIsoTime). */
export function parseTime(name: string, value: unknown): Date | undefined {
  if (value === undefined || value === '') return undefined;
  const read = readIsoTime(String(value));
  if (!read.ok) throw new AdminQueryError(`${name} must be an ISO 8601 time, e.g. 2026-01-31T09:00:00Z`);
  return read.at;
}

/** `since` and `until` of a list or an action; `since` must come before `until`. */
export function parseTimeRange(
  since: unknown,
  until: unknown,
): { since: Date | undefined; until: Date | undefined } {
  const range = { since: parseTime('since', since), until: parseTime('until', until) };
  if (range.since && range.until && range.since >= range.until) {
    throw new AdminQueryError('since must be before until');
  }
  return range;
}

/**
 * Refuses a query parameter given more than once (`?type=a&type=b` arrives as an array): the
 * admin API takes one value per parameter, and a list would reach a filter as text it never meant.
 */
export function singleValued(query: unknown): void {
  if (query === null || typeof query !== 'object') return;
  for (const [name, value] of Object.entries(query)) {
    if (value !== undefined && typeof value !== 'string') throw new AdminQueryError(`give ${name} once`);
  }
}

export function optionalText(value: unknown): string | undefined {
  return value === undefined || value === '' ? undefined : String(value);
}

export function oneOf<T extends string>(name: string, value: unknown, allowed: readonly T[]): T | undefined {
  if (value === undefined || value === '') return undefined;
  if (!allowed.includes(value as T))
    throw new AdminQueryError(`${name} must be one of ${allowed.join(', ')}`);
  return value as T;
}
