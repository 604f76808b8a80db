/**
 * The ssf-receiver connector end to end: against ssf-bridge's own transmitter running as a
 * separate process (stream creation, verification, push, poll, pause/resume, key rotation), and
 * against a stand-in transmitter in this file that sends SETs a receiver must refuse.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, BridgeProcess } from '../../test/helpers/bridge-process.ts';
import { testHttpClientFactory } from '../../core/plugin-api/testing/index.ts';
import {
  PermanentError,
  RetryableError,
  type EventDraft,
  type HttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
} from '../../core/plugin-api/index.ts';
import { ssfReceiver } from './index.ts';
import {
  count,
  eventually,
  readBody,
  receiverHarness,
  recordingLogger,
  serveIngest,
  type Harness,
} from './test-support.ts';
import { decodeUnverified, mapSet, relayedVia } from './mapping.ts';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
const BRIDGE_ISSUER = 'http://receiving-bridge.test';

// ---------------------------------------------------------------------------------------------
// A connector context for driving the connector in-process: ctx.http is a fetch-based client
// that classifies errors like the core's, ctx.emit records the events.

function fetchClient(options: HttpClientOptions, stop: AbortSignal): HttpClient {
  let oauthToken: string | undefined;
  async function authorization(): Promise<string | undefined> {
    const auth = options.auth;
    if (!auth) return undefined;
    if (auth.type === 'bearer') return `Bearer ${auth.token.reveal()}`;
    if (auth.type !== 'oauth2_client_credentials') throw new Error(`auth ${auth.type} is not used here`);
    if (!oauthToken) {
      const response = await fetch(auth.tokenUrl, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          authorization: `Basic ${Buffer.from(`${auth.clientId}:${auth.clientSecret.reveal()}`).toString('base64')}`,
        },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          ...(auth.scope ? { scope: auth.scope } : {}),
        }),
      });
      oauthToken = ((await response.json()) as { access_token: string }).access_token;
    }
    return `Bearer ${oauthToken}`;
  }
  async function request<T>(
    req: HttpRequest,
  ): Promise<{ status: number; headers: Record<string, string>; data: T }> {
    const url = new URL(req.url, options.baseURL);
    for (const [k, v] of Object.entries(req.params ?? {}))
      if (v !== undefined) url.searchParams.set(k, String(v));
    const headers: Record<string, string> = { ...options.headers, ...req.headers };
    const auth = await authorization();
    if (auth) headers.authorization = auth;
    let body: string | undefined;
    if (req.body !== undefined) {
      body = typeof req.body === 'string' ? req.body : JSON.stringify(req.body);
      headers['content-type'] ??= 'application/json';
    }
    const signals = [stop, AbortSignal.timeout(req.timeoutMs ?? options.timeoutMs ?? 30_000)];
    if (req.signal) signals.push(req.signal);
    let response: Response;
    try {
      response = await fetch(url, {
        method: req.method ?? 'GET',
        headers,
        body,
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      throw new RetryableError(`${url.href}: ${(err as Error).message}`, { code: 'TEST_NETWORK' });
    }
    const text = await response.text();
    let data: unknown;
    try {
      data = text ? JSON.parse(text) : undefined;
    } catch {
      data = text;
    }
    if (!response.ok && !req.acceptStatuses?.includes(response.status)) {
      const message = `HTTP ${response.status} from ${url.href}: ${text}`;
      if (response.status >= 500 || response.status === 429)
        throw new RetryableError(message, { code: 'TEST_HTTP' });
      throw new PermanentError(message, { code: 'TEST_HTTP' });
    }
    return { status: response.status, headers: Object.fromEntries(response.headers), data: data as T };
  }
  return {
    request,
    get: (url, req) => request({ ...req, url, method: 'GET' }),
    post: (url, body, req) => request({ ...req, url, body, method: 'POST' }),
  };
}

/** `checkpoints` stands for the store: two harnesses given the same map are two bridge instances on one database. */
function harness(
  instanceId: string,
  checkpoints = new Map<string, unknown>(),
  { leader = true }: { leader?: boolean } = {},
): Harness {
  return receiverHarness(instanceId, {
    checkpoints,
    leader,
    http: (signal) => ({ create: (options = {}) => fetchClient(options, signal) }),
  });
}

async function listen(server: Server, port = 0): Promise<number> {
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

/** Serves a push connector at `/ingest/<id>` the way the bridge's server does. */
async function freePort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((r) => server.close(r));
  return port;
}

// ---------------------------------------------------------------------------------------------
// Against ssf-bridge's own transmitter, a separate process.

const PUSH_CLIENT = { id: 'relay-push', token: 'relay-push-management-token-7f3a' };
const POLL_CLIENT = { id: 'relay-poll', token: 'relay-poll-management-token-91c2' };
const INGEST_TOKEN = 'transmitter-ingest-token-5d1e';
const ADMIN_TOKEN = 'transmitter-admin-token-0123456789abcdef0123456789';
const PUSH_AUTH = 'Bearer push-authorization-from-the-receiver-3b7c';

