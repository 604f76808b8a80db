import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ConfigError, PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { Secret, registerSecretValue } from '../plugin-api/secret.ts';
import { callbackLogger } from '../plugin-api/logger.ts';
import type { HttpAuth, Logger } from '../plugin-api/types.ts';
import {
  buildUrl,
  createHttpClientFactory,
  type HttpClientFactoryDeps,
  type HttpRequestObservation,
} from './client.ts';

// ---------------------------------------------------------------------------------------------
// Helpers: loopback servers (127.0.0.1 only) and a logger that records every line.

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void;

interface Loopback {
  url: string;
  port: number;
  requests: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }>;
  close(): Promise<void>;
}

const open: Loopback[] = [];

async function serve(handler: Handler): Promise<Loopback> {
  const requests: Loopback['requests'] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  const loopback: Loopback = {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  open.push(loopback);
  return loopback;
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

interface LogLine {
  level: string;
  line: string;
}

/** Records each line as JSON text, as the assertions read it. */
function recordingLogger(lines: LogLine[]): Logger {
  return callbackLogger((level, fields, msg) =>
    lines.push({ level, line: JSON.stringify({ ...fields, msg }) }),
  );
}

function setup(overrides: Partial<HttpClientFactoryDeps> = {}) {
  const stop = new AbortController();
  const lines: LogLine[] = [];
  const authFailures: string[] = [];
  const observations: HttpRequestObservation[] = [];
  const factory = createHttpClientFactory({
    logger: recordingLogger(lines),
    signal: stop.signal,
    onAuthFailure: (reason) => authFailures.push(reason),
    metrics: { onRequest: (o) => observations.push(o) },
    // Tests never inherit the machine's proxy settings; the proxy tests pass their own.
    proxyEnv: {},
    ...overrides,
  });
  return { factory, stop, lines, authFailures, observations };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the request to fail');
}

const reply =
  (status: number, body = '', headers: Record<string, string> = {}): Handler =>
  (_req, res) => {
    res.writeHead(status, headers).end(body);
  };

// ---------------------------------------------------------------------------------------------

describe('options', () => {
  it.each([0, -1, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 31])(
    'refuses timeoutMs %s with a clear error',
    (t) => {
      const { factory } = setup();
      expect(() => factory.create({ timeoutMs: t })).toThrow(ConfigError);
      expect(() => factory.create({ timeoutMs: t })).toThrow(/timeoutMs must be a positive number/);
    },
  );

  it('refuses a bad default timeout when the factory is wired', () => {
    expect(() => setup({ defaults: { timeoutMs: 0 } })).toThrow(/timeoutMs must be a positive number/);
  });

  it('refuses a bad per-request timeout', async () => {
    const server = await serve(reply(200, '{}'));
    const { factory } = setup();
    const err = await failure(factory.create().get(server.url, { timeoutMs: -5 }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a non-positive size limit and an invalid custom auth header name', () => {
    const { factory } = setup();
    expect(() => factory.create({ maxResponseBytes: 0 })).toThrow(/maxResponseBytes/);
    expect(() =>
      factory.create({ auth: { type: 'header', name: 'Bad Header', value: new Secret('xxxx') } }),
    ).toThrow(/not a valid HTTP header name/);
  });

  it('joins baseURL and path with one slash, and appends params', () => {
    expect(buildUrl('https://api.example.com/v1/', '/items', { q: 'a b', skip: undefined, n: 2 })).toBe(
      'https://api.example.com/v1/items?q=a+b&n=2',
    );
    expect(buildUrl('https://api.example.com/v1', 'https://other.example/x')).toBe('https://other.example/x');
  });
});

describe('responses', () => {
  it('decodes JSON, text and binary bodies and flattens headers', async () => {
    const server = await serve((req, res) => {
      res.setHeader('x-multi', ['a', 'b']);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"n":1}');
    });
    const client = setup().factory.create({ baseURL: server.url });
    const json = await client.get<{ n: number }>('/j');
    expect(json.data).toEqual({ n: 1 });
    expect(json.headers['x-multi']).toBe('a, b');
    expect((await client.get('/t', { responseType: 'text' })).data).toBe('{"n":1}');
    const bin = await client.get<Buffer>('/b', { responseType: 'arraybuffer' });
    expect(Buffer.isBuffer(bin.data) && bin.data.toString()).toBe('{"n":1}');
    expect(server.requests[0]?.headers['accept']).toBe('application/json');
  });

  it('gives undefined for an empty JSON body (e.g. 202 or 204)', async () => {
    const server = await serve(reply(202));
    const res = await setup().factory.create().post(server.url, { a: 1 });
    expect(res.status).toBe(202);
    expect(res.data).toBeUndefined();
    expect(server.requests[0]?.headers['content-type']).toBe('application/json');
    expect(server.requests[0]?.body).toBe('{"a":1}');
  });

  it('refuses a 2xx whose body is not the JSON asked for', async () => {
    const server = await serve(reply(200, '<html>gateway</html>'));
    const err = await failure(setup().factory.create().get(server.url));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_BAD_BODY');
    expect(err.message).toContain('<html>gateway</html>');
  });

  it('hands out a stream that ends with the body', async () => {
    const server = await serve(reply(200, 'line1\nline2\n'));
    const res = await setup().factory.create().get<Readable>(server.url, { responseType: 'stream' });
    let text = '';
    for await (const chunk of res.data) text += String(chunk);
    expect(text).toBe('line1\nline2\n');
  });

  it('sends strings as they are and URLSearchParams as a form', async () => {
    const server = await serve(reply(202));
    const client = setup().factory.create({ baseURL: server.url });
    await client.post('/jwt', 'eyJ.a.b', {
      headers: { 'Content-Type': 'application/secevent+jwt' },
      responseType: 'text',
    });
    await client.post('/form', new URLSearchParams({ a: '1' }), { responseType: 'text' });
    expect(server.requests[0]?.headers['content-type']).toBe('application/secevent+jwt');
    expect(server.requests[0]?.body).toBe('eyJ.a.b');
    expect(server.requests[1]?.headers['content-type']).toBe('application/x-www-form-urlencoded');
    expect(server.requests[1]?.body).toBe('a=1');
  });
});

describe('classification against a live server', () => {
  it('times out against a server that accepts but never answers', async () => {
    const server = await serve(() => {});
    const { factory, observations } = setup();
    const started = Date.now();
    const err = await failure(factory.create({ timeoutMs: 200 }).get(server.url));
    const elapsed = Date.now() - started;
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_TIMEOUT');
    expect(err.message).toBe(`GET ${server.url}/ timed out after 200 ms`);
    expect(elapsed).toBeGreaterThanOrEqual(190);
    expect(elapsed).toBeLessThan(2_000);
    expect(observations[0]).toMatchObject({ outcome: 'retryable', code: 'SSF_ERR_HTTP_TIMEOUT' });
  });

  it('bounds the whole exchange, not just idle gaps: a trickling body times out', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const timer = setInterval(() => res.write('.'), 20);
      res.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    const err = await failure(
      setup().factory.create({ timeoutMs: 250 }).get(server.url, { responseType: 'text' }),
    );
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_TIMEOUT');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('classifies 429 with Retry-After in seconds', async () => {
    const server = await serve(reply(429, 'slow down', { 'retry-after': '7' }));
    const err = await failure(setup().factory.create().get(server.url));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).retryAfterMs).toBe(7_000);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_RATE_LIMITED');
    expect(err.message).toContain('answered 429 Too Many Requests (retry after 7 s): slow down');
  });

  it('classifies 429 with Retry-After as an HTTP-date', async () => {
    const now = Date.UTC(2026, 5, 1, 12, 0, 0);
    const server = await serve(reply(429, '', { 'retry-after': new Date(now + 120_000).toUTCString() }));
    const err = await failure(
      setup({ now: () => now })
        .factory.create()
        .get(server.url),
    );
    expect((err as RetryableError).retryAfterMs).toBe(120_000);
  });

  it('classifies 503 (with and without Retry-After) and 408 as retryable', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/a') res.writeHead(503, { 'retry-after': '30' }).end();
      else if (req.url === '/b') res.writeHead(503).end();
      else res.writeHead(408).end();
    });
    const client = setup().factory.create({ baseURL: server.url });
    const a = await failure(client.get('/a'));
    const b = await failure(client.get('/b'));
    const c = await failure(client.get('/c'));
    expect(a).toBeInstanceOf(RetryableError);
    expect((a as RetryableError).retryAfterMs).toBe(30_000);
    expect((a as RetryableError).code).toBe('SSF_ERR_HTTP_SERVER');
    expect(b).toBeInstanceOf(RetryableError);
    expect((b as RetryableError).retryAfterMs).toBeUndefined();
    expect(c).toBeInstanceOf(RetryableError);
  });

  it('classifies 400 and 404 as permanent without flagging the credentials', async () => {
    const server = await serve((req, res) => {
      res.writeHead(req.url === '/missing' ? 404 : 400).end('{"error":"invalid field: when"}');
    });
    const { factory, authFailures } = setup();
    const client = factory.create({ baseURL: server.url });
    const bad = await failure(client.post('/x', { when: 'never' }));
    const missing = await failure(client.get('/missing'));
    for (const err of [bad, missing]) {
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).authFailure).toBe(false);
    }
    expect(bad.message).toBe(
      `POST ${server.url}/x answered 400 Bad Request: {"error":"invalid field: when"}`,
    );
    expect(missing.message).toContain('answered 404 Not Found');
    expect(authFailures).toEqual([]);
  });

  it.each([401, 403])('classifies %d as an auth failure and calls onAuthFailure', async (status) => {
    const server = await serve(reply(status, 'denied'));
    const { factory, authFailures } = setup();
    const err = await failure(factory.create().get(server.url));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).authFailure).toBe(true);
    expect(authFailures).toHaveLength(1);
    expect(authFailures[0]).toContain(`answered ${status}`);
  });

  it('classifies connection refused (a closed port) as retryable', async () => {
    const server = await serve(reply(200));
    const url = server.url;
    await open.pop()!.close();
    const err = await failure(setup().factory.create().get(url));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_NETWORK');
    expect((err as RetryableError).detail).toMatchObject({ networkCode: 'ECONNREFUSED' });
  });

  it('classifies a connection reset mid-request as retryable', async () => {
    const server = await serve((req) => req.socket.destroy());
    const err = await failure(setup().factory.create().get(server.url));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_NETWORK');
    expect((err as RetryableError).detail).toMatchObject({ networkCode: 'ECONNRESET' });
  });

  it('classifies a body that breaks off after the headers as retryable', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
      res.write('{"partial":');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    const err = await failure(setup().factory.create().get(server.url));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_NETWORK');
    expect((err as RetryableError).detail).toMatchObject({ networkCode: 'ECONNRESET' });
  });

  it('follows a few redirects, then stops with a permanent error', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/moved') res.writeHead(301, { location: '/here' }).end();
      else if (req.url === '/here') res.writeHead(200).end('{"here":true}');
      else res.writeHead(302, { location: '/loop' }).end();
    });
    const client = setup().factory.create({ baseURL: server.url });
    expect((await client.get('/moved')).data).toEqual({ here: true });
    const err = await failure(client.get('/loop'));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
    expect(server.requests.filter((r) => r.url === '/loop')).toHaveLength(6);
  });

  it('serves many concurrent requests without piling listeners on the instance signal', async () => {
    const server = await serve(reply(200, '{}'));
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      const client = setup().factory.create({ baseURL: server.url });
      await Promise.all(Array.from({ length: 40 }, (_, i) => client.get(`/c${i}`)));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    expect(server.requests).toHaveLength(40);
    expect(warnings.filter((w) => w.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('reports each attempt to the metrics hook', async () => {
    const server = await serve(reply(200, '{}'));
    const { factory, observations } = setup();
    await factory.create().get(`${server.url}/m`);
    expect(observations).toEqual([
      expect.objectContaining({
        method: 'GET',
        host: `127.0.0.1:${server.port}`,
        status: 200,
        outcome: 'ok',
      }),
    ]);
  });
});

describe('size limits', () => {
  it('refuses a response larger than maxResponseBytes (declared length)', async () => {
    const server = await serve(reply(200, 'x'.repeat(2048)));
    const err = await failure(setup().factory.create({ maxResponseBytes: 1024 }).get(server.url));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_TOO_LARGE');
    expect(err.message).toMatch(/response body is larger than the limit of 1024 bytes/);
  });

  it('refuses a chunked response once it passes the limit', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      for (let i = 0; i < 8; i += 1) res.write('y'.repeat(512));
      res.end();
    });
    const err = await failure(
      setup().factory.create({ maxResponseBytes: 1024 }).get(server.url, { responseType: 'arraybuffer' }),
    );
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_TOO_LARGE');
  });

  it('enforces the limit on streamed responses too', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200);
      for (let i = 0; i < 8; i += 1) res.write('z'.repeat(512));
      res.end();
    });
    const res = await setup().factory.create({ maxResponseBytes: 1024 }).get<Readable>(server.url, {
      responseType: 'stream',
    });
    const err = await failure(
      (async () => {
        for await (const chunk of res.data) void chunk;
      })(),
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_TOO_LARGE');
  });

  it('refuses a request body larger than the limit before sending it', async () => {
    const server = await serve(reply(202));
    const err = await failure(
      setup().factory.create({ maxResponseBytes: 100 }).post(server.url, 'b'.repeat(500)),
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_TOO_LARGE');
    expect(server.requests).toHaveLength(0);
  });
});

