/**
 * One HTTP exchange over node:http/https, including redirects, response decompression and
 * environment proxies. The client (client.ts) adds deadlines, authentication, size limits on the
 * body it reads, classification and metrics on top.
 *
 * Why not a general-purpose HTTP library: delivery pushes one small request per SET, and a
 * library's per-request machinery (config merging, header objects, redirect wrappers, a
 * keep-alive option reset on every request, body streams) cost four times the CPU of the
 * exchange itself. This module does only what the client needs, with the body written in the
 * same packet as the headers.
 */
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import tls from 'node:tls';
import { pipeline, Readable, type Duplex } from 'node:stream';
import zlib from 'node:zlib';

/** Failures the transport itself decides; everything else is Node's own error (with its code). */
export type TransportFailure = 'request_too_large' | 'too_many_redirects' | 'redirect_unfollowable';

export class TransportError extends Error {
  readonly failure: TransportFailure;
  constructor(failure: TransportFailure, message: string) {
    super(message);
    this.name = 'TransportError';
    this.failure = failure;
  }
}

export interface TransportAgents {
  http: http.Agent;
  https: https.Agent;
}

/**
 * What can end an exchange early. The transport registers what to do (destroy the request and
 * its response); the owner fires it. A plain callback list rather than an AbortSignal: an
 * AbortController and the listeners Node adds to its signal cost several microseconds per request,
 * and a push sends one request per SET.
 */
export interface Cancellation {
  readonly fired: boolean;
  /** Runs `fn` when the exchange is cancelled (at once if it already is). */
  onFire(fn: () => void): void;
}

export interface ExchangeRequest {
  url: string;
  method: string;
  /** Header names as the caller spelled them; sent as they are. */
  headers: Record<string, string>;
  body: string | Buffer | Uint8Array | Readable | undefined;
  cancel: Cancellation;
  /** Redirects to follow; 0 hands a 3xx back as the response. */
  maxRedirects: number;
  /** Largest request body sent. */
  maxRequestBytes: number;
  /** Lower-case names of headers dropped when a redirect leaves the origin. */
  credentialHeaders: ReadonlySet<string>;
  /**
   * Whether a body holds a credential (a client secret, a password): such a body is not sent
   * again to another origin, so a redirect that would do that is refused. Undefined: none does.
   */
  bodyCarriesCredentials?(body: string | Buffer | Uint8Array): boolean;
  agents: TransportAgents;
  /** Routes requests through a proxy when one applies to the target; undefined: connect directly. */
  proxy?: ProxyRoute;
  /** Called with each redirect target before it is followed; throw to refuse it. */
  checkRedirect?(url: URL): void;
}

