import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { checkpointConflict } from '../../plugin-api/errors.ts';
import { streamConflict } from '../stream-conflict.ts';
import type { Logger } from '../../plugin-api/types.ts';
import {
  DEAD_LETTER_COLUMNS,
  claimOneTimeIdSql,
  oneTimeIdUsedSql,
  EVENT_COLUMNS_PREFIXED,
  countsByKey,
  date,
  deadLetterFromRow,
  deadLetterWhere,
  deliveryFromRow,
  eventFromRow,
  json,
  lastErrorJson,
  storableJson,
  streamFromRow,
  type Row,
} from '../rows.ts';
import {
  DEFAULT_CHECKPOINT_NAME,
  LIST_ERRORS_LIMIT,
  streamDestinationId,
  type AcceptBatch,
  type AcceptItemResult,
  type AcceptOutcome,
  type CheckpointStore,
  type CheckpointWrite,
  type DeadLetterFilter,
  type DeadLetterStore,
  type DeliveryOutcome,
  type DeliveryStore,
  type EventStore,
  type LeaderLeaseStore,
  type OneTimeIdStore,
  type OperatorStore,
  type NewDelivery,
  type PruneRequest,
  type PruneResult,
  type Store,
  type StoreStats,
  type StreamStore,
} from '../types.ts';
import { postgresMigrations, type Migration } from './migrations.ts';
import { createOperatorStore } from '../operator.ts';
import { checkpointText } from '../checkpoint.ts';
import { checkSchemaVersion } from '../schema-version.ts';

export interface PostgresStoreOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /** Schema holding the tables; created when missing. */
  schema?: string;
  poolSize?: number;
  connectTimeoutMs?: number;
  /** Server-side limit per statement, so a stuck query cannot hold a lease forever. */
  statementTimeoutMs?: number;
  /**
   * Bring the schema up to date (default). One-shot commands pass false: the database must then
   * be at this build's version already (see checkSchemaVersion), and nothing is created.
   */
  migrate?: boolean;
  logger?: Logger;
}

type Queryable = pg.Pool | pg.PoolClient;

/** Serialization failures and deadlocks: the transaction is safe to run again. */
const RETRYABLE_SQLSTATES = new Set(['40001', '40P01']);

const CLAIM_ONE_TIME_ID = claimOneTimeIdSql((n) => `$${n}`);
const ONE_TIME_ID_USED = oneTimeIdUsedSql((n) => `$${n}`);
/**
 * The shared store: N bridge instances on one database. Deliveries are leased with
 * `FOR UPDATE SKIP LOCKED`, so instances never wait on or double-take each other's rows.
 */
export class PostgresStore implements Store {
  readonly driver = 'postgres' as const;
  readonly #pool: pg.Pool;

  readonly events: EventStore;
  readonly deliveries: DeliveryStore;
  readonly deadLetters: DeadLetterStore;
  readonly checkpoints: CheckpointStore;
  readonly streams: StreamStore;
  readonly leases: LeaderLeaseStore;
  readonly oneTimeIds: OneTimeIdStore;
  readonly operator: OperatorStore;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
    this.events = this.#eventStore();
    this.deliveries = this.#deliveryStore();
    this.deadLetters = this.#deadLetterStore();
    this.checkpoints = this.#checkpointStore();
    this.streams = this.#streamStore();
    this.leases = this.#leaseStore();
    this.oneTimeIds = {
      claim: async (scope, id, expiresAt, now) =>
        (await this.#rows(CLAIM_ONE_TIME_ID, [scope, id, expiresAt.getTime(), now.getTime()])).length > 0,
      used: async (scope, id, now) =>
        (await this.#rows(ONE_TIME_ID_USED, [scope, id, now.getTime()])).length > 0,
    };
    this.operator = createOperatorStore({
      dialect: 'postgres',
      rows: (sql, params) => this.#rows(sql, params),
    });
  }

  static async open(options: PostgresStoreOptions): Promise<PostgresStore> {
    const schema = options.schema ?? 'public';
    const settings = [`-c search_path=${quoteIdent(schema)}`];
    if (options.statementTimeoutMs !== undefined) {
      settings.push(`-c statement_timeout=${Math.round(options.statementTimeoutMs)}`);
    }
    const connection: pg.ClientConfig = {
      connectionString: options.url,
      connectionTimeoutMillis: options.connectTimeoutMs ?? 10_000,
      options: settings.join(' '),
      types: { getTypeParser: typeParser as typeof pg.types.getTypeParser },
      // A server that vanished without closing its connections (a host that crashed, a failover
      // that moved the address) leaves queries unanswered until TCP gives up, some 15 minutes:
      // keepalives find the dead peer, and a client-side deadline a little past statement_timeout
      // ends the query (the pool then discards the connection, see #tx).
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      // statement_timeout 0 is PostgreSQL's "no limit": no client deadline then either.
      ...(options.statementTimeoutMs !== undefined && options.statementTimeoutMs > 0
        ? { query_timeout: clientQueryTimeout(options.statementTimeoutMs) }
        : {}),
    };
    const pool = new pg.Pool({ ...connection, max: options.poolSize ?? 10 });
    // An idle client losing its connection must not crash the process; the pool replaces it.
    pool.on('error', (err) => options.logger?.warn({ err: err.message }, 'PostgreSQL connection lost'));
    try {
      // Migrating waits for another instance's migration and may run long: no query deadline.
      if (options.migrate ?? true)
        await applyMigrations({ ...connection, query_timeout: undefined }, schema, postgresMigrations);
      else await checkSchema(pool, schema, postgresMigrations);
    } catch (err) {
      await pool.end();
      throw err;
    }
    return new PostgresStore(pool);
  }

  async #rows(sql: string, params: unknown[] = [], on: Queryable = this.#pool): Promise<Row[]> {
    return (await on.query(sql, params)).rows as Row[];
  }

