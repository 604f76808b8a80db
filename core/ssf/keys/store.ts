/**
 * The signing key store. Keys live either in the data directory (generated on first run,
 * rotated by `ssf-bridge keys rotate`) or in files and secrets named by the `keys:` config.
 * Several keys can be live at once: the active one signs; a replaced one stays in the JWKS
 * until its grace period ends, then it is retired and no longer verifies anything.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import type { Clock } from '../../plugin-api/index.ts';
import type { SigningAlgorithm } from '../algorithms.ts';
import { SIGNING_ALGORITHMS } from '../algorithms.ts';
import { KeyStoreError } from '../errors.ts';
import { dynamicJwks, type SetKeySource } from '../set/jwks.ts';
import { SET_TYP } from '../set/types.ts';
import { defaultKeysConfig, type KeysConfig } from './config.ts';
import {
  createSigner,
  generateKeyMaterial,
  keyMaterialFromText,
  publicJwkOf,
  type KeyMaterial,
  type PublicJwk,
  type SignFunction,
} from './material.ts';

/** `active` signs; `published` and `retiring` stay in the JWKS; `retired` verifies nothing. */
export type KeyStatus = 'active' | 'published' | 'retiring' | 'retired';

export interface KeyInfo {
  kid: string;
  alg: SigningAlgorithm;
  status: KeyStatus;
  /** Where the key comes from: `data-dir`, `file:<path>` or `secret #<n>`. */
  source: string;
  createdAt?: Date;
  /** When a replaced key leaves the JWKS. */
  retiresAt?: Date;
}

/** The key the codec signs with. */
export interface SigningKey {
  kid: string;
  alg: SigningAlgorithm;
  /** base64url of the SET protected header {alg, kid, typ: secevent+jwt}, encoded once. */
  protectedHeader: string;
  sign: SignFunction;
}

export interface KeyStoreOptions {
  /** Directory for generated keys; `keys/signing-keys.json` inside it. */
  dataDir: string;
  config?: KeysConfig;
  clock?: Clock;
  /** Generate the first key when the data directory has none (default true). */
  create?: boolean;
}

interface Entry extends KeyMaterial {
  source: string;
  createdAt?: Date;
  retiresAt?: Date;
}

const KEY_FILE_FORMAT = 'ssf-bridge-signing-keys';
const systemClock: Clock = { now: () => new Date() };

const keyFileSchema = z.strictObject({
  format: z.literal(KEY_FILE_FORMAT),
  version: z.literal(1),
  keys: z
    .array(
      z.strictObject({
        kid: z.string().min(1),
        alg: z.enum(SIGNING_ALGORITHMS),
        created_at: z.iso.datetime(),
        retires_at: z.iso.datetime().optional(),
        private_jwk: z.looseObject({ kty: z.string() }),
      }),
    )
    .min(1),
});

export function keyFilePath(dataDir: string): string {
  return join(dataDir, 'keys', 'signing-keys.json');
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

async function readKeyFile(path: string): Promise<Entry[] | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw new KeyStoreError(`cannot read ${path}: ${(err as Error).message}`, 'SSF_ERR_KEYS_UNREADABLE', err);
  }
  let parsed: z.infer<typeof keyFileSchema>;
  try {
    parsed = keyFileSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new KeyStoreError(
      `${path} is not an ssf-bridge key file (${err instanceof z.ZodError ? z.prettifyError(err) : (err as Error).message})`,
      'SSF_ERR_KEYS_FILE_INVALID',
      err,
    );
  }
  return parsed.keys.map((k) => ({
    kid: k.kid,
    alg: k.alg,
    privateJwk: k.private_jwk,
    source: 'data-dir',
    createdAt: new Date(k.created_at),
    ...(k.retires_at ? { retiresAt: new Date(k.retires_at) } : {}),
  }));
}