export interface ExchangeResponse {
  status: number;
  statusText: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** The body, already decompressed. The caller must consume or destroy it. */
  body: Readable;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const ACCEPT_ENCODING = 'gzip, deflate, br';

function flatten(headers: http.IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function hasHeader(headers: Record<string, string>, lowerName: string): boolean {
  for (const name in headers) if (name.toLowerCase() === lowerName) return true;
  return false;
}

function withoutHeaders(headers: Record<string, string>, drop: (lowerName: string) => boolean) {
  const out: Record<string, string> = {};
  for (const name in headers) if (!drop(name.toLowerCase())) out[name] = headers[name]!;
  return out;
}

function bodyLength(body: string | Buffer | Uint8Array): number {
  return typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength;
}

/** A decompressing view of the body when the server compressed it; Node's stream otherwise. */
function decoded(res: http.IncomingMessage, method: string): { body: Readable; decompressed: boolean } {
  const encoding = res.headers['content-encoding']?.trim().toLowerCase();
  const bodyless = method === 'HEAD' || res.statusCode === 204 || res.statusCode === 304;
  let inflate: zlib.Gunzip | zlib.Inflate | zlib.BrotliDecompress | undefined;
  if (!bodyless) {
    if (encoding === 'gzip' || encoding === 'x-gzip') {
      inflate = zlib.createGunzip({
        flush: zlib.constants.Z_SYNC_FLUSH,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      });
    } else if (encoding === 'deflate') {
      inflate = zlib.createInflate({
        flush: zlib.constants.Z_SYNC_FLUSH,
        finishFlush: zlib.constants.Z_SYNC_FLUSH,
      });
    } else if (encoding === 'br') {
      inflate = zlib.createBrotliDecompress();
    }
  }
  if (!inflate) return { body: res, decompressed: false };
  // pipeline passes errors both ways and destroys the socket's response when the view is destroyed.
  pipeline(res, inflate, () => {});
  return { body: inflate, decompressed: true };
}

/** The error a cancelled exchange fails with (the owner knows, and reports, why it fired). */
function cancelled(): Error {
  const err = new Error('the request was cancelled') as Error & { code: string };
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}

interface Hop {
  url: URL;
  method: string;
  headers: Record<string, string>;
  body: ExchangeRequest['body'];
}

function sendOnce(req: ExchangeRequest, hop: Hop): Promise<http.IncomingMessage> {
  const secure = hop.url.protocol === 'https:';
  const headers = { ...hop.headers };
  const body = hop.body;
  if (body !== undefined && !(body instanceof Readable)) {
    const length = bodyLength(body);
    if (length > req.maxRequestBytes) {
      return Promise.reject(
        new TransportError(
          'request_too_large',
          `the request body (${length} bytes) exceeds the limit of ${req.maxRequestBytes} bytes`,
        ),
      );
    }
    headers['content-length'] = String(length);
  } else if (
    body === undefined &&
    (hop.method === 'POST' || hop.method === 'PUT' || hop.method === 'PATCH')
  ) {
    headers['content-length'] = '0';
  }
  const via = req.proxy?.routeFor(hop.url);
  const options: http.RequestOptions = {
    method: hop.method,
    headers,
    // IPv6 literals come bracketed from URL; net.connect wants them bare.
    hostname: hop.url.hostname.replace(/^\[|\]$/g, ''),
    port: hop.url.port || (secure ? 443 : 80),
    path: `${hop.url.pathname}${hop.url.search}`,
    agent: secure ? req.agents.https : req.agents.http,
  };
  if (via?.kind === 'forward') {
    // A plain-HTTP target through a proxy: the absolute URL goes to the proxy.
    options.hostname = via.proxy.hostname;
    options.port = via.proxy.port;
    options.path = hop.url.toString();
    options.agent = via.agent;
    headers['host'] ??= hop.url.host;
    if (via.authorization) headers['proxy-authorization'] = via.authorization;
  } else if (via?.kind === 'tunnel') {
    options.agent = via.agent;
  }
  if (req.cancel.fired) return Promise.reject(cancelled());
  return new Promise((resolve, reject) => {
    const outgoing = (secure ? https : http).request(options, resolve);
    outgoing.once('error', reject);
    // Destroying the request ends its response too; once the response has been read and the
    // socket went back to the pool, the request is already destroyed and this does nothing.
    // A request still waiting for its connection (a tunnel the proxy has not opened) emits no
    // error when destroyed, so the deadline settles it here, and closes the tunnel being opened.
    req.cancel.onFire(() => {
      const err = cancelled();
      (outgoing as TunnelOwner)[ABANDON_TUNNEL]?.();
      outgoing.destroy(err);
      reject(err);
    });
    if (body instanceof Readable) {
      let sent = 0;
      body.on('data', (chunk: Buffer | string) => {
        sent += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
        if (sent > req.maxRequestBytes) {
          body.unpipe(outgoing);
          body.destroy();
          outgoing.destroy(
            new TransportError(
              'request_too_large',
              `the request body exceeds the limit of ${req.maxRequestBytes} bytes`,
            ),
          );
        }
      });
      body.once('error', (err) => outgoing.destroy(err));
      body.pipe(outgoing);
    } else {
      outgoing.end(body);
    }
  });
}

/**
 * The next hop after a 3xx: the same request again (307, 308; 301 and 302 but for a POST), or a
 * GET after a 303 to a GET. Refused: other schemes, https to plain http, a body turned into a
 * GET, and a body with credentials sent again to another origin.
 */
function nextHop(req: ExchangeRequest, hop: Hop, status: number, location: string): Hop {
  let target: URL;
  try {
    target = new URL(location, hop.url);
  } catch {
    throw new TransportError('redirect_unfollowable', `the redirect target "${location}" is not a URL`);
  }
  if (target.protocol !== 'http:' && target.protocol !== 'https:') {
    throw new TransportError('redirect_unfollowable', `a redirect to ${target.protocol} cannot be followed`);
  }
  if (hop.url.protocol === 'https:' && target.protocol === 'http:') {
    // What was sent over TLS, its credentials and body included, is not sent again in clear text.
    throw new TransportError(
      'redirect_unfollowable',
      `a ${status} answer to ${hop.method} ${hop.url.pathname} points to ${target.origin}${target.pathname}; it is not followed, since it leaves https for plain http`,
    );
  }
  req.checkRedirect?.(target);
  const toGet =
    status === 303 ? hop.method !== 'HEAD' : (status === 301 || status === 302) && hop.method === 'POST';
  if (toGet && hop.method !== 'GET') {
    // A browser would fetch the page with a GET; a delivery would then count a sign-in page as
    // its answer while what it sent never arrived (RFC 9110 §15.4.2–4 allow, not require, this).
    throw new TransportError(
      'redirect_unfollowable',
      `a ${status} answer to ${hop.method} ${hop.url.pathname} points to ${target.origin}${target.pathname}; it is not followed, since the ${hop.method} would become a GET without its body`,
    );
  }
  if (!toGet && hop.body instanceof Readable) {
    throw new TransportError(
      'redirect_unfollowable',
      'a streamed request body cannot be sent again to a redirect target',
    );
  }
  const leavesOrigin = target.origin !== hop.url.origin;
  const body = hop.body;
  if (
    leavesOrigin &&
    !toGet &&
    body !== undefined &&
    !(body instanceof Readable) &&
    req.bodyCarriesCredentials?.(body)
  ) {
    // Credential headers are dropped on the way to another origin; a credential in the body
    // cannot be, and the request without it would be another request.
    throw new TransportError(
      'redirect_unfollowable',
      `a ${status} answer to ${hop.method} ${hop.url.pathname} points to another origin (${target.origin}); it is not followed, since the request body carries credentials`,
    );
  }
  const headers = withoutHeaders(
    hop.headers,
    (name) =>
      name === 'host' ||
      (leavesOrigin && req.credentialHeaders.has(name)) ||
      (toGet && (name === 'content-type' || name === 'content-length')),
  );
  return { url: target, method: toGet ? 'GET' : hop.method, headers, body: toGet ? undefined : hop.body };
}

/**
 * Sends the request and resolves with the final response once its headers arrive. Rejects with
 * Node's own error (aborted by the signal, refused, reset, TLS …) or a TransportError.
 */
export async function exchange(req: ExchangeRequest): Promise<ExchangeResponse> {
  const headers = hasHeader(req.headers, 'accept-encoding')
    ? { ...req.headers }
    : { ...req.headers, 'accept-encoding': ACCEPT_ENCODING };
  let hop: Hop = { url: new URL(req.url), method: req.method, headers, body: req.body };
  for (let redirects = 0; ; redirects += 1) {
    const res = await sendOnce(req, hop);
    const status = res.statusCode ?? 0;
    const location = res.headers.location;
    if (req.maxRedirects > 0 && REDIRECT_STATUSES.has(status) && location) {
      res.resume();
      if (redirects >= req.maxRedirects) {
        throw new TransportError(
          'too_many_redirects',
          `the redirect limit (maxRedirects: ${req.maxRedirects}) was reached`,
        );
      }
      hop = nextHop(req, hop, status, location);
      continue;
    }
    const { body, decompressed } = decoded(res, hop.method);
    const flat = flatten(res.headers);
    if (decompressed) {
      delete flat['content-encoding'];
      delete flat['content-length'];
    }
    return { status, statusText: res.statusMessage ?? '', headers: flat, body };
  }
}

// ---------------------------------------------------------------------------------------------
// Environment proxies (HTTP_PROXY, HTTPS_PROXY, NO_PROXY)
// ---------------------------------------------------------------------------------------------

type Route =
  | { kind: 'forward'; proxy: URL; agent: http.Agent; authorization?: string }
  | { kind: 'tunnel'; agent: https.Agent };

export interface ProxyRoute {
  routeFor(target: URL): Route | undefined;
  destroy(): void;
}

export interface ProxyEnvironment {
  HTTP_PROXY?: string | undefined;
  HTTPS_PROXY?: string | undefined;
  NO_PROXY?: string | undefined;
}

/** The proxy settings of an environment; lower-case names win, as curl reads them. */
export function proxyEnvironment(env: NodeJS.ProcessEnv = process.env): ProxyEnvironment {
  return {
    HTTP_PROXY: env.http_proxy ?? env.HTTP_PROXY,
    HTTPS_PROXY: env.https_proxy ?? env.HTTPS_PROXY,
    NO_PROXY: env.no_proxy ?? env.NO_PROXY,
  };
}

/**
 * Whether NO_PROXY exempts the target: `*`, or entries that are a host (matching it and its
 * subdomains; a leading `.` or `*.` is allowed) with an optional `:port`.
 */
export function bypassesProxy(target: URL, noProxy: string | undefined): boolean {
  if (!noProxy) return false;
  const host = target.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  const port = target.port || (target.protocol === 'https:' ? '443' : '80');
  return noProxy
    .split(/[\s,]+/)
    .filter(Boolean)
    .some((entry) => {
      if (entry === '*') return true;
      const match = /^(.*?)(?::(\d+))?$/.exec(entry.toLowerCase())!;
      const pattern = match[1]!.replace(/^\*?\./, '').replace(/^\[|\]$/g, '');
      if (match[2] && match[2] !== port) return false;
      return host === pattern || host.endsWith(`.${pattern}`);
    });
}

function parseProxyUrl(value: string, variable: string): URL {
  let url: URL;
  try {
    url = new URL(value.includes('://') ? value : `http://${value}`);
  } catch {
    throw new Error(`${variable} is not a URL`);
  }
  if (url.protocol !== 'http:') {
    throw new Error(`${variable} must be an http:// proxy (got ${url.protocol})`);
  }
  return url;
}

function proxyAuthorization(proxy: URL): string | undefined {
  if (!proxy.username) return undefined;
  const user = decodeURIComponent(proxy.username);
  const pass = decodeURIComponent(proxy.password);
  return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
}

/** The request a tunnel is opened for, carried through the agent's copies of its options. */
const TUNNEL_FOR = Symbol('tunnelFor');
/** On a request whose tunnel is being opened: closes that tunnel. */
const ABANDON_TUNNEL = Symbol('abandonTunnel');

type TunnelOwner = http.ClientRequest & { [ABANDON_TUNNEL]?: () => void };

type AddRequest = (req: http.ClientRequest, options: object) => void;

/**
 * An https agent whose connections are CONNECT tunnels through the proxy; TLS is negotiated
 * with the target inside the tunnel, so the proxy sees neither requests nor credentials. A
 * tunnel still being opened when its request is cancelled (its deadline passed, the instance
 * stopped) is closed: a proxy that never answers the CONNECT keeps no connection per attempt.
 */
class TunnelAgent extends https.Agent {
  readonly #proxy: URL;
  readonly #authorization: string | undefined;

  constructor(proxy: URL, options: https.AgentOptions) {
    super(options);
    this.#proxy = proxy;
    this.#authorization = proxyAuthorization(proxy);
  }

  // Node's Agent hands createConnection a copy of the options, not the request: remember it there.
  addRequest(req: http.ClientRequest, options: object): void {
    const base = (https.Agent.prototype as unknown as { addRequest: AddRequest }).addRequest;
    base.call(this, req, { ...options, [TUNNEL_FOR]: req });
  }

  override createConnection(
    requestOptions: https.RequestOptions,
    done?: (err: Error | null, stream: Duplex) => void,
  ): undefined {
    const options = requestOptions as tls.ConnectionOptions & { host?: string; port?: number };
    const owner = (requestOptions as Record<symbol, unknown>)[TUNNEL_FOR] as TunnelOwner | undefined;
    let opening: { destroy(): unknown } | undefined;
    if (owner) owner[ABANDON_TUNNEL] = () => opening?.destroy();
    const callback = (err: Error | null, socket?: net.Socket) => {
      opening = undefined;
      if (owner) delete owner[ABANDON_TUNNEL];
      done?.(err, socket as unknown as Duplex);
    };
    const target = `${options.host?.includes(':') ? `[${options.host}]` : options.host}:${options.port}`;
    const connect = http.request({
      hostname: this.#proxy.hostname.replace(/^\[|\]$/g, ''),
      port: this.#proxy.port || 80,
      method: 'CONNECT',
      path: target,
      headers: {
        host: target,
        ...(this.#authorization ? { 'proxy-authorization': this.#authorization } : {}),
      },
      agent: false,
    });
    opening = connect;
    connect.once('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        const err = new Error(
          `the proxy refused to open a tunnel to ${target} (${res.statusCode})`,
        ) as Error & {
          code: string;
        };
        err.code = 'EPROXYREFUSED';
        callback(err);
        return;
      }
      const secure = tls.connect({ ...options, socket, servername: options.servername ?? options.host });
      opening = secure;
      secure.once('secureConnect', () => callback(null, secure));
      secure.once('error', (err) => callback(err));
    });
    connect.once('error', (err) => callback(err));
    connect.end();
    return undefined;
  }
}

