/**
 * Operator queries shared by both drivers: the SQL is portable apart from bind markers and the
 * subject text search, which the dialect supplies. Listings are newest first with keyset
 * cursors, so a page costs the same on the first and the thousandth page.
 */
import { storableText } from '../plugin-api/storable-text.ts';
import {
  date,
  deliveryFromRow,
  eventFromRow,
  json,
  optionalDate,
  storableJson,
  EVENT_COLUMNS_PREFIXED,
  type Row,
} from './rows.ts';
import type {
  ActivityBucket,
  AuditEntry,
  AuditQuery,
  DeliveryQuery,
  DestinationHealth,
  EventQuery,
  NewAuditEntry,
  OperatorStore,
} from './types.ts';

export interface SqlRunner {
  dialect: 'sqlite' | 'postgres';
  rows(sql: string, params: unknown[]): Promise<Row[]>;
}

/** Collects bind values and hands out the dialect's marker for each. */
function binder(dialect: SqlRunner['dialect']) {
  const params: unknown[] = [];
  return {
    params,
    bind(value: unknown): string {
      params.push(value);
      return dialect === 'sqlite' ? '?' : `$${params.length}`;
    },
  };
}

/** A LIKE pattern matching `text` as it appears inside stored JSON, wildcards escaped. */
export function jsonMentionPattern(text: string): string {
  const inJson = JSON.stringify(text).slice(1, -1);
  return `%${inJson.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/**
 * SQLite's LIKE folds ASCII letters only (`Ä` never matches `ä`), so the SQLite store registers
 * this deterministic function on its connection, and a search for text beyond ASCII compares the
 * folded subject with the folded pattern. It folds as the admin API's own matching does.
 */
export const SQLITE_FOLD = 'ssf_fold';
export const foldText = (text: string): string => text.toLowerCase();
export function sqliteFold(text: unknown): string | null {
  return text === null || text === undefined ? null : foldText(String(text));
}

const ASCII = /^\p{ASCII}*$/u;

const AUDIT_COLUMNS = 'id, at, actor, role, action, target, detail';

function auditFromRow(row: Row): AuditEntry {
  return {
    id: Number(row.id),
    at: date(row.at),
    actor: String(row.actor),
    role: String(row.role),
    action: String(row.action),
    target: String(row.target),
    detail: json<Record<string, unknown>>(row.detail),
  };
}

export function createOperatorStore(db: SqlRunner): OperatorStore {
  /** Whether an event's subject mentions `text`, in any case (PostgreSQL's ILIKE folds every letter). */
  const mentions = (text: string, bind: (value: unknown) => string): string => {
    if (db.dialect === 'postgres')
      return `e.subject::text ILIKE ${bind(jsonMentionPattern(text))} ESCAPE '\\'`;
    const pattern = jsonMentionPattern(foldText(text));
    // An ASCII pattern: LIKE's own folding suffices and spares a call into JavaScript per row.
    const subject = ASCII.test(pattern) ? 'e.subject' : `${SQLITE_FOLD}(e.subject)`;
    return `${subject} LIKE ${bind(pattern)} ESCAPE '\\'`;
  };

  return {
    async listEvents(query: EventQuery) {
      const { params, bind } = binder(db.dialect);
      const clauses = ['1 = 1'];
      if (query.instanceId !== undefined) clauses.push(`e.instance_id = ${bind(query.instanceId)}`);
      if (query.type !== undefined) clauses.push(`e.type = ${bind(query.type)}`);
      if (query.since !== undefined) clauses.push(`e.accepted_at >= ${bind(query.since.getTime())}`);
      if (query.until !== undefined) clauses.push(`e.accepted_at < ${bind(query.until.getTime())}`);
      if (query.subjectMentions !== undefined) {
        const any = query.subjectMentions.map((text) => mentions(text, bind));
        clauses.push(any.length === 0 ? '1 = 0' : `(${any.join(' OR ')})`);
      }
      if (query.before !== undefined) {
        const at = query.before.acceptedAt.getTime();
        clauses.push(
          `(e.accepted_at < ${bind(at)} OR (e.accepted_at = ${bind(at)} AND e.id < ${bind(query.before.id)}))`,
        );
      }
      const rows = await db.rows(
        `SELECT ${EVENT_COLUMNS_PREFIXED} FROM events e WHERE ${clauses.join(' AND ')}
         ORDER BY e.accepted_at DESC, e.id DESC LIMIT ${bind(query.limit)}`,
        params,
      );
      return rows.map((row) => eventFromRow(row, 'e_'));
    },

    async listDeliveries(query: DeliveryQuery) {
      const { params, bind } = binder(db.dialect);
      const clauses = ['1 = 1'];
      if (query.destinationId !== undefined) clauses.push(`destination_id = ${bind(query.destinationId)}`);
      if (query.state !== undefined) clauses.push(`state = ${bind(query.state)}`);
      if (query.eventId !== undefined) clauses.push(`event_id = ${bind(query.eventId)}`);
      if (query.beforeId !== undefined) clauses.push(`id < ${bind(query.beforeId)}`);
      const rows = await db.rows(
        `SELECT * FROM deliveries WHERE ${clauses.join(' AND ')} ORDER BY id DESC LIMIT ${bind(query.limit)}`,
        params,
      );
      return rows.map(deliveryFromRow);
    },

    async deliveriesOf(eventIds: string[]) {
      if (eventIds.length === 0) return [];
      const { params, bind } = binder(db.dialect);
      const rows = await db.rows(
        `SELECT * FROM deliveries WHERE event_id IN (${eventIds.map(bind).join(', ')}) ORDER BY id`,
        params,
      );
      return rows.map(deliveryFromRow);
    },

    async destinationHealth(since: Date) {
      const { params, bind } = binder(db.dialect);
      const at = since.getTime();
      const inWindow = (column: string) => `${column} >= ${bind(at)}`;
      const delivered = () => `state = 'delivered' AND ${inWindow('delivered_at')}`;
      const rows = await db.rows(
        `SELECT destination_id,
           SUM(CASE WHEN ${delivered()} THEN 1 ELSE 0 END) AS delivered,
           SUM(CASE WHEN state = 'dead' AND ${inWindow('dead_at')} THEN 1 ELSE 0 END) AS dead,
           SUM(CASE WHEN state IN ('pending', 'leased') THEN 1 ELSE 0 END) AS backlog,
           SUM(CASE WHEN (state = 'pending' AND attempts > 0) OR (state = 'leased' AND attempts > 1)
             THEN 1 ELSE 0 END) AS retrying,
           AVG(CASE WHEN ${delivered()} THEN delivered_at - enqueued_at END) AS latency,
           MAX(delivered_at) AS last_delivered
         FROM deliveries
         WHERE state IN ('pending', 'leased') OR ${inWindow('delivered_at')} OR ${inWindow('dead_at')}
         GROUP BY destination_id ORDER BY destination_id`,
        params,
      );
      return rows.map((row): DestinationHealth => ({
        destinationId: String(row.destination_id),
        delivered: Number(row.delivered),
        dead: Number(row.dead),
        backlog: Number(row.backlog),
        retrying: Number(row.retrying),
        meanLatencyMs: row.latency === null ? undefined : Math.round(Number(row.latency)),
        lastDeliveredAt: optionalDate(row.last_delivered),
      }));
    },

    async activity(since: Date, until: Date, bucketMs: number) {
      const from = since.getTime();
      const to = until.getTime();
      // CAST: SQLite binds JS numbers as REAL, which would make the division fractional.
      const count = async (table: string, column: string, condition: string) => {
        const { params, bind } = binder(db.dialect);
        const rows = await db.rows(
          `SELECT CAST((${column} - ${bind(from)}) / ${bind(bucketMs)} AS INTEGER) AS b, COUNT(*) AS n FROM ${table}
           WHERE ${condition} ${column} >= ${bind(from)} AND ${column} < ${bind(to)} GROUP BY b`,
          params,
        );
        return new Map(rows.map((row) => [Number(row.b), Number(row.n)]));
      };
      const [accepted, delivered, dead] = await Promise.all([
        count('events', 'accepted_at', ''),
        count('deliveries', 'delivered_at', "state = 'delivered' AND"),
        count('deliveries', 'dead_at', "state = 'dead' AND"),
      ]);
      const buckets: ActivityBucket[] = [];
      for (let i = 0; from + i * bucketMs < to; i += 1) {
        buckets.push({
          start: new Date(from + i * bucketMs),
          accepted: accepted.get(i) ?? 0,
          delivered: delivered.get(i) ?? 0,
          dead: dead.get(i) ?? 0,
        });
      }
      return buckets;
    },

    async recordAudit(entry: NewAuditEntry) {
      const { params, bind } = binder(db.dialect);
      const rows = await db.rows(
        `INSERT INTO audit_log (at, actor, role, action, target, detail)
         VALUES (${bind(entry.at.getTime())}, ${bind(entry.actor)}, ${bind(entry.role)}, ${bind(entry.action)},
           ${bind(storableText(entry.target))}, ${bind(storableJson(entry.detail))})
         RETURNING ${AUDIT_COLUMNS}`,
        params,
      );
      return auditFromRow(rows[0] as Row);
    },

    async listAudit(query: AuditQuery) {
      const { params, bind } = binder(db.dialect);
      const clauses = ['1 = 1'];
      if (query.actor !== undefined) clauses.push(`actor = ${bind(query.actor)}`);
      if (query.action !== undefined) clauses.push(`action = ${bind(query.action)}`);
      if (query.since !== undefined) clauses.push(`at >= ${bind(query.since.getTime())}`);
      if (query.until !== undefined) clauses.push(`at < ${bind(query.until.getTime())}`);
      if (query.beforeId !== undefined) clauses.push(`id < ${bind(query.beforeId)}`);
      const rows = await db.rows(
        `SELECT ${AUDIT_COLUMNS} FROM audit_log WHERE ${clauses.join(' AND ')}
         ORDER BY id DESC LIMIT ${bind(query.limit)}`,
        params,
      );
      return rows.map(auditFromRow);
    },
  };
}
