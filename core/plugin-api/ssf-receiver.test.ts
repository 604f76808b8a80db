import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { receivedIdsOf } from '../runtime/context.ts';
import type { PostgresStore } from '../storage/postgres/store.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import type { Store } from '../storage/types.ts';
import {
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../storage/testing/postgres.ts';
import { checkpointConflict } from './errors.ts';
import {
  checkpointReplayLedger,
  createSetVerifier,
  receivableEventTypes,
  receivedIdsReplayLedger,
  type ReplayLedger,
  type SetVerifierOptions,
} from './ssf-receiver.ts';
import type { InboundContext, Logger } from './types.ts';

const ISSUER = 'https://tx.example.com';
const AUDIENCE = 'https://rx.example.com';
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

const logger: Logger = {
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => logger,
};

type LedgerContext = Pick<InboundContext, 'checkpoints' | 'emit' | 'logger'>;

/** What the context of one instance gives the ledger, over checkpoints kept in `store` (the database). */
function mapContext(store: Map<string, unknown>): LedgerContext {
  return {
    logger,
    checkpoints: {
      get: async (name = 'default') => structuredClone(store.get(name)),
      set: async (value, name = 'default') => void store.set(name, structuredClone(value)),
    },
    async emit(_events, options) {
      const write = options?.checkpoint;
      if (write) {
        const name = write.name ?? 'default';
        if (write.expected && JSON.stringify(store.get(name)) !== JSON.stringify(write.expected.value)) {
          throw checkpointConflict('rx', name);
        }
        store.set(name, structuredClone(write.value));
      }
      return { accepted: [], duplicates: 0 };
    },
  };
}

/** The same over the PostgreSQL store, as the bridge's runtime hands it to an instance. */
function storeContext(store: Store, instanceId: string): LedgerContext {
  return {
    logger,
    checkpoints: {
      get: (name = 'default') => store.checkpoints.get(instanceId, name),
      set: (value, name = 'default') => store.checkpoints.set(instanceId, name, value, new Date()),
    },
    async emit(_events, options) {
      const write = options?.checkpoint;
      const now = new Date();
      await store.accept({
        now,
        events: [],
        dedupeExpiresAt: now,
        ...(write
          ? {
              checkpoint: {
                instanceId,
                name: write.name ?? 'default',
                value: write.value,
                ...(write.expected ? { expected: write.expected } : {}),
              },
            }
          : {}),
      });
      return { accepted: [], duplicates: 0 };
    },
  };
}

let sign: (jti: string) => Promise<string>;
let jwks: { keys: unknown[] };

beforeAll(async () => {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256' }] };
  sign = (jti) =>
    new CompactSign(
      new TextEncoder().encode(
        JSON.stringify({
          iss: ISSUER,
          aud: AUDIENCE,
          jti,
          iat: Math.floor(Date.now() / 1000),
          sub_id: { format: 'email', email: 'jane@example.com' },
          events: { [SESSION_REVOKED]: { event_timestamp: Math.floor(Date.now() / 1000) } },
        }),
      ),
    )
      .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'secevent+jwt' })
      .sign(privateKey);
});

function verifier(replayLedger?: ReplayLedger) {
  return createSetVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    jwksUri: `${ISSUER}/jwks`,
    fetchJwks: async () => jwks,
    ...(replayLedger ? { replayLedger } : {}),
  });
}

describe('createSetVerifier', () => {
  it('needs a JWKS fetcher: the jwks_uri is the transmitter’s choice, so no fetch without an SSRF policy is made for it', () => {
    const options = {
      issuer: 'https://tx.example.com',
      audience: 'rx',
      jwksUri: 'https://tx.example.com/jwks',
    };
    expect(() => createSetVerifier(options as SetVerifierOptions)).toThrow(
      /needs fetchJwks.*guardedHttpClient/,
    );
    expect(() => createSetVerifier({ ...options, fetchJwks: async () => ({ keys: [] }) })).not.toThrow();
  });

  it('RFC 8417 §2.2, RFC 8935 §2.2: a jti recorded through a ledger is refused as a replay by a verifier of another process (a restart, another bridge instance); one only verified is not', async () => {
    const store = new Map<string, unknown>();
    const first = verifier(checkpointReplayLedger(mapContext(store)));
    const token = await sign('jti-1');
    const unrecorded = await sign('jti-2');
    await first.record(await first.verify(token));
    await first.verify(unrecorded); // verified, its events not stored yet: not recorded
    const restarted = verifier(checkpointReplayLedger(mapContext(store)));
    await expect(restarted.verify(token)).rejects.toMatchObject({ code: 'SSF_ERR_SET_REPLAYED' });
    await expect(restarted.verify(unrecorded)).resolves.toMatchObject({ jti: 'jti-2' });
    // Without a ledger, memory only: the restarted process accepts the replay.
    await expect(verifier().verify(token)).resolves.toMatchObject({ jti: 'jti-1' });
  });

  it('a ledger that cannot be read makes verify() fail retryable, never accept the SET as new', async () => {
    const ledger: ReplayLedger = {
      has: async () => {
        throw new Error('connection refused');
      },
      add: async () => undefined,
    };
    const ctx = mapContext(new Map());
    ctx.checkpoints.get = async () => {
      throw new Error('connection refused');
    };
    await expect(verifier(ledger).verify(await sign('jti-3'))).rejects.toThrow('connection refused');
    await expect(verifier(checkpointReplayLedger(ctx)).verify(await sign('jti-4'))).rejects.toMatchObject({
      errorClass: 'retryable',
      code: 'SSF_ERR_REPLAY_LEDGER',
    });
  });
});

