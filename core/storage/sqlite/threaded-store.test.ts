import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../plugin-api/errors.ts';
import { openStore } from '../index.ts';
import { storageConfigSchema } from '../config.ts';
import { storeContract } from '../testing/contract.ts';
import { newEvent } from '../testing/fixtures.ts';
import { SqliteStore } from './store.ts';
import { ThreadedSqliteStore } from './threaded-store.ts';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'ssf-sqlite-thread-'));
}

storeContract('sqlite on its own thread', async () => {
  const dir = tempDir();
  const path = join(dir, 'bridge.db');
  const store = await ThreadedSqliteStore.open({ path });
  return {
    store,
    reopen: () => ThreadedSqliteStore.open({ path }),
    cleanup: async () => {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

describe('sqlite store on its own thread', () => {
  const dirs: string[] = [];
  const dirFor = () => {
    const dir = tempDir();
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it('is what `thread: true` opens; by default the connection stays on the event loop', async () => {
    const dataDir = dirFor();
    const threaded = await openStore(storageConfigSchema.parse({ driver: 'sqlite', thread: true }), {
      dataDir,
    });
    expect(threaded).toBeInstanceOf(ThreadedSqliteStore);
    await threaded.close();
    const inline = await openStore(storageConfigSchema.parse(undefined), { dataDir });
    expect(inline).toBeInstanceOf(SqliteStore);
    await inline.close();
  });

  it('rule: a database written by a newer release is refused with the same ConfigError as on the event loop', async () => {
    const path = join(dirFor(), 'bridge.db');
    await SqliteStore.open({ path }).close();
    const db = new Database(path);
    db.prepare('INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, ?, 0)').run('future');
    db.close();
    const refused = await ThreadedSqliteStore.open({ path }).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ConfigError);
    expect(refused).toMatchObject({ code: 'SSF_ERR_STORAGE_SCHEMA_NEWER', message: /schema is version 999/ });
  });

  it('rule: an accept is durable when it resolves: another connection reads it while the thread still runs', async () => {
    const path = join(dirFor(), 'bridge.db');
    const store = await ThreadedSqliteStore.open({ path });
    try {
      const item = newEvent();
      await store.accept({ now: new Date(), events: [item], dedupeExpiresAt: new Date() });
      const other = SqliteStore.open({ path });
      expect(await other.events.get(item.event.id)).toEqual(item.event);
      await other.close();
    } finally {
      await store.close();
    }
  });

  it('errors from SQLite come back with their name and code, and the store keeps serving', async () => {
    const path = join(dirFor(), 'bridge.db');
    const store = await ThreadedSqliteStore.open({ path });
    try {
      const item = newEvent();
      await store.accept({ now: new Date(), events: [item], dedupeExpiresAt: new Date() });
      // The same event id twice breaks the primary key: the second accept is rejected alone.
      const refused = await store
        .accept({ now: new Date(), events: [item], dedupeExpiresAt: new Date() })
        .catch((err: unknown) => err);
      expect(refused).toMatchObject({ name: 'SqliteError', code: 'SQLITE_CONSTRAINT_PRIMARYKEY' });
      expect(await store.events.get(item.event.id)).toEqual(item.event);
    } finally {
      await store.close();
    }
  });

  it('close commits and syncs every write requested before it', async () => {
    const path = join(dirFor(), 'bridge.db');
    const store = await ThreadedSqliteStore.open({ path });
    const items = Array.from({ length: 50 }, () => newEvent());
    const accepted = items.map((item) =>
      store.accept({ now: new Date(), events: [item], dedupeExpiresAt: new Date() }),
    );
    await store.close();
    expect((await Promise.all(accepted)).map((r) => r.results[0]!.status)).toEqual(
      items.map(() => 'accepted'),
    );
    await expect(store.stats()).rejects.toThrow(/closed/);
    const reopened = SqliteStore.open({ path });
    for (const item of items) expect(await reopened.events.get(item.event.id)).toEqual(item.event);
    await reopened.close();
  });

  it('a thread that dies fails the calls it held, and the next call starts a new thread on the same data', async () => {
    const path = join(dirFor(), 'bridge.db');
    const store = await ThreadedSqliteStore.open({ path });
    try {
      const item = newEvent();
      await store.accept({ now: new Date(), events: [item], dedupeExpiresAt: new Date() });
      // A large batch keeps the thread busy for a good while, so the calls are surely still held
      // when it dies (a lone quick call could be answered before the thread is stopped).
      const busy = store.accept({
        now: new Date(),
        events: Array.from({ length: 20_000 }, () => newEvent()),
        dedupeExpiresAt: new Date(),
      });
      const held = store.stats();
      await store.crashThreadForTest();
      await expect(busy).rejects.toThrow(/database thread stopped/);
      await expect(held).rejects.toThrow(/database thread stopped/);
      expect(await store.events.get(item.event.id)).toEqual(item.event);
      expect(store.threadsStarted).toBe(2);
    } finally {
      await store.close();
    }
  });
});
