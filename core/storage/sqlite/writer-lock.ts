/**
 * One bridge process per SQLite file. The bridge that runs holds an exclusive lock on a companion
 * file (`<database>.lock`) for as long as its store is open, and a second one refuses to start.
 *
 * Why: two bridges on one file would both accept and deliver. Leases keep them from delivering
 * the same row twice at once, but the dedupe claims of recent events live in each process's
 * memory (see the store), so the same source record could be accepted by both, and each would
 * answer for events the other accepted.
 *
 * The lock is a transaction SQLite holds open on that file: an operating-system lock, which the
 * kernel drops when the process ends, however it ends (SIGKILL, a crash). There is never a stale
 * lock to clear by hand. The one-shot commands (`dlq`, `devices`) do not take it: they are meant
 * to run beside a bridge.
 *
 * A bridge may also wait for the lock (`storage.lock_wait`): started beside the bridge it
 * replaces, it takes over the moment that one has drained and stopped, already loaded.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { ConfigError } from '../../plugin-api/errors.ts';
import type { Logger } from '../../plugin-api/types.ts';

/** How often a waiting bridge tries the lock again. */
const RETRY_EVERY_MS = 200;

export interface LockWaitOptions {
  /** Longest wait for the bridge holding the lock to stop, in milliseconds. */
  waitMs: number;
  /** Told once when the wait starts, and when the lock is taken. */
  logger?: Logger | undefined;
  /** Ends the wait early (the waiting bridge is being stopped). */
  signal?: AbortSignal | undefined;
}

export class WriterLock {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /**
   * The lock a store opened with these options holds: the one taken for it beforehand (see
   * `waitFor`), else a new one; none in memory or when not exclusive.
   */
  static forStore(options: {
    path: string;
    exclusive?: boolean | undefined;
    writerLock?: WriterLock | undefined;
  }): WriterLock | undefined {
    if (options.writerLock) return options.writerLock;
    return options.exclusive && options.path !== ':memory:' ? WriterLock.acquire(options.path) : undefined;
  }

  /** Takes the lock of the database at `databasePath`, or throws if another process holds it. */
  static acquire(databasePath: string): WriterLock {
    const lock = WriterLock.#tryAcquire(databasePath);
    if (!lock) throw inUse(databasePath, 'stop the other one first');
    return lock;
  }

  /**
   * Takes the lock, waiting up to `waitMs` for the process holding it to stop. Tries again every
   * 200 ms without blocking the event loop, so the waiting process still answers signals.
   */
  static async waitFor(databasePath: string, options: LockWaitOptions): Promise<WriterLock> {
    const started = Date.now();
    let told = false;
    for (;;) {
      options.signal?.throwIfAborted();
      const lock = WriterLock.#tryAcquire(databasePath);
      const waited = Date.now() - started;
      if (lock) {
        if (told) options.logger?.info({ waitedMs: waited }, 'the other bridge stopped; database lock taken');
        return lock;
      }
      if (waited >= options.waitMs) {
        throw inUse(databasePath, `waited ${formatSeconds(waited)} (storage.lock_wait) for it to stop`);
      }
      if (!told) {
        told = true;
        options.logger?.warn(
          { database: databasePath, lockWaitMs: options.waitMs },
          'the database is in use by another running bridge; waiting for it to stop (storage.lock_wait)',
        );
      }
      // An abort ends the sleep; the loop's first line then throws the signal's reason.
      await sleep(Math.min(RETRY_EVERY_MS, options.waitMs - waited), undefined, {
        signal: options.signal,
      }).catch(() => undefined);
    }
  }

  /** The lock, or undefined when another process holds it. */
  static #tryAcquire(databasePath: string): WriterLock | undefined {
    mkdirSync(dirname(databasePath), { recursive: true });
    // No waiting inside SQLite: its busy handler would block the event loop.
    const db = new Database(`${databasePath}.lock`, { timeout: 0 });
    try {
      // Nothing is ever written: the journal stays in memory, so a killed process leaves no
      // `-journal` file behind.
      db.pragma('journal_mode = MEMORY');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      return undefined;
    }
    return new WriterLock(db);
  }

  release(): void {
    if (this.#db.open) this.#db.close();
  }
}

function inUse(databasePath: string, advice: string): ConfigError {
  return new ConfigError(
    `the database ${databasePath} is in use by another running bridge (it holds ${databasePath}.lock); ` +
      `one bridge process serves a SQLite file: ${advice}, or use PostgreSQL to run several instances`,
    { code: 'SSF_ERR_STORAGE_IN_USE' },
  );
}

function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
