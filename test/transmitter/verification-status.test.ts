/**
 * Verification events and the stream's status (SSF 1.0 §8.1.2, §8.1.4; checklist SSF-36, SSF-38,
 * SSF-47, TX-12; the OIDF modules openid-ssf-transmitter-paused-stream-holds-events and
 * openid-ssf-transmitter-disabled-stream-drops-events, which pause or disable a stream, ask for a
 * verification and fail on any SET pushed or polled then). A paused stream transmits no SET but
 * the stream-updated event announcing the transmitter's pause: it holds its verification events
 * and sends them in order once enabled. A disabled stream transmits and holds nothing: disabling
 * drops queued verification events, and a verification asked of it is accepted (204) and not made.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SetCodec } from '../../core/ssf/index.ts';
import { controlQueueId, verificationQueueId } from '../../core/transmitter/queues.ts';
import {
  ALICE,
  POLL,
  PUSH,
  SESSION_REVOKED,
  STREAM_UPDATED,
  VERIFICATION,
  call,
  decodeJwt,
  eventually,
  startBridge,
  startPushReceiver,
  type Bridge,
  type PushReceiver,
} from './harness.ts';

let bridge: Bridge;
let receiver: PushReceiver;

beforeAll(async () => {
  bridge = await startBridge({
    transmitter: { streams: { per_receiver: 'many', min_verification_interval: '0s' } },
  });
  receiver = await startPushReceiver();
});

afterAll(async () => {
  await receiver?.close();
  await bridge?.close();
});

const api = (method: string, path: string, body?: unknown) =>
  call(bridge.issuer, method, path, { token: ALICE.token, body });

let pushStreams = 0;
const paths = new Map<string, string>();

async function createStream(method: 'poll' | 'push'): Promise<string> {
  pushStreams += method === 'push' ? 1 : 0;
  const delivery =
    method === 'push'
      ? { method: PUSH, endpoint_url: `${receiver.url}/verification-${pushStreams}` }
      : { method: POLL };
  const res = await api('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED], delivery });
  expect(res.status).toBe(201);
  const streamId = res.json.stream_id as string;
  if (method === 'push') paths.set(streamId, `/push/verification-${pushStreams}`);
  return streamId;
}

async function setStatus(streamId: string, status: string): Promise<void> {
  expect((await api('POST', 'ssf/status', { stream_id: streamId, status })).json.status).toBe(status);
}

async function verify(streamId: string, state: string): Promise<number> {
  return (await api('POST', 'ssf/verify', { stream_id: streamId, state })).status;
}

/** "verification:<state>" or "stream-updated:<status>" for each SET payload. */
function label(payload: Record<string, any>): string {
  const events = payload.events as Record<string, any>;
  if (events[VERIFICATION]) return `verification:${events[VERIFICATION].state}`;
  if (events[STREAM_UPDATED]) return `stream-updated:${events[STREAM_UPDATED].status}`;
  return Object.keys(events)[0] as string;
}

/** Polls at once; returns the labels of the SETs, in the order given, and acknowledges them. */
async function pollLabels(streamId: string): Promise<string[]> {
  const res = await api('POST', `ssf/poll/${streamId}`, { maxEvents: 10, returnImmediately: true });
  expect(res.status).toBe(200);
  const sets = res.json.sets as Record<string, string>;
  if (Object.keys(sets).length > 0)
    await api('POST', `ssf/poll/${streamId}`, { maxEvents: 0, ack: Object.keys(sets) });
  return Object.values(sets).map((jwt) => label(decodeJwt(jwt).payload));
}

function pushedLabels(streamId: string): string[] {
  return receiver.received
    .filter((r) => r.path === paths.get(streamId))
    .map((r) => label(decodeJwt(r.body).payload));
}

/** How long the tests watch that nothing goes out (the old code pushed within milliseconds). */
const QUIET_MS = 1_000;
const quiet = () => new Promise((resolve) => setTimeout(resolve, QUIET_MS));

