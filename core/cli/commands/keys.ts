import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { formatDuration, parseDuration } from '../../plugin-api/index.ts';
import {
  KeyStore,
  KeyStoreError,
  SIGNING_ALGORITHMS,
  defaultKeysConfig,
  isSigningAlgorithm,
  type KeyInfo,
  type KeysConfig,
  type SigningAlgorithm,
} from '../../ssf/index.ts';
import type { StorageConfig } from '../../storage/config.ts';
import { DEFAULT_SQLITE_FILE } from '../../storage/index.ts';
import { WriterLock } from '../../storage/sqlite/writer-lock.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { cliDataDir, loadBridgeConfig } from '../load-config.ts';

export const DEFAULT_DATA_DIR = './data';

export interface DataDirOption {
  dataDir?: string;
  config?: string;
}

export const DATA_DIR_HELP = `data directory (default: the config's data_dir; quickstart: SSF_BRIDGE_DATA_DIR, else ${DEFAULT_DATA_DIR})`;
export const CONFIG_HELP =
  'the bridge config, for its data_dir and keys settings (default: SSF_BRIDGE_CONFIG, else the quickstart config)';

/**
 * Where the keys are and how they are made: `--config`, else SSF_BRIDGE_CONFIG, else the
 * quickstart's config (whose data_dir honours SSF_BRIDGE_DATA_DIR), gives the data directory and
 * the `keys:` block as `ssf-bridge run` reads them, so the command finds the store the bridge
 * uses. `--data-dir` names another data directory.
 */
export async function keySetup(
  options: DataDirOption,
  io: CliIo,
): Promise<{ dataDir: string; keys: KeysConfig; storage: StorageConfig }> {
  if (options.dataDir !== undefined) cliDataDir(options.dataDir);
  const { root } = await loadBridgeConfig(options.config, io);
  return { dataDir: options.dataDir ?? resolve(root.data_dir), keys: root.keys, storage: root.storage };
}

/**
 * The writer lock of the bridge's SQLite file, held while keys are rotated here; refused while a
 * bridge runs on it: that bridge would go on publishing and signing with the keys it loaded, and
 * its own next rotation would start from them.
 */
function stoppedBridgeLock(storage: StorageConfig, dataDir: string): WriterLock | undefined {
  if (storage.driver !== 'sqlite') return undefined;
  const path = storage.path ?? join(dataDir, DEFAULT_SQLITE_FILE);
  if (path === ':memory:' || !existsSync(path)) return undefined;
  try {
    return WriterLock.acquire(path);
  } catch {
    throw new CliExit(
      EXIT.failure,
      `a bridge is running on ${path}: rotate its keys through it (POST /admin/keys/rotate, or the console's Keys page), so that it publishes and signs with the new key; keys rotate is for a stopped bridge`,
    );
  }
}

