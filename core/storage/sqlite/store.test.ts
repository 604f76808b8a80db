import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { storeContract } from '../testing/contract.ts';
import { checkDeadOrderBackfill } from '../testing/dead-order.ts';
import { checkFirstAttemptBackfill } from '../testing/first-attempt.ts';
import { newEvent } from '../testing/fixtures.ts';
import { MISPLACED_HEADS_SQL, exerciseOrderingHeads } from '../testing/heads.ts';
import { sqliteMigrations } from './migrations.ts';
import { SETTLE_CLAIMS_AT, SqliteStore } from './store.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ssf-sqlite-'));
}

storeContract('sqlite', async () => {
  const dir = tempDir();
  const path = join(dir, 'bridge.db');
  const store = SqliteStore.open({ path });
  return {
    store,
    reopen: async () => SqliteStore.open({ path }),
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite store', () => {
  it('rule: the database runs in WAL mode with full sync by default, normal when asked', async () => {
    const dir = tempDir();
    try {
      const full = SqliteStore.open({ path: join(dir, 'full.db') });
      expect(full.durability()).toEqual({ journalMode: 'wal', synchronous: 'full' });
      await full.close();
      const normal = SqliteStore.open({ path: join(dir, 'normal.db'), synchronous: 'normal' });
      expect(normal.durability()).toEqual({ journalMode: 'wal', synchronous: 'normal' });
      await normal.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('creates the directory of the database file', async () => {
    const dir = tempDir();
    try {
      const store = SqliteStore.open({ path: join(dir, 'nested', 'deeper', 'bridge.db') });
      expect(await store.schemaVersion()).toBeGreaterThan(0);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rule: a database written by a newer release is refused, not silently downgraded', async () => {
    const dir = tempDir();
    const path = join(dir, 'bridge.db');
    try {
      await SqliteStore.open({ path }).close();
      const db = new Database(path);
      db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run(
        'future',
      );
      db.close();
      expect(() => SqliteStore.open({ path })).toThrow(/schema is version 999/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('upgrades a version-9 database: unfinished rows get their first attempt (max_age counts from it)', async () => {
    const dir = tempDir();
    const path = join(dir, 'bridge.db');
    try {
      await checkFirstAttemptBackfill({
        open: async () => SqliteStore.open({ path }),
        exec: async (sql) => {
          const db = new Database(path);
          try {
            db.exec(sql);
          } finally {
            db.close();
          }
        },
        version: 10,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('upgrades a version-10 database: the dead letters are numbered in the order they died', async () => {
    const dir = tempDir();
    const path = join(dir, 'bridge.db');
    try {
      await checkDeadOrderBackfill({
        open: async () => SqliteStore.open({ path }),
        exec: async (sql) => {
          const db = new Database(path);
          try {
            db.exec(sql);
          } finally {
            db.close();
          }
        },
        version: 11,
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('upgrades a version-3 database: dedupe keys carry over into their key-ordered table, the jti index goes, unfinished rows are indexed by finish times', async () => {
    const dir = tempDir();
    const path = join(dir, 'bridge.db');
    try {
      const db = new Database(path);
      db.exec(
        'CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)',
      );
      for (const migration of sqliteMigrations.filter((m) => m.version <= 3)) {
        db.exec(migration.sql);
        db.prepare('INSERT INTO schema_migrations VALUES (?, ?, 0)').run(migration.version, migration.name);
      }
      const now = Date.now();
      const insert = db.prepare('INSERT INTO dedupe_keys (key, event_id, expires_at) VALUES (?, ?, ?)');
      insert.run('live-key', 'ev-live', now + 60_000);
      insert.run('expired-key', 'ev-expired', now - 1);
      db.close();

      const store = SqliteStore.open({ path });
      expect(await store.schemaVersion()).toBe(sqliteMigrations.at(-1)!.version);
      const found = await store.events.findDuplicates(['live-key', 'expired-key', 'unknown'], new Date(now));
      expect([...found]).toEqual([['live-key', 'ev-live']]);
      // The expired key is claimed by a new event; the live one still makes a duplicate.
      const accepted = await store.accept({
        now: new Date(now),
        dedupeExpiresAt: new Date(now + 60_000),
        events: [
          newEvent({ event: { id: 'ev-new' }, dedupeKey: 'expired-key' }),
          newEvent({ event: { id: 'ev-dup' }, dedupeKey: 'live-key' }),
        ],
      });
      expect(accepted.results).toEqual([
        { status: 'accepted', id: 'ev-new' },
        { status: 'duplicate', id: 'ev-live' },
      ]);
      await store.close();

      const check = new Database(path, { readonly: true });
      const indexes = check.prepare("SELECT name FROM sqlite_master WHERE type = 'index'").pluck().all();
      expect(indexes).not.toContain('deliveries_jti');
      expect(indexes).toContain('dedupe_keys_expiry');
      // Unfinished rows are indexed by their finish times (version 5), not by state.
      expect(indexes).not.toContain('deliveries_due');
      const orderSql = String(
        check.prepare("SELECT sql FROM sqlite_master WHERE name = 'deliveries_order'").pluck().get(),
      );
      expect(orderSql).toMatch(/WHERE delivered_at IS NULL AND dead_at IS NULL$/);
      expect(indexes).toContain('deliveries_unfinished');
      expect(check.prepare("SELECT wr FROM pragma_table_list WHERE name = 'dedupe_keys'").pluck().get()).toBe(
        1,
      );
      check.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rule: an accept is durable when it resolves: another connection reads it before the first closes', async () => {
    const dir = tempDir();
    const path = join(dir, 'bridge.db');
    try {
      const store = SqliteStore.open({ path });
      const item = newEvent();
      await store.accept({ now: new Date(), events: [item], dedupeExpiresAt: new Date() });
      // A second connection sees the committed row without the first one closing.
      const other = SqliteStore.open({ path });
      expect(await other.events.get(item.event.id)).toEqual(item.event);
      await other.close();
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rule: whatever mix of accepts, leases, outcomes, replays and discards, each ordering key flags exactly its lowest unfinished row', async () => {
    const dir = tempDir();
    const path = join(dir, 'bridge.db');
    const store = SqliteStore.open({ path });
    const db = new Database(path, { readonly: true });
    try {
      await exerciseOrderingHeads(store, async () =>
        Number((db.prepare(MISPLACED_HEADS_SQL).get() as { n: number }).n),
      );
    } finally {
      db.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('dedupe claims: appended to dedupe_recent, moved into dedupe_keys in batches', () => {
    const HOUR = 3_600_000;
    const t0 = Date.parse('2026-11-30T08:00:00Z');
    const acceptAt = (store: SqliteStore, at: number, events: ReturnType<typeof newEvent>[]) =>
      store.accept({ now: new Date(at), events, dedupeExpiresAt: new Date(at + HOUR) });
    /** Runs `work` with the path of a database file in a directory of its own, removed after. */
    const withDatabase = async (work: (path: string) => Promise<void>) => {
      const dir = tempDir();
      try {
        await work(join(dir, 'bridge.db'));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const counts = (path: string) => {
      const db = new Database(path, { readonly: true });
      try {
        const n = (table: string) =>
          (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
        return { recent: n('dedupe_recent'), keyed: n('dedupe_keys') };
      } finally {
        db.close();
      }
    };

    it('rule: a claim still in dedupe_recent holds its key after a restart', () =>
      withDatabase(async (path) => {
        const store = SqliteStore.open({ path });
        const first = newEvent({ dedupeKey: 'hr|rec-1|type' });
        await acceptAt(store, t0, [first]);
        await store.close();
        expect(counts(path)).toEqual({ recent: 1, keyed: 0 });
        const reopened = SqliteStore.open({ path });
        const again = newEvent({ dedupeKey: 'hr|rec-1|type' });
        expect((await acceptAt(reopened, t0 + 1000, [again])).results).toEqual([
          { status: 'duplicate', id: first.event.id },
        ]);
        await reopened.close();
      }));

    it(`rule: after ${SETTLE_CLAIMS_AT} claims they move into dedupe_keys, every key still held and a re-claimed key keeping its latest claim`, () =>
      withDatabase(async (path) => {
        const store = SqliteStore.open({ path });
        const old = newEvent({ dedupeKey: 'k' });
        await acceptAt(store, t0, [old]);
        // Its claim expires; the record is accepted again, and both claims sit in dedupe_recent.
        const latest = newEvent({ dedupeKey: 'k' });
        expect((await acceptAt(store, t0 + 2 * HOUR, [latest])).results).toEqual([
          { status: 'accepted', id: latest.event.id },
        ]);
        const others = Array.from({ length: SETTLE_CLAIMS_AT }, (_, i) =>
          newEvent({ dedupeKey: `other-${i}` }),
        );
        for (let i = 0; i < others.length; i += 500)
          await acceptAt(store, t0 + 2 * HOUR, others.slice(i, i + 500));
        const after = counts(path);
        expect(after.keyed).toBe(SETTLE_CLAIMS_AT + 1);
        expect(after.recent).toBeLessThan(SETTLE_CLAIMS_AT);
        const now = new Date(t0 + 2 * HOUR + 1000);
        expect(
          await store.events.findDuplicates(['k', 'other-0', `other-${SETTLE_CLAIMS_AT - 1}`], now),
        ).toEqual(
          new Map([
            ['k', latest.event.id],
            ['other-0', others[0]!.event.id],
            [`other-${SETTLE_CLAIMS_AT - 1}`, others.at(-1)!.event.id],
          ]),
        );
        const resent = newEvent({ dedupeKey: 'other-7' });
        expect((await acceptAt(store, now.getTime(), [resent])).results).toEqual([
          { status: 'duplicate', id: others[7]!.event.id },
        ]);
        await store.close();
        const reopened = SqliteStore.open({ path });
        expect(await reopened.events.findDuplicates(['k'], now)).toEqual(new Map([['k', latest.event.id]]));
        await reopened.close();
      }));

    it('rule: prune counts and drops expired claims wherever they are', () =>
      withDatabase(async (path) => {
        const store = SqliteStore.open({ path });
        await acceptAt(store, t0, [newEvent({ dedupeKey: 'a' }), newEvent({ dedupeKey: 'b' })]);
        const live = newEvent({ dedupeKey: 'c' });
        await acceptAt(store, t0 + HOUR, [live]);
        const result = await store.prune({
          now: new Date(t0 + HOUR + 1),
          deliveredBefore: new Date(t0),
          limit: 100,
        });
        expect(result.dedupeKeys).toBe(2);
        expect(counts(path)).toEqual({ recent: 0, keyed: 1 });
        expect(await store.events.findDuplicates(['a', 'b', 'c'], new Date(t0 + HOUR + 1))).toEqual(
          new Map([['c', live.event.id]]),
        );
        await store.close();
      }));
  });
});
