import type { ConnectorContext, OutboundConnector } from '../../core/plugin-api/index.ts';
import type { LogConfig } from './config.ts';
import { formatSet } from './mapping.ts';

export interface LogSink {
  write(line: string): void;
}

const stdoutSink: LogSink = { write: (line) => void process.stdout.write(`${line}\n`) };

/**
 * Writes every delivered SET to standard output: the quickstart's destination, and a way to see
 * exactly what a route produces before pointing it at a real receiver.
 */
export function createLogDestination(
  ctx: ConnectorContext,
  config: LogConfig,
  sink: LogSink = stdoutSink,
): OutboundConnector {
  const delivered = ctx.metrics.counter('log_sets_written_total', 'SETs written to standard output');
  return {
    target: {
      audience: config.audience,
      profile: config.profile,
      ...(config.profile_options ? { profileOptions: config.profile_options } : {}),
    },
    async start() {},
    async stop() {},
    async deliver(set) {
      sink.write(formatSet(set, config.format));
      delivered.inc();
      return { detail: 'written to standard output' };
    },
  };
}
