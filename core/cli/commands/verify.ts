import type { Command } from 'commander';
import { isBridgeError, parseDuration } from '../../plugin-api/index.ts';
import {
  SetVerificationError,
  VERIFICATION_ALGORITHMS,
  findEventType,
  isVerificationAlgorithm,
  jwksFromFile,
  remoteJwks,
  verifySet,
  type SetKeySource,
  type VerificationAlgorithm,
} from '../../ssf/index.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import {
  LEGACY_SUBJECT_HELP,
  LEGACY_SUBJECT_NOTE,
  formatFinding,
  missingSubId,
  readSetArgument,
} from './decode.ts';

interface VerifyOptions {
  jwks: string;
  aud?: string[];
  iss?: string[];
  maxAge?: string;
  alg?: string;
  legacySubject?: boolean;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function keySource(location: string): Promise<SetKeySource> | SetKeySource {
  return /^https?:\/\//i.test(location) ? remoteJwks(location) : jwksFromFile(location);
}

function algorithms(list: string | undefined): VerificationAlgorithm[] | undefined {
  if (list === undefined) return undefined;
  const values = list.split(',').map((a) => a.trim());
  const wrong = values.filter((a) => !isVerificationAlgorithm(a));
  if (wrong.length > 0) {
    throw new CliExit(
      EXIT.invalid,
      `--alg accepts ${VERIFICATION_ALGORITHMS.join(', ')}; not ${wrong.join(', ')}`,
    );
  }
  return values as VerificationAlgorithm[];
}

/**
 * `ssf-bridge verify --jwks URL|FILE [--aud A] [--iss I] [--legacy-subject] [SET|-]`: verifies a SET as a receiver
 * would. A refusal exits 2 and prints the RFC 8935 error code with its description.
 */
export function registerVerify(program: Command, io: CliIo): void {
  program
    .command('verify')
    .description('Verify a SET (signature, typ, iss, aud, claims, event schema) against a JWKS')
    .argument('[set]', 'compact SET, or - to read standard input')
    .requiredOption('--jwks <url|file>', "the transmitter's JWKS: an https URL or a JSON file")
    .option('--aud <audience>', 'expected audience (repeat for several); not checked when absent', collect)
    .option('--iss <issuer>', 'expected issuer (repeat for several); not checked when absent', collect)
    .option('--max-age <duration>', 'refuse SETs issued longer ago than this, e.g. 5m')
    .option('--alg <list>', 'accepted algorithms, comma-separated (default RS256,ES256,PS256,EdDSA)')
    .option('--legacy-subject', LEGACY_SUBJECT_HELP)
    .action(async (argument: string | undefined, options: VerifyOptions) => {
      const token = await readSetArgument(argument, io);
      const maxAgeMs = options.maxAge === undefined ? undefined : parseDuration(options.maxAge);
      if (options.maxAge !== undefined && maxAgeMs === undefined) {
        throw new CliExit(EXIT.invalid, `--max-age "${options.maxAge}" is not a duration (e.g. 30s, 5m)`);
      }
      const accepted = algorithms(options.alg);
      try {
        const verified = await verifySet(token, {
          keys: await keySource(options.jwks),
          issuer: options.iss ?? null,
          audience: options.aud ?? null,
          ...(maxAgeMs !== undefined ? { maxAgeMs } : {}),
          ...(accepted ? { algorithms: accepted } : {}),
          ...(options.legacySubject ? { legacySubject: true } : {}),
        });
        const type = findEventType(verified.eventType)?.shortName ?? verified.eventType;
        io.out(`valid: ${type} (jti ${verified.jti}) signed with key ${verified.header.kid ?? '(no kid)'}`);
        if (!options.iss) io.out('note: iss was not checked (give --iss)');
        if (!options.aud) io.out('note: aud was not checked (give --aud)');
        for (const finding of verified.warnings) io.out(formatFinding(finding));
        io.out(JSON.stringify(verified.claims, null, 2));
      } catch (err) {
        if (err instanceof SetVerificationError) {
          const note = !options.legacySubject && missingSubId(err) ? `\n${LEGACY_SUBJECT_NOTE}` : '';
          throw new CliExit(EXIT.invalid, `${err.err}: ${err.description} [${err.code}]${note}`);
        }
        if (isBridgeError(err))
          throw new CliExit(EXIT.failure, `ssf-bridge verify: ${err.message} [${err.code}]`);
        throw err;
      }
    });
}
