/**
 * The signing key store. Keys live either in the data directory (generated on first run,
 * rotated by `ssf-bridge keys rotate`) or in files and secrets named by the `keys:` config.
 * Several keys can be live at once: the active one signs; a key a rotation adds is published at
 * once but signs only once its activation delay has passed (receivers and caches may hold the
 * JWKS that long); a replaced one stays in the JWKS until its grace period, counted from when
 * its successor started signing, ends, then it is retired and no longer verifies anything.
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
  /**
   * When the key signs from, for a key a rotation added: it is published at once and signs from
   * this time on (`keys.activation_delay` after the rotation). Absent for keys that signed as
   * soon as they existed (the first key, keys from files and secrets, keys of older releases).
   */
  activatesAt?: Date;
  /** When a replaced key leaves the JWKS. */
  retiresAt?: Date;
}

/** Which key signs now, and the key a rotation added that signs next, if one waits. */
export interface SigningSchedule {
  active: KeyInfo;
  /** The key that signs next and (its `activatesAt`) when; absent when no rotation waits. */
  next?: KeyInfo & { activatesAt: Date };
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
  activatesAt?: Date;
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
        activates_at: z.iso.datetime().optional(),
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
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    // The parser's message may quote the text around the fault: private key material.
    const at = /at position \d+(?: \(line \d+ column \d+\))?/.exec((err as Error).message)?.[0];
    throw new KeyStoreError(
      `${path} is not an ssf-bridge key file: it is not valid JSON${at ? ` (${at})` : ''}`,
      'SSF_ERR_KEYS_FILE_INVALID',
    );
  }
  try {
    parsed = keyFileSchema.parse(json);
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
    ...(k.activates_at ? { activatesAt: new Date(k.activates_at) } : {}),
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
      ...(e.activatesAt ? { activates_at: e.activatesAt.toISOString() } : {}),
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

function activated(entry: Entry, now: Date): boolean {
  return entry.activatesAt === undefined || entry.activatesAt.getTime() <= now.getTime();
}

function retired(entry: Entry, now: Date): boolean {
  return entry.retiresAt !== undefined && entry.retiresAt.getTime() <= now.getTime();
}

/**
 * The entry that signs at `now`: entries are kept newest first, and the newest one whose
 * activation time has come and that has not retired signs. Should there be none (only a clock
 * set back before the last activation could make it so), the newest activated one, else the
 * oldest: one of them always signs.
 */
function signerIndex(entries: readonly Entry[], now: Date): number {
  let fallback = -1;
  for (const [i, entry] of entries.entries()) {
    if (!activated(entry, now)) continue;
    if (!retired(entry, now)) return i;
    if (fallback < 0) fallback = i;
  }
  return fallback >= 0 ? fallback : entries.length - 1;
}

function statusOf(entry: Entry, index: number, signer: number, now: Date): KeyStatus {
  if (index === signer) return 'active';
  if (entry.retiresAt) return retired(entry, now) ? 'retired' : 'retiring';
  return 'published';
}

/** The entries with the signing one first, the others in their order (newest first). */
function signerFirst(entries: readonly Entry[], now: Date): Array<{ entry: Entry; status: KeyStatus }> {
  const signer = signerIndex(entries, now);
  const all = entries.map((entry, i) => ({ entry, status: statusOf(entry, i, signer, now) }));
  return [all[signer]!, ...all.filter((_, i) => i !== signer)];
}

function infoOf(entry: Entry, status: KeyStatus): KeyInfo {
  return {
    kid: entry.kid,
    alg: entry.alg,
    status,
    source: entry.source,
    ...(entry.createdAt ? { createdAt: entry.createdAt } : {}),
    ...(entry.activatesAt ? { activatesAt: entry.activatesAt } : {}),
    ...(entry.retiresAt ? { retiresAt: entry.retiresAt } : {}),
  };
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
  /** Rotations and reloads, one at a time: each starts once the one before has written the file. */
  #turn: Promise<void> = Promise.resolve();

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

  /** Every key with its status now, the signing key first, then the others newest first. */
  list(): KeyInfo[] {
    return signerFirst(this.#entries, this.#now()).map(({ entry, status }) => infoOf(entry, status));
  }

  /** The key that signs now and, while a rotation waits for its activation delay, the next one. */
  schedule(): SigningSchedule {
    const now = this.#now();
    const [active, ...others] = signerFirst(this.#entries, now);
    // Only a key newer than the signer ever signs: an older one still waiting (a rotation
    // overtaken by a later one that signed at once) never will.
    const newer = new Set(this.#entries.slice(0, signerIndex(this.#entries, now)));
    const waiting = others
      .filter(({ entry, status }) => newer.has(entry) && status !== 'retired' && !activated(entry, now))
      .sort((a, b) => a.entry.activatesAt!.getTime() - b.entry.activatesAt!.getTime())[0];
    return {
      active: infoOf(active!.entry, active!.status),
      ...(waiting ? { next: infoOf(waiting.entry, waiting.status) as KeyInfo & { activatesAt: Date } } : {}),
    };
  }

  /**
   * The public JWKS: every key not yet retired, the signing key first (for receivers that take
   * the first key rather than the one the `kid` names), with kid, alg and use=sig, no private
   * members. A key a rotation added is in it from the rotation on, before it signs.
   */
  jwks(): { keys: PublicJwk[] } {
    return {
      keys: signerFirst(this.#entries, this.#now())
        .filter(({ status }) => status !== 'retired')
        .map(({ entry }) => publicJwkOf(entry)),
    };
  }

  /** Whether the JWKS holds `kid`: a SET it signed still verifies for receivers. */
  publishes(kid: string): boolean {
    const entry = this.#entries.find((e) => e.kid === kid);
    return entry !== undefined && !retired(entry, this.#now());
  }

  /** Verification keys that follow rotation and retirement: what receivers of our JWKS see. */
  verificationKeys(): SetKeySource {
    return dynamicJwks(() => this.jwks());
  }

  /** The active key, prepared for signing once and cached. */
  async signingKey(): Promise<SigningKey> {
    const active = this.#entries[signerIndex(this.#entries, this.#now())] as Entry;
    let signer = this.#signers.get(active.kid);
    if (!signer) {
      signer = signingKeyFor(active);
      this.#signers.set(active.kid, signer);
    }
    return signer;
  }

  /**
   * Adds a new signing key. It is published at once and signs once the activation delay
   * (`keys.activation_delay`, or `activationDelayMs`) has passed; the key signing until then
   * stays in the JWKS for the grace period after that. Keys whose grace period is over are
   * dropped from the file. Rotations run one at a time, each on the key file as the one before
   * left it (or as another process left it), so none loses a key another one added.
   */
  async rotate(
    options: { algorithm?: SigningAlgorithm; gracePeriodMs?: number; activationDelayMs?: number } = {},
  ): Promise<KeyInfo> {
    const path = this.#path;
    if (!path) {
      throw new KeyStoreError(
        'signing keys come from keys.files / keys.secrets in the configuration; rotate them there',
        'SSF_ERR_KEYS_NOT_ROTATABLE',
      );
    }
    return this.#inTurn(() => this.#rotate(path, options));
  }

  async #rotate(
    path: string,
    options: { algorithm?: SigningAlgorithm; gracePeriodMs?: number; activationDelayMs?: number },
  ): Promise<KeyInfo> {
    // The file, not what this process read at start: `ssf-bridge keys rotate` may have added a key.
    const base = (await readKeyFile(path)) ?? [...this.#entries];
    const current = base[signerIndex(base, this.#now())] as Entry;
    const material = await generateKeyMaterial(options.algorithm ?? current.alg, {
      rsaModulusBits: this.#config.rsa_modulus_bits,
    });
    const now = this.#now();
    const grace = options.gracePeriodMs ?? this.#config.rotation_grace_period;
    const delay = options.activationDelayMs ?? this.#config.activation_delay;
    const activatesAt = new Date(now.getTime() + delay);
    // The keys signing until the new one activates leave the JWKS a grace period after that.
    const retiresAt = new Date(activatesAt.getTime() + grace);
    const signing = base.indexOf(current);
    const all: Entry[] = [
      { ...material, source: 'data-dir', createdAt: now, activatesAt },
      // Older keys keep the date an earlier rotation gave them. The signing key, and keys newer
      // than it still waiting to sign, leave at this rotation's date if that is sooner: a
      // rotation for a leaked key (no delay, no grace) retires it now, whatever a rotation
      // waiting before it said.
      ...base.map((e, i) =>
        e.retiresAt && (i > signing || e.retiresAt <= retiresAt) ? e : { ...e, retiresAt },
      ),
    ];
    const signer = signerIndex(all, now);
    const next = all.filter((e, i) => i === signer || !retired(e, now));
    await writeKeyFile(path, next);
    this.#entries.splice(0, this.#entries.length, ...next);
    return this.list().find((k) => k.kid === material.kid) as KeyInfo;
  }

  /** Re-reads the key file (another process may have rotated it). */
  async reload(): Promise<void> {
    const path = this.#path;
    if (!path) return;
    await this.#inTurn(async () => {
      const stored = await readKeyFile(path);
      if (stored) this.#entries.splice(0, this.#entries.length, ...stored);
    });
  }

  /** Runs `work` once the rotations and reloads asked for before it have finished. */
  #inTurn<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#turn.then(work);
    this.#turn = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  }
}
