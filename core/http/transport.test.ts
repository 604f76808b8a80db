/**
 * The transport under the HTTP client: response decompression, redirect rules and environment
 * proxies, exercised through the client against loopback servers.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import zlib from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { Secret } from '../plugin-api/secret.ts';
import { silentLogger } from '../telemetry/logger.ts';
import { selfSignedCertificate } from '../../test/helpers/certificates.ts';
import { createHttpClientFactory, type HttpClientFactoryDeps } from './client.ts';
import { TransportError, bypassesProxy, exchange, proxyEnvironment } from './transport.ts';

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

async function listen(server: http.Server | https.Server | net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        if ('closeAllConnections' in server) server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return (server.address() as AddressInfo).port;
}

async function serve(handler: (req: http.IncomingMessage, res: http.ServerResponse, body: string) => void) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, port, seen };
}

function client(
  options: Parameters<ReturnType<typeof createHttpClientFactory>['create']>[0] = {},
  deps: Partial<HttpClientFactoryDeps> = {},
) {
  return createHttpClientFactory({
    logger: silentLogger(),
    signal: new AbortController().signal,
    onAuthFailure() {},
    proxyEnv: {},
    ...deps,
  }).create(options);
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected the request to fail');
}

describe('compressed responses', () => {
  it.each([
    ['gzip', (b: Buffer) => zlib.gzipSync(b)],
    ['deflate', (b: Buffer) => zlib.deflateSync(b)],
    ['br', (b: Buffer) => zlib.brotliCompressSync(b)],
  ])('asks for and decodes %s', async (encoding, compress) => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': encoding });
      res.end(compress(Buffer.from(JSON.stringify({ users: ['a', 'b'] }))));
    });
    const res = await client().get<{ users: string[] }>(server.url);
    expect(res.data).toEqual({ users: ['a', 'b'] });
    expect(res.headers['content-encoding']).toBeUndefined();
    expect(server.seen[0]?.headers['accept-encoding']).toBe('gzip, deflate, br');
  });

  it('counts the size limit after decompression (a small gzip body that inflates past it is refused)', async () => {
    const bomb = zlib.gzipSync(Buffer.alloc(4 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(64 * 1024);
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip' }).end(bomb);
    });
    const err = await failure(
      client({ maxResponseBytes: 1024 * 1024 }).get(server.url, { responseType: 'text' }),
    );
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_TOO_LARGE');
  });

  it('classifies a corrupt compressed body as a network failure, not a crash', async () => {
    const server = await serve((_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip' }).end('this is not gzip at all');
    });
    const err = await failure(client().get(server.url, { responseType: 'text' }));
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_NETWORK');
  });
});

describe('redirects', () => {
  it('never turns a POST into a GET (303, 301, 302): a sign-in page is no answer to a delivery', async () => {
    for (const status of [303, 302, 301]) {
      const server = await serve((req, res) => {
        if (req.url === '/start') res.writeHead(status, { location: '/login' }).end();
        else res.writeHead(200).end('<html>Sign in</html>');
      });
      const err = await failure(client().post(`${server.url}/start`, { a: 1 }));
      expect(err).toBeInstanceOf(PermanentError);
      expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
      expect(err.message).toContain(
        `a ${status} answer to POST /start points to ${server.url}/login; it is not followed, since the POST would become a GET without its body`,
      );
      expect(server.seen.map((r) => [r.method, r.url])).toEqual([['POST', '/start']]);
    }
    // A GET follows a 303 as before.
    const server = await serve((req, res) => {
      if (req.url === '/start') res.writeHead(303, { location: '/next' }).end();
      else res.writeHead(200).end('{"ok":true}');
    });
    expect((await client().get(`${server.url}/start`)).data).toEqual({ ok: true });
  });

  it('keeps the method and body after 307 and 308', async () => {
    for (const status of [307, 308]) {
      const server = await serve((req, res) => {
        if (req.url === '/start') res.writeHead(status, { location: '/next' }).end();
        else res.writeHead(202).end();
      });
      await client().post(`${server.url}/start`, 'eyJhbGciOi.set.sig', {
        headers: { 'content-type': 'application/secevent+jwt' },
      });
      expect(server.seen[1]).toMatchObject({
        method: 'POST',
        url: '/next',
        body: 'eyJhbGciOi.set.sig',
        headers: { 'content-type': 'application/secevent+jwt' },
      });
    }
  });

  it('refuses to send a streamed body again to a 307 target', async () => {
    const server = await serve((_req, res) => res.writeHead(307, { location: '/again' }).end());
    const err = await failure(client().post(server.url, Readable.from([Buffer.from('chunk')])));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
    expect(server.seen).toHaveLength(1);
  });

  it('RFC 9110 §15.4.8: a 307/308 to another origin is not followed when the body carries a credential', async () => {
    const password = new Secret('pa$$word+/=9f3c~42');
    const other = await serve((_req, res) => res.writeHead(200).end('{}'));
    for (const status of [307, 308]) {
      const server = await serve((req, res) => {
        if (req.url === '/start') res.writeHead(status, { location: `${other.url}/login` }).end();
        else res.writeHead(200).end('{}');
      });
      // As a form (encoded), as JSON, and as it is.
      for (const body of [
        new URLSearchParams({ username: 'svc', password: password.reveal() }),
        { username: 'svc', password: password.reveal() },
        `svc:${password.reveal()}`,
      ]) {
        const err = await failure(client().post(`${server.url}/start`, body));
        expect(err).toBeInstanceOf(PermanentError);
        expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
        expect(err.message).toContain(
          `a ${status} answer to POST /start points to another origin (${other.url}); it is not followed, since the request body carries credentials`,
        );
      }
    }
    expect(other.seen).toEqual([]);
    // Within the origin the credential stays where it was sent; a body without one may move on.
    const same = await serve((req, res) => {
      if (req.url === '/start') res.writeHead(307, { location: '/next' }).end();
      else res.writeHead(200).end('{}');
    });
    await client().post(`${same.url}/start`, { password: password.reveal() });
    expect(same.seen.map((r) => r.url)).toEqual(['/start', '/next']);
    const moved = await serve((_req, res) => res.writeHead(308, { location: `${other.url}/in` }).end());
    await client().post(moved.url, 'eyJhbGciOi.set.sig', {
      headers: { 'content-type': 'application/secevent+jwt' },
    });
    expect(other.seen.map((r) => [r.method, r.url, r.body])).toEqual([['POST', '/in', 'eyJhbGciOi.set.sig']]);
  });

  it('RFC 9110 §17.1: never follows a redirect from https to plain http', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ssf-bridge-tls-'));
    closers.push(async () => rmSync(dir, { recursive: true, force: true }));
    const tls = selfSignedCertificate(dir, 'api.vendor.example');
    const plain = await serve((_req, res) => res.writeHead(200).end('{}'));
    const secure = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
      req.resume();
      res.writeHead(301, { location: `${plain.url}/insecure` }).end();
    });
    const securePort = await listen(secure);
    const agents = {
      http: new http.Agent(),
      // The certificate is self-signed; what is checked here is where the redirect leads.
      https: new https.Agent({ rejectUnauthorized: false }),
    };
    closers.push(async () => {
      agents.http.destroy();
      agents.https.destroy();
    });
    for (const method of ['GET', 'PUT']) {
      const err = await failure(
        exchange({
          url: `https://127.0.0.1:${securePort}/v1/alerts`,
          method,
          headers: { authorization: 'Bearer tls-only-token' },
          body: method === 'PUT' ? '{"a":1}' : undefined,
          cancel: { fired: false, onFire() {} },
          maxRedirects: 5,
          maxRequestBytes: 1024,
          credentialHeaders: new Set(['authorization']),
          agents,
        }),
      );
      expect(err).toBeInstanceOf(TransportError);
      expect(err.message).toBe(
        `a 301 answer to ${method} /v1/alerts points to ${plain.url}/insecure; it is not followed, since it leaves https for plain http`,
      );
    }
    expect(plain.seen).toEqual([]);
  });

  it('refuses a redirect to a non-http scheme', async () => {
    const server = await serve((_req, res) => res.writeHead(302, { location: 'file:///etc/passwd' }).end());
    const err = await failure(client().get(server.url));
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
    expect(err.message).toMatch(/file:/);
  });

  it('checks every redirect hop of a guarded client against its SSRF policy before connecting', async () => {
    const server = await serve((_req, res) =>
      res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end(),
    );
    const guarded = client({
      maxRedirects: 3,
      ssrfPolicy: { allowHttpHosts: ['127.0.0.1'], allowCidrs: ['127.0.0.1/32'] },
    });
    const err = await failure(guarded.get(server.url));
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_SSRF_REFUSED');
    expect(server.seen).toHaveLength(1);
  });
});

describe('environment proxies', () => {
  /** A forward proxy for plain-HTTP targets: records what it is asked and answers itself. */
  async function forwardProxy() {
    return serve((_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"via":"proxy"}'),
    );
  }

  it('sends plain-HTTP requests to HTTP_PROXY with the absolute URL and the proxy credentials', async () => {
    const proxy = await forwardProxy();
    const proxyUrl = `http://ops%40example:p%3Ass@127.0.0.1:${proxy.port}`;
    const c = client({}, { proxyEnv: { HTTP_PROXY: proxyUrl } });
    const res = await c.get('http://api.vendor.example:8080/v1/devices?page=2');
    expect(res.data).toEqual({ via: 'proxy' });
    expect(proxy.seen[0]).toMatchObject({
      method: 'GET',
      url: 'http://api.vendor.example:8080/v1/devices?page=2',
      headers: {
        host: 'api.vendor.example:8080',
        'proxy-authorization': `Basic ${Buffer.from('ops@example:p:ss').toString('base64')}`,
      },
    });
  });

  it('connects directly to hosts listed in NO_PROXY', async () => {
    const proxy = await forwardProxy();
    const target = await serve((_req, res) => res.writeHead(200).end('{"via":"direct"}'));
    const c = client({}, { proxyEnv: { HTTP_PROXY: proxy.url, NO_PROXY: 'localhost,127.0.0.1' } });
    expect((await c.get(target.url)).data).toEqual({ via: 'direct' });
    expect(proxy.seen).toHaveLength(0);
  });

  it('never uses a proxy for a client with an SSRF policy', async () => {
    const proxy = await forwardProxy();
    const target = await serve((_req, res) => res.writeHead(200).end('{"via":"direct"}'));
    const c = client(
      {
        ssrfPolicy: { allowHttpHosts: ['127.0.0.1'], allowCidrs: ['127.0.0.1/32'] },
      },
      { proxyEnv: { HTTP_PROXY: proxy.url } },
    );
    expect((await c.get(target.url)).data).toEqual({ via: 'direct' });
    expect(proxy.seen).toHaveLength(0);
  });

  it('refuses a proxy setting it cannot use when the client is created', () => {
    expect(() => client({}, { proxyEnv: { HTTPS_PROXY: 'socks5://127.0.0.1:1080' } })).toThrow(ConfigError);
    expect(() => client({}, { proxyEnv: { HTTPS_PROXY: 'socks5://127.0.0.1:1080' } })).toThrow(
      /http:\/\/ proxy/,
    );
  });

  describe('https targets through a CONNECT tunnel', () => {
    let dir: string;
    let tlsOptions: { key: Buffer; cert: Buffer };
    beforeAll(() => {
      dir = mkdtempSync(path.join(tmpdir(), 'ssf-bridge-tls-'));
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ec',
          '-pkeyopt',
          'ec_paramgen_curve:P-256',
          '-nodes',
          '-days',
          '1',
          '-subj',
          '/CN=api.vendor.example',
          '-keyout',
          path.join(dir, 'key.pem'),
          '-out',
          path.join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      );
      tlsOptions = {
        key: readFileSync(path.join(dir, 'key.pem')),
        cert: readFileSync(path.join(dir, 'cert.pem')),
      };
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    /** A CONNECT proxy that records each tunnel request and joins it to `targetPort`, or refuses. */
    async function tunnelProxy(targetPort: number, refuse = false) {
      const connects: Array<{ target: string; authorization: string | undefined }> = [];
      const server = http.createServer();
      server.on('connect', (req: http.IncomingMessage, socket: net.Socket) => {
        connects.push({ target: req.url ?? '', authorization: req.headers['proxy-authorization'] });
        if (refuse) {
          socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
          return;
        }
        const upstream = net.connect(targetPort, '127.0.0.1', () => {
          socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          upstream.pipe(socket).pipe(upstream);
        });
        upstream.on('error', () => socket.destroy());
        socket.on('error', () => upstream.destroy());
      });
      const port = await listen(server);
      return { url: `http://user:pw@127.0.0.1:${port}`, connects };
    }

    it('opens a tunnel named after the target and negotiates TLS with the target through it', async () => {
      let handshakes = 0;
      const target = https.createServer(tlsOptions, (_req, res) => res.end('{}'));
      target.on('secureConnection', () => (handshakes += 1));
      target.on('tlsClientError', () => (handshakes += 1));
      const targetPort = await listen(target);
      const proxy = await tunnelProxy(targetPort);
      const c = client({}, { proxyEnv: { HTTPS_PROXY: proxy.url } });
      const err = await failure(c.get('https://api.vendor.example/v1/alerts'));
      // The certificate is self-signed, so the client refuses it: TLS ran end to end with the target.
      expect(err).toBeInstanceOf(RetryableError);
      expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_TLS');
      expect(proxy.connects).toEqual([
        {
          target: 'api.vendor.example:443',
          authorization: `Basic ${Buffer.from('user:pw').toString('base64')}`,
        },
      ]);
      // The target sees the refused handshake once the client's alert reaches it.
      await vi.waitFor(() => expect(handshakes).toBe(1));
    });

    it('reports a refused tunnel as a retryable network failure', async () => {
      const proxy = await tunnelProxy(1, true);
      const c = client({}, { proxyEnv: { HTTPS_PROXY: proxy.url } });
      const err = await failure(c.get('https://api.vendor.example/v1/alerts'));
      expect(err).toBeInstanceOf(RetryableError);
      expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_NETWORK');
      expect(err.message).toMatch(/proxy refused to open a tunnel to api\.vendor\.example:443 \(403\)/);
    });
    it('times out a request whose proxy never answers the CONNECT, and closes the tunnel it was opening', async () => {
      const open = new Set<net.Socket>();
      const server = http.createServer();
      // Takes the CONNECT and says nothing, as a proxy stuck on its upstream does.
      server.on('connect', (_req: http.IncomingMessage, socket: net.Socket) => {
        open.add(socket);
        socket.on('close', () => open.delete(socket));
        socket.on('error', () => undefined);
        // Closes its side once the client closes its own, as a proxy does.
        socket.on('end', () => socket.end());
      });
      const port = await listen(server);
      const c = client({ timeoutMs: 300 }, { proxyEnv: { HTTPS_PROXY: `http://127.0.0.1:${port}` } });
      try {
        for (let i = 0; i < 3; i += 1) {
          const err = await failure(c.get('https://api.vendor.example/v1/alerts'));
          expect(err).toBeInstanceOf(RetryableError);
          expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_TIMEOUT');
        }
        await vi.waitFor(() => expect(open.size).toBe(0), { timeout: 2_000 });
      } finally {
        // The server's close waits for tunnels; end any left so the test fails rather than hangs.
        for (const socket of open) socket.destroy();
      }
    });
  });

  it('matches NO_PROXY entries like curl: hosts, subdomains, ports and *', () => {
    const u = (s: string) => new URL(s);
    expect(bypassesProxy(u('https://api.okta.com/x'), '.okta.com')).toBe(true);
    expect(bypassesProxy(u('https://okta.com/x'), '*.okta.com')).toBe(true);
    expect(bypassesProxy(u('https://notokta.com/x'), 'okta.com')).toBe(false);
    expect(bypassesProxy(u('http://10.0.0.5:8080/'), '10.0.0.5:8080')).toBe(true);
    expect(bypassesProxy(u('http://10.0.0.5:9090/'), '10.0.0.5:8080')).toBe(false);
    expect(bypassesProxy(u('http://[::1]:80/'), '::1')).toBe(false);
    expect(bypassesProxy(u('http://[::1]:80/'), '[::1]')).toBe(true);
    expect(bypassesProxy(u('https://anything.example/'), '*')).toBe(true);
    expect(bypassesProxy(u('https://anything.example/'), undefined)).toBe(false);
  });

  it('reads lower-case variables first, as curl does', () => {
    expect(
      proxyEnvironment({
        HTTPS_PROXY: 'http://upper:1',
        https_proxy: 'http://lower:1',
        NO_PROXY: 'a',
        no_proxy: 'b',
      }),
    ).toEqual({ HTTP_PROXY: undefined, HTTPS_PROXY: 'http://lower:1', NO_PROXY: 'b' });
  });
});
