/**
 * Push (RFC 8935) answers and their consequences, and poll (RFC 8936) request handling, through
 * the real pipeline, outbox and delivery engine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { capturingLogger } from '../helpers/capture.ts';
import {
  ALICE,
  POLL,
  PUSH,
  SESSION_REVOKED,
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
const log = capturingLogger('debug');

beforeAll(async () => {
  bridge = await startBridge({
    logger: log.logger,
    transmitter: {
      streams: { per_receiver: 'many', default_subjects: 'NONE' },
      push: { invalid_key_retries: 2, invalid_key_retry_after: '50ms' },
      poll: { max_events: 3, default_max_events: 2 },
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

let n = 0;

/** A stream that gets events about one subject (default_subjects NONE here). */
async function streamFor(email: string, delivery: Record<string, unknown>): Promise<string> {
  const created = await api('POST', 'ssf/streams', { events_requested: [SESSION_REVOKED], delivery });
  expect(created.status).toBe(201);
  const id = created.json.stream_id as string;
  const added = await api('POST', 'ssf/subjects/add', { stream_id: id, subject: { format: 'email', email } });
  expect(added.status).toBe(200);
  return id;
}

async function pushScenario(answers: Array<{ status: number; body?: unknown }>) {
  n += 1;
  const email = `push${n}@example.com`;
  const id = await streamFor(email, { method: PUSH, endpoint_url: `${receiver.url}/${n}` });
  receiver.answer(...answers);
  await bridge.ingest([sessionRevoked(email)]);
  return { id, path: `/push/${n}` };
}

async function deadLetter(streamId: string) {
  return eventually(
    async () => (await bridge.store.deadLetters.list({ destinationId: `stream:${streamId}` }))[0],
  );
}

describe('push delivery (RFC 8935)', () => {
  it('PUSH-11: a 400 invalid_request is not retried; it is dead-lettered and logged with its err code', async () => {
    const { id, path } = await pushScenario([
      { status: 400, body: { err: 'invalid_request', description: 'bad event' } },
    ]);
    const letter = await deadLetter(id);
    expect(letter.attempts).toBe(1);
    expect(letter.lastError).toMatchObject({ code: 'SSF_ERR_TRANSMITTER_PUSH_REJECTED', status: 400 });
    expect(receiver.received.filter((r) => r.path === path)).toHaveLength(1);
    const logged = log.records().find((r) => r.msg === 'receiver refused a SET' && r.streamId === id);
    expect(logged).toMatchObject({ err: 'invalid_request', description: 'bad event', status: 400 });
  });

  it('TX-11: invalid_key is retried a bounded number of times (the receiver may refresh our JWKS), then dead-lettered', async () => {
    const invalidKey = { status: 400, body: { err: 'invalid_key', description: 'unknown kid' } };
    const { id, path } = await pushScenario([invalidKey, invalidKey, invalidKey]);
    const letter = await deadLetter(id);
    expect(letter.attempts).toBe(3);
    expect(letter.lastError?.code).toBe('SSF_ERR_TRANSMITTER_PUSH_INVALID_KEY');
    expect(letter.lastError?.message).toMatch(/stale copy of our JWKS/);
    expect(receiver.received.filter((r) => r.path === path)).toHaveLength(3);
    // The same jti each time: a redelivery is the same SET (SET-16).
    const jtis = new Set(
      receiver.received.filter((r) => r.path === path).map((r) => decodeJwt(r.body).payload.jti),
    );
    expect(jtis.size).toBe(1);
  });

  it('TX-11: authentication_failed flags the credentials and is not retried', async () => {
    const { id } = await pushScenario([
      { status: 400, body: { err: 'authentication_failed', description: 'bad token' } },
    ]);
    const letter = await deadLetter(id);
    expect(letter.attempts).toBe(1);
    expect(letter.lastError?.code).toBe('SSF_ERR_TRANSMITTER_PUSH_AUTH');
  });

  it('PUSH-11: 5xx answers are retried until the receiver accepts (202 = delivered)', async () => {
    const { id, path } = await pushScenario([{ status: 503 }, { status: 500 }]);
    await eventually(() => receiver.received.filter((r) => r.path === path).length === 3);
    await eventually(async () => (await bridge.store.deliveries.backlog()).get(`stream:${id}`) === undefined);
    expect(await bridge.store.deadLetters.count({ destinationId: `stream:${id}` })).toBe(0);
  });

  it('a 401 from the receiver is permanent (credentials), not a retry loop', async () => {
    const { id } = await pushScenario([{ status: 401 }]);
    expect((await deadLetter(id)).lastError?.code).toBe('SSF_ERR_HTTP_AUTH');
  });

  it("the stream's authorization_header is sent verbatim and never written to the log", async () => {
    const credential = 'Bearer push-credential-that-must-not-leak';
    n += 1;
    const email = `secret${n}@example.com`;
    const id = await streamFor(email, {
      method: PUSH,
      endpoint_url: `${receiver.url}/${n}`,
      authorization_header: credential,
    });
    receiver.answer({ status: 400, body: { err: 'access_denied', description: `refused ${credential}` } });
    await bridge.ingest([sessionRevoked(email)]);
    await deadLetter(id);
    expect(receiver.received.find((r) => r.path === `/push/${n}`)?.headers.authorization).toBe(credential);
    expect(log.text()).toMatch(/access_denied/);
    expect(log.text()).not.toContain('push-credential-that-must-not-leak');
    expect(log.text()).toContain('refused [redacted]');
  });
});

