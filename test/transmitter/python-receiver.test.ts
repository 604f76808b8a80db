/**
 * Cross-implementation test: an independent receiver in another stack (test/transmitter/receiver.py:
 * Python's standard library HTTP server with Debian's PyJWT) subscribes to a real bridge by push,
 * verifies every SET against the bridge's JWKS, and confirms delivery, the pause/hold/resume
 * order and the verification state.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALICE,
  PUSH,
  SESSION_REVOKED,
  STREAM_UPDATED,
  VERIFICATION,
  call,
  eventually,
  sessionRevoked,
  startBridge,
  type Bridge,
} from './harness.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./receiver.py', import.meta.url));
const AUTHORIZATION = 'Bearer python-receiver-secret';

interface Received {
  ok: boolean;
  err?: string;
  jti?: string;
  type?: string;
  event?: Record<string, any>;
  sub_id?: Record<string, string>;
  authorization: string | null;
  content_type: string | null;
}

let bridge: Bridge;
let python: ChildProcessWithoutNullStreams;
let receiverUrl: string;

async function startPython(): Promise<string> {
  const metadata = (await call(bridge.origin, 'GET', '/.well-known/ssf-configuration')).json;
  python = spawn(PYTHON, [
    SCRIPT,
    '--issuer',
    metadata.issuer,
    '--jwks-uri',
    metadata.jwks_uri,
    '--audience',
    ALICE.client_id,
    '--authorization',
    AUTHORIZATION,
  ]);
  let stderr = '';
  python.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    python.stdout.once('data', (chunk: Buffer) => {
      const port = /READY (\d+)/.exec(chunk.toString())?.[1];
      if (port) resolve(`http://127.0.0.1:${port}`);
      else reject(new Error(`receiver.py did not start: ${chunk.toString()}`));
    });
    python.once('exit', (code) => reject(new Error(`receiver.py exited with ${code}: ${stderr}`)));
  });
}

async function received(): Promise<Received[]> {
  return (await call(receiverUrl, 'GET', '/_received')).json as Received[];
}

const api = (method: string, path: string, body?: unknown) =>
  call(bridge.issuer, method, path, { token: ALICE.token, body });

function numbered(from: number, to: number) {
  const out = [];
  for (let i = from; i <= to; i++)
    out.push(sessionRevoked('py.user@example.com', { claims: { reason_admin: { en: `e${i}` } } }));
  return out;
}

const eventsOf = (list: Received[]) =>
  list.filter((r) => r.type === SESSION_REVOKED).map((r) => r.event?.reason_admin.en);

beforeAll(async () => {
  bridge = await startBridge();
  receiverUrl = await startPython();
});

afterAll(async () => {
  python?.kill();
  await bridge?.close();
});

describe('Python PyJWT push receiver', () => {
  it('verifies every SET, sees the verification state, and gets held events in order after a resume', async () => {
    const created = await api('POST', 'ssf/streams', {
      events_requested: [SESSION_REVOKED],
      delivery: {
        method: PUSH,
        endpoint_url: `${receiverUrl}/ssf/push`,
        authorization_header: AUTHORIZATION,
      },
    });
    expect(created.status).toBe(201);
    const streamId = created.json.stream_id as string;

    // Verification (SSF 1.0 §8.1.4): the receiver checks the state it asked for and the stream subject.
    await call(receiverUrl, 'POST', '/_expect', { body: { stream_id: streamId, state: 'py-state-1' } });
    expect((await api('POST', 'ssf/verify', { stream_id: streamId, state: 'py-state-1' })).status).toBe(204);
    await eventually(async () => (await received()).some((r) => r.type === VERIFICATION));

    // Delivery.
    await bridge.ingest(numbered(1, 2));
    await eventually(async () => eventsOf(await received()).length === 2);

    // Pause: nothing arrives; resume: the held events arrive, in the order they were generated.
    expect((await api('POST', 'ssf/status', { stream_id: streamId, status: 'paused' })).status).toBe(200);
    await bridge.ingest(numbered(3, 5));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(eventsOf(await received())).toEqual(['e1', 'e2']);
    expect((await api('POST', 'ssf/status', { stream_id: streamId, status: 'enabled' })).status).toBe(200);
    await eventually(async () => eventsOf(await received()).length === 5);
    expect(eventsOf(await received())).toEqual(['e1', 'e2', 'e3', 'e4', 'e5']);

    // An operator pause is announced to the receiver with a stream-updated event.
    await bridge.tx.setStreamStatus(streamId, 'paused', 'planned maintenance');
    const update = await eventually(async () => (await received()).find((r) => r.type === STREAM_UPDATED));
    expect(update.event).toEqual({ status: 'paused', reason: 'planned maintenance' });
    expect(update.sub_id).toEqual({ format: 'opaque', id: streamId });
    await bridge.tx.setStreamStatus(streamId, 'enabled');

    // A verification with a state the receiver did not ask for is refused with invalid_state, and
    // the bridge records the refusal against the SET.
    expect(
      (await api('POST', 'ssf/verify', { stream_id: streamId, state: 'not-what-python-expects' })).status,
    ).toBe(204);
    const refused = await eventually(async () => (await received()).find((r) => r.err === 'invalid_state'));
    const errors = await eventually(async () => {
      const list = await bridge.tx.streamErrors(streamId);
      return list.length > 0 ? list : undefined;
    });
    expect(errors[0]).toMatchObject({ jti: refused.jti, err: 'invalid_state' });

    const all = await received();
    const verifications = all.filter((r) => r.type === VERIFICATION);
    expect(verifications.map((r) => [r.ok, r.event?.state])).toEqual([
      [true, 'py-state-1'],
      [false, 'not-what-python-expects'],
    ]);
    // Every other SET passed PyJWT's verification, with the Authorization header and media type of RFC 8935.
    for (const r of all.filter((x) => x.err !== 'invalid_state')) {
      expect(r).toMatchObject({
        ok: true,
        authorization: AUTHORIZATION,
        content_type: 'application/secevent+jwt',
      });
    }
    expect(new Set(all.map((r) => r.jti)).size).toBe(all.length);
  });
});