describe('cancellation', () => {
  it('aborts in-flight requests when the instance stops, and refuses new ones', async () => {
    const server = await serve(() => {});
    const { factory, stop } = setup();
    const client = factory.create({ timeoutMs: 10_000 });
    const pending = failure(client.get(server.url));
    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    const started = Date.now();
    stop.abort();
    const err = await pending;
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_ABORTED');
    expect(err.message).toContain('because the instance is stopping');
    const after = await failure(client.get(server.url));
    expect((after as RetryableError).code).toBe('SSF_ERR_HTTP_ABORTED');
    expect(server.requests).toHaveLength(1);
  });

  it('aborts when the caller signal fires', async () => {
    const server = await serve(() => {});
    const caller = new AbortController();
    const pending = failure(setup().factory.create().get(server.url, { signal: caller.signal }));
    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    caller.abort();
    const err = await pending;
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_ABORTED');
    expect(err.message).toContain('by the caller');
  });

  it('aborts while the body is being read when the caller signal fires', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('first part, the rest never comes');
    });
    const caller = new AbortController();
    const pending = failure(
      setup().factory.create().get(server.url, { signal: caller.signal, responseType: 'text' }),
    );
    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    await new Promise((r) => setTimeout(r, 50));
    caller.abort();
    const err = await pending;
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_ABORTED');
    expect(err.message).toContain('by the caller');
  });

  it('sends nothing when the caller signal has already fired', async () => {
    const server = await serve(reply(200, '{}'));
    const caller = new AbortController();
    caller.abort();
    const err = await failure(setup().factory.create().get(server.url, { signal: caller.signal }));
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_ABORTED');
    expect(server.requests).toHaveLength(0);
  });

  it('destroys an open response stream when the instance stops', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200);
      res.write('first\n');
    });
    const { factory, stop } = setup();
    const res = await factory.create().get<Readable>(server.url, { responseType: 'stream' });
    const reading = failure(
      (async () => {
        for await (const chunk of res.data) void chunk;
      })(),
    );
    stop.abort();
    const err = await reading;
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_ABORTED');
  });
});

