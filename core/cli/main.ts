import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { CliExit, EXIT, processIo, type CliIo } from './io.ts';
import { registrars } from './commands/index.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

export function buildProgram(io: CliIo): Command {
  const program = new Command('ssf-bridge')
    .description('Turns security, HR and device signals into OpenID Shared Signals and delivers them.')
    .version(pkg.version, '-v, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) })
    .showHelpAfterError();
  for (const register of registrars) register(program, io);
  return program;
}

/** Runs the CLI and resolves to the exit code. */
export async function main(argv: string[], io: CliIo = processIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof CliExit) {
      if (err.message) io.err(err.message);
      return err.exitCode;
    }
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors already printed their message.
      return err.exitCode === 0 ? EXIT.ok : EXIT.invalid;
    }
    io.err(`ssf-bridge: ${err instanceof Error ? err.message : String(err)}`);
    return EXIT.failure;
  }
}
