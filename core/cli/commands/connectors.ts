import type { Command } from 'commander';
import { z } from 'zod';
import { defaultRegistry } from '../../runtime/defaults.ts';
import type { CliIo } from '../io.ts';

/** `ssf-bridge connectors list [--json]`: the manifests of every known connector. */
export function registerConnectors(program: Command, io: CliIo): void {
  const connectors = program.command('connectors').description('Inspect the available connectors');
  connectors
    .command('list')
    .description('List connector manifests')
    .option('--json', 'print manifests and config JSON Schemas as JSON')
    .action((options: { json?: boolean }) => {
      const definitions = defaultRegistry().list();
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
