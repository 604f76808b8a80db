/**
 * Each stream belongs to the client that created it (SSF 1.0 §8, checklist SSF-22, SSF-23):
 * another client can neither see nor change it, and gets exactly the answer an unknown stream
 * gets (404), on every endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALICE,
  BOB,
  POLL,
  SESSION_REVOKED,
  call,
  decodeJwt,
  eventually,
  sessionRevoked,
  startBridge,
  type Bridge,
} from './harness.ts';

let bridge: Bridge;

beforeAll(async () => {
  bridge = await startBridge({ transmitter: { streams: { per_receiver: 'many' } } });
});

afterAll(async () => {
  await bridge?.close();
});

const as =
  (token: string) => (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    call(bridge.issuer, method, path, { token, body, ...(query ? { query } : {}) });

describe('cross-client isolation', () => {
  it("SSF-23: every endpoint answers 404 for another client's stream, exactly as for an unknown one", async () => {
    const alice = as(ALICE.token);
    const bob = as(BOB.token);
    const stream = (
      await alice('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED], description: 'alice only' })
    ).json;
    const id = stream.stream_id as string;
    const subject = { format: 'email', email: 'someone@example.com' };

    const attempts = [
      bob('GET', 'ssf/streams', undefined, { stream_id: id }),
      bob('PATCH', 'ssf/streams', { stream_id: id, description: 'bob was here' }),
      bob('PUT', 'ssf/streams', { stream_id: id }),
      bob('DELETE', 'ssf/streams', undefined, { stream_id: id }),
      bob('GET', 'ssf/status', undefined, { stream_id: id }),
      bob('POST', 'ssf/status', { stream_id: id, status: 'disabled' }),
      bob('POST', 'ssf/subjects/add', { stream_id: id, subject }),
      bob('POST', 'ssf/subjects/remove', { stream_id: id, subject }),
      bob('POST', 'ssf/verify', { stream_id: id }),
      bob('POST', `ssf/poll/${id}`, { returnImmediately: true }),
    ];
    const unknown = await bob('GET', 'ssf/streams', undefined, { stream_id: 'does-not-exist' });
    for (const res of await Promise.all(attempts)) {
      expect(res.status).toBe(404);
      expect(res.json.err).toBe(unknown.json.err);
    }
    expect((await bob('GET', 'ssf/streams')).json).toEqual([]);

    // Nothing bob tried changed alice's stream.
    const after = await alice('GET', 'ssf/streams', undefined, { stream_id: id });
    expect(after.json.description).toBe('alice only');
    expect((await alice('GET', 'ssf/status', undefined, { stream_id: id })).json.status).toBe('enabled');
    expect((await alice('GET', 'ssf/streams')).json.map((s: { stream_id: string }) => s.stream_id)).toContain(
      id,
    );
  });

  it("SSF-25: with per_receiver 'many' a second create gives a new stream; each client lists only its own", async () => {
    const alice = as(ALICE.token);
    const bob = as(BOB.token);
    const first = (await alice('POST', 'ssf/streams', { delivery: { method: POLL } })).json.stream_id;
    const second = await alice('POST', 'ssf/streams', { delivery: { method: POLL } });
    expect(second.status).toBe(201);
    expect(second.json.stream_id).not.toBe(first);
    // TX-05: the poll endpoint is unique per stream.
    expect(second.json.delivery.endpoint_url).not.toBe(`${bridge.issuer}/ssf/poll/${first}`);
    const bobs = (await bob('POST', 'ssf/streams', {})).json.stream_id;
    const aliceIds = (await alice('GET', 'ssf/streams')).json.map((s: { stream_id: string }) => s.stream_id);
    expect(aliceIds).toContain(first);
    expect(aliceIds).not.toContain(bobs);
    expect((await bob('GET', 'ssf/streams')).json.map((s: { stream_id: string }) => s.stream_id)).toEqual([
      bobs,
    ]);
  });

  it("routes one event to every client's matching stream, each SET with its own aud", async () => {
    const alice = as(ALICE.token);
    const bob = as(BOB.token);
    const a = (await alice('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED] })).json
      .stream_id as string;
    const b = (await bob('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED] })).json
      .stream_id as string;
    await bridge.ingest([sessionRevoked('shared@example.com')]);
    const fromA = await eventually(async () => {
      const sets = (await alice('POST', `ssf/poll/${a}`, { returnImmediately: true })).json.sets as Record<
        string,
        string
      >;
      return Object.values(sets).find((j) => decodeJwt(j).payload.sub_id.email === 'shared@example.com');
    });
    const fromB = await eventually(async () => {
      const sets = (await bob('POST', `ssf/poll/${b}`, { returnImmediately: true })).json.sets as Record<
        string,
        string
      >;
      return Object.values(sets).find((j) => decodeJwt(j).payload.sub_id.email === 'shared@example.com');
    });
    expect(decodeJwt(fromA).payload.aud).toBe(ALICE.client_id);
    expect(decodeJwt(fromB).payload.aud).toBe(BOB.client_id);
    expect(decodeJwt(fromA).payload.jti).not.toBe(decodeJwt(fromB).payload.jti);
  });
});
