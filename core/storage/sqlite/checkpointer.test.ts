import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WalCheckpointer } from './checkpointer.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function walDatabase() {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-ckpt-'));
  dirs.push(dir);
  const path = join(dir, 'db.sqlite');
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('wal_autocheckpoint = 0');
  db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  return { path, db };
}

function write(db: Database.Database, rows: number) {
  const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < rows; i++) insert.run('x'.repeat(1000));
  })();
}

describe('WAL checkpoints on a helper thread', () => {
  it('copies the log into the database once it passes the threshold, and not before', async () => {
    const { path, db } = walDatabase();
    const failures: string[] = [];
    const checkpointer = new WalCheckpointer({
      path,
      thresholdBytes: 2 * 1024 * 1024,
      intervalMs: 20,
      onFailure: (reason) => failures.push(reason),
    });
    try {
      write(db, 500); // about 0.6 MB of log: below the threshold
      await new Promise((resolve) => setTimeout(resolve, 150));
      expect(checkpointer.completed).toBe(0);
      const before = statSync(path).size;
      write(db, 4000); // about 4.5 MB more
      await vi.waitFor(() => expect(checkpointer.completed).toBeGreaterThan(0), { timeout: 5000 });
      // The pages are in the database file now, and the next write starts the log over.
      expect(statSync(path).size).toBeGreaterThan(before + 4 * 1024 * 1024);
      write(db, 1);
      const [result] = db.pragma('wal_checkpoint(PASSIVE)') as Array<{ log: number }>;
      expect(result!.log).toBeLessThan(10);
      expect(failures).toEqual([]);
    } finally {
      await checkpointer.close();
      db.close();
    }
  });

  it('answers an explicit checkpoint with what SQLite reports', async () => {
    const { path, db } = walDatabase();
    const checkpointer = new WalCheckpointer({ path, intervalMs: 60_000, onFailure: () => {} });
    try {
      write(db, 100);
      const result = await checkpointer.checkpoint('TRUNCATE');
      expect(result.error).toBeUndefined();
      expect(result.busy).toBe(0);
      expect(checkpointer.logBytes()).toBe(0);
      expect((db.prepare('SELECT COUNT(*) AS n FROM t').get() as { n: number }).n).toBe(100);
    } finally {
      await checkpointer.close();
      db.close();
    }
  });

  it('reports a thread that cannot open the database, once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-ckpt-'));
    dirs.push(dir);
    const failures: string[] = [];
    const checkpointer = new WalCheckpointer({
      path: join(dir, 'missing.sqlite'),
      onFailure: (reason) => failures.push(reason),
    });
    await vi.waitFor(() => expect(failures).toHaveLength(1));
    expect(failures[0]).toMatch(/checkpoint thread/);
    expect(checkpointer.failed).toBe(true);
    expect((await checkpointer.checkpoint()).error).toMatch(/stopped/);
    await checkpointer.close();
  });
});
