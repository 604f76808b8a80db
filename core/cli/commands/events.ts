import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { isBridgeError, parseDuration } from '../../plugin-api/index.ts';
import {
  KeyStore,
  KeyStoreError,
  PROFILE_NAMES,
  SET_CONTENT_TYPE,
  SetCodec,
  keyFilePath,
  listEventTypes,
  type MintedSet,
  type SubjectIdentifier,
} from '../../ssf/index.ts';
import { hideCredential } from '../../http/redact.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { cliDataDir } from '../load-config.ts';
import { CONFIG_HELP, DATA_DIR_HELP, keySetup, type DataDirOption } from './keys.ts';

/** Issuer of SETs made on the command line unless --iss names the one the receiver registered. */
export const CLI_DEFAULT_ISSUER = 'urn:ssf-bridge:cli';

interface SignOptions extends DataDirOption {
  type: string;
  subject: string;
  claims?: string;
  aud?: string[];
  profile?: string;
  profileOptions?: string;
  iss: string;
  jti?: string;
  txn?: string;
  occurredAt?: string;
}

interface SendOptions extends SignOptions {
  to: string;
  auth?: string;
  timeout: string;
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

function parseJsonOption(name: string, text: string | undefined): unknown {
  if (text === undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new CliExit(EXIT.invalid, `--${name} is not valid JSON: ${(err as Error).message}`);
  }
}

function withSignOptions(command: Command): Command {
  return command
    .requiredOption('--type <type>', 'event type: short name (caep.session-revoked) or URI')
    .requiredOption('--subject <json>', 'subject identifier, e.g. {"format":"email","email":"a@example.com"}')
    .option('--claims <json>', 'event claims, e.g. {"reason_admin":{"en":"…"}}')
    .option('--aud <url>', 'SET audience (repeat for several)', collect)
    .option('--profile <name>', `target profile: ${PROFILE_NAMES.join(', ')}`)
    .option('--profile-options <json>', 'options of the profile, e.g. {"top_level_sub_id":false}')
    .option('--iss <url>', 'SET issuer, as registered with the receiver', CLI_DEFAULT_ISSUER)
    .option('--config <file>', CONFIG_HELP)
    .option('--data-dir <dir>', DATA_DIR_HELP, cliDataDir)
    .option('--jti <id>', 'SET jti (default: a random UUID)')
    .option('--txn <id>', 'SET txn (default: derived from the jti)')
    .option('--occurred-at <time>', 'when the event happened (ISO 8601; default now)');
}

/**
 * Opens the key store the bridge signs with (found as `ssf-bridge keys` finds it), creating its
 * first key, by the config's `keys:` settings, when the data directory has none.
 */
async function openKeys(options: DataDirOption, io: CliIo): Promise<KeyStore> {
  const { dataDir, keys: config } = await keySetup(options, io);
  try {
    return await KeyStore.open({ dataDir, config, create: false });
  } catch (err) {
    if (!(err instanceof KeyStoreError && err.code === 'SSF_ERR_KEYS_MISSING')) throw err;
  }
  const store = await KeyStore.generate({ dataDir, config });
  io.err(`generated a signing key in ${keyFilePath(dataDir)} (kid ${store.list()[0]?.kid ?? '?'})`);
  return store;
}

/** Invalid input (event, subject, profile refusal) exits 2; key problems exit 1. */
function toCliExit(err: unknown): never {
  if (err instanceof CliExit) throw err;
  if (err instanceof KeyStoreError) throw new CliExit(EXIT.failure, `${err.message} [${err.code}]`);
  if (isBridgeError(err)) throw new CliExit(EXIT.invalid, `${err.message} [${err.code}]`);
  throw err;
}

async function mintFromOptions(options: SignOptions, io: CliIo): Promise<MintedSet> {
  try {
    const subject = parseJsonOption('subject', options.subject);
    const claims = parseJsonOption('claims', options.claims);
    const profileOptions = parseJsonOption('profile-options', options.profileOptions);
    // Checked before the key is opened: a command refused for its arguments writes no key.
    if (!options.aud || options.aud.length === 0) {
      throw new CliExit(EXIT.invalid, 'a SET needs an audience: give --aud <receiver> (the aud claim)');
    }
    if (options.jti !== undefined && options.jti.trim() === '') {
      throw new CliExit(EXIT.invalid, '--jti must not be empty (leave it out for a random UUID)');
    }
    const store = await openKeys(options, io);
    const codec = new SetCodec({ issuer: options.iss, keys: store });
    const jti = options.jti ?? randomUUID();
    const audience = options.aud && options.aud.length === 1 ? options.aud[0] : options.aud;
    return await codec.mint({
      event: {
        type: options.type,
        subject: subject as SubjectIdentifier,
        claims: claims as Record<string, unknown> | undefined,
        sourceRecordId: jti,
        ...(options.txn ? { txn: options.txn } : {}),
        ...(options.occurredAt ? { occurredAt: options.occurredAt } : {}),
      },
      sourceInstanceId: 'cli',
      destination: {
        id: 'cli',
        ...(audience ? { audience } : {}),
        ...(options.profile ? { profile: options.profile } : {}),
        ...(profileOptions !== undefined ? { profileOptions } : {}),
      },
      jti,
    });
  } catch (err) {
    return toCliExit(err);
  }
}

function describeAnswer(status: number, statusText: string, body: string): string[] {
  const lines = [`HTTP ${status}${statusText ? ` ${statusText}` : ''}`];
  if (body.length === 0) return lines;
  try {
    const parsed = JSON.parse(body) as { err?: unknown; description?: unknown };
    if (typeof parsed.err === 'string') {
      lines.push(
        `refused: ${parsed.err}${typeof parsed.description === 'string' ? ` — ${parsed.description}` : ''}`,
      );
      return lines;
    }
    lines.push(JSON.stringify(parsed, null, 2));
  } catch {
    lines.push(body);
  }
  return lines;
}

/** The longest --timeout: a day (timers take at most about 24.8 days). */
const MAX_SEND_TIMEOUT_MS = 86_400_000;

/** --to and --timeout of `events send`, checked before anything is signed. */
function sendTarget(options: SendOptions): { timeoutMs: number } {
  let url: URL;
  try {
    url = new URL(options.to);
  } catch {
    throw new CliExit(
      EXIT.invalid,
      `--to "${options.to}" is not a URL (e.g. https://receiver.example/events)`,
    );
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new CliExit(EXIT.invalid, `--to must be an http or https URL (got ${url.protocol})`);
  }
  const timeoutMs = parseDuration(options.timeout);
  if (timeoutMs === undefined || timeoutMs <= 0 || timeoutMs > MAX_SEND_TIMEOUT_MS) {
    throw new CliExit(
      EXIT.invalid,
      `--timeout "${options.timeout}" is not a positive duration of at most a day (e.g. 10s)`,
    );
  }
  return { timeoutMs };
}

/** RFC 8935 §2.1 push: POST the SET alone, as application/secevent+jwt, expecting 202. */
async function push(set: MintedSet, options: SendOptions, timeoutMs: number, io: CliIo): Promise<void> {
  let response: Response;
  try {
    response = await fetch(options.to, {
      method: 'POST',
      headers: {
        'content-type': SET_CONTENT_TYPE,
        accept: 'application/json',
        ...(options.auth ? { authorization: options.auth } : {}),
      },
      body: set.jwt,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
  } catch (err) {
    const reason =
      (err as Error).name === 'TimeoutError' ? `no answer within ${options.timeout}` : (err as Error).message;
    throw new CliExit(EXIT.failure, `could not deliver SET ${set.jti} to ${options.to}: ${reason}`);
  }
  // Printed without --auth in it, should the receiver echo the request's credential.
  const body = hideCredential((await response.text()).trim(), options.auth);
  io.out(`sent SET ${set.jti} to ${options.to}`);
  for (const line of describeAnswer(response.status, response.statusText, body)) io.out(line);
  if (!response.ok) throw new CliExit(EXIT.failure, '');
}

/** `ssf-bridge events list|sign|send`: the event catalog and SETs made by hand. */
export function registerEvents(program: Command, io: CliIo): void {
  const events = program.command('events').description('Event types, and SETs signed or sent by hand');

  events
    .command('list')
    .description('List every event type the catalog knows')
    .option('--json', 'print JSON')
    .action((options: { json?: boolean }) => {
      const types = listEventTypes();
      if (options.json) {
        io.out(
          JSON.stringify(
            types.map((t) => ({
              short_name: t.shortName,
              uri: t.uri,
              spec: t.spec,
              description: t.description,
              ...(t.deprecated ? { deprecated: t.deprecated } : {}),
            })),
            null,
            2,
          ),
        );
        return;
      }
      const width = Math.max(...types.map((t) => t.shortName.length));
      for (const t of types) {
        io.out(`${t.shortName.padEnd(width)}  ${t.uri}${t.deprecated ? '  (deprecated)' : ''}`);
      }
    });

  withSignOptions(events.command('sign'))
    .description('Build and sign a SET and print it (compact JWS)')
    .action(async (options: SignOptions) => {
      const set = await mintFromOptions(options, io);
      io.out(set.jwt);
    });

  withSignOptions(events.command('send'))
    .description('Build, sign and push a SET to a receiver (RFC 8935) and print its answer')
    .requiredOption('--to <url>', 'the receiver push endpoint')
    .option('--auth <header>', 'Authorization header value, sent verbatim (e.g. "Bearer …")')
    .option('--timeout <duration>', 'how long to wait for the receiver', '30s')
    .action(async (options: SendOptions) => {
      const { timeoutMs } = sendTarget(options);
      const set = await mintFromOptions(options, io);
      await push(set, options, timeoutMs, io);
    });
}
