import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/index.ts';
import { isBridgeError } from '../../plugin-api/errors.ts';
import { DEFAULT_SQLITE_FILE, type Store } from '../../storage/index.ts';
import { WriterLock } from '../../storage/sqlite/writer-lock.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { openBridgeStore } from '../bridge-store.ts';
import { loadBridgeConfig } from '../load-config.ts';

interface CheckpointOptions {
  config?: string;
  name?: string;
  json?: boolean;
  yes?: boolean;
}

/** Size of a stored value as the store keeps it (JSON), for the listing. */
function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? '', 'utf8');
}

async function listCheckpoints(instanceId: string, options: CheckpointOptions, io: CliIo): Promise<void> {
  const store = await openBridgeStore(await loadBridgeConfig(options.config, io));
  try {
    const rows = await store.checkpoints.list(instanceId);
    // Values are vendor state (cursors, employee snapshots): sizes only, never the content.
    const listed = rows.map((r) => ({
      name: r.name,
      updated_at: r.updatedAt.toISOString(),
      bytes: jsonBytes(r.value),
    }));
    if (options.json) {
      io.out(JSON.stringify(listed, null, 2));
      return;
    }
    if (listed.length === 0) {
      io.out(`instance ${instanceId} has no checkpoint`);
      return;
    }
    for (const r of listed) io.out(`${r.name}\tupdated ${r.updated_at}\t${r.bytes} bytes`);
  } finally {
    await store.close();
  }
}

/**
 * A running bridge keeps working from the checkpoints its instances read at start and writes
 * theirs back as they go: it would carry on where it was, and write over the reset. So reset is
 * for a stopped bridge, as `keys rotate` is. With SQLite, the bridge's writer lock is taken here
 * and held while deleting (a bridge starting meanwhile waits for it or refuses, as beside another
 * bridge). No SQLite file yet: nothing to lock, and opening the store says there is none.
 */
function stoppedBridgeLock(config: LoadedConfig): WriterLock | undefined {
  const storage = config.root.storage;
  if (storage.driver !== 'sqlite') return undefined;
  if (storage.path === ':memory:') return undefined;
  const path = resolve(storage.path ?? join(config.root.data_dir, DEFAULT_SQLITE_FILE));
  if (!existsSync(path)) return undefined;
  try {
    return WriterLock.acquire(path);
  } catch (err) {
    if (!isBridgeError(err) || err.code !== 'SSF_ERR_STORAGE_IN_USE') throw err;
    throw new CliExit(EXIT.failure, `a bridge is running on ${path}: ${STOP_FIRST}`);
  }
}

const STOP_FIRST =
  'stop the bridge first, then reset (it would go on from the checkpoints it holds, and write them back over the reset)';

/**
 * PostgreSQL has no lock to take: several bridges share the database. Every running one campaigns
 * for the scheduler's leader lease (runtime/bridge.ts), so a live lease means one runs; one that
 * was killed keeps it until it expires (storage.leader_lease).
 */
async function refuseWhileLeased(config: LoadedConfig, store: Store): Promise<void> {
  const storage = config.root.storage;
  if (storage.driver !== 'postgres') return;
  const lease = await store.leases.current('scheduler', new Date());
  if (!lease) return;
  throw new CliExit(
    EXIT.failure,
    `a bridge (${lease.holder}) is running on the database schema "${storage.schema}": ${STOP_FIRST}; stop every instance sharing it (one that was killed counts as running until its lease expires, storage.leader_lease)`,
  );
}

async function resetCheckpoints(instanceId: string, options: CheckpointOptions, io: CliIo): Promise<void> {
  const config = await loadBridgeConfig(options.config, io);
  const lock = stoppedBridgeLock(config);
  try {
    await resetStopped(instanceId, options, io, config);
  } finally {
    lock?.release();
  }
}

async function resetStopped(
  instanceId: string,
  options: CheckpointOptions,
  io: CliIo,
  config: LoadedConfig,
): Promise<void> {
  const store = await openBridgeStore(config);
  try {
    await refuseWhileLeased(config, store);
    const names = (await store.checkpoints.list(instanceId))
      .map((r) => r.name)
      .filter((name) => options.name === undefined || name === options.name);
    if (names.length === 0) {
      const which = options.name === undefined ? 'no checkpoint' : `no checkpoint named "${options.name}"`;
      throw new CliExit(EXIT.failure, `instance ${instanceId} has ${which}; nothing to reset`);
    }
    const listed = names.join(', ');
    if (!options.yes) {
      throw new CliExit(
        EXIT.invalid,
        `instance ${instanceId}: resetting deletes the checkpoint${names.length === 1 ? '' : 's'} ${listed}, and the instance starts over as on its first run: add --yes to confirm`,
      );
    }
    for (const name of names) await store.checkpoints.delete(instanceId, name);
    await store.operator.recordAudit({
      at: new Date(),
      actor: 'cli',
      role: 'write',
      action: 'checkpoints.reset',
      target: instanceId,
      detail: { names, outcome: 'ok' },
    });
    const known = config.instances.some((i) => i.id === instanceId);
    io.out(
      `reset instance ${instanceId}: deleted ${listed}${known ? '' : ' (the instance is not in this config)'}`,
    );
  } finally {
    await store.close();
  }
}

/**
 * `ssf-bridge checkpoints list|reset <instance>`: what an inbound instance keeps between runs
 * (cursors, snapshots), and starting it over when that state is unreadable or must be re-read.
 */
export function registerCheckpoints(program: Command, io: CliIo): void {
  const checkpoints = program
    .command('checkpoints')
    .description('What inbound instances keep between runs (cursors, snapshots); start one over');
  const configOption = [
    '--config <file>',
    'the bridge config (default: SSF_BRIDGE_CONFIG, else the quickstart config)',
  ] as const;
  checkpoints
    .command('list <instance>')
    .description("An instance's checkpoints: name, when it was last written, size (never the content)")
    .option(...configOption)
    .option('--json', 'print the list as JSON')
    .action((instance: string, options: CheckpointOptions) => listCheckpoints(instance, options, io));
  checkpoints
    .command('reset <instance>')
    .description('Deletes an instance’s checkpoints so it starts over as on its first run')
    .option(...configOption)
    .option('--name <name>', 'only this checkpoint')
    .option('--yes', 'confirm the deletion')
    .action((instance: string, options: CheckpointOptions) => resetCheckpoints(instance, options, io));
}
