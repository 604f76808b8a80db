import type { Command } from 'commander';
import { inspectSet, type Finding } from '../../ssf/index.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';

/** The SET given as an argument, or read from standard input when the argument is `-` or absent. */
export async function readSetArgument(argument: string | undefined, io: CliIo): Promise<string> {
  const text = argument === undefined || argument === '-' ? await io.readStdin() : argument;
  const token = text.trim();
  if (token.length === 0)
    throw new CliExit(EXIT.invalid, 'no SET given (pass it as an argument or on standard input)');
  return token;
}

export function formatFinding(finding: Finding): string {
  const label = finding.severity === 'error' ? `error ${finding.err}` : 'warning';
  return `  - ${label}: ${finding.description} [${finding.code}]`;
}

/** `ssf-bridge decode [SET|-]`: header and claims, then every problem; exit 2 when any is an error. */
export function registerDecode(program: Command, io: CliIo): void {
  program
    .command('decode')
    .description(
      'Pretty-print a SET (header and claims) and list every problem; the signature is not checked',
    )
    .argument('[set]', 'compact SET, or - to read standard input')
    .option('--json', 'print {header, claims, problems} as JSON')
    .action(async (argument: string | undefined, options: { json?: boolean }) => {
      const inspection = inspectSet(await readSetArgument(argument, io));
      const errors = inspection.findings.filter((f) => f.severity === 'error');
      if (options.json) {
        io.out(
          JSON.stringify(
            { header: inspection.header, claims: inspection.claims, problems: inspection.findings },
            null,
            2,
          ),
        );
      } else {
        if (inspection.header !== undefined) io.out(`Header:\n${JSON.stringify(inspection.header, null, 2)}`);
        if (inspection.claims !== undefined) io.out(`Claims:\n${JSON.stringify(inspection.claims, null, 2)}`);
        if (inspection.findings.length === 0) {
          io.out('No problems found. The signature was not checked: use ssf-bridge verify --jwks for that.');
        } else {
          io.out(`Problems (${inspection.findings.length}):`);
          for (const finding of inspection.findings) io.out(formatFinding(finding));
        }
      }
      if (errors.length > 0) throw new CliExit(EXIT.invalid, '');
    });
}