describe('authentication', () => {
  it.each<[string, HttpAuth, string, string]>([
    ['bearer', { type: 'bearer', token: new Secret('bearer-tok-1') }, 'authorization', 'Bearer bearer-tok-1'],
    [
      'basic',
      { type: 'basic', username: 'svc', password: new Secret('basic-pw-1') },
      'authorization',
      `Basic ${Buffer.from('svc:basic-pw-1').toString('base64')}`,
    ],
    [
      'header',
      { type: 'header', name: 'X-Api-Key', value: new Secret('api-key-1') },
      'x-api-key',
      'api-key-1',
    ],
  ])('sends %s credentials', async (_name, auth, header, value) => {
    const server = await serve(reply(200, '{}'));
    await setup().factory.create({ auth }).get(server.url);
    expect(server.requests[0]?.headers[header]).toBe(value);
  });

  it('strips credentials when a redirect leaves the origin', async () => {
    const other = await serve(reply(200, '{}'));
    const origin = await serve((_req, res) => res.writeHead(302, { location: `${other.url}/landing` }).end());
    const client = setup().factory.create({
      auth: { type: 'header', name: 'X-Custom-Auth', value: new Secret('custom-cred-1') },
    });
    await client.get(`${origin.url}/start`);
    expect(origin.requests[0]?.headers['x-custom-auth']).toBe('custom-cred-1');
    expect(other.requests[0]?.url).toBe('/landing');
    expect(other.requests[0]?.headers['x-custom-auth']).toBeUndefined();
  });

  it('RFC 9110 §11.4: scrubs the credential after the auth scheme of a configured Authorization header, quoted alone', async () => {
    for (const [name, value, credential] of [
      ['Authorization', 'Bearer hdr-token-71c4e9', 'hdr-token-71c4e9'],
      ['authorization', 'SSWS  00hdr-ssws-token-2b', '00hdr-ssws-token-2b'],
      ['Proxy-Authorization', 'Basic cHJveHk6aGRyLXB3', 'cHJveHk6aGRyLXB3'],
    ] as const) {
      const server = await serve(reply(400, `{"error":"credential ${credential} is not valid here"}`));
      const { factory, lines } = setup();
      const err = await failure(
        factory.create({ auth: { type: 'header', name, value: new Secret(value) } }).get(server.url),
      );
      expect(err.message).toContain('credential [redacted] is not valid here');
      expect(err.message).not.toContain(credential);
      expect(lines.map((l) => l.line).join('\n')).not.toContain(credential);
    }
  });

  it('scrubs a credential a remote quotes escaped: \\/ as PHP json_encode writes it, or percent-encoded', async () => {
    const key = 'k9/Qz+T/wd-shared-key';
    const server = await serve((req, res) => {
      const echoed =
        req.url === '/json'
          ? JSON.stringify(key).slice(1, -1).replace(/\//g, '\\/')
          : encodeURIComponent(key);
      res
        .writeHead(403, { 'content-type': 'application/json' })
        .end(`{"error":"api key ${echoed} is not allowed"}`);
    });
    const { factory, lines } = setup();
    const client = factory.create({ auth: { type: 'header', name: 'X-Api-Key', value: new Secret(key) } });
    for (const path of ['/json', '/form']) {
      const err = await failure(client.get(`${server.url}${path}`));
      expect(err.message).toContain('api key [redacted] is not allowed');
      expect(err.message).not.toMatch(/k9|wd-shared-key/);
    }
    expect(lines.map((l) => l.line).join('\n')).not.toMatch(/k9|wd-shared-key/);
  });

  it('lets a request carry its own Authorization (e.g. a receiver-supplied push header)', async () => {
    const server = await serve(reply(202));
    const client = setup().factory.create({ auth: { type: 'bearer', token: new Secret('client-tok-1') } });
    await client.post(server.url, 'jwt', {
      headers: { Authorization: 'Bearer receiver-given' },
      responseType: 'text',
    });
    expect(server.requests[0]?.headers['authorization']).toBe('Bearer receiver-given');
  });
});

describe('OAuth 2.0 client credentials', () => {
  interface IdpState {
    issued: number;
    expiresIn: number;
    tokenStatus: number;
    tokenBody?: string;
    refuse: Set<string>;
  }

  async function idpAndApi(state: IdpState) {
    return serve((req, res, body) => {
      if (req.url === '/token') {
        if (state.tokenStatus !== 200) {
          res.writeHead(state.tokenStatus, { 'content-type': 'application/json' }).end(state.tokenBody ?? '');
          return;
        }
        state.issued += 1;
        const token = `access-${state.issued}-${'q'.repeat(8)}`;
        // Answer a little late so concurrent callers overlap the token request.
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/json' }).end(
            JSON.stringify({
              access_token: token,
              token_type: 'Bearer',
              expires_in: state.expiresIn,
              body,
            }),
          );
        }, 30);
        return;
      }
      const presented = (req.headers['authorization'] ?? '').replace(/^Bearer /, '');
      if (state.refuse.has(presented) || !presented.startsWith('access-')) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: presented }));
    });
  }

  function oauth(
    server: Loopback,
    extra: Partial<Extract<HttpAuth, { type: 'oauth2_client_credentials' }>> = {},
  ) {
    return {
      type: 'oauth2_client_credentials' as const,
      tokenUrl: `${server.url}/token`,
      clientId: 'bridge',
      clientSecret: new Secret('client-secret-xyz'),
      scope: 'events.read',
      ...extra,
    };
  }

  const tokensAt = (server: Loopback) => server.requests.filter((r) => r.url === '/token');

  it('fetches one token for concurrent requests and reuses it', async () => {
    const state: IdpState = { issued: 0, expiresIn: 3600, tokenStatus: 200, refuse: new Set() };
    const server = await idpAndApi(state);
    const client = setup().factory.create({ auth: oauth(server) });
    const results = await Promise.all(
      [1, 2, 3, 4, 5].map((i) => client.get<{ token: string }>(`${server.url}/r${i}`)),
    );
    expect(new Set(results.map((r) => r.data.token)).size).toBe(1);
    await client.get(`${server.url}/again`);
    expect(tokensAt(server)).toHaveLength(1);
    const tokenReq = tokensAt(server)[0]!;
    expect(tokenReq.method).toBe('POST');
    expect(tokenReq.headers['authorization']).toBe(
      `Basic ${Buffer.from('bridge:client-secret-xyz').toString('base64')}`,
    );
    expect(new URLSearchParams(tokenReq.body).get('grant_type')).toBe('client_credentials');
    expect(new URLSearchParams(tokenReq.body).get('scope')).toBe('events.read');
  });

  it('stops waiting for a shared token request when the caller signal fires, and sends nothing', async () => {
    let answerToken: (() => void) | undefined;
    const server = await serve((req, res) => {
      if (req.url === '/token') {
        // The token endpoint hangs until the test lets it answer.
        answerToken = () =>
          res
            .writeHead(200, { 'content-type': 'application/json' })
            .end(JSON.stringify({ access_token: 'access-late', token_type: 'Bearer', expires_in: 3600 }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
    const client = setup().factory.create({ auth: oauth(server), timeoutMs: 10_000 });
    const caller = new AbortController();
    const abandoned = failure(client.get(`${server.url}/resource`, { signal: caller.signal }));
    const patient = client.get(`${server.url}/resource`);
    await vi.waitFor(() => expect(answerToken).toBeDefined());
    const abortedAt = Date.now();
    caller.abort();
    const err = await abandoned;
    expect(Date.now() - abortedAt).toBeLessThan(200);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_ABORTED');
    expect(err.message).toContain('by the caller');
    // The token request goes on for the other caller, which then sends its own request only.
    answerToken!();
    await patient;
    expect(server.requests.filter((r) => r.url === '/resource')).toHaveLength(1);
    expect(tokensAt(server)).toHaveLength(1);
  });

  it('refreshes the token shortly before it expires', async () => {
    let now = 1_000_000;
    const state: IdpState = { issued: 0, expiresIn: 600, tokenStatus: 200, refuse: new Set() };
    const server = await idpAndApi(state);
    const client = setup({ now: () => now }).factory.create({ auth: oauth(server) });
    expect((await client.get<{ token: string }>(server.url)).data.token).toMatch(/^access-1-/);
    now += 600_000 - 60_001; // just before the refresh margin
    expect((await client.get<{ token: string }>(server.url)).data.token).toMatch(/^access-1-/);
    now += 2; // inside the last minute before expiry
    expect((await client.get<{ token: string }>(server.url)).data.token).toMatch(/^access-2-/);
    expect(tokensAt(server)).toHaveLength(2);
  });

  it('forces one refresh and retries once when the resource server answers 401', async () => {
    const state: IdpState = { issued: 0, expiresIn: 3600, tokenStatus: 200, refuse: new Set() };
    const server = await idpAndApi(state);
    const { factory, authFailures } = setup();
    const client = factory.create({ auth: oauth(server) });
    const first = await client.get<{ token: string }>(server.url);
    state.refuse.add(first.data.token); // revoked before its expiry
    const second = await client.get<{ token: string }>(server.url);
    expect(second.data.token).toMatch(/^access-2-/);
    expect(tokensAt(server)).toHaveLength(2);
    expect(authFailures).toEqual([]);
  });

  it('gives up after the one retry and flags the credentials', async () => {
    const state: IdpState = { issued: 0, expiresIn: 3600, tokenStatus: 200, refuse: new Set() };
    const server = await idpAndApi(state);
    state.refuse = { has: () => true } as unknown as Set<string>;
    const { factory, authFailures } = setup();
    const err = await failure(factory.create({ auth: oauth(server) }).get(`${server.url}/api`));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).authFailure).toBe(true);
    expect(tokensAt(server)).toHaveLength(2);
    expect(server.requests.filter((r) => r.url === '/api')).toHaveLength(2);
    expect(authFailures).toHaveLength(1);
  });

  it('sends client credentials in the form when clientAuth is body', async () => {
    const state: IdpState = { issued: 0, expiresIn: 3600, tokenStatus: 200, refuse: new Set() };
    const server = await idpAndApi(state);
    await setup()
      .factory.create({ auth: oauth(server, { clientAuth: 'body' }) })
      .get(server.url);
    const form = new URLSearchParams(tokensAt(server)[0]!.body);
    expect(form.get('client_id')).toBe('bridge');
    expect(form.get('client_secret')).toBe('client-secret-xyz');
    expect(tokensAt(server)[0]!.headers['authorization']).toBeUndefined();
  });

  it('RFC 6749 §2.3.1: a token endpoint’s redirect is never followed, so the client secret goes nowhere else', async () => {
    const elsewhere = await serve(
      reply(200, JSON.stringify({ access_token: 'elsewhere-tok-1', token_type: 'Bearer' }), {
        'content-type': 'application/json',
      }),
    );
    for (const [status, clientAuth, location] of [
      [307, 'body', `${elsewhere.url}/token`],
      [308, 'basic', `${elsewhere.url}/token`],
      [302, 'body', `${elsewhere.url}/token`],
      [301, 'basic', `${elsewhere.url}/token`],
      [303, 'body', `${elsewhere.url}/token`],
      // Not even within the origin: the configured token URL is the token endpoint.
      [307, 'body', '/oauth2/v2.0/token'],
    ] as const) {
      const idp = await serve((req, res) =>
        req.url === '/token' ? res.writeHead(status, { location }).end() : res.writeHead(200).end('{}'),
      );
      const { factory, authFailures } = setup();
      const err = await failure(factory.create({ auth: oauth(idp, { clientAuth }) }).get(`${idp.url}/api`));
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
      expect(err.message).toContain(`(OAuth token endpoint) answered ${status}`);
      expect(err.message).toContain("a token request carries the client's credentials, so it never follows");
      expect(idp.requests.map((r) => r.url)).toEqual(['/token']);
      expect(authFailures).toEqual([]);
    }
    expect(elsewhere.requests).toEqual([]);
  });

  it.each<[number, string | undefined, 'retryable' | 'auth' | 'permanent']>([
    [503, undefined, 'retryable'],
    [429, undefined, 'retryable'],
    [401, '{"error":"invalid_client"}', 'auth'],
    [400, '{"error":"invalid_client","error_description":"bad secret"}', 'auth'],
    [400, '{"error":"unsupported_grant_type"}', 'permanent'],
  ])('classifies a token endpoint %d %s', async (status, body, expected) => {
    const state: IdpState = { issued: 0, expiresIn: 3600, tokenStatus: status, refuse: new Set() };
    if (body !== undefined) state.tokenBody = body;
    const server = await idpAndApi(state);
    const { factory, authFailures } = setup();
    const err = await failure(factory.create({ auth: oauth(server) }).get(`${server.url}/api`));
    expect(err.message).toContain('(OAuth token endpoint)');
    expect(server.requests.filter((r) => r.url === '/api')).toHaveLength(0);
    if (expected === 'retryable') {
      expect(err).toBeInstanceOf(RetryableError);
      expect(authFailures).toEqual([]);
    } else {
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).authFailure).toBe(expected === 'auth');
      expect(authFailures).toHaveLength(expected === 'auth' ? 1 : 0);
    }
  });
});

