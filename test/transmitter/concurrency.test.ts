/**
 * Stream changes that overlap: every change is read and written under the stream's lock, so a
 * change that answered 200 is never undone by another that started before it and finished after
 * (checklist SSF-29/SSF-31: changes are persisted and read back as answered; TX-07: status).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../core/transmitter/auth.ts';
import {
  ALICE,
  CREDENTIAL_CHANGE,
  POLL,
  SESSION_REVOKED,
  call,
  startBridge,
  type Bridge,
} from './harness.ts';

const alice: Principal = {
  clientId: ALICE.client_id,
  scopes: new Set(['ssf.read', 'ssf.manage']),
  audience: ALICE.client_id,
  method: 'static',
};

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
