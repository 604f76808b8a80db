import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { capturingLogger } from '../../../test/helpers/capture.ts';
import { openStore } from '../index.ts';
import { storageConfigSchema } from '../config.ts';
import { ConfigError } from '../../plugin-api/errors.ts';
import type { Store } from '../types.ts';
import { SqliteStore } from './store.ts';
import { ThreadedSqliteStore } from './threaded-store.ts';
import { WriterLock } from './writer-lock.ts';

const dirs: string[] = [];
const open: Store[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function databasePath(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-writer-lock-'));
  dirs.push(dir);
  return join(dir, 'ssf-bridge.db');
}

function keep<T extends Store>(store: T): T {
  open.push(store);
  return store;
}

function refusal(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    return err as ConfigError;
  }
  throw new Error('expected the open to be refused');
}

describe('one bridge process per SQLite file', () => {
  it('refuses a second writer while the first is open, lets one-shot readers in, and frees the file on close', async () => {
    const path = databasePath();
    const first = keep(SqliteStore.open({ path, exclusive: true }));
    const error = refusal(() => SqliteStore.open({ path, exclusive: true }));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.code).toBe('SSF_ERR_STORAGE_IN_USE');
    expect(error.message).toContain(`the database ${path} is in use by another running bridge`);
    expect(error.message).toContain('use PostgreSQL to run several instances');
    // The dlq and devices commands open without the lock, beside the running bridge.
    const reader = SqliteStore.open({ path });
    expect(await reader.schemaVersion()).toBe(await first.schemaVersion());
    await reader.close();
    await first.close();
    open.splice(open.indexOf(first), 1);
    keep(SqliteStore.open({ path, exclusive: true }));
  });

  it('a store on its own thread holds the lock on the event loop, through a thread that dies, until closed', async () => {
    const path = databasePath();
    const threaded = keep(await ThreadedSqliteStore.open({ path, exclusive: true }));
    expect(refusal(() => SqliteStore.open({ path, exclusive: true })).code).toBe('SSF_ERR_STORAGE_IN_USE');
    await threaded.crashThreadForTest();
    // The next call starts a new thread on the same file; the lock never left this process.
    expect(await threaded.schemaVersion()).toBeGreaterThan(0);
    expect(threaded.threadsStarted).toBe(2);
    expect(refusal(() => SqliteStore.open({ path, exclusive: true })).code).toBe('SSF_ERR_STORAGE_IN_USE');
    await threaded.close();
    keep(SqliteStore.open({ path, exclusive: true }));
  });

  it('a second threaded writer is refused before its thread starts', async () => {
    const path = databasePath();
    keep(SqliteStore.open({ path, exclusive: true }));
    await expect(ThreadedSqliteStore.open({ path, exclusive: true })).rejects.toMatchObject({
      code: 'SSF_ERR_STORAGE_IN_USE',
    });
  });

  it('a process killed with SIGKILL leaves no lock behind', async () => {
    const path = databasePath();
    const module = fileURLToPath(new URL('./writer-lock.ts', import.meta.url));
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '--eval',
        `const { WriterLock } = await import(${JSON.stringify(module)});
         WriterLock.acquire(${JSON.stringify(path)});
         process.stdout.write('held\\n');
         setInterval(() => {}, 1000);`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    expect(refusal(() => WriterLock.acquire(path)).code).toBe('SSF_ERR_STORAGE_IN_USE');
    child.kill('SIGKILL');
    await new Promise((resolve) => child.once('exit', resolve));
    expect(existsSync(`${path}.lock-journal`)).toBe(false);
    WriterLock.acquire(path).release();
  });

  it('storage.lock_wait: a bridge waits for the one holding the file, and takes the lock the moment it is released', async () => {
    const path = databasePath();
    const holder = WriterLock.acquire(path);
    const log = capturingLogger('info');
    const started = Date.now();
    let releasedAt = 0;
    setTimeout(() => {
      releasedAt = Date.now();
      holder.release();
    }, 700);
    const config = storageConfigSchema.parse({ driver: 'sqlite', path, lock_wait: '10s' });
    expect(config).toMatchObject({ lock_wait: 10_000 });
    const store = keep(await openStore(config, { dataDir: '', logger: log.logger, exclusive: true }));
    // Not before the holder let go, and soon after (it tries every 200 ms; the wait allows 10 s).
    expect(releasedAt).toBeGreaterThan(0);
    expect(Date.now() - releasedAt).toBeLessThan(1_500);
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(log.records().map((r) => r.msg)).toEqual([
      'the database is in use by another running bridge; waiting for it to stop (storage.lock_wait)',
      'the other bridge stopped; database lock taken',
    ]);
    // The lock it waited for is the store's: held while open, released on close.
    expect(refusal(() => WriterLock.acquire(path)).code).toBe('SSF_ERR_STORAGE_IN_USE');
    await store.close();
    open.splice(open.indexOf(store), 1);
    WriterLock.acquire(path).release();
  });

  it('storage.lock_wait: gives up with SSF_ERR_STORAGE_IN_USE once the wait is over, and at once by default', async () => {
    const path = databasePath();
    const holder = WriterLock.acquire(path);
    const started = Date.now();
    const waited = await WriterLock.waitFor(path, { waitMs: 500 }).catch(
      (err: unknown) => err as ConfigError,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(500);
    expect(waited).toMatchObject({ code: 'SSF_ERR_STORAGE_IN_USE' });
    expect((waited as ConfigError).message).toMatch(/waited \d+\.\ds \(storage\.lock_wait\) for it to stop/);
    const immediately = Date.now();
    await expect(
      openStore(storageConfigSchema.parse({ driver: 'sqlite', path }), { dataDir: '', exclusive: true }),
    ).rejects.toMatchObject({
      code: 'SSF_ERR_STORAGE_IN_USE',
      message: expect.stringContaining('stop the other one first'),
    });
    expect(Date.now() - immediately).toBeLessThan(1_000);
    holder.release();
  });

  it('storage.lock_wait: a wait ends when the waiting bridge is stopped, without taking the lock', async () => {
    const path = databasePath();
    const holder = WriterLock.acquire(path);
    const stop = new AbortController();
    setTimeout(() => stop.abort(new Error('stopped while starting')), 300);
    const started = Date.now();
    await expect(
      openStore(storageConfigSchema.parse({ driver: 'sqlite', path, lock_wait: '30s', thread: true }), {
        dataDir: '',
        exclusive: true,
        signal: stop.signal,
      }),
    ).rejects.toThrow('stopped while starting');
    expect(Date.now() - started).toBeLessThan(2_000);
    holder.release();
    // Nothing of the abandoned wait holds the file.
    WriterLock.acquire(path).release();
  });
});
