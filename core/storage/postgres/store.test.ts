import pg from 'pg';
import { expect, it } from 'vitest';
import { storeContract } from '../testing/contract.ts';
import { checkDeadOrderBackfill } from '../testing/dead-order.ts';
import { checkFirstAttemptBackfill } from '../testing/first-attempt.ts';
import { ManualClock, newEvent } from '../testing/fixtures.ts';
import { MISPLACED_HEADS_SQL, exerciseOrderingHeads } from '../testing/heads.ts';
import {
  POSTGRES_TEST_URL,
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../testing/postgres.ts';
import type { DeliveryOutcome, NewEvent, Store } from '../types.ts';
import { postgresMigrations } from './migrations.ts';
import { PostgresStore, quoteIdent } from './store.ts';

async function connectTo(schema: string): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: POSTGRES_TEST_URL,
    options: `-c search_path=${quoteIdent(schema)}`,
  });
  await client.connect();
  return client;
}

/** The backend waiting on a lock that backend `pid` holds, once one is. */
async function waiterOf(observer: pg.Client, pid: number): Promise<number> {
  for (;;) {
    const { rows } = await observer.query(
      'SELECT pid FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))',
      [pid],
    );
    if (rows.length > 0) return Number(rows[0].pid);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describePostgres('postgres store', () => {
  storeContract('postgres', async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore(schema);
    const extra: Store[] = [];
    return {
      store,
      reopen: async () => {
        const again = await openTestPostgresStore(schema);
        extra.push(again);
        return again;
      },
      cleanup: async () => {
        await store.close();
        for (const s of extra) await s.close();
        await dropSchema(schema);
      },
    };
  });

  it('rule: two instances leasing in parallel never hold the same row at once (SKIP LOCKED)', async () => {
    const schema = uniqueSchema();
    const a = await openTestPostgresStore(schema, 6);
    const b = await openTestPostgresStore(schema, 6);
    try {
      const clock = new ManualClock();
      const events = Array.from({ length: 300 }, () => newEvent({ destinations: ['dest-a'] }));
      await a.accept({ now: clock.now(), events, dedupeExpiresAt: clock.now() });
      const seen = new Map<number, string>();
      const worker = async (store: Store, owner: string) => {
        for (;;) {
          const batch = await store.deliveries.lease({
            destinationId: 'dest-a',
            owner,
            limit: 7,
            now: clock.now(),
            leaseMs: 60_000,
          });
          if (batch.length === 0) return;
          for (const l of batch) {
            expect(seen.get(l.id), `row ${l.id} leased twice`).toBeUndefined();
            seen.set(l.id, owner);
          }
          await store.deliveries.complete(
            batch.map((l) => ({ kind: 'delivered' as const, id: l.id, leaseToken: l.leaseToken })),
            clock.now(),
          );
        }
      };
      await Promise.all([worker(a, 'a1'), worker(a, 'a2'), worker(b, 'b1'), worker(b, 'b2')]);
      expect(seen.size).toBe(300);
      expect(new Set(seen.values()).size).toBeGreaterThan(1);
      expect((await a.stats()).backlog).toEqual({});
    } finally {
      await a.close();
      await b.close();
      await dropSchema(schema);
    }
  });

  it('rule: whatever mix of accepts, leases, outcomes, replays and discards, each ordering key flags exactly its lowest unfinished row', async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore(schema);
    const observer = new pg.Client({
      connectionString: POSTGRES_TEST_URL,
      options: `-c search_path=${quoteIdent(schema)}`,
    });
    await observer.connect();
    try {
      await exerciseOrderingHeads(store, async () =>
        Number((await observer.query(MISPLACED_HEADS_SQL)).rows[0].n),
      );
      const { rows } = await observer.query('SELECT COUNT(*) AS n FROM ordering_locks');
      expect(Number(rows[0].n)).toBe(0);
    } finally {
      await observer.end();
      await store.close();
      await dropSchema(schema);
    }
  });

  it('rule: instances accepting, leasing and completing the same subjects at once keep each subject in order', async () => {
    const schema = uniqueSchema();
    const a = await openTestPostgresStore(schema, 6);
    const b = await openTestPostgresStore(schema, 6);
    const observer = new pg.Client({
      connectionString: POSTGRES_TEST_URL,
      options: `-c search_path=${quoteIdent(schema)}`,
    });
    await observer.connect();
    try {
      const clock = new ManualClock();
      // Few rows per accept and quick workers: subjects run dry often, so accepts race the
      // outcome that finishes a subject's last row, and two accepts race to start a subject.
      const subjects = ['s0', 's1', 's2', 's3'];
      const error = { class: 'retryable', code: 'X', message: 'again' };
      const accepts = 40;
      let accepted = 0;
      let producing = 2;
      const produce = async (store: Store, offset: number) => {
        for (let i = 0; i < accepts; i++) {
          const events = Array.from({ length: 1 + (i % 2) }, (_, j) =>
            newEvent({ event: { subjectKey: subjects[(i + j + offset) % subjects.length]! } }),
          );
          await store.accept({ now: clock.now(), events, dedupeExpiresAt: clock.now() });
          accepted += events.length;
        }
        producing -= 1;
      };
      const inFlight = new Map<string, number>();
      const finished = new Map<string, number[]>(subjects.map((s) => [s, []]));
      let turn = 0;
      const deadline = Date.now() + 20_000;
      const work = async (store: Store, owner: string) => {
        // A subject whose head lost its flag would wait forever: give up at the deadline.
        while (Date.now() < deadline) {
          const batch = await store.deliveries.lease({
            destinationId: 'dest-a',
            owner,
            limit: 4,
            now: clock.now(),
            leaseMs: 60_000,
          });
          if (batch.length === 0) {
            if (producing === 0 && Object.keys((await store.stats()).backlog).length === 0) return;
            await new Promise((resolve) => setTimeout(resolve, 1));
            continue;
          }
          for (const l of batch) {
            const subject = l.event.subjectKey;
            expect(
              inFlight.get(subject),
              `${subject}: row ${l.id} leased beside an unfinished one`,
            ).toBeUndefined();
            inFlight.set(subject, l.id);
          }
          // Taken off the books before the outcome commits: the next row cannot be leased sooner.
          const outcomes = batch.map((l): DeliveryOutcome => {
            inFlight.delete(l.event.subjectKey);
            turn += 1;
            if (turn % 7 === 0)
              return { kind: 'retry', id: l.id, leaseToken: l.leaseToken, dueAt: clock.now(), error };
            finished.get(l.event.subjectKey)!.push(l.id);
            return turn % 11 === 0
              ? { kind: 'dead', id: l.id, leaseToken: l.leaseToken, error }
              : { kind: 'delivered', id: l.id, leaseToken: l.leaseToken };
          });
          await store.deliveries.complete(outcomes, clock.now());
        }
      };
      let running = true;
      const snapshots: number[] = [];
      const observe = async () => {
        // Every committed state flags exactly one head per subject: its first unfinished row.
        while (running) {
          const { rows } = await observer.query(MISPLACED_HEADS_SQL);
          snapshots.push(Number(rows[0].n));
        }
      };
      const observing = observe();
      await Promise.all([
        produce(a, 0),
        produce(b, 1),
        work(a, 'a1'),
        work(a, 'a2'),
        work(b, 'b1'),
        work(b, 'b2'),
      ]);
      running = false;
      await observing;
      for (const [subject, ids] of finished) {
        expect(ids, `${subject} finished out of order`).toEqual([...ids].sort((x, y) => x - y));
      }
      expect([...finished.values()].flat().length, 'rows left unfinished').toBe(accepted);
      expect(accepted).toBe(2 * accepts * 1.5);
      expect(snapshots.length).toBeGreaterThan(0);
      expect(snapshots.filter((n) => n !== 0)).toEqual([]);
      // Subjects left with nothing unfinished gave up their lock rows.
      const { rows } = await observer.query('SELECT COUNT(*) AS n FROM ordering_locks');
      expect(Number(rows[0].n)).toBe(0);
    } finally {
      await observer.end();
      await a.close();
      await b.close();
      await dropSchema(schema);
    }
  });

  /** Accepts `events` for dest-a, leases them and makes the first a dead letter; returns that row. */
  async function deadLetterFirst(store: Store, clock: ManualClock, events: NewEvent[]) {
    await store.accept({ now: clock.now(), events, dedupeExpiresAt: clock.now() });
    const [first] = await store.deliveries.lease({
      destinationId: 'dest-a',
      owner: 'w',
      limit: 10,
      now: clock.now(),
      leaseMs: 60_000,
    });
    const error = { class: 'permanent', code: 'X', message: 'refused' };
    await store.deliveries.complete(
      [{ kind: 'dead', id: first!.id, leaseToken: first!.leaseToken, error }],
      clock.now(),
    );
    return first!;
  }

  it('rule: a purge only deletes rows that are still dead letters; one replayed while it waited stays and leads its key', async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore(schema, 4);
    const blocker = await connectTo(schema);
    const observer = await connectTo(schema);
    try {
      const clock = new ManualClock();
      const first = await deadLetterFirst(
        store,
        clock,
        [0, 1].map(() => newEvent({ orderingKey: 'k' })),
      );
      // The second row now leads the key. Holding its lock stalls the replay after it revived the
      // letter and before it moves the head: the replay transaction stays open.
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM deliveries WHERE id = $1 FOR UPDATE', [first!.id + 1]);
      const blockerPid = Number((await blocker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      const replaying = store.deadLetters.replay({ ids: [first!.id] }, clock.now());
      const replayPid = await waiterOf(observer, blockerPid);
      // The purge still reads the letter as dead, and waits for the replay's lock on it.
      const purging = store.deadLetters.purge({});
      await waiterOf(observer, replayPid);
      await blocker.query('COMMIT');
      expect(await replaying).toBe(1);
      expect(await purging).toBe(0);
      const { rows } = await observer.query('SELECT id, state, head FROM deliveries ORDER BY id');
      expect(rows.map((r) => [Number(r.id), r.state, r.head])).toEqual([
        [first!.id, 'pending', true],
        [first!.id + 1, 'pending', false],
      ]);
      expect(Number((await observer.query(MISPLACED_HEADS_SQL)).rows[0].n)).toBe(0);
      const again = await store.deliveries.lease({
        destinationId: 'dest-a',
        owner: 'w',
        limit: 10,
        now: clock.now(),
        leaseMs: 60_000,
      });
      expect(again.map((l) => l.jti)).toEqual([first!.jti]);
    } finally {
      await blocker.end();
      await observer.end();
      await store.close();
      await dropSchema(schema);
    }
  });

  it('rule: a death waits for an earlier one still being written, so a page never passes a letter that commits later', async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore(schema, 4);
    const blocker = await connectTo(schema);
    const observer = await connectTo(schema);
    try {
      const clock = new ManualClock();
      await store.accept({
        now: clock.now(),
        events: [
          newEvent({ orderingKey: 'k' }),
          newEvent({ orderingKey: 'k' }),
          newEvent({ orderingKey: 'j' }),
        ],
        dedupeExpiresAt: clock.now(),
      });
      const [first, other] = await store.deliveries.lease({
        destinationId: 'dest-a',
        owner: 'w',
        limit: 10,
        now: clock.now(),
        leaseMs: 60_000,
      });
      const error = { class: 'permanent', code: 'X', message: 'refused' };
      const die = (l: { id: number; leaseToken: string }) =>
        store.deliveries.complete([{ kind: 'dead', id: l.id, leaseToken: l.leaseToken, error }], clock.now());
      // The row behind the first leads its key once the first dies. Holding its lock stalls that
      // death after it took its number and before it commits.
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM deliveries WHERE id = $1 FOR UPDATE', [first!.id + 1]);
      const blockerPid = Number((await blocker.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      const dyingFirst = die(first!);
      const firstPid = await waiterOf(observer, blockerPid);
      // A death of another key waits for it rather than commit a later number before it.
      const dyingOther = die(other!);
      await waiterOf(observer, firstPid);
      expect(await store.deadLetters.list()).toEqual([]);
      await blocker.query('COMMIT');
      expect([await dyingFirst, await dyingOther]).toEqual([1, 1]);
      const listed = await store.deadLetters.list();
      expect(listed.map((l) => l.id)).toEqual([first!.id, other!.id]);
      expect(listed[0]!.deadSeq).toBeLessThan(listed[1]!.deadSeq);
    } finally {
      await blocker.end();
      await observer.end();
      await store.close();
      await dropSchema(schema);
    }
  });

  it('rule: a replay only revives rows that are still dead letters when it writes them', async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore(schema, 4);
    const other = await connectTo(schema);
    const observer = await connectTo(schema);
    try {
      const clock = new ManualClock();
      const row = await deadLetterFirst(store, clock, [newEvent()]);
      // Another writer takes the letter out of the dead state and holds it while the replay reads
      // it as dead and waits for it.
      await other.query('BEGIN');
      await other.query(
        `UPDATE deliveries SET state = 'delivered', attempts = 7, dead_at = NULL, head = false WHERE id = $1`,
        [row!.id],
      );
      const otherPid = Number((await other.query('SELECT pg_backend_pid() AS pid')).rows[0].pid);
      const replaying = store.deadLetters.replay({ ids: [row!.id] }, clock.now());
      await waiterOf(observer, otherPid);
      await other.query('COMMIT');
      expect(await replaying).toBe(0);
      const { rows } = await other.query('SELECT state, attempts FROM deliveries WHERE id = $1', [row!.id]);
      expect(rows).toEqual([{ state: 'delivered', attempts: 7 }]);
    } finally {
      await other.end();
      await observer.end();
      await store.close();
      await dropSchema(schema);
    }
  });

  it('rule: concurrent accepts of the same record from two instances store it once', async () => {
    const schema = uniqueSchema();
    const a = await openTestPostgresStore(schema);
    const b = await openTestPostgresStore(schema);
    try {
      const now = new Date();
      const expires = new Date(now.getTime() + 60_000);
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          (i % 2 ? a : b).accept({
            now,
            events: [newEvent({ dedupeKey: 'hr|rec-1|t' })],
            dedupeExpiresAt: expires,
          }),
        ),
      );
      const statuses = results.map((r) => r.results[0]!.status);
      expect(statuses.filter((s) => s === 'accepted')).toHaveLength(1);
      const ids = new Set(results.map((r) => r.results[0]!.id));
      expect(ids.size).toBe(1);
      expect((await a.stats()).backlog).toEqual({ 'dest-a': 1 });
    } finally {
      await a.close();
      await b.close();
      await dropSchema(schema);
    }
  });

  it('rule: a store opened without migrating uses only a database at its own schema version, and changes nothing', async () => {
    const schema = uniqueSchema();
    const latest = postgresMigrations.at(-1)!.version;
    const open = () => PostgresStore.open({ url: POSTGRES_TEST_URL, schema, poolSize: 1, migrate: false });
    const admin = await connectTo(schema);
    const version = async () =>
      Number((await admin.query('SELECT MAX(version) AS v FROM schema_migrations')).rows[0].v);
    try {
      await expect(open()).rejects.toMatchObject({ code: 'SSF_ERR_STORAGE_SCHEMA_MISSING' });
      const created = await admin.query('SELECT 1 FROM pg_namespace WHERE nspname = $1', [schema]);
      expect(created.rowCount).toBe(0);
      await (await openTestPostgresStore(schema)).close();
      await admin.query('DELETE FROM schema_migrations WHERE version = $1', [latest]);
      await expect(open()).rejects.toMatchObject({
        code: 'SSF_ERR_STORAGE_SCHEMA_OLDER',
        detail: { schemaVersion: latest - 1, supportedVersion: latest },
      });
      expect(await version()).toBe(latest - 1);
      await admin.query("INSERT INTO schema_migrations VALUES ($1, 'restored', 0)", [latest]);
      const store = await open();
      expect((await store.stats()).backlog).toEqual({});
      await store.close();
      await admin.query("INSERT INTO schema_migrations VALUES ($1, 'from the future', 0)", [latest + 1]);
      await expect(open()).rejects.toMatchObject({ code: 'SSF_ERR_STORAGE_SCHEMA_NEWER' });
    } finally {
      await admin.end();
      await dropSchema(schema);
    }
  });

  it('rule: an instance starting while another migrates waits for it, beyond statement_timeout', async () => {
    const schema = uniqueSchema();
    const other = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await other.connect();
    let store: Store | undefined;
    try {
      // The lock a migrating instance holds, kept for twice the statement_timeout.
      await other.query('BEGIN');
      await other.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`ssf-bridge.migrations.${schema}`]);
      const release = setTimeout(() => void other.query('COMMIT'), 2000);
      const started = Date.now();
      try {
        store = await PostgresStore.open({
          url: POSTGRES_TEST_URL,
          schema,
          poolSize: 1,
          statementTimeoutMs: 1000,
        });
      } finally {
        clearTimeout(release);
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
      expect((await store.stats()).backlog).toEqual({});
    } finally {
      await store?.close();
      await other.query('ROLLBACK').catch(() => undefined);
      await other.end();
      await dropSchema(schema);
    }
  });

  it('rule: a user with USAGE and CREATE on an existing schema, but no CREATE on the database, can start', async () => {
    const schema = uniqueSchema();
    const role = `${schema}_user`;
    const admin = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await admin.connect();
    let store: Store | undefined;
    try {
      await admin.query(`CREATE SCHEMA ${quoteIdent(schema)}`);
      await admin.query(`CREATE ROLE ${quoteIdent(role)} LOGIN`);
      await admin.query(`GRANT USAGE, CREATE ON SCHEMA ${quoteIdent(schema)} TO ${quoteIdent(role)}`);
      const { rows } = await admin.query(
        `SELECT has_database_privilege($1, current_database(), 'CREATE') AS c`,
        [role],
      );
      // The premise: the role cannot create a schema (PUBLIC has no CREATE on the database).
      expect(rows[0].c).toBe(false);
      const url = new URL(POSTGRES_TEST_URL);
      url.username = role;
      url.password = '';
      store = await PostgresStore.open({ url: url.toString(), schema, poolSize: 1 });
      expect((await store.stats()).backlog).toEqual({});
    } finally {
      await store?.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
      await admin.query(`DROP OWNED BY ${quoteIdent(role)}`).catch(() => undefined);
      await admin.query(`DROP ROLE IF EXISTS ${quoteIdent(role)}`);
      await admin.end();
    }
  });

  it('upgrades a version-7 schema: unfinished rows get their first attempt (max_age counts from it)', async () => {
    const schema = uniqueSchema();
    try {
      await checkFirstAttemptBackfill({
        open: () => openTestPostgresStore(schema),
        exec: async (sql) => {
          const client = await connectTo(schema);
          try {
            await client.query(sql);
          } finally {
            await client.end();
          }
        },
        version: 8,
      });
    } finally {
      await dropSchema(schema);
    }
  });

  it('upgrades a version-8 schema: the dead letters are numbered in the order they died', async () => {
    const schema = uniqueSchema();
    try {
      await checkDeadOrderBackfill({
        open: () => openTestPostgresStore(schema),
        exec: async (sql) => {
          const client = await connectTo(schema);
          try {
            await client.query(sql);
          } finally {
            await client.end();
          }
        },
        version: 9,
      });
    } finally {
      await dropSchema(schema);
    }
  });

  it('rule: instances starting together apply each migration once', async () => {
    const schema = uniqueSchema();
    const opened = await Promise.allSettled([0, 1, 2].map(() => openTestPostgresStore(schema)));
    const stores = opened.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    try {
      expect(opened.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
      const client = new pg.Client({ connectionString: POSTGRES_TEST_URL });
      await client.connect();
      try {
        const { rows } = await client.query(
          `SELECT version FROM ${quoteIdent(schema)}.schema_migrations ORDER BY version`,
        );
        expect(rows.map((r) => Number(r.version))).toEqual(postgresMigrations.map((m) => m.version));
      } finally {
        await client.end();
      }
    } finally {
      for (const s of stores) await s.close();
      await dropSchema(schema);
    }
  });
});
