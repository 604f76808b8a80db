import type { Command } from 'commander';
import { z } from 'zod';
import { defaultRegistry } from '../../runtime/defaults.ts';
import type { CliIo } from '../io.ts';
import { loadCliConfig } from '../load-config.ts';

/**
 * `ssf-bridge connectors list [--config FILE] [--json]`: the manifests of every known connector;
 * with --config, those of the packages the file names under `plugins:` too, found as `run` finds them.
 */
export function registerConnectors(program: Command, io: CliIo): void {
  const connectors = program.command('connectors').description('Inspect the available connectors');
  connectors
    .command('list')
    .description('List connector manifests (with --config: its plugins: too)')
    .option('-c, --config <file>', "also list the connectors of this config file's plugins:")
    .option('--json', 'print manifests and config JSON Schemas as JSON')
    .action(async (options: { json?: boolean; config?: string }) => {
      const registry =
        options.config === undefined ? defaultRegistry() : (await loadCliConfig(options.config, io)).registry;
      const definitions = registry.list();
      if (options.json) {
        const out = definitions.map((d) => ({
          ...d.manifest,
          configSchema: z.toJSONSchema(d.configSchema, { io: 'input', unrepresentable: 'any' }),
        }));
        io.out(JSON.stringify(out, null, 2));
        return;
      }
      if (definitions.length === 0) {
        io.out('no connectors registered');
        return;
      }
      const header = ['ID', 'KIND', 'VERSION', 'STABILITY', 'NAME'];
      const rows = [
        header,
        ...definitions.map((d) => [
          d.manifest.id,
          d.manifest.kind,
          d.manifest.version,
          d.manifest.stability,
          d.manifest.displayName,
        ]),
      ];
      const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
      for (const row of rows) {
        io.out(
          row.map((cell, i) => (i < row.length - 1 ? cell.padEnd(widths[i] as number) : cell)).join('  '),
        );
      }
    });
}