describe('checkpointReplayLedger', () => {
  it('keeps what instances writing one bucket at once added (compare-and-set), drops expired entries and keeps at most maxEntries', async () => {
    const store = new Map<string, unknown>();
    const now = new Date('2026-01-01T00:00:00Z');
    const later = (ms: number) => new Date(now.getTime() + ms);
    const a = checkpointReplayLedger(mapContext(store), { buckets: 1, maxEntries: 3 });
    const b = checkpointReplayLedger(mapContext(store), { buckets: 1, maxEntries: 3 });
    await Promise.all([a.add('k1', later(1000), now), b.add('k2', later(5000), now)]);
    expect(await a.has('k2', now)).toBe(true);
    expect(await b.has('k1', now)).toBe(true);
    expect(await b.has('k1', later(1000))).toBe(false);
    await a.add('k3', later(6000), now);
    await a.add('k4', later(7000), now);
    // Full: k1, the soonest to expire, made room.
    expect(await Promise.all(['k1', 'k2', 'k3', 'k4'].map((k) => a.has(k, now)))).toEqual([
      false,
      true,
      true,
      true,
    ]);
    await a.add('k5', later(8000), later(5500));
    expect(Object.keys(store.get('replay-0') as object)).toHaveLength(3);
    expect(await a.has('k2', later(5500))).toBe(false);
  });
});

describePostgres('checkpointReplayLedger over PostgreSQL', () => {
  const schema = uniqueSchema();
  let store: PostgresStore;
  beforeAll(async () => {
    store = await openTestPostgresStore(schema);
  });
  afterAll(async () => {
    await store?.close();
    await dropSchema(schema);
  });

  it('RFC 8935 §2.2: two bridge instances on one database, and an instance restarted on it, refuse a replayed jti the other recorded', async () => {
    const instanceA = verifier(checkpointReplayLedger(storeContext(store, 'upstream')));
    const instanceB = verifier(checkpointReplayLedger(storeContext(store, 'upstream')));
    const tokens = await Promise.all(['pg-1', 'pg-2', 'pg-3', 'pg-4'].map((jti) => sign(jti)));
    // Both instances record at once into the same buckets: none of the writes is lost.
    await Promise.all(
      tokens.map(async (t, i) => {
        const v = i % 2 === 0 ? instanceA : instanceB;
        await v.record(await v.verify(t));
      }),
    );
    for (const t of tokens) {
      await expect(instanceA.verify(t)).rejects.toMatchObject({ code: 'SSF_ERR_SET_REPLAYED' });
      await expect(instanceB.verify(t)).rejects.toMatchObject({ code: 'SSF_ERR_SET_REPLAYED' });
    }
    const restarted = verifier(checkpointReplayLedger(storeContext(store, 'upstream')));
    await expect(restarted.verify(tokens[0] as string)).rejects.toMatchObject({
      code: 'SSF_ERR_SET_REPLAYED',
    });
    // Another instance id keeps its own record.
    const other = verifier(checkpointReplayLedger(storeContext(store, 'another-upstream')));
    await expect(other.verify(tokens[0] as string)).resolves.toMatchObject({ jti: 'pg-1' });
  });

  it('concurrent writes to one bucket from two instances all land (compare-and-set in the store)', async () => {
    const a = checkpointReplayLedger(storeContext(store, 'bucketed'), { buckets: 1 });
    const b = checkpointReplayLedger(storeContext(store, 'bucketed'), { buckets: 1 });
    const now = new Date();
    const until = new Date(now.getTime() + 60_000);
    const keys = Array.from({ length: 6 }, (_, i) => `key-${i}`);
    await Promise.all(keys.map((k, i) => (i % 2 ? a : b).add(k, until, now)));
    expect(await Promise.all(keys.map((k) => a.has(k, now)))).toEqual(keys.map(() => true));
  });
});

