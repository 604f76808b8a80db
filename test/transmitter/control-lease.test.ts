/**
 * A stream switched from poll to push has its poll backlog pushed by one instance at a time,
 * under a lease (SSF-31, TX-05). A backlog that takes longer than the lease keeps it renewed:
 * another instance taking it over would push the same SETs again, out of order.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ManualClock } from '../../core/storage/testing/fixtures.ts';
import {
  ALICE,
  POLL,
  PUSH,
  SESSION_REVOKED,
  call,
  eventually,
  sessionRevoked,
  startBridge,
  type Bridge,
} from './harness.ts';

const LEASE_MS = 60_000;
const BACKLOG = 25;

let bridge: Bridge;
let receiver: Server;
let receiverUrl = '';
const clock = new ManualClock(Date.now());
const pushes: number[] = [];
/** Whether another instance could take the drain's lease at the 25th push. */
let takenOver: boolean | undefined;
let streamId = '';

beforeAll(async () => {
  bridge = await startBridge({
    clock,
    transmitter: { streams: { per_receiver: 'many', default_subjects: 'NONE' } },
  });
  receiver = createServer((req, res) => {
    req.resume();
    req.on('end', async () => {
      // Each push takes three seconds by the bridge's clock: the backlog outlasts one lease.
      pushes.push(clock.advance(3_000).getTime());
      if (pushes.length === BACKLOG) {
        const lease = `transmitter:control:${streamId}`;
        takenOver = await bridge.store.leases.tryAcquire(lease, 'instance-b', LEASE_MS, clock.now());
        if (takenOver) await bridge.store.leases.release(lease, 'instance-b');
      }
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const address = receiver.address();
  receiverUrl = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/push`;
});

afterAll(async () => {
  await bridge?.close();
  await new Promise((resolve) => receiver?.close(resolve));
});

const api = (method: string, path: string, body?: unknown) =>
  call(bridge.issuer, method, path, { token: ALICE.token, body });

it('SSF-31, TX-05: a poll backlog pushed after the switch to push keeps its lease renewed until it is done', async () => {
  const email = 'backlog@example.com';
  const created = await api('POST', 'ssf/streams', {
    events_requested: [SESSION_REVOKED],
    delivery: { method: POLL },
  });
  streamId = created.json.stream_id as string;
  await api('POST', 'ssf/subjects/add', { stream_id: streamId, subject: { format: 'email', email } });
  for (let i = 0; i < BACKLOG; i++) await bridge.ingest([sessionRevoked(email)]);
  await eventually(async () => (await bridge.store.streams.pollQueueDepth(streamId)) === BACKLOG);

  const patched = await api('PATCH', 'ssf/streams', {
    stream_id: streamId,
    delivery: { method: PUSH, endpoint_url: receiverUrl },
  });
  expect(patched.status).toBe(200);
  await eventually(async () => (await bridge.store.streams.pollQueueDepth(streamId)) === 0, 15_000);
  expect(pushes).toHaveLength(BACKLOG);
  // 75 s of pushing by then, past the 60 s the drain's first lease lasted.
  expect(pushes.at(-1)! - pushes[0]!).toBeGreaterThan(LEASE_MS);
  expect(takenOver).toBe(false);
});