describe('against ssf-bridge’s transmitter in another process', () => {
  let dir: string;
  let port: number;
  let issuer: string;
  let origin: string;
  let transmitter: BridgeProcess;
  let ingest: { url: string; server: Server };
  const connectors = new Map<string, InboundConnector>();
  const push = harness('upstream-push');
  const poll = harness('upstream-poll');
  let pushConnector: InboundConnector;
  let pollConnector: InboundConnector;

  function startTransmitter(): BridgeProcess {
    const proc = new BridgeProcess(['run', '--config', join(dir, 'bridge.yaml')], { cwd: dir });
    return proc;
  }

  async function send(email: string, id: string): Promise<void> {
    const response = await fetch(`${origin}/ingest/hr`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'caep.session-revoked',
        subject: { format: 'email', email },
        claims: { reason_admin: { en: `test ${id}` } },
        id,
      }),
    });
    expect(response.status).toBe(202);
  }

  const emails = (h: Harness) => h.emitted.map((e) => (e.subject as { email?: string }).email);

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-receiver-e2e-'));
    port = await freePort();
    origin = `http://127.0.0.1:${port}`;
    issuer = origin;
    writeFileSync(
      join(dir, 'bridge.yaml'),
      [
        `issuer: ${issuer}`,
        'server:',
        '  host: 127.0.0.1',
        `  port: ${port}`,
        '  shutdown_timeout: 3s',
        `data_dir: ${join(dir, 'data')}`,
        'inbound:',
        '  - id: hr',
        '    connector: events-api',
        `    config: {token: ${INGEST_TOKEN}}`,
        'outbound:',
        '  - id: out',
        '    connector: log',
        '    config: {audience: urn:test:log, format: compact}',
        'admin:',
        '  tokens:',
        `    - {name: test, role: write, token: ${ADMIN_TOKEN}}`,
        'transmitter:',
        '  receivers:',
        `    - {client_id: ${PUSH_CLIENT.id}, token: ${PUSH_CLIENT.token}}`,
        `    - {client_id: ${POLL_CLIENT.id}, token: ${POLL_CLIENT.token}}`,
        '  streams: {min_verification_interval: 0s}',
        '  poll: {long_poll_max_wait: 2s}',
        '  push: {invalid_key_retry_after: 1s}',
        '  ssrf:',
        "    allow_http_hosts: ['127.0.0.1']",
        "    allow_cidrs: ['127.0.0.0/8']",
        'routes:',
        '  - id: everything',
        "    from: '*'",
        '    to: [out]',
        '    streams: true',
      ].join('\n'),
    );
    transmitter = startTransmitter();
    await transmitter.url();
    ingest = await serveIngest(connectors);

    const common = {
      issuer,
      bridge_issuer: BRIDGE_ISSUER,
      // The transmitter runs on loopback over plain http: an explicit opt-in.
      ssrf: { allow_http_hosts: ['127.0.0.1'] },
      jwks_refresh_cooldown: '200ms',
      request_timeout: '5s',
    };
    pushConnector = ssfReceiver.create(
      push.ctx,
      ssfReceiver.configSchema.parse({
        ...common,
        auth: { type: 'bearer', token: PUSH_CLIENT.token },
        delivery: {
          method: 'push',
          endpoint_url: `${ingest.url}/ingest/upstream-push`,
          authorization_header: PUSH_AUTH,
        },
        events_requested: [SESSION_REVOKED],
      }),
    );
    connectors.set('upstream-push', pushConnector);
    pollConnector = ssfReceiver.create(
      poll.ctx,
      ssfReceiver.configSchema.parse({
        ...common,
        auth: { type: 'bearer', token: POLL_CLIENT.token },
        delivery: { method: 'poll', timeout: '10s', error_backoff: '100ms' },
      }),
    );
    await pushConnector.start(push.ctx.signal);
    await pollConnector.start(poll.ctx.signal);
    await eventually(() => push.statuses.length > 0 && poll.statuses.length > 0, 'both streams set up');
  }, 30_000);

  afterAll(async () => {
    await pushConnector?.stop(1000);
    await pollConnector?.stop(1000);
    push.abort.abort();
    poll.abort.abort();
    ingest?.server.close();
    ingest?.server.closeAllConnections();
    // The restarted transmitter does not always finish draining after SIGTERM; the test does
    // not depend on its shutdown, so it is killed after a bounded wait.
    transmitter?.kill('SIGTERM');
    const timer = setTimeout(() => transmitter.kill('SIGKILL'), 5000);
    await transmitter?.exited;
    clearTimeout(timer);
    rmSync(dir, { recursive: true, force: true });
  });

  it('discovers the transmitter, creates streams and verifies them', async () => {
    await eventually(
      () => count(push, 'ssf_receiver_verifications_total', { outcome: 'matched' }) === 1,
      'push verification',
    );
    await eventually(
      () => count(poll, 'ssf_receiver_verifications_total', { outcome: 'matched' }) === 1,
      'poll verification',
    );
    expect(push.statuses.some((s) => s.state === 'ok')).toBe(true);
    const streams = await fetch(`${issuer}/ssf/streams`, {
      headers: { authorization: `Bearer ${PUSH_CLIENT.token}` },
    });
    const listed = (await streams.json()) as Array<{ delivery: { method: string; endpoint_url: string } }>;
    const list = Array.isArray(listed) ? listed : [listed];
    expect(list[0]?.delivery).toMatchObject({
      method: 'urn:ietf:rfc:8935',
      endpoint_url: `${ingest.url}/ingest/upstream-push`,
    });
    expect(push.emitted).toEqual([]);
  });

  it('re-emits pushed and polled events with the upstream jti and issuer as provenance', async () => {
    await send('alice@example.com', 'e2e-1');
    await eventually(() => push.emitted.length === 1 && poll.emitted.length === 1, 'both receivers');
    for (const h of [push, poll]) {
      const event = h.emitted[0] as EventDraft;
      expect(event.type).toBe(SESSION_REVOKED);
      expect(event.subject).toEqual({ format: 'email', email: 'alice@example.com' });
      expect(event.claims).toMatchObject({ reason_admin: { en: 'test e2e-1' } });
      expect(event.sourceRecordId).toMatch(/\S/);
      expect(event.txn).toContain(`iss=${encodeURIComponent(issuer)}`);
      expect(event.txn).toContain(`jti=${encodeURIComponent(event.sourceRecordId)}`);
      expect(relayedVia(event.txn)).toEqual([BRIDGE_ISSUER]);
    }
    // One upstream SET per stream: the jtis differ, so the two relays stay apart.
    expect(push.emitted[0]?.sourceRecordId).not.toBe(poll.emitted[0]?.sourceRecordId);
    // The poll client acknowledged it: after the next long poll nothing comes back again.
    await send('bob@example.com', 'e2e-2');
    await eventually(() => poll.emitted.length === 2 && push.emitted.length === 2, 'second event');
    await new Promise((r) => setTimeout(r, 2500));
    expect(emails(poll)).toEqual(['alice@example.com', 'bob@example.com']);
  });

  it('reports a pause and a resume announced by the transmitter in the instance status', async () => {
    const streams = (await (
      await fetch(`${issuer}/ssf/streams`, { headers: { authorization: `Bearer ${PUSH_CLIENT.token}` } })
    ).json()) as Array<{ stream_id: string }> | { stream_id: string };
    const streamId = (Array.isArray(streams) ? streams[0] : streams)?.stream_id as string;
    const setStatus = async (status: string) => {
      const response = await fetch(`${origin}/admin/streams/${encodeURIComponent(streamId)}/status`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ status, reason: 'maintenance window' }),
      });
      expect(response.status).toBeLessThan(300);
    };
    await setStatus('paused');
    const paused = await eventually(
      () => push.statuses.find((s) => s.state === 'recoverable_error' && s.reason?.includes('paused')),
      'paused status',
    );
    expect(paused.reason).toContain('maintenance window');
    expect(push.counters.get('ssf_receiver_stream_paused')).toBe(1);
    await send('carol@example.com', 'e2e-3');
    await new Promise((r) => setTimeout(r, 500));
    expect(emails(push)).not.toContain('carol@example.com');
    await setStatus('enabled');
    await eventually(() => emails(push).includes('carol@example.com'), 'held event after resume');
    // The resume notice and the held event travel side by side (different subjects), in either order.
    await eventually(() => push.statuses.at(-1)?.state === 'ok', 'ok status after the resume notice');
    expect(push.counters.get('ssf_receiver_stream_paused')).toBe(0);
  });

  it('keeps verifying after the transmitter rotates its signing key', async () => {
    const before = await (await fetch(`${issuer}/jwks.json`)).json();
    transmitter.kill('SIGTERM');
    await transmitter.exited;
    // Signing with the new key at once, so the SETs below are the new key's.
    await promisify(execFile)(
      process.execPath,
      [BIN, 'keys', 'rotate', '--data-dir', join(dir, 'data'), '--activation-delay', '0s'],
      { cwd: dir },
    );
    transmitter = startTransmitter();
    await transmitter.url();
    const after = (await (await fetch(`${issuer}/jwks.json`)).json()) as { keys: JWK[] };
    expect(after.keys.length).toBeGreaterThan((before as { keys: JWK[] }).keys.length);
    await send('dave@example.com', 'e2e-4');
    await eventually(() => emails(push).includes('dave@example.com'), 'push after rotation', 20_000);
    await eventually(() => emails(poll).includes('dave@example.com'), 'poll after rotation', 20_000);
  }, 40_000);
});

// ---------------------------------------------------------------------------------------------
// A stand-in transmitter: its metadata under an issuer with a path, its own keys, and SETs
// signed here, good and bad.

const STANDIN_AUD = 'urn:receiver:standin';
const STANDIN_STREAM = 'standin-stream-1';
const MANAGEMENT_TOKEN = 'standin-management-token-4e2a';
const OAUTH_CLIENT = 'bridge-client';
const OAUTH_SECRET = 'standin-oauth-client-secret-6c0d';
const OAUTH_ACCESS_TOKEN = 'standin-oauth-access-token-a81f';

interface StandIn {
  origin: string;
  issuer: string;
  server: Server;
  jwks: { keys: JWK[] };
  verifyStates: string[];
  managementAuth: Array<string | undefined>;
  pollBodies: Array<Record<string, unknown>>;
  pollHeaders: IncomingMessage['headers'][];
  pollQueue: Array<Record<string, string>>;
  tokenScopes: string[];
  /** The `iss` of the streams it answers with (its own issuer unless set). */
  streamIss?: string;
  /** Every management request, as `METHOD path`. */
  calls: string[];
}

