import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { createHttpClientFactory } from '../../http/client.ts';
import { hideCredential } from '../../http/redact.ts';
import {
  isBridgeError,
  PermanentError,
  Secret,
  type HttpAuth,
  type HttpClient,
} from '../../plugin-api/index.ts';
import { scrubSecrets } from '../../plugin-api/secret.ts';
import { silentLogger } from '../../telemetry/logger.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';

const PROVIDERS = '/api/v1/security-events-providers';
const READ_SCOPE = 'okta.securityEventsProviders.read';
const MANAGE_SCOPE = 'okta.securityEventsProviders.manage';

interface AuthOptions {
  org: string;
  token?: string;
  clientId?: string;
  privateKey?: string;
  keyId?: string;
  json?: boolean;
}

interface RegisterOptions extends AuthOptions {
  name: string;
  type: string;
  wellKnownUrl?: string;
  issuer?: string;
  jwksUrl?: string;
}

/** An Okta Security Events Provider as the API returns it. */
interface Provider {
  id: string;
  name?: string;
  type?: string;
  status?: string;
  settings?: { issuer?: string; jwks_url?: string; well_known_url?: string };
}

/** Hosts reached over plain http: the admin credential then never leaves the machine (tests, tunnels). */
const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

function orgUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new CliExit(
      EXIT.invalid,
      `--org "${value}" is not a URL; give your Okta org, e.g. https://example.okta.com`,
    );
  }
  const loopback = url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
  // The commands send an admin API token or access token: never in clear over a network.
  if (url.protocol !== 'https:' && !loopback) {
    throw new CliExit(
      EXIT.invalid,
      `--org must be an https URL (http only on loopback), e.g. https://example.okta.com; got ${url.origin}`,
    );
  }
  return url.origin;
}

/**
 * An SSWS API token (`--token`, or OKTA_API_TOKEN), or an API Services app that signs its
 * client assertions (`--client-id` with `--private-key`): Okta issues okta.* scopes only to
 * apps using private_key_jwt.
 */
async function authFor(options: AuthOptions, scope: string): Promise<HttpAuth> {
  const token = options.token ?? process.env.OKTA_API_TOKEN;
  const oauth = options.clientId !== undefined || options.privateKey !== undefined;
  if (token && oauth) {
    throw new CliExit(
      EXIT.invalid,
      'give either an API token (--token) or an OAuth app (--client-id, --private-key), not both',
    );
  }
  if (token)
    return { type: 'header', name: 'Authorization', value: new Secret(`SSWS ${new Secret(token).reveal()}`) };
  if (!options.clientId || !options.privateKey) {
    throw new CliExit(
      EXIT.invalid,
      'authenticate with --token (or OKTA_API_TOKEN), or with --client-id and --private-key <file> of an API Services app',
    );
  }
  let key: string;
  try {
    key = await readFile(options.privateKey, 'utf8');
  } catch (err) {
    throw new CliExit(
      EXIT.invalid,
      `cannot read --private-key ${options.privateKey}: ${(err as Error).message}`,
    );
  }
  return {
    type: 'oauth2_private_key_jwt',
    tokenUrl: `${orgUrl(options.org)}/oauth2/v1/token`,
    clientId: options.clientId,
    privateKey: new Secret(key),
    scope,
    ...(options.keyId ? { keyId: options.keyId } : {}),
  };
}

/** A client for the org, and how to print what came back without the credential sent. */
interface OktaSession {
  client: HttpClient;
  hide(text: string): string;
}

/**
 * `text` fit to print: the Authorization value sent (an SSWS token) cut out should Okta quote it,
 * and every registered secret (also the OAuth access tokens the client fetched) scrubbed.
 */
function hiding(auth: HttpAuth): (text: string) => string {
  const authorization = auth.type === 'header' ? auth.value.reveal() : undefined;
  return (text) => scrubSecrets(hideCredential(text, authorization));
}

/** Runs `work` with a client for the org; API failures end the command with Okta's message. */
async function withOkta<T>(
  options: AuthOptions,
  scope: string,
  work: (okta: OktaSession) => Promise<T>,
): Promise<T> {
  const baseURL = orgUrl(options.org);
  const auth = await authFor(options, scope);
  const hide = hiding(auth);
  const stop = new AbortController();
  const factory = createHttpClientFactory({
    logger: silentLogger(),
    signal: stop.signal,
    onAuthFailure: () => {},
  });
  try {
    const client = factory.create({ baseURL, timeoutMs: 30_000, auth });
    return await work({ client, hide });
  } catch (err) {
    if (err instanceof CliExit) throw err;
    if (!isBridgeError(err)) throw err;
    const hint =
      err instanceof PermanentError && err.authFailure
        ? `; the credentials need the ${scope} scope (or an admin API token)`
        : '';
    throw new CliExit(EXIT.failure, `ssf-bridge okta: ${hide(err.message)}${hint}`);
  } finally {
    stop.abort();
  }
}

interface OktaError {
  errorCode?: string;
  errorSummary?: string;
  errorCauses?: Array<{ errorSummary?: string }>;
}

