import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KeyStoreError, SetVerificationError } from '../errors.ts';
import { SetCodec } from '../set/codec.ts';
import { verifySet } from '../set/verify.ts';
import { defaultKeysConfig, keysConfigSchema } from './config.ts';
import { KeyStore, keyFilePath } from './store.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssf-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

describe('keys config (the root config keys: block)', () => {
  it('defaults to RS256, 2048-bit RSA, a 7 day grace period and a 10 minute activation delay', () => {
    expect(keysConfigSchema.parse({})).toEqual({
      algorithm: 'RS256',
      rsa_modulus_bits: 2048,
      rotation_grace_period: 604_800_000,
      activation_delay: 600_000,
      single_instance: false,
    });
    expect(keysConfigSchema.parse({ rotation_grace_period: '36h' }).rotation_grace_period).toBe(129_600_000);
  });

  it('refuses unknown keys, weak RSA, HMAC algorithms and bad durations', () => {
    expect(keysConfigSchema.safeParse({ algorythm: 'RS256' }).success).toBe(false);
    expect(keysConfigSchema.safeParse({ rsa_modulus_bits: 1024 }).success).toBe(false);
    expect(keysConfigSchema.safeParse({ rsa_modulus_bits: 2500 }).success).toBe(false);
    expect(keysConfigSchema.safeParse({ algorithm: 'HS256' }).success).toBe(false);
    expect(keysConfigSchema.safeParse({ rotation_grace_period: 'a week' }).success).toBe(false);
  });

  it('keeps configured key secrets redacted', () => {
    const parsed = keysConfigSchema.parse({ secrets: ['-----BEGIN PRIVATE KEY-----x'] });
    expect(JSON.stringify(parsed)).not.toContain('BEGIN PRIVATE KEY');
  });
});

describe('keys in the data directory', () => {
  it('generates the first key on first open, file mode 0600 in a 0700 directory', async () => {
    const store = await KeyStore.open({ dataDir: dir });
    const [key] = store.list();
    expect(key).toMatchObject({ alg: 'RS256', status: 'active', source: 'data-dir' });
    expect((await stat(keyFilePath(dir))).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, 'keys'))).mode & 0o777).toBe(0o700);
    const reopened = await KeyStore.open({ dataDir: dir, create: false });
    expect(reopened.list().map((k) => k.kid)).toEqual([key?.kid]);
  });

  it('CAEP interoperability §2.6 (TX-02): the default key is RSA ≥ 2048 and the JWKS is public-only', async () => {
    const store = await KeyStore.open({ dataDir: dir });
    const [jwk] = store.jwks().keys;
    expect(jwk).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig', e: 'AQAB' });
    expect(Buffer.from(jwk?.n ?? '', 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
    for (const member of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(member);
    expect(Object.keys(jwk ?? {}).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
  });

  it('does not create keys when told not to, and says how to create them', async () => {
    const error = await KeyStore.open({ dataDir: dir, create: false }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(KeyStoreError);
    expect((error as KeyStoreError).code).toBe('SSF_ERR_KEYS_MISSING');
    expect((error as KeyStoreError).message).toContain('ssf-bridge keys generate');
  });

  it('generate refuses to overwrite existing keys', async () => {
    await KeyStore.generate({ dataDir: dir, config: defaultKeysConfig({ algorithm: 'ES256' }) });
    await expect(KeyStore.generate({ dataDir: dir })).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_EXIST' });
  });

  it('refuses a damaged key file', async () => {
    await KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ algorithm: 'EdDSA' }) });
    await writeFile(keyFilePath(dir), '{"format":"something else"}');
    await expect(KeyStore.open({ dataDir: dir })).rejects.toMatchObject({
      code: 'SSF_ERR_KEYS_FILE_INVALID',
    });
  });

  it('names where a key file stops being JSON without quoting it (it holds private keys)', async () => {
    await KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ algorithm: 'ES256' }) });
    const text = await readFile(keyFilePath(dir), 'utf8');
    const d = /"d":\s*"([^"]+)"/.exec(text)![1]!;
    // Truncated in the middle of the private member, as a full disk or a bad copy leaves it.
    await writeFile(keyFilePath(dir), text.slice(0, text.indexOf(d) + 10));
    const error = (await KeyStore.open({ dataDir: dir }).catch((err: unknown) => err)) as KeyStoreError;
    expect(error.code).toBe('SSF_ERR_KEYS_FILE_INVALID');
    expect(error.message).toMatch(/is not valid JSON/);
    expect(error.message).not.toContain(d.slice(0, 6));
    expect(String(error.cause ?? '')).not.toContain(d.slice(0, 6));
  });
});