function algorithmOption(value: string | undefined): SigningAlgorithm | undefined {
  if (value === undefined) return undefined;
  if (!isSigningAlgorithm(value)) {
    throw new CliExit(EXIT.invalid, `--algorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  }
  return value;
}

function durationOption(flag: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const ms = parseDuration(value);
  if (ms === undefined)
    throw new CliExit(EXIT.invalid, `${flag} "${value}" is not a duration (e.g. 0s, 10m, 24h, 7d)`);
  return ms;
}

/** Key store failures are operational (exit 1); their message says what to do. */
async function withKeyErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof KeyStoreError)
      throw new CliExit(EXIT.failure, `ssf-bridge keys: ${err.message} [${err.code}]`);
    throw err;
  }
}

function formatKeyTable(keys: readonly KeyInfo[]): string {
  const header = ['KID', 'ALG', 'STATUS', 'CREATED', 'SIGNS FROM', 'LEAVES JWKS'];
  const rows = [
    header,
    ...keys.map((k) => [
      k.kid,
      k.alg,
      k.status,
      k.createdAt?.toISOString() ?? '-',
      k.activatesAt?.toISOString() ?? '-',
      k.retiresAt?.toISOString() ?? '-',
    ]),
  ];
  const widths = header.map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, col) => cell.padEnd(widths[col] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function keyJson(k: KeyInfo) {
  return {
    kid: k.kid,
    alg: k.alg,
    status: k.status,
    source: k.source,
    created_at: k.createdAt?.toISOString(),
    activates_at: k.activatesAt?.toISOString(),
    retires_at: k.retiresAt?.toISOString(),
  };
}

/** `ssf-bridge keys list|generate|rotate|jwks`: the signing keys in a data directory. */
export function registerKeys(program: Command, io: CliIo): void {
  const keys = program.command('keys').description('Manage the SET signing keys kept in the data directory');

  keys
    .command('list')
    .description(
      'List signing keys with their status (active, published, retiring, retired), the signing key first',
    )
    .option('--config <file>', CONFIG_HELP)
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--json', 'print JSON')
    .action(async (options: DataDirOption & { json?: boolean }) => {
      const { dataDir, keys: config } = await keySetup(options, io);
      const store = await withKeyErrors(() => KeyStore.open({ dataDir, config, create: false }));
      const list = store.list();
      io.out(options.json ? JSON.stringify(list.map(keyJson), null, 2) : formatKeyTable(list));
    });

  keys
    .command('generate')
    .description('Create the first signing key in the data directory (file mode 0600)')
    .option('--config <file>', CONFIG_HELP)
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--algorithm <alg>', `${SIGNING_ALGORITHMS.join(', ')} (default: keys.algorithm, else RS256)`)
    .option(
      '--rsa-bits <bits>',
      'RSA modulus size for RS256/PS256 (default: keys.rsa_modulus_bits, else 2048)',
    )
    .action(async (options: DataDirOption & { algorithm?: string; rsaBits?: string }) => {
      const algorithm = algorithmOption(options.algorithm);
      const setup = await keySetup(options, io);
      let config;
      try {
        config = defaultKeysConfig({
          algorithm: algorithm ?? setup.keys.algorithm,
          rsa_modulus_bits:
            options.rsaBits === undefined ? setup.keys.rsa_modulus_bits : Number(options.rsaBits),
          rotation_grace_period: setup.keys.rotation_grace_period,
          activation_delay: setup.keys.activation_delay,
        });
      } catch {
        throw new CliExit(
          EXIT.invalid,
          '--rsa-bits must be 2048, 3072, 4096 … (a multiple of 1024, at least 2048)',
        );
      }
      const store = await withKeyErrors(() => KeyStore.generate({ dataDir: setup.dataDir, config }));
      const active = store.list()[0] as KeyInfo;
      io.out(`generated ${active.alg} signing key ${active.kid} in ${store.path}`);
    });

  keys
    .command('rotate')
    .description(
      'Add a new signing key: in the JWKS at once, it signs after the activation delay; the previous one stays in the JWKS for the grace period after that, then retires',
    )
    .option('--config <file>', CONFIG_HELP)
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .option('--algorithm <alg>', 'algorithm of the new key (default: that of the current key)')
    .option(
      '--grace-period <duration>',
      'how long the replaced key stays in the JWKS once the new one signs (default: keys.rotation_grace_period, else 7d)',
    )
    .option(
      '--activation-delay <duration>',
      'how long the new key is only published before it signs; 0s signs with it at once (default: keys.activation_delay, else 10m)',
    )
    .action(
      async (
        options: DataDirOption & { algorithm?: string; gracePeriod?: string; activationDelay?: string },
      ) => {
        const algorithm = algorithmOption(options.algorithm);
        const gracePeriodMs = durationOption('--grace-period', options.gracePeriod);
        const activationDelayMs = durationOption('--activation-delay', options.activationDelay);
        const { dataDir, keys: config, storage } = await keySetup(options, io);
        const store = await withKeyErrors(() => KeyStore.open({ dataDir, config, create: false }));
        const previous = store.schedule().active;
        const lock = stoppedBridgeLock(storage, dataDir);
        // Without the flags, the store applies keys.rotation_grace_period and keys.activation_delay.
        const next = await withKeyErrors(() =>
          store.rotate({
            ...(gracePeriodMs === undefined ? {} : { gracePeriodMs }),
            ...(activationDelayMs === undefined ? {} : { activationDelayMs }),
            ...(algorithm ? { algorithm } : {}),
          }),
        ).finally(() => lock?.release());
        const replaced = store.list().find((k) => k.kid === previous.kid);
        const leaves = replaced?.retiresAt?.toISOString() ?? '-';
        if (next.status === 'active') {
          io.out(`new signing key ${next.kid} (${next.alg}) signs from now`);
          io.out(
            replaced
              ? `previous key ${previous.kid} stays in the JWKS until ${leaves}`
              : `previous key ${previous.kid} is retired now (grace period 0)`,
          );
        } else {
          const delay = (next.activatesAt?.getTime() ?? 0) - (next.createdAt?.getTime() ?? 0);
          io.out(
            `new signing key ${next.kid} (${next.alg}) is in the JWKS now and signs from ${next.activatesAt?.toISOString() ?? '-'} (activation delay ${formatDuration(delay)})`,
          );
          io.out(`previous key ${previous.kid} signs until then and stays in the JWKS until ${leaves}`);
        }
      },
    );

  keys
    .command('jwks')
    .description('Print the public JWKS (kid, alg, use=sig; no private material)')
    .option('--config <file>', CONFIG_HELP)
    .option('--data-dir <dir>', DATA_DIR_HELP)
    .action(async (options: DataDirOption) => {
      const { dataDir, keys: config } = await keySetup(options, io);
      const store = await withKeyErrors(() => KeyStore.open({ dataDir, config, create: false }));
      io.out(JSON.stringify(store.jwks(), null, 2));
    });
}
