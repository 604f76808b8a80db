import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RetryableError, answersWithSetErrors, type InboundConnector } from '../plugin-api/index.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import { StatusBoard } from '../runtime/status.ts';
import { capturingLogger } from '../../test/helpers/capture.ts';
import type { AddressInfo } from 'node:net';
import { fastifyTrustProxy, serverSchema } from '../config/schema.ts';
import type { RootConfig } from '../config/index.ts';
import { createServer } from './server.ts';

let app: FastifyInstance;
let base: string;
const status = new StatusBoard({ now: () => new Date() });
const echo: InboundConnector = {
  start: async () => undefined,
  stop: async () => undefined,
  handleWebhook: async (req) => ({
    status: 202,
    body: { bytes: req.rawBody.length, parsed: req.body ?? null, method: req.method, path: req.path },
    headers: { 'x-handled-by': 'echo' },
  }),
};
const full: InboundConnector = {
  start: async () => undefined,
  stop: async () => undefined,
  handleWebhook: async () => {
    throw new RetryableError('outbox full', { retryAfterMs: 7_500 });
  },
};

/** Parses its own body and answers in its own error shape, as a SCIM service does. */
const own: InboundConnector = {
  start: async () => undefined,
  stop: async () => undefined,
  parsesOwnBody: true,
  serverErrorResponse: (error) => ({
    headers: { 'content-type': 'application/problem+json' },
    body: { shaped: error.kind, status: error.status, detail: error.message },
  }),
  handleWebhook: async (req) => {
    if (req.headers['x-fail'] === 'retry') throw new RetryableError('outbox full', { retryAfterMs: 7_500 });
    if (req.headers['x-fail'] === 'crash') throw new Error('a bug');
    return { status: 202, body: { bytes: req.rawBody.length, parsed: req.body ?? null } };
  },
};
const brokenShape: InboundConnector = {
  ...own,
  serverErrorResponse: () => {
    throw new Error('a bug in the shaping');
  },
};

const setPush = answersWithSetErrors<InboundConnector>({
  start: async () => undefined,
  stop: async () => undefined,
  handleWebhook: async () => ({ status: 202 }),
});

beforeAll(async () => {
  const metrics = new MetricsRegistry();
  app = createServer({
    logger: capturingLogger().logger,
    metrics,
    status,
    bodyLimitBytes: 1024,
    requestTimeoutMs: 5_000,
    inbound: (id) => ({ echo, full, setPush, own, brokenShape })[id],
    isConfiguredInbound: (id) => ['echo', 'full', 'sleeping'].includes(id),
    servesScim: (id) => ['echo', 'own'].includes(id),
  });
  status.register('echo', 'test-inbound', 'inbound');
  status.set('echo', 'ok');
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
});

afterAll(async () => {
  await app.close();
});