  async #count(sql: string, params: unknown[] = [], on: Queryable = this.#pool): Promise<number> {
    return (await on.query(sql, params)).rowCount ?? 0;
  }

  /** Runs `fn` in a transaction opened by `begin` (which may add `SET LOCAL`s). */
  async #tx<T>(fn: (client: pg.PoolClient) => Promise<T>, begin = 'BEGIN'): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const client = await this.#pool.connect();
      let discard = false;
      try {
        await client.query(begin);
        const result = await fn(client);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        const code = (err as { code?: string }).code;
        // Without a SQLSTATE the connection itself failed (a query deadline, a reset): it is
        // discarded rather than handed to the next caller with a query still running on it.
        if (code === undefined) discard = true;
        else await client.query('ROLLBACK').catch(() => undefined);
        if (attempt < 3 && code !== undefined && RETRYABLE_SQLSTATES.has(code)) continue;
        throw err;
      } finally {
        client.release(discard);
      }
    }
  }

  async accept(batch: AcceptBatch): Promise<AcceptOutcome> {
    const now = batch.now.getTime();
    return this.#tx(async (c) => {
      const holders = await this.#claimDedupe(c, batch, now);
      const results: AcceptItemResult[] = [];
      const accepted: typeof batch.events = [];
      const firstByKey = new Map<string, string>();
      for (const item of batch.events) {
        const key = item.dedupeKey;
        if (key !== undefined) {
          const earlier = firstByKey.get(key) ?? holders.get(key);
          if (earlier !== undefined && earlier !== item.event.id) {
            results.push({ status: 'duplicate', id: earlier });
            continue;
          }
          firstByKey.set(key, item.event.id);
        }
        accepted.push(item);
        results.push({ status: 'accepted', id: item.event.id });
      }
      await this.#insertEvents(c, accepted);
      const scheduled = accepted.filter((item) => item.releaseAt !== undefined);
      if (scheduled.length > 0) {
        await c.query({
          name: 'ssf-insert-schedules',
          text: `INSERT INTO schedules (event_id, release_at) SELECT * FROM unnest($1::text[], $2::bigint[])`,
          values: [scheduled.map((i) => i.event.id), scheduled.map((i) => i.releaseAt!.getTime())],
        });
      }
      await this.#insertDeliveries(
        c,
        accepted
          .filter((item) => item.releaseAt === undefined)
          .flatMap((i) => withEvent(i.event.id, i.deliveries)),
        now,
      );
      if (batch.checkpoint?.expected) await this.#swapCheckpoint(c, batch.checkpoint, now);
      else if (batch.checkpoint !== undefined) {
        const { instanceId, name, value } = batch.checkpoint;
        await this.#putCheckpoint(c, instanceId, name, value, now);
      }
      return { results };
    });
  }

  /**
   * Claims the batch's dedupe keys (first item per key) and returns, per key, the event that
   * holds it now: this batch's event when claimed, an earlier event when still live.
   */
  async #claimDedupe(c: pg.PoolClient, batch: AcceptBatch, now: number): Promise<Map<string, string>> {
    const wanted = new Map<string, string>();
    for (const item of batch.events) {
      if (item.dedupeKey !== undefined && !wanted.has(item.dedupeKey))
        wanted.set(item.dedupeKey, item.event.id);
    }
    if (wanted.size === 0) return new Map();
    const keys = [...wanted.keys()];
    // Concurrent claims of one key wait on each other here; the loser sees the winner's row.
    const claimed = await this.#rows(
      `INSERT INTO dedupe_keys (key, event_id, expires_at)
       SELECT k, e, $3::bigint FROM unnest($1::text[], $2::text[]) AS u(k, e)
       ON CONFLICT (key) DO UPDATE SET event_id = EXCLUDED.event_id, expires_at = EXCLUDED.expires_at
       WHERE dedupe_keys.expires_at <= $4
       RETURNING key`,
      [keys, [...wanted.values()], batch.dedupeExpiresAt.getTime(), now],
      c,
    );
    const holders = new Map(wanted);
    const claimedKeys = new Set(claimed.map((r) => String(r.key)));
    const taken = keys.filter((k) => !claimedKeys.has(k));
    if (taken.length > 0) {
      for (const row of await this.#rows(
        'SELECT key, event_id FROM dedupe_keys WHERE key = ANY($1::text[])',
        [taken],
        c,
      )) {
        holders.set(String(row.key), String(row.event_id));
      }
    }
    return holders;
  }

  async #insertEvents(c: pg.PoolClient, items: AcceptBatch['events']): Promise<void> {
    if (items.length === 0) return;
    const e = items.map((i) => i.event);
    await c.query({
      name: 'ssf-insert-events',
      text: `INSERT INTO events (id, instance_id, source_record_id, type, subject, subject_key, claims, txn, severity, occurred_at, accepted_at)
             SELECT id, instance_id, source_record_id, type, subject::jsonb, subject_key, claims::jsonb, txn, severity, occurred_at, accepted_at
             FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
                         $9::text[], $10::bigint[], $11::bigint[])
               AS u(id, instance_id, source_record_id, type, subject, subject_key, claims, txn, severity, occurred_at, accepted_at)`,
      values: [
        e.map((x) => x.id),
        e.map((x) => x.instanceId),
        e.map((x) => x.sourceRecordId),
        e.map((x) => x.type),
        e.map((x) => JSON.stringify(x.subject)),
        e.map((x) => x.subjectKey),
        e.map((x) => JSON.stringify(x.claims)),
        e.map((x) => x.txn),
        e.map((x) => x.severity ?? null),
        e.map((x) => x.occurredAt.getTime()),
        e.map((x) => x.acceptedAt.getTime()),
      ],
    });
  }

  async #insertDeliveries(
    c: pg.PoolClient,
    rows: Array<NewDelivery & { eventId: string }>,
    now: number,
  ): Promise<void> {
    if (rows.length === 0) return;
    await this.#lockOrderingKeys(c, keyList(rows.map((r) => r.orderingKey)));
    // Holding the keys, this statement sees every committed row of them and no other
    // transaction adds one until this commits: so the ids of a key grow in commit order, and a
    // new row leads its key exactly when the key has no unfinished row (the first of the batch).
    // The probe is a scalar subquery, one index lookup per key: a NOT EXISTS here would be
    // planned as a hash of every unfinished row.
    await c.query({
      name: 'ssf-insert-deliveries',
      text: `INSERT INTO deliveries (event_id, destination_id, jti, ordering_key, state, attempts, due_at, enqueued_at,
                                     updated_at, head)
             SELECT event_id, destination_id, jti, ordering_key, 'pending', 0, $5, $5, $5,
               first AND ${headOf('u.ordering_key')} IS NULL
             FROM (SELECT u.*, n = MIN(n) OVER (PARTITION BY ordering_key) AS first
                   FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY
                     AS u(event_id, destination_id, jti, ordering_key, n)) AS u
             ORDER BY n`,
      values: [
        rows.map((r) => r.eventId),
        rows.map((r) => r.destinationId),
        rows.map((r) => r.jti),
        rows.map((r) => r.orderingKey),
        now,
      ],
    });
  }

  /**
   * Locks the ordering keys `keys` selects, creating their ordering_locks rows if missing, in
   * key order so that two such transactions never wait on each other in a cycle. Every
   * transaction that changes which rows of a key are unfinished (insert, finishing outcome,
   * replay, discard) takes this lock before it reads or writes them, and moves the key's head
   * flag before it commits. Leasing takes no such lock. `WHERE false` locks an existing row
   * without writing a new version of it; a row deleted meanwhile is inserted again.
   */
  async #lockOrderingKeys(c: pg.PoolClient, keys: KeySource): Promise<void> {
    await c.query(lockKeysSql(keys.text), keys.values);
  }

  /**
   * Flags the head (lowest unfinished row) of each locked key that has lost it: its head
   * finished or was deleted (such rows carry no flag), or — for `demote`, the heads before a
   * replay — a lower row became unfinished again. Keys left with no unfinished row give up
   * their ordering_locks row.
   */
  async #flagHeads(c: pg.PoolClient, keys: KeySource, demote: number[] = []): Promise<void> {
    await c.query(
      `WITH h AS (
         SELECT s.k, ${headOf('s.k')} AS id FROM (SELECT DISTINCT k FROM (${keys.text}) AS s0(k)) AS s),
       demoted AS (UPDATE deliveries d SET head = false
                   WHERE d.id = ANY($${keys.values.length + 1}::bigint[]) AND d.head
                     AND NOT EXISTS (SELECT 1 FROM h WHERE h.id = d.id)),
       idle AS (DELETE FROM ordering_locks l USING h WHERE l.ordering_key = h.k AND h.id IS NULL)
       UPDATE deliveries d SET head = true FROM h WHERE d.id = h.id AND NOT d.head`,
      [...keys.values, demote],
    );
  }

  /**
   * Compare-and-set. The conditional write takes the row's lock; a concurrent transaction that
   * changed it first makes the condition false once it commits (READ COMMITTED re-reads the row),
   * and an insert meets the other's row.
   */
  async #swapCheckpoint(c: Queryable, write: CheckpointWrite, now: number): Promise<void> {
    const { instanceId, name, value, expected } = write;
    const changed =
      expected!.value === undefined
        ? await this.#count(
            `INSERT INTO checkpoints (instance_id, name, value, updated_at) VALUES ($1, $2, $3::jsonb, $4)
             ON CONFLICT (instance_id, name) DO NOTHING`,
            [instanceId, name, checkpointText(value), now],
            c,
          )
        : await this.#count(
            `UPDATE checkpoints SET value = $3::jsonb, updated_at = $4
             WHERE instance_id = $1 AND name = $2 AND value = $5::jsonb`,
            [instanceId, name, checkpointText(value), now, checkpointText(expected!.value)],
            c,
          );
    if (changed !== 1) throw checkpointConflict(instanceId, name);
  }

  async #putCheckpoint(
    c: Queryable,
    instanceId: string,
    name: string,
    value: unknown,
    now: number,
  ): Promise<void> {
    await c.query({
      name: 'ssf-put-checkpoint',
      text: `INSERT INTO checkpoints (instance_id, name, value, updated_at) VALUES ($1, $2, $3::jsonb, $4)
             ON CONFLICT (instance_id, name) DO UPDATE SET value = EXCLUDED.value, updated_at = EXCLUDED.updated_at`,
      values: [instanceId, name, checkpointText(value), now],
    });
  }

  #eventStore(): EventStore {
    return {
      get: async (id) => {
        const [row] = await this.#rows('SELECT * FROM events WHERE id = $1', [id]);
        return row === undefined ? undefined : eventFromRow(row);
      },
      dueSchedules: async (now, limit) =>
        (
          await this.#rows(
            `SELECT s.release_at, ${EVENT_COLUMNS_PREFIXED} FROM schedules s JOIN events e ON e.id = s.event_id
             WHERE s.release_at <= $1 ORDER BY s.release_at, s.event_id LIMIT $2`,
            [now.getTime(), limit],
          )
        ).map((row) => ({ event: eventFromRow(row, 'e_'), releaseAt: date(row.release_at) })),
      releaseSchedules: async (releases, now) =>
        this.#tx(async (c) => {
          if (releases.length === 0) return [];
          // Deleting the schedule row is the claim: a concurrent release of the same event
          // waits on the row lock, then deletes nothing and writes no deliveries.
          const released = new Set(
            (
              await this.#rows(
                'DELETE FROM schedules WHERE event_id = ANY($1::text[]) RETURNING event_id',
                [releases.map((r) => r.eventId)],
                c,
              )
            ).map((r) => String(r.event_id)),
          );
          const mine = releases.filter((r) => released.has(r.eventId));
          await this.#insertDeliveries(
            c,
            mine.flatMap((r) => withEvent(r.eventId, r.deliveries)),
            now.getTime(),
          );
          return mine.map((r) => r.eventId);
        }),
      findDuplicates: async (keys, now) => {
        if (keys.length === 0) return new Map();
        const rows = await this.#rows(
          'SELECT key, event_id FROM dedupe_keys WHERE key = ANY($1::text[]) AND expires_at > $2',
          [keys, now.getTime()],
        );
        return new Map(rows.map((r) => [String(r.key), String(r.event_id)]));
      },
    };
  }

  #deliveryStore(): DeliveryStore {
    return {
      lease: async ({ destinationId, owner, limit, now, leaseMs }) => {
        const at = now.getTime();
        // Heads only: rows queued behind a head cost nothing here. A head finished or moved by
        // a transaction that committed meanwhile fails the recheck FOR UPDATE makes on the
        // latest row version. `headOf` restates the ordering rule (the row is its key's first
        // unfinished one) at one index probe per head.
        // The plan must walk deliveries_head in (due_at, id) order and stop after `limit` rows:
        // a bitmap scan and sort would visit every due head, and the planner picks one on poor
        // estimates (a table not yet analysed, or head counts that moved since the last ANALYZE).
        // JIT is off because the estimate for a full walk can pass its threshold, and compiling
        // costs far more than the few rows this reads.
        const leased = await this.#tx(
          async (c) =>
            (
              await c.query({
                name: 'ssf-lease',
                text: `WITH picked AS (
             SELECT d.id FROM deliveries d
             WHERE d.destination_id = $1 AND d.head AND d.due_at <= $2
               AND ${headOf('d.ordering_key')} = d.id
             ORDER BY d.due_at, d.id
             LIMIT $3
             FOR UPDATE OF d SKIP LOCKED)
           UPDATE deliveries d SET state = 'leased', lease_owner = $4, lease_token = $5 || ':' || d.id::text,
             due_at = $6, attempts = d.attempts + 1, last_attempt_at = $2, updated_at = $2,
             -- The lease that counts a first attempt stamps it: max_age counts from there.
             first_attempt_at = COALESCE(d.first_attempt_at, $2),
             -- Still leased yet due: its lease expired, so the attempt it was for was interrupted.
             interrupted_attempts = d.interrupted_attempts + CASE WHEN d.state = 'leased' THEN 1 ELSE 0 END
           FROM picked, events e WHERE d.id = picked.id AND e.id = d.event_id
           RETURNING d.id, d.destination_id, d.jti, d.attempts, d.interrupted_attempts, d.enqueued_at,
             d.first_attempt_at, d.lease_token, ${EVENT_COLUMNS_PREFIXED}`,
                values: [destinationId, at, limit, owner, randomUUID(), at + leaseMs],
              })
            ).rows as Row[],
          'BEGIN; SET LOCAL enable_bitmapscan = off; SET LOCAL jit = off',
        );
        return leased
          .map((row) => ({
            id: Number(row.id),
            destinationId: String(row.destination_id),
            jti: String(row.jti),
            attempts: Number(row.attempts),
            interruptedAttempts: Number(row.interrupted_attempts),
            enqueuedAt: date(row.enqueued_at),
            firstAttemptAt: date(row.first_attempt_at),
            leaseToken: String(row.lease_token),
            event: eventFromRow(row, 'e_'),
          }))
          .sort((a, b) => a.id - b.id);
      },
      complete: async (outcomes, now) => {
        // Finishing a row hands its ordering key to the next one, so the keys of the rows to
        // finish are locked first — in the round trip that opens the transaction (their ids
        // are integers, written into the statement), so completing takes no extra round trip.
        const finishing = outcomes
          .filter((o) => o.kind === 'delivered' || o.kind === 'dead')
          .map((o) => o.id);
        // A death takes the next number of the order letters die in, and a later number must
        // never commit before an earlier one (a page read in between would pass over it): the
        // counter's row is locked after the keys and held until this commits. Nothing waits
        // for it holding more than keys, which it then already has, so no lock cycle can form.
        const dying = outcomes.some((o) => o.kind === 'dead');
        const begin =
          finishing.length === 0
            ? 'BEGIN'
            : `BEGIN; ${lockKeysSql(`SELECT ordering_key FROM deliveries WHERE id IN (${finishing.map(sqlInteger).join(', ')})`)}` +
              (dying ? '; SELECT last_seq FROM dead_letter_sequence FOR UPDATE' : '');
        return this.#tx((c) => this.#applyOutcomes(c, outcomes, now.getTime()), begin);
      },
      get: async (id) => {
        const [row] = await this.#rows('SELECT * FROM deliveries WHERE id = $1', [id]);
        return row === undefined ? undefined : deliveryFromRow(row);
      },
      forEvent: async (eventId) =>
        (await this.#rows('SELECT * FROM deliveries WHERE event_id = $1 ORDER BY id', [eventId])).map(
          deliveryFromRow,
        ),
      nextDueAt: async (destinationId) => {
        const [row] = await this.#rows(
          `SELECT MIN(due_at) AS due FROM deliveries WHERE destination_id = $1 AND state IN ('pending', 'leased')`,
          [destinationId],
        );
        return row?.due === null || row?.due === undefined ? undefined : date(row.due);
      },
      backlog: async () =>
        new Map(
          Object.entries(
            countsByKey(
              await this.#rows(
                `SELECT destination_id, COUNT(*) AS n FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY destination_id`,
              ),
              'destination_id',
            ),
          ),
        ),
      discardUnfinished: async (destinationId) => this.#tx((c) => this.#discardUnfinished(c, destinationId)),
    };
  }

  /** Deletes a destination's unfinished rows; the heads of their ordering keys move on. */
  async #discardUnfinished(c: pg.PoolClient, destinationId: string): Promise<number> {
    const keys = (
      await this.#rows(
        `SELECT DISTINCT ordering_key FROM deliveries WHERE destination_id = $1 AND state IN ('pending', 'leased')`,
        [destinationId],
        c,
      )
    ).map((r) => String(r.ordering_key));
    await this.#lockOrderingKeys(c, keyList(keys));
    // Rows of other keys were added after the keys were read; they stay.
    const deleted = await this.#count(
      `DELETE FROM deliveries
       WHERE destination_id = $1 AND state IN ('pending', 'leased') AND ordering_key = ANY($2::text[])`,
      [destinationId, keys],
      c,
    );
    await this.#flagHeads(c, keyList(keys));
    return deleted;
  }

  async #applyOutcomes(c: pg.PoolClient, outcomes: DeliveryOutcome[], now: number): Promise<number> {
    const of = <K extends DeliveryOutcome['kind']>(kind: K) =>
      outcomes.filter((o): o is Extract<DeliveryOutcome, { kind: K }> => o.kind === kind);
    const fence = `d.id = u.id AND d.state = 'leased' AND d.lease_token = u.token`;
    let applied = 0;
    const retry = of('retry');
    if (retry.length > 0) {
      applied += await this.#count(
        `UPDATE deliveries d SET state = 'pending', due_at = u.due, last_error = u.err::jsonb,
           set_jwt = COALESCE(u.jwt, d.set_jwt), interrupted_attempts = 0, updated_at = $6, lease_owner = NULL,
           lease_token = NULL
         FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::text[]) AS u(id, token, due, err, jwt)
         WHERE ${fence}`,
        [
          retry.map((o) => o.id),
          retry.map((o) => o.leaseToken),
          retry.map((o) => o.dueAt.getTime()),
          retry.map((o) => lastErrorJson(o.error)),
          retry.map((o) => o.setJwt ?? null),
          now,
        ],
        c,
      );
    }
    const release = of('release');
    if (release.length > 0) {
      applied += await this.#count(
        `UPDATE deliveries d SET state = 'pending', due_at = $3, attempts = GREATEST(d.attempts - 1, 0),
           first_attempt_at = CASE WHEN d.attempts > 1 THEN d.first_attempt_at END,
           updated_at = $3, lease_owner = NULL, lease_token = NULL
         FROM unnest($1::bigint[], $2::text[]) AS u(id, token) WHERE ${fence}`,
        [release.map((o) => o.id), release.map((o) => o.leaseToken), now],
        c,
      );
    }
    const delivered = of('delivered');
    const dead = of('dead');
    if (delivered.length + dead.length === 0) return applied;
    // The keys of these rows were locked as the transaction began (see `complete`). Finish the
    // rows and move the head flags in one statement: its snapshot, taken after the locks, still
    // shows the rows it finishes as unfinished, so the next head is looked for past them.
    const { rows } = await c.query({
      name: 'ssf-finish-deliveries',
      text: `WITH delivered AS (
         UPDATE deliveries d SET state = 'delivered', delivered_at = $7, updated_at = $7, lease_owner = NULL,
           lease_token = NULL, set_jwt = NULL, head = false
         FROM unnest($1::bigint[], $2::text[]) AS u(id, token) WHERE ${fence}
         RETURNING d.id, d.ordering_key),
       dead AS (
         UPDATE deliveries d SET state = 'dead', dead_at = $7, last_error = u.err::jsonb,
           set_jwt = COALESCE(u.jwt, d.set_jwt), attempts = GREATEST(d.attempts - u.unsent, 0),
           first_attempt_at = CASE WHEN d.attempts - u.unsent > 0 THEN d.first_attempt_at END, updated_at = $7,
           lease_owner = NULL, lease_token = NULL, head = false, dead_seq = q.last_seq + u.n
         FROM unnest($3::bigint[], $4::text[], $5::text[], $6::text[], $8::int[])
             WITH ORDINALITY AS u(id, token, err, jwt, unsent, n),
           dead_letter_sequence q
         WHERE ${fence}
         RETURNING d.id, d.ordering_key),
       numbered AS (
         UPDATE dead_letter_sequence SET last_seq = last_seq + cardinality($3::bigint[])
         WHERE cardinality($3::bigint[]) > 0),
       done AS (SELECT * FROM delivered UNION ALL SELECT * FROM dead),
       h AS (
         SELECT s.k, ${headOf('s.k', 'NOT EXISTS (SELECT 1 FROM done WHERE done.id = p.id)')} AS id
         FROM (SELECT DISTINCT ordering_key AS k FROM done) AS s),
       flagged AS (UPDATE deliveries d SET head = true FROM h WHERE d.id = h.id AND NOT d.head),
       idle AS (DELETE FROM ordering_locks l USING h WHERE l.ordering_key = h.k AND h.id IS NULL)
       SELECT COUNT(*) AS n FROM done`,
      values: [
        delivered.map((o) => o.id),
        delivered.map((o) => o.leaseToken),
        dead.map((o) => o.id),
        dead.map((o) => o.leaseToken),
        dead.map((o) => lastErrorJson(o.error)),
        dead.map((o) => o.setJwt ?? null),
        now,
        dead.map((o) => (o.notAttempted ? 1 : 0)),
      ],
    });
    return applied + Number((rows[0] as Row | undefined)?.n ?? 0);
  }

  #deadLetterQuery(filter: DeadLetterFilter, params: unknown[] = []): { where: string; params: unknown[] } {
    const where = deadLetterWhere(filter, (value) => {
      params.push(value);
      return `$${params.length}`;
    });
    return { where, params };
  }

  #deadLetterStore(): DeadLetterStore {
    return {
      list: async (filter = {}, page = {}) => {
        const { where, params } = this.#deadLetterQuery(filter);
        params.push(page.afterDeadSeq ?? 0, page.limit ?? 100);
        return (
          await this.#rows(
            `SELECT ${DEAD_LETTER_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
             WHERE ${where} AND d.dead_seq > $${params.length - 1} ORDER BY d.dead_seq LIMIT $${params.length}`,
            params,
          )
        ).map(deadLetterFromRow);
      },
      get: async (id) => {
        const [row] = await this.#rows(
          `SELECT ${DEAD_LETTER_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
           WHERE d.state = 'dead' AND d.id = $1`,
          [id],
        );
        return row === undefined ? undefined : deadLetterFromRow(row);
      },
      count: async (filter = {}) => {
        const { where, params } = this.#deadLetterQuery(filter);
        const [row] = await this.#rows(
          `SELECT COUNT(*) AS n FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where}`,
          params,
        );
        return Number(row?.n ?? 0);
      },
      replay: async (filter, now) =>
        this.#tx(async (c) => {
          // A replayed row keeps its id, so it may lead its ordering key again.
          const letters = this.#deadLetterQuery(filter);
          const keys = (
            await this.#rows(
              `SELECT DISTINCT d.ordering_key FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${letters.where}`,
              letters.params,
              c,
            )
          ).map((r) => String(r.ordering_key));
          await this.#lockOrderingKeys(c, keyList(keys));
          const heads = (
            await this.#rows(`SELECT ${headOf('s.k')} AS id FROM unnest($1::text[]) AS s(k)`, [keys], c)
          ).flatMap((r) => (r.id === null ? [] : [Number(r.id)]));
          // Letters of other keys were dead-lettered after the keys were read; they stay.
          // The state test sits on the target row too: a row changed while this waited for its lock
          // is re-checked by that condition alone, not by the subquery's earlier reading.
          const { where, params } = this.#deadLetterQuery(filter, [now.getTime(), keys]);
          const replayed = await this.#count(
            `UPDATE deliveries SET state = 'pending', attempts = 0, interrupted_attempts = 0, due_at = $1,
               enqueued_at = $1, first_attempt_at = NULL, dead_at = NULL, dead_seq = NULL, updated_at = $1
             WHERE state = 'dead' AND ordering_key = ANY($2::text[])
               AND id IN (SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where})`,
            params,
            c,
          );
          await this.#flagHeads(c, keyList(keys), heads);
          return replayed;
        }),
      purge: async (filter) => {
        const { where, params } = this.#deadLetterQuery(filter);
        // `x.state = 'dead'` on the target row: a letter replayed while the purge waited for its
        // lock is pending when the purge gets it, and must stay (it may lead its ordering key).
        return this.#count(
          `DELETE FROM deliveries x WHERE x.state = 'dead'
             AND x.id IN (SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where})`,
          params,
        );
      },
    };
  }

  #checkpointStore(): CheckpointStore {
    return {
      get: async (instanceId, name = DEFAULT_CHECKPOINT_NAME) => {
        const [row] = await this.#rows('SELECT value FROM checkpoints WHERE instance_id = $1 AND name = $2', [
          instanceId,
          name,
        ]);
        return row === undefined ? undefined : json<unknown>(row.value);
      },
      set: async (instanceId, name, value, now) =>
        this.#putCheckpoint(this.#pool, instanceId, name, value, now.getTime()),
      delete: async (instanceId, name = DEFAULT_CHECKPOINT_NAME) =>
        (await this.#count('DELETE FROM checkpoints WHERE instance_id = $1 AND name = $2', [
          instanceId,
          name,
        ])) > 0,
      list: async (instanceId) =>
        (
          await this.#rows(
            'SELECT name, value, updated_at FROM checkpoints WHERE instance_id = $1 ORDER BY name',
            [instanceId],
          )
        ).map((row) => ({
          name: String(row.name),
          value: json<unknown>(row.value),
          updatedAt: date(row.updated_at),
        })),
    };
  }

  #streamStore(): StreamStore {
    const getStream = async (streamId: string) => {
      const [row] = await this.#rows('SELECT * FROM streams WHERE stream_id = $1', [streamId]);
      return row === undefined ? undefined : streamFromRow(row);
    };
    return {
      create: async (stream, now) => {
        const [row] = await this.#rows(
          `INSERT INTO streams (stream_id, client_id, config, status, status_reason, created_at, updated_at)
           VALUES ($1, $2, $3::jsonb, $4, $5, $6, $6) RETURNING *`,
          [
            stream.streamId,
            stream.clientId,
            JSON.stringify(stream.config),
            stream.status,
            stream.statusReason ?? null,
            now.getTime(),
          ],
        );
        return streamFromRow(row!);
      },
      get: getStream,
      list: async (filter = {}) => {
        const where = ['1 = 1'];
        const params: unknown[] = [];
        const bind = (value: unknown) => `$${params.push(value)}`;
        if (filter.clientId !== undefined) where.push(`client_id = ${bind(filter.clientId)}`);
        if (filter.status !== undefined) where.push(`status = ${bind(filter.status)}`);
        if (filter.after !== undefined) {
          const at = bind(filter.after.createdAt.getTime());
          where.push(
            `(created_at > ${at} OR (created_at = ${at} AND stream_id > ${bind(filter.after.streamId)}))`,
          );
        }
        const limit = filter.limit === undefined ? '' : ` LIMIT ${bind(filter.limit)}`;
        return (
          await this.#rows(
            `SELECT * FROM streams WHERE ${where.join(' AND ')} ORDER BY created_at, stream_id${limit}`,
            params,
          )
        ).map(streamFromRow);
      },
      update: async (streamId, patch, now) => {
        const [row] = await this.#rows(
          `UPDATE streams SET config = COALESCE($1::jsonb, config), status = COALESCE($2, status),
             status_reason = CASE WHEN $3 THEN $4 ELSE status_reason END, updated_at = $5
           WHERE stream_id = $6 AND ($7::text IS NULL OR config->'internal'->>'rev' = $7::text)
           RETURNING *`,
          [
            patch.config === undefined ? null : JSON.stringify(patch.config),
            patch.status ?? null,
            patch.statusReason !== undefined,
            patch.statusReason ?? null,
            now.getTime(),
            streamId,
            patch.expectedRev ?? null,
          ],
        );
        if (row !== undefined) return streamFromRow(row);
        if (patch.expectedRev !== undefined && (await this.streams.get(streamId))) {
          throw streamConflict(streamId);
        }
        return undefined;
      },
      delete: async (streamId) =>
        this.#tx(async (c) => {
          await c.query('DELETE FROM stream_poll_queue WHERE stream_id = $1', [streamId]);
          await this.#discardUnfinished(c, streamDestinationId(streamId));
          return (await this.#count('DELETE FROM streams WHERE stream_id = $1', [streamId], c)) > 0;
        }),
      putSubject: async (streamId, subject, now) => {
        await this.#pool.query(
          `INSERT INTO stream_subjects (stream_id, subject_key, subject, included, added_at) VALUES ($1, $2, $3::jsonb, $4, $5)
           ON CONFLICT (stream_id, subject_key) DO UPDATE SET subject = EXCLUDED.subject, included = EXCLUDED.included,
             added_at = EXCLUDED.added_at`,
          [streamId, subject.subjectKey, JSON.stringify(subject.subject), subject.included, now.getTime()],
        );
      },
      deleteSubject: async (streamId, subjectKey) =>
        (await this.#count('DELETE FROM stream_subjects WHERE stream_id = $1 AND subject_key = $2', [
          streamId,
          subjectKey,
        ])) > 0,
      listSubjects: async (streamId, page = {}) =>
        (
          await this.#rows(
            `SELECT subject_key, subject, included, added_at FROM stream_subjects
             WHERE stream_id = $1 AND subject_key COLLATE "C" > $2 ORDER BY subject_key COLLATE "C" LIMIT $3`,
            [streamId, page.afterKey ?? '', page.limit ?? 100],
          )
        ).map((row) => ({
          subjectKey: String(row.subject_key),
          subject: json(row.subject),
          included: Boolean(row.included),
          addedAt: date(row.added_at),
        })),
      enqueuePoll: async (streamId, items, now) => {
        if (items.length === 0) return 0;
        return this.#count(
          `INSERT INTO stream_poll_queue (stream_id, jti, event_id, set_jwt, state, enqueued_at)
           SELECT $1, jti, event_id, set_jwt, 'queued', $5
           FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(jti, event_id, set_jwt, n)
           ORDER BY n
           ON CONFLICT (stream_id, jti) DO NOTHING`,
          [
            streamId,
            items.map((i) => i.jti),
            items.map((i) => i.eventId),
            items.map((i) => i.setJwt),
            now.getTime(),
          ],
        );
      },
      poll: async (streamId, { max, now, redeliverAfterMs }) =>
        this.#tx(async (c) => {
          const at = now.getTime();
          const rows = await this.#rows(
            `SELECT seq, jti, set_jwt FROM stream_poll_queue
             WHERE stream_id = $1 AND state = 'queued' AND (returned_at IS NULL OR returned_at <= $2)
             ORDER BY seq LIMIT $3 FOR UPDATE SKIP LOCKED`,
            [streamId, at - redeliverAfterMs, max + 1],
            c,
          );
          const taken = rows.slice(0, max);
          if (taken.length > 0) {
            await c.query('UPDATE stream_poll_queue SET returned_at = $1 WHERE seq = ANY($2::bigint[])', [
              at,
              taken.map((r) => r.seq),
            ]);
          }
          return {
            sets: taken.map((row) => ({ jti: String(row.jti), setJwt: String(row.set_jwt) })),
            moreAvailable: rows.length > max,
          };
        }),
      ack: async (streamId, jtis) => {
        if (jtis.length === 0) return [];
        const rows = await this.#rows(
          `DELETE FROM stream_poll_queue WHERE stream_id = $1 AND jti = ANY($2::text[]) AND state = 'queued' RETURNING jti`,
          [streamId, jtis],
        );
        const acked = new Set(rows.map((r) => String(r.jti)));
        return jtis.filter((jti) => acked.has(jti));
      },
      recordErrors: async (streamId, errors, now) => {
        const entries = Object.entries(errors);
        if (entries.length === 0) return 0;
        return this.#count(
          `UPDATE stream_poll_queue q SET state = 'error', error = u.err::jsonb, error_at = $4
           FROM unnest($2::text[], $3::text[]) AS u(jti, err)
           WHERE q.stream_id = $1 AND q.jti = u.jti AND q.state = 'queued'`,
          [streamId, entries.map(([jti]) => jti), entries.map(([, e]) => storableJson(e)), now.getTime()],
        );
      },
      listErrors: async (streamId, limit = LIST_ERRORS_LIMIT) =>
        (
          await this.#rows(
            `SELECT jti, error, error_at FROM stream_poll_queue WHERE stream_id = $1 AND state = 'error'
             ORDER BY seq DESC LIMIT $2`,
            [streamId, limit],
          )
        )
          .reverse()
          .map((row) => ({ jti: String(row.jti), error: json(row.error), at: date(row.error_at) })),
      pollQueueDepth: async (streamId) => {
        const [row] = await this.#rows(
          `SELECT COUNT(*) AS n FROM stream_poll_queue WHERE stream_id = $1 AND state = 'queued'`,
          [streamId],
        );
        return Number(row?.n ?? 0);
      },
    };
  }

  #leaseStore(): LeaderLeaseStore {
    return {
      tryAcquire: async (name, holder, ttlMs, now) => {
        const at = now.getTime();
        const rows = await this.#rows(
          `INSERT INTO leader_leases (name, holder, expires_at, acquired_at) VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO UPDATE SET
             acquired_at = CASE WHEN leader_leases.holder = EXCLUDED.holder THEN leader_leases.acquired_at
                                ELSE EXCLUDED.acquired_at END,
             holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at
           WHERE leader_leases.holder = EXCLUDED.holder OR leader_leases.expires_at <= $4
           RETURNING holder`,
          [name, holder, at + ttlMs, at],
        );
        return rows.length > 0;
      },
      release: async (name, holder) => {
        await this.#pool.query('DELETE FROM leader_leases WHERE name = $1 AND holder = $2', [name, holder]);
      },
      current: async (name, now) => {
        const [row] = await this.#rows(
          'SELECT holder, expires_at FROM leader_leases WHERE name = $1 AND expires_at > $2',
          [name, now.getTime()],
        );
        return row === undefined
          ? undefined
          : { holder: String(row.holder), expiresAt: date(row.expires_at) };
      },
    };
  }

  async stats(): Promise<StoreStats> {
    const [backlog, dead, scheduled, polls] = await Promise.all([
      this.#rows(
        `SELECT destination_id, COUNT(*) AS n FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY destination_id`,
      ),
      this.#rows(
        `SELECT destination_id, COUNT(*) AS n FROM deliveries WHERE state = 'dead' GROUP BY destination_id`,
      ),
      this.#rows('SELECT COUNT(*) AS n FROM schedules'),
      this.#rows(
        `SELECT stream_id, COUNT(*) AS n FROM stream_poll_queue WHERE state = 'queued' GROUP BY stream_id`,
      ),
    ]);
    return {
      backlog: countsByKey(backlog, 'destination_id'),
      deadLetters: countsByKey(dead, 'destination_id'),
      scheduled: Number(scheduled[0]?.n ?? 0),
      pollQueues: countsByKey(polls, 'stream_id'),
    };
  }

  async prune({ now, deliveredBefore, limit }: PruneRequest): Promise<PruneResult> {
    return this.#tx(async (c) => ({
      deliveries: await this.#count(
        `DELETE FROM deliveries WHERE id IN
           (SELECT id FROM deliveries WHERE state = 'delivered' AND delivered_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [deliveredBefore.getTime(), limit],
        c,
      ),
      dedupeKeys: await this.#count(
        `DELETE FROM dedupe_keys WHERE key IN
           (SELECT key FROM dedupe_keys WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [now.getTime(), limit],
        c,
      ),
      oneTimeIds: await this.#count(
        `DELETE FROM one_time_ids WHERE (scope, id) IN
           (SELECT scope, id FROM one_time_ids WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [now.getTime(), limit],
        c,
      ),
      events: await this.#count(
        `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.accepted_at < $1
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
           AND NOT EXISTS (SELECT 1 FROM schedules s WHERE s.event_id = e.id)
           LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [deliveredBefore.getTime(), limit],
        c,
      ),
      setErrors: await this.#count(
        `DELETE FROM stream_poll_queue WHERE seq IN
           (SELECT seq FROM stream_poll_queue WHERE state = 'error' AND error_at < $1
            LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [deliveredBefore.getTime(), limit],
        c,
      ),
    }));
  }

  async schemaVersion(): Promise<number> {
    const [row] = await this.#rows('SELECT MAX(version) AS v FROM schema_migrations');
    return Number(row?.v ?? 0);
  }

  async close(): Promise<void> {
    if (!this.#pool.ended) await this.#pool.end();
  }
}

const JSON_OIDS = new Set([114, 3802]);
const INT8_OID = 20;

/**
 * JSON stays text (decoded by the shared row readers exactly as SQLite's), and BIGINT
 * columns, which hold epoch milliseconds and ids well inside 2^53, become numbers.
 */
function typeParser(oid: number, format?: 'text' | 'binary'): (value: string) => unknown {
  if (JSON_OIDS.has(oid)) return (value) => value;
  if (oid === INT8_OID) return (value) => Number(value);
  return pg.types.getTypeParser(oid, format ?? 'text') as (value: string) => unknown;
}

/** A set of ordering keys as SQL: a query returning them in one text column, and its parameters. */
interface KeySource {
  text: string;
  values: unknown[];
}

function keyList(keys: string[]): KeySource {
  return { text: 'SELECT unnest($1::text[])', values: [keys] };
}

/**
 * The head of the ordering key `key` (an SQL expression): the id of its first unfinished
 * delivery, or NULL. It reads deliveries_order from (key, 0) up to the end of `key`'s entries
 * and takes the first; as the order asked for is (ordering_key, id), which only that index
 * yields, the plan is this one probe whatever the statistics say. (With `ordering_key = key
 * ORDER BY id` the planner may walk the primary key instead, past every finished row of a key
 * it believes all unfinished.) `unless` skips rows the calling statement itself finishes, which
 * its snapshot still shows.
 */
function headOf(key: string, unless?: string): string {
  return `(SELECT p.id FROM deliveries p
    WHERE p.state IN ('pending', 'leased') AND (p.ordering_key, p.id) > (${key}, 0) AND p.ordering_key <= ${key}${unless === undefined ? '' : ` AND ${unless}`}
    ORDER BY p.ordering_key, p.id LIMIT 1)`;
}

/** The statement of `#lockOrderingKeys` for the keys `select` returns. */
function lockKeysSql(select: string): string {
  return `INSERT INTO ordering_locks (ordering_key)
    SELECT DISTINCT k FROM (${select}) AS s(k) ORDER BY k
    ON CONFLICT (ordering_key) DO UPDATE SET ordering_key = EXCLUDED.ordering_key WHERE false`;
}

