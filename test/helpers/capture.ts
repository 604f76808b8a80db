import { Writable } from 'node:stream';
import { createLogger, type LogLevel } from '../../core/telemetry/logger.ts';
import type { CliIo } from '../../core/cli/io.ts';

/** A logger whose JSON lines are kept in memory. */
export function capturingLogger(level: LogLevel = 'trace') {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, done) {
      lines.push(...String(chunk).split('\n').filter(Boolean));
      done();
    },
  });
  const logger = createLogger({
    level,
    destination: destination as unknown as NodeJS.WritableStream & { write(s: string): boolean },
  });
  return {
    logger,
    lines,
    text: () => lines.join('\n'),
    records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

/** A CLI io that keeps what a command printed. */
export function capturingIo(stdin = ''): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (text) => stdout.push(text),
    err: (text) => stderr.push(text),
    readStdin: async () => stdin,
  };
}
