/**
 * Where CLI commands write. Commands never touch process.stdout directly, so tests run them
 * in-process and read what they printed.
 */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** Reads all of standard input (for `-` arguments). */
  readStdin(): Promise<string>;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
  err: (text) => process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  },
};

/** Documented exit codes of `ssf-bridge` (docs/cli.md). */
export const EXIT = {
  ok: 0,
  /** The command ran and failed (e.g. a receiver refused, startup failed). */
  failure: 1,
  /** Invalid input: bad arguments, an invalid config, a rejected SET or payload. */
  invalid: 2,
} as const;

/** Thrown by a command to end with a message and an exit code. */
export class CliExit extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
  }
}