/** Okta's 4xx answers name the problem in errorSummary and errorCauses; show all of it. */
async function call<T>(okta: OktaSession, method: 'GET' | 'POST', url: string, body?: unknown): Promise<T> {
  const res = await okta.client.request<T & OktaError>({
    method,
    url,
    body,
    acceptStatuses: [400, 404, 405],
  });
  if (res.status < 300) return res.data;
  const error = (res.data ?? {}) as OktaError;
  const causes = (error.errorCauses ?? []).map((c) => c.errorSummary).filter(Boolean);
  const said =
    `Okta answered ${res.status} ${error.errorCode ?? ''} ${error.errorSummary ?? ''}`.trim() +
    (causes.length ? ` (${causes.join('; ')})` : '');
  throw new CliExit(EXIT.failure, `ssf-bridge okta: ${okta.hide(said)}`);
}

function describeProvider(p: Provider): string {
  const settings = p.settings ?? {};
  return `${p.id} (${p.status ?? '?'}): issuer ${settings.issuer ?? '-'}, jwks_url ${settings.jwks_url ?? '-'}`;
}

function table(providers: Provider[]): string {
  const header = ['ID', 'NAME', 'STATUS', 'ISSUER', 'JWKS URL'];
  const rows = [
    header,
    ...providers.map((p) => [
      p.id,
      p.name ?? '',
      p.status ?? '',
      p.settings?.issuer ?? '',
      p.settings?.jwks_url ?? '',
    ]),
  ];
  const widths = header.map((_, i) => Math.max(...rows.map((r) => (r[i] as string).length)));
  return rows
    .map((r) =>
      r
        .map((cell, i) => cell.padEnd(widths[i] as number))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Registration settings: the SSF well-known URL, or issuer and JWKS URL. */
function settingsOf(options: RegisterOptions): Provider['settings'] {
  if (options.wellKnownUrl && (options.issuer || options.jwksUrl)) {
    throw new CliExit(EXIT.invalid, 'give either --well-known-url or --issuer with --jwks-url, not both');
  }
  if (options.wellKnownUrl) return { well_known_url: options.wellKnownUrl };
  if (options.issuer && options.jwksUrl) return { issuer: options.issuer, jwks_url: options.jwksUrl };
  throw new CliExit(
    EXIT.invalid,
    'say where Okta finds ssf-bridge: --well-known-url <issuer>/.well-known/ssf-configuration, or --issuer and --jwks-url',
  );
}

function authOptions(command: Command): Command {
  return command
    .requiredOption('--org <url>', 'your Okta org, e.g. https://example.okta.com')
    .option('--token <token>', 'an Okta API token (SSWS); defaults to $OKTA_API_TOKEN')
    .option('--client-id <id>', 'client id of an API Services app using a public/private key pair')
    .option('--private-key <file>', "that app's private key (PKCS#8 PEM or JWK)")
    .option('--key-id <kid>', 'key id of that key in Okta')
    .option('--json', 'print what Okta returned as JSON');
}

/**
 * `ssf-bridge okta register-provider` and `okta providers list|activate|deactivate`: registers
 * ssf-bridge with Okta Identity Threat Protection as a Security Events Provider, so Okta accepts
 * the SETs the okta-itp connector pushes.
 */
export function registerOkta(program: Command, io: CliIo): void {
  const okta = program
    .command('okta')
    .description('Register and manage ssf-bridge as an Okta Security Events Provider');

  authOptions(
    okta
      .command('register-provider')
      .description(
        'Register ssf-bridge as a Security Events Provider of an Okta org (Identity Threat Protection)',
      )
      .option(
        '--well-known-url <url>',
        "ssf-bridge's SSF configuration, <issuer>/.well-known/ssf-configuration",
      )
      .option('--issuer <issuer>', 'the issuer of the SETs (the bridge issuer), with --jwks-url')
      .option('--jwks-url <url>', "where Okta fetches ssf-bridge's signing keys, with --issuer")
      .option('--name <name>', 'name shown in the Okta Admin Console', 'ssf-bridge')
      .option('--type <type>', 'provider type', 'okta'),
  ).action(async (options: RegisterOptions) => {
    const settings = settingsOf(options);
    if (options.name.length > 100) throw new CliExit(EXIT.invalid, '--name is at most 100 characters');
    const created = await withOkta(options, MANAGE_SCOPE, async (session) => {
      return call<Provider>(session, 'POST', PROVIDERS, { name: options.name, type: options.type, settings });
    });
    io.out(
      options.json
        ? JSON.stringify(created, null, 2)
        : `registered security events provider ${describeProvider(created)}`,
    );
  });

  const providers = okta
    .command('providers')
    .description('List, activate or deactivate Security Events Providers');

  authOptions(providers.command('list').description("List the org's Security Events Providers")).action(
    async (options: AuthOptions) => {
      const list = await withOkta(options, READ_SCOPE, (session) =>
        call<Provider[]>(session, 'GET', PROVIDERS),
      );
      if (options.json) io.out(JSON.stringify(list, null, 2));
      else io.out(list.length === 0 ? 'no security events providers' : table(list));
    },
  );

  for (const action of ['activate', 'deactivate'] as const) {
    authOptions(
      providers
        .command(action)
        .description(`${action === 'activate' ? 'Activate' : 'Deactivate'} a Security Events Provider`)
        .argument('<id>', 'provider id (sse…)'),
    ).action(async (id: string, options: AuthOptions) => {
      const updated = await withOkta(options, MANAGE_SCOPE, (session) =>
        call<Provider>(session, 'POST', `${PROVIDERS}/${encodeURIComponent(id)}/lifecycle/${action}`),
      );
      io.out(options.json ? JSON.stringify(updated, null, 2) : `provider ${describeProvider(updated)}`);
    });
  }
}
