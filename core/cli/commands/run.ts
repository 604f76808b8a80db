import { constants } from 'node:os';
import type { Command } from 'commander';
import { loadConfigFile, loadConfigText, type LoadResult } from '../../config/index.ts';
import { Bridge } from '../../runtime/bridge.ts';
import { configCrossChecks, defaultRegistry } from '../../runtime/defaults.ts';
import { QUICKSTART_CONFIG, QUICKSTART_TOKEN_DEFAULT } from '../../runtime/quickstart.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';

interface RunOptions {
  config?: string;
}

/**
 * `ssf-bridge run [--config FILE]`: runs until SIGTERM or SIGINT, then drains within
 * `server.shutdown_timeout` and exits 0. A second signal exits at once with 128 + its number
 * (143 for SIGTERM, 130 for SIGINT), as a shell reports a process the signal ended. An error
 * nothing handled is logged (fatal, scrubbed of secrets like every log line) rather than printed
 * by Node, raw, on stderr, and the process exits 1 at once.
 */
export function registerRun(program: Command, io: CliIo): void {
  program
    .command('run')
    .description('Run the bridge (without --config: the quickstart on embedded defaults)')
    .option('-c, --config <file>', 'config file (YAML or JSON); env SSF_BRIDGE_CONFIG')
    .action(async (options: RunOptions) => {
      const file = options.config ?? process.env.SSF_BRIDGE_CONFIG;
      const loadOptions = { registry: defaultRegistry(), crossChecks: configCrossChecks() };
      const result: LoadResult = file
        ? await loadConfigFile(file, loadOptions)
        : await loadConfigText(QUICKSTART_CONFIG, loadOptions);
      if (!result.ok) {
        io.err(`${file ?? 'quickstart config'}: ${result.problems.length} problem(s)`);
        for (const p of result.problems) io.err(`  ${p.path}: ${p.message}`);
        if (!file && process.env.SSF_BRIDGE_QUICKSTART_TOKEN) {
          io.err('  (the quickstart takes its ingest and receiver token from SSF_BRIDGE_QUICKSTART_TOKEN)');
        }
        throw new CliExit(EXIT.invalid, '');
      }
      const bridge = new Bridge(result.config);
      const stopped = new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals += 1;
          if (signals > 1) {
            io.err(`${signal} again: exiting without draining`);
            process.exit(128 + constants.signals[signal]);
          }
          bridge.logger.info({ signal }, 'draining before exit');
          void bridge.stop().then(resolve, (err: unknown) => {
            bridge.logger.error({ err }, 'shutdown failed');
            resolve();
          });
        };
        // Node's default prints the error and its stack on stderr as they are, and a connector's
        // error text may quote a credential; the logger scrubs every known secret value. No drain:
        // the process is in an unknown state (Node's advice), nothing accepted is lost (it is in
        // the store), and an attempt cut short this way must count as interrupted when the bridge
        // starts again, so that an event that crashes the bridge every time is given up.
        const onFatal = (err: unknown, origin: string) => {
          bridge.logger.fatal({ err, origin }, 'unexpected error; exiting without draining');
          bridge.logger.flush();
          io.err('ssf-bridge: stopped after an unexpected error (see the log)');
          process.exit(EXIT.failure);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        process.on('uncaughtException', onFatal);
        process.on('unhandledRejection', (reason) => onFatal(reason, 'unhandledRejection'));
      });
      try {
        await bridge.start();
      } catch (err) {
        if (bridge.stopRequested) {
          // A signal while starting (waiting for the database lock, say): a stop, not a failure.
          await stopped;
          bridge.logger.info('stopped before it started serving');
          bridge.logger.flush();
          return;
        }
        bridge.logger.error({ err }, 'startup failed');
        bridge.logger.flush();
        throw new CliExit(EXIT.failure, `ssf-bridge: startup failed: ${(err as Error).message}`);
      }
      if (!file) {
        const token = process.env.SSF_BRIDGE_QUICKSTART_TOKEN || QUICKSTART_TOKEN_DEFAULT;
        io.err(
          quickstartHelp(
            bridge.url,
            token === QUICKSTART_TOKEN_DEFAULT ? token : '$SSF_BRIDGE_QUICKSTART_TOKEN',
          ),
        );
      }
      await stopped;
      bridge.logger.info('stopped');
      bridge.logger.flush();
    });
}

function quickstartHelp(url: string, token: string): string {
  return [
    '',
    `Quickstart: an events API and a log destination are running at ${url}.`,
    'Send an event (its SET is printed on standard output):',
    `  curl -s -X POST ${url}/ingest/quickstart -H 'Authorization: Bearer ${token}' \\`,
    `    -H 'Content-Type: application/json' \\`,
    `    -d '{"type":"caep.session-revoked","subject":{"format":"email","email":"jane@example.com"}}'`,
    'Stop with Ctrl-C. See docs/quickstart.md.',
    '',
  ].join('\n');
}
