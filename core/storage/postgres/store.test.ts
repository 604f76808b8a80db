import pg from 'pg';
import { expect, it } from 'vitest';
import { storeContract } from '../testing/contract.ts';
import { ManualClock, newEvent } from '../testing/fixtures.ts';
import {
  POSTGRES_TEST_URL,
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../testing/postgres.ts';
import type { Store } from '../types.ts';
import { postgresMigrations } from './migrations.ts';
import { quoteIdent } from './store.ts';

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
