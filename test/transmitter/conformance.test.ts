/**
 * One test per OpenID SSF transmitter conformance module (checklist §9.2), run against a real
 * bridge over HTTP on 127.0.0.1. Each test names the module and the rules it checks.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  ALICE,
  BOB,
  CREDENTIAL_CHANGE,
  DEVICE_COMPLIANCE,
  POLL,
  PUSH,
  READER,
  SESSION_REVOKED,
  STREAM_UPDATED,
  VERIFICATION,
  call,
  checkSet,
  decodeJwt,
  eventually,
  sessionRevoked,
  startBridge,
  startPushReceiver,
  wellKnownPath,
  type Answer,
  type Bridge,
  type PushReceiver,
} from './harness.ts';

const UNKNOWN_EVENT = 'urn:example:made-up-event-type';

let bridge: Bridge;
let receiver: PushReceiver;
let metadata: Record<string, any>;

const as = (token: string) => ({
  get: (path: string, query?: Record<string, string>) =>
    call(bridge.origin, 'GET', path, { token, ...(query ? { query } : {}) }),
  post: (path: string, body?: unknown, query?: Record<string, string>) =>
    call(bridge.origin, 'POST', path, { token, body, ...(query ? { query } : {}) }),
  send: (method: string, path: string, body?: unknown, query?: Record<string, string>) =>
    call(bridge.origin, method, path, { token, body, ...(query ? { query } : {}) }),
});
const alice = () => as(ALICE.token);

async function deleteAll(token: string): Promise<void> {
  const list = await as(token).get(metadata.configuration_endpoint);
  for (const s of list.json as Array<{ stream_id: string }>) {
    await as(token).send('DELETE', metadata.configuration_endpoint, undefined, { stream_id: s.stream_id });
  }
}

async function createPoll(
  token = ALICE.token,
  body: Record<string, unknown> = {},
): Promise<Record<string, any>> {
  const res = await as(token).post(metadata.configuration_endpoint, {
    events_requested: [SESSION_REVOKED],
    delivery: { method: POLL },
    ...body,
  });
  expect(res.status).toBe(201);
  return res.json as Record<string, any>;
}

async function deletedStreamId(): Promise<string> {
  const stream = await createPoll();
  expect(
    (
      await alice().send('DELETE', metadata.configuration_endpoint, undefined, {
        stream_id: stream.stream_id,
      })
    ).status,
  ).toBe(204);
  return stream.stream_id as string;
}

async function pollSets(stream: Record<string, any>, body: Record<string, unknown>): Promise<Answer> {
  return alice().post(stream.delivery.endpoint_url, body);
}

beforeAll(async () => {
  bridge = await startBridge({
    issuerPath: '/tx/one',
    transmitter: {
      streams: { per_receiver: 'one', verify_on_create: true },
      poll: { long_poll_max_wait: '2s', store_check_interval: '200ms' },
    },
  });
  receiver = await startPushReceiver();
  const res = await call(bridge.origin, 'GET', wellKnownPath(bridge.issuer));
  metadata = res.json as Record<string, any>;
});

afterAll(async () => {
  await receiver?.close();
  await bridge?.close();
});

beforeEach(async () => {
  await deleteAll(ALICE.token);
});

describe('OpenID SSF transmitter conformance modules', () => {
  it('openid-ssf-transmitter-metadata: SSF-14 inserted path, SSF-15 no empty arrays, TX-01, TX-02, IOP-06', async () => {
    const res = await call(bridge.origin, 'GET', '/.well-known/ssf-configuration/tx/one');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = res.json as Record<string, any>;
    // SSF-17 / §10.23: the issuer is byte-identical to the URL the metadata was found from.
    expect(doc.issuer).toBe(bridge.issuer);
    expect(doc.spec_version).toBe('1_0');
    expect(doc.delivery_methods_supported).toEqual([PUSH, POLL]);
    expect(doc.authorization_schemes).toContainEqual({ spec_urn: 'urn:ietf:rfc:6749' });
    expect(['ALL', 'NONE']).toContain(doc.default_subjects);
    for (const name of [
      'jwks_uri',
      'configuration_endpoint',
      'status_endpoint',
      'add_subject_endpoint',
      'remove_subject_endpoint',
      'verification_endpoint',
    ]) {
      expect(doc[name]).toMatch(new RegExp(`^${bridge.issuer}/`));
    }
    for (const value of Object.values(doc)) if (Array.isArray(value)) expect(value.length).toBeGreaterThan(0);
    // SSF-14 ⚠: the appended form is not where the metadata lives.
    expect((await call(bridge.origin, 'GET', '/tx/one/.well-known/ssf-configuration')).status).toBe(404);
    // TX-02: RSA ≥ 2048 signing key, kid, use sig, alg RS256, public members only.
    const jwks = (await call(bridge.origin, 'GET', doc.jwks_uri)).json as {
      keys: Array<Record<string, string>>;
    };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ kty: 'RSA', use: 'sig', alg: 'RS256' });
      expect(typeof key.kid).toBe('string');
      expect(Buffer.from(key.n as string, 'base64url').length * 8).toBeGreaterThanOrEqual(2048);
      for (const secret of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(key).not.toHaveProperty(secret);
    }
  });

  it('openid-ssf-stream-control-error-read-stream-without-token: 401 with WWW-Authenticate (checklist §10.20, TX-03)', async () => {
    const res = await call(bridge.origin, 'GET', metadata.configuration_endpoint);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(res.headers.get('www-authenticate')).not.toMatch(/error=/);
  });

  it('openid-ssf-stream-control-error-token-in-uri-query: a token in the query string is refused (IOP-15, TX-03)', async () => {
    const res = await call(bridge.origin, 'GET', metadata.configuration_endpoint, {
      query: { access_token: ALICE.token },
    });
    expect([400, 401]).toContain(res.status);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    // Even together with a valid header, the query token makes the request invalid (RFC 6750 §2).
    const both = await call(bridge.origin, 'GET', metadata.configuration_endpoint, {
      token: ALICE.token,
      query: { access_token: ALICE.token },
    });
    expect(both.status).toBe(400);
  });

  it('openid-ssf-stream-control-error-create-stream-with-read-only-token: ssf.read cannot create (IOP-14, TX-03)', async () => {
    const res = await as(READER.token).post(metadata.configuration_endpoint, { delivery: { method: POLL } });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toMatch(/error="insufficient_scope"/);
    expect(res.headers.get('www-authenticate')).toMatch(/scope="ssf.manage"/);
    // The read-only token still reads (an empty list: it owns nothing).
    const list = await as(READER.token).get(metadata.configuration_endpoint);
    expect(list.status).toBe(200);
    expect(list.json).toEqual([]);
  });

  it('openid-ssf-stream-control-error-read-stream-status-with-invalid-token: 401 invalid_token (SSF-34)', async () => {
    const stream = await createPoll();
    const res = await as('not-a-known-token').get(metadata.status_endpoint, { stream_id: stream.stream_id });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
  });

  it('openid-ssf-stream-control-error-read-status-of-unknown-stream: 404 for a deleted stream (SSF-34, Appendix A)', async () => {
    const gone = await deletedStreamId();
    const res = await alice().get(metadata.status_endpoint, { stream_id: gone });
    expect(res.status).toBe(404);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('openid-ssf-transmitter-stream-verification-error-invalid-body: truncated JSON is 400 (SSF-47)', async () => {
    const stream = await createPoll();
    const res = await call(bridge.origin, 'POST', metadata.verification_endpoint, {
      token: ALICE.token,
      raw: `{"stream_id": "${stream.stream_id}", "state": "ab`,
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ err: 'invalid_request' });
  });

  it('openid-ssf-transmitter-stream-verification-error-invalid-token: 401 (SSF-47)', async () => {
    const stream = await createPoll();
    const res = await as('invalid-token').post(metadata.verification_endpoint, {
      stream_id: stream.stream_id,
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('openid-ssf-transmitter-stream-verification-error-unknown-stream: 404 for a deleted stream (SSF-47)', async () => {
    const gone = await deletedStreamId();
    expect((await alice().post(metadata.verification_endpoint, { stream_id: gone })).status).toBe(404);
  });

  it('openid-ssf-transmitter-poll-endpoint-authorization: 401 + WWW-Authenticate without or with a bad token (POLL-10)', async () => {
    const stream = await createPoll();
    const none = await call(bridge.origin, 'POST', stream.delivery.endpoint_url, {
      body: { returnImmediately: true },
    });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    const bad = await as('bogus').post(stream.delivery.endpoint_url, { returnImmediately: true });
    expect(bad.status).toBe(401);
    expect(bad.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('openid-ssf-stream-control-happy-path: create, read, list, PATCH, PUT, status, delete (TX-04, SSF-25…SSF-37)', async () => {
    const endpoint = metadata.configuration_endpoint as string;
    const created = await alice().post(endpoint, {
      events_requested: [SESSION_REVOKED, CREDENTIAL_CHANGE, UNKNOWN_EVENT],
      delivery: { method: POLL },
      description: 'first',
      // SSF-28: transmitter-supplied fields on create are ignored, not refused.
      stream_id: 'chosen-by-receiver',
      iss: 'https://not-the-issuer.example',
      events_delivered: [UNKNOWN_EVENT],
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('cache-control')).toBe('no-store');
    const stream = created.json as Record<string, any>;
    for (const field of ['stream_id', 'iss', 'aud', 'events_delivered', 'delivery'])
      expect(stream).toHaveProperty(field);
    expect(stream.stream_id).not.toBe('chosen-by-receiver');
    expect(stream.stream_id).toMatch(/^[A-Za-z0-9._~-]+$/);
    expect(stream.iss).toBe(metadata.issuer);
    expect(stream.aud).toBe(ALICE.client_id);
    expect(stream.description).toBe('first');
    // SSF-27 / TX-06: delivered = supported ∩ requested; the unknown type appears nowhere.
    expect(stream.events_delivered).toEqual([SESSION_REVOKED, CREDENTIAL_CHANGE]);
    expect(stream.events_supported).not.toContain(UNKNOWN_EVENT);
    for (const uri of stream.events_delivered) expect(stream.events_supported).toContain(uri);
    expect(stream.delivery).toEqual({
      method: POLL,
      endpoint_url: expect.stringMatching(new RegExp(`^${bridge.issuer}/`)),
    });

    const read = await alice().get(endpoint, { stream_id: stream.stream_id });
    expect(read.status).toBe(200);
    expect(read.json).toEqual(stream);
    const list = await alice().get(endpoint);
    expect(list.status).toBe(200);
    expect(list.json).toEqual([stream]);

    // SSF-29: PATCH changes what is sent and keeps the rest.
    const patched = await alice().send('PATCH', endpoint, {
      stream_id: stream.stream_id,
      description: 'second',
    });
    expect(patched.status).toBe(200);
    expect(patched.json).toEqual({ ...stream, description: 'second' });
    expect((await alice().get(endpoint, { stream_id: stream.stream_id })).json).toEqual(patched.json);
    // SSF-29: transmitter-supplied values must match; events_delivered its value before the update.
    const wrongIss = await alice().send('PATCH', endpoint, {
      stream_id: stream.stream_id,
      iss: 'https://evil.example',
    });
    expect(wrongIss.status).toBe(400);
    const sameDelivered = await alice().send('PATCH', endpoint, {
      stream_id: stream.stream_id,
      events_requested: [SESSION_REVOKED],
      events_delivered: [SESSION_REVOKED, CREDENTIAL_CHANGE],
    });
    expect(sameDelivered.status).toBe(200);
    expect(sameDelivered.json.events_delivered).toEqual([SESSION_REVOKED]);
    const staleDelivered = await alice().send('PATCH', endpoint, {
      stream_id: stream.stream_id,
      events_delivered: [SESSION_REVOKED, CREDENTIAL_CHANGE],
    });
    expect(staleDelivered.status).toBe(400);

    // SSF-30: PUT replaces; the omitted description is removed and events_delivered follows.
    const replaced = await alice().send('PUT', endpoint, {
      stream_id: stream.stream_id,
      events_requested: [CREDENTIAL_CHANGE, DEVICE_COMPLIANCE],
      delivery: stream.delivery,
    });
    expect(replaced.status).toBe(200);
    expect(replaced.json).not.toHaveProperty('description');
    expect(replaced.json.events_delivered).toEqual([CREDENTIAL_CHANGE, DEVICE_COMPLIANCE]);
    const narrowed = await alice().send('PUT', endpoint, {
      stream_id: stream.stream_id,
      events_requested: [CREDENTIAL_CHANGE],
    });
    expect(narrowed.json.events_delivered).toEqual([CREDENTIAL_CHANGE]);
    expect(narrowed.json.delivery.method).toBe(POLL);
    expect((await alice().get(endpoint, { stream_id: stream.stream_id })).json).toEqual(narrowed.json);

    // SSF-34…SSF-37: status read and every transition, stream_id in the body or the query.
    const status = await alice().get(metadata.status_endpoint, { stream_id: stream.stream_id });
    expect(status.status).toBe(200);
    expect(status.json).toEqual({ stream_id: stream.stream_id, status: 'enabled' });
    for (const next of ['enabled', 'paused', 'disabled', 'enabled']) {
      const res = await alice().post(
        metadata.status_endpoint,
        { stream_id: stream.stream_id, status: next, reason: `to ${next}` },
        { stream_id: stream.stream_id },
      );
      expect(res.status).toBe(200);
      expect(res.json).toEqual({ stream_id: stream.stream_id, status: next, reason: `to ${next}` });
    }
    const byQuery = await alice().post(
      metadata.status_endpoint,
      { status: 'paused' },
      { stream_id: stream.stream_id },
    );
    expect(byQuery.json).toEqual({ stream_id: stream.stream_id, status: 'paused' });
    expect(
      (await alice().post(metadata.status_endpoint, { stream_id: stream.stream_id, status: 'stopped' }))
        .status,
    ).toBe(400);

    const deleted = await alice().send('DELETE', endpoint, undefined, { stream_id: stream.stream_id });
    expect(deleted.status).toBe(204);
    expect(deleted.text).toBe('');
    expect((await alice().get(endpoint)).json).toEqual([]);
  });

  it('openid-ssf-stream-control-create-stream-without-delivery: poll with a transmitter-chosen URL (SSF-26, TX-05)', async () => {
    const res = await alice().post(metadata.configuration_endpoint, { events_requested: [SESSION_REVOKED] });
    expect(res.status).toBe(201);
    expect(res.json.delivery.method).toBe(POLL);
    expect(res.json.delivery.endpoint_url).toBe(`${bridge.issuer}/ssf/poll/${res.json.stream_id}`);
    expect(
      (
        await alice().send('DELETE', metadata.configuration_endpoint, undefined, {
          stream_id: res.json.stream_id,
        })
      ).status,
    ).toBe(204);
  });

  it('openid-ssf-stream-control-error-create-stream-with-broken-input: 400 (SSF-33)', async () => {
    const res = await call(bridge.origin, 'POST', metadata.configuration_endpoint, {
      token: ALICE.token,
      raw: ';{ broken',
    });
    expect(res.status).toBe(400);
    const notObject = await alice().post(metadata.configuration_endpoint, ['a']);
    expect(notObject.status).toBe(400);
    const badMethod = await alice().post(metadata.configuration_endpoint, {
      delivery: { method: 'urn:example:carrier-pigeon' },
    });
    expect(badMethod.status).toBe(400);
    const pushWithoutUrl = await alice().post(metadata.configuration_endpoint, {
      delivery: { method: PUSH },
    });
    expect(pushWithoutUrl.status).toBe(400);
    expect((await alice().get(metadata.configuration_endpoint)).json).toEqual([]);
  });

  it('openid-ssf-stream-control-error-create-stream-with-invalid-token: 401', async () => {
    const res = await as(`invalid:${crypto.randomUUID()}`).post(metadata.configuration_endpoint, {});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('openid-ssf-stream-control-error-create-stream-with-duplicate-config: 409 with the one-stream policy (SSF-25)', async () => {
    await createPoll();
    const second = await alice().post(metadata.configuration_endpoint, { delivery: { method: POLL } });
    expect(second.status).toBe(409);
    // Another receiver is not affected by alice's stream.
    const bobs = await as(BOB.token).post(metadata.configuration_endpoint, {});
    expect(bobs.status).toBe(201);
    await deleteAll(BOB.token);
  });

  it('openid-ssf-stream-control-error-read-stream-with-invalid-token: 401 invalid_token', async () => {
    const stream = await createPoll();
    const res = await as('wrong').get(metadata.configuration_endpoint, { stream_id: stream.stream_id });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/error="invalid_token"/);
  });

  it('openid-ssf-stream-control-error-read-unknown-stream: 404 (SSF-23)', async () => {
    const gone = await deletedStreamId();
    expect((await alice().get(metadata.configuration_endpoint, { stream_id: gone })).status).toBe(404);
  });

  it('openid-ssf-stream-control-error-update-stream-with-invalid-token: 401', async () => {
    const stream = await createPoll();
    const res = await as('wrong').send('PATCH', metadata.configuration_endpoint, {
      stream_id: stream.stream_id,
      description: 'x',
    });
    expect(res.status).toBe(401);
  });

  it('openid-ssf-stream-control-error-update-stream-with-invalid-body: 400, even for an unknown stream (SSF-33)', async () => {
    const stream = await createPoll();
    const broken = await call(bridge.origin, 'PATCH', metadata.configuration_endpoint, {
      token: ALICE.token,
      raw: '{"stream_id": ',
    });
    expect(broken.status).toBe(400);
    const unknownButBroken = await alice().send('PATCH', metadata.configuration_endpoint, {
      stream_id: 'no-such-stream',
      events_requested: 'not-an-array',
    });
    expect(unknownButBroken.status).toBe(400);
    const noId = await alice().send('PATCH', metadata.configuration_endpoint, { description: 'x' });
    expect(noId.status).toBe(400);
    expect(
      (await alice().get(metadata.configuration_endpoint, { stream_id: stream.stream_id })).json.description,
    ).toBeUndefined();
  });

  it('openid-ssf-stream-control-error-update-unknown-stream: 404', async () => {
    const gone = await deletedStreamId();
    expect(
      (await alice().send('PATCH', metadata.configuration_endpoint, { stream_id: gone, description: 'x' }))
        .status,
    ).toBe(404);
  });

  it('openid-ssf-stream-control-error-replace-stream-with-invalid-body: 400 (SSF-33)', async () => {
    await createPoll();
    const res = await call(bridge.origin, 'PUT', metadata.configuration_endpoint, {
      token: ALICE.token,
      raw: ';{ broken',
    });
    expect(res.status).toBe(400);
  });

  it('openid-ssf-stream-control-error-replace-stream-with-invalid-token: 401', async () => {
    const stream = await createPoll();
    expect(
      (await as('wrong').send('PUT', metadata.configuration_endpoint, { stream_id: stream.stream_id }))
        .status,
    ).toBe(401);
  });

  it('openid-ssf-stream-control-error-replace-unknown-stream: 404', async () => {
    const gone = await deletedStreamId();
    expect((await alice().send('PUT', metadata.configuration_endpoint, { stream_id: gone })).status).toBe(
      404,
    );
  });

  it('openid-ssf-stream-control-error-delete-stream-with-invalid-token: 401, and the stream stays', async () => {
    const stream = await createPoll();
    const res = await as('wrong').send('DELETE', metadata.configuration_endpoint, undefined, {
      stream_id: stream.stream_id,
    });
    expect(res.status).toBe(401);
    expect((await alice().get(metadata.configuration_endpoint, { stream_id: stream.stream_id })).status).toBe(
      200,
    );
  });

  it('openid-ssf-stream-control-error-delete-unknown-stream: 404, and 400 without stream_id (Appendix A)', async () => {
    const gone = await deletedStreamId();
    expect(
      (await alice().send('DELETE', metadata.configuration_endpoint, undefined, { stream_id: gone })).status,
    ).toBe(404);
    expect((await alice().send('DELETE', metadata.configuration_endpoint)).status).toBe(400);
  });

  it('openid-ssf-stream-subject-control: add 200, remove 204 (SSF-41, SSF-42, SSF-43)', async () => {
    const stream = await createPoll();
    const subject = { format: 'email', email: 'example.user@example.com' };
    const add = await alice().post(metadata.add_subject_endpoint, {
      stream_id: stream.stream_id,
      subject,
      verified: true,
    });
    expect(add.status).toBe(200);
    expect(add.text).toBe('');
    const remove = await alice().post(metadata.remove_subject_endpoint, {
      stream_id: stream.stream_id,
      subject,
    });
    expect(remove.status).toBe(204);
    // Removing a subject never added answers 204 as well (no subject probing, SSF-45).
    const never = { format: 'email', email: 'never.added@example.com' };
    expect(
      (await alice().post(metadata.remove_subject_endpoint, { stream_id: stream.stream_id, subject: never }))
        .status,
    ).toBe(204);
    // The stream's own subject cannot be removed (SSF-43).
    const own = { format: 'opaque', id: stream.stream_id };
    expect(
      (await alice().post(metadata.remove_subject_endpoint, { stream_id: stream.stream_id, subject: own }))
        .status,
    ).toBe(400);
    // Invalid subjects, unknown streams.
    const bad = await alice().post(metadata.add_subject_endpoint, {
      stream_id: stream.stream_id,
      subject: { format: 'email' },
    });
    expect(bad.status).toBe(400);
    await alice().send('DELETE', metadata.configuration_endpoint, undefined, { stream_id: stream.stream_id });
    expect(
      (await alice().post(metadata.add_subject_endpoint, { stream_id: stream.stream_id, subject })).status,
    ).toBe(404);
    expect(
      (await alice().post(metadata.remove_subject_endpoint, { stream_id: stream.stream_id, subject })).status,
    ).toBe(404);
  });

  it('openid-ssf-transmitter-stream-verification-push: state echoed, Authorization verbatim (SSF-47…SSF-50, PUSH-01…PUSH-04)', async () => {
    receiver.received.length = 0;
    const created = await alice().post(metadata.configuration_endpoint, {
      events_requested: [SESSION_REVOKED],
      delivery: { method: PUSH, endpoint_url: receiver.url, authorization_header: 'Bearer rx-secret-1' },
    });
    expect(created.status).toBe(201);
    const stream = created.json as Record<string, any>;
    // SSF-50: the unsolicited verification after create carries no state.
    const unsolicited = await eventually(() => receiver.received[0]);
    const first = await checkSet(bridge, unsolicited.body, ALICE.client_id);
    expect(first.events[VERIFICATION]).toEqual({});
    const res = await alice().post(metadata.verification_endpoint, {
      stream_id: stream.stream_id,
      state: 'state-42',
    });
    expect(res.status).toBe(204);
    const pushed = await eventually(() => receiver.received[1]);
    expect(pushed.headers['content-type']).toBe('application/secevent+jwt');
    expect(pushed.headers.accept).toBe('application/json');
    expect(pushed.headers.authorization).toBe('Bearer rx-secret-1');
    const claims = await checkSet(bridge, pushed.body, ALICE.client_id);
    expect(claims.sub_id).toEqual({ format: 'opaque', id: stream.stream_id });
    expect(claims.events).toEqual({ [VERIFICATION]: { state: 'state-42' } });
    expect(decodeJwt(pushed.body).header).toMatchObject({ alg: 'RS256', typ: 'secevent+jwt' });
  });

  it('openid-ssf-transmitter-stream-verification-poll-only: the solicited SET is polled (POLL-05)', async () => {
    const stream = await createPoll();
    expect(
      (
        await alice().post(metadata.verification_endpoint, {
          stream_id: stream.stream_id,
          state: 'poll-only',
        })
      ).status,
    ).toBe(204);
    const res = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const sets = Object.entries(res.json.sets as Record<string, string>);
    const states = [];
    for (const [jti, jwt] of sets) {
      const claims = await checkSet(bridge, jwt, ALICE.client_id);
      expect(claims.jti).toBe(jti);
      states.push(claims.events[VERIFICATION]);
    }
    expect(states).toContainEqual({ state: 'poll-only' });
    expect(res.json.moreAvailable).toBe(false);
  });

  it('openid-ssf-transmitter-stream-verification-poll-and-ack: acked SETs are gone, new ones come (POLL-07)', async () => {
    const stream = await createPoll();
    await alice().post(metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'one' });
    const first = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    const firstJtis = Object.keys(first.json.sets as object);
    expect(firstJtis.length).toBeGreaterThan(0);
    // Not acknowledged: the next poll returns them again.
    const again = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    expect(Object.keys(again.json.sets as object).sort()).toEqual([...firstJtis].sort());
    await alice().post(metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'two' });
    const second = await pollSets(stream, { maxEvents: 10, returnImmediately: true, ack: firstJtis });
    const jwts = Object.values(second.json.sets as Record<string, string>);
    expect(jwts).toHaveLength(1);
    expect(Object.keys(second.json.sets as object)).not.toContain(firstJtis[0]);
    expect(decodeJwt(jwts[0] as string).payload.events[VERIFICATION]).toEqual({ state: 'two' });
  });

  it('openid-ssf-transmitter-stream-verification-ack-only: maxEvents 0 with ack (POLL-03)', async () => {
    const stream = await createPoll();
    await alice().post(metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'ack-only' });
    const polled = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    const jtis = Object.keys(polled.json.sets as object);
    const ackOnly = await pollSets(stream, { maxEvents: 0, returnImmediately: true, ack: jtis });
    expect(ackOnly.status).toBe(200);
    expect(ackOnly.json.sets).toEqual({});
    const after = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    expect(after.json.sets).toEqual({});
  });

  it('openid-ssf-transmitter-stream-verification-error-push-no-auth: no Authorization header when none was given (PUSH-04)', async () => {
    receiver.received.length = 0;
    const created = await alice().post(metadata.configuration_endpoint, {
      delivery: { method: PUSH, endpoint_url: receiver.url },
    });
    expect(created.status).toBe(201);
    expect(created.json.delivery).toEqual({ method: PUSH, endpoint_url: receiver.url });
    await alice().post(metadata.verification_endpoint, {
      stream_id: created.json.stream_id,
      state: 'no-auth',
    });
    await eventually(() => receiver.received.length >= 2);
    for (const push of receiver.received) expect(push.headers).not.toHaveProperty('authorization');
  });

  it('openid-ssf-transmitter-stream-verification-set-errs: setErrs recorded against the jti, visible, not redelivered (POLL-03, POLL-07)', async () => {
    const stream = await createPoll();
    await alice().post(metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'expected' });
    const polled = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    const jtis = Object.keys(polled.json.sets as object);
    const setErrs = Object.fromEntries(
      jtis.map((jti) => [jti, { err: 'invalid_state', description: 'state mismatch' }]),
    );
    const res = await call(bridge.origin, 'POST', stream.delivery.endpoint_url, {
      token: ALICE.token,
      headers: { 'content-language': 'en' },
      body: { setErrs, maxEvents: 0, returnImmediately: true },
    });
    expect(res.status).toBe(200);
    expect(res.json.sets).toEqual({});
    const errors = await bridge.tx.streamErrors(stream.stream_id as string);
    expect(errors.map((e) => e.jti).sort()).toEqual([...jtis].sort());
    expect(errors[0]).toMatchObject({ err: 'invalid_state', description: 'state mismatch' });
    expect((await pollSets(stream, { returnImmediately: true })).json.sets).toEqual({});
    // A malformed setErrs is a 400 with the RFC 8936 error shape (POLL-08).
    const malformed = await pollSets(stream, { setErrs: { x: 'not-an-object' } });
    expect(malformed.status).toBe(400);
    expect(malformed.json).toMatchObject({ err: 'invalid_request', description: expect.any(String) });
  });

  it('openid-ssf-transmitter-stream-verification-long-poll: held until a SET arrives, then answered at once (POLL-06)', async () => {
    const stream = await createPoll();
    await pollSets(stream, { maxEvents: 10, returnImmediately: true }).then((r) =>
      pollSets(stream, { maxEvents: 0, ack: Object.keys(r.json.sets as object) }),
    );
    const started = Date.now();
    const empty = await pollSets(stream, { maxEvents: 10, returnImmediately: false });
    const waited = Date.now() - started;
    expect(empty.json.sets).toEqual({});
    // Bounded by poll.long_poll_max_wait (2 s here).
    expect(waited).toBeGreaterThanOrEqual(1_800);
    expect(waited).toBeLessThan(4_000);

    const pending = pollSets(stream, { maxEvents: 10, returnImmediately: false });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const triggered = Date.now();
    await alice().post(metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'long' });
    const answer = await pending;
    expect(Date.now() - triggered).toBeLessThan(1_000);
    const jwts = Object.values(answer.json.sets as Record<string, string>);
    expect(jwts.map((j) => decodeJwt(j).payload.events[VERIFICATION])).toContainEqual({ state: 'long' });
  });

  it('RFC 6750 §3.1 (TX-03): a credential in another scheme is no token, so the challenge names no error', async () => {
    const res = await call(bridge.origin, 'GET', metadata.configuration_endpoint, {
      headers: { authorization: 'Basic Zm9vOmJhcg==' },
    });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(res.headers.get('www-authenticate')).not.toMatch(/error=/);
  });

  it('RFC 8936 §2.3 (POLL-05): maxEvents 0 says more is available when only a control SET waits', async () => {
    const stream = await createPoll();
    // verify_on_create queued a verification SET; ack it, then ask for another.
    await pollSets(stream, { maxEvents: 10, returnImmediately: true }).then((r) =>
      pollSets(stream, { maxEvents: 0, ack: Object.keys(r.json.sets as object) }),
    );
    const none = await pollSets(stream, { maxEvents: 0, returnImmediately: true });
    expect(none.json).toEqual({ sets: {}, moreAvailable: false });
    await alice().post(metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'waiting' });
    const peek = await pollSets(stream, { maxEvents: 0, returnImmediately: true });
    expect(peek.json).toEqual({ sets: {}, moreAvailable: true });
  });

  it('POLL-11: a long poll waiting on a stream that is deleted answers 404, as the next poll would', async () => {
    const stream = await createPoll();
    await pollSets(stream, { maxEvents: 10, returnImmediately: true }).then((r) =>
      pollSets(stream, { maxEvents: 0, ack: Object.keys(r.json.sets as object) }),
    );
    const pending = pollSets(stream, { maxEvents: 5, returnImmediately: false });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(
      (
        await alice().send('DELETE', metadata.configuration_endpoint, undefined, {
          stream_id: stream.stream_id,
        })
      ).status,
    ).toBe(204);
    const answer = await pending;
    expect(answer.status).toBe(404);
    expect(answer.json).toMatchObject({ err: 'not_found' });
  });

  it('openid-ssf-transmitter-stream-caep-interop: CAEP interop events delivered and valid (IOP-03…IOP-05, IOP-16…IOP-18)', async () => {
    const interop = [SESSION_REVOKED, CREDENTIAL_CHANGE, DEVICE_COMPLIANCE];
    const stream = await createPoll(ALICE.token, { events_requested: interop });
    expect(stream.events_delivered).toEqual(interop);
    expect((await alice().get(metadata.configuration_endpoint, { stream_id: stream.stream_id })).status).toBe(
      200,
    );
    expect((await alice().get(metadata.status_endpoint, { stream_id: stream.stream_id })).json.status).toBe(
      'enabled',
    );
    await alice().post(metadata.verification_endpoint, { stream_id: stream.stream_id, state: 'interop' });
    const verification = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    await pollSets(stream, { maxEvents: 0, ack: Object.keys(verification.json.sets as object) });

    await bridge.ingest([
      sessionRevoked('user@example.com'),
      {
        type: CREDENTIAL_CHANGE,
        subject: { format: 'iss_sub', iss: 'https://idp.example', sub: 'u-42' },
        claims: {
          credential_type: 'fido2-roaming',
          change_type: 'create',
          reason_admin: { en: 'New security key' },
        },
      },
      {
        type: DEVICE_COMPLIANCE,
        subject: { format: 'email', email: 'device.owner@example.com' },
        claims: {
          previous_status: 'compliant',
          current_status: 'not-compliant',
          reason_admin: { en: 'Disk not encrypted' },
        },
      },
    ]);
    const received = new Map<string, Record<string, any>>();
    await eventually(async () => {
      const res = await pollSets(stream, {
        maxEvents: 10,
        returnImmediately: true,
        ack: [...received.keys()],
      });
      for (const [jti, jwt] of Object.entries(res.json.sets as Record<string, string>)) {
        received.set(jti, await checkSet(bridge, jwt, ALICE.client_id));
      }
      return received.size >= 3;
    });
    const byType = new Map([...received.values()].map((c) => [Object.keys(c.events)[0] as string, c]));
    expect([...byType.keys()].sort()).toEqual([...interop].sort());
    for (const claims of byType.values()) {
      const event = Object.values(claims.events)[0] as Record<string, any>;
      expect(['email', 'iss_sub']).toContain(claims.sub_id.format);
      expect(typeof claims.txn).toBe('string');
      expect(Object.keys(event.reason_admin).length).toBeGreaterThan(0);
      expect(typeof event.event_timestamp).toBe('number');
    }
    expect(byType.get(CREDENTIAL_CHANGE)?.events[CREDENTIAL_CHANGE]).toMatchObject({
      credential_type: 'fido2-roaming',
      change_type: 'create',
    });
    const deleted = await alice().send('DELETE', metadata.configuration_endpoint, undefined, {
      stream_id: stream.stream_id,
    });
    expect(deleted.status).toBe(204);
  });

  it('stream-updated SETs are opaque-subject SSF events (SSF-53)', async () => {
    const stream = await createPoll();
    await pollSets(stream, { maxEvents: 10, returnImmediately: true }).then((r) =>
      pollSets(stream, { maxEvents: 0, ack: Object.keys(r.json.sets as object) }),
    );
    await bridge.tx.setStreamStatus(stream.stream_id as string, 'paused', 'maintenance');
    const res = await pollSets(stream, { maxEvents: 10, returnImmediately: true });
    const jwts = Object.values(res.json.sets as Record<string, string>);
    expect(jwts).toHaveLength(1);
    const claims = await checkSet(bridge, jwts[0] as string, ALICE.client_id);
    expect(claims.sub_id).toEqual({ format: 'opaque', id: stream.stream_id });
    expect(claims.events).toEqual({ [STREAM_UPDATED]: { status: 'paused', reason: 'maintenance' } });
  });
});