describe('rotation with a grace period (checklist TX-02)', () => {
  it('a SET signed before rotation verifies during the grace period and fails after retirement', async () => {
    let now = Date.parse('2026-03-01T00:00:00Z');
    const clock = { now: () => new Date(now) };
    // The new key signs at once here; rotation.test.ts has the activation delay.
    const config = defaultKeysConfig({
      algorithm: 'ES256',
      rotation_grace_period: '24h',
      activation_delay: 0,
    });
    const store = await KeyStore.open({ dataDir: dir, config, clock });
    const codec = new SetCodec({ issuer: 'https://tx.example', keys: store, clock });
    const before = await codec.mint({
      event: {
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'dana@example.com' },
        sourceRecordId: 'r1',
      },
      sourceInstanceId: 'edr',
      destination: { id: 'rx', audience: 'https://rx.example' },
    });
    const oldKid = before.header.kid;
    const verify = () =>
      verifySet(before.jwt, {
        keys: store.verificationKeys(),
        issuer: 'https://tx.example',
        audience: 'https://rx.example',
        clock,
      });

    const fresh = await store.rotate();
    expect(fresh.kid).not.toBe(oldKid);
    expect((await store.signingKey()).kid).toBe(fresh.kid);
    expect(store.list().map((k) => [k.kid, k.status])).toEqual([
      [fresh.kid, 'active'],
      [oldKid, 'retiring'],
    ]);
    expect(store.jwks().keys.map((k) => k.kid)).toEqual([fresh.kid, oldKid]);

    now += 23 * 3_600_000;
    await expect(verify()).resolves.toMatchObject({ header: { kid: oldKid } });

    now += 2 * 3_600_000;
    expect(store.list().find((k) => k.kid === oldKid)?.status).toBe('retired');
    expect(store.jwks().keys.map((k) => k.kid)).toEqual([fresh.kid]);
    const error = await verify().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(SetVerificationError);
    expect((error as SetVerificationError).err).toBe('invalid_key');

    // The next rotation drops the retired key from the file for good.
    await store.rotate();
    const file = JSON.parse(await readFile(keyFilePath(dir), 'utf8')) as { keys: Array<{ kid: string }> };
    expect(file.keys.map((k) => k.kid)).not.toContain(oldKid);
    expect(file.keys).toHaveLength(2);
  });

  it('persists: another process reading the directory sees the rotation', async () => {
    const a = await KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ algorithm: 'EdDSA' }) });
    const b = await KeyStore.open({ dataDir: dir });
    const next = await a.rotate({ algorithm: 'ES256', gracePeriodMs: 60_000, activationDelayMs: 0 });
    expect(next.alg).toBe('ES256');
    await b.reload();
    expect((await b.signingKey()).kid).toBe(next.kid);
    expect(b.list()).toHaveLength(2);
  });
});

describe('keys from files and secrets', () => {
  function pem(type: 'rsa' | 'ec' | 'ed25519', encoding: 'pkcs8' | 'pkcs1' | 'sec1', bits = 2048): string {
    const pair =
      type === 'rsa'
        ? generateKeyPairSync('rsa', { modulusLength: bits })
        : type === 'ec'
          ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
          : generateKeyPairSync('ed25519');
    return pair.privateKey.export({ format: 'pem', type: encoding as 'pkcs8' }).toString();
  }

  it('loads PKCS#8, PKCS#1 and SEC1 PEM files and JWK secrets; the first listed signs', async () => {
    const files = [join(dir, 'a.pem'), join(dir, 'b.pem'), join(dir, 'c.pem')];
    await writeFile(files[0] as string, pem('rsa', 'pkcs1'));
    await writeFile(files[1] as string, pem('ec', 'sec1'));
    await writeFile(files[2] as string, pem('ed25519', 'pkcs8'));
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid: 'ops-2026' };
    const store = await KeyStore.open({
      dataDir: dir,
      config: defaultKeysConfig({ files, secrets: [JSON.stringify(jwk)] }),
    });
    expect(store.rotatable).toBe(false);
    expect(store.list().map((k) => [k.alg, k.status])).toEqual([
      ['RS256', 'active'],
      ['ES256', 'published'],
      ['EdDSA', 'published'],
      ['ES256', 'published'],
    ]);
    expect(store.list()[3]).toMatchObject({ kid: 'ops-2026', source: 'secret #1' });
    for (const key of store.jwks().keys)
      for (const member of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(member);
    await expect(store.rotate()).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_NOT_ROTATABLE' });
  });

  it('PS256 is chosen for RSA keys when the config asks for it', async () => {
    const store = await KeyStore.open({
      dataDir: dir,
      config: defaultKeysConfig({ algorithm: 'PS256', secrets: [pem('rsa', 'pkcs8')] }),
    });
    expect(store.list()[0]?.alg).toBe('PS256');
  });

  it('refuses weak, unsupported, public-only and unreadable keys with a clear code', async () => {
    const open = (secret: string) =>
      KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ secrets: [secret] }) });
    await expect(open(pem('rsa', 'pkcs8', 1024))).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_WEAK' });
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' })
      .privateKey.export({ format: 'pem', type: 'pkcs8' })
      .toString();
    await expect(open(p384)).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_UNSUPPORTED' });
    const publicPem = generateKeyPairSync('ed25519')
      .publicKey.export({ format: 'pem', type: 'spki' })
      .toString();
    await expect(open(publicPem)).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_UNREADABLE' });
    await expect(open('not a key')).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_UNREADABLE' });
    const hmac = JSON.stringify({ kty: 'oct', k: 'c2VjcmV0', alg: 'HS256' });
    await expect(open(hmac)).rejects.toBeInstanceOf(KeyStoreError);
    const mislabelled = JSON.stringify({
      ...generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }),
      alg: 'RS256',
    });
    await expect(open(mislabelled)).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_UNSUPPORTED' });
    await expect(
      KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ files: [join(dir, 'missing.pem')] }) }),
    ).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_UNREADABLE' });
  });

  it('refuses two configured keys with the same kid', async () => {
    const key = pem('ed25519', 'pkcs8');
    await expect(
      KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ secrets: [key, key] }) }),
    ).rejects.toMatchObject({ code: 'SSF_ERR_KEYS_DUPLICATE_KID' });
  });
});