async function startStandIn(): Promise<StandIn> {
  const state: StandIn = {
    origin: '',
    issuer: '',
    server: createServer(),
    jwks: { keys: [] },
    verifyStates: [],
    managementAuth: [],
    pollBodies: [],
    pollHeaders: [],
    pollQueue: [],
    tokenScopes: [],
    calls: [],
  };
  state.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = (await readBody(req)).toString('utf8');
      const url = new URL(req.url ?? '/', state.origin);
      const json = (status: number, value?: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(value === undefined ? '' : JSON.stringify(value));
      };
      const base = '/tenants/acme';
      if (url.pathname === `/.well-known/ssf-configuration${base}`) {
        return json(200, {
          spec_version: '1_0',
          issuer: state.issuer,
          jwks_uri: `${state.issuer}/jwks.json`,
          delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
          configuration_endpoint: `${state.issuer}/streams`,
          status_endpoint: `${state.issuer}/status`,
          verification_endpoint: `${state.issuer}/verify`,
        });
      }
      if (url.pathname === '/.well-known/ssf-configuration/tenants/other') {
        return json(200, {
          issuer: state.issuer,
          jwks_uri: `${state.issuer}/jwks.json`,
          configuration_endpoint: 'x',
        });
      }
      if (url.pathname === `${base}/jwks.json`) return json(200, state.jwks);
      if (url.pathname === '/oauth/token') {
        const basic = `Basic ${Buffer.from(`${OAUTH_CLIENT}:${OAUTH_SECRET}`).toString('base64')}`;
        const form = new URLSearchParams(body);
        if (req.headers.authorization !== basic || form.get('grant_type') !== 'client_credentials') {
          return json(401, { error: 'invalid_client' });
        }
        state.tokenScopes.push(form.get('scope') ?? '');
        return json(200, { access_token: OAUTH_ACCESS_TOKEN, token_type: 'Bearer', expires_in: 300 });
      }
      state.managementAuth.push(req.headers.authorization);
      state.calls.push(`${req.method} ${url.pathname}`);
      const accepted = [`Bearer ${MANAGEMENT_TOKEN}`, `Bearer ${OAUTH_ACCESS_TOKEN}`];
      if (!accepted.includes(req.headers.authorization ?? '')) return json(401, { err: 'unauthorized' });
      if (url.pathname === `${base}/streams` && req.method === 'POST') {
        const requested = JSON.parse(body) as { delivery: { method: string } };
        return json(201, {
          stream_id: STANDIN_STREAM,
          iss: state.streamIss ?? state.issuer,
          aud: STANDIN_AUD,
          delivery:
            requested.delivery.method === 'urn:ietf:rfc:8936'
              ? { method: 'urn:ietf:rfc:8936', endpoint_url: `${state.issuer}/poll` }
              : requested.delivery,
          events_supported: [SESSION_REVOKED],
          events_delivered: [SESSION_REVOKED],
        });
      }
      if (url.pathname === `${base}/status`) return json(200, { status: 'enabled' });
      if (url.pathname === `${base}/verify`) {
        state.verifyStates.push((JSON.parse(body) as { state: string }).state);
        return json(204);
      }
      if (url.pathname === `${base}/poll`) {
        state.pollBodies.push(JSON.parse(body) as Record<string, unknown>);
        state.pollHeaders.push(req.headers);
        const sets = state.pollQueue.shift();
        if (!sets) await new Promise((r) => setTimeout(r, 100));
        return json(200, { sets: sets ?? {}, moreAvailable: false });
      }
      return json(404, { err: 'not found' });
    })();
  });
  const port = await listen(state.server);
  state.origin = `http://127.0.0.1:${port}`;
  state.issuer = `${state.origin}/tenants/acme`;
  return state;
}

async function signingKey(kid: string): Promise<{ kid: string; privateKey: CryptoKey; jwk: JWK }> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' } };
}

let jtiCounter = 0;
function claims(issuer: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  jtiCounter += 1;
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: issuer,
    aud: STANDIN_AUD,
    iat: now,
    jti: `standin-jti-${jtiCounter}-${Date.now()}`,
    sub_id: { format: 'email', email: `user${jtiCounter}@example.com` },
    events: { [SESSION_REVOKED]: { event_timestamp: now } },
    ...overrides,
  };
}

async function sign(
  payload: Record<string, unknown>,
  key: { kid: string; privateKey: CryptoKey },
): Promise<string> {
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' })
    .sign(key.privateKey);
}

