import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Logger } from '../plugin-api/types.ts';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { createHttpClientFactory } from './client.ts';
import {
  checkAddress,
  checkTargetUrl,
  createGuardedAgents,
  createGuardedLookup,
  parseIp,
  ssrfPolicySchema,
  SsrfRefusedError,
  validateTargetUrl,
  type ResolvedAddress,
  type SsrfPolicy,
  type SsrfReason,
} from './ssrf.ts';

// Addresses from the documentation ranges stand in for public hosts: no test ever connects to them.
const PUBLIC_V4 = '203.0.113.10';
const PUBLIC_V6 = '2001:db8::10';

describe('checkAddress', () => {
  it.each<[string, SsrfReason]>([
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['::1', 'loopback'],
    ['10.1.2.3', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['192.168.1.1', 'private'],
    ['fc00::1', 'private'],
    ['fd12:3456::1', 'private'],
    ['169.254.1.1', 'link_local'],
    ['fe80::1', 'link_local'],
    ['fe80::1%eth0', 'link_local'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['0.0.0.0', 'unspecified'],
    ['::', 'unspecified'],
    ['224.0.0.251', 'multicast'],
    ['ff02::1', 'multicast'],
    ['255.255.255.255', 'reserved'],
    ['169.254.169.254', 'metadata'],
    ['fd00:ec2::254', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:10.0.0.1', 'private'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['2002:c0a8:0101::1', 'private'],
    // IPv4-translated (::ffff:0:0:0/96), which a stateless translator (SIIT) hands to IPv4.
    ['::ffff:0:127.0.0.1', 'loopback'],
    ['::ffff:0:a9fe:a9fe', 'metadata'],
    ['::ffff:0:a00:1', 'private'],
  ])('refuses %s as %s', (address, reason) => {
    expect(checkAddress(address)).toBe(reason);
  });

  it.each([
    PUBLIC_V4,
    PUBLIC_V6,
    '8.8.8.8',
    '172.32.0.1',
    '100.128.0.1',
    '169.255.0.1',
    '::ffff:8.8.8.8',
    '2606:4700::1111',
  ])('allows the public address %s', (address) => {
    expect(checkAddress(address)).toBeUndefined();
  });

  it('allows refused ranges that the policy lists, except metadata through a wide range', () => {
    const policy: SsrfPolicy = { allowCidrs: ['10.0.0.0/8', '169.254.0.0/16', '127.0.0.1'] };
    expect(checkAddress('10.9.8.7', policy)).toBeUndefined();
    expect(checkAddress('::ffff:10.9.8.7', policy)).toBeUndefined();
    expect(checkAddress('127.0.0.1', policy)).toBeUndefined();
    expect(checkAddress('127.0.0.2', policy)).toBe('loopback');
    expect(checkAddress('169.254.10.10', policy)).toBeUndefined();
    expect(checkAddress('169.254.169.254', policy)).toBe('metadata');
    expect(checkAddress('169.254.169.254', { allowCidrs: ['169.254.169.254/32'] })).toBeUndefined();
  });

  it('refuses addresses in denyCidrs although they are public', () => {
    expect(checkAddress(PUBLIC_V4, { denyCidrs: ['203.0.113.0/24'] })).toBe('reserved');
    expect(checkAddress('::ffff:203.0.113.10', { denyCidrs: ['203.0.113.0/24'] })).toBe('reserved');
  });

  it('parses IPv6 with an embedded IPv4 tail into the same bytes as hex', () => {
    expect(parseIp('::ffff:1.2.3.4')?.bytes).toEqual(parseIp('::ffff:102:304')?.bytes);
    expect(parseIp('[::1]')?.family).toBe(6);
    expect(parseIp('example.com')).toBeUndefined();
  });
});

describe('checkTargetUrl', () => {
  const policy: SsrfPolicy = { allowHttpHosts: ['127.0.0.1'] };
  const testPolicy: SsrfPolicy = { allowHttpHosts: ['127.0.0.1'], allowHosts: ['127.0.0.1'] };

  it.each<[string, SsrfReason]>([
    ['not a url', 'invalid_url'],
    ['ftp://receiver.example.com/x', 'unsupported_scheme'],
    ['file:///etc/passwd', 'unsupported_scheme'],
    ['http://receiver.example.com/events', 'insecure_scheme'],
    ['http://127.0.0.2:8080/events', 'insecure_scheme'],
    ['https://user:pw@receiver.example.com/', 'credentials_in_url'],
    ['https://token@receiver.example.com/', 'credentials_in_url'],
    ['https://localhost/x', 'loopback'],
    ['https://LOCALHOST./x', 'loopback'],
    ['https://api.localhost/x', 'loopback'],
    ['https://metadata.google.internal/computeMetadata/v1/', 'metadata'],
    ['https://169.254.169.254/latest/meta-data/', 'metadata'],
    ['https://[::1]/x', 'loopback'],
    ['https://[::ffff:127.0.0.1]/x', 'loopback'],
    ['https://2130706433/x', 'loopback'],
    ['https://0x7f.1/x', 'loopback'],
    ['https://10.0.0.1/x', 'private'],
    ['https://0.0.0.0/x', 'unspecified'],
    ['https://[fe80::1]/x', 'link_local'],
  ])('refuses %s (%s)', (url, reason) => {
    const result = checkTargetUrl(url, policy);
    expect(result).toMatchObject({ ok: false, reason });
  });

  it.each([
    'https://receiver.example.com/events',
    `https://${PUBLIC_V4}:8443/x`,
    'http://127.0.0.1:9999/push',
  ])('accepts %s', (url) => {
    expect(checkTargetUrl(url, testPolicy).ok).toBe(true);
  });

  it('normalises other spellings of an allow-listed address', () => {
    expect(checkTargetUrl('http://2130706433:9999/push', testPolicy).ok).toBe(true);
    expect(checkTargetUrl('http://127.0.0.1:9999/push', policy)).toMatchObject({
      ok: false,
      reason: 'loopback',
    });
  });

  it('explains a refusal in words an API client can act on', () => {
    const result = checkTargetUrl('http://receiver.example.com/events', policy);
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.message).toMatch(/must use https/);
  });
});

function resolverFrom(...answers: string[][]) {
  const calls: string[] = [];
  const resolve = vi.fn(async (hostname: string): Promise<ResolvedAddress[]> => {
    calls.push(hostname);
    const answer = answers[Math.min(calls.length - 1, answers.length - 1)] ?? [];
    return answer.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  });
  return { resolve, calls };
}

describe('validateTargetUrl', () => {
  it('resolves the host and refuses it if any address is refused', async () => {
    const { resolve } = resolverFrom([PUBLIC_V4, '10.0.0.5']);
    const result = await validateTargetUrl('https://receiver.example.com/events', { resolve });
    expect(result).toMatchObject({ ok: false, reason: 'private' });
    if (!result.ok) expect(result.message).toContain('resolves to 10.0.0.5');
  });

  it('accepts a host whose addresses are all public and reports them', async () => {
    const { resolve } = resolverFrom([PUBLIC_V4, PUBLIC_V6]);
    const result = await validateTargetUrl('https://receiver.example.com/events', { resolve });
    expect(result).toMatchObject({ ok: true, addresses: [PUBLIC_V4, PUBLIC_V6] });
  });

  it('refuses a host that does not resolve', async () => {
    const resolve = vi.fn(async () => {
      throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
    });
    expect(await validateTargetUrl('https://nowhere.example/', { resolve })).toMatchObject({
      ok: false,
      reason: 'unresolvable',
    });
  });

  it('refuses, as unresolvable, a name whose lookup fails for now too: the party giving the URL is told (400) and may give it again', async () => {
    const resolve = vi.fn(async () => {
      throw dnsError('EAI_AGAIN', 'nowhere.example');
    });
    expect(await validateTargetUrl('https://nowhere.example/', { resolve })).toMatchObject({
      ok: false,
      reason: 'unresolvable',
      message: 'the host nowhere.example has a host name that does not resolve',
    });
  });

  it('trusts allowHosts without resolving them', async () => {
    const { resolve } = resolverFrom(['10.0.0.5']);
    const result = await validateTargetUrl('https://receiver.internal/x', {
      resolve,
      allowHosts: ['Receiver.Internal.'],
    });
    expect(result.ok).toBe(true);
    expect(resolve).not.toHaveBeenCalled();
  });
});

/** An error as dns.lookup (or a resolver timing out) throws it. */
function dnsError(code: string, hostname: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`getaddrinfo ${code} ${hostname}`), {
    code,
    hostname,
    syscall: 'getaddrinfo',
  });
}