/** Writes the key file atomically with mode 0600 (its directory 0700). */
async function writeKeyFile(path: string, entries: readonly Entry[]): Promise<void> {
  const dir = join(path, '..');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const body = {
    format: KEY_FILE_FORMAT,
    version: 1,
    keys: entries.map((e) => ({
      kid: e.kid,
      alg: e.alg,
      created_at: (e.createdAt ?? new Date()).toISOString(),
      ...(e.retiresAt ? { retires_at: e.retiresAt.toISOString() } : {}),
      private_jwk: e.privateJwk,
    })),
  };
  const temp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const handle = await open(temp, 'wx', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(body, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await chmod(temp, 0o600);
    await rename(temp, path);
  } catch (err) {
    await rm(temp, { force: true });
    throw err;
  }
}

function statusOf(entry: Entry, index: number, now: Date): KeyStatus {
  if (entry.retiresAt) return entry.retiresAt.getTime() > now.getTime() ? 'retiring' : 'retired';
  return index === 0 ? 'active' : 'published';
}

function signingKeyFor(material: KeyMaterial): SigningKey {
  const header = JSON.stringify({ alg: material.alg, kid: material.kid, typ: SET_TYP });
  return {
    kid: material.kid,
    alg: material.alg,
    protectedHeader: Buffer.from(header).toString('base64url'),
    sign: createSigner(material),
  };
}

export class KeyStore {
  readonly #entries: Entry[];
  readonly #config: KeysConfig;
  readonly #clock: Clock;
  readonly #path: string | undefined;
  readonly #signers = new Map<string, SigningKey>();

  private constructor(entries: Entry[], config: KeysConfig, clock: Clock, path: string | undefined) {
    this.#entries = entries;
    this.#config = config;
    this.#clock = clock;
    this.#path = path;
  }

  /**
   * Opens the store described by the `keys:` config. Keys from files or secrets are used as
   * given; otherwise the data directory's key file is read, and created with a new key when
   * missing (unless `create` is false).
   */
  static async open(options: KeyStoreOptions): Promise<KeyStore> {
    const config = options.config ?? defaultKeysConfig();
    const clock = options.clock ?? systemClock;
    if (config.files || config.secrets) return KeyStore.#fromConfig(config, clock);
    const path = keyFilePath(options.dataDir);
    const stored = await readKeyFile(path);
    if (stored) return new KeyStore(stored, config, clock, path);
    if (options.create === false) {
      throw new KeyStoreError(
        `no signing key in ${options.dataDir}; create one with: ssf-bridge keys generate --data-dir ${options.dataDir}`,
        'SSF_ERR_KEYS_MISSING',
      );
    }
    return KeyStore.generate({ ...options, config, clock });
  }

  /** Creates the data directory's first signing key; refuses when keys already exist there. */
  static async generate(options: KeyStoreOptions & { algorithm?: SigningAlgorithm }): Promise<KeyStore> {
    const config = options.config ?? defaultKeysConfig();
    const clock = options.clock ?? systemClock;
    const path = keyFilePath(options.dataDir);
    if (await readKeyFile(path)) {
      throw new KeyStoreError(
        `${path} already holds signing keys; replace the active one with: ssf-bridge keys rotate`,
        'SSF_ERR_KEYS_EXIST',
      );
    }
    const material = await generateKeyMaterial(options.algorithm ?? config.algorithm, {
      rsaModulusBits: config.rsa_modulus_bits,
    });
    const entries: Entry[] = [{ ...material, source: 'data-dir', createdAt: clock.now() }];
    await writeKeyFile(path, entries);
    return new KeyStore(entries, config, clock, path);
  }

  static async #fromConfig(config: KeysConfig, clock: Clock): Promise<KeyStore> {
    const entries: Entry[] = [];
    for (const file of config.files ?? []) {
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        throw new KeyStoreError(
          `cannot read key file ${file}: ${(err as Error).message}`,
          'SSF_ERR_KEYS_UNREADABLE',
          err,
        );
      }
      entries.push({ ...(await keyMaterialFromText(text, file, config.algorithm)), source: `file:${file}` });
    }
    for (const [i, value] of (config.secrets ?? []).entries()) {
      const origin = `keys.secrets[${i}]`;
      entries.push({
        ...(await keyMaterialFromText(value.reveal(), origin, config.algorithm)),
        source: `secret #${i + 1}`,
      });
    }
    const kids = new Set<string>();
    for (const e of entries) {
      if (kids.has(e.kid))
        throw new KeyStoreError(`two configured keys share kid ${e.kid}`, 'SSF_ERR_KEYS_DUPLICATE_KID');
      kids.add(e.kid);
    }
    return new KeyStore(entries, config, clock, undefined);
  }

  /** True when keys live in the data directory and can be rotated there. */
  get rotatable(): boolean {
    return this.#path !== undefined;
  }

  get path(): string | undefined {
    return this.#path;
  }

  #now(): Date {
    return this.#clock.now();
  }

  /** Every key with its status now, the signing key first. */
  list(): KeyInfo[] {
    const now = this.#now();
    return this.#entries.map((e, i) => ({
      kid: e.kid,
      alg: e.alg,
      status: statusOf(e, i, now),
      source: e.source,
      ...(e.createdAt ? { createdAt: e.createdAt } : {}),
      ...(e.retiresAt ? { retiresAt: e.retiresAt } : {}),
    }));
  }

  /** The public JWKS: every key not yet retired, with kid, alg and use=sig, no private members. */
  jwks(): { keys: PublicJwk[] } {
    const now = this.#now();
    return {
      keys: this.#entries.filter((e, i) => statusOf(e, i, now) !== 'retired').map((e) => publicJwkOf(e)),
    };
  }

  /** Verification keys that follow rotation and retirement: what receivers of our JWKS see. */
  verificationKeys(): SetKeySource {
    return dynamicJwks(() => this.jwks());
  }

  /** The active key, prepared for signing once and cached. */
  async signingKey(): Promise<SigningKey> {
    const active = this.#entries[0] as Entry;
    let signer = this.#signers.get(active.kid);
    if (!signer) {
      signer = signingKeyFor(active);
      this.#signers.set(active.kid, signer);
    }
    return signer;
  }

  /**
   * Adds a new signing key and keeps the previous one in the JWKS for the grace period.
   * Keys whose grace period is over are dropped from the file.
   */
  async rotate(options: { algorithm?: SigningAlgorithm; gracePeriodMs?: number } = {}): Promise<KeyInfo> {
    if (!this.#path) {
      throw new KeyStoreError(
        'signing keys come from keys.files / keys.secrets in the configuration; rotate them there',
        'SSF_ERR_KEYS_NOT_ROTATABLE',
      );
    }
    const now = this.#now();
    const grace = options.gracePeriodMs ?? this.#config.rotation_grace_period;
    const current = this.#entries[0] as Entry;
    const material = await generateKeyMaterial(options.algorithm ?? current.alg, {
      rsaModulusBits: this.#config.rsa_modulus_bits,
    });
    const next: Entry[] = [
      { ...material, source: 'data-dir', createdAt: now },
      ...this.#entries.map((e) => (e.retiresAt ? e : { ...e, retiresAt: new Date(now.getTime() + grace) })),
    ].filter((e, i) => statusOf(e, i, now) !== 'retired');
    await writeKeyFile(this.#path, next);
    this.#entries.splice(0, this.#entries.length, ...next);
    return this.list()[0] as KeyInfo;
  }

  /** Re-reads the key file (another process may have rotated it). */
  async reload(): Promise<void> {
    if (!this.#path) return;
    const stored = await readKeyFile(this.#path);
    if (stored) this.#entries.splice(0, this.#entries.length, ...stored);
  }
}