it('a receiver-chosen authorization_header never rewrites other log lines, and an echo of it is hidden', async () => {
  n += 1;
  const from = log.lines.length;
  // Strings that occur in every log line: were they scrubbed everywhere, the log would break.
  const ids: string[] = [];
  for (const header of ['"msg"', 'alice', 'stream created']) {
    ids.push(
      await streamFor(`echo${n}@example.com`, {
        method: PUSH,
        endpoint_url: `${receiver.url}/${n}`,
        authorization_header: header,
      }),
    );
  }
  const records = log.lines.slice(from).map((line) => JSON.parse(line) as Record<string, unknown>);
  const created = records.filter((r) => r.msg === 'stream created').map((r) => r.streamId);
  expect(created).toEqual(ids);
  expect(records.filter((r) => r.msg === 'stream created').every((r) => r.clientId === 'alice')).toBe(true);

  // The receiver echoes its credential in a refusal: the echo is hidden, in the log and the letter.
  const credential = 'Bearer echo-credential-5d1e';
  const id = await streamFor(`echoed${n}@example.com`, {
    method: PUSH,
    endpoint_url: `${receiver.url}/${n}`,
    authorization_header: credential,
  });
  receiver.answer({ status: 403, body: `forbidden for ${credential} (token echo-credential-5d1e)` });
  await bridge.ingest([sessionRevoked(`echoed${n}@example.com`)]);
  const letter = await deadLetter(id);
  expect(JSON.stringify(letter.lastError)).not.toContain('echo-credential-5d1e');
  expect(log.text()).not.toContain('echo-credential-5d1e');
});

it('RFC 8935 §2.4: an unknown err from a receiver is counted as other, never as a new metric label', async () => {
  const { id } = await pushScenario([
    { status: 400, body: { err: 'made_up_code_7f3a', description: 'whatever the receiver says' } },
  ]);
  expect((await deadLetter(id)).lastError?.code).toBe('SSF_ERR_TRANSMITTER_PUSH_REJECTED');
  const text = await bridge.metricsText();
  expect(text).toMatch(/ssf_bridge_transmitter_push_failures_total\{[^}]*err="other"[^}]*\} [1-9]/);
  expect(text).not.toContain('made_up_code_7f3a');
});

