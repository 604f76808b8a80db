/**
 * Row decoding shared by both drivers. SQLite returns JSON as text and times as numbers;
 * PostgreSQL returns jsonb parsed and BIGINT as strings. These helpers accept either.
 */
import { storableText } from '../plugin-api/storable-text.ts';
import type { Severity, SubjectIdentifier } from '../plugin-api/types.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeliveryRecord,
  DeliveryState,
  LastError,
  StoredEvent,
  StreamRecord,
  StreamStatus,
} from './types.ts';

export type Row = Record<string, unknown>;

export function json<T>(value: unknown): T {
  return (typeof value === 'string' ? JSON.parse(value) : value) as T;
}

export function optionalJson<T>(value: unknown): T | undefined {
  return value === null || value === undefined ? undefined : json<T>(value);
}

export function date(value: unknown): Date {
  return new Date(Number(value));
}

export function optionalDate(value: unknown): Date | undefined {
  return value === null || value === undefined ? undefined : new Date(Number(value));
}

export function optionalString(value: unknown): string | undefined {
  return value === null || value === undefined ? undefined : String(value);
}

/** The columns of the events table: what eventFromRow reads and EVENT_COLUMNS_PREFIXED selects. */
const EVENT_COLUMNS = [
  'id',
  'instance_id',
  'source_record_id',
  'type',
  'subject',
  'subject_key',
  'claims',
  'txn',
  'occurred_at',
  'accepted_at',
  'severity',
] as const;
type EventColumnNames = Record<(typeof EVENT_COLUMNS)[number], string>;
/**
 * The column names of an event row under each prefix, made once: a lease reads every event
 * through here, and a key built by concatenation for each read is looked up as a new string.
 */
const eventColumnNames = new Map<string, EventColumnNames>();

function eventColumns(prefix: string): EventColumnNames {
  let names = eventColumnNames.get(prefix);
  if (names === undefined) {
    names = Object.fromEntries(EVENT_COLUMNS.map((c) => [c, prefix + c])) as EventColumnNames;
    eventColumnNames.set(prefix, names);
  }
  return names;
}

/** Reads the columns of the events table (optionally prefixed, e.g. `e_` in joins). */
export function eventFromRow(row: Row, prefix = ''): StoredEvent {
  const c = eventColumns(prefix);
  const severity = optionalString(row[c.severity]) as Severity | undefined;
  return {
    id: String(row[c.id]),
    instanceId: String(row[c.instance_id]),
    sourceRecordId: String(row[c.source_record_id]),
    type: String(row[c.type]),
    subject: json<SubjectIdentifier>(row[c.subject]),
    subjectKey: String(row[c.subject_key]),
    claims: json<Record<string, unknown>>(row[c.claims]),
    txn: String(row[c.txn]),
    occurredAt: date(row[c.occurred_at]),
    acceptedAt: date(row[c.accepted_at]),
    ...(severity === undefined ? {} : { severity }),
  };
}

export function deliveryFromRow(row: Row): DeliveryRecord {
  return {
    id: Number(row.id),
    eventId: String(row.event_id),
    destinationId: String(row.destination_id),
    jti: String(row.jti),
    orderingKey: String(row.ordering_key),
    state: String(row.state) as DeliveryState,
    attempts: Number(row.attempts),
    dueAt: date(row.due_at),
    leaseOwner: optionalString(row.lease_owner),
    enqueuedAt: date(row.enqueued_at),
    updatedAt: date(row.updated_at),
    firstAttemptAt: optionalDate(row.first_attempt_at),
    lastAttemptAt: optionalDate(row.last_attempt_at),
    deliveredAt: optionalDate(row.delivered_at),
    deadAt: optionalDate(row.dead_at),
    lastError: optionalJson<LastError>(row.last_error),
    setJwt: optionalString(row.set_jwt),
  };
}

