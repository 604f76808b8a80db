/**
 * SSF 1.0 §8.1.2 (checklist SSF-36): a paused stream MUST NOT transmit; it holds events and
 * sends them once enabled, in the order they were generated. The engine holds a paused stream's
 * deliveries by this instance's routing index, which learns of a pause made at another instance
 * only when it syncs; the stream's own delivery reads the stored status, so a SET reaching it
 * while the stream is paused stays in the outbox (SSF-38: no event SET follows the "paused"
 * stream-updated event).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SetCodec } from '../../core/ssf/index.ts';
import type { SignedSet } from '../../core/plugin-api/types.ts';
import {
  ALICE,
  POLL,
  PUSH,
  SESSION_REVOKED,
  STREAM_UPDATED,
  call,
  decodeJwt,
  eventually,
  sessionRevoked,
  startBridge,
  startPushReceiver,
  type Bridge,
  type PushReceiver,
} from './harness.ts';

let receiver: PushReceiver;

beforeAll(async () => {
  receiver = await startPushReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

async function createStream(bridge: Bridge, delivery: Record<string, unknown>): Promise<string> {
  const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
    token: ALICE.token,
    body: { events_requested: [SESSION_REVOKED], delivery },
  });
  expect(created.status).toBe(201);
  return created.json.stream_id as string;
}

describe('SSF-36: deliver() on a stream paused in the store', () => {
  let bridge: Bridge;

  beforeAll(async () => {
    bridge = await startBridge({ noEngine: true, transmitter: { streams: { per_receiver: 'many' } } });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  async function signed(streamId: string): Promise<SignedSet> {
    const codec = new SetCodec({ issuer: bridge.issuer, keys: bridge.keys });
    const minted = await codec.mint({
      event: sessionRevoked('paused@example.com'),
      sourceInstanceId: 'hr',
      destination: { id: `stream:${streamId}`, audience: ALICE.client_id },
    });
    return { ...minted, attempt: 0 } as SignedSet;
  }

  it.each([
    ['push', () => ({ method: PUSH, endpoint_url: `${receiver.url}/paused` })],
    ['poll', () => ({ method: POLL })],
  ])(
    'SSF-36: a %s stream paused at another instance is not transmitted to: the SET stays in the outbox (retryable)',
    async (_method, delivery) => {
      const streamId = await createStream(bridge, delivery());
      receiver.received.length = 0;
      // Another instance pauses it: the store says paused, this instance's index does not know yet.
      await bridge.store.streams.update(streamId, { status: 'paused' }, new Date());
      const set = await signed(streamId);
      await expect(
        bridge.tx.delivery.deliver(streamId, set, new AbortController().signal),
      ).rejects.toMatchObject({ errorClass: 'retryable', code: 'SSF_ERR_TRANSMITTER_STREAM_PAUSED' });
      expect(receiver.received).toHaveLength(0);
      expect(await bridge.store.streams.pollQueueDepth(streamId)).toBe(0);
    },
  );
});

describe('SSF-36, SSF-38: a stream paused and resumed at another instance sharing the store', () => {
  let a: Bridge;
  let b: Bridge;

  beforeAll(async () => {
    const transmitter = { streams: { per_receiver: 'many' as const } };
    a = await startBridge({ transmitter, instanceId: 'a' });
    b = await startBridge({ transmitter, instanceId: 'b', noEngine: true, store: a.store });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  it('SSF-36, SSF-38: holds the events while paused (none follows the "paused" announcement) and sends them in order once enabled', async () => {
    const path = '/push/paused-elsewhere';
    const streamId = await createStream(a, {
      method: PUSH,
      endpoint_url: `${receiver.url.replace(/\/push$/, '')}${path}`,
    });
    const pushed = () =>
      receiver.received.filter((r) => r.path === path).map((r) => decodeJwt(r.body).payload);
    const label = (p: Record<string, any>) =>
      p.events[STREAM_UPDATED]
        ? `stream-updated:${p.events[STREAM_UPDATED].status}`
        : (p.events[SESSION_REVOKED].reason_admin.en as string);
    await eventually(() => b.tx.destinations.get(`stream:${streamId}`) !== undefined);

    await b.tx.setStreamStatus(streamId, 'paused', 'maintenance');
    // Instance A routes and delivers at once, before its index may have heard of the pause.
    // Events about one subject: held in the order they were generated (SSF-36).
    await a.ingest(
      [1, 2, 3].map((n) => sessionRevoked('held@example.com', { claims: { reason_admin: { en: `n${n}` } } })),
    );
    await eventually(() => pushed().some((p) => p.events[STREAM_UPDATED]));
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(pushed().map(label)).toEqual(['stream-updated:paused']);
    // Held in the outbox (the paused hold counts them).
    const backlog = await a.store.deliveries.backlog();
    expect(backlog.get(`stream:${streamId}`)).toBe(3);

    await b.tx.setStreamStatus(streamId, 'enabled');
    await eventually(() => pushed().length === 5, 10_000);
    expect(pushed().map(label)).toEqual([
      'stream-updated:paused',
      'stream-updated:enabled',
      'n1',
      'n2',
      'n3',
    ]);
  });
});
