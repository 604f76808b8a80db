import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SetVerificationError } from '../errors.ts';
import { SetCodec } from '../set/codec.ts';
import { localJwks } from '../set/jwks.ts';
import { verifySet } from '../set/verify.ts';
import { JWKS_MAX_AGE_SECONDS, defaultKeysConfig, keysConfigSchema } from './config.ts';
import { KeyStore, keyFilePath } from './store.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssf-keys-rotation-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileKids(): Promise<string[]> {
  const file = JSON.parse(await readFile(keyFilePath(dir), 'utf8')) as { keys: Array<{ kid: string }> };
  return file.keys.map((k) => k.kid);
}

describe('concurrent rotations', () => {
  it('two rotations at the same moment keep every key that signed, in the JWKS and in the file', async () => {
    const config = defaultKeysConfig({ algorithm: 'ES256', activation_delay: '0s' });
    const store = await KeyStore.open({ dataDir: dir, config });
    const first = (await store.signingKey()).kid;
    const codec = new SetCodec({ issuer: 'https://tx.example', keys: store });
    const rotations = [store.rotate(), store.rotate()];
    const [a, b] = await Promise.all(rotations);
    expect(a?.kid).not.toBe(b?.kid);
    // Each rotation is made on top of the other: the earlier one's key (which signed in
    // between) stays published, as does the first key, and the later one's key signs.
    const published = store.jwks().keys.map((k) => k.kid);
    expect(new Set(published)).toEqual(new Set([first, a?.kid, b?.kid]));
    expect(new Set(await fileKids())).toEqual(new Set([first, a?.kid, b?.kid]));
    expect((await store.signingKey()).kid).toBe(b?.kid);
    // A SET signed now verifies against the JWKS; so would one signed by the key in between.
    const minted = await codec.mint({
      event: {
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'dana@example.com' },
        sourceRecordId: 'r1',
      },
      sourceInstanceId: 'edr',
      destination: { id: 'rx', audience: 'https://rx.example' },
    });
    await expect(
      verifySet(minted.jwt, {
        keys: store.verificationKeys(),
        issuer: 'https://tx.example',
        audience: 'https://rx.example',
      }),
    ).resolves.toMatchObject({ header: { kid: b?.kid } });
  });

  it('a rotation that fails does not block the next one', async () => {
    const config = defaultKeysConfig({ algorithm: 'EdDSA', activation_delay: '0s' });
    const store = await KeyStore.open({ dataDir: dir, config });
    const failed = store.rotate({ algorithm: 'HS256' as never });
    const next = store.rotate();
    await expect(failed).rejects.toThrow();
    await expect(next).resolves.toMatchObject({ alg: 'EdDSA', status: 'active' });
    expect(store.list()).toHaveLength(2);
  });

  it('a rotation starts from the key file, so a rotation another process made is kept', async () => {
    const config = defaultKeysConfig({ algorithm: 'EdDSA', activation_delay: '0s' });
    const bridge = await KeyStore.open({ dataDir: dir, config });
    const first = (await bridge.signingKey()).kid;
    const cli = await KeyStore.open({ dataDir: dir, config, create: false });
    const byCli = await cli.rotate();
    const byBridge = await bridge.rotate();
    expect(new Set(await fileKids())).toEqual(new Set([first, byCli.kid, byBridge.kid]));
    expect(new Set(bridge.jwks().keys.map((k) => k.kid))).toEqual(new Set([first, byCli.kid, byBridge.kid]));
  });
});

const MINUTE = 60_000;
const HOUR = 3_600_000;

function mintWith(store: KeyStore, clock: { now(): Date }) {
  const codec = new SetCodec({ issuer: 'https://tx.example', keys: store, clock });
  return codec.mint({
    event: {
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'dana@example.com' },
      sourceRecordId: `r-${clock.now().getTime()}`,
    },
    sourceInstanceId: 'edr',
    destination: { id: 'rx', audience: 'https://rx.example' },
  });
}