describe('basic_session_token (Jamf Pro user accounts)', () => {
  const USER = 'api-reader';
  const PASSWORD = 'p4ss:word-with-colon';

  /** Jamf Pro's /api/v1/auth/token: Basic in, {token, expires} out; the API takes the token. */
  async function jamf(state: {
    issued: number;
    lifetimeMs: number;
    now: () => number;
    revoked: Set<string>;
  }) {
    return serve((req, res) => {
      if (req.url === '/api/v1/auth/token') {
        const expected = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
        if (req.method !== 'POST' || req.headers['authorization'] !== expected) {
          res.writeHead(401, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ httpStatus: 401, errors: [] }));
          return;
        }
        state.issued += 1;
        res.writeHead(200, { 'content-type': 'application/json' }).end(
          JSON.stringify({
            token: `eyJhbGciOiJIUzI1NiJ9.session-${state.issued}`,
            expires: new Date(state.now() + state.lifetimeMs).toISOString(),
          }),
        );
        return;
      }
      const presented = (req.headers['authorization'] ?? '').replace(/^Bearer /, '');
      if (!presented.includes('.session-') || state.revoked.has(presented)) {
        res.writeHead(401).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: presented }));
    });
  }

  const auth = (server: Loopback, password = PASSWORD): HttpAuth => ({
    type: 'basic_session_token',
    tokenUrl: `${server.url}/api/v1/auth/token`,
    username: USER,
    password: new Secret(password),
  });

  it('buys a token with Basic credentials, sends it as a bearer token, and renews it before its expires time', async () => {
    let now = Date.parse('2026-11-30T10:00:00Z');
    const state = { issued: 0, lifetimeMs: 20 * 60_000, now: () => now, revoked: new Set<string>() };
    const server = await jamf(state);
    const { factory, lines } = setup({ now: () => now });
    const client = factory.create({ auth: auth(server) });
    const [a, b] = await Promise.all([
      client.get<{ token: string }>(`${server.url}/api/v1/computers-inventory`),
      client.get<{ token: string }>(`${server.url}/api/v1/computers-inventory`),
    ]);
    expect(a.data.token).toBe('eyJhbGciOiJIUzI1NiJ9.session-1');
    expect(b.data.token).toBe(a.data.token);
    const tokenRequests = server.requests.filter((r) => r.url === '/api/v1/auth/token');
    expect(tokenRequests).toHaveLength(1);
    expect(tokenRequests[0]!.method).toBe('POST');
    // 20 minutes: renewed a tenth of the lifetime (at most a minute) before `expires`.
    now += 18 * 60_000;
    expect((await client.get<{ token: string }>(server.url)).data.token).toMatch(/session-1$/);
    now += 60_001;
    expect((await client.get<{ token: string }>(server.url)).data.token).toMatch(/session-2$/);
    expect(lines.map((l) => l.line).join('\n')).not.toContain('session-');
  });

  it('a revoked token is bought again once; a refused password flags the credentials without touching the API', async () => {
    const state = { issued: 0, lifetimeMs: 20 * 60_000, now: Date.now, revoked: new Set<string>() };
    const server = await jamf(state);
    const first = setup();
    const client = first.factory.create({ auth: auth(server) });
    state.revoked.add((await client.get<{ token: string }>(server.url)).data.token);
    expect((await client.get<{ token: string }>(server.url)).data.token).toMatch(/session-2$/);
    expect(first.authFailures).toEqual([]);

    const wrong = setup();
    const err = await failure(
      wrong.factory.create({ auth: auth(server, 'not-it') }).get(`${server.url}/api`),
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/^POST \S+\/api\/v1\/auth\/token \(session token endpoint\) answered 401/);
    expect(err.message).not.toContain('not-it');
    expect((err as PermanentError).authFailure).toBe(true);
    expect(wrong.authFailures).toHaveLength(1);
    expect(server.requests.filter((r) => r.url === '/api')).toHaveLength(0);
  });

  it('an answer without a token is a clear error; one without a readable expires is a five-minute token', async () => {
    let body = JSON.stringify({ expires: '2026-11-30T10:20:00Z' });
    const server = await serve((req, res) => {
      if (req.url === '/t') res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      else
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ auth: req.headers['authorization'] }));
    });
    let now = 5_000_000;
    const { factory } = setup({ now: () => now });
    const make = () =>
      factory.create({
        auth: {
          type: 'basic_session_token',
          tokenUrl: `${server.url}/t`,
          username: 'u',
          password: new Secret('p'),
        },
      });
    const err = await failure(make().get(`${server.url}/api`));
    expect(err.message).toContain("the session token endpoint's answer has no token (fields: expires)");
    body = JSON.stringify({ token: 'tok-1', expires: 'soon' });
    const client = make();
    expect((await client.get<{ auth: string }>(`${server.url}/api`)).data.auth).toBe('Bearer tok-1');
    body = JSON.stringify({ token: 'tok-2' });
    now += 5 * 60_000 - 30_001;
    expect((await client.get<{ auth: string }>(`${server.url}/api`)).data.auth).toBe('Bearer tok-1');
    now += 2;
    expect((await client.get<{ auth: string }>(`${server.url}/api`)).data.auth).toBe('Bearer tok-2');
  });
});