/** Reads a dead letter from `deliveries d JOIN events e` selected by DEAD_LETTER_COLUMNS. */
export function deadLetterFromRow(row: Row): DeadLetter {
  return {
    id: Number(row.id),
    destinationId: String(row.destination_id),
    jti: String(row.jti),
    eventId: String(row.event_id),
    eventType: String(row.type),
    instanceId: String(row.instance_id),
    sourceRecordId: String(row.source_record_id),
    subject: json<SubjectIdentifier>(row.subject),
    attempts: Number(row.attempts),
    lastError: optionalJson<LastError>(row.last_error),
    setJwt: optionalString(row.set_jwt),
    enqueuedAt: date(row.enqueued_at),
    deadAt: date(row.dead_at),
    deadSeq: Number(row.dead_seq),
  };
}

export const DEAD_LETTER_COLUMNS =
  'd.id, d.destination_id, d.jti, d.event_id, d.attempts, d.last_error, d.set_jwt, d.enqueued_at, d.dead_at, d.dead_seq, ' +
  'e.type, e.instance_id, e.source_record_id, e.subject';

export const EVENT_COLUMNS_PREFIXED = EVENT_COLUMNS.map((c) => `e.${c} AS e_${c}`).join(', ');

export function streamFromRow(row: Row): StreamRecord {
  return {
    streamId: String(row.stream_id),
    clientId: String(row.client_id),
    config: json<Record<string, unknown>>(row.config),
    status: String(row.status) as StreamStatus,
    statusReason: optionalString(row.status_reason),
    createdAt: date(row.created_at),
    updatedAt: date(row.updated_at),
  };
}

/**
 * Builds the WHERE clause of a dead-letter query over `deliveries d JOIN events e`.
 * `param` registers a value and returns its bind marker (`?` or `$n`).
 */
export function deadLetterWhere(filter: DeadLetterFilter, param: (value: unknown) => string): string {
  const clauses = ["d.state = 'dead'"];
  if (filter.ids !== undefined) {
    clauses.push(
      filter.ids.length === 0 ? 'FALSE' : `d.id IN (${filter.ids.map((id) => param(id)).join(', ')})`,
    );
  }
  if (filter.destinationId !== undefined) clauses.push(`d.destination_id = ${param(filter.destinationId)}`);
  if (filter.eventType !== undefined) clauses.push(`e.type = ${param(filter.eventType)}`);
  if (filter.since !== undefined) clauses.push(`d.dead_at >= ${param(filter.since.getTime())}`);
  if (filter.until !== undefined) clauses.push(`d.dead_at < ${param(filter.until.getTime())}`);
  return clauses.join(' AND ');
}

/** JSON of what the bridge writes about others' answers (errors, receivers' setErrs, audit detail). */
export function storableJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'string' ? storableText(v) : v));
}

export function lastErrorJson(error: LastError): string {
  return storableJson(error);
}

export function countsByKey(rows: Row[], key: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const row of rows) out[String(row[key])] = Number(row.n);
  return out;
}

/**
 * Claims a one-time id: inserted, or taken over when its earlier use has expired; the statement
 * returns a row only then. `p` writes the marker of each parameter ($1, or ?), in this order:
 * scope, id, expires_at, now.
 */
/** Whether a one-time id is in use: parameters scope, id, now. */
export function oneTimeIdUsedSql(p: (n: 1 | 2 | 3) => string): string {
  return `SELECT 1 AS used FROM one_time_ids WHERE scope = ${p(1)} AND id = ${p(2)} AND expires_at > ${p(3)}`;
}

export function claimOneTimeIdSql(p: (n: 1 | 2 | 3 | 4) => string): string {
  return `INSERT INTO one_time_ids (scope, id, expires_at) VALUES (${p(1)}, ${p(2)}, ${p(3)})
    ON CONFLICT (scope, id) DO UPDATE SET expires_at = excluded.expires_at
    WHERE one_time_ids.expires_at <= ${p(4)}
    RETURNING id`;
}