describe('HTTP server', () => {
  it('/healthz answers 200 while the process is alive', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 when every instance is ok or recovering, 503 with reasons otherwise', async () => {
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    status.set('echo', 'recoverable_error', 'upstream 503');
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    status.set('echo', 'permanent_error', 'credentials refused (401)');
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({
      status: 'not_ready',
      reasons: ['echo: permanent_error (credentials refused (401))'],
    });
    status.set('echo', 'ok');
  });

  it('/metrics serves the Prometheus text format, including request counts', async () => {
    await fetch(`${base}/healthz`);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(body).toMatch(/# TYPE ssf_bridge_http_requests_total counter/);
    expect(body).toMatch(/ssf_bridge_http_requests_total\{route="\/healthz",method="GET",status="200"\} \d+/);
    expect(body).toMatch(/ssf_bridge_process_resident_memory_bytes/);
  });

  it('hands /ingest/<id> to the instance with the raw body and parsed JSON', async () => {
    const res = await fetch(`${base}/ingest/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a": 1}',
    });
    expect(res.status).toBe(202);
    expect(res.headers.get('x-handled-by')).toBe('echo');
    expect(await res.json()).toEqual({ bytes: 8, parsed: { a: 1 }, method: 'POST', path: '/' });
  });

  it('RFC 8259 §8.1: parses a JSON body after a UTF-8 byte order mark, and hands on the raw bytes with it', async () => {
    // As .NET's UTF8Encoding(true) and Windows PowerShell write JSON.
    const res = await fetch(`${base}/ingest/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{"a": 1}')]),
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toEqual({ bytes: 11, parsed: { a: 1 }, method: 'POST', path: '/' });
    // Only one mark, only at the start: anything else is still not JSON.
    for (const body of ['\ufeff\ufeff{"a": 1}', '{"a": 1}\ufeff', '\ufeff']) {
      const bad = await fetch(`${base}/ingest/echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      });
      expect(bad.status, JSON.stringify(body)).toBe(400);
    }
  });

  it('RFC 7644 §3: forwards SCIM resource paths and methods under /scim/v2/<id>', async () => {
    const res = await fetch(`${base}/scim/v2/echo/Users/2819c223?attributes=userName`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/scim+json' },
      body: '{"Operations":[]}',
    });
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({
      method: 'PATCH',
      path: '/Users/2819c223',
      parsed: { Operations: [] },
    });
    const root = await fetch(`${base}/scim/v2/echo`, { method: 'GET' });
    expect(await root.json()).toMatchObject({ method: 'GET', path: '/' });
    // An instance whose connector is not a SCIM service never sees these paths or methods.
    const other = await fetch(`${base}/scim/v2/full/Users/x`, { method: 'DELETE', body: '{}' });
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: 'not_found', message: 'no SCIM service instance "full"' });
  });

  it('RFC 8935 §2.3 (PUSH-08): a push endpoint declared with answersWithSetErrors refuses malformed JSON as {err, description}', async () => {
    const bad = await fetch(`${base}/ingest/setPush`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a": ',
    });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-language')).toBe('en');
    const body = (await bad.json()) as Record<string, unknown>;
    expect(body).toEqual({
      err: 'invalid_request',
      description: expect.stringMatching(/^malformed JSON body/),
    });
  });

  it('RFC 8935 §2.3 (PUSH-08): a push endpoint answers an oversize SET 413 with {err, description} and Content-Language', async () => {
    const big = await fetch(`${base}/ingest/setPush`, {
      method: 'POST',
      headers: { 'content-type': 'application/secevent+jwt' },
      body: `eyJhbGciOiJFUzI1NiJ9.${'e'.repeat(2048)}.sig`,
    });
    expect(big.status).toBe(413);
    expect(big.headers.get('content-language')).toBe('en');
    expect(await big.json()).toEqual({
      err: 'invalid_request',
      description: 'request body exceeds the limit of 1024 bytes',
    });
  });

  it('answers 400 for malformed JSON, 413 for oversize bodies, 404/503 for unknown or stopped instances', async () => {
    const bad = await fetch(`${base}/ingest/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"a": ',
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { message: string }).message).toMatch(/^malformed JSON body/);

    const big = await fetch(`${base}/ingest/echo`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ pad: 'x'.repeat(2048) }),
    });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: 'payload_too_large' });

    expect((await fetch(`${base}/ingest/nobody`, { method: 'POST', body: '' })).status).toBe(404);
    const sleeping = await fetch(`${base}/ingest/sleeping`, { method: 'POST', body: '' });
    expect(sleeping.status).toBe(503);
    expect(sleeping.headers.get('retry-after')).toBe('5');
  });

  it('RFC 7644 §3.12: a connector that parses its own body gets malformed JSON unparsed, and shapes the 413, 503 and 500 the server answers for it', async () => {
    const post = (path: string, body: string, headers: Record<string, string> = {}) =>
      fetch(`${base}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/scim+json', ...headers },
        body,
      });
    // It can authenticate the request before it judges the body.
    for (const path of ['/ingest/own', '/scim/v2/own/Users']) {
      const res = await post(path, '{"a": ');
      expect(res.status, path).toBe(202);
      expect(await res.json()).toEqual({ bytes: 6, parsed: null });
    }
    const shaped = async (res: Response) => {
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      return res.json();
    };
    const big = await post('/scim/v2/own/Users', JSON.stringify({ pad: 'x'.repeat(2048) }));
    expect(big.status).toBe(413);
    expect(await shaped(big)).toEqual({
      shaped: 'body_too_large',
      status: 413,
      detail: 'request body exceeds the limit of 1024 bytes',
    });
    const full = await post('/scim/v2/own/Users', '{}', { 'x-fail': 'retry' });
    expect(full.status).toBe(503);
    expect(full.headers.get('retry-after')).toBe('8');
    expect(await shaped(full)).toEqual({ shaped: 'unavailable', status: 503, detail: 'outbox full' });
    const crash = await post('/ingest/own', '{}', { 'x-fail': 'crash' });
    expect(crash.status).toBe(500);
    expect(await shaped(crash)).toEqual({
      shaped: 'internal_error',
      status: 500,
      detail: 'internal error; see the bridge log',
    });
    // Shaping that fails falls back to the bridge's own body, status and headers unchanged.
    const unshaped = await post('/ingest/brokenShape', JSON.stringify({ pad: 'x'.repeat(2048) }));
    expect(unshaped.status).toBe(413);
    expect(await unshaped.json()).toMatchObject({ error: 'payload_too_large' });
  });

  it('turns a full outbox (RetryableError) into 503 with Retry-After in whole seconds', async () => {
    const res = await fetch(`${base}/ingest/full`, { method: 'POST', body: '' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('8');
    expect(await res.json()).toMatchObject({ error: 'unavailable', message: 'outbox full' });
  });
});

describe('server.trust_proxy: the client address connectors see', () => {
  // The peer is the loopback proxy; the client sent the first X-Forwarded-For entry itself, and
  // the proxy appended the address it saw (nginx's proxy_add_x_forwarded_for).
  const FORWARDED = '203.0.113.10, 198.51.100.7';
  const whoAmI: InboundConnector = {
    start: async () => undefined,
    stop: async () => undefined,
    handleWebhook: async (req) => ({ status: 200, body: { remoteAddress: req.remoteAddress } }),
  };
  const addressSeen = async (trustProxy: RootConfig['server']['trust_proxy'], forwarded = FORWARDED) => {
    const server = createServer({
      logger: capturingLogger().logger,
      metrics: new MetricsRegistry(),
      status,
      bodyLimitBytes: 1024,
      requestTimeoutMs: 5_000,
      trustProxy: fastifyTrustProxy(trustProxy),
      inbound: () => whoAmI,
      isConfiguredInbound: () => true,
    });
    try {
      await server.listen({ host: '127.0.0.1', port: 0 });
      const { port } = server.server.address() as AddressInfo;
      const res = await fetch(`http://127.0.0.1:${port}/ingest/who`, {
        method: 'POST',
        headers: { 'x-forwarded-for': forwarded },
      });
      return ((await res.json()) as { remoteAddress: string }).remoteAddress;
    } finally {
      await server.close();
    }
  };

  it('false: the connection’s own address, whatever X-Forwarded-For says', async () => {
    expect(await addressSeen(false)).toBe('127.0.0.1');
  });

  it('true: the address the one proxy saw, never an entry the client wrote', async () => {
    expect(await addressSeen(true)).toBe('198.51.100.7');
  });

  it('a number of proxies: the address the outermost of them saw', async () => {
    expect(await addressSeen(1)).toBe('198.51.100.7');
    expect(await addressSeen(2, `${FORWARDED}, 10.0.0.2`)).toBe('198.51.100.7');
  });

  it('proxy addresses: entries added by listed proxies are skipped, the first other one is the client', async () => {
    expect(await addressSeen(['127.0.0.1'])).toBe('198.51.100.7');
    expect(await addressSeen(['127.0.0.0/8', '10.0.0.0/8'], `${FORWARDED}, 10.0.0.2`)).toBe('198.51.100.7');
    // A connection from elsewhere than a listed proxy: its headers are not believed.
    expect(await addressSeen(['10.0.0.0/8'])).toBe('127.0.0.1');
  });

  it('the config accepts those forms and refuses others with the reason', () => {
    const parse = (value: unknown) => serverSchema.safeParse({ trust_proxy: value });
    for (const ok of [false, true, 1, 3, ['10.0.0.1', '10.0.0.0/8', '2001:db8::/32']]) {
      expect(parse(ok).success, JSON.stringify(ok)).toBe(true);
    }
    expect(parse(undefined).data?.trust_proxy).toBe(false);
    for (const bad of [0, 1.5, 17, [], ['proxy.example.com'], ['10.0.0.0/33']]) {
      expect(parse(bad).success, JSON.stringify(bad)).toBe(false);
    }
    expect(JSON.stringify(parse(['10.0.0.0/33']).error?.issues)).toMatch(
      /must be an IP address or a CIDR block/,
    );
  });
});
