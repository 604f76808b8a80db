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

/** Help of --legacy-subject, shared by decode and verify. */
export const LEGACY_SUBJECT_HELP =
  'accept a SET without sub_id whose event names its subject inside, as pre-SSF 1.0 transmitters and the legacy-sse-caep and okta-itp (top_level_sub_id false) profiles send it';

/** Said when a SET is refused only for having no sub_id, while --legacy-subject was not given. */
export const LEGACY_SUBJECT_NOTE =
  'note: a SET naming its subject inside the event (pre-SSF 1.0 shape) is accepted with --legacy-subject';

/** True when the finding is the refusal --legacy-subject lifts: no sub_id at all. */
export function missingSubId(finding: Pick<Finding, 'code' | 'description'>): boolean {
  return finding.code === 'SSF_ERR_SET_SUB_ID' && finding.description.startsWith('sub_id is required');
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
    .option('--legacy-subject', LEGACY_SUBJECT_HELP)
    .action(async (argument: string | undefined, options: { json?: boolean; legacySubject?: boolean }) => {
      const inspection = inspectSet(await readSetArgument(argument, io), {
        ...(options.legacySubject ? { legacySubject: true } : {}),
      });
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
          if (inspection.findings.some(missingSubId)) io.out(LEGACY_SUBJECT_NOTE);
        }
      }
      if (errors.length > 0) throw new CliExit(EXIT.invalid, '');
    });
}
