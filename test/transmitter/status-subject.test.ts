/**
 * SSF 1.0 §8.1.2 (checklist SSF-35, SSF-36): the status of a stream is set with
 * `{"stream_id", "status", "reason"?}`; there is no per-subject status in SSF 1.0. A receiver
 * written against a draft that had one and sends `subject` is told so with 400 invalid_request,
 * rather than having the whole stream disabled (and its queue dropped) for one subject.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, POLL, call, startBridge, type Bridge } from './harness.ts';

let bridge: Bridge;

beforeAll(async () => {
  bridge = await startBridge({ noEngine: true });
});
afterAll(async () => {
  await bridge?.close();
});

describe('SSF-35: POST /ssf/status with a subject', () => {
  it('SSF-35, §8.1.2: is 400 invalid_request explaining SSF 1.0 has no per-subject status; the stream is left as it was', async () => {
    const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
      token: ALICE.token,
      body: { delivery: { method: POLL } },
    });
    const streamId = created.json.stream_id as string;
    const res = await call(bridge.issuer, 'POST', 'ssf/status', {
      token: ALICE.token,
      body: {
        stream_id: streamId,
        status: 'disabled',
        subject: { format: 'email', email: 'one@example.com' },
      },
    });
    expect(res.status).toBe(400);
    expect(res.json).toMatchObject({ err: 'invalid_request', code: 'SSF_ERR_TRANSMITTER_STATUS_SUBJECT' });
    expect(res.json.description).toMatch(/no per-subject status/);
    const status = await call(bridge.issuer, 'GET', 'ssf/status', {
      token: ALICE.token,
      query: { stream_id: streamId },
    });
    expect(status.json).toEqual({ stream_id: streamId, status: 'enabled' });
    // Without the subject the same request is taken (SSF-37).
    const plain = await call(bridge.issuer, 'POST', 'ssf/status', {
      token: ALICE.token,
      body: { stream_id: streamId, status: 'paused' },
    });
    expect(plain.status).toBe(200);
    expect(plain.json).toEqual({ stream_id: streamId, status: 'paused' });
  });
});
