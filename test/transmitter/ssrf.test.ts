/**
 * SSRF protection for receiver-supplied push URLs: https only unless a host is allowed in the
 * configuration; private, loopback, link-local and cloud-metadata addresses refused unless
 * allowed; the address checked is the address connected to, so DNS rebinding cannot reach an
 * internal service.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolvedAddress } from '../../core/http/ssrf.ts';
import {
  ALICE,
  PUSH,
  SESSION_REVOKED,
  call,
  eventually,
  sessionRevoked,
  startBridge,
  type Bridge,
} from './harness.ts';

const PUBLIC = '93.184.216.34';
let bridge: Bridge;
let rebindLookups = 0;

/** Pinned DNS answers; `rebind.test` answers a public address once, then loopback. */
async function resolve(hostname: string): Promise<ResolvedAddress[]> {
  if (hostname === 'rebind.test') {
    rebindLookups += 1;
    return [{ address: rebindLookups === 1 ? PUBLIC : '127.0.0.1', family: 4 }];
  }
  if (hostname === 'internal.example') return [{ address: '10.1.1.1', family: 4 }];
  if (hostname === 'mixed.example')
    return [
      { address: PUBLIC, family: 4 },
      { address: '192.168.0.7', family: 4 },
    ];
  return [{ address: PUBLIC, family: 4 }];
}

beforeAll(async () => {
  // The default policy: nothing allowed beyond public https.
  bridge = await startBridge({ transmitter: { streams: { per_receiver: 'many' }, ssrf: {} }, resolve });
});

afterAll(async () => {
  await bridge?.close();
});

const create = (endpoint_url: string) =>
  call(bridge.issuer, 'POST', 'ssf/streams', {
    token: ALICE.token,
    body: { events_requested: [SESSION_REVOKED], delivery: { method: PUSH, endpoint_url } },
  });

describe('SSRF protection of push endpoint URLs', () => {
  it.each([
    ['http://127.0.0.1:8443/push', 'plain http to a host not allowed'],
    ['http://receiver.example/push', 'plain http to a public host'],
    ['https://127.0.0.1/push', 'loopback'],
    ['https://[::1]/push', 'IPv6 loopback'],
    ['https://[::ffff:127.0.0.1]/push', 'IPv4-mapped loopback'],
    ['https://localhost/push', 'localhost by name'],
    ['https://10.0.0.8/push', 'private (10/8)'],
    ['https://192.168.1.1/push', 'private (192.168/16)'],
    ['https://172.16.5.4/push', 'private (172.16/12)'],
    ['https://169.254.169.254/latest/meta-data/', 'cloud metadata'],
    ['https://metadata.google.internal/computeMetadata/v1/', 'cloud metadata by name'],
    ['https://[fe80::1]/push', 'link-local'],
    ['https://internal.example/push', 'a name that resolves to a private address'],
    ['https://mixed.example/push', 'a name with one private address among public ones'],
    ['https://user:secret@receiver.example/push', 'credentials in the URL'],
    ['ftp://receiver.example/push', 'a scheme other than https'],
    ['not a url', 'not a URL'],
  ])('refuses %s (%s) with 400 on create', async (url) => {
    const res = await create(url);
    expect(res.status).toBe(400);
    expect(res.json.code).toBe('SSF_ERR_TRANSMITTER_PUSH_URL_REFUSED');
  });

  it('accepts a public https URL, refuses a PATCH or PUT to an internal one and keeps the old URL', async () => {
    const ok = await create('https://receiver.example/push');
    expect(ok.status).toBe(201);
    const id = ok.json.stream_id as string;
    for (const method of ['PATCH', 'PUT']) {
      const res = await call(bridge.issuer, method, 'ssf/streams', {
        token: ALICE.token,
        body: { stream_id: id, delivery: { method: PUSH, endpoint_url: 'https://10.9.9.9/push' } },
      });
      expect(res.status).toBe(400);
    }
    const read = await call(bridge.issuer, 'GET', 'ssf/streams', {
      token: ALICE.token,
      query: { stream_id: id },
    });
    expect(read.json.delivery.endpoint_url).toBe('https://receiver.example/push');
  });

  it('allows http and loopback only for hosts the configuration lists', async () => {
    const allowing = await startBridge({
      transmitter: { ssrf: { allow_http_hosts: ['127.0.0.1'], allow_cidrs: ['127.0.0.0/8'] } },
    });
    try {
      const res = await call(allowing.issuer, 'POST', 'ssf/streams', {
        token: ALICE.token,
        body: { delivery: { method: PUSH, endpoint_url: 'http://127.0.0.1:9/push' } },
      });
      expect(res.status).toBe(201);
      expect((await create('http://127.0.0.1:9/push')).status).toBe(400);
    } finally {
      await allowing.close();
    }
  });

  it('pins the checked address: a name that re-resolves to loopback after validation is never connected to', async () => {
    let connections = 0;
    const trap = createServer((socket) => {
      connections += 1;
      socket.destroy();
    });
    await new Promise<void>((r) => trap.listen(0, '127.0.0.1', r));
    const port = (trap.address() as { port: number }).port;
    try {
      rebindLookups = 0;
      const created = await create(`https://rebind.test:${port}/push`);
      expect(created.status).toBe(201);
      const id = created.json.stream_id as string;

      // A control event (verification) is refused at connection time and recorded.
      await call(bridge.issuer, 'POST', 'ssf/verify', { token: ALICE.token, body: { stream_id: id } });
      const errors = await eventually(async () => {
        const list = await bridge.tx.streamErrors(id);
        return list.length > 0 ? list : undefined;
      });
      expect(errors[0]?.description).toMatch(/loopback/);

      // An event SET is refused the same way and dead-lettered (a refusal is permanent).
      await bridge.ingest([sessionRevoked('rebind@example.com')]);
      const dead = await eventually(async () => {
        const letters = await bridge.store.deadLetters.list({ destinationId: `stream:${id}` });
        return letters.length > 0 ? letters : undefined;
      });
      expect(dead[0]?.lastError?.code).toBe('SSF_ERR_HTTP_SSRF_REFUSED');
      expect(rebindLookups).toBeGreaterThan(1);
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((r) => trap.close(() => r()));
    }
  });
});