describe('poll delivery (RFC 8936)', () => {
  it('POLL-03: setErrs about SETs the stream never handed out are ignored in one log line; codes are bounded labels', async () => {
    const id = await streamFor('seterrs@example.com', { method: POLL });
    const from = log.lines.length;
    const invented = Object.fromEntries(
      Array.from({ length: 500 }, (_, i) => [`no-such-jti-${i}`, { err: `code_${i}`, description: 'x' }]),
    );
    const res = await api('POST', `ssf/poll/${id}`, {
      setErrs: invented,
      returnImmediately: true,
      maxEvents: 0,
    });
    expect(res.status).toBe(200);
    const records = log.lines.slice(from).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.filter((r) => r.streamId === id && r.level === 'warn')).toHaveLength(1);
    expect(records.find((r) => r.reported === 500)?.msg).toBe(
      'receiver reported errors for SETs this stream has no unsettled copy of; ignored',
    );
    expect(await bridge.metricsText()).not.toContain('code_1');

    // A real one, with a code outside RFC 8935's list, is recorded and counted as other.
    await bridge.ingest([sessionRevoked('seterrs@example.com')]);
    const sets = await eventually(async () => {
      const r = await api('POST', `ssf/poll/${id}`, { returnImmediately: true });
      return Object.keys(r.json.sets).length > 0 ? Object.keys(r.json.sets) : undefined;
    });
    const jti = sets[0] as string;
    await api('POST', `ssf/poll/${id}`, {
      setErrs: { [jti]: { err: 'vendor_specific', description: 'no' } },
      returnImmediately: true,
      maxEvents: 0,
    });
    expect(await bridge.metricsText()).toMatch(
      /ssf_bridge_transmitter_set_errors_total\{[^}]*err="other"[^}]*\} 1/,
    );
    expect(log.text()).toContain(`"jti":"${jti}"`);
  });

  it('POLL-02, POLL-05: maxEvents (defaulted, capped), moreAvailable, ack; unacked SETs come back', async () => {
    const id = await streamFor('poller@example.com', { method: POLL });
    await bridge.ingest([1, 2, 3, 4, 5].map(() => sessionRevoked('poller@example.com')));
    const poll = (body: unknown) => api('POST', `ssf/poll/${id}`, body);
    await eventually(async () => (await bridge.store.streams.pollQueueDepth(id)) === 5);

    const defaulted = await poll({ returnImmediately: true });
    expect(Object.keys(defaulted.json.sets)).toHaveLength(2);
    expect(defaulted.json.moreAvailable).toBe(true);
    const capped = await poll({
      returnImmediately: true,
      maxEvents: 100,
      ack: Object.keys(defaulted.json.sets),
    });
    expect(Object.keys(capped.json.sets)).toHaveLength(3);
    expect(capped.json.moreAvailable).toBe(false);
    // Not acknowledged: returned again on the next poll (POLL-07).
    const again = await poll({ returnImmediately: true, maxEvents: 3 });
    expect(Object.keys(again.json.sets).sort()).toEqual(Object.keys(capped.json.sets).sort());
    // Unknown jtis in ack are ignored.
    const done = await poll({
      returnImmediately: true,
      ack: [...Object.keys(again.json.sets), 'never-sent'],
    });
    expect(done.status).toBe(200);
    expect(done.json).toEqual({ sets: {}, moreAvailable: false });
  });

  it('POLL-08: malformed poll requests are 400 with {err, description}', async () => {
    const id = await streamFor('malformed@example.com', { method: POLL });
    for (const body of [
      { maxEvents: -1 },
      { maxEvents: 1.5 },
      { returnImmediately: 'yes' },
      { ack: 'jti' },
      { ack: [1] },
      [1],
    ]) {
      const res = await api('POST', `ssf/poll/${id}`, body);
      expect(res.status).toBe(400);
      expect(res.json).toMatchObject({ err: 'invalid_request', description: expect.any(String) });
    }
    const broken = await call(bridge.issuer, 'POST', `ssf/poll/${id}`, {
      token: ALICE.token,
      raw: '{"maxEvents":',
    });
    expect(broken.status).toBe(400);
    expect(broken.json.err).toBe('invalid_request');
  });

  it('POLL-11: a deleted stream is 404; a push stream has no poll endpoint', async () => {
    const id = await streamFor('gone@example.com', { method: POLL });
    await api('DELETE', 'ssf/streams', undefined, { stream_id: id });
    expect((await api('POST', `ssf/poll/${id}`, { returnImmediately: true })).status).toBe(404);
    const pushId = await streamFor('pushonly@example.com', { method: PUSH, endpoint_url: receiver.url });
    expect((await api('POST', `ssf/poll/${pushId}`, { returnImmediately: true })).status).toBe(400);
  });

  it('TX-09: with default_subjects NONE only subjects added to the stream are delivered; removal stops them', async () => {
    const id = await streamFor('wanted@example.com', { method: POLL });
    await bridge.ingest([sessionRevoked('wanted@example.com'), sessionRevoked('unwanted@example.com')]);
    const first = await eventually(async () => {
      const res = await api('POST', `ssf/poll/${id}`, { returnImmediately: true });
      return Object.keys(res.json.sets).length > 0 ? res.json.sets : undefined;
    });
    expect(
      Object.values(first as Record<string, string>).map((j) => decodeJwt(j).payload.sub_id.email),
    ).toEqual(['wanted@example.com']);
    await api('POST', `ssf/poll/${id}`, { maxEvents: 0, ack: Object.keys(first as object) });
    await api('POST', 'ssf/subjects/remove', {
      stream_id: id,
      subject: { format: 'email', email: 'wanted@example.com' },
    });
    await bridge.ingest([sessionRevoked('wanted@example.com')]);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await api('POST', `ssf/poll/${id}`, { returnImmediately: true })).json.sets).toEqual({});
  });
});