function lookupOnce(policy: SsrfPolicy, hostname: string, all = false) {
  const lookup = createGuardedLookup(policy);
  return new Promise<{ err: Error | null; address: unknown; family?: number }>((resolve) => {
    lookup(hostname, { all }, (err, address, family) => resolve({ err, address, family }));
  });
}

describe('createGuardedLookup (DNS rebinding)', () => {
  it('resolves once and hands the socket the address it checked', async () => {
    const { resolve, calls } = resolverFrom([PUBLIC_V4], ['127.0.0.1']);
    const first = await lookupOnce({ resolve }, 'rebind.example');
    expect(first).toEqual({ err: null, address: PUBLIC_V4, family: 4 });
    expect(calls).toEqual(['rebind.example']);
  });

  it('refuses the connection when the next answer turns into a loopback address', async () => {
    const { resolve } = resolverFrom([PUBLIC_V4], ['127.0.0.1']);
    const policy = { resolve };
    await lookupOnce(policy, 'rebind.example');
    const second = await lookupOnce(policy, 'rebind.example');
    expect(second.err).toBeInstanceOf(SsrfRefusedError);
    expect((second.err as SsrfRefusedError).reason).toBe('loopback');
  });

  it('refuses a name that resolves to a public and a private address at once', async () => {
    const { resolve } = resolverFrom([PUBLIC_V4, '127.0.0.1']);
    const result = await lookupOnce({ resolve }, 'mixed.example', true);
    expect((result.err as SsrfRefusedError).reason).toBe('loopback');
  });

  it.each(['EAI_AGAIN', 'ESERVFAIL', 'ETIMEOUT', 'ENOTFOUND'])(
    'a lookup that fails with %s hands the socket the resolver’s error, not a refusal',
    async (code) => {
      const failure = dnsError(code, 'flaky.example');
      const result = await lookupOnce({ resolve: async () => Promise.reject(failure) }, 'flaky.example');
      expect(result.err).toBe(failure);
      expect(result.err).not.toBeInstanceOf(SsrfRefusedError);
    },
  );

  it('still refuses an answer with no address at all as unresolvable', async () => {
    const result = await lookupOnce({ resolve: async () => [] }, 'empty.example');
    expect(result.err).toBeInstanceOf(SsrfRefusedError);
    expect((result.err as SsrfRefusedError).reason).toBe('unresolvable');
  });

  it('answers with a single checked address when all are requested', async () => {
    const { resolve } = resolverFrom([PUBLIC_V4, '203.0.113.11']);
    const result = await lookupOnce({ resolve }, 'two.example', true);
    expect(result.err).toBeNull();
    expect(result.address).toEqual([{ address: PUBLIC_V4, family: 4 }]);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end, against servers bound to 127.0.0.1 only.

interface Loopback {
  port: number;
  hits: string[];
  close(): Promise<void>;
}

const servers: Loopback[] = [];

async function startLoopback(handler?: (req: http.IncomingMessage, res: http.ServerResponse) => void) {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(req.url ?? '');
    if (handler) handler(req, res);
    else res.writeHead(202).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const loopback: Loopback = {
    port: (server.address() as AddressInfo).port,
    hits,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(loopback);
  return loopback;
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

const silent: Logger = {
  trace: () => {},
  debug: () => {},
  info: () => {},
  warn: () => {},
  error: () => {},
  child: () => silent,
};

function factoryWith(policy: SsrfPolicy) {
  const stop = new AbortController();
  const factory = createHttpClientFactory({
    logger: silent,
    signal: stop.signal,
    onAuthFailure: () => {},
    ssrfPolicy: policy,
  });
  return { factory, stop };
}

describe('guarded HTTP client', () => {
  it('reaches an allow-listed 127.0.0.1 over http', async () => {
    const server = await startLoopback();
    const { factory, stop } = factoryWith({ allowHttpHosts: ['127.0.0.1'], allowHosts: ['127.0.0.1'] });
    const res = await factory
      .create()
      .post(`http://127.0.0.1:${server.port}/push`, 'jwt', { responseType: 'text' });
    expect(res.status).toBe(202);
    expect(server.hits).toEqual(['/push']);
    stop.abort();
  });

  it('refuses 127.0.0.1 without the allow-list and never connects', async () => {
    const server = await startLoopback();
    const { factory, stop } = factoryWith({ allowHttpHosts: ['127.0.0.1'] });
    const err = await factory
      .create()
      .post(`http://127.0.0.1:${server.port}/push`, 'jwt')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsrfRefusedError);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as SsrfRefusedError).reason).toBe('loopback');
    expect(server.hits).toEqual([]);
    stop.abort();
  });

  it('connects to the address it checked, not to a second DNS answer', async () => {
    const server = await startLoopback();
    // Only the first answer is allowed; a client that resolved again would be refused or fail.
    const { resolve } = resolverFrom(['127.0.0.1'], ['169.254.169.254']);
    const { factory, stop } = factoryWith({
      resolve,
      allowHttpHosts: ['receiver.test'],
      allowCidrs: ['127.0.0.1/32'],
    });
    const res = await factory
      .create()
      .get(`http://receiver.test:${server.port}/ok`, { responseType: 'text' });
    expect(res.status).toBe(202);
    expect(resolve).toHaveBeenCalledTimes(1);
    expect(server.hits).toEqual(['/ok']);
    stop.abort();
  });

  it('refuses at connection time a name that was public when validated and rebinds to 127.0.0.1', async () => {
    const server = await startLoopback();
    const { resolve } = resolverFrom([PUBLIC_V4], ['127.0.0.1']);
    const policy: SsrfPolicy = { resolve, allowHttpHosts: ['rebind.test'] };
    const url = `http://rebind.test:${server.port}/push`;
    expect((await validateTargetUrl(url, policy)).ok).toBe(true);
    const { factory, stop } = factoryWith(policy);
    const err = await factory
      .create()
      .post(url, 'jwt')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsrfRefusedError);
    expect((err as SsrfRefusedError).reason).toBe('loopback');
    expect((err as Error).message).toContain('POST http://rebind.test');
    expect(server.hits).toEqual([]);
    stop.abort();
  });

  it('does not follow redirects by default', async () => {
    const server = await startLoopback((req, res) => {
      res.writeHead(302, { location: '/elsewhere' }).end();
    });
    const { factory, stop } = factoryWith({ allowHttpHosts: ['127.0.0.1'], allowHosts: ['127.0.0.1'] });
    const err = await factory
      .create()
      .post(`http://127.0.0.1:${server.port}/push`, 'jwt')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
    expect(server.hits).toEqual(['/push']);
    stop.abort();
  });

  it('checks every redirect hop when redirects are enabled', async () => {
    const server = await startLoopback((req, res) => {
      if (req.url === '/start')
        res.writeHead(302, { location: `http://loop.test:${server.port}/inner` }).end();
      else res.writeHead(200).end('inner');
    });
    const { resolve } = resolverFrom(['127.0.0.1']);
    const { factory, stop } = factoryWith({
      resolve,
      allowHttpHosts: ['127.0.0.1', 'loop.test'],
      allowHosts: ['127.0.0.1'],
    });
    const err = await factory
      .create({ maxRedirects: 3 })
      .get(`http://127.0.0.1:${server.port}/start`)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsrfRefusedError);
    expect((err as SsrfRefusedError).reason).toBe('loopback');
    expect(server.hits).toEqual(['/start']);
    stop.abort();
  });
});

describe('guarded HTTP client: DNS failures are network errors (docs/http-client.md, Errors)', () => {
  it.each(['EAI_AGAIN', 'ESERVFAIL', 'ETIMEOUT'])(
    'a resolver failing with %s gives a RetryableError SSF_ERR_HTTP_NETWORK, as on a client without a policy',
    async (code) => {
      const resolve = vi.fn(async (hostname: string): Promise<ResolvedAddress[]> => {
        throw dnsError(code, hostname);
      });
      const { factory, stop } = factoryWith({ resolve, allowHttpHosts: ['receiver.test'] });
      const err = await factory
        .create()
        .post('http://receiver.test:9/push', 'jwt')
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RetryableError);
      expect(err).not.toBeInstanceOf(SsrfRefusedError);
      expect(err).toMatchObject({ code: 'SSF_ERR_HTTP_NETWORK', detail: { networkCode: code } });
      expect(resolve).toHaveBeenCalledWith('receiver.test');
      stop.abort();
    },
  );

  it('the same for a host trusted by allowHosts (resolved before it is looked up in the list)', async () => {
    const resolve = vi.fn(async (hostname: string): Promise<ResolvedAddress[]> => {
      throw dnsError('EAI_AGAIN', hostname);
    });
    const { factory, stop } = factoryWith({
      resolve,
      allowHttpHosts: ['issuer.test'],
      allowHosts: ['issuer.test'],
    });
    const err = await factory
      .create()
      .get('http://issuer.test:9/streams')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as RetryableError).code).toBe('SSF_ERR_HTTP_NETWORK');
    stop.abort();
  });

  it('a request after the resolver recovered goes through', async () => {
    const server = await startLoopback();
    let lookups = 0;
    const resolve = vi.fn(async (hostname: string): Promise<ResolvedAddress[]> => {
      lookups += 1;
      if (lookups === 1) throw dnsError('EAI_AGAIN', hostname);
      return [{ address: '127.0.0.1', family: 4 }];
    });
    const { factory, stop } = factoryWith({
      resolve,
      allowHttpHosts: ['receiver.test'],
      allowCidrs: ['127.0.0.1/32'],
    });
    const client = factory.create();
    const url = `http://receiver.test:${server.port}/push`;
    expect(await client.post(url, 'jwt').catch((e: unknown) => e)).toBeInstanceOf(RetryableError);
    expect((await client.post(url, 'jwt', { responseType: 'text' })).status).toBe(202);
    expect(server.hits).toEqual(['/push']);
    stop.abort();
  });

  it('a resolver answering a private address is still refused, permanently', async () => {
    const server = await startLoopback();
    const { resolve } = resolverFrom(['10.0.0.5']);
    const { factory, stop } = factoryWith({ resolve, allowHttpHosts: ['receiver.test'] });
    const err = await factory
      .create()
      .post(`http://receiver.test:${server.port}/push`, 'jwt')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsrfRefusedError);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ code: 'SSF_ERR_HTTP_SSRF_REFUSED', reason: 'private' });
    expect(server.hits).toEqual([]);
    stop.abort();
  });

  it('an answer with no address is still refused, permanently, as unresolvable', async () => {
    const { factory, stop } = factoryWith({ resolve: async () => [], allowHttpHosts: ['receiver.test'] });
    const err = await factory
      .create()
      .post('http://receiver.test:9/push', 'jwt')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SsrfRefusedError);
    expect((err as SsrfRefusedError).reason).toBe('unresolvable');
    stop.abort();
  });
});

