import { randomUUID } from 'node:crypto';
import fs, { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { checkpointConflict } from '../../plugin-api/errors.ts';
import { streamConflict } from '../stream-conflict.ts';
import { WriterLock } from './writer-lock.ts';
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
  optionalDate,
  storableJson,
  streamFromRow,
  type Row,
} from '../rows.ts';
import {
  DEFAULT_CHECKPOINT_NAME,
  LIST_ERRORS_LIMIT,
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
  type ScheduleRelease,
  type Store,
  type StoreStats,
  type StreamStore,
  streamDestinationId,
} from '../types.ts';
import { checkSchemaVersion } from '../schema-version.ts';
import { sqliteMigrations, type Migration } from './migrations.ts';
import { WalCheckpointer } from './checkpointer.ts';
import type { Logger } from '../../plugin-api/types.ts';
import { SQLITE_FOLD, createOperatorStore, sqliteFold } from '../operator.ts';
import { checkpointText } from '../checkpoint.ts';

export interface SqliteStoreOptions {
  /** Database file; `:memory:` for a throwaway store. */
  path: string;
  /**
   * `full` syncs the write-ahead log on every commit (survives power loss); `normal` syncs at
   * checkpoints only (survives a killed process, may lose the last commits on power loss).
   */
  synchronous?: 'full' | 'normal';
  busyTimeoutMs?: number;
  /** Page cache of the connection, in MiB; default 16. */
  cacheMb?: number;
  /** Told when checkpoints fall back to the store's own connection. */
  logger?: Logger;
  /**
   * Hold the file's writer lock while open (see WriterLock): for the running bridge, which must
   * be the only process accepting into the file. One-shot commands leave it off.
   */
  exclusive?: boolean;
  /** A writer lock already taken for this file (see WriterLock.waitFor); the store releases it. */
  writerLock?: WriterLock | undefined;
  /**
   * Bring the schema up to date (default). One-shot commands pass false: the database must then
   * be at this build's version already (see checkSchemaVersion).
   */
  migrate?: boolean;
}

type Statement = Database.Statement<unknown[], unknown>;

/**
 * Recent dedupe claims move into dedupe_keys once this many wait: a few hundred KB in memory, and
 * at the sizes dedupe_keys reaches in a day of heavy ingest, most of its pages written once per
 * move instead of once per claim.
 */
export const SETTLE_CLAIMS_AT = 4096;

/** Page cache per connection: enough for the outbox's hot indexes, small next to the process. */
const DEFAULT_CACHE_MB = 16;

/**
 * An unfinished delivery (pending or leased), in the terms of the partial indexes deliveries_order
 * and deliveries_unfinished: a query must name them for SQLite to use those indexes. They are the
 * rows whose state is pending or leased; their finish times are what finishing a row sets.
 */
const unfinished = (alias?: string) => {
  const p = alias === undefined ? '' : `${alias}.`;
  return `${p}delivered_at IS NULL AND ${p}dead_at IS NULL`;
};
const UNFINISHED = unfinished();

/**
 * The id of the head of the ordering key `keySql` (an SQL expression): its lowest unfinished row,
 * the only one `lease` may take. One probe of deliveries_order however many rows wait behind it
 * (named, so that the primary key, which walks past every finished row of the key, is never
 * chosen instead).
 */
const headOfKeySql = (keySql: string) =>
  `SELECT h.id FROM deliveries h INDEXED BY deliveries_order
   WHERE h.ordering_key = ${keySql} AND ${unfinished('h')} ORDER BY h.id LIMIT 1`;

interface QueuedWrite {
  work: () => unknown;
  /** Must be on disk before it resolves. */
  durable: boolean;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
}

const CLAIM_ONE_TIME_ID = claimOneTimeIdSql(() => '?');
const ONE_TIME_ID_USED = oneTimeIdUsedSql(() => '?');
/**
 * The embedded store: one file, WAL journal, one process. Writes run in IMMEDIATE
 * transactions so a second process on the same file waits instead of failing mid-write.
 */
export class SqliteStore implements Store {
  readonly driver = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #statements = new Map<string, Statement>();
  #writerLock: WriterLock | undefined;
  /** The write-ahead log that durable group commits sync; undefined unless `synchronous: full`. */
  readonly #walPath: string | undefined;
  #walFd: number | undefined;
  #checkpointer: WalCheckpointer | undefined;
  #queued: QueuedWrite[] = [];
  /** The next sync of the log, not started yet: commits made until it starts share it. */
  #nextSync: Promise<void> | undefined;
  #lastSync: Promise<void> = Promise.resolve();
  /** Commits wait while the checkpointer copies the last frames of the log (see checkpointer.ts). */
  #writesHeld = false;
  /**
   * The claims in dedupe_recent, by key, the latest claim of a key last: what a lookup reads
   * before dedupe_keys (see #claimDedupe). Rebuilt from the table whenever a write that claimed
   * keys rolls back, so it never holds a claim that did not commit.
   */
  #recentClaims = new Map<string, { eventId: string; expiresAt: number }>();
  /** Set by a claim, cleared when a write commits or rolls back: whether the map must follow. */
  #claimedInWrite = false;

  readonly events: EventStore;
  readonly deliveries: DeliveryStore;
  readonly deadLetters: DeadLetterStore;
  readonly checkpoints: CheckpointStore;
  readonly streams: StreamStore;
  readonly leases: LeaderLeaseStore;
  readonly oneTimeIds: OneTimeIdStore;
  readonly operator: OperatorStore;

