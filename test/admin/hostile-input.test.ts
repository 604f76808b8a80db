/**
 * Admin requests whose cursors, ids or text no store column can hold: each is a 400 or a 404
 * with the reason, on SQLite and on PostgreSQL alike (PostgreSQL refuses fractions and numbers
 * beyond BIGINT, and text holding U+0000), and a refused write is still audited.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  POSTGRES_TEST_URL,
  describePostgres,
  dropSchema,
  uniqueSchema,
} from '../../core/storage/testing/postgres.ts';
import { READ_TOKEN, WRITE_TOKEN, call, eventually, ingest, startBridge, type Running } from './harness.ts';

const cursor = (position: unknown) => Buffer.from(JSON.stringify(position)).toString('base64url');

function hostileInput(storage: () => string) {
  let b: Running;
  const admin = (path: string) => call(b.url, `/admin${path}`, { token: READ_TOKEN });
  const write = (path: string, body: unknown, method = 'POST') =>
    call(b.url, `/admin${path}`, { token: WRITE_TOKEN, body, method });

  beforeAll(async () => {
    b = await startBridge(storage());
    const [id] = await ingest(b.url, [
      { type: 'caep.session-revoked', subject: { format: 'email', email: 'hostile@example.com' } },
    ]);
    await eventually(
      () => admin(`/deliveries?event=${id}`),
      (r) => r.body.items.length > 0,
    );
  });
  afterAll(() => b?.stop());

  it('a cursor that is no row id or position a store holds is a 400, never a 500', async () => {
    for (const path of [
      `/deliveries?cursor=${cursor(1.5)}`,
      `/dead-letters?cursor=${cursor(1e300)}`,
      `/audit?cursor=${cursor(-1.5)}`,
      `/events?cursor=${cursor([1e20, 'x'])}`,
      `/streams?cursor=${cursor([1e20, 'x'])}`,
      `/timeline?subject=hostile@example.com&cursor=${cursor([1.5, 'x'])}`,
      `/events?cursor=${cursor([0, 'a\u0000'])}`,
    ]) {
      const res = await admin(path);
      expect(res.status, path).toBe(400);
      expect(res.body.message, path).toBe('cursor is not valid for this list; start again without it');
    }
    // A cursor the bridge handed out still works.
    const first = await admin('/deliveries?limit=1');
    expect(first.status).toBe(200);
  });

  it('a row id that is not a positive whole number in range is a 404', async () => {
    for (const path of [
      '/dead-letters/abc',
      '/dead-letters/1e400',
      '/dead-letters/99999999999999999999',
      '/deliveries/99999999999999999999',
      '/deliveries/1.0',
      '/deliveries/-1',
    ]) {
      const res = await admin(path);
      expect(res.status, path).toBe(404);
      expect(res.body.error, path).toBe('not_found');
    }
  });

  it('U+0000 or half a surrogate pair in a path, a query or a JSON body is a 400 naming where; a refused write is audited', async () => {
    for (const [path, where] of [
      ['/events/%00', 'params.id'],
      ['/events?instance=a%00', 'query.instance'],
      ['/deliveries?destination=%00', 'query.destination'],
      ['/audit?actor=%00', 'query.actor'],
      ['/streams/%00/subjects', 'params.id'],
    ]) {
      const res = await admin(path as string);
      expect(res.status, path).toBe(400);
      expect(res.body.message, path).toBe(`${where} holds U+0000 or half of a surrogate pair`);
    }
    const half = await write('/dead-letters/replay', { type: 'caep.session-revoked\ud800' });
    expect(half.status).toBe(400);
    expect(half.body.message).toBe('body.type holds U+0000 or half of a surrogate pair');
    expect((await write('/streams/%00/status', { status: 'paused' })).status).toBe(400);
    expect((await write('/dead-letters/purge', { destination: 'a\u0000' })).status).toBe(400);
    const [purge, status, replay] = (await admin('/audit?actor=operator&limit=3')).body.items;
    expect(replay).toMatchObject({
      action: 'dead_letters.replay',
      detail: { outcome: 'refused', status: 400 },
    });
    expect(status).toMatchObject({
      action: 'streams.status',
      target: '\uFFFD',
      detail: { outcome: 'refused', status: 400 },
    });
    expect(purge).toMatchObject({
      action: 'dead_letters.purge',
      detail: { outcome: 'refused', status: 400 },
    });
  });
}

describe('admin API, hostile input, SQLite', () => {
  hostileInput(() => '');
});

describePostgres('admin API, hostile input, PostgreSQL', () => {
  const schema = uniqueSchema();
  // One bridge on the database: its keys may live in its data directory.
  hostileInput(
    () =>
      `storage:\n  driver: postgres\n  url: ${POSTGRES_TEST_URL}\n  schema: ${schema}\nkeys:\n  single_instance: true\n`,
  );
  afterAll(() => dropSchema(schema));
});
