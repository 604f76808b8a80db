import type { Command } from 'commander';
import { parseDuration } from '../../plugin-api/index.ts';
import {
  KeyStore,
  KeyStoreError,
  SIGNING_ALGORITHMS,
  defaultKeysConfig,
  isSigningAlgorithm,
  type KeyInfo,
  type SigningAlgorithm,
} from '../../ssf/index.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';

export const DEFAULT_DATA_DIR = './data';

interface DataDirOption {
  dataDir: string;
}

function algorithmOption(value: string | undefined): SigningAlgorithm | undefined {
  if (value === undefined) return undefined;
  if (!isSigningAlgorithm(value)) {
    throw new CliExit(EXIT.invalid, `--algorithm must be one of ${SIGNING_ALGORITHMS.join(', ')}`);
  }
  return value;
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
  const header = ['KID', 'ALG', 'STATUS', 'CREATED', 'LEAVES JWKS'];
  const rows = [
    header,
    ...keys.map((k) => [
      k.kid,
      k.alg,
      k.status,
      k.createdAt?.toISOString() ?? '-',
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
    retires_at: k.retiresAt?.toISOString(),
  };
}

/** `ssf-bridge keys list|generate|rotate|jwks`: the signing keys in a data directory. */
export function registerKeys(program: Command, io: CliIo): void {
  const keys = program.command('keys').description('Manage the SET signing keys kept in the data directory');

  keys
    .command('list')
    .description('List signing keys with their status (active, retiring, retired)')
    .option('--data-dir <dir>', 'data directory', DEFAULT_DATA_DIR)
    .option('--json', 'print JSON')
    .action(async (options: DataDirOption & { json?: boolean }) => {
      const store = await withKeyErrors(() => KeyStore.open({ dataDir: options.dataDir, create: false }));
      const list = store.list();
      io.out(options.json ? JSON.stringify(list.map(keyJson), null, 2) : formatKeyTable(list));
    });

  keys
    .command('generate')
    .description('Create the first signing key in the data directory (file mode 0600)')
    .option('--data-dir <dir>', 'data directory', DEFAULT_DATA_DIR)
    .option('--algorithm <alg>', `${SIGNING_ALGORITHMS.join(', ')}`, 'RS256')
    .option('--rsa-bits <bits>', 'RSA modulus size for RS256/PS256', '2048')
    .action(async (options: DataDirOption & { algorithm: string; rsaBits: string }) => {
      const algorithm = algorithmOption(options.algorithm);
      const bits = Number(options.rsaBits);
      let config;
      try {
        config = defaultKeysConfig({ ...(algorithm ? { algorithm } : {}), rsa_modulus_bits: bits });
      } catch {
        throw new CliExit(
          EXIT.invalid,
          '--rsa-bits must be 2048, 3072, 4096 … (a multiple of 1024, at least 2048)',
        );
      }
      const store = await withKeyErrors(() => KeyStore.generate({ dataDir: options.dataDir, config }));
      const active = store.list()[0] as KeyInfo;
      io.out(`generated ${active.alg} signing key ${active.kid} in ${store.path}`);
    });

  keys
    .command('rotate')
    .description(
      'Add a new signing key; the previous one stays in the JWKS for the grace period, then retires',
    )
    .option('--data-dir <dir>', 'data directory', DEFAULT_DATA_DIR)
    .option('--algorithm <alg>', 'algorithm of the new key (default: that of the current key)')
    .option('--grace-period <duration>', 'how long the replaced key stays in the JWKS', '7d')
    .action(async (options: DataDirOption & { algorithm?: string; gracePeriod: string }) => {
      const algorithm = algorithmOption(options.algorithm);
      const gracePeriodMs = parseDuration(options.gracePeriod);
      if (gracePeriodMs === undefined) {
        throw new CliExit(
          EXIT.invalid,
          `--grace-period "${options.gracePeriod}" is not a duration (e.g. 24h, 7d)`,
        );
      }
      const store = await withKeyErrors(() => KeyStore.open({ dataDir: options.dataDir, create: false }));
      const previous = store.list()[0] as KeyInfo;
      const next = await withKeyErrors(() =>
        store.rotate({ gracePeriodMs, ...(algorithm ? { algorithm } : {}) }),
      );
      const replaced = store.list().find((k) => k.kid === previous.kid);
      io.out(`new signing key ${next.kid} (${next.alg})`);
      io.out(
        replaced
          ? `previous key ${previous.kid} stays in the JWKS until ${replaced.retiresAt?.toISOString() ?? '-'}`
          : `previous key ${previous.kid} is retired now (grace period 0)`,
      );
    });

  keys
    .command('jwks')
    .description('Print the public JWKS (kid, alg, use=sig; no private material)')
    .option('--data-dir <dir>', 'data directory', DEFAULT_DATA_DIR)
    .action(async (options: DataDirOption) => {
      const store = await withKeyErrors(() => KeyStore.open({ dataDir: options.dataDir, create: false }));
      io.out(JSON.stringify(store.jwks(), null, 2));
    });
}
