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
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConfigError } from '../../plugin-api/errors.ts';

export class WriterLock {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** The lock a store opened with these options holds: none in memory or when not exclusive. */
  static forStore(options: { path: string; exclusive?: boolean | undefined }): WriterLock | undefined {
    return options.exclusive && options.path !== ':memory:' ? WriterLock.acquire(options.path) : undefined;
  }

  /** Takes the lock of the database at `databasePath`, or throws if another process holds it. */
  static acquire(databasePath: string): WriterLock {
    mkdirSync(dirname(databasePath), { recursive: true });
    const path = `${databasePath}.lock`;
    // No waiting: a lock that is held stays held for as long as its bridge runs.
    const db = new Database(path, { timeout: 0 });
    try {
      // Nothing is ever written: the journal stays in memory, so a killed process leaves no
      // `-journal` file behind.
      db.pragma('journal_mode = MEMORY');
      db.exec('BEGIN EXCLUSIVE');
    } catch (err) {
      db.close();
      if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      throw new ConfigError(
        `the database ${databasePath} is in use by another running bridge (it holds ${path}); ` +
          'one bridge process serves a SQLite file: stop the other one first, or use PostgreSQL to run several instances',
        { code: 'SSF_ERR_STORAGE_IN_USE' },
      );
    }
    return new WriterLock(db);
  }

  release(): void {
    if (this.#db.open) this.#db.close();
  }
}
