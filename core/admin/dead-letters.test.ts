import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { capturingLogger } from '../../test/helpers/capture.ts';
import { StatusBoard } from '../runtime/status.ts';
import type { KeyStore } from '../ssf/index.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import { newEvent } from '../storage/testing/fixtures.ts';
import type { LeasedDelivery } from '../storage/types.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import type { Transmitter } from '../transmitter/index.ts';
import { adminConfigSchema } from './config.ts';
import { registerAdmin } from './routes.ts';

// Paging the dead letters while letters die: in process, where the test decides when each dies.

const TOKEN = 'write-token-0123456789abcdef';
const HOUR = 3_600_000;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-admin-dlq-'));
  const store = SqliteStore.open({ path: join(dir, 'bridge.db') });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const app = Fastify();
  const clock = { now: () => new Date() };
  registerAdmin(app, {
    config: adminConfigSchema.parse({ tokens: [{ name: 'operator', role: 'write', token: TOKEN }] }),
    store,
    keys: { list: () => [], rotatable: false } as unknown as KeyStore,
    transmitter: {} as Transmitter,
    status: new StatusBoard(clock),
    metrics: new MetricsRegistry(),
    clock,
    logger: capturingLogger().logger,
    instances: [],
    subjectAliases: [],
    issuer: () => 'http://127.0.0.1',
    engine: () => undefined,
  });
  await app.ready();
  cleanups.push(() => app.close());
  const headers = { authorization: `Bearer ${TOKEN}` };
  const get = async (query: string) => {
    const res = await app.inject({ method: 'GET', url: `/admin/dead-letters${query}`, headers });
    return { status: res.statusCode, body: res.json() };
  };
  const post = async (action: 'replay' | 'purge', payload: unknown) =>
    (
      await app.inject({
        method: 'POST',
        url: `/admin/dead-letters/${action}`,
        headers: { ...headers, 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      })
    ).json();
  /** Accepts `count` events for `destination` and leases their deliveries (oldest first). */
  const leaseNew = async (count: number, destination = 'dest-a') => {
    const now = new Date();
    const items = Array.from({ length: count }, () => newEvent({ destinations: [destination] }));
    await store.accept({ now, events: items, dedupeExpiresAt: new Date(now.getTime() + HOUR) });
    const leased = await store.deliveries.lease({
      destinationId: destination,
      owner: 'w',
      limit: count,
      now,
      leaseMs: 60_000,
    });
    expect(leased).toHaveLength(count);
    return leased;
  };
  const die = (l: LeasedDelivery) =>
    store.deliveries.complete(
      [
        {
          kind: 'dead',
          id: l.id,
          leaseToken: l.leaseToken,
          error: { class: 'permanent', code: 'BAD', message: 'no' },
          setJwt: 'jwt',
        },
      ],
      new Date(),
    );
  /** Walks every page of `query`, calling `between` after each, and returns the ids listed. */
  const walk = async (query: string, between: (page: number) => Promise<void> = async () => {}) => {
    const ids: number[] = [];
    let cursor: string | null = null;
    for (let page = 1; ; page++) {
      const res = await get(`${query}${cursor === null ? '' : `&cursor=${cursor}`}`);
      expect(res.status).toBe(200);
      ids.push(...res.body.items.map((l: { id: number }) => l.id));
      await between(page);
      cursor = res.body.next_cursor;
      if (cursor === null) return ids;
    }
  };
  return { store, get, post, leaseNew, die, walk };
}

describe('GET /admin/dead-letters paging', () => {
  it('rule: a letter of an older delivery that dies while an operator pages comes on a later page, not behind the cursor', async () => {
    const { get, leaseNew, die, walk } = await setup();
    const [older, b, c] = await leaseNew(3);
    await die(b!);
    await die(c!);
    // The oldest delivery was still retrying while page 1 was read; it dies then.
    const seen = await walk('?limit=1', async (page) => {
      if (page === 1) await die(older!);
    });
    expect(seen).toEqual([b!.id, c!.id, older!.id]);
    expect((await get('?limit=500')).body.total).toBe(3);
  });

  it('rule: a letter replayed and dead again while an operator pages is listed again after the cursor', async () => {
    const { store, post, leaseNew, die, walk } = await setup();
    const [a, b] = await leaseNew(2);
    await die(a!);
    await die(b!);
    const seen = await walk('?limit=1', async (page) => {
      if (page !== 1) return;
      expect(await post('replay', { ids: [a!.id] })).toEqual({ replayed: 1 });
      const [again] = await store.deliveries.lease({
        destinationId: 'dest-a',
        owner: 'w',
        limit: 1,
        now: new Date(),
        leaseMs: 60_000,
      });
      await die(again!);
    });
    expect(seen).toEqual([a!.id, b!.id, a!.id]);
  });

  it('pages with the filters, and a replay or purge with the same filter takes the letters a walk listed', async () => {
    const { get, post, leaseNew, die, walk } = await setup();
    const inA = await leaseNew(3, 'dest-a');
    const inB = await leaseNew(2, 'dest-b');
    for (const l of [inA[2]!, inB[0]!, inA[0]!, inB[1]!, inA[1]!]) await die(l);
    expect(await walk('?destination=dest-a&limit=2')).toEqual([inA[2]!.id, inA[0]!.id, inA[1]!.id]);
    expect(await walk('?destination=dest-b&limit=1')).toEqual([inB[0]!.id, inB[1]!.id]);
    expect(await post('purge', { destination: 'dest-b' })).toEqual({ purged: 2 });
    expect(await post('replay', { destination: 'dest-a' })).toEqual({ replayed: 3 });
    expect((await get('')).body).toEqual({ items: [], next_cursor: null, total: 0 });
  });

  it('refuses a letter id as the cursor (dead letters no longer page by id) and cursors of other lists with 400', async () => {
    const { get, leaseNew, die } = await setup();
    const [a, b] = await leaseNew(2);
    await die(a!);
    await die(b!);
    const cursor = (position: unknown) => Buffer.from(JSON.stringify(position)).toString('base64url');
    for (const bad of [a!.id, [1, 'x'], { dead: -1 }, { dead: 1.5 }, { dead: 1, id: 2 }, 'x']) {
      expect([bad, await get(`?cursor=${cursor(bad)}`)]).toEqual([
        bad,
        {
          status: 400,
          body: {
            error: 'invalid_request',
            message: 'cursor is not valid for this list; start again without it',
          },
        },
      ]);
    }
    const first = await get('?limit=1');
    expect(first.body.next_cursor).toEqual(expect.any(String));
    expect((await get(`?limit=1&cursor=${first.body.next_cursor}`)).body.items).toMatchObject([
      { id: b!.id },
    ]);
  });
});
