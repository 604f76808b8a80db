import type { Command } from 'commander';
import { deviceCompliance, type DeviceCompliance } from '../../admin/devices.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { openBridgeStore } from '../bridge-store.ts';
import { loadBridgeConfig } from '../load-config.ts';

/** The human-readable answer: the current status first, then what each source knows. */
export function formatCompliance(result: DeviceCompliance): string[] {
  const { current } = result;
  const lines = [
    `device ${result.device}: ${current.status}${current.since ? ` since ${current.since}` : ''}`,
    `  from ${current.instance} (${current.connector}, ${current.from})${current.user ? `, user ${current.user}` : ''}`,
  ];
  if (result.findings.length > 1) {
    lines.push('sources:');
    for (const f of result.findings) {
      lines.push(
        `  ${f.instance} (${f.connector}, ${f.from}): ${f.status}${f.since ? ` since ${f.since}` : ''}`,
      );
    }
  }
  return lines;
}

export function registerDevices(program: Command, io: CliIo): void {
  const devices = program.command('devices').description('Device state learned from MDM sources');
  devices
    .command('show <id>')
    .description(
      'Last known compliance of a device (vendor id, serial number, hostname or UDID), when and from where',
    )
    .option('--config <file>', 'the bridge config (default: SSF_BRIDGE_CONFIG, else the quickstart config)')
    .option('--json', 'print the answer as JSON')
    .action(async (id: string, options: { config?: string; json?: boolean }) => {
      const config = await loadBridgeConfig(options.config, io);
      const store = await openBridgeStore(config);
      try {
        const instances = config.instances.map((i) => ({
          id: i.id,
          connector: i.definition.manifest.id,
          kind: i.kind,
        }));
        const result = await deviceCompliance(store, instances, id);
        if (!result) throw new CliExit(EXIT.failure, `no MDM source knows device "${id}"`);
        if (options.json) io.out(JSON.stringify(result, null, 2));
        else for (const line of formatCompliance(result)) io.out(line);
      } finally {
        await store.close();
      }
    });
}
