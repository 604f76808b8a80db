/**
 * Stream status (SSF 1.0 §8.1.2, checklist SSF-36…SSF-39, TX-07): paused streams hold events and
 * release them in order, disabled streams drop them, the hold is bounded, and every change the
 * transmitter makes is announced with a stream-updated SET.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
  sessionRevoked,
  startBridge,
  startPushReceiver,
  type Bridge,
  type PushReceiver,
} from './harness.ts';

let bridge: Bridge;
let receiver: PushReceiver;

const HOLD_LIMIT = 3;

beforeAll(async () => {
  bridge = await startBridge({
    transmitter: {
      streams: {
        per_receiver: 'many',
        paused_hold_limit: HOLD_LIMIT,
        verification_failure_action: 'disable',
      },
    },
  });
  receiver = await startPushReceiver();
});

afterAll(async () => {
  await receiver?.close();
  await bridge?.close();
});

const api = (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
  call(bridge.issuer, method, path, { token: ALICE.token, body, ...(query ? { query } : {}) });

let streams = 0;

/** A push stream with its own path on the receiver, so its SETs can be told apart. */
async function pushStream(): Promise<string> {
  streams += 1;
  const res = await api('POST', 'ssf/streams', {
    events_requested: [SESSION_REVOKED],
    delivery: { method: PUSH, endpoint_url: `${receiver.url}/${streams}` },
  });
  expect(res.status).toBe(201);
  paths.set(res.json.stream_id as string, `/push/${streams}`);
  return res.json.stream_id as string;
}

const paths = new Map<string, string>();

async function pollStream(): Promise<string> {
  const res = await api('POST', 'ssf/streams', {
    events_requested: [SESSION_REVOKED],
    delivery: { method: POLL },
  });
  expect(res.status).toBe(201);
  return res.json.stream_id as string;
}

const setStatus = (streamId: string, status: string) =>
  api('POST', 'ssf/status', { stream_id: streamId, status });

/** The payloads of the SETs pushed to a stream's endpoint, in arrival order. */
function pushedFor(streamId: string): Array<Record<string, any>> {
  return receiver.received
    .filter((r) => r.path === paths.get(streamId))
    .map((r) => decodeJwt(r.body).payload);
}

function emailsOf(payloads: Array<Record<string, any>>, prefix: string): string[] {
  return payloads
    .filter((p) => p.events[SESSION_REVOKED] && String(p.sub_id.email).startsWith(prefix))
    .map((p) => p.events[SESSION_REVOKED].reason_admin.en as string);
}

/** Events about one subject, numbered in the order they are generated. */
function numbered(email: string, from: number, to: number) {
  const out = [];
  for (let i = from; i <= to; i++)
    out.push(sessionRevoked(email, { claims: { reason_admin: { en: `n${i}` } } }));
  return out;
}

async function poll(streamId: string, body: Record<string, unknown>) {
  return (await api('POST', `ssf/poll/${streamId}`, body)).json as {
    sets: Record<string, string>;
    moreAvailable: boolean;
  };
}

