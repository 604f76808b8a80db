import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LoadedConfig } from '../config/index.ts';
import { DEFAULT_SQLITE_FILE, openStore, type Store } from '../storage/index.ts';
import { CliExit, EXIT } from './io.ts';

/**
 * Opens the store of the bridge a config describes, for a one-shot command (dlq, devices). A
 * SQLite file that does not exist yet is not created, and the connection stays on this thread:
 * a command that runs a few queries gains nothing from a store thread and would wait for it to start.
 */
export async function openBridgeStore(config: LoadedConfig): Promise<Store> {
  const dataDir = resolve(config.root.data_dir);
  const storage = config.root.storage;
  if (storage.driver === 'sqlite') {
    const file = resolve(storage.path ?? join(dataDir, DEFAULT_SQLITE_FILE));
    if (!existsSync(file)) {
      throw new CliExit(EXIT.failure, `no database at ${file}: has the bridge run with this config?`);
    }
  }
  try {
    return await openStore(storage.driver === 'sqlite' ? { ...storage, thread: false } : storage, {
      dataDir,
    });
  } catch (err) {
    throw new CliExit(EXIT.failure, `cannot open the store: ${(err as Error).message}`);
  }
}