describe('changing the delivery method (SSF-29/SSF-31, TX-05): no SET is lost either way', () => {
  const note = (text: string) => ({
    claims: { initiating_entity: 'admin', reason_admin: { en: text } },
  });
  const noteOf = (jwt: string) => decodeJwt(jwt).payload.events[SESSION_REVOKED].reason_admin.en as string;
  const pushedTo = (path: string) =>
    receiver.received.filter((p) => p.path === path).map((p) => noteOf(p.body));

  async function queuedForPolling(email: string, notes: string[]): Promise<string> {
    const id = await streamFor(email, { method: POLL });
    // One at a time, so that the queue holds them in this order.
    for (const text of notes) await bridge.ingest([sessionRevoked(email, note(text))]);
    await eventually(async () => (await bridge.store.streams.pollQueueDepth(id)) === notes.length);
    return id;
  }

  it('SSF-31, TX-05: poll to push pushes the SETs still queued for polling, in order, before newer ones', async () => {
    n += 1;
    const email = `topush${n}@example.com`;
    const id = await queuedForPolling(email, ['q1', 'q2', 'q3']);
    // The first push of q1 fails: its retry is a second away, and q4 (newer) must still wait for it.
    receiver.answer({ status: 503 });
    const patched = await api('PATCH', 'ssf/streams', {
      stream_id: id,
      delivery: { method: PUSH, endpoint_url: `${receiver.url}/${n}` },
    });
    expect(patched.status).toBe(200);
    await bridge.ingest([sessionRevoked(email, note('q4'))]);
    const path = `/push/${n}`;
    await eventually(() => new Set(pushedTo(path)).size >= 4);
    // q1 twice (refused, then accepted), and nothing before it again.
    expect(pushedTo(path)).toEqual(['q1', 'q1', 'q2', 'q3', 'q4']);
    expect(await bridge.store.streams.pollQueueDepth(id)).toBe(0);
  });

  it('SSF-31, TX-07: a paused stream switched from poll to push holds its queued SETs until enabled, then pushes them in order', async () => {
    n += 1;
    const email = `pausedpush${n}@example.com`;
    const id = await queuedForPolling(email, ['p1', 'p2']);
    expect((await api('POST', 'ssf/status', { stream_id: id, status: 'paused' })).status).toBe(200);
    const patched = await api('PATCH', 'ssf/streams', {
      stream_id: id,
      delivery: { method: PUSH, endpoint_url: `${receiver.url}/${n}` },
    });
    expect(patched.status).toBe(200);
    const path = `/push/${n}`;
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(pushedTo(path)).toEqual([]);
    expect(await bridge.store.streams.pollQueueDepth(id)).toBe(2);
    expect((await api('POST', 'ssf/status', { stream_id: id, status: 'enabled' })).status).toBe(200);
    // Enabling alone sends them: no newer event is needed to set them going.
    await eventually(() => pushedTo(path).length >= 2);
    expect(pushedTo(path)).toEqual(['p1', 'p2']);
  });

  it('SSF-31, TX-05: push to poll serves by poll the SETs not yet pushed', async () => {
    n += 1;
    const email = `topoll${n}@example.com`;
    const id = await streamFor(email, { method: PUSH, endpoint_url: `${receiver.url}/${n}` });
    expect((await api('POST', 'ssf/status', { stream_id: id, status: 'paused' })).status).toBe(200);
    for (const text of ['h1', 'h2']) await bridge.ingest([sessionRevoked(email, note(text))]);
    const patched = await api('PATCH', 'ssf/streams', { stream_id: id, delivery: { method: POLL } });
    expect(patched.status).toBe(200);
    expect((await api('POST', 'ssf/status', { stream_id: id, status: 'enabled' })).status).toBe(200);
    const sets = await eventually(async () => {
      const res = await api('POST', `ssf/poll/${id}`, { returnImmediately: true, maxEvents: 3 });
      return Object.keys(res.json.sets).length >= 2 ? (res.json.sets as Record<string, string>) : undefined;
    });
    expect(Object.values(sets).map(noteOf).sort()).toEqual(['h1', 'h2']);
    expect(pushedTo(`/push/${n}`)).toEqual([]);
  });
});