describe('paused stream: verification held (SSF §8.1.2 / SSF-36)', () => {
  it('SSF §8.1.2 / SSF-36, TX-12: a paused poll stream hands out no verification, not even one queued before the pause; {"sets":{}} until enabled, then both in order', async () => {
    const streamId = await createStream('poll');
    expect(await verify(streamId, 'before-pause')).toBe(204);
    await setStatus(streamId, 'paused');
    expect(await verify(streamId, 'while-paused')).toBe(204);

    const polled = await api('POST', `ssf/poll/${streamId}`, { maxEvents: 10, returnImmediately: true });
    expect(polled.json).toEqual({ sets: {}, moreAvailable: false });
    const counted = await api('POST', `ssf/poll/${streamId}`, { maxEvents: 0, returnImmediately: true });
    expect(counted.json).toEqual({ sets: {}, moreAvailable: false });

    await setStatus(streamId, 'enabled');
    expect(await pollLabels(streamId)).toEqual(['verification:before-pause', 'verification:while-paused']);
    expect(await pollLabels(streamId)).toEqual([]);
  });

  it('SSF §8.1.2 / SSF-36: a paused push stream pushes no verification requested while paused; once enabled, they are pushed in order', async () => {
    const streamId = await createStream('push');
    await setStatus(streamId, 'paused');
    expect(await verify(streamId, 'p1')).toBe(204);
    expect(await verify(streamId, 'p2')).toBe(204);
    await quiet();
    expect(pushedLabels(streamId)).toEqual([]);

    await setStatus(streamId, 'enabled');
    await eventually(() => pushedLabels(streamId).length === 2);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(pushedLabels(streamId)).toEqual(['verification:p1', 'verification:p2']);
  });

  it('SSF §8.1.2 / SSF-38: a transmitter-initiated pause of a poll stream is announced while a queued verification is held; on re-enabling the announcement comes first, then the verification', async () => {
    const streamId = await createStream('poll');
    expect(await verify(streamId, 'queued')).toBe(204);
    await bridge.tx.setStreamStatus(streamId, 'paused', 'maintenance window');
    expect(await pollLabels(streamId)).toEqual(['stream-updated:paused']);
    expect(await pollLabels(streamId)).toEqual([]);

    await bridge.tx.setStreamStatus(streamId, 'enabled');
    expect(await pollLabels(streamId)).toEqual(['stream-updated:enabled', 'verification:queued']);
  });

  it('SSF §8.1.2 / SSF-38: a transmitter-initiated pause of a push stream is pushed; a verification requested while paused is not, and follows the re-enabling announcement', async () => {
    const streamId = await createStream('push');
    await bridge.tx.setStreamStatus(streamId, 'paused', 'maintenance window');
    await eventually(() => pushedLabels(streamId).length === 1);
    expect(await verify(streamId, 'held')).toBe(204);
    await quiet();
    expect(pushedLabels(streamId)).toEqual(['stream-updated:paused']);

    await bridge.tx.setStreamStatus(streamId, 'enabled');
    await eventually(() => pushedLabels(streamId).length === 3);
    expect(pushedLabels(streamId)).toEqual([
      'stream-updated:paused',
      'stream-updated:enabled',
      'verification:held',
    ]);
  });
});