describe('activation delay: a rotated-in key is published first and signs later', () => {
  it('defaults to more than the JWKS max-age, and takes 0', () => {
    expect(keysConfigSchema.parse({}).activation_delay).toBeGreaterThanOrEqual(JWKS_MAX_AGE_SECONDS * 1000);
    expect(keysConfigSchema.parse({ activation_delay: '0s' }).activation_delay).toBe(0);
    expect(keysConfigSchema.safeParse({ activation_delay: 'soon' }).success).toBe(false);
  });

  it('the current key signs until the delay has passed while the JWKS already has the new one; retirement counts from the switch', async () => {
    const start = Date.parse('2026-03-01T00:00:00Z');
    let now = start;
    const clock = { now: () => new Date(now) };
    const config = defaultKeysConfig({
      algorithm: 'ES256',
      activation_delay: '5m',
      rotation_grace_period: '1h',
    });
    const store = await KeyStore.open({ dataDir: dir, config, clock });
    const old = (await store.signingKey()).kid;

    const fresh = await store.rotate();
    expect(fresh).toMatchObject({ status: 'published', activatesAt: new Date(start + 5 * MINUTE) });
    // Published at once, the signing key first.
    expect(store.jwks().keys.map((k) => k.kid)).toEqual([old, fresh.kid]);
    // Signing goes on with the key receivers already have.
    expect((await store.signingKey()).kid).toBe(old);
    expect((await mintWith(store, clock)).header.kid).toBe(old);
    expect(store.list()).toEqual([
      expect.objectContaining({ kid: old, status: 'active', retiresAt: new Date(start + 5 * MINUTE + HOUR) }),
      expect.objectContaining({
        kid: fresh.kid,
        status: 'published',
        activatesAt: new Date(start + 5 * MINUTE),
      }),
    ]);
    expect(store.schedule()).toEqual({
      active: expect.objectContaining({ kid: old, status: 'active' }),
      next: expect.objectContaining({ kid: fresh.kid, activatesAt: new Date(start + 5 * MINUTE) }),
    });

    now = start + 5 * MINUTE - 1;
    expect((await store.signingKey()).kid).toBe(old);

    now = start + 5 * MINUTE;
    expect((await store.signingKey()).kid).toBe(fresh.kid);
    expect((await mintWith(store, clock)).header.kid).toBe(fresh.kid);
    expect(store.schedule()).toEqual({ active: expect.objectContaining({ kid: fresh.kid }) });
    expect(store.list().map((k) => [k.kid, k.status])).toEqual([
      [fresh.kid, 'active'],
      [old, 'retiring'],
    ]);

    // The old key leaves the JWKS a grace period after the new one started signing.
    now = start + 5 * MINUTE + HOUR - 1;
    expect(store.jwks().keys.map((k) => k.kid)).toEqual([fresh.kid, old]);
    now = start + 5 * MINUTE + HOUR;
    expect(store.jwks().keys.map((k) => k.kid)).toEqual([fresh.kid]);
  });

  it('a SET signed just before the switch verifies against the JWKS a receiver fetched before the rotation', async () => {
    let now = Date.parse('2026-03-01T00:00:00Z');
    const clock = { now: () => new Date(now) };
    const config = defaultKeysConfig({ algorithm: 'EdDSA', activation_delay: '10m' });
    const store = await KeyStore.open({ dataDir: dir, config, clock });
    // What a receiver or a cache holds: the JWKS from before the rotation.
    const cached = store.jwks();
    await store.rotate();
    now += 10 * MINUTE - 1000;
    const set = await mintWith(store, clock);
    const verifyWith = (jwt: string) =>
      verifySet(jwt, {
        keys: localJwks(cached),
        issuer: 'https://tx.example',
        audience: 'https://rx.example',
        clock,
      });
    await expect(verifyWith(set.jwt)).resolves.toMatchObject({ header: { kid: set.header.kid } });
    // After the switch, a receiver still holding that JWKS would refuse: hence the delay.
    now += 1000;
    const after = await mintWith(store, clock);
    const refused = await verifyWith(after.jwt).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(SetVerificationError);
    expect((refused as SetVerificationError).err).toBe('invalid_key');
  });

  it('survives a restart: the activation time is kept in the key file', async () => {
    const start = Date.parse('2026-03-01T00:00:00Z');
    let now = start;
    const clock = { now: () => new Date(now) };
    const config = defaultKeysConfig({ algorithm: 'ES256', activation_delay: '5m' });
    const before = await KeyStore.open({ dataDir: dir, config, clock });
    const old = (await before.signingKey()).kid;
    const fresh = await before.rotate();
    const file = JSON.parse(await readFile(keyFilePath(dir), 'utf8')) as {
      keys: Array<{ kid: string; activates_at?: string }>;
    };
    expect(file.keys.find((k) => k.kid === fresh.kid)?.activates_at).toBe(
      new Date(start + 5 * MINUTE).toISOString(),
    );

    now = start + 2 * MINUTE;
    const restarted = await KeyStore.open({ dataDir: dir, config, clock, create: false });
    expect((await restarted.signingKey()).kid).toBe(old);
    expect(restarted.jwks().keys.map((k) => k.kid)).toEqual([old, fresh.kid]);
    expect(restarted.schedule().next).toMatchObject({
      kid: fresh.kid,
      activatesAt: new Date(start + 5 * MINUTE),
    });
    now = start + 5 * MINUTE;
    expect((await restarted.signingKey()).kid).toBe(fresh.kid);
  });

  it('0 (the config or the rotation) signs with the new key at once', async () => {
    const config = defaultKeysConfig({ algorithm: 'EdDSA', activation_delay: '0s' });
    const store = await KeyStore.open({ dataDir: dir, config });
    const fresh = await store.rotate();
    expect(fresh.status).toBe('active');
    expect((await store.signingKey()).kid).toBe(fresh.kid);
    const next = await store.rotate({ activationDelayMs: 0, gracePeriodMs: 0 });
    expect((await store.signingKey()).kid).toBe(next.kid);
    // With no grace period either, the key it replaced leaves at once (the first key keeps its 7 days).
    const published = store.jwks().keys.map((k) => k.kid);
    expect(published).toHaveLength(2);
    expect(published[0]).toBe(next.kid);
    expect(published).not.toContain(fresh.kid);

    const delayed = await KeyStore.open({ dataDir: dir, config: defaultKeysConfig({ algorithm: 'EdDSA' }) });
    const waiting = await delayed.rotate();
    expect(waiting.status).toBe('published');
    const immediate = await delayed.rotate({ activationDelayMs: 0 });
    expect((await delayed.signingKey()).kid).toBe(immediate.kid);
  });

  it('a second rotation while one waits: each key signs from its own activation time', async () => {
    const start = Date.parse('2026-03-01T00:00:00Z');
    let now = start;
    const clock = { now: () => new Date(now) };
    const config = defaultKeysConfig({
      algorithm: 'EdDSA',
      activation_delay: '5m',
      rotation_grace_period: '1h',
    });
    const store = await KeyStore.open({ dataDir: dir, config, clock });
    const old = (await store.signingKey()).kid;
    const first = await store.rotate();
    now = start + MINUTE;
    const second = await store.rotate();
    expect((await store.signingKey()).kid).toBe(old);
    expect(store.schedule().next?.kid).toBe(first.kid);
    now = start + 5 * MINUTE;
    expect((await store.signingKey()).kid).toBe(first.kid);
    expect(store.schedule().next?.kid).toBe(second.kid);
    now = start + 6 * MINUTE;
    expect((await store.signingKey()).kid).toBe(second.kid);
    const leaves = Object.fromEntries(store.list().map((k) => [k.kid, k.retiresAt?.getTime()]));
    expect(leaves).toEqual({
      [second.kid]: undefined,
      [first.kid]: start + 6 * MINUTE + HOUR,
      [old]: start + 5 * MINUTE + HOUR,
    });
  });
  it('a rotation for a leaked key (no delay, no grace) retires it at once, though a rotation waiting before had dated it later', async () => {
    const start = Date.parse('2026-03-01T00:00:00Z');
    let now = start;
    const clock = { now: () => new Date(now) };
    const store = await KeyStore.open({
      dataDir: dir,
      config: defaultKeysConfig({ algorithm: 'EdDSA' }),
      clock,
    });
    const leaked = (await store.signingKey()).kid;
    // A routine rotation (Rotate now in the console): the leaked key is to sign 10 more minutes.
    const routine = await store.rotate();
    now = start + MINUTE;
    const fresh = await store.rotate({ activationDelayMs: 0, gracePeriodMs: 0 });
    expect((await store.signingKey()).kid).toBe(fresh.kid);
    const published = store.jwks().keys.map((k) => k.kid);
    expect(published).not.toContain(leaked);
    // The routine rotation's key never signed and never will: it is neither next nor published.
    expect(published).toEqual([fresh.kid]);
    expect(store.schedule().next).toBeUndefined();
    expect(routine.kid).not.toBe(fresh.kid);
  });
});
