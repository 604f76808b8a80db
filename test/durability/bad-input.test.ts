import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigData } from '../../core/config/index.ts';
import { Bridge } from '../../core/runtime/bridge.ts';
import { configCrossChecks, defaultRegistry } from '../../core/runtime/defaults.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import { HTTP_PUSH_PLUGIN, INGEST_TOKEN, Receiver, SOURCE, expectedJti, waitFor } from './harness.ts';

// Issue 4 acceptance: bad input at /ingest gets the precise status and message, nothing of it is
// stored, and the bridge keeps serving: after every refusal a good event is accepted and delivered.

let dir: string;
let receiver: Receiver;
let bridge: Bridge;
const accepted: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-bad-input-'));
  receiver = await new Receiver().start();
  const loaded = await loadConfigData(
    {
      server: { host: '127.0.0.1', port: 0 },
      data_dir: join(dir, 'data'),
      plugins: [HTTP_PUSH_PLUGIN],
      inbound: [{ id: SOURCE, connector: 'events-api', config: { token: INGEST_TOKEN } }],
      outbound: [{ id: 'receiver', connector: 'test-http-push', config: { url: receiver.url('/r') } }],
      routes: [{ from: [SOURCE], to: ['receiver'] }],
      keys: { algorithm: 'ES256' },
    },
    { registry: defaultRegistry(), crossChecks: configCrossChecks() },
  );
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  bridge = new Bridge(loaded.config, { logger: silentLogger() });
  await bridge.start();
});

