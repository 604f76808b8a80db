import fs, { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { newEvent } from '../testing/fixtures.ts';
import { SqliteStore } from './store.ts';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  vi.restoreAllMocks();
  while (cleanups.length > 0) await cleanups.pop()!();
});

function open(synchronous: 'full' | 'normal' = 'full', path = scratchFile()): SqliteStore {
  const store = SqliteStore.open({ path, synchronous });
  cleanups.push(() => store.close());
  return store;
}

function scratchFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-group-commit-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'bridge.db');
}

const now = new Date('2026-01-01T00:00:00Z');
const accept = (store: SqliteStore, item = newEvent()) =>
  store.accept({ now, events: [item], dedupeExpiresAt: now });

describe('SQLite group commit', () => {
  it('rule: writes of one turn share a commit, and one that fails is rolled back and rejected alone', async () => {
    const store = open();
    const first = newEvent();
    await accept(store, first);
    const fresh = newEvent();
    const clash = newEvent({ event: { id: first.event.id } });
    const results = await Promise.allSettled([accept(store, fresh), accept(store, clash)]);
    expect(results[0]).toMatchObject({ status: 'fulfilled' });
    expect(results[1]).toMatchObject({
      status: 'rejected',
      reason: expect.objectContaining({ code: 'SQLITE_CONSTRAINT_PRIMARYKEY' }),
    });
    expect(await store.events.get(fresh.event.id)).toBeDefined();
    expect(await store.deliveries.forEvent(fresh.event.id)).toHaveLength(1);
    expect((await store.deliveries.forEvent(first.event.id)).map((d) => d.jti)).toEqual([
      first.deliveries[0]!.jti,
    ]);
  });

  it('rule: accepted events resolve after one sync of the log shared by the whole turn; leases and outcomes do not wait for one', async () => {
    const store = open();
    const fsync = vi.spyOn(fs, 'fsync');
    await Promise.all([accept(store), accept(store), accept(store)]);
    expect(fsync).toHaveBeenCalledTimes(1);

    fsync.mockClear();
    const leased = await store.deliveries.lease({
      destinationId: 'dest-a',
      owner: 'w',
      limit: 10,
      now,
      leaseMs: 60_000,
    });
    expect(leased).toHaveLength(3);
    await store.deliveries.complete(
      leased.map((l) => ({ kind: 'delivered' as const, id: l.id, leaseToken: l.leaseToken })),
      now,
    );
    expect(fsync).not.toHaveBeenCalled();
    // Other writes on the connection still commit with a full sync.
    expect(store.durability()).toEqual({ journalMode: 'wal', synchronous: 'full' });
  });

  it('does not sync when the store runs with synchronous: normal', async () => {
    const store = open('normal');
    const fsync = vi.spyOn(fs, 'fsync');
    await accept(store);
    expect(fsync).not.toHaveBeenCalled();
    expect(store.durability().synchronous).toBe('normal');
  });

  it('commits writes still queued when the store closes', async () => {
    const path = scratchFile();
    const store = open('full', path);
    const item = newEvent();
    const pending = accept(store, item);
    await store.close();
    await expect(pending).resolves.toMatchObject({ results: [{ status: 'accepted' }] });
    expect(await open('full', path).events.get(item.event.id)).toBeDefined();
  });
});