describe('disabled stream: verification dropped (SSF §8.1.2 / SSF-36, SSF §8.1.4 / SSF-47)', () => {
  it('SSF §8.1.2 / SSF-36: disabling drops a queued verification: nothing is polled while disabled, nor once enabled again', async () => {
    const streamId = await createStream('poll');
    expect(await verify(streamId, 'before-disable')).toBe(204);
    await setStatus(streamId, 'disabled');
    const polled = await api('POST', `ssf/poll/${streamId}`, { maxEvents: 10, returnImmediately: true });
    expect(polled.json).toEqual({ sets: {}, moreAvailable: false });
    await setStatus(streamId, 'enabled');
    expect(await pollLabels(streamId)).toEqual([]);
  });

  it('SSF §8.1.2 / SSF-38: a transmitter-initiated disable keeps its stream-updated announcement and drops the queued verification', async () => {
    const streamId = await createStream('poll');
    expect(await verify(streamId, 'before-disable')).toBe(204);
    await bridge.tx.setStreamStatus(streamId, 'disabled', 'operator');
    expect(await pollLabels(streamId)).toEqual(['stream-updated:disabled']);
    await bridge.tx.setStreamStatus(streamId, 'enabled');
    expect(await pollLabels(streamId)).toEqual(['stream-updated:enabled']);
  });

  it.each(['poll', 'push'] as const)(
    'SSF §8.1.4 / SSF-47, SSF-36: verification of a disabled %s stream is accepted (204) and dropped: nothing is sent then or once enabled',
    async (method) => {
      const streamId = await createStream(method);
      await setStatus(streamId, 'disabled');
      expect(await verify(streamId, 'while-disabled')).toBe(204);
      expect(await bridge.store.streams.pollQueueDepth(verificationQueueId(streamId))).toBe(0);
      if (method === 'poll') {
        expect(await pollLabels(streamId)).toEqual([]);
        await setStatus(streamId, 'enabled');
        expect(await pollLabels(streamId)).toEqual([]);
      } else {
        await quiet();
        await setStatus(streamId, 'enabled');
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(pushedLabels(streamId)).toEqual([]);
      }
    },
  );

  it('SSF §8.1.2 / SSF-36: a stream another instance disables while a verification is being queued keeps none', async () => {
    const streamId = await createStream('poll');
    const streams = bridge.store.streams;
    const enqueue = streams.enqueuePoll.bind(streams);
    // The other instance writes the status and purges the verification queue just before this
    // instance, which read the stream enabled, queues the SET.
    streams.enqueuePoll = async (queue, items, now) => {
      if (queue === verificationQueueId(streamId))
        await streams.update(streamId, { status: 'disabled' }, new Date());
      return enqueue(queue, items, now);
    };
    try {
      expect(await verify(streamId, 'raced')).toBe(204);
    } finally {
      streams.enqueuePoll = enqueue;
    }
    expect(await streams.pollQueueDepth(verificationQueueId(streamId))).toBe(0);
    await setStatus(streamId, 'enabled');
    expect(await pollLabels(streamId)).toEqual([]);
  });

  it('SSF §8.1.4 / SSF-47, TX-08: min_verification_interval applies to a disabled stream as to an enabled one (429 with Retry-After)', async () => {
    const limited = await startBridge({ transmitter: { streams: { min_verification_interval: '30s' } } });
    try {
      const created = await call(limited.issuer, 'POST', 'ssf/streams', { token: ALICE.token, body: {} });
      const streamId = created.json.stream_id as string;
      await call(limited.issuer, 'POST', 'ssf/status', {
        token: ALICE.token,
        body: { stream_id: streamId, status: 'disabled' },
      });
      const ask = () =>
        call(limited.issuer, 'POST', 'ssf/verify', { token: ALICE.token, body: { stream_id: streamId } });
      expect((await ask()).status).toBe(204);
      const second = await ask();
      expect(second.status).toBe(429);
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(25);
    } finally {
      await limited.close();
    }
  });
});

describe('verification SETs an earlier version queued in the control queue (SSF §8.1.2 / SSF-36)', () => {
  async function queueLegacyVerification(streamId: string, state: string): Promise<void> {
    const codec = new SetCodec({ issuer: bridge.issuer, keys: bridge.keys });
    const minted = await codec.mint({
      event: {
        type: VERIFICATION,
        subject: { format: 'opaque', id: streamId },
        claims: { state },
        sourceRecordId: `legacy-${state}`,
      },
      sourceInstanceId: '@transmitter',
      destination: { id: `stream:${streamId}`, audience: ALICE.client_id },
    });
    await bridge.store.streams.enqueuePoll(
      controlQueueId(streamId),
      [{ jti: minted.jti, eventId: minted.jti, setJwt: minted.jwt }],
      new Date(),
    );
  }

  it('SSF §8.1.2 / SSF-36: one found in the control queue of a paused stream is held, and sent once enabled', async () => {
    const streamId = await createStream('poll');
    await setStatus(streamId, 'paused');
    await queueLegacyVerification(streamId, 'legacy-paused');
    expect(await pollLabels(streamId)).toEqual([]);
    await setStatus(streamId, 'enabled');
    expect(await pollLabels(streamId)).toEqual(['verification:legacy-paused']);
  });

  it('SSF §8.1.2 / SSF-36: one found in the control queue of a disabled stream is dropped; the stream-updated beside it is sent', async () => {
    const streamId = await createStream('poll');
    await queueLegacyVerification(streamId, 'legacy-disabled');
    await bridge.tx.setStreamStatus(streamId, 'disabled', 'operator');
    expect(await pollLabels(streamId)).toEqual(['stream-updated:disabled']);
    await setStatus(streamId, 'enabled');
    expect(await pollLabels(streamId)).toEqual([]);
  });
});
