/**
 * A refused push endpoint_url tells the receiver the kind of refusal, never what its host
 * resolves to. SSF 1.0 §8 (checklist SSF-22, SSF-23): a receiver reaches only its own streams,
 * and another's is answered as unknown — so the URL of a PATCH or PUT is checked only once the
 * stream is known to be the caller's, and a client with ssf.manage cannot use any stream id to
 * look up internal names. The details are logged for operators.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedAddress } from '../../core/http/ssrf.ts';
import {
  ALICE,
  BOB,
  POLL,
  PUSH,
  call,
  recordingLogger,
  startBridge,
  type Bridge,
  type LogEntry,
} from './harness.ts';

const INTERNAL_IP = '10.20.30.40';
let bridge: Bridge;
let lookups: string[] = [];
const entries: LogEntry[] = [];

async function resolve(hostname: string): Promise<ResolvedAddress[]> {
  lookups.push(hostname);
  if (hostname === 'db.corp.internal') return [{ address: INTERNAL_IP, family: 4 }];
  if (hostname === 'receiver.example') return [{ address: '93.184.216.34', family: 4 }];
  throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' });
}

beforeAll(async () => {
  bridge = await startBridge({
    logger: recordingLogger(entries),
    noEngine: true,
    transmitter: { streams: { per_receiver: 'many' }, ssrf: {} },
    resolve,
  });
});
afterAll(async () => {
  await bridge?.close();
});

const patch = (token: string, streamId: string, endpoint_url: string) =>
  call(bridge.issuer, 'PATCH', 'ssf/streams', {
    token,
    body: { stream_id: streamId, delivery: { method: PUSH, endpoint_url } },
  });

describe('refused push URLs (SSF-22, SSF-23)', () => {
  it("SSF-23: a PATCH naming another client's stream, or none, is 404 and resolves nothing", async () => {
    const bobs = await call(bridge.issuer, 'POST', 'ssf/streams', {
      token: BOB.token,
      body: { delivery: { method: POLL } },
    });
    lookups = [];
    for (const streamId of ['not-my-stream', bobs.json.stream_id as string]) {
      const res = await patch(ALICE.token, streamId, 'https://db.corp.internal/');
      expect(res.status).toBe(404);
      expect(res.text).not.toContain(INTERNAL_IP);
    }
    expect(lookups).toEqual([]);
  });

  it('SSF-22: the receiver is told the kind of refusal, the same for a private answer and no answer; the log has the details', async () => {
    const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
      token: ALICE.token,
      body: { delivery: { method: POLL } },
    });
    const streamId = created.json.stream_id as string;
    const descriptions: string[] = [];
    for (const host of ['db.corp.internal', 'nope.corp.internal']) {
      const res = await patch(ALICE.token, streamId, `https://${host}/`);
      expect(res.status).toBe(400);
      expect(res.json.code).toBe('SSF_ERR_TRANSMITTER_PUSH_URL_REFUSED');
      expect(res.text).not.toContain(INTERNAL_IP);
      descriptions.push(res.json.description as string);
    }
    // One answer whether the name resolves to a private address or not at all: no DNS oracle.
    expect(descriptions[0]).toBe(descriptions[1]);
    expect(descriptions[0]).toMatch(/not a public address/);
    // A stream created with such a URL is refused the same way.
    const create = await call(bridge.issuer, 'POST', 'ssf/streams', {
      token: ALICE.token,
      body: { delivery: { method: PUSH, endpoint_url: 'https://db.corp.internal/' } },
    });
    expect(create.status).toBe(400);
    expect(create.json.description).toBe(descriptions[0]);
    // The operator sees what the name resolved to.
    const logged = entries.filter((e) => /refused by the SSRF policy/.test(e.msg));
    expect(logged.map((e) => e.fields.detail)).toContainEqual(expect.stringContaining(INTERNAL_IP));
    expect(logged[0]?.fields).toMatchObject({ clientId: ALICE.client_id, streamId, reason: 'private' });
  });

  it("SSF-22: faults of the URL itself are still named (https, credentials), and a public URL on one's own stream is taken", async () => {
    const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
      token: ALICE.token,
      body: { delivery: { method: POLL } },
    });
    const streamId = created.json.stream_id as string;
    expect((await patch(ALICE.token, streamId, 'http://receiver.example/push')).json.description).toMatch(
      /https/,
    );
    expect(
      (await patch(ALICE.token, streamId, 'https://u:p@receiver.example/push')).json.description,
    ).toMatch(/user name or password/);
    expect((await patch(ALICE.token, streamId, 'https://receiver.example/push')).status).toBe(200);
  });
});