/**
 * Proxy routing for clients without an SSRF policy (a proxy would connect on a guarded client's
 * behalf and bypass its address checks). Undefined when the environment names no proxy.
 */
export function createProxyRoute(
  env: ProxyEnvironment,
  agentOptions: http.AgentOptions,
): ProxyRoute | undefined {
  const httpProxy = env.HTTP_PROXY ? parseProxyUrl(env.HTTP_PROXY, 'HTTP_PROXY') : undefined;
  const httpsProxy = env.HTTPS_PROXY ? parseProxyUrl(env.HTTPS_PROXY, 'HTTPS_PROXY') : undefined;
  if (!httpProxy && !httpsProxy) return undefined;
  const forwardAgent = httpProxy ? new http.Agent(agentOptions) : undefined;
  const tunnelAgent = httpsProxy ? new TunnelAgent(httpsProxy, agentOptions) : undefined;
  const forwardAuthorization = httpProxy ? proxyAuthorization(httpProxy) : undefined;
  return {
    routeFor(target) {
      if (bypassesProxy(target, env.NO_PROXY)) return undefined;
      if (target.protocol === 'https:')
        return tunnelAgent ? { kind: 'tunnel', agent: tunnelAgent } : undefined;
      if (!httpProxy || !forwardAgent) return undefined;
      return {
        kind: 'forward',
        proxy: httpProxy,
        agent: forwardAgent,
        ...(forwardAuthorization ? { authorization: forwardAuthorization } : {}),
      };
    },
    destroy() {
      forwardAgent?.destroy();
      tunnelAgent?.destroy();
    },
  };
}
