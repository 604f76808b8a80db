/**
 * Stream changes that overlap: every change is read and written under the stream's lock, so a
 * change that answered 200 is never undone by another that started before it and finished after
 * (checklist SSF-29/SSF-31: changes are persisted and read back as answered; TX-07: status).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { streamConflict } from '../../core/storage/stream-conflict.ts';
import {
  ALICE,
  alice,
  CREDENTIAL_CHANGE,
  POLL,
  SESSION_REVOKED,
  call,
  startBridge,
  type Bridge,
} from './harness.ts';

async function createStream(bridge: Bridge): Promise<string> {
  const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
    token: ALICE.token,
    body: { events_requested: [SESSION_REVOKED], description: 'before', delivery: { method: POLL } },
  });
  expect(created.status).toBe(201);
  return created.json.stream_id as string;
}

async function readBack(bridge: Bridge, streamId: string) {
  const read = await call(bridge.issuer, 'GET', 'ssf/streams', {
    token: ALICE.token,
    query: { stream_id: streamId },
  });
  expect(read.status).toBe(200);
  return read.json;
}

describe.each(['ALL', 'NONE'] as const)(
  'remove-subject overlapping a PATCH (default_subjects %s)',
  (mode) => {
    let bridge: Bridge;

    beforeAll(async () => {
      bridge = await startBridge({
        transmitter: { streams: { per_receiver: 'many', default_subjects: mode } },
      });
    });
    afterAll(async () => {
      await bridge?.close();
    });

    it('SSF-29/SSF-31: a remove-subject started before a PATCH does not revert it; read-back equals the PATCH answer', async () => {
      const streamId = await createStream(bridge);
      const subject = { format: 'email', email: `gone-${mode}@example.com` };
      // With NONE the subject must be on the stream for the removal to write the stream at all.
      await bridge.tx.service.addSubject(alice, { stream_id: streamId, subject });
      const removing = bridge.tx.service.removeSubject(alice, { stream_id: streamId, subject });
      const patching = bridge.tx.service.update(
        alice,
        { stream_id: streamId, description: 'after', events_requested: [CREDENTIAL_CHANGE] },
        'update',
      );
      const [, patched] = await Promise.all([removing, patching]);
      expect(patched.description).toBe('after');
      const read = await readBack(bridge, streamId);
      expect(read).toEqual(patched);
      // The routing index follows the PATCH too: the stream now takes credential-change only.
      expect(
        bridge.tx.routeEvent({ type: SESSION_REVOKED, subject: { format: 'email', email: 'x@example.com' } }),
      ).not.toContain(`stream:${streamId}`);
    });
  },
);

describe('an inactivity pause overlapping a receiver status change', () => {
  let bridge: Bridge;

  beforeAll(async () => {
    bridge = await startBridge({
      transmitter: { streams: { per_receiver: 'many', inactivity_timeout: '1h' } },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('TX-07, SSF-37: a stream the receiver disables while the inactivity sweep runs stays disabled', async () => {
    const streamId = await createStream(bridge);
    // Make it look unused for longer than the timeout.
    const stored = (await bridge.store.streams.get(streamId))!;
    const config = stored.config as { internal: Record<string, unknown> };
    await bridge.store.streams.update(
      streamId,
      { config: { ...config, internal: { ...config.internal, last_activity_at: 0 } } },
      new Date(),
    );
    const disabling = bridge.tx.service.updateStatus(
      alice,
      { stream_id: streamId, status: 'disabled' },
      undefined,
    );
    const sweeping = bridge.tx.service.sweepInactive();
    const [answered, paused] = await Promise.all([disabling, sweeping]);
    expect(answered.status).toBe('disabled');
    expect(paused).toBe(0);
    expect((await bridge.store.streams.get(streamId))?.status).toBe('disabled');
  });
});

describe('provisioning overlapping a verification request', () => {
  let bridge: Bridge;

  beforeAll(async () => {
    bridge = await startBridge({
      transmitter: {
        streams: { min_verification_interval: '30s' },
        provisioned_streams: [
          { stream_id: 'alice-prov', client_id: ALICE.client_id, events_requested: [SESSION_REVOKED] },
        ],
      },
    });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('TX-08: provisioning again while a verification is recorded keeps that verification (min_verification_interval holds)', async () => {
    // Force the interleaving: provisioning reads the stream, the verification is recorded, then
    // provisioning writes. Its write waits for the verification's (at most 300 ms, so that
    // provisioning under the stream's lock, which the verification then waits for, goes on).
    const streams = bridge.store.streams;
    const update = streams.update.bind(streams);
    let verified!: () => void;
    const verificationWritten = new Promise<void>((resolve) => (verified = resolve));
    streams.update = async (streamId, patch, now) => {
      const internal = (patch.config as { internal?: Record<string, unknown> } | undefined)?.internal;
      if (internal?.last_verification_at !== undefined) {
        const written = await update(streamId, patch, now);
        verified();
        return written;
      }
      await Promise.race([verificationWritten, new Promise((resolve) => setTimeout(resolve, 300))]);
      return update(streamId, patch, now);
    };
    try {
      const provisioning = bridge.tx.service.provision();
      const verifying = bridge.tx.service.verify(alice, { stream_id: 'alice-prov', state: 'one' });
      await Promise.all([provisioning, verifying]);
    } finally {
      streams.update = update;
    }
    const again = await call(bridge.issuer, 'POST', 'ssf/verify', {
      token: ALICE.token,
      body: { stream_id: 'alice-prov', state: 'two' },
    });
    expect(again.status).toBe(429);
  });
});

describe("a stream changed by another instance between this instance's read and write", () => {
  let bridge: Bridge;

  beforeAll(async () => {
    bridge = await startBridge({ transmitter: { streams: { per_receiver: 'many' } } });
  });
  afterAll(async () => {
    await bridge?.close();
  });

  it('SSF-29/SSF-31: a PATCH is applied on top of what the other instance wrote, not over it', async () => {
    const streamId = await createStream(bridge);
    // Another instance (same database, its own process lock) changes events_requested right
    // after this instance read the stream for the PATCH, before this instance writes.
    const streams = bridge.store.streams;
    const update = streams.update.bind(streams);
    let otherWrote = false;
    streams.update = async (id, patch, now) => {
      if (!otherWrote) {
        otherWrote = true;
        const current = (await streams.get(id))!;
        const config = current.config as { internal: { rev: string } };
        await update(
          id,
          {
            config: {
              ...config,
              events_requested: [CREDENTIAL_CHANGE],
              internal: { ...config.internal, rev: 'written-by-another-instance' },
            },
            expectedRev: config.internal.rev,
          },
          now,
        );
      }
      return update(id, patch, now);
    };
    let patched;
    try {
      patched = await call(bridge.issuer, 'PATCH', 'ssf/streams', {
        token: ALICE.token,
        body: { stream_id: streamId, description: 'after' },
      });
    } finally {
      streams.update = update;
    }
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ description: 'after', events_requested: [CREDENTIAL_CHANGE] });
    expect(await readBack(bridge, streamId)).toMatchObject({
      description: 'after',
      events_requested: [CREDENTIAL_CHANGE],
    });
  });
  it('answers 503 with Retry-After when other instances keep writing the stream first, and writes nothing', async () => {
    const streamId = await createStream(bridge);
    const streams = bridge.store.streams;
    const update = streams.update.bind(streams);
    let tries = 0;
    streams.update = async (id) => {
      tries += 1;
      throw streamConflict(id);
    };
    let patched;
    try {
      patched = await call(bridge.issuer, 'PATCH', 'ssf/streams', {
        token: ALICE.token,
        body: { stream_id: streamId, description: 'never' },
      });
    } finally {
      streams.update = update;
    }
    expect(patched.status).toBe(503);
    expect(patched.headers.get('retry-after')).toBe('1');
    expect(tries).toBe(4);
    expect(await readBack(bridge, streamId)).toMatchObject({ description: 'before' });
  });
});
