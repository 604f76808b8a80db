import { join } from 'node:path';
import type { Logger } from '../plugin-api/types.ts';
import type { StorageConfig } from './config.ts';
import { PostgresStore } from './postgres/store.ts';
import { SqliteStore } from './sqlite/store.ts';
import { ThreadedSqliteStore } from './sqlite/threaded-store.ts';
import { WriterLock } from './sqlite/writer-lock.ts';
import type { Store } from './types.ts';

export * from './types.ts';
export { storageConfigSchema, type StorageConfig, type StorageConfigInput } from './config.ts';
export { LeaderElection, type LeaderElectionOptions } from './leader.ts';
export { STREAM_CONFLICT, isStreamConflict, streamConflict } from './stream-conflict.ts';

/** File name of the embedded database inside the data directory. */
export const DEFAULT_SQLITE_FILE = 'ssf-bridge.db';

export interface OpenStoreOptions {
  /** Directory for the embedded database when the config names no path. */
  dataDir: string;
  logger?: Logger;
  /**
   * The running bridge: with SQLite, take the file's writer lock, so that a second bridge on the
   * same file refuses to start (SSF_ERR_STORAGE_IN_USE). One-shot commands leave it off.
   */
  exclusive?: boolean;
  /** Ends a wait for the writer lock (`storage.lock_wait`) early: the bridge is being stopped. */
  signal?: AbortSignal;
  /**
   * Bring the schema up to date (default: the running bridge). One-shot commands pass false and
   * get SSF_ERR_STORAGE_SCHEMA_MISSING, _OLDER or _NEWER unless the database is at this build's
   * version: they must not migrate a database under a running bridge of another release.
   */
  migrate?: boolean;
}

/** Opens the configured store and brings its schema up to date (unless `migrate` is false). */
export async function openStore(config: StorageConfig, options: OpenStoreOptions): Promise<Store> {
  if (config.driver === 'postgres') {
    return PostgresStore.open({
      url: config.url.reveal(),
      schema: config.schema,
      poolSize: config.pool_size,
      connectTimeoutMs: config.connect_timeout,
      statementTimeoutMs: config.statement_timeout,
      ...(options.logger === undefined ? {} : { logger: options.logger }),
      ...(options.migrate === false ? { migrate: false } : {}),
    });
  }
  const path = config.path ?? join(options.dataDir, DEFAULT_SQLITE_FILE);
  // Waited for here, before the store opens, so the wait does not block the event loop.
  const writerLock =
    options.exclusive && config.lock_wait > 0 && path !== ':memory:'
      ? await WriterLock.waitFor(path, {
          waitMs: config.lock_wait,
          logger: options.logger,
          signal: options.signal,
        })
      : undefined;
  const sqlite = {
    path,
    synchronous: config.synchronous,
    busyTimeoutMs: config.busy_timeout,
    cacheMb: config.cache_mb,
    ...(options.logger === undefined ? {} : { logger: options.logger }),
    ...(options.exclusive ? { exclusive: true } : {}),
    ...(writerLock ? { writerLock } : {}),
    ...(options.migrate === false ? { migrate: false } : {}),
  };
  return config.thread ? ThreadedSqliteStore.open(sqlite) : SqliteStore.open(sqlite);
}
