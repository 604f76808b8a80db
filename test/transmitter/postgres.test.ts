/**
 * The transmitter on PostgreSQL, scaled out: two bridges share one database. Streams, subjects,
 * status and poll queues live in the store, so either instance serves any stream; each picks up
 * the other's changes (routing index sync) and its long polls see SETs the other queued.
 * Skipped with a notice when no PostgreSQL answers, except in CI where it is required.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../../core/storage/testing/postgres.ts';
import type { PostgresStore } from '../../core/storage/postgres/store.ts';
import {
  ALICE,
  POLL,
  SESSION_REVOKED,
  call,
  decodeJwt,
  eventually,
  sessionRevoked,
  startBridge,
  type Bridge,
} from './harness.ts';

describePostgres('transmitter on PostgreSQL, two instances', () => {
  const schema = uniqueSchema();
  let store: PostgresStore;
  let a: Bridge;
  let b: Bridge;

  beforeAll(async () => {
    store = await openTestPostgresStore(schema);
    const transmitter = {
      streams: { per_receiver: 'many' as const, default_subjects: 'NONE' as const },
      poll: { store_check_interval: '100ms', long_poll_max_wait: '5s' },
      sync_interval: '100ms',
    };
    a = await startBridge({ store, transmitter, instanceId: 'instance-a' });
    // B runs no delivery engine, so every SET it serves was queued by A.
    b = await startBridge({ store, transmitter, instanceId: 'instance-b', noEngine: true });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await store?.close();
    await dropSchema(schema);
  });

  const on =
    (bridge: Bridge) => (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
      call(bridge.issuer, method, path, { token: ALICE.token, body, ...(query ? { query } : {}) });

  it('text PostgreSQL cannot hold (U+0000, half a surrogate pair) is a 400 naming where, never a 500', async () => {
    const created = await on(a)('POST', 'ssf/streams', {
      description: 'a\u0000b',
      delivery: { method: POLL },
    });
    expect(created.status).toBe(400);
    expect(created.json).toMatchObject({
      err: 'invalid_request',
      description: 'description holds U+0000 or half of a surrogate pair',
    });
    const subject = await on(a)('POST', 'ssf/subjects/add', {
      stream_id: 'x',
      subject: { format: 'email', email: 'a\ud800@example.com' },
    });
    expect(subject.status).toBe(400);
    expect(subject.json.description).toBe('subject.email holds U+0000 or half of a surrogate pair');
    const queried = await on(a)('GET', 'ssf/streams', undefined, { stream_id: 'x\u0000' });
    expect(queried.status).toBe(400);
    expect(queried.json.description).toBe('query.stream_id holds U+0000 or half of a surrogate pair');
    const polled = await on(a)('POST', 'ssf/poll/x%00', { returnImmediately: true });
    expect(polled.status).toBe(400);
    expect(polled.json.description).toBe('stream_id holds U+0000 or half of a surrogate pair');
  });

  it('a stream created on one instance is read, changed and polled on the other (TX-04 persistence)', async () => {
    const created = await on(a)('POST', 'ssf/streams', {
      events_requested: [SESSION_REVOKED],
      delivery: { method: POLL },
    });
    expect(created.status).toBe(201);
    const id = created.json.stream_id as string;
    const onB = await on(b)('GET', 'ssf/streams', undefined, { stream_id: id });
    expect(onB.json.stream_id).toBe(id);
    expect((await on(b)('PATCH', 'ssf/streams', { stream_id: id, description: 'from b' })).status).toBe(200);
    expect((await on(a)('GET', 'ssf/streams', undefined, { stream_id: id })).json.description).toBe('from b');

    // A subject added on B reaches A's routing index; A accepts and delivers, B serves the poll.
    await on(b)('POST', 'ssf/subjects/add', {
      stream_id: id,
      subject: { format: 'email', email: 'pg@example.com' },
    });
    await on(b)('POST', 'ssf/verify', { stream_id: id, state: 'pg' });
    const verification = await on(b)('POST', `ssf/poll/${id}`, { returnImmediately: true });
    expect(
      Object.values(verification.json.sets as Record<string, string>).map((j) => decodeJwt(j).payload.events),
    ).toEqual([{ 'https://schemas.openid.net/secevent/ssf/event-type/verification': { state: 'pg' } }]);
    await on(b)('POST', `ssf/poll/${id}`, {
      maxEvents: 0,
      ack: Object.keys(verification.json.sets as object),
    });

    // A long poll on B returns soon after A queues a SET (B is not told; it checks the store).
    const pending = on(b)('POST', `ssf/poll/${id}`, { maxEvents: 10, returnImmediately: false });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const started = Date.now();
    await eventually(
      () =>
        a.tx.routeEvent({ type: SESSION_REVOKED, subject: { format: 'email', email: 'pg@example.com' } })
          .length > 0,
    );
    await a.ingest([sessionRevoked('pg@example.com')]);
    const answer = await pending;
    expect(Date.now() - started).toBeLessThan(2_000);
    const jwts = Object.values(answer.json.sets as Record<string, string>);
    expect(jwts.map((j) => decodeJwt(j).payload.sub_id)).toEqual([
      { format: 'email', email: 'pg@example.com' },
    ]);
  });

  it('SSF §8.1.2 / SSF-36: a verification asked on one instance of a stream paused on the other is held on both, and served once enabled; one queued before a disable is dropped', async () => {
    const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
    const create = async () =>
      (
        await on(a)('POST', 'ssf/streams', {
          events_requested: [SESSION_REVOKED],
          delivery: { method: POLL },
        })
      ).json.stream_id as string;
    const states = async (bridge: Bridge, id: string) => {
      const res = await on(bridge)('POST', `ssf/poll/${id}`, { returnImmediately: true });
      expect(res.status).toBe(200);
      return Object.values(res.json.sets as Record<string, string>).map(
        (j) => decodeJwt(j).payload.events[VERIFICATION]?.state as string,
      );
    };
    const held = await create();
    expect((await on(a)('POST', 'ssf/status', { stream_id: held, status: 'paused' })).status).toBe(200);
    expect((await on(b)('POST', 'ssf/verify', { stream_id: held, state: 'held' })).status).toBe(204);
    expect(await states(a, held)).toEqual([]);
    expect(await states(b, held)).toEqual([]);
    await on(b)('POST', 'ssf/status', { stream_id: held, status: 'enabled' });
    expect(await states(a, held)).toEqual(['held']);

    const dropped = await create();
    expect((await on(a)('POST', 'ssf/verify', { stream_id: dropped, state: 'dropped' })).status).toBe(204);
    await on(b)('POST', 'ssf/status', { stream_id: dropped, status: 'disabled' });
    expect(await states(a, dropped)).toEqual([]);
    expect((await on(a)('POST', 'ssf/verify', { stream_id: dropped, state: 'disabled' })).status).toBe(204);
    await on(a)('POST', 'ssf/status', { stream_id: dropped, status: 'enabled' });
    expect(await states(b, dropped)).toEqual([]);
  });

  it("a pause on one instance holds the other's deliveries; status and routing follow within the sync interval", async () => {
    const id = (await on(a)('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED] })).json
      .stream_id as string;
    await on(a)('POST', 'ssf/subjects/add', {
      stream_id: id,
      subject: { format: 'email', email: 'held@example.com' },
    });
    await eventually(() => b.tx.destinations.get(`stream:${id}`) !== undefined);
    expect((await on(b)('POST', 'ssf/status', { stream_id: id, status: 'paused' })).json.status).toBe(
      'paused',
    );
    await eventually(async () => (await a.tx.destinations.get(`stream:${id}`)?.isPaused?.()) === true);
    await a.ingest([sessionRevoked('held@example.com')]);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await store.streams.pollQueueDepth(id)).toBe(0);
    expect((await store.deliveries.backlog()).get(`stream:${id}`)).toBe(1);
    await on(b)('POST', 'ssf/status', { stream_id: id, status: 'enabled' });
    await eventually(async () => (await store.streams.pollQueueDepth(id)) === 1);
    // Deleting on one instance removes the destination on the other.
    await on(b)('DELETE', 'ssf/streams', undefined, { stream_id: id });
    await eventually(() => a.tx.destinations.get(`stream:${id}`) === undefined);
  });
  it("an instance that changes a stream itself still picks up another's change made just before (TX-04 persistence)", async () => {
    const transmitter = {
      streams: { per_receiver: 'many' as const, default_subjects: 'NONE' as const },
      sync_interval: '1s',
    };
    const c = await startBridge({ store, transmitter, instanceId: 'instance-c', noEngine: true });
    const d = await startBridge({ store, transmitter, instanceId: 'instance-d', noEngine: true });
    try {
      const y = (await on(d)('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED] })).json
        .stream_id as string;
      await eventually(() => c.tx.destinations.get(`stream:${y}`) !== undefined);
      // D adds a subject to Y, and C changes a stream of its own before its next sync round.
      await on(d)('POST', 'ssf/subjects/add', {
        stream_id: y,
        subject: { format: 'email', email: 'raced@example.com' },
      });
      await on(c)('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED] });
      const routed = () =>
        c.tx.routeEvent({ type: SESSION_REVOKED, subject: { format: 'email', email: 'raced@example.com' } });
      await eventually(() => routed().includes(`stream:${y}`), 3_000);
    } finally {
      await c.close();
      await d.close();
    }
  });
});