describe('stream status', () => {
  it('SSF-36: a paused push stream holds events and releases them in generation order when enabled', async () => {
    receiver.received.length = 0;
    const streamId = await pushStream();
    await bridge.ingest(numbered('order@example.com', 1, 2));
    await eventually(() => emailsOf(pushedFor(streamId), 'order@').length === 2);

    expect((await setStatus(streamId, 'paused')).json.status).toBe('paused');
    await bridge.ingest(numbered('order@example.com', 3, 5));
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(emailsOf(pushedFor(streamId), 'order@')).toEqual(['n1', 'n2']);
    expect((await bridge.store.deliveries.backlog()).get(`stream:${streamId}`)).toBe(3);
    // Receiver-initiated: no stream-updated event (SSF-38 is about transmitter-initiated changes).
    expect(pushedFor(streamId).some((p) => p.events[STREAM_UPDATED])).toBe(false);

    await setStatus(streamId, 'enabled');
    await eventually(() => emailsOf(pushedFor(streamId), 'order@').length === 5);
    expect(emailsOf(pushedFor(streamId), 'order@')).toEqual(['n1', 'n2', 'n3', 'n4', 'n5']);
  });

  it('SSF-39: the hold of a paused stream is bounded by paused_hold_limit; later events are dropped', async () => {
    receiver.received.length = 0;
    const streamId = await pushStream();
    await setStatus(streamId, 'paused');
    await bridge.ingest(numbered('bounded@example.com', 1, HOLD_LIMIT + 2));
    expect((await bridge.store.deliveries.backlog()).get(`stream:${streamId}`)).toBe(HOLD_LIMIT);
    const metrics = await call(bridge.origin, 'GET', '/metrics');
    expect(metrics.text).toMatch(/ssf_bridge_transmitter_events_dropped_total\{reason="hold_limit"\} [1-9]/);
    await setStatus(streamId, 'enabled');
    await eventually(() => emailsOf(pushedFor(streamId), 'bounded@').length === HOLD_LIMIT);
    expect(emailsOf(pushedFor(streamId), 'bounded@')).toEqual(['n1', 'n2', 'n3']);
  });

  it('SSF-36: a disabled stream drops events and does not release them when enabled again', async () => {
    receiver.received.length = 0;
    const streamId = await pushStream();
    await setStatus(streamId, 'paused');
    await bridge.ingest(numbered('dropped@example.com', 1, 2));
    const droppedOnDisable = async () =>
      Number(
        /ssf_bridge_transmitter_events_dropped_total\{reason="stream_disabled"\} (\d+)/.exec(
          await bridge.metricsText(),
        )?.[1] ?? 0,
      );
    const before = await droppedOnDisable();
    await setStatus(streamId, 'disabled');
    // What the stream held is dropped, and counted.
    expect((await droppedOnDisable()) - before).toBe(2);
    await bridge.ingest(numbered('dropped@example.com', 3, 4));
    expect((await bridge.store.deliveries.backlog()).get(`stream:${streamId}`) ?? 0).toBe(0);
    await setStatus(streamId, 'enabled');
    await bridge.ingest(numbered('dropped@example.com', 5, 5));
    await eventually(() => emailsOf(pushedFor(streamId), 'dropped@').length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(emailsOf(pushedFor(streamId), 'dropped@')).toEqual(['n5']);
  });

  it('POLL-11: a paused poll stream returns no events, then all of them in order once enabled', async () => {
    const streamId = await pollStream();
    await setStatus(streamId, 'paused');
    await bridge.ingest(numbered('polled@example.com', 1, 3));
    expect((await poll(streamId, { returnImmediately: true })).sets).toEqual({});
    await setStatus(streamId, 'enabled');
    const got: string[] = [];
    await eventually(async () => {
      const res = await poll(streamId, { returnImmediately: true, ack: [] });
      got.length = 0;
      for (const jwt of Object.values(res.sets))
        got.push(decodeJwt(jwt).payload.events[SESSION_REVOKED].reason_admin.en);
      return got.length === 3;
    });
    expect(got).toEqual(['n1', 'n2', 'n3']);
  });

  it('SSF-38: an operator pause and resume are announced with stream-updated events; held events follow', async () => {
    receiver.received.length = 0;
    const streamId = await pushStream();
    await bridge.tx.setStreamStatus(streamId, 'paused', 'maintenance window');
    await eventually(() => pushedFor(streamId).some((p) => p.events[STREAM_UPDATED]));
    await bridge.ingest(numbered('operator@example.com', 1, 2));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(emailsOf(pushedFor(streamId), 'operator@')).toEqual([]);
    await bridge.tx.setStreamStatus(streamId, 'enabled');
    await eventually(() => emailsOf(pushedFor(streamId), 'operator@').length === 2);
    const updates = pushedFor(streamId)
      .filter((p) => p.events[STREAM_UPDATED])
      .map((p) => ({ sub: p.sub_id, ...p.events[STREAM_UPDATED] }));
    expect(updates).toEqual([
      { sub: { format: 'opaque', id: streamId }, status: 'paused', reason: 'maintenance window' },
      { sub: { format: 'opaque', id: streamId }, status: 'enabled' },
    ]);
    expect((await api('GET', 'ssf/status', undefined, { stream_id: streamId })).json).toEqual({
      stream_id: streamId,
      status: 'enabled',
    });
  });

  it('SSF-52, SSF-38: a verification the receiver rejects with invalid_state disables the stream, and that is announced', async () => {
    const streamId = await pollStream();
    await api('POST', 'ssf/verify', { stream_id: streamId, state: 'sent' });
    const first = await poll(streamId, { returnImmediately: true });
    const [jti] = Object.keys(first.sets);
    await poll(streamId, {
      maxEvents: 0,
      setErrs: { [jti as string]: { err: 'invalid_state', description: 'unexpected state' } },
    });
    await eventually(
      async () =>
        (await api('GET', 'ssf/status', undefined, { stream_id: streamId })).json.status === 'disabled',
    );
    // Control events still reach a disabled stream's receiver: the stream-updated comes through.
    // It is queued once the new status is written (never for a change that was not), so it may
    // follow the status read above by a moment.
    const events = await eventually(async () => {
      const after = await poll(streamId, { returnImmediately: true });
      const found = Object.values(after.sets).map((j) => decodeJwt(j).payload.events);
      return found.length > 0 ? found : undefined;
    });
    expect(events).toContainEqual({
      [STREAM_UPDATED]: { status: 'disabled', reason: expect.stringMatching(/^verification failed/) },
    });
    // Verification of a disabled stream is accepted and dropped (SSF §8.1.4 / SSF-47): the stream
    // holds nothing, and the poll hands out nothing more.
    expect((await api('POST', 'ssf/verify', { stream_id: streamId })).status).toBe(204);
    const more = await poll(streamId, { returnImmediately: true, ack: Object.keys(first.sets) });
    expect(
      Object.values(more.sets).filter((j) => decodeJwt(j).payload.events[VERIFICATION] !== undefined),
    ).toEqual([]);
  });

  it('SSF-52: a push receiver answering invalid_state to a verification also disables the stream', async () => {
    receiver.received.length = 0;
    const streamId = await pushStream();
    receiver.answer({ status: 400, body: { err: 'invalid_state', description: 'state mismatch' } });
    await api('POST', 'ssf/verify', { stream_id: streamId, state: 'x' });
    await eventually(
      async () =>
        (await api('GET', 'ssf/status', undefined, { stream_id: streamId })).json.status === 'disabled',
    );
    const errors = await bridge.tx.streamErrors(streamId);
    expect(errors).toContainEqual(expect.objectContaining({ err: 'invalid_state' }));
    await eventually(() => pushedFor(streamId).some((p) => p.events[STREAM_UPDATED]?.status === 'disabled'));
    expect(pushedFor(streamId).filter((p) => p.events[VERIFICATION])).toHaveLength(1);
  });
});

describe('inactivity_timeout (SSF 1.0 §8.1.1)', () => {
  it('pauses a stream nobody used and announces it with a stream-updated event; activity keeps others enabled', async () => {
    const idle = await startBridge({
      transmitter: { streams: { per_receiver: 'many', inactivity_timeout: '1s' } },
    });
    try {
      const create = (token: string) =>
        call(idle.issuer, 'POST', 'ssf/streams', { token, body: { delivery: { method: POLL } } });
      const quiet = (await create(ALICE.token)).json;
      const busy = (await create(ALICE.token)).json;
      expect(quiet.inactivity_timeout).toBe(1);
      const keepBusy = setInterval(() => {
        void call(idle.issuer, 'GET', 'ssf/status', {
          token: ALICE.token,
          query: { stream_id: busy.stream_id },
        });
      }, 50);
      try {
        await eventually(async () => {
          const streams = await idle.tx.listStreams();
          return streams.find((s) => s.status.stream_id === quiet.stream_id)?.status.status === 'paused';
        }, 6_000);
      } finally {
        clearInterval(keepBusy);
      }
      const streams = await idle.tx.listStreams();
      expect(streams.find((s) => s.status.stream_id === quiet.stream_id)?.status).toEqual({
        stream_id: quiet.stream_id,
        status: 'paused',
        reason: 'inactivity_timeout',
      });
      expect(streams.find((s) => s.status.stream_id === busy.stream_id)?.status.status).toBe('enabled');
      const polled = await call(idle.issuer, 'POST', `ssf/poll/${quiet.stream_id}`, {
        token: ALICE.token,
        body: { returnImmediately: true },
      });
      const events = Object.values(polled.json.sets as Record<string, string>).map(
        (j) => decodeJwt(j).payload.events,
      );
      expect(events).toEqual([{ [STREAM_UPDATED]: { status: 'paused', reason: 'inactivity_timeout' } }]);
    } finally {
      await idle.close();
    }
  });

  it('restarts the countdown on every eligible activity, even one not written to the store yet', async () => {
    // SSF 1.0 §8.1.1: the transmitter MUST restart the counter on eligible activity. Activity
    // is written at most once per tenth of the timeout; the sweep must not pause a stream whose
    // last activity fell in that tenth before a full timeout has passed since it.
    let offsetMs = 0;
    const clock = { now: () => new Date(Date.now() + offsetMs) };
    const idle = await startBridge({ clock, transmitter: { streams: { inactivity_timeout: '100s' } } });
    try {
      const created = await call(idle.issuer, 'POST', 'ssf/streams', {
        token: ALICE.token,
        body: { delivery: { method: POLL } },
      });
      const streamId = created.json.stream_id as string;
      const status = async () =>
        (await call(idle.issuer, 'GET', 'ssf/status', { token: ALICE.token, query: { stream_id: streamId } }))
          .json.status;
      offsetMs = 9_000;
      expect(await status()).toBe('enabled'); // eligible activity, 9 s after the creation
      offsetMs = 108_500; // 108.5 s after the creation, 99.5 s after the last activity
      expect(await idle.tx.service.sweepInactive()).toBe(0);
      expect((await idle.tx.listStreams())[0]?.status.status).toBe('enabled');
      offsetMs = 109_000 + 10_000; // well past a full timeout since the last activity
      expect(await idle.tx.service.sweepInactive()).toBe(1);
      expect((await idle.tx.listStreams())[0]?.status).toEqual({
        stream_id: streamId,
        status: 'paused',
        reason: 'inactivity_timeout',
      });
    } finally {
      await idle.close();
    }
  });
});

describe('min_verification_interval (SSF 1.0 §8.1.4)', () => {
  it('TX-08: a second verification sooner than the interval is 429 with Retry-After; none is sent for it', async () => {
    const limited = await startBridge({ transmitter: { streams: { min_verification_interval: '30s' } } });
    try {
      const created = await call(limited.issuer, 'POST', 'ssf/streams', { token: ALICE.token, body: {} });
      expect(created.json.min_verification_interval).toBe(30);
      const verify = (state: string) =>
        call(limited.issuer, 'POST', 'ssf/verify', {
          token: ALICE.token,
          body: { stream_id: created.json.stream_id, state },
        });
      expect((await verify('first')).status).toBe(204);
      const second = await verify('second');
      expect(second.status).toBe(429);
      expect(Number(second.headers.get('retry-after'))).toBeGreaterThan(25);
      const polled = await call(limited.issuer, 'POST', `ssf/poll/${created.json.stream_id}`, {
        token: ALICE.token,
        body: { returnImmediately: true },
      });
      const states = Object.values(polled.json.sets as Record<string, string>).map(
        (j) => decodeJwt(j).payload.events[VERIFICATION].state,
      );
      expect(states).toEqual(['first']);
    } finally {
      await limited.close();
    }
  });
});