/** An instance's context with ctx.receivedIds and a clock, over a real store, as the runtime builds it. */
function receivedContext(store: SqliteStore | PostgresStore, instanceId: string, now: () => Date) {
  return {
    ...storeContext(store, instanceId),
    receivedIds: receivedIdsOf(instanceId, store.oneTimeIds),
    clock: { now },
  };
}

function receivedIdsLedgerSuite(open: () => Promise<SqliteStore | PostgresStore>) {
  let store: SqliteStore | PostgresStore;
  beforeAll(async () => {
    store = await open();
  });
  afterAll(async () => {
    await store?.close();
  });
  const WINDOW = 2 * 86_400_000;

  it('RFC 8935 §2.2: a jti one instance recorded is refused by another on the same database and after a restart, one row each, no checkpoint rewritten', async () => {
    const now = () => new Date();
    const a = receivedIdsReplayLedger(receivedContext(store, 'rx', now), { legacyWindowMs: WINDOW });
    const b = receivedIdsReplayLedger(receivedContext(store, 'rx', now), { legacyWindowMs: WINDOW });
    await Promise.all([a.prepare(), b.prepare()]);
    const first = verifier(a);
    const tokens = await Promise.all(['r-1', 'r-2', 'r-3'].map((jti) => sign(jti)));
    for (const t of tokens) await first.record(await first.verify(t));
    for (const t of tokens) {
      await expect(verifier(b).verify(t)).rejects.toMatchObject({ code: 'SSF_ERR_SET_REPLAYED' });
    }
    // Another instance keeps its own record.
    const other = receivedIdsReplayLedger(receivedContext(store, 'rx-other', now), {
      legacyWindowMs: WINDOW,
    });
    await other.prepare();
    await expect(verifier(other).verify(tokens[0]!)).resolves.toMatchObject({ jti: 'r-1' });
    // Recorded as one-time ids, not in checkpoint buckets.
    expect(await store.checkpoints.list('rx')).toEqual([
      expect.objectContaining({ name: 'replay-ledger-moved' }),
    ]);
  });

  it('jtis an earlier version kept in checkpoint buckets are refused for one replay window after the move, then no longer read', async () => {
    let clock = new Date('2026-06-01T00:00:00Z');
    const now = () => clock;
    const ctx = receivedContext(store, 'upgraded', now);
    const old = checkpointReplayLedger(ctx);
    const key = `${ISSUER}\u0000old-jti`;
    await old.add(key, new Date(clock.getTime() + 3 * WINDOW), clock);
    const ledger = receivedIdsReplayLedger(ctx, { legacyWindowMs: WINDOW });
    // Before prepare() the buckets are always read.
    expect(await ledger.has(key, clock)).toBe(true);
    await ledger.prepare();
    clock = new Date(clock.getTime() + WINDOW - 1);
    expect(await ledger.has(key, clock)).toBe(true);
    // A restarted instance keeps the time of the move, not its own start.
    const restarted = receivedIdsReplayLedger(receivedContext(store, 'upgraded', now), {
      legacyWindowMs: WINDOW,
    });
    await restarted.prepare();
    expect(await restarted.has(key, clock)).toBe(true);
    clock = new Date(clock.getTime() + 1);
    expect(await ledger.has(key, clock)).toBe(false);
    expect(await restarted.has(key, clock)).toBe(false);
  });

  it('ids hold any characters, and an expired one is no longer a replay', async () => {
    const start = Date.now();
    let clock = new Date(start);
    const ids = receivedIdsOf('chars', store.oneTimeIds);
    const id = `${ISSUER}\u0000jti with ünïcode, NUL and a very long tail ${'x'.repeat(2000)}`;
    expect(await ids.has(id, clock)).toBe(false);
    await ids.add(id, new Date(start + 1000), clock);
    expect(await ids.has(id, clock)).toBe(true);
    expect(await ids.has(`${id}y`, clock)).toBe(false);
    clock = new Date(start + 1000);
    expect(await ids.has(id, clock)).toBe(false);
  });
}

describe('receivedIdsReplayLedger over SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-received-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  receivedIdsLedgerSuite(async () => SqliteStore.open({ path: join(dir, 'bridge.db') }));
});

describePostgres('receivedIdsReplayLedger over PostgreSQL', () => {
  const schema = uniqueSchema();
  afterAll(() => dropSchema(schema));
  receivedIdsLedgerSuite(() => openTestPostgresStore(schema));
});

describe('receivableEventTypes', () => {
  it('lists the CAEP and RISC types and never SSF’s own, which transmitters send unasked (SSF 1.0 §8.1.4–5)', () => {
    const types = receivableEventTypes();
    expect(types).toContain('https://schemas.openid.net/secevent/caep/event-type/session-revoked');
    expect(types).toContain('https://schemas.openid.net/secevent/risc/event-type/account-disabled');
    expect(types.filter((t) => t.includes('/secevent/ssf/'))).toEqual([]);
  });
});
