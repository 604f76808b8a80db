import type { Command } from 'commander';
import { loadConfigFile } from '../../config/index.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { defaultRegistry, configCrossChecks } from '../../runtime/defaults.ts';

/** `ssf-bridge validate --config FILE`: every problem at once, non-zero exit when any. */
export function registerValidate(program: Command, io: CliIo): void {
  program
    .command('validate')
    .description('Check a config file and report every problem at once')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .option('--json', 'print the result as JSON')
    .action(async (options: { config: string; json?: boolean }) => {
      const result = await loadConfigFile(options.config, {
        registry: defaultRegistry(),
        crossChecks: configCrossChecks(),
      });
      if (result.ok) {
        const { instances } = result.config;
        const inbound = instances.filter((i) => i.kind === 'inbound').length;
        const summary = `${options.config}: valid (${inbound} inbound, ${instances.length - inbound} outbound instances)`;
        io.out(options.json ? JSON.stringify({ valid: true, problems: [] }) : summary);
        return;
      }
      if (options.json) {
        io.out(JSON.stringify({ valid: false, problems: result.problems }, null, 2));
      } else {
        const count = result.problems.length;
        io.err(`${options.config}: ${count} problem${count === 1 ? '' : 's'}`);
        for (const problem of result.problems) io.err(`  ${problem.path}: ${problem.message}`);
      }
      throw new CliExit(EXIT.invalid, '');
    });
}