describe('redaction', () => {
  it('scrubs a secret from logged URLs even when it became known after the URL was first used', async () => {
    const server = await serve(reply(200, '{}'));
    const { factory, lines } = setup();
    const client = factory.create();
    const url = `${server.url}/items?cursor=late-known-value-7q8w9e`;
    await client.get(url);
    expect(lines.filter((l) => l.line.includes('late-known-value-7q8w9e'))).not.toHaveLength(0);
    lines.splice(0);
    registerSecretValue('late-known-value-7q8w9e');
    await client.get(url);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.filter((l) => l.line.includes('late-known-value-7q8w9e'))).toEqual([]);
  });

  it('keeps every credential out of logs and error messages', async () => {
    const bearer = new Secret('bearer-secret-a1b2c3');
    const apiKey = new Secret('header-secret-d4e5f6');
    const password = new Secret('basic-secret-g7h8i9');
    const clientSecret = new Secret('oauth-secret-j0k1l2');
    // The server echoes what it received, as misbehaving APIs do in error bodies.
    const server = await serve((req, res, body) => {
      if (req.url === '/token') {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ access_token: 'issued-token-m3n4o5', expires_in: 3600 }));
        return;
      }
      res.writeHead(400).end(JSON.stringify({ headers: req.headers, url: req.url, body }));
    });
    const { factory, lines } = setup();
    const clients = [
      factory.create({ auth: { type: 'bearer', token: bearer } }),
      factory.create({ auth: { type: 'header', name: 'X-Custom-Auth', value: apiKey } }),
      factory.create({ auth: { type: 'basic', username: 'svc', password } }),
      factory.create({
        auth: {
          type: 'oauth2_client_credentials',
          tokenUrl: `${server.url}/token`,
          clientId: 'bridge',
          clientSecret,
        },
      }),
    ];
    const errors: Error[] = [];
    for (const client of clients) {
      errors.push(await failure(client.get(`${server.url}/api?access_token=query-secret-p6q7r8&page=1`)));
    }
    const secrets = [
      bearer.reveal(),
      apiKey.reveal(),
      password.reveal(),
      clientSecret.reveal(),
      'issued-token-m3n4o5',
      'query-secret-p6q7r8',
      Buffer.from(`svc:${password.reveal()}`).toString('base64'),
    ];
    const logText = lines.map((l) => l.line).join('\n');
    const errorText = errors
      .map((e) =>
        [e.message, JSON.stringify(e), JSON.stringify((e as PermanentError).detail), String(e.cause)].join(
          ' ',
        ),
      )
      .join('\n');
    expect(lines.some((l) => l.level === 'debug' && l.line.includes('"status":400'))).toBe(true);
    expect(lines.some((l) => l.level === 'trace' && l.line.includes('[redacted]'))).toBe(true);
    expect(errors.every((e) => e.message.includes('access_token=[redacted]&page=1'))).toBe(true);
    for (const secret of secrets) {
      expect(logText).not.toContain(secret);
      expect(errorText).not.toContain(secret);
    }
  });
});