function unsigned(payload: Record<string, unknown>): string {
  const part = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'secevent+jwt' })}.${part(payload)}.`;
}

function pushRequest(token: string, headers: Record<string, string> = {}): InboundRequest {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/secevent+jwt', authorization: PUSH_AUTH, ...headers },
    query: {},
    rawBody: Buffer.from(token),
    body: undefined,
    remoteAddress: '127.0.0.1',
  };
}

describe('against a stand-in transmitter', () => {
  let standIn: StandIn;
  let k1: Awaited<ReturnType<typeof signingKey>>;
  let k2: Awaited<ReturnType<typeof signingKey>>;
  let forged: Awaited<ReturnType<typeof signingKey>>;
  const h = harness('standin-push');
  let connector: InboundConnector;

  const base = () => ({
    issuer: standIn.issuer,
    bridge_issuer: BRIDGE_ISSUER,
    ssrf: { allow_http_hosts: ['127.0.0.1'] },
    auth: { type: 'bearer', token: MANAGEMENT_TOKEN },
    jwks_refresh_cooldown: '50ms',
  });

  beforeAll(async () => {
    standIn = await startStandIn();
    k1 = await signingKey('k1');
    k2 = await signingKey('k2');
    forged = await signingKey('k1');
    standIn.jwks = { keys: [k1.jwk] };
    connector = ssfReceiver.create(
      h.ctx,
      ssfReceiver.configSchema.parse({
        ...base(),
        delivery: {
          method: 'push',
          endpoint_url: 'http://127.0.0.1:1/ingest/standin-push',
          authorization_header: PUSH_AUTH,
        },
      }),
    );
    await connector.start(h.ctx.signal);
    await eventually(() => h.statuses.length > 0, 'setup');
    // Verification is asked for once start() has returned.
    await eventually(() => standIn.verifyStates.length > 0, 'the verification request');
  });

  afterAll(async () => {
    await connector?.stop(500);
    h.abort.abort();
    standIn?.server.close();
    standIn?.server.closeAllConnections();
  });

  it('reads the metadata under the inserted well-known path and uses the management token', async () => {
    expect(h.statuses[0]?.state).toBe('ok');
    expect(standIn.verifyStates).toHaveLength(1);
    expect(standIn.managementAuth.every((a) => a === `Bearer ${MANAGEMENT_TOKEN}`)).toBe(true);
  });

  /** The auth config of a client registered with the stand-in's token endpoint. */
  const standInOauth = (extra: Record<string, unknown>) => ({
    type: 'oauth2_client_credentials',
    token_url: `${standIn.origin}/oauth/token`,
    client_id: OAUTH_CLIENT,
    client_secret: OAUTH_SECRET,
    ...extra,
  });

  it('calls the management API with OAuth 2.0 client credentials', async () => {
    const o = harness('standin-oauth');
    const seen = standIn.managementAuth.length;
    const instance = ssfReceiver.create(
      o.ctx,
      ssfReceiver.configSchema.parse({
        ...base(),
        auth: standInOauth({ scope: 'ssf.read ssf.manage' }),
        delivery: {
          method: 'push',
          endpoint_url: 'http://127.0.0.1:1/ingest/standin-oauth',
          authorization_header: PUSH_AUTH,
        },
      }),
    );
    const verifications = standIn.verifyStates.length;
    await instance.start(o.ctx.signal);
    await eventually(() => o.statuses.length > 0, 'setup');
    await eventually(() => standIn.verifyStates.length > verifications, 'the verification request');
    expect(o.statuses[0]?.state).toBe('ok');
    expect(standIn.tokenScopes).toContain('ssf.read ssf.manage');
    const calls = standIn.managementAuth.slice(seen);
    expect(calls.length).toBeGreaterThanOrEqual(3);
    expect(calls.every((a) => a === `Bearer ${OAUTH_ACCESS_TOKEN}`)).toBe(true);
    await instance.stop(200);
    o.abort.abort();
  });

  it('hands oauth dpop to its HTTP client (the client binds the token; core/http/dpop.test.ts)', async () => {
    const o = harness('standin-dpop');
    const created: HttpClientOptions[] = [];
    const create = o.ctx.http.create;
    o.ctx.http.create = (options = {}) => (created.push(options), create(options));
    const instance = ssfReceiver.create(
      o.ctx,
      ssfReceiver.configSchema.parse({
        ...base(),
        auth: standInOauth({ dpop: true }),
        delivery: { method: 'poll' },
      }),
    );
    expect(created.map((c) => c.auth)).toContainEqual(
      expect.objectContaining({ type: 'oauth2_client_credentials', dpop: true }),
    );
    await instance.stop(200);
    o.abort.abort();
  });

  it('refuses a transmitter whose metadata names another issuer', async () => {
    const other = harness('standin-other');
    const instance = ssfReceiver.create(
      other.ctx,
      ssfReceiver.configSchema.parse({
        ...base(),
        issuer: `${standIn.origin}/tenants/other`,
        delivery: { method: 'poll' },
      }),
    );
    await instance.start(other.ctx.signal);
    const failed = await eventually(
      () => other.statuses.find((s) => s.state === 'permanent_error'),
      'refusal',
    );
    expect(failed.reason).toContain(`names issuer "${standIn.issuer}"`);
    await instance.stop(200);
    other.abort.abort();
  });

  it('refuses bad SETs with the RFC 8935 error and emits nothing', async () => {
    const push = (token: string, headers?: Record<string, string>) =>
      (connector.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
        pushRequest(token, headers),
      );
    const good = await sign(claims(standIn.issuer), k1);
    const cases: Array<[string, string, number, string]> = [
      ['wrong issuer', await sign(claims('https://impostor.example'), k1), 400, 'invalid_issuer'],
      [
        'wrong audience',
        await sign(claims(standIn.issuer, { aud: 'urn:someone-else' }), k1),
        400,
        'invalid_audience',
      ],
      ['bad signature', await sign(claims(standIn.issuer), forged), 400, 'invalid_key'],
      ['alg none', unsigned(claims(standIn.issuer)), 400, 'authentication_failed'],
      ['sub claim', await sign(claims(standIn.issuer, { sub: 'legacy' }), k1), 400, 'invalid_request'],
      ['exp claim', await sign(claims(standIn.issuer, { exp: 9999999999 }), k1), 400, 'invalid_request'],
      [
        'too old',
        await sign(claims(standIn.issuer, { iat: Math.floor(Date.now() / 1000) - 3 * 86_400 }), k1),
        400,
        'invalid_request',
      ],
      [
        'wrong verification state',
        await sign(
          claims(standIn.issuer, {
            sub_id: { format: 'opaque', id: STANDIN_STREAM },
            events: { [VERIFICATION]: { state: 'a-state-nobody-asked-for' } },
          }),
          k1,
        ),
        400,
        'invalid_state',
      ],
    ];
    for (const [name, token, status, err] of cases) {
      const answer = await push(token);
      expect({ name, status: answer.status, err: (answer.body as { err?: string }).err }).toEqual({
        name,
        status,
        err,
      });
      expect((answer.body as { description?: string }).description).toMatch(/\S/);
      // RFC 8935 §2.3 (PUSH-08): the description's language is named.
      expect(answer.headers?.['content-language'], name).toBe('en');
    }
    expect(await push(good, { authorization: '' })).toMatchObject({
      status: 401,
      body: { err: 'authentication_failed' },
    });
    expect(await push(good, { authorization: 'Bearer wrong' })).toMatchObject({
      status: 403,
      body: { err: 'access_denied' },
    });
    expect(await push(good, { 'content-type': 'application/json' })).toMatchObject({
      status: 400,
      body: { err: 'invalid_request' },
    });
    expect(h.emitted).toEqual([]);

    // RFC 8935 §2.2 (PUSH-07): a good SET delivered again is answered like the first time (202),
    // and emitted once.
    expect((await push(good)).status).toBe(202);
    expect(h.emitted).toHaveLength(1);
    const again = await push(good);
    expect(again.status).toBe(202);
    expect(again.body).toBeUndefined();
    expect(h.emitted).toHaveLength(1);
    expect(count(h, 'ssf_receiver_sets_total', { outcome: 'ignored' })).toBe(1);
    expect(count(h, 'ssf_receiver_sets_total', { outcome: 'refused' })).toBe(cases.length + 1);
  });

  it('RFC 9110 §15.5.2 / RFC 6750 §3 (PUSH-09): a push without Authorization gets 401 with a WWW-Authenticate challenge naming the scheme', async () => {
    const push = connector.handleWebhook as NonNullable<InboundConnector['handleWebhook']>;
    const answer = await push(pushRequest(await sign(claims(standIn.issuer), k1), { authorization: '' }));
    expect(answer.status).toBe(401);
    expect(answer.headers?.['www-authenticate']).toBe('Bearer realm="standin-push"');
    expect(answer.body).toMatchObject({ err: 'authentication_failed' });
  });

  it('matches the verification state it asked for', async () => {
    const token = await sign(
      claims(standIn.issuer, {
        sub_id: { format: 'opaque', id: STANDIN_STREAM },
        events: { [VERIFICATION]: { state: standIn.verifyStates[0] } },
      }),
      k1,
    );
    const answer = await (connector.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
      pushRequest(token),
    );
    expect(answer.status).toBe(202);
    expect(count(h, 'ssf_receiver_verifications_total', { outcome: 'matched' })).toBe(1);
  });

  it('SSF 1.0 §8.1.4.1 (scaling): a verification SET pushed to another bridge instance on the same store matches the state this one asked for', async () => {
    const store = new Map<string, unknown>();
    const [first, second] = [harness('shared', store), harness('shared', store)];
    const config = (verify: boolean) =>
      ssfReceiver.configSchema.parse({
        ...base(),
        verify_on_start: verify,
        delivery: {
          method: 'push',
          endpoint_url: 'http://127.0.0.1:1/ingest/shared',
          authorization_header: PUSH_AUTH,
        },
      });
    const asking = ssfReceiver.create(first.ctx, config(true));
    const other = ssfReceiver.create(second.ctx, config(false));
    try {
      const before = standIn.verifyStates.length;
      await asking.start(first.ctx.signal);
      await other.start(second.ctx.signal);
      await eventually(() => standIn.verifyStates.length > before, 'the verification request');
      const token = await sign(
        claims(standIn.issuer, {
          sub_id: { format: 'opaque', id: STANDIN_STREAM },
          events: { [VERIFICATION]: { state: standIn.verifyStates.at(-1) } },
        }),
        k1,
      );
      const answer = await (other.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
        pushRequest(token),
      );
      expect(answer.status).toBe(202);
      expect(count(second, 'ssf_receiver_verifications_total', { outcome: 'matched' })).toBe(1);
      // A state nobody asked for is still refused.
      const forgedState = await sign(
        claims(standIn.issuer, {
          sub_id: { format: 'opaque', id: STANDIN_STREAM },
          events: { [VERIFICATION]: { state: 'never-asked' } },
        }),
        k1,
      );
      const refused = await (other.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
        pushRequest(forgedState),
      );
      expect(refused).toMatchObject({ status: 400, body: { err: 'invalid_state' } });
    } finally {
      await asking.stop(200);
      await other.stop(200);
      first.abort.abort();
      second.abort.abort();
    }
  });

  it('keeps the verification states asked for within a day only: each start drops the older ones', async () => {
    const store = new Map<string, unknown>([
      ['verification-states', { 'asked-long-ago': '2020-01-01T00:00:00.000Z' }],
    ]);
    const h = harness('states', store);
    const config = ssfReceiver.configSchema.parse({
      ...base(),
      verify_on_start: true,
      delivery: {
        method: 'push',
        endpoint_url: 'http://127.0.0.1:1/ingest/states',
        authorization_header: PUSH_AUTH,
      },
    });
    const receivers = [ssfReceiver.create(h.ctx, config), ssfReceiver.create(h.ctx, config)];
    try {
      for (const r of receivers) await r.start(h.ctx.signal);
      const states = Object.keys(store.get('verification-states') as Record<string, string>);
      expect(states).toHaveLength(2);
      expect(states).not.toContain('asked-long-ago');
      expect([...store.keys()].filter((k) => k.startsWith('verification-state'))).toEqual([
        'verification-states',
      ]);
    } finally {
      for (const r of receivers) await r.stop(200);
      h.abort.abort();
    }
  });

  it('docs/scaling.md (leader election): of several bridge instances on one store, only the scheduler’s leader polls', async () => {
    const store = new Map<string, unknown>();
    const [follower, leader] = [
      harness('shared-poll', store, { leader: false }),
      harness('shared-poll', store, { leader: true }),
    ];
    const config = ssfReceiver.configSchema.parse({
      ...base(),
      verify_on_start: false,
      delivery: { method: 'poll', error_backoff: '50ms' },
    });
    const first = ssfReceiver.create(follower.ctx, config);
    const second = ssfReceiver.create(leader.ctx, config);
    try {
      const before = standIn.pollBodies.length;
      await first.start(follower.ctx.signal);
      await eventually(() => follower.statuses.length > 0, 'setup');
      await new Promise((r) => setTimeout(r, 300));
      expect(standIn.pollBodies.length).toBe(before);
      await second.start(leader.ctx.signal);
      await eventually(() => standIn.pollBodies.length > before, 'a poll by the leader');
    } finally {
      await first.stop(200);
      await second.stop(200);
      follower.abort.abort();
      leader.abort.abort();
    }
  });

  it('RFC 8936 §2.3: a poll response whose "sets" is an array, not an object of jti → SET, is refused, never acknowledged by index', async () => {
    const p = harness('standin-sets-array');
    const receiver = ssfReceiver.create(
      p.ctx,
      ssfReceiver.configSchema.parse({
        ...base(),
        verify_on_start: false,
        delivery: { method: 'poll', error_backoff: '50ms' },
      }),
    );
    try {
      const before = standIn.pollBodies.length;
      standIn.pollQueue.push([await sign(claims(standIn.issuer), k1)] as unknown as Record<string, string>);
      await receiver.start(p.ctx.signal);
      const failed = await eventually(
        () => p.statuses.find((s) => s.state === 'recoverable_error'),
        'the refusal in the instance status',
      );
      expect(failed.reason).toMatch(/has no "sets" object/);
      await eventually(() => standIn.pollBodies.length > before + 1, 'the poll after the refusal');
      expect(p.emitted).toEqual([]);
      expect(standIn.pollBodies.slice(before).some((b) => b.ack !== undefined)).toBe(false);
    } finally {
      await receiver.stop(200);
      p.abort.abort();
    }
  });

  it('fetches the JWKS again when a SET names a new key', async () => {
    standIn.jwks = { keys: [k1.jwk, k2.jwk] };
    await new Promise((r) => setTimeout(r, 100));
    const before = h.emitted.length;
    const answer = await (connector.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
      pushRequest(await sign(claims(standIn.issuer), k2)),
    );
    expect(answer.status).toBe(202);
    expect(h.emitted).toHaveLength(before + 1);
  });

  it('RFC 8935 §2.3 / checklist SET-08: the first unknown kid fetches the JWKS again at once; another one within jwks_refresh_cooldown of that fetch is answered retryable (503 + Retry-After), not 400 invalid_key', async () => {
    const h2 = harness('standin-cooldown');
    const other = ssfReceiver.create(
      h2.ctx,
      ssfReceiver.configSchema.parse({
        ...base(),
        jwks_refresh_cooldown: '30s',
        delivery: {
          method: 'push',
          endpoint_url: 'http://127.0.0.1:1/ingest/standin-cooldown',
          authorization_header: PUSH_AUTH,
        },
      }),
    );
    await other.start(h2.ctx.signal);
    try {
      const push = other.handleWebhook as NonNullable<InboundConnector['handleWebhook']>;
      expect((await push(pushRequest(await sign(claims(standIn.issuer), k1)))).status).toBe(202);
      // A key published since the JWKS was fetched for the first SET: fetched again, verified.
      const k3 = await signingKey('k3');
      standIn.jwks = { keys: [k1.jwk, k2.jwk, k3.jwk] };
      expect((await push(pushRequest(await sign(claims(standIn.issuer), k3)))).status).toBe(202);
      // Another one within the cooldown of that fetch: the transmitter is asked to come back later.
      const k4 = await signingKey('k4');
      standIn.jwks = { keys: [k1.jwk, k2.jwk, k3.jwk, k4.jwk] };
      const answer = await push(pushRequest(await sign(claims(standIn.issuer), k4))).catch(
        (err: unknown) => err,
      );
      // Thrown retryable: the server answers 503 with Retry-After (core/http/server.ts replyWithError).
      expect(answer).toBeInstanceOf(RetryableError);
      const retryAfterMs = (answer as RetryableError).retryAfterMs ?? 0;
      expect(retryAfterMs).toBeGreaterThan(25_000);
      expect(retryAfterMs).toBeLessThanOrEqual(30_000);
    } finally {
      await other.stop(200);
      h2.abort.abort();
    }
  });

  it('never emits again what this bridge issued or relayed before (echo suppression)', async () => {
    const before = h.emitted.length;
    const ignoredBefore = count(h, 'ssf_receiver_sets_total', { outcome: 'ignored' });
    const relayed = `ssf-relay;via=${encodeURIComponent(BRIDGE_ISSUER)};iss=${encodeURIComponent('https://idp.example')};jti=x1`;
    const answer = await (connector.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
      pushRequest(await sign(claims(standIn.issuer, { txn: relayed }), k1)),
    );
    expect(answer.status).toBe(202);
    expect(h.emitted).toHaveLength(before);
    // Issued by this bridge, relayed by another one, and received back.
    const returned = `ssf-relay;via=${encodeURIComponent('https://other-bridge.example')};iss=${encodeURIComponent(BRIDGE_ISSUER)};jti=x2`;
    const back = await (connector.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
      pushRequest(await sign(claims(standIn.issuer, { txn: returned }), k1)),
    );
    expect(back.status).toBe(202);
    expect(h.emitted).toHaveLength(before);
    expect(count(h, 'ssf_receiver_sets_total', { outcome: 'ignored' })).toBe(ignoredBefore + 2);
    // An instance pointed at this bridge's own transmitter: everything it would receive is an echo.
    const result = ssfReceiver.map?.(await sign(claims(BRIDGE_ISSUER), k1), {
      issuer: BRIDGE_ISSUER,
      bridge_issuer: BRIDGE_ISSUER,
    } as never);
    expect(result).toMatchObject({ events: [], ignored: expect.stringContaining('issued by this bridge') });
  });

  it('RFC 8417 §2.2 (checklist §1.1): an events member named by a short name is an unknown event type: accepted, not relayed, not taken as a stream control event', async () => {
    const before = h.emitted.length;
    const ignoredBefore = count(h, 'ssf_receiver_sets_total', { outcome: 'ignored' });
    const now = Math.floor(Date.now() / 1000);
    for (const events of [
      { 'caep.session-revoked': { event_timestamp: now } },
      { 'ssf.verification': { state: 'a-state-nobody-asked-for' } },
      { 'ssf.stream-updated': { status: 'paused' } },
    ]) {
      const answer = await (connector.handleWebhook as NonNullable<InboundConnector['handleWebhook']>)(
        pushRequest(await sign(claims(standIn.issuer, { events }), k1)),
      );
      expect({ events, status: answer.status }).toEqual({ events, status: 202 });
    }
    expect(h.emitted).toHaveLength(before);
    expect(count(h, 'ssf_receiver_sets_total', { outcome: 'ignored' })).toBe(ignoredBefore + 3);
  });

  it('polls with returnImmediately false, acknowledges processed SETs and reports refused ones in setErrs', async () => {
    const p = harness('standin-poll');
    const good = claims(standIn.issuer);
    const bad = claims('https://impostor.example');
    standIn.pollQueue.push({
      [good.jti as string]: await sign(good, k1),
      [bad.jti as string]: await sign(bad, k1),
    });
    const instance = ssfReceiver.create(
      p.ctx,
      ssfReceiver.configSchema.parse({ ...base(), delivery: { method: 'poll', error_backoff: '50ms' } }),
    );
    const firstPoll = standIn.pollBodies.length;
    await instance.start(p.ctx.signal);
    await eventually(() => standIn.pollBodies.length >= firstPoll + 2, 'second poll');
    const [first, second] = standIn.pollBodies.slice(firstPoll);
    expect(first).toMatchObject({ returnImmediately: false });
    expect(second).toMatchObject({
      returnImmediately: false,
      ack: [good.jti],
      setErrs: { [bad.jti as string]: { err: 'invalid_issuer' } },
    });
    expect(p.emitted.map((e) => e.sourceRecordId)).toEqual([good.jti]);
    // RFC 8936 §2.6 (POLL-04): a poll that reports setErrs names their language.
    const headers = standIn.pollHeaders.slice(firstPoll);
    expect(headers[1]?.['content-language']).toBe('en');
    expect(headers[0]?.['content-language']).toBeUndefined();
    await instance.stop(500);
    p.abort.abort();
  });

  it('legacy_subjects: a pre-SSF 1.0 SET naming its subject inside the event (Google RISC) is taken', async () => {
    const legacy = () =>
      claims(standIn.issuer, {
        sub_id: undefined,
        events: {
          'https://schemas.openid.net/secevent/risc/event-type/account-disabled': {
            subject: { subject_type: 'iss-sub', iss: 'https://accounts.google.com/', sub: '7375626A656374' },
            reason: 'hijacking',
          },
        },
      });
    const run = async (name: string, extra: Record<string, unknown>) => {
      const p = harness(name);
      const set = legacy();
      standIn.pollQueue.push({ [set.jti as string]: await sign(set, k1) });
      const instance = ssfReceiver.create(
        p.ctx,
        ssfReceiver.configSchema.parse({
          ...base(),
          delivery: { method: 'poll', error_backoff: '50ms' },
          ...extra,
        }),
      );
      const firstPoll = standIn.pollBodies.length;
      await instance.start(p.ctx.signal);
      await eventually(() => standIn.pollBodies.length >= firstPoll + 2, 'second poll');
      await instance.stop(500);
      p.abort.abort();
      return { p, jti: set.jti as string, answer: standIn.pollBodies[firstPoll + 1] };
    };
    // By default SSF 1.0 §3.1 holds: no sub_id, refused and reported.
    const strict = await run('standin-strict-subjects', {});
    expect(strict.p.emitted).toEqual([]);
    expect(strict.answer).toMatchObject({ setErrs: { [strict.jti]: { err: 'invalid_request' } } });
    const lenient = await run('standin-legacy-subjects', { legacy_subjects: true });
    expect(lenient.answer).toMatchObject({ ack: [lenient.jti] });
    expect(lenient.p.emitted).toEqual([
      expect.objectContaining({
        type: 'https://schemas.openid.net/secevent/risc/event-type/account-disabled',
        subject: { format: 'iss_sub', iss: 'https://accounts.google.com/', sub: '7375626A656374' },
        claims: { reason: 'hijacking' },
      }),
    ]);
    // The dry run reads it the same way.
    const token = await sign(legacy(), k1);
    const config = ssfReceiver.configSchema.parse({ ...base(), delivery: { method: 'poll' } });
    expect(ssfReceiver.map?.(token, config)).toEqual({ events: [], ignored: 'not a compact SET' });
    expect(ssfReceiver.map?.(token, { ...config, legacy_subjects: true })?.events[0]?.subject).toEqual({
      format: 'iss_sub',
      iss: 'https://accounts.google.com/',
      sub: '7375626A656374',
    });
  });

  it('SSF 1.0 §8.1.1 (SSF-32): a stream naming another issuer is not used', async () => {
    const p = harness('standin-foreign-iss');
    standIn.streamIss = 'https://impostor.example/tenants/acme';
    const callsBefore = standIn.calls.length;
    try {
      const instance = ssfReceiver.create(
        p.ctx,
        ssfReceiver.configSchema.parse({ ...base(), delivery: { method: 'poll' } }),
      );
      await instance.start(p.ctx.signal);
      await eventually(() => p.statuses.some((s) => s.state === 'permanent_error'), 'refusal');
      expect(p.statuses.at(-1)?.reason).toMatch(/names issuer "https:\/\/impostor\.example\/tenants\/acme"/);
      // Created, then nothing more asked of it: no status, verification, update or poll.
      expect(standIn.calls.slice(callsBefore)).toEqual(['POST /tenants/acme/streams']);
      await instance.stop(500);
    } finally {
      standIn.streamIss = undefined;
      p.abort.abort();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Two bridge processes: one transmits, the other receives with this connector (push and poll)
// through the real HTTP server, HTTP client and pipeline, and delivers to its log destination.

// ---------------------------------------------------------------------------------------------
// URLs the transmitter chooses (SSF 1.0 §7.1, §7.2.4): https, SSRF policy, the issuer's origin.

interface Recorder {
  origin: string;
  server: Server;
  requests: Array<{ method: string; path: string; authorization?: string; body: string }>;
}

async function recorder(answer: (path: string, self: Recorder) => unknown): Promise<Recorder> {
  const self: Recorder = { origin: '', server: createServer(), requests: [] };
  self.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const body = (await readBody(req)).toString('utf8');
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      self.requests.push({
        method: req.method ?? 'GET',
        path,
        ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
        body,
      });
      const value = answer(path, self);
      res.writeHead(value === undefined ? 404 : 200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(value ?? { err: 'not found' }));
    })();
  });
  self.origin = `http://127.0.0.1:${await listen(self.server)}`;
  return self;
}