/** An integer written into SQL text. */
function sqlInteger(value: number): string {
  if (!Number.isSafeInteger(value)) throw new TypeError(`not an integer id: ${String(value)}`);
  return String(value);
}

function withEvent(eventId: string, deliveries: NewDelivery[]): Array<NewDelivery & { eventId: string }> {
  return deliveries.map((d) => ({ ...d, eventId }));
}

export function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The client-side deadline of one query: past the server's statement_timeout (whose clean error
 * should come first), by a tenth of it and at least a second.
 */
export function clientQueryTimeout(statementTimeoutMs: number): number {
  return Math.round(statementTimeoutMs + Math.max(1000, statementTimeoutMs / 10));
}

async function applyMigrations(
  connection: pg.ClientConfig,
  schema: string,
  migrations: Migration[],
): Promise<void> {
  const client = new pg.Client(connection);
  client.on('error', () => undefined); // reported by the query that fails
  await client.connect();
  try {
    await client.query('BEGIN');
    // statement_timeout (storage.statement_timeout) would also cut short the wait for an instance
    // migrating now and a long migration: neither is one of the bridge's ordinary statements.
    await client.query('SET LOCAL statement_timeout = 0');
    await client.query('SET LOCAL lock_timeout = 0');
    // Instances starting together take turns; the second finds the work done.
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`ssf-bridge.migrations.${schema}`]);
    // Looked up rather than `CREATE SCHEMA IF NOT EXISTS`, which needs CREATE on the database
    // even when the schema exists: a user granted only USAGE and CREATE on its schema can start.
    const existing = await client.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
    if (existing.rowCount === 0) await client.query(`CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema)}`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
    const { rows } = await client.query<{ v: number | null }>(
      'SELECT MAX(version) AS v FROM schema_migrations',
    );
    const current = Number(rows[0]?.v ?? 0);
    checkSchemaVersion(current, migrations.at(-1)?.version ?? 0, true);
    for (const migration of migrations) {
      if (migration.version <= current) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)', [
        migration.version,
        migration.name,
        Date.now(),
      ]);
    }
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** For a store opened without migrating: the schema must be at this build's version already. */
async function checkSchema(pool: pg.Pool, schema: string, migrations: Migration[]): Promise<void> {
  const { rows } = await pool.query<{ present: boolean }>('SELECT to_regclass($1) IS NOT NULL AS present', [
    `${quoteIdent(schema)}.schema_migrations`,
  ]);
  let current = 0;
  if (rows[0]?.present === true) {
    const max = await pool.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
    current = Number(max.rows[0]?.v ?? 0);
  }
  checkSchemaVersion(current, migrations.at(-1)?.version ?? 0, false);
}