describe('createGuardedAgents', () => {
  it('refuses IP-literal hosts, which never reach lookup', async () => {
    const server = await startLoopback();
    const agents = createGuardedAgents({ allowHttpHosts: ['127.0.0.1'] });
    const err = await new Promise<Error>((resolve) => {
      const req = http.get(
        { host: '127.0.0.1', port: server.port, path: '/direct', agent: agents.http },
        () => resolve(new Error('connected')),
      );
      req.on('error', resolve);
    });
    expect(err).toBeInstanceOf(SsrfRefusedError);
    expect(server.hits).toEqual([]);
    agents.http.destroy();
  });

  it('refuses plain http to hosts not listed in allowHttpHosts', async () => {
    const server = await startLoopback();
    const agents = createGuardedAgents({ allowHosts: ['127.0.0.1'] });
    const err = await new Promise<Error>((resolve) => {
      const req = http.get({ host: '127.0.0.1', port: server.port, agent: agents.http }, () =>
        resolve(new Error('connected')),
      );
      req.on('error', resolve);
    });
    expect((err as SsrfRefusedError).reason).toBe('insecure_scheme');
    expect(server.hits).toEqual([]);
    agents.http.destroy();
  });
});

describe('ssrfPolicySchema', () => {
  it('reads the snake_case config block into a policy', () => {
    expect(ssrfPolicySchema.parse({ allow_http_hosts: ['127.0.0.1'], allow_cidrs: ['10.0.0.0/8'] })).toEqual({
      allowHttpHosts: ['127.0.0.1'],
      allowHosts: [],
      allowCidrs: ['10.0.0.0/8'],
      denyCidrs: [],
    });
  });

  it('reports malformed CIDRs and unknown keys', () => {
    const bad = ssrfPolicySchema.safeParse({ allow_cidrs: ['10.0.0.0/33'], deny_cidr: [] });
    expect(bad.success).toBe(false);
    const paths = bad.error?.issues.map((i) => i.path.join('.')) ?? [];
    expect(paths).toContain('allow_cidrs.0');
    expect(bad.error?.issues.some((i) => i.code === 'unrecognized_keys')).toBe(true);
  });
});
