import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { RetryableError, answersWithSetErrors, type InboundConnector } from '../plugin-api/index.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import { StatusBoard } from '../runtime/status.ts';
import { capturingLogger } from '../../test/helpers/capture.ts';
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
    inbound: (id) => ({ echo, full, setPush })[id],
    isConfiguredInbound: (id) => ['echo', 'full', 'sleeping'].includes(id),
    servesScim: (id) => id === 'echo',
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

  it('turns a full outbox (RetryableError) into 503 with Retry-After in whole seconds', async () => {
    const res = await fetch(`${base}/ingest/full`, { method: 'POST', body: '' });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('8');
    expect(await res.json()).toMatchObject({ error: 'unavailable', message: 'outbox full' });
  });
});