describe('routing through the pipeline as in production (routing index)', () => {
  const tenant = (id: string) => ({ format: 'opaque', id });
  const user = (email: string) => ({ format: 'email', email });

  it('TX-09, SSF-40: under default_subjects NONE an added complex subject is a wildcard for the members it leaves out', async () => {
    const created = await api('POST', 'ssf/streams', {
      events_requested: [SESSION_REVOKED],
      delivery: { method: POLL },
    });
    const id = created.json.stream_id as string;
    const added = await api('POST', 'ssf/subjects/add', {
      stream_id: id,
      subject: { format: 'complex', tenant: tenant('tenant-wild') },
    });
    expect(added.status).toBe(200);
    await bridge.ingest([
      // Same tenant, a user the stream never named: delivered (user is a wildcard).
      sessionRevoked('x@example.com', {
        subject: { format: 'complex', tenant: tenant('tenant-wild'), user: user('u1@example.com') },
      }),
      // Another tenant: not delivered.
      sessionRevoked('x@example.com', {
        subject: { format: 'complex', tenant: tenant('tenant-other'), user: user('u1@example.com') },
      }),
      // A simple subject never matches a complex one.
      sessionRevoked('u1@example.com'),
    ]);
    const sets = await eventually(async () => {
      const res = await api('POST', `ssf/poll/${id}`, { returnImmediately: true, maxEvents: 3 });
      return Object.keys(res.json.sets).length > 0 ? (res.json.sets as Record<string, string>) : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 200));
    const more = await api('POST', `ssf/poll/${id}`, { returnImmediately: true, maxEvents: 3 });
    const all = { ...sets, ...(more.json.sets as Record<string, string>) };
    expect(Object.values(all).map((j) => decodeJwt(j).payload.sub_id)).toEqual([
      { format: 'complex', tenant: tenant('tenant-wild'), user: user('u1@example.com') },
    ]);
  });
});
