import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { LoadedConfig } from '../config/index.ts';
import { isBridgeError } from '../plugin-api/errors.ts';
import { DEFAULT_SQLITE_FILE, openStore, type Store } from '../storage/index.ts';
import { CliExit, EXIT } from './io.ts';

/**
 * Opens the store of the bridge a config describes, for a one-shot command (dlq, devices). A
 * SQLite file that does not exist yet is not created, and the connection stays on this thread:
 * a command that runs a few queries gains nothing from a store thread and would wait for it to start.
 * The schema is never migrated, since a bridge of another release may be running on the database:
 * one at another version than this build's is refused (exit 1) with what to do instead.
 */
export async function openBridgeStore(config: LoadedConfig): Promise<Store> {
  const dataDir = resolve(config.root.data_dir);
  const storage = config.root.storage;
  let where: string;
  if (storage.driver === 'sqlite') {
    const file = resolve(storage.path ?? join(dataDir, DEFAULT_SQLITE_FILE));
    if (!existsSync(file)) {
      throw new CliExit(EXIT.failure, `no database at ${file}: has the bridge run with this config?`);
    }
    where = `the database at ${file}`;
  } else {
    where = `the database schema "${storage.schema}"`;
  }
  try {
    return await openStore(storage.driver === 'sqlite' ? { ...storage, thread: false } : storage, {
      dataDir,
      migrate: false,
    });
  } catch (err) {
    throw new CliExit(
      EXIT.failure,
      schemaMismatch(err, where) ?? `cannot open the store: ${(err as Error).message}`,
    );
  }
}

/** What a one-shot command says about a database whose schema is not this build's. */
function schemaMismatch(err: unknown, where: string): string | undefined {
  if (!isBridgeError(err)) return undefined;
  const version = String(err.detail?.schemaVersion);
  const supported = String(err.detail?.supportedVersion);
  switch (err.code) {
    case 'SSF_ERR_STORAGE_SCHEMA_MISSING':
      return `${where} has no ssf-bridge schema yet, so there is nothing to show: has the bridge run with this config?`;
    case 'SSF_ERR_STORAGE_SCHEMA_OLDER':
      return `${where} is at schema version ${version}, older than this ssf-bridge's ${supported}: run \`ssf-bridge run\` of this release first to upgrade the database`;
    case 'SSF_ERR_STORAGE_SCHEMA_NEWER':
      return `this ssf-bridge is older than ${where} (schema version ${version}; this release knows up to ${supported}): use the ssf-bridge release that the bridge runs`;
    default:
      return undefined;
  }
}
