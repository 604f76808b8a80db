import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { newEvent } from '../testing/fixtures.ts';
import { SqliteStore } from './store.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const size = (file: string) => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

describe('SQLite store: checkpoints off the event loop', () => {
  it('turns automatic checkpoints off on its connection, and uses the configured page cache', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-store-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'bridge.db');
    const store = SqliteStore.open({ path, cacheMb: 24 });
    try {
      // A second connection sees the file's settings; the store's own are read through it.
      const probe = new Database(path, { readonly: true });
      expect(probe.pragma('journal_mode', { simple: true })).toBe('wal');
      probe.close();
      expect(store.connectionSettings()).toEqual({ walAutocheckpoint: 0, cacheKib: 24 * 1024 });
    } finally {
      await store.close();
    }
  });

  it('copies a growing log into the database while commits go on, and leaves an empty log when closed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-store-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'bridge.db');
    const store = SqliteStore.open({ path });
    const padding = 'p'.repeat(2000);
    try {
      const before = size(path);
      // About 12 MB of log: past the 4 MiB threshold several times over.
      for (let batch = 0; batch < 30; batch++) {
        const events = Array.from({ length: 100 }, () => newEvent({ event: { claims: { padding } } }));
        await store.accept({ now: new Date(), events, dedupeExpiresAt: new Date(Date.now() + 60_000) });
      }
      await vi.waitFor(() => expect(size(path) - before).toBeGreaterThan(4 * 1024 * 1024), {
        timeout: 5000,
      });
    } finally {
      await store.close();
    }
    expect(size(`${path}-wal`)).toBe(0);
    const reopened = new Database(path, { readonly: true });
    expect((reopened.prepare('SELECT COUNT(*) AS n FROM events').get() as { n: number }).n).toBe(3000);
    reopened.close();
  });

  it('rule: under commits that never pause, the log still starts over instead of growing without bound', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-store-ckpt-'));
    dirs.push(dir);
    const path = join(dir, 'bridge.db');
    const store = SqliteStore.open({ path, synchronous: 'normal' });
    const padding = 'p'.repeat(2000);
    // SQLite gives the log a new salt each time it starts over from its beginning (WAL header
    // bytes 16-23); a log that only grows keeps its salt.
    const salts = new Set<string>();
    const header = Buffer.alloc(32);
    const readSalt = () => {
      const fd = openSync(`${path}-wal`, 'r');
      try {
        if (readSync(fd, header, 0, 32, 0) === 32) salts.add(header.subarray(16, 24).toString('hex'));
      } finally {
        closeSync(fd);
      }
    };
    try {
      // Four writers with no gap between commits: a checkpoint never finds the log idle.
      const until = Date.now() + 2000;
      const writer = async () => {
        while (Date.now() < until) {
          const events = Array.from({ length: 20 }, () => newEvent({ event: { claims: { padding } } }));
          await store.accept({ now: new Date(), events, dedupeExpiresAt: new Date(Date.now() + 60_000) });
          readSalt();
        }
      };
      await Promise.all([writer(), writer(), writer(), writer()]);
    } finally {
      await store.close();
    }
    expect(salts.size).toBeGreaterThanOrEqual(3);
  });
});