afterAll(async () => {
  await bridge?.stop();
  await receiver?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Answer {
  status: number;
  headers: Headers;
  body: unknown;
}

async function post(
  body: string,
  headers: Record<string, string> = {},
  path = `/ingest/${SOURCE}`,
): Promise<Answer> {
  const res = await fetch(`${bridge.url}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json', ...headers },
    body,
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as unknown };
}

const good = (id: string) =>
  JSON.stringify({
    id,
    type: 'caep.session-revoked',
    subject: { format: 'email', email: `${id}@example.com` },
  });

/** After every refusal the bridge still accepts a valid event. */
async function stillServing(id: string): Promise<void> {
  const answer = await post(good(id));
  expect(answer.status).toBe(202);
  accepted.push(id);
}

describe('bad input at /ingest', () => {
  it('malformed JSON: 400 naming the parse error', async () => {
    expect(await post('{"type": ')).toMatchObject({
      status: 400,
      body: { error: 'invalid_request', message: 'malformed JSON body: Unexpected end of JSON input' },
    });
    await stillServing('after-malformed');
  });

  it('wrong types: 400 with every problem and its path', async () => {
    const answer = await post(JSON.stringify({ type: 42, subject: 'jane@example.com', claims: [] }));
    expect(answer).toMatchObject({ status: 400 });
    expect(answer.body).toEqual({
      error: 'invalid_request',
      problems: [
        { path: 'type', message: 'Invalid input: expected string, received number' },
        { path: 'subject', message: 'Invalid input: expected object, received string' },
        { path: 'claims', message: 'Invalid input: expected record, received array' },
      ],
    });
    await stillServing('after-wrong-types');
  });

  it('unknown event type: 400 naming the nearest known type', async () => {
    const answer = await post(
      JSON.stringify({ type: 'caep.session-revokd', subject: { format: 'email', email: 'a@example.com' } }),
    );
    expect(answer).toMatchObject({ status: 400 });
    expect(answer.body).toEqual({
      error: 'invalid_request',
      problems: [
        {
          path: 'type',
          message:
            'unknown event type "caep.session-revokd"; did you mean "caep.session-revoked"? (see: ssf-bridge events list)',
        },
      ],
    });
    await stillServing('after-unknown-type');
  });

  it('missing subject: 400; a batch with one bad event is refused whole', async () => {
    expect((await post(JSON.stringify({ type: 'caep.session-revoked' }))).body).toEqual({
      error: 'invalid_request',
      problems: [{ path: 'subject', message: 'Invalid input: expected object, received undefined' }],
    });
    const batch = await post(
      JSON.stringify([
        {
          id: 'refused-with-its-batch',
          type: 'caep.session-revoked',
          subject: { format: 'email', email: 'b@example.com' },
        },
        { type: 'caep.session-revoked', subject: { format: 'email' } },
      ]),
    );
    expect(batch).toMatchObject({ status: 400 });
    expect(batch.body).toEqual({
      error: 'invalid_request',
      problems: [{ path: '[1].subject.email', message: 'is required by format email (RFC 9493 §3.2.2)' }],
    });
    await stillServing('after-missing-subject');
  });

  it('claims or a subject nested thousands of levels deep: 400 naming the field, never a 500', async () => {
    const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);
    for (const [withId, part] of [
      [true, 'claims'],
      [false, 'claims'],
      [false, 'subject'],
    ] as const) {
      const body =
        part === 'claims'
          ? `{${withId ? '"id":"deep-1",' : ''}"type":"caep.session-revoked","subject":{"format":"email","email":"d@example.com"},"claims":{"x":${deep(5000)}}}`
          : `{"type":"caep.session-revoked","subject":{"format":"email","email":"d@example.com","x":${deep(5000)}}}`;
      const answer = await post(body);
      expect(answer.status, `${part}, id ${withId}`).toBe(400);
      expect(answer.body).toEqual({
        error: 'invalid_request',
        problems: [{ path: part, message: 'nests more than 32 levels deep' }],
      });
    }
    await stillServing('after-deep-nesting');
  });

  it('text no store keeps (U+0000, half a surrogate pair): 400 naming the field, on every store alike', async () => {
    // PostgreSQL refuses both in text and jsonb; refused at acceptance, SQLite and PostgreSQL
    // take the same events, and a sender never gets a 500 to retry forever.
    const subject = '{"format":"email","email":"t@example.com"}';
    for (const [body, path] of [
      [`{"id":"nul\\u0000id","type":"caep.session-revoked","subject":${subject}}`, 'id'],
      [`{"txn":"t\\u0000","type":"caep.session-revoked","subject":${subject}}`, 'txn'],
      [
        `{"type":"caep.session-revoked","subject":${subject},"claims":{"reason_admin":{"en":"x\\ud800y"}}}`,
        'claims.reason_admin.en',
      ],
      [`{"type":"caep.session-revoked","subject":{"format":"opaque","id":"x\\udc00y"}}`, 'subject.id'],
    ] as const) {
      const answer = await post(body);
      expect(answer.status, body).toBe(400);
      expect(answer.body, body).toEqual({
        error: 'invalid_request',
        problems: [{ path, message: 'holds U+0000 or half of a surrogate pair, which no store keeps' }],
      });
    }
    await stillServing('after-unstorable-text');
  });

  it('problems are named where the sender wrote them: the event in the body, the field by its name', async () => {
    const subject = { format: 'email', email: 'p@example.com' };
    const bad = { type: 'caep.session-revoked', subject: { format: 'email' } };
    const envelope = await post(JSON.stringify({ events: [{ type: 'caep.session-revoked', subject }, bad] }));
    expect(envelope.body).toEqual({
      error: 'invalid_request',
      problems: [
        { path: 'events[1].subject.email', message: 'is required by format email (RFC 9493 §3.2.2)' },
      ],
    });
    const misspelt = await post(JSON.stringify({ type: 'caep.session-revoked', subjet: subject }));
    expect((misspelt.body as { problems: Array<{ path: string }> }).problems.map((p) => p.path)).toContain(
      'subjet',
    );
    // event_timestamp made from occurred_at: the problem is in occurred_at.
    const early = await post(
      JSON.stringify({ type: 'caep.session-revoked', subject, occurred_at: '1969-12-31T00:00:00Z' }),
    );
    expect(early.status).toBe(400);
    expect((early.body as { problems: Array<{ path: string }> }).problems.map((p) => p.path)).toEqual([
      'occurred_at',
    ]);
    await stillServing('after-sent-paths');
  });

  it('a 10 MB body: 413 with the limit', async () => {
    const answer = await post(JSON.stringify({ padding: 'x'.repeat(10 * 1024 * 1024) }));
    expect(answer).toMatchObject({
      status: 413,
      body: { error: 'payload_too_large', message: 'request body exceeds the limit of 1048576 bytes' },
    });
    await stillServing('after-oversize');
  });

  it('wrong token: 403; no token: 401 with the scheme to use', async () => {
    expect(await post(good('wrong-token'), { authorization: 'Bearer not-the-token' })).toMatchObject({
      status: 403,
      body: { error: 'forbidden', message: 'the ingest token is not valid for this instance' },
    });
    const missing = await post(good('no-token'), { authorization: '' });
    expect(missing).toMatchObject({
      status: 401,
      body: { error: 'unauthorized', message: 'send the ingest token as "Authorization: Bearer <token>"' },
    });
    expect(missing.headers.get('www-authenticate')).toBe('Bearer realm="ssf-bridge"');
    await stillServing('after-bad-token');
  });

  it('a body that is not JSON, and an unknown instance', async () => {
    expect(await post(good('as-text'), { 'content-type': 'text/plain' })).toMatchObject({
      status: 400,
      body: {
        error: 'invalid_request',
        problems: [{ path: '(body)', message: 'a JSON body is required (Content-Type: application/json)' }],
      },
    });
    expect(await post(good('nowhere'), {}, '/ingest/nowhere')).toMatchObject({
      status: 404,
      body: { error: 'not_found', message: 'no webhook instance "nowhere"' },
    });
    await stillServing('after-not-json');
  });

  it('delivers the good events and nothing that was refused', async () => {
    const expected = accepted.map((id) => expectedJti(id, 'receiver'));
    expect(await waitFor(() => expected.every((j) => receiver.deliveredJtis('/r').has(j)), 20_000)).toBe(
      true,
    );
    expect(receiver.deliveredJtis('/r')).toEqual(new Set(expected));
    expect((await bridge.store.stats()).backlog).toEqual({});
  });
});