  private constructor(db: Database.Database, walPath: string | undefined) {
    this.#db = db;
    this.#walPath = walPath;
    this.events = this.#eventStore();
    this.deliveries = this.#deliveryStore();
    this.deadLetters = this.#deadLetterStore();
    this.checkpoints = this.#checkpointStore();
    this.streams = this.#streamStore();
    this.leases = this.#leaseStore();
    this.oneTimeIds = {
      // Not waiting for the disk: after a power cut a proof of the last moments could be used
      // once more, within its minute.
      claim: async (scope, id, expiresAt, now) =>
        (await this.#commit(
          () => this.#get(CLAIM_ONE_TIME_ID, scope, id, expiresAt.getTime(), now.getTime()),
          false,
        )) !== undefined,
      used: async (scope, id, now) => this.#get(ONE_TIME_ID_USED, scope, id, now.getTime()) !== undefined,
    };
    this.operator = createOperatorStore({
      dialect: 'sqlite',
      rows: async (sql, params) => this.#all(sql, ...params),
    });
  }

  static open(options: SqliteStoreOptions): SqliteStore {
    const onDisk = options.path !== ':memory:';
    if (onDisk) mkdirSync(dirname(options.path), { recursive: true });
    // Before anything else: a second bridge must not even run the migrations.
    const writerLock = WriterLock.forStore(options);
    let db: Database.Database;
    try {
      db = new Database(options.path);
    } catch (err) {
      writerLock?.release();
      throw err;
    }
    const busyTimeoutMs = Math.max(0, Math.round(options.busyTimeoutMs ?? 5000));
    try {
      db.pragma('journal_mode = WAL');
      db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      db.pragma('foreign_keys = ON');
      db.pragma(`busy_timeout = ${busyTimeoutMs}`);
      db.pragma(`cache_size = -${Math.round((options.cacheMb ?? DEFAULT_CACHE_MB) * 1024)}`);
      // Checkpoints run on the checkpointer's thread, not inside a commit on the event loop; a
      // log that grew past 64 MiB is cut back once it restarts.
      if (onDisk) db.pragma('wal_autocheckpoint = 0');
      db.pragma(`journal_size_limit = ${64 * 1024 * 1024}`);
      // LIKE folds ASCII only; the operator's subject search folds other letters with this.
      db.function(SQLITE_FOLD, { deterministic: true }, sqliteFold);
      applyMigrations(db, sqliteMigrations, options.migrate ?? true);
    } catch (err) {
      db.close();
      writerLock?.release();
      throw err;
    }
    const syncFull = options.synchronous !== 'normal' && onDisk;
    const store = new SqliteStore(db, syncFull ? `${options.path}-wal` : undefined);
    store.#writerLock = writerLock;
    store.#loadRecentClaims();
    if (onDisk) {
      store.#checkpointer = new WalCheckpointer({
        path: options.path,
        busyTimeoutMs,
        holdWrites: () => {
          store.#writesHeld = true;
          return () => {
            store.#writesHeld = false;
            if (store.#queued.length > 0) setImmediate(() => store.#flush());
          };
        },
        onFailure: (reason) => {
          if (db.open) db.pragma('wal_autocheckpoint = 1000');
          options.logger?.warn(
            { reason },
            'WAL checkpoints fall back to the writing connection; commits may pause while they run',
          );
        },
      });
    }
    return store;
  }

  /** Checkpoint and cache settings of the writing connection (for tests and diagnostics). */
  connectionSettings(): { walAutocheckpoint: number; cacheKib: number } {
    return {
      walAutocheckpoint: Number(this.#db.pragma('wal_autocheckpoint', { simple: true })),
      cacheKib: -Number(this.#db.pragma('cache_size', { simple: true })),
    };
  }

  /** The journal mode and sync level in force on this connection (for status output). */
  durability(): { journalMode: string; synchronous: 'full' | 'normal' | 'other' } {
    const level = Number(this.#db.pragma('synchronous', { simple: true }));
    return {
      journalMode: String(this.#db.pragma('journal_mode', { simple: true })),
      synchronous: level === 2 ? 'full' : level === 1 ? 'normal' : 'other',
    };
  }

  #stmt(sql: string): Statement {
    let statement = this.#statements.get(sql);
    if (statement === undefined) {
      statement = this.#db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    return statement;
  }

  #all(sql: string, ...params: unknown[]): Row[] {
    return this.#stmt(sql).all(...params) as Row[];
  }

  #get(sql: string, ...params: unknown[]): Row | undefined {
    return this.#stmt(sql).get(...params) as Row | undefined;
  }

  #run(sql: string, ...params: unknown[]): number {
    return this.#stmt(sql).run(...params).changes;
  }

  #write<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  /**
   * Group commit for the busy paths (accepting events, leasing, recording outcomes): writes
   * requested in the same turn of the event loop share one transaction, each in its own
   * savepoint, so one that fails is rolled back and rejected alone.
   *
   * With `synchronous: full` the transaction commits without waiting for the disk, and `durable`
   * writes (accepted events) resolve only after the write-ahead log has been synced — an fsync
   * run in libuv's thread pool and shared by every commit made before it starts. The event loop
   * keeps serving while the disk syncs, and a burst of requests costs one sync, not one each.
   * Leases and outcomes do not wait for it: after a power cut the last of them may be lost, and
   * those deliveries are made again with the same jti.
   */
  #commit<T>(work: () => T, durable: boolean): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.#queued.length === 0 && !this.#writesHeld) setImmediate(() => this.#flush());
      this.#queued.push({ work, durable, resolve: resolve as (value: unknown) => void, reject });
    });
  }

  #flush(): void {
    // A flush scheduled before the hold began waits for its release, which flushes again.
    if (this.#writesHeld) return;
    const batch = this.#queued;
    this.#queued = [];
    if (batch.length === 0) return;
    const outcomes: Array<{ ok: boolean; value: unknown }> = [];
    const deferSync = this.#walPath !== undefined;
    try {
      // Prepared once: db.pragma() prepares its statement anew on every call.
      if (deferSync) this.#stmt('PRAGMA synchronous = NORMAL').run();
      this.#writeClaims(() => {
        for (const item of batch) {
          try {
            outcomes.push({ ok: true, value: this.#db.transaction(item.work)() });
          } catch (err) {
            outcomes.push({ ok: false, value: err });
            // Its savepoint rolled back, and any key it claimed with it. (The flag stays set:
            // earlier items' claims are not committed yet either.)
            if (this.#claimedInWrite) this.#loadRecentClaims();
          }
        }
        if (this.#recentClaims.size >= SETTLE_CLAIMS_AT) this.#settleClaims();
      });
    } catch (err) {
      for (const item of batch) item.reject(err);
      return;
    } finally {
      if (deferSync) this.#stmt('PRAGMA synchronous = FULL').run();
    }
    const synced = deferSync && batch.some((item) => item.durable) ? this.#syncLog() : undefined;
    batch.forEach((item, i) => {
      const outcome = outcomes[i]!;
      if (!outcome.ok) item.reject(outcome.value);
      else if (item.durable && synced) synced.then(() => item.resolve(outcome.value), item.reject);
      else item.resolve(outcome.value);
    });
  }

  /** Resolves once everything committed so far is on disk. */
  #syncLog(): Promise<void> {
    if (this.#nextSync) return this.#nextSync;
    const next: Promise<void> = this.#lastSync
      .catch(() => undefined)
      .then(() => {
        // Commits from now on need the following sync: this one may start before they write.
        this.#nextSync = undefined;
        this.#lastSync = next;
        this.#walFd ??= fs.openSync(this.#walPath!, 'r');
        const fd = this.#walFd;
        return new Promise<void>((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
      });
    this.#nextSync = next;
    return next;
  }

  async accept(batch: AcceptBatch): Promise<AcceptOutcome> {
    const now = batch.now.getTime();
    const expires = batch.dedupeExpiresAt.getTime();
    const results = await this.#commit(() => {
      if (batch.checkpoint?.expected) this.#checkCheckpoint(batch.checkpoint);
      const out: AcceptItemResult[] = [];
      const claimedInBatch = new Map<string, string>();
      for (const item of batch.events) {
        const { event } = item;
        if (item.dedupeKey !== undefined) {
          const earlier =
            claimedInBatch.get(item.dedupeKey) ?? this.#claimDedupe(item.dedupeKey, event.id, expires, now);
          if (earlier !== undefined) {
            out.push({ status: 'duplicate', id: earlier });
            continue;
          }
          claimedInBatch.set(item.dedupeKey, event.id);
        }
        this.#run(
          `INSERT INTO events (id, instance_id, source_record_id, type, subject, subject_key, claims, txn, severity, occurred_at, accepted_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          event.id,
          event.instanceId,
          event.sourceRecordId,
          event.type,
          JSON.stringify(event.subject),
          event.subjectKey,
          JSON.stringify(event.claims),
          event.txn,
          event.severity ?? null,
          event.occurredAt.getTime(),
          event.acceptedAt.getTime(),
        );
        if (item.releaseAt !== undefined) {
          this.#run(
            'INSERT INTO schedules (event_id, release_at) VALUES (?, ?)',
            event.id,
            item.releaseAt.getTime(),
          );
        } else {
          this.#insertDeliveries(event.id, item.deliveries, now);
        }
        out.push({ status: 'accepted', id: event.id });
      }
      if (batch.checkpoint !== undefined) {
        const { instanceId, name, value } = batch.checkpoint;
        this.#putCheckpoint(instanceId, name, value, now);
      }
      return out;
    }, true);
    return { results };
  }

  /**
   * Claims a dedupe key; returns the event already holding it, or undefined when claimed. A key
   * is held while its latest claim has not expired. The latest claim is the one in
   * #recentClaims when there is one (it is newer than anything in dedupe_keys), else the row of
   * dedupe_keys. A claim appends a row to dedupe_recent, in the transaction of the event.
   */
  #claimDedupe(key: string, eventId: string, expires: number, now: number): string | undefined {
    const held = this.#heldClaim(key, now);
    if (held !== undefined) return held;
    this.#run(
      'INSERT INTO dedupe_recent (key, event_id, expires_at) VALUES (?, ?, ?)',
      key,
      eventId,
      expires,
    );
    this.#recentClaims.set(key, { eventId, expiresAt: expires });
    this.#claimedInWrite = true;
    return undefined;
  }

  /** The event holding `key` at `now`, if its latest claim is live. */
  #heldClaim(key: string, now: number): string | undefined {
    const recent = this.#recentClaims.get(key);
    if (recent !== undefined) return recent.expiresAt > now ? recent.eventId : undefined;
    const row = this.#get('SELECT event_id, expires_at FROM dedupe_keys WHERE key = ?', key);
    return row !== undefined && Number(row.expires_at) > now ? String(row.event_id) : undefined;
  }

  /** Rebuilds #recentClaims from dedupe_recent as this connection sees it (later rows win). */
  #loadRecentClaims(): void {
    this.#recentClaims = new Map();
    for (const row of this.#all('SELECT key, event_id, expires_at FROM dedupe_recent ORDER BY seq')) {
      this.#recentClaims.set(String(row.key), {
        eventId: String(row.event_id),
        expiresAt: Number(row.expires_at),
      });
    }
  }

  /**
   * Moves the recent claims into dedupe_keys, in key order, the latest claim of a key winning.
   * Runs inside a write (its own savepoint); on failure the claims stay where they were.
   */
  #settleClaims(): void {
    try {
      this.#db.transaction(() => {
        this.#run(
          `INSERT INTO dedupe_keys (key, event_id, expires_at)
           SELECT key, event_id, expires_at FROM dedupe_recent WHERE true ORDER BY key, seq
           ON CONFLICT (key) DO UPDATE SET event_id = excluded.event_id, expires_at = excluded.expires_at`,
        );
        this.#run('DELETE FROM dedupe_recent');
      })();
    } catch {
      return; // Left in dedupe_recent and in memory; the next write tries again.
    }
    // Until the write commits the map must still answer for them; should it roll back, the map
    // is rebuilt from dedupe_recent, where the rows are again.
    this.#recentClaims = new Map();
    this.#claimedInWrite = true;
  }

  #insertDeliveries(eventId: string, deliveries: NewDelivery[], now: number): void {
    for (const d of deliveries) {
      // Ids only grow, so a new row heads its ordering key only when the key has no unfinished row.
      const head = this.#headOf(d.orderingKey) === undefined;
      this.#run(
        `INSERT INTO deliveries (event_id, destination_id, jti, ordering_key, state, attempts, due_at, enqueued_at, updated_at, head)
         VALUES (?, ?, ?, ?, 'pending', 0, ?, ?, ?, ?)`,
        eventId,
        d.destinationId,
        d.jti,
        d.orderingKey,
        now,
        now,
        now,
        head ? 1 : 0,
      );
    }
  }

  /** The head of an ordering key (see headOfKeySql). */
  #headOf(orderingKey: string): number | undefined {
    const row = this.#get(headOfKeySql('?'), orderingKey);
    return row === undefined ? undefined : Number(row.id);
  }

  /**
   * Flags the head of each key after rows of it stopped being unfinished (finished or deleted;
   * such rows carry no flag). `demote` names heads flagged before rows of the key became
   * unfinished again (a replay), which a lower replayed row displaces.
   */
  #flagHeads(keys: Iterable<string>, demote = new Map<string, number | undefined>()): void {
    for (const key of new Set(keys)) {
      const head = this.#headOf(key);
      const before = demote.get(key);
      if (before !== undefined && before !== head) {
        this.#run('UPDATE deliveries SET head = 0 WHERE id = ?', before);
      }
      if (head !== undefined) this.#run('UPDATE deliveries SET head = 1 WHERE id = ? AND head = 0', head);
    }
  }

  /** Deletes a destination's unfinished rows; the heads of their ordering keys move on. */
  #discardUnfinished(destinationId: string): number {
    const keys = this.#all(
      `DELETE FROM deliveries WHERE destination_id = ? AND ${UNFINISHED} RETURNING ordering_key`,
      destinationId,
    ).map((r) => String(r.ordering_key));
    this.#flagHeads(keys);
    return keys.length;
  }

  /** Compare-and-set: one writer at a time, so reading inside the write is enough. */
  #checkCheckpoint({ instanceId, name, expected }: CheckpointWrite): void {
    const row = this.#get(
      'SELECT value FROM checkpoints WHERE instance_id = ? AND name = ?',
      instanceId,
      name,
    );
    const stored = row === undefined ? undefined : String(row.value);
    const wanted = expected!.value === undefined ? undefined : checkpointText(expected!.value);
    if (stored !== wanted) throw checkpointConflict(instanceId, name);
  }

  #putCheckpoint(instanceId: string, name: string, value: unknown, now: number): void {
    this.#run(
      `INSERT INTO checkpoints (instance_id, name, value, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (instance_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
      instanceId,
      name,
      checkpointText(value),
      now,
    );
  }

  #eventStore(): EventStore {
    return {
      get: async (id) => {
        const row = this.#get('SELECT * FROM events WHERE id = ?', id);
        return row === undefined ? undefined : eventFromRow(row);
      },
      dueSchedules: async (now, limit) =>
        this.#all(
          `SELECT s.release_at, ${EVENT_COLUMNS_PREFIXED} FROM schedules s JOIN events e ON e.id = s.event_id
           WHERE s.release_at <= ? ORDER BY s.release_at, s.event_id LIMIT ?`,
          now.getTime(),
          limit,
        ).map((row) => ({ event: eventFromRow(row, 'e_'), releaseAt: date(row.release_at) })),
      releaseSchedules: async (releases: ScheduleRelease[], now) =>
        this.#commit(() => {
          const released: string[] = [];
          for (const release of releases) {
            if (this.#run('DELETE FROM schedules WHERE event_id = ?', release.eventId) === 0) continue;
            this.#insertDeliveries(release.eventId, release.deliveries, now.getTime());
            released.push(release.eventId);
          }
          return released;
        }, false),
      findDuplicates: async (keys, now) => {
        const at = now.getTime();
        const found = new Map<string, string>();
        const older: string[] = [];
        for (const key of keys) {
          const recent = this.#recentClaims.get(key);
          if (recent === undefined) older.push(key);
          else if (recent.expiresAt > at) found.set(key, recent.eventId);
        }
        if (older.length === 0) return found;
        // One statement for the rest: the keys travel as a JSON array, each probed by key.
        const rows = this.#all(
          'SELECT key, event_id FROM dedupe_keys WHERE key IN (SELECT value FROM json_each(?)) AND expires_at > ?',
          JSON.stringify(older),
          at,
        );
        for (const row of rows) found.set(String(row.key), String(row.event_id));
        return found;
      },
    };
  }

  #deliveryStore(): DeliveryStore {
    return {
      lease: async ({ destinationId, owner, limit, now, leaseMs }) => {
        const at = now.getTime();
        return this.#commit(() => {
          // Heads only (deliveries_head): the rows queued behind a head cost nothing here. The
          // NOT EXISTS restates the ordering rule, one probe per head, should a flag ever be wrong.
          const rows = this.#all(
            `SELECT d.id, d.destination_id, d.jti, d.attempts, d.interrupted_attempts, d.state, d.enqueued_at,
               d.first_attempt_at, ${EVENT_COLUMNS_PREFIXED}
             FROM deliveries d INDEXED BY deliveries_head JOIN events e ON e.id = d.event_id
             WHERE d.destination_id = ? AND d.head = 1 AND d.due_at <= ?
               AND NOT EXISTS (SELECT 1 FROM deliveries p INDEXED BY deliveries_order
                               WHERE p.ordering_key = d.ordering_key AND p.id < d.id
                                 AND ${unfinished('p')})
             ORDER BY d.due_at, d.id LIMIT ?`,
            destinationId,
            at,
            limit,
          );
          // The rows are read with their events before the update (one statement per row
          // fewer); the columns the update changes that the lease reports are the counts. A row
          // still leased is due only because its lease expired: that attempt was interrupted.
          // The lease that counts a first attempt stamps first_attempt_at (max_age counts from it).
          return rows.map((row) => {
            const token = randomUUID();
            const interrupted = row.state === 'leased' ? 1 : 0;
            this.#run(
              `UPDATE deliveries SET state = 'leased', lease_owner = ?, lease_token = ?, due_at = ?,
                 attempts = attempts + 1, interrupted_attempts = interrupted_attempts + ?,
                 first_attempt_at = COALESCE(first_attempt_at, ?), last_attempt_at = ?, updated_at = ?
               WHERE id = ?`,
              owner,
              token,
              at + leaseMs,
              interrupted,
              at,
              at,
              at,
              row.id,
            );
            return {
              id: Number(row.id),
              destinationId: String(row.destination_id),
              jti: String(row.jti),
              attempts: Number(row.attempts) + 1,
              interruptedAttempts: Number(row.interrupted_attempts) + interrupted,
              enqueuedAt: date(row.enqueued_at),
              firstAttemptAt: optionalDate(row.first_attempt_at) ?? now,
              leaseToken: token,
              event: eventFromRow(row, 'e_'),
            };
          });
        }, false);
      },
      complete: async (outcomes, now) =>
        this.#commit(() => this.#applyOutcomes(outcomes, now.getTime()), false),
      get: async (id) => {
        const row = this.#get('SELECT * FROM deliveries WHERE id = ?', id);
        return row === undefined ? undefined : deliveryFromRow(row);
      },
      forEvent: async (eventId) =>
        this.#all('SELECT * FROM deliveries WHERE event_id = ? ORDER BY id', eventId).map(deliveryFromRow),
      nextDueAt: async (destinationId) => {
        const row = this.#get(
          // Heads only: a row behind a head becomes leasable when its head finishes, not at its due time.
          `SELECT MIN(due_at) AS due FROM deliveries INDEXED BY deliveries_head WHERE destination_id = ? AND head = 1`,
          destinationId,
        );
        return row?.due === null || row?.due === undefined ? undefined : date(row.due);
      },
      backlog: async () =>
        new Map(
          Object.entries(
            countsByKey(
              this.#all(
                `SELECT destination_id, COUNT(*) AS n FROM deliveries WHERE ${UNFINISHED} GROUP BY destination_id`,
              ),
              'destination_id',
            ),
          ),
        ),
      discardUnfinished: async (destinationId) => this.#write(() => this.#discardUnfinished(destinationId)),
    };
  }

  #applyOutcomes(outcomes: DeliveryOutcome[], now: number): number {
    let applied = 0;
    const fence = `WHERE id = ? AND state = 'leased' AND lease_token = ?`;
    /** Rows that finished (delivered or dead): the next row of each one's key may now lead. */
    const finished: number[] = [];
    // (No RETURNING here or in lease: inside the group commit's savepoints it costs SQLite a
    // statement journal in a temporary file, several times the price of the update.)
    const finish = (id: number, changes: number) => {
      applied += changes;
      if (changes > 0) finished.push(id);
    };
    for (const o of outcomes) {
      switch (o.kind) {
        case 'delivered':
          finish(
            o.id,
            this.#run(
              `UPDATE deliveries SET state = 'delivered', delivered_at = ?, updated_at = ?, lease_owner = NULL,
                 lease_token = NULL, set_jwt = NULL, head = 0 ${fence}`,
              now,
              now,
              o.id,
              o.leaseToken,
            ),
          );
          break;
        case 'retry':
          applied += this.#run(
            `UPDATE deliveries SET state = 'pending', due_at = ?, last_error = ?, set_jwt = COALESCE(?, set_jwt),
               interrupted_attempts = 0, updated_at = ?, lease_owner = NULL, lease_token = NULL ${fence}`,
            o.dueAt.getTime(),
            lastErrorJson(o.error),
            o.setJwt ?? null,
            now,
            o.id,
            o.leaseToken,
          );
          break;
        case 'dead': {
          // The letter takes the next number of the order letters die in (one writer: the
          // numbers commit in order), counted only when the row still held its lease.
          const changes = this.#run(
            `UPDATE deliveries SET state = 'dead', dead_at = ?, last_error = ?, set_jwt = COALESCE(?, set_jwt),
               dead_seq = (SELECT last_seq + 1 FROM dead_letter_sequence),
               attempts = MAX(attempts - ?, 0),
               first_attempt_at = CASE WHEN attempts - ? > 0 THEN first_attempt_at END,
               updated_at = ?, lease_owner = NULL, lease_token = NULL, head = 0 ${fence}`,
            now,
            lastErrorJson(o.error),
            o.setJwt ?? null,
            o.notAttempted ? 1 : 0,
            o.notAttempted ? 1 : 0,
            now,
            o.id,
            o.leaseToken,
          );
          if (changes > 0) this.#run('UPDATE dead_letter_sequence SET last_seq = last_seq + 1');
          finish(o.id, changes);
          break;
        }
        case 'release':
          applied += this.#run(
            `UPDATE deliveries SET state = 'pending', due_at = ?, attempts = MAX(attempts - 1, 0), updated_at = ?,
               first_attempt_at = CASE WHEN attempts > 1 THEN first_attempt_at END,
               lease_owner = NULL, lease_token = NULL ${fence}`,
            now,
            now,
            o.id,
            o.leaseToken,
          );
          break;
      }
    }
    // The next row of each finished row's key leads now: one statement per finished row finds
    // the key, its lowest unfinished row, and flags it (as #flagHeads does, without a demotion).
    for (const id of finished) {
      this.#run(
        `UPDATE deliveries SET head = 1
         WHERE head = 0 AND id = (${headOfKeySql('(SELECT ordering_key FROM deliveries WHERE id = ?)')})`,
        id,
      );
    }
    return applied;
  }

  #deadLetterQuery(filter: DeadLetterFilter): { where: string; params: unknown[] } {
    const params: unknown[] = [];
    const where = deadLetterWhere(filter, (value) => {
      params.push(value);
      return '?';
    });
    return { where, params };
  }

  #deadLetterStore(): DeadLetterStore {
    return {
      list: async (filter = {}, page = {}) => {
        const { where, params } = this.#deadLetterQuery(filter);
        return this.#all(
          `SELECT ${DEAD_LETTER_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
           WHERE ${where} AND d.dead_seq > ? ORDER BY d.dead_seq LIMIT ?`,
          ...params,
          page.afterDeadSeq ?? 0,
          page.limit ?? 100,
        ).map(deadLetterFromRow);
      },
      get: async (id) => {
        const row = this.#get(
          `SELECT ${DEAD_LETTER_COLUMNS} FROM deliveries d JOIN events e ON e.id = d.event_id
           WHERE d.state = 'dead' AND d.id = ?`,
          id,
        );
        return row === undefined ? undefined : deadLetterFromRow(row);
      },
      count: async (filter = {}) => {
        const { where, params } = this.#deadLetterQuery(filter);
        const row = this.#get(
          `SELECT COUNT(*) AS n FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where}`,
          ...params,
        );
        return Number(row?.n ?? 0);
      },
      replay: async (filter, now) => {
        const { where, params } = this.#deadLetterQuery(filter);
        const at = now.getTime();
        return this.#write(() => {
          // A replayed row keeps its id, so it may lead its ordering key again.
          const heads = new Map<string, number | undefined>();
          for (const { ordering_key: key } of this.#all(
            `SELECT DISTINCT d.ordering_key FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where}`,
            ...params,
          )) {
            heads.set(String(key), this.#headOf(String(key)));
          }
          const replayed = this.#run(
            `UPDATE deliveries SET state = 'pending', attempts = 0, interrupted_attempts = 0, due_at = ?,
               enqueued_at = ?, first_attempt_at = NULL, dead_at = NULL, dead_seq = NULL, updated_at = ?
             WHERE id IN (SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where})`,
            at,
            at,
            at,
            ...params,
          );
          this.#flagHeads(heads.keys(), heads);
          return replayed;
        });
      },
      purge: async (filter) => {
        const { where, params } = this.#deadLetterQuery(filter);
        return this.#write(() =>
          this.#run(
            `DELETE FROM deliveries WHERE id IN (SELECT d.id FROM deliveries d JOIN events e ON e.id = d.event_id WHERE ${where})`,
            ...params,
          ),
        );
      },
    };
  }

  #checkpointStore(): CheckpointStore {
    return {
      get: async (instanceId, name = DEFAULT_CHECKPOINT_NAME) => {
        const row = this.#get(
          'SELECT value FROM checkpoints WHERE instance_id = ? AND name = ?',
          instanceId,
          name,
        );
        return row === undefined ? undefined : json<unknown>(row.value);
      },
      set: async (instanceId, name, value, now) =>
        this.#write(() => this.#putCheckpoint(instanceId, name, value, now.getTime())),
      delete: async (instanceId, name = DEFAULT_CHECKPOINT_NAME) =>
        this.#write(() =>
          this.#run('DELETE FROM checkpoints WHERE instance_id = ? AND name = ?', instanceId, name),
        ) > 0,
      list: async (instanceId) =>
        this.#all(
          'SELECT name, value, updated_at FROM checkpoints WHERE instance_id = ? ORDER BY name',
          instanceId,
        ).map((row) => ({
          name: String(row.name),
          value: json<unknown>(row.value),
          updatedAt: date(row.updated_at),
        })),
    };
  }

  #streamStore(): StreamStore {
    const getStream = (streamId: string) => {
      const row = this.#get('SELECT * FROM streams WHERE stream_id = ?', streamId);
      return row === undefined ? undefined : streamFromRow(row);
    };
    return {
      create: async (stream, now) => {
        const at = now.getTime();
        this.#write(() =>
          this.#run(
            `INSERT INTO streams (stream_id, client_id, config, status, status_reason, created_at, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)`,
            stream.streamId,
            stream.clientId,
            JSON.stringify(stream.config),
            stream.status,
            stream.statusReason ?? null,
            at,
            at,
          ),
        );
        return getStream(stream.streamId)!;
      },
      get: async (streamId) => getStream(streamId),
      list: async (filter = {}) => {
        const where = ['1 = 1'];
        const params: unknown[] = [];
        if (filter.clientId !== undefined) {
          where.push('client_id = ?');
          params.push(filter.clientId);
        }
        if (filter.status !== undefined) {
          where.push('status = ?');
          params.push(filter.status);
        }
        if (filter.after !== undefined) {
          const at = filter.after.createdAt.getTime();
          where.push('(created_at > ? OR (created_at = ? AND stream_id > ?))');
          params.push(at, at, filter.after.streamId);
        }
        let limit = '';
        if (filter.limit !== undefined) {
          limit = ' LIMIT ?';
          params.push(filter.limit);
        }
        return this.#all(
          `SELECT * FROM streams WHERE ${where.join(' AND ')} ORDER BY created_at, stream_id${limit}`,
          ...params,
        ).map(streamFromRow);
      },
      update: async (streamId, patch, now) => {
        const changed = this.#write(() =>
          this.#run(
            `UPDATE streams SET config = COALESCE(?, config), status = COALESCE(?, status),
               status_reason = CASE WHEN ? THEN ? ELSE status_reason END, updated_at = ?
             WHERE stream_id = ? AND (? IS NULL OR json_extract(config, '$.internal.rev') = ?)`,
            patch.config === undefined ? null : JSON.stringify(patch.config),
            patch.status ?? null,
            patch.statusReason === undefined ? 0 : 1,
            patch.statusReason ?? null,
            now.getTime(),
            streamId,
            patch.expectedRev ?? null,
            patch.expectedRev ?? null,
          ),
        );
        if (changed !== 0) return getStream(streamId);
        if (patch.expectedRev !== undefined && getStream(streamId)) throw streamConflict(streamId);
        return undefined;
      },
      delete: async (streamId) =>
        this.#write(() => {
          this.#run('DELETE FROM stream_poll_queue WHERE stream_id = ?', streamId);
          this.#discardUnfinished(streamDestinationId(streamId));
          return this.#run('DELETE FROM streams WHERE stream_id = ?', streamId) > 0;
        }),
      putSubject: async (streamId, subject, now) =>
        this.#write(() => {
          this.#run(
            `INSERT INTO stream_subjects (stream_id, subject_key, subject, included, added_at) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT (stream_id, subject_key) DO UPDATE SET subject = excluded.subject, included = excluded.included,
               added_at = excluded.added_at`,
            streamId,
            subject.subjectKey,
            JSON.stringify(subject.subject),
            subject.included ? 1 : 0,
            now.getTime(),
          );
        }),
      deleteSubject: async (streamId, subjectKey) =>
        this.#write(() =>
          this.#run(
            'DELETE FROM stream_subjects WHERE stream_id = ? AND subject_key = ?',
            streamId,
            subjectKey,
          ),
        ) > 0,
      listSubjects: async (streamId, page = {}) =>
        this.#all(
          `SELECT subject_key, subject, included, added_at FROM stream_subjects
           WHERE stream_id = ? AND subject_key > ? ORDER BY subject_key LIMIT ?`,
          streamId,
          page.afterKey ?? '',
          page.limit ?? 100,
        ).map((row) => ({
          subjectKey: String(row.subject_key),
          subject: json(row.subject),
          included: Boolean(row.included),
          addedAt: date(row.added_at),
        })),
      enqueuePoll: async (streamId, items, now) =>
        this.#write(() => {
          let added = 0;
          for (const item of items) {
            added += this.#run(
              `INSERT INTO stream_poll_queue (stream_id, jti, event_id, set_jwt, state, enqueued_at)
               VALUES (?, ?, ?, ?, 'queued', ?) ON CONFLICT (stream_id, jti) DO NOTHING`,
              streamId,
              item.jti,
              item.eventId,
              item.setJwt,
              now.getTime(),
            );
          }
          return added;
        }),
      poll: async (streamId, { max, now, redeliverAfterMs }) =>
        this.#write(() => {
          const at = now.getTime();
          const rows = this.#all(
            `SELECT seq, jti, set_jwt FROM stream_poll_queue
             WHERE stream_id = ? AND state = 'queued' AND (returned_at IS NULL OR returned_at <= ?)
             ORDER BY seq LIMIT ?`,
            streamId,
            at - redeliverAfterMs,
            max + 1,
          );
          const taken = rows.slice(0, max);
          for (const row of taken)
            this.#run('UPDATE stream_poll_queue SET returned_at = ? WHERE seq = ?', at, row.seq);
          return {
            sets: taken.map((row) => ({ jti: String(row.jti), setJwt: String(row.set_jwt) })),
            moreAvailable: rows.length > max,
          };
        }),
      ack: async (streamId, jtis) =>
        this.#write(() =>
          jtis.filter(
            (jti) =>
              this.#run(
                `DELETE FROM stream_poll_queue WHERE stream_id = ? AND jti = ? AND state = 'queued'`,
                streamId,
                jti,
              ) > 0,
          ),
        ),
      recordErrors: async (streamId, errors, now) =>
        this.#write(() => {
          let recorded = 0;
          for (const [jti, error] of Object.entries(errors)) {
            recorded += this.#run(
              `UPDATE stream_poll_queue SET state = 'error', error = ?, error_at = ?
               WHERE stream_id = ? AND jti = ? AND state = 'queued'`,
              storableJson(error),
              now.getTime(),
              streamId,
              jti,
            );
          }
          return recorded;
        }),
      listErrors: async (streamId, limit = LIST_ERRORS_LIMIT) =>
        this.#all(
          `SELECT jti, error, error_at FROM stream_poll_queue WHERE stream_id = ? AND state = 'error'
           ORDER BY seq DESC LIMIT ?`,
          streamId,
          limit,
        )
          .reverse()
          .map((row) => ({ jti: String(row.jti), error: json(row.error), at: date(row.error_at) })),
      pollQueueDepth: async (streamId) =>
        Number(
          this.#get(
            `SELECT COUNT(*) AS n FROM stream_poll_queue WHERE stream_id = ? AND state = 'queued'`,
            streamId,
          )?.n ?? 0,
        ),
    };
  }

  #leaseStore(): LeaderLeaseStore {
    return {
      tryAcquire: async (name, holder, ttlMs, now) => {
        const at = now.getTime();
        return (
          this.#write(() =>
            this.#get(
              `INSERT INTO leader_leases (name, holder, expires_at, acquired_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (name) DO UPDATE SET
                 acquired_at = CASE WHEN leader_leases.holder = excluded.holder THEN leader_leases.acquired_at
                                    ELSE excluded.acquired_at END,
                 holder = excluded.holder, expires_at = excluded.expires_at
               WHERE leader_leases.holder = excluded.holder OR leader_leases.expires_at <= ?
               RETURNING holder`,
              name,
              holder,
              at + ttlMs,
              at,
              at,
            ),
          ) !== undefined
        );
      },
      release: async (name, holder) => {
        this.#write(() => this.#run('DELETE FROM leader_leases WHERE name = ? AND holder = ?', name, holder));
      },
      current: async (name, now) => {
        const row = this.#get(
          'SELECT holder, expires_at FROM leader_leases WHERE name = ? AND expires_at > ?',
          name,
          now.getTime(),
        );
        return row === undefined
          ? undefined
          : { holder: String(row.holder), expiresAt: date(row.expires_at) };
      },
    };
  }

  async stats(): Promise<StoreStats> {
    return {
      backlog: countsByKey(
        this.#all(
          `SELECT destination_id, COUNT(*) AS n FROM deliveries WHERE ${UNFINISHED} GROUP BY destination_id`,
        ),
        'destination_id',
      ),
      deadLetters: countsByKey(
        this.#all(
          `SELECT destination_id, COUNT(*) AS n FROM deliveries WHERE state = 'dead' GROUP BY destination_id`,
        ),
        'destination_id',
      ),
      scheduled: Number(this.#get('SELECT COUNT(*) AS n FROM schedules')?.n ?? 0),
      pollQueues: countsByKey(
        this.#all(
          `SELECT stream_id, COUNT(*) AS n FROM stream_poll_queue WHERE state = 'queued' GROUP BY stream_id`,
        ),
        'stream_id',
      ),
    };
  }

  async prune({ now, deliveredBefore, limit }: PruneRequest): Promise<PruneResult> {
    return this.#writeClaims(() => {
      // Expired claims are looked for in dedupe_keys: the recent ones join it first.
      if (this.#recentClaims.size > 0) this.#settleClaims();
      return this.#pruneRows(now.getTime(), deliveredBefore.getTime(), limit);
    });
  }

  #pruneRows(now: number, deliveredBefore: number, limit: number): PruneResult {
    return {
      deliveries: this.#run(
        `DELETE FROM deliveries WHERE id IN
           (SELECT id FROM deliveries WHERE state = 'delivered' AND delivered_at < ? LIMIT ?)`,
        deliveredBefore,
        limit,
      ),
      dedupeKeys: this.#run(
        'DELETE FROM dedupe_keys WHERE key IN (SELECT key FROM dedupe_keys WHERE expires_at <= ? LIMIT ?)',
        now,
        limit,
      ),
      oneTimeIds: this.#run(
        'DELETE FROM one_time_ids WHERE (scope, id) IN (SELECT scope, id FROM one_time_ids WHERE expires_at <= ? LIMIT ?)',
        now,
        limit,
      ),
      events: this.#run(
        `DELETE FROM events WHERE id IN (SELECT e.id FROM events e WHERE e.accepted_at < ?
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)
           AND NOT EXISTS (SELECT 1 FROM schedules s WHERE s.event_id = e.id) LIMIT ?)`,
        deliveredBefore,
        limit,
      ),
      setErrors: this.#run(
        `DELETE FROM stream_poll_queue WHERE seq IN
           (SELECT seq FROM stream_poll_queue WHERE state = 'error' AND error_at < ? LIMIT ?)`,
        deliveredBefore,
        limit,
      ),
    };
  }

  /** A write that may claim or settle dedupe keys: should it roll back, the map follows. */
  #writeClaims<T>(fn: () => T): T {
    try {
      const result = this.#write(fn);
      this.#claimedInWrite = false;
      return result;
    } catch (err) {
      if (this.#claimedInWrite) this.#loadRecentClaims();
      this.#claimedInWrite = false;
      throw err;
    }
  }

  async schemaVersion(): Promise<number> {
    return Number(this.#get('SELECT MAX(version) AS v FROM schema_migrations')?.v ?? 0);
  }

  async close(): Promise<void> {
    // Writes already requested are committed, and synced, before the store closes.
    this.#writesHeld = false;
    if (this.#db.open) this.#flush();
    await Promise.allSettled([this.#nextSync, this.#lastSync]);
    if (this.#walFd !== undefined) fs.closeSync(this.#walFd);
    this.#walFd = undefined;
    await this.#checkpointer?.close();
    if (this.#db.open) {
      // A cleanly closed store leaves everything in the database file and an empty log.
      if (this.#checkpointer) {
        try {
          this.#db.pragma('wal_checkpoint(TRUNCATE)');
        } catch {
          // Another process still reads the log; the next checkpoint finishes the work.
        }
      }
      this.#db.close();
    }
    this.#writerLock?.release();
  }
}

function applyMigrations(db: Database.Database, migrations: Migration[], migrate: boolean): void {
  const tracked = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    .get();
  if (tracked === undefined && migrate) {
    db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)`);
  }
  const current =
    tracked === undefined
      ? 0
      : Number(
          (db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as { v: number | null }).v ??
            0,
        );
  checkSchemaVersion(current, migrations.at(-1)?.version ?? 0, migrate);
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    db.transaction(() => {
      db.exec(migration.sql);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)').run(
        migration.version,
        migration.name,
        Date.now(),
      );
    }).immediate();
  }
}
