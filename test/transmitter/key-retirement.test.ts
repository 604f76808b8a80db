/**
 * A SET waits in a stream's queue, signed, until its receiver takes it. When the key that signed
 * it retires meanwhile (a leaked key rotated out with no grace period), the SET handed out is
 * the same payload signed by the active key: it verifies against the JWKS the receiver fetches
 * (RFC 8417 §5 / SSF 1.0 §7.1.1: receivers validate with the transmitter's published jwks_uri).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyStore } from '../../core/ssf/keys/store.ts';
import {
  ALICE,
  POLL,
  PUSH,
  SESSION_REVOKED,
  VERIFICATION,
  call,
  checkSet,
  decodeJwt,
  eventually,
  sessionRevoked,
  startBridge,
  startPushReceiver,
  type Bridge,
  type PushReceiver,
} from './harness.ts';

let bridge: Bridge;
let keys: KeyStore;
let receiver: PushReceiver;

beforeAll(async () => {
  keys = await KeyStore.generate({ dataDir: mkdtempSync(join(tmpdir(), 'ssf-tx-retire-')) });
  bridge = await startBridge({
    keys,
    transmitter: { streams: { per_receiver: 'many', default_subjects: 'NONE' } },
  });
  receiver = await startPushReceiver();
});

afterAll(async () => {
  await receiver?.close();
  await bridge?.close();
});

const api = (method: string, path: string, body?: unknown) =>
  call(bridge.issuer, method, path, { token: ALICE.token, body });

const payloadOf = (jwt: string) => jwt.split('.')[1];

/**
 * Rotates as after a leak: the new key signs at once, the old one leaves the JWKS at once. To
 * ES256, whose key is made in a millisecond: an RSA key can take longer than a retry's backoff
 * on a busy machine, and the retry must come after the rotation.
 */
async function leakRotation(): Promise<string> {
  const before = (await keys.signingKey()).kid;
  const added = await keys.rotate({ algorithm: 'ES256', activationDelayMs: 0, gracePeriodMs: 0 });
  expect(added.kid).not.toBe(before);
  expect(keys.jwks().keys.map((k) => k.kid)).toEqual([added.kid]);
  return before;
}

/** A poll stream about `email` with one event SET waiting in its queue. */
async function pollStreamWithOneSet(email: string) {
  const created = await api('POST', 'ssf/streams', {
    events_requested: [SESSION_REVOKED],
    delivery: { method: POLL },
  });
  const id = created.json.stream_id as string;
  await api('POST', 'ssf/subjects/add', { stream_id: id, subject: { format: 'email', email } });
  await bridge.ingest([sessionRevoked(email)]);
  await eventually(async () => (await bridge.store.streams.pollQueueDepth(id)) === 1);
  return { created, id };
}

describe('queued SETs after their signing key retires', () => {
  it('a polled SET (RFC 8936) is re-signed by the active key, same payload and jti', async () => {
    const { created, id } = await pollStreamWithOneSet('queued@example.com');

    const first = await api('POST', `ssf/poll/${id}`, { returnImmediately: true });
    const [[jti, queued]] = Object.entries(first.json.sets as Record<string, string>) as [[string, string]];
    const oldKid = await leakRotation();
    expect(decodeJwt(queued).header.kid).toBe(oldKid);
    // The copy signed before the rotation no longer verifies against the published JWKS.
    await expect(checkSet(bridge, queued, created.json.aud as string)).rejects.toThrow();

    const again = await api('POST', `ssf/poll/${id}`, { returnImmediately: true });
    const served = (again.json.sets as Record<string, string>)[jti] as string;
    expect(served).toBeDefined();
    expect(decodeJwt(served).header.kid).toBe((await keys.signingKey()).kid);
    expect(payloadOf(served)).toBe(payloadOf(queued));
    const claims = await checkSet(bridge, served, created.json.aud as string, ['ES256']);
    expect(claims.jti).toBe(jti);
  });

  it('a control SET queued for a push receiver is pushed re-signed after a failed attempt', async () => {
    // The receiver is down for the first push of the verification event; the retry comes after
    // the rotation.
    receiver.answer({ status: 503 });
    const created = await api('POST', 'ssf/streams', {
      events_requested: [SESSION_REVOKED],
      delivery: { method: PUSH, endpoint_url: `${receiver.url}/control` },
    });
    const id = created.json.stream_id as string;
    const sent = receiver.received.length;
    expect((await api('POST', 'ssf/verify', { stream_id: id, state: 'after-rotation' })).status).toBe(204);
    await eventually(async () => receiver.received.length > sent);
    const refused = receiver.received[sent]?.body as string;
    expect(decodeJwt(refused).payload.events[VERIFICATION]).toEqual({ state: 'after-rotation' });

    const oldKid = await leakRotation();
    expect(decodeJwt(refused).header.kid).toBe(oldKid);
    await eventually(async () => receiver.received.length > sent + 1, 10_000);
    const pushed = receiver.received[sent + 1]?.body as string;
    expect(decodeJwt(pushed).header.kid).toBe((await keys.signingKey()).kid);
    expect(payloadOf(pushed)).toBe(payloadOf(refused));
    await checkSet(bridge, pushed, created.json.aud as string, ['ES256']);
  });

  it('a SET whose key is still published is handed out as it was queued', async () => {
    const { id } = await pollStreamWithOneSet('unchanged@example.com');
    const first = await api('POST', `ssf/poll/${id}`, { returnImmediately: true });
    // A normal rotation: the old key signs on for the activation delay and stays published.
    await keys.rotate({ activationDelayMs: 60_000 });
    const again = await api('POST', `ssf/poll/${id}`, { returnImmediately: true });
    expect(again.json.sets).toEqual(first.json.sets);
  });
});