describe('URLs taken from the transmitter’s metadata', () => {
  const servers: Recorder[] = [];
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
    for (const s of servers) {
      s.server.close();
      s.server.closeAllConnections();
    }
  });

  /** A transmitter whose metadata names `endpoints(tx, other)`, and another server that records. */
  async function setUp(
    endpoints: (tx: string, other: string) => Record<string, string>,
    config: Record<string, unknown> | ((other: string) => Record<string, unknown>),
    delivery: Record<string, unknown> = {
      method: 'push',
      endpoint_url: 'https://bridge.example/ingest/x',
      authorization_header: PUSH_AUTH,
    },
  ): Promise<{ tx: Recorder; other: Recorder; h: Harness }> {
    const local = (origin: string) => origin.replace('127.0.0.1', 'localhost');
    const other = await recorder(() => ({ stream_id: 's1', aud: STANDIN_AUD, keys: [] }));
    const tx = await recorder((path, self) => {
      if (path === '/.well-known/ssf-configuration')
        return { issuer: self.origin, ...endpoints(self.origin, local(other.origin)) };
      if (path === '/jwks.json') return { keys: [] };
      if (path === '/status') return { status: 'enabled' };
      if (path === '/streams')
        return {
          stream_id: 's1',
          iss: self.origin,
          aud: STANDIN_AUD,
          delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${local(other.origin)}/poll` },
        };
      return path === '/verify' ? {} : undefined;
    });
    servers.push(tx, other);
    const h = harness('guarded');
    // The bridge's own HTTP client, as a running instance gets it (guarded agents included).
    const ctx: InboundContext = {
      ...h.ctx,
      http: testHttpClientFactory({ logger: h.ctx.logger, signal: h.abort.signal, onAuthFailure: () => {} }),
    };
    const connector = ssfReceiver.create(
      ctx,
      ssfReceiver.configSchema.parse({
        issuer: tx.origin,
        bridge_issuer: BRIDGE_ISSUER,
        auth: { type: 'bearer', token: MANAGEMENT_TOKEN },
        delivery,
        ...(typeof config === 'function' ? config(local(other.origin)) : config),
      }),
    );
    stops.push(async () => {
      await connector.stop(200);
      h.abort.abort();
    });
    await connector.start(ctx.signal);
    await eventually(() => h.statuses.length > 0, 'setup');
    return { tx, other, h };
  }

  const onIssuer = (tx: string) => ({
    jwks_uri: `${tx}/jwks.json`,
    configuration_endpoint: `${tx}/streams`,
    status_endpoint: `${tx}/status`,
    verification_endpoint: `${tx}/verify`,
  });
  const loopbackHttp = { ssrf: { allow_http_hosts: ['127.0.0.1', 'localhost'] } };

  it('ssrf takes the core SSRF policy block: a CIDR that is none is a config problem at its path', () => {
    const config = {
      issuer: 'https://tx.example',
      bridge_issuer: BRIDGE_ISSUER,
      auth: { type: 'bearer', token: 't' },
      delivery: { method: 'poll' },
    };
    const refused = ssfReceiver.configSchema.safeParse({ ...config, ssrf: { allow_cidrs: ['10.0.0.0/33'] } });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues.map((i) => i.path.join('.'))).toEqual(['ssrf.allow_cidrs.0']);
    const parsed = ssfReceiver.configSchema.parse({ ...config, ssrf: { allow_cidrs: ['10.0.0.0/8'] } });
    expect(parsed.ssrf).toEqual({
      allowHttpHosts: [],
      allowHosts: [],
      allowCidrs: ['10.0.0.0/8'],
      denyCidrs: [],
    });
  });

  it('SSF 1.0 §7.2.4 (SSF-17): a configuration_endpoint off the issuer’s origin never gets the management token', async () => {
    const { tx, other, h } = await setUp(
      (t, o) => ({ ...onIssuer(t), configuration_endpoint: `${o}/steal` }),
      loopbackHttp,
    );
    expect(h.statuses.at(-1)).toMatchObject({ state: 'permanent_error' });
    expect(h.statuses.at(-1)?.reason).toMatch(/configuration_endpoint .* not on the issuer's origin/);
    expect(other.requests).toEqual([]);
    expect(tx.requests.map((r) => r.path)).toEqual(['/.well-known/ssf-configuration']);
  });

  it('SSF 1.0 §7.1 (SSF-18): an endpoint over plain http is refused unless the configuration allows http for its host', async () => {
    const { tx, h } = await setUp(onIssuer, {});
    expect(h.statuses.at(-1)).toMatchObject({ state: 'permanent_error' });
    expect(h.statuses.at(-1)?.reason).toMatch(/jwks_uri .* refused: the URL must use https/);
    expect(tx.requests.filter((r) => r.authorization !== undefined)).toEqual([]);
  });

  it('SSF 1.0 §7.1 (SSF-18): a jwks_uri on an internal address is refused by the SSRF policy', async () => {
    const { other, h } = await setUp(
      (t, o) => ({ ...onIssuer(t), jwks_uri: `${o}/jwks.json` }),
      loopbackHttp,
    );
    expect(h.statuses.at(-1)?.reason).toMatch(/jwks_uri .* refused: .*loopback/);
    expect(other.requests).toEqual([]);
  });

  it('SSF 1.0 §7.2.4 (SSF-17): a poll endpoint_url off the issuer’s origin is not polled with the management token', async () => {
    const { other, h } = await setUp(onIssuer, loopbackHttp, { method: 'poll', error_backoff: '50ms' });
    expect(h.statuses.at(-1)?.reason).toMatch(/poll endpoint_url .* not on the issuer's origin/);
    await new Promise((r) => setTimeout(r, 200));
    expect(other.requests).toEqual([]);
  });

  it('endpoint_origins admits the transmitter’s other origin for the management API and polling', async () => {
    const { other } = await setUp(
      onIssuer,
      (o) => ({
        ssrf: { allow_http_hosts: ['127.0.0.1', 'localhost'], allow_hosts: ['localhost'] },
        endpoint_origins: [o],
      }),
      { method: 'poll', error_backoff: '50ms' },
    );
    await eventually(() => other.requests.length > 0, 'a poll at the other origin');
    expect(other.requests[0]).toMatchObject({
      method: 'POST',
      path: '/poll',
      authorization: `Bearer ${MANAGEMENT_TOKEN}`,
    });
  });
});

describe('Retry-After from the transmitter', () => {
  it('RFC 8936 §2 / RFC 9110 §10.2.3: a refused poll (429) or setup request (503) is not repeated before its Retry-After', async () => {
    const seen: Record<string, number[]> = { metadata: [], poll: [] };
    const server = createServer((req, res) => {
      void (async () => {
        await readBody(req);
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        const json = (status: number, value: unknown, headers: Record<string, string> = {}) => {
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(JSON.stringify(value));
        };
        if (path === '/.well-known/ssf-configuration') {
          seen.metadata!.push(Date.now());
          if (seen.metadata!.length === 1) return json(503, { error: 'busy' }, { 'retry-after': '2' });
          return json(200, {
            issuer: origin,
            jwks_uri: `${origin}/jwks.json`,
            configuration_endpoint: `${origin}/streams`,
            verification_endpoint: `${origin}/verify`,
          });
        }
        if (path === '/streams')
          return json(201, {
            stream_id: 's1',
            iss: origin,
            aud: STANDIN_AUD,
            delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${origin}/poll` },
          });
        if (path === '/poll') {
          seen.poll!.push(Date.now());
          if (seen.poll!.length === 1) return json(429, { err: 'slow down' }, { 'retry-after': '1' });
          await new Promise((r) => setTimeout(r, 100));
          return json(200, { sets: {} });
        }
        return json(200, {});
      })();
    });
    const origin = `http://127.0.0.1:${await listen(server)}`;
    const h = harness('retry-after');
    const ctx: InboundContext = {
      ...h.ctx,
      http: testHttpClientFactory({ logger: h.ctx.logger, signal: h.abort.signal, onAuthFailure: () => {} }),
    };
    const connector = ssfReceiver.create(
      ctx,
      ssfReceiver.configSchema.parse({
        issuer: origin,
        bridge_issuer: BRIDGE_ISSUER,
        auth: { type: 'bearer', token: MANAGEMENT_TOKEN },
        delivery: { method: 'poll', error_backoff: '50ms' },
        ssrf: { allow_http_hosts: ['127.0.0.1'] },
      }),
    );
    try {
      await connector.start(ctx.signal);
      await eventually(() => seen.poll!.length >= 2, 'a second poll', 10_000);
      const [m1, m2] = seen.metadata as [number, number];
      const [p1, p2] = seen.poll as [number, number];
      // The setup backoff alone would retry after 1 s, the poll backoff after 50 ms.
      expect(m2 - m1).toBeGreaterThanOrEqual(1_950);
      expect(p2 - p1).toBeGreaterThanOrEqual(950);
    } finally {
      await connector.stop(200);
      h.abort.abort();
      server.close();
      server.closeAllConnections();
    }
  }, 15_000);
});

