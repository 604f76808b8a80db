import type { Command } from 'commander';
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

async function resetCheckpoints(instanceId: string, options: CheckpointOptions, io: CliIo): Promise<void> {
  const config = await loadBridgeConfig(options.config, io);
  const store = await openBridgeStore(config);
  try {
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