describe('a transmitter that pushes the verification SET before answering the request', () => {
  it('SSF 1.0 §8.1.4.2 / RFC 8935 §2.2 (PUSH-06): the verification SET is accepted (202) at once, not answered 503 while the instance starts; RFC 8935 §2.3 (PUSH-08): a malformed body is refused as {err, description}', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-receiver-sync-verify-'));
    const key = await signingKey('sync-k1');
    const pushes: number[] = [];
    let delivery: { endpoint_url: string; authorization_header: string } | undefined;
    const server = createServer((req, res) => {
      void (async () => {
        const body = (await readBody(req)).toString('utf8');
        const path = new URL(req.url ?? '/', 'http://x').pathname;
        const json = (status: number, value?: unknown) => {
          res.writeHead(status, { 'content-type': 'application/json' });
          res.end(value === undefined ? '' : JSON.stringify(value));
        };
        if (path === '/.well-known/ssf-configuration')
          return json(200, {
            issuer: origin,
            jwks_uri: `${origin}/jwks.json`,
            configuration_endpoint: `${origin}/streams`,
            verification_endpoint: `${origin}/verify`,
            delivery_methods_supported: ['urn:ietf:rfc:8935'],
          });
        if (path === '/jwks.json') return json(200, { keys: [key.jwk] });
        if (path === '/streams' && req.method === 'POST') {
          delivery = (JSON.parse(body) as { delivery: typeof delivery }).delivery;
          return json(201, { stream_id: 'sync-1', iss: origin, aud: STANDIN_AUD, delivery });
        }
        if (path === '/verify') {
          // Synchronous delivery: the SET is pushed, and answered, before the request is.
          const { state } = JSON.parse(body) as { state: string };
          const set = await sign(
            claims(origin, {
              sub_id: { format: 'opaque', id: 'sync-1' },
              events: { [VERIFICATION]: { state } },
            }),
            key,
          );
          const pushed = await fetch(delivery!.endpoint_url, {
            method: 'POST',
            headers: {
              'content-type': 'application/secevent+jwt',
              authorization: delivery!.authorization_header,
            },
            body: set,
          });
          pushes.push(pushed.status);
          return json(204);
        }
        return json(404, {});
      })();
    });
    const origin = `http://127.0.0.1:${await listen(server)}`;
    const port = await freePort();
    const b = `http://127.0.0.1:${port}`;
    writeFileSync(
      join(dir, 'b.yaml'),
      [
        `server: {host: 127.0.0.1, port: ${port}, shutdown_timeout: 2s}`,
        `data_dir: ${join(dir, 'b')}`,
        'inbound:',
        '  - id: from-sync',
        '    connector: ssf-receiver',
        '    config:',
        `      issuer: ${origin}`,
        '      auth: {type: bearer, token: sync-management-token}',
        `      delivery: {method: push, endpoint_url: '${b}/ingest/from-sync', authorization_header: '${PUSH_AUTH}'}`,
        `      bridge_issuer: ${b}`,
        "      ssrf: {allow_http_hosts: ['127.0.0.1']}",
        'outbound:',
        "  - {id: out, connector: log, config: {audience: 'urn:b:log', format: compact}}",
        'routes:',
        "  - {id: all, from: '*', to: [out]}",
      ].join('\n'),
    );
    const receiver = new BridgeProcess(['run', '--config', join(dir, 'b.yaml')], { cwd: dir });
    try {
      await receiver.url();
      await eventually(() => pushes.length > 0, 'the verification push', 20_000);
      expect(pushes).toEqual([202]);
      // RFC 8935 §2.3 (PUSH-08): a body the server cannot parse is refused in the RFC's shape too.
      const malformed = await fetch(`${b}/ingest/from-sync`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: PUSH_AUTH },
        body: '{"not": ',
      });
      expect(malformed.status).toBe(400);
      expect(await malformed.json()).toMatchObject({
        err: 'invalid_request',
        description: expect.any(String),
      });
      await receiver.waitForLine(
        (l) => l.includes('"instance":"from-sync"') && l.includes('stream verified'),
      );
    } finally {
      receiver.kill('SIGTERM');
      const timer = setTimeout(() => receiver.kill('SIGKILL'), 5000);
      await receiver.exited;
      clearTimeout(timer);
      server.close();
      server.closeAllConnections();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('a second bridge process using the connector', () => {
  let dir: string;
  const processes: BridgeProcess[] = [];

  afterAll(async () => {
    for (const proc of processes) {
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
      await proc.exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('relays the transmitter’s events with their provenance, pushed and polled', async () => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-receiver-two-'));
    const [portA, portB] = [await freePort(), await freePort()];
    const [a, b] = [`http://127.0.0.1:${portA}`, `http://127.0.0.1:${portB}`];
    writeFileSync(
      join(dir, 'a.yaml'),
      [
        `server: {host: 127.0.0.1, port: ${portA}, shutdown_timeout: 2s}`,
        `data_dir: ${join(dir, 'a')}`,
        'inbound:',
        `  - {id: hr, connector: events-api, config: {token: ${INGEST_TOKEN}}}`,
        'outbound:',
        "  - {id: out, connector: log, config: {audience: 'urn:a:log', format: compact}}",
        'transmitter:',
        '  receivers:',
        `    - {client_id: ${PUSH_CLIENT.id}, token: ${PUSH_CLIENT.token}}`,
        `    - {client_id: ${POLL_CLIENT.id}, token: ${POLL_CLIENT.token}}`,
        "  ssrf: {allow_http_hosts: ['127.0.0.1'], allow_cidrs: ['127.0.0.0/8']}",
        'routes:',
        "  - {id: all, from: '*', to: [out], streams: true}",
      ].join('\n'),
    );
    writeFileSync(
      join(dir, 'b.yaml'),
      [
        `server: {host: 127.0.0.1, port: ${portB}, shutdown_timeout: 2s}`,
        `data_dir: ${join(dir, 'b')}`,
        'inbound:',
        '  - id: from-a-poll',
        '    connector: ssf-receiver',
        '    config:',
        `      issuer: ${a}`,
        `      auth: {type: bearer, token: ${POLL_CLIENT.token}}`,
        '      delivery: {method: poll, timeout: 30s}',
        `      bridge_issuer: ${b}`,
        "      ssrf: {allow_http_hosts: ['127.0.0.1']}",
        '  - id: from-a-push',
        '    connector: ssf-receiver',
        '    config:',
        `      issuer: ${a}`,
        `      auth: {type: bearer, token: ${PUSH_CLIENT.token}}`,
        `      delivery: {method: push, endpoint_url: '${b}/ingest/from-a-push', authorization_header: '${PUSH_AUTH}'}`,
        `      bridge_issuer: ${b}`,
        "      ssrf: {allow_http_hosts: ['127.0.0.1']}",
        'outbound:',
        "  - {id: out, connector: log, config: {audience: 'urn:b:log', format: decoded}}",
        'routes:',
        "  - {id: all, from: '*', to: [out]}",
      ].join('\n'),
    );
    const transmitterA = new BridgeProcess(['run', '--config', join(dir, 'a.yaml')], { cwd: dir });
    processes.push(transmitterA);
    await transmitterA.url();
    const receiverB = new BridgeProcess(['run', '--config', join(dir, 'b.yaml')], { cwd: dir });
    processes.push(receiverB);
    await receiverB.url();
    await receiverB.waitForLine(
      (l) => l.includes('"instance":"from-a-poll"') && l.includes('stream verified'),
    );
    await receiverB.waitForLine(
      (l) => l.includes('"instance":"from-a-push"') && l.includes('stream verified'),
    );

    const response = await fetch(`${a}/ingest/hr`, {
      method: 'POST',
      headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'erin@example.com' },
      }),
    });
    expect(response.status).toBe(202);
    const relayed = () =>
      receiverB
        .records()
        .map((r) => (r.delivered_set as { claims?: Record<string, unknown> } | undefined)?.claims)
        .filter((c): c is Record<string, unknown> => c !== undefined);
    const sets = await eventually(() => relayed().length === 2 && relayed(), 'two relayed SETs', 20_000);
    for (const claims of sets) {
      expect(claims.iss).toBe(b);
      expect(claims.sub_id).toEqual({ format: 'email', email: 'erin@example.com' });
      expect(relayedVia(claims.txn)).toEqual([b]);
      expect(claims.txn).toContain(`;iss=${encodeURIComponent(a)};`);
    }
    // Received twice (one SET per stream), relayed as two events with different upstream jtis.
    expect(new Set(sets.map((c) => c.txn)).size).toBe(2);
  }, 40_000);
});

describe('event time of a received SET', () => {
  const ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled';
  const mapped = (eventTimestamp: unknown, iat: unknown = 1_795_000_000) => {
    const set = decodeUnverified(
      unsigned({
        iss: 'https://transmitter.example',
        aud: STANDIN_AUD,
        iat,
        jti: `time-${String(eventTimestamp)}`,
        sub_id: { format: 'email', email: 'jane@example.com' },
        events: { [ACCOUNT_DISABLED]: { event_timestamp: eventTimestamp } },
      }),
    );
    return mapSet(set!, BRIDGE_ISSUER).events[0]?.occurredAt;
  };

  it('RFC 8417 §2.2 (NumericDate seconds): milliseconds or times no date can hold fall back to iat, never a 500 or a hold for millennia', () => {
    expect(mapped(1_794_999_995)).toBe('2026-11-18T11:06:35.000Z');
    for (const wrong of [1_767_230_000_000, 9e15, -5, 'yesterday']) {
      expect(mapped(wrong), String(wrong)).toBe('2026-11-18T11:06:40.000Z');
    }
    expect(mapped(9e15, 9e15)).toBeUndefined();
  });

  it('RFC 8417 §2.2 / CAEP 1.0 §2: an event_timestamp more than 5 minutes after the SET’s iat (year 2100, say) is not believed — the iat is taken and the discrepancy logged at warn — so delivery.future_events cannot hold the event until then', () => {
    const iat = 1_795_000_000;
    const { logger, lines } = recordingLogger();
    const at = (eventTimestamp: number) => {
      const set = decodeUnverified(
        unsigned({
          iss: 'https://transmitter.example',
          aud: STANDIN_AUD,
          iat,
          jti: `future-${eventTimestamp}`,
          sub_id: { format: 'email', email: 'jane@example.com' },
          events: { [ACCOUNT_DISABLED]: { event_timestamp: eventTimestamp } },
        }),
      );
      return mapSet(set!, BRIDGE_ISSUER, logger).events[0]?.occurredAt;
    };
    expect(at(4_102_444_800)).toBe('2026-11-18T11:06:40.000Z');
    expect(lines).toEqual([
      expect.objectContaining({
        level: 'warn',
        fields: expect.objectContaining({ jti: 'future-4102444800', event_timestamp: 4_102_444_800, iat }),
      }),
    ]);
    // Within the skew (clocks of the systems writing the event and the SET disagree), it is kept.
    expect(at(iat + 300)).toBe('2026-11-18T11:11:40.000Z');
    expect(at(iat + 301)).toBe('2026-11-18T11:06:40.000Z');
    expect(lines).toHaveLength(2);
  });
});

describe('subject of a received SET', () => {
  const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
  it('SSF 1.0 §3.1.1: a SET naming its subject in sub_id and inside the event (Google’s shape) relays, with sub_id as the subject', () => {
    const set = decodeUnverified(
      unsigned({
        iss: 'https://transmitter.example',
        aud: STANDIN_AUD,
        iat: 1_795_000_000,
        jti: 'both-places',
        sub_id: { format: 'email', email: 'jane@example.com' },
        events: {
          [SESSION_REVOKED]: {
            subject: { format: 'email', email: 'jane@example.com' },
            event_timestamp: 1_794_999_990,
            reason_admin: { en: 'signed out by the administrator' },
          },
        },
      }),
    );
    const [draft] = mapSet(set!, BRIDGE_ISSUER).events;
    expect(draft?.subject).toEqual({ format: 'email', email: 'jane@example.com' });
    expect(draft?.claims).toEqual({
      event_timestamp: 1_794_999_990,
      reason_admin: { en: 'signed out by the administrator' },
    });
  });
});
