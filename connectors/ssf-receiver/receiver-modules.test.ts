/**
 * The ssf-receiver connector against an emulation of the transmitter the OpenID conformance suite
 * runs for its SSF receiver test plan (checklist §9.3): issuer `<origin>/test/a/<alias>`, the
 * management API and poll endpoint under it, an optional OAuth 2.0 authorization server issuing
 * short-lived client-credentials tokens, one stream per receiver, RS256 SETs with a kid, aud the
 * configured string and no txn. One test per receiver module, named after its testName, in push
 * and poll delivery where the module applies.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CompactSign, exportJWK, generateKeyPair, type CryptoKey, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testHttpClientFactory } from '../../core/plugin-api/testing/index.ts';
import type { InboundConnector, Logger } from '../../core/plugin-api/index.ts';
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

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/';
const SSF = 'https://schemas.openid.net/secevent/ssf/event-type/';
const VERIFICATION = `${SSF}verification`;
const STREAM_UPDATED = `${SSF}stream-updated`;
const SESSION_REVOKED = `${CAEP}session-revoked`;
const PUSH = 'urn:ietf:rfc:8935';
const POLL = 'urn:ietf:rfc:8936';
const AUDIENCE = 'https://receiver.example.com/ssf';
const STATIC_TOKEN = 'suite-static-access-token-4f1c2a';
const CLIENT = { id: 'ssf-bridge-receiver', secret: 'client-secret-8a7e6d5c' };
const PUSH_AUTH = 'Bearer push-authorization-header-of-the-receiver-61d0';
const BRIDGE_ISSUER = 'https://bridge.example.com';
const VALID_SUBJECT = { format: 'email', email: 'example.user@example.com' };

/** The event payloads the suite's stream-supported-events module sends (its own examples, typo included). */
function examplePayload(type: string, now: number): Record<string, unknown> {
  const examples: Record<string, Record<string, unknown>> = {
    [`${CAEP}session-revoked`]: {
      event_timestamp: now,
      initiating_entity: 'policy',
      reason_admin: { en: 'Policy Violation: C076E822' },
      reason_user: {
        en: 'This device is no longer compliant.',
        it: 'Questo dispositivo non e piu conforme.',
      },
    },
    [`${CAEP}token-claims-change`]: { event_timestamp: now, claims: { role: 'ro-admin' } },
    [`${CAEP}credential-change`]: {
      'event_timest a mp': now,
      credential_type: 'fido2-roaming',
      change_type: 'create',
      fido2_aaguid: 'accced6a-63f5-490a-9eea-e59bc1896cfc',
      friendly_name: 'Jane’s USB authenticator',
      initiating_entity: 'user',
      reason_admin: { en: 'User self-enrollment' },
    },
    [`${CAEP}assurance-level-change`]: {
      event_timestamp: now,
      namespace: 'NIST-AAL',
      current_level: 'nist-aal2',
      previous_level: 'nist-aal1',
      change_direction: 'increase',
      initiating_entity: 'user',
    },
    [`${CAEP}device-compliance-change`]: {
      event_timestamp: now,
      current_status: 'not-compliant',
      previous_status: 'compliant',
      initiating_entity: 'policy',
      reason_admin: { en: 'Location Policy Violation: C076E8A3' },
      reason_user: { en: 'Device is no longer in a trusted location.' },
    },
    [`${CAEP}session-established`]: {
      event_timestamp: now,
      fp_ua: 'abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611',
      acr: 'AAL2',
      amr: ['otp'],
    },
    [`${CAEP}session-presented`]: {
      event_timestamp: now,
      fp_ua: 'abb0b6e7da81a42233f8f2b1a8ddb1b9a4c81611',
      ext_id: '12345',
    },
    [`${CAEP}risk-level-change`]: {
      event_timestamp: now,
      current_level: 'LOW',
      previous_level: 'HIGH',
      initiating_entity: 'user',
      principal: 'USER',
      risk_reason: 'PASSWORD_FOUND_IN_DATA_BREACH',
    },
    [`${RISC}account-disabled`]: { reason: 'hijacking' },
    [`${RISC}identifier-changed`]: { 'new-value': 'new-valid' },
    [`${RISC}credential-compromise`]: { credential_type: 'password' },
  };
  return examples[type] ?? {};
}

const EVENTS_SUPPORTED = [
  ...[
    'session-revoked',
    'token-claims-change',
    'credential-change',
    'assurance-level-change',
    'device-compliance-change',
    'session-established',
    'session-presented',
    'risk-level-change',
  ].map((n) => CAEP + n),
  ...[
    'account-credential-change-required',
    'account-purged',
    'account-disabled',
    'account-enabled',
    'identifier-changed',
    'identifier-recycled',
    'credential-compromise',
    'opt-in',
    'opt-out-initiated',
    'opt-out-cancelled',
    'opt-out-effective',
    'recovery-activated',
    'recovery-information-changed',
    'sessions-revoked',
  ].map((n) => RISC + n),
  VERIFICATION,
  STREAM_UPDATED,
];

// ---------------------------------------------------------------------------------------------
// The connector context: the bridge's own HTTP client (OAuth token cache, one forced refresh on
// 401), checkpoints in a map, events and statuses recorded.

function harness(instanceId: string, checkpoints = new Map<string, unknown>(), logger?: Logger): Harness {
  return receiverHarness(instanceId, {
    checkpoints,
    http: (signal, log) => testHttpClientFactory({ logger: log, signal, onAuthFailure: () => undefined }),
    ...(logger ? { logger } : {}),
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

// ---------------------------------------------------------------------------------------------
// The suite's emulated transmitter (checklist §9.3, "Emulated transmitter facts").

interface Key {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function rsaKey(kid: string): Promise<Key> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

let keyPair: Promise<[Key, Key]> | undefined;

/** The transmitter's signing key and one it never published; generated once (RSA is slow). */
function suiteKeys(): Promise<[Key, Key]> {
  keyPair ??= Promise.all([rsaKey('suite-signing-key'), rsaKey('not-in-the-jwks')]);
  return keyPair;
}

interface QueuedSet {
  jti: string;
  jwt: string;
}

interface StreamState {
  config: Record<string, unknown>;
  status: 'enabled' | 'paused' | 'disabled';
  reason?: string;
  queue: QueuedSet[];
  removedSubjects: unknown[];
}

interface Call {
  method: string;
  path: string;
  query: Record<string, string>;
  body?: unknown;
  status: number;
  authorization?: string;
}

interface TokenRecord {
  expiresAt: number;
  scope: string[];
}

class SuiteTransmitter {
  origin = '';
  readonly alias: string;
  readonly server = createServer();
  key!: Key;
  /** Not in the JWKS: signs the "unknown kid" and "invalid signature" SETs. */
  foreign!: Key;
  /** Management calls, in order (no token or metadata requests). */
  readonly calls: Call[] = [];
  readonly tokenRequests: Array<{ scope: string; status: number }> = [];
  /** Requests refused because their access token had expired. */
  readonly expiredRejections: string[] = [];
  readonly tokens = new Map<string, TokenRecord>();
  tokenLifetimeS = 3600;
  /** Tokens stop working this long after they were issued, whatever expires_in said (0: as said). */
  revokeAfterMs = 0;
  streams = new Map<string, StreamState>();
  readonly acked: string[] = [];
  readonly setErrs = new Map<string, { err: string; description: string }>();
  readonly pushes: Array<{ jti: string; status: number; headers: Headers; body: string }> = [];
  readonly pollHeaders: IncomingMessage['headers'][] = [];
  readonly pollBodies: Array<Record<string, unknown>> = [];
  readonly sent: string[] = [];
  /** Overrides the stream `iss` of create responses (stream-issuer-mismatch). */
  createIss: string | undefined;
  /** False: the metadata names no add/remove-subject endpoints (the suite's CAEP interop profile). */
  subjectEndpoints = true;
  /** What answers a verification request: by default a SET with the state asked for. */
  onVerify: (streamId: string, state: string | undefined) => Promise<void> = async (streamId, state) =>
    void this.enqueue(streamId, await this.verificationSet(streamId, state));
  /** Runs after the stream is created (unsolicited verification, supported events). */
  afterCreate: (streamId: string) => Promise<void> = async () => undefined;
  verifyDelayMs = 50;
  /** What answers a verification request: 204, or this error status. */
  verifyStatus = 204;
  /** Longest a poll with returnImmediately false is held (0: answered at once, like Keycloak). */
  longPollMs = 300;
  /** Members added to the metadata document (critical_subject_members, say). */
  extraMetadata: Record<string, unknown> = {};
  /** How long the JWKS endpoint takes to answer. */
  jwksDelayMs = 0;
  /** Characters of padding added to the JWKS document, to make it large. */
  jwksPadding = 0;
  /** When each poll came in (epoch ms). */
  readonly pollTimes: number[] = [];
  #jti = 0;
  #pushing = new Map<string, Promise<void>>();

  constructor(alias: string) {
    this.alias = alias;
  }

  get issuer(): string {
    return `${this.origin}/test/a/${this.alias}`;
  }

  async start(): Promise<this> {
    [this.key, this.foreign] = await suiteKeys();
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => void this.#handle(req, res));
    this.origin = await listen(this.server);
    return this;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((r) => this.server.close(r));
  }

  get stream(): StreamState | undefined {
    return [...this.streams.values()][0];
  }

  get streamId(): string | undefined {
    return this.stream?.config.stream_id as string | undefined;
  }

  /** The management calls as "METHOD path-under-the-issuer". */
  get callNames(): string[] {
    return this.calls.map((c) => `${c.method} ${c.path.slice(new URL(this.issuer).pathname.length)}`);
  }

  async sign(
    claims: Record<string, unknown>,
    key: Key = this.key,
    header: Record<string, unknown> = {},
  ): Promise<string> {
    return new CompactSign(new TextEncoder().encode(JSON.stringify(claims)))
      .setProtectedHeader({ alg: 'RS256', kid: key.kid, typ: 'secevent+jwt', ...header })
      .sign(key.privateKey);
  }

  claims(
    type: string,
    event: Record<string, unknown>,
    subject: unknown = VALID_SUBJECT,
  ): Record<string, unknown> {
    this.#jti += 1;
    return {
      iss: this.issuer,
      jti: `${this.alias}-set-${this.#jti}`,
      iat: Math.floor(Date.now() / 1000),
      aud: AUDIENCE,
      sub_id: subject,
      events: { [type]: event },
    };
  }

  async event(type: string, event?: Record<string, unknown>, subject?: unknown): Promise<QueuedSet> {
    const claims = this.claims(type, event ?? examplePayload(type, Math.floor(Date.now() / 1000)), subject);
    return { jti: claims.jti as string, jwt: await this.sign(claims) };
  }

  async verificationSet(
    streamId: string,
    state: string | undefined,
    subjectId = streamId,
  ): Promise<QueuedSet> {
    const claims = this.claims(VERIFICATION, state === undefined ? {} : { state }, {
      format: 'opaque',
      id: subjectId,
    });
    return { jti: claims.jti as string, jwt: await this.sign(claims) };
  }

  async streamUpdated(streamId: string, status: string, reason: string): Promise<QueuedSet> {
    const claims = this.claims(STREAM_UPDATED, { status, reason }, { format: 'opaque', id: streamId });
    return { jti: claims.jti as string, jwt: await this.sign(claims) };
  }

  /** Queues a SET; a push stream that is enabled gets it pushed, in order. */
  enqueue(streamId: string, set: QueuedSet): QueuedSet {
    const stream = this.streams.get(streamId);
    // Deleting a stream purges its queue: what is generated for it afterwards goes nowhere.
    if (!stream) return set;
    stream.queue.push(set);
    this.sent.push(set.jti);
    this.#deliver(streamId);
    return set;
  }

  /** The stream's status as the transmitter sets it on its own (transmitter-initiated). */
  setStatus(streamId: string, status: StreamState['status'], reason?: string): void {
    const stream = this.streams.get(streamId) as StreamState;
    stream.status = status;
    stream.reason = reason;
    this.#deliver(streamId);
  }

  #deliver(streamId: string): void {
    const stream = this.streams.get(streamId);
    const delivery = stream?.config.delivery as { method: string } | undefined;
    if (!stream || delivery?.method !== PUSH) return;
    const previous = this.#pushing.get(streamId) ?? Promise.resolve();
    this.#pushing.set(
      streamId,
      previous.then(() => this.#pushQueue(streamId)),
    );
  }

  async #pushQueue(streamId: string): Promise<void> {
    const stream = this.streams.get(streamId);
    if (!stream) return;
    const delivery = stream.config.delivery as { endpoint_url: string; authorization_header?: string };
    while (stream.status === 'enabled' && stream.queue.length > 0 && this.streams.get(streamId) === stream) {
      const set = stream.queue.shift() as QueuedSet;
      const response = await fetch(delivery.endpoint_url, {
        method: 'POST',
        headers: {
          'content-type': 'application/secevent+jwt',
          accept: 'application/json',
          ...(delivery.authorization_header ? { authorization: delivery.authorization_header } : {}),
        },
        body: set.jwt,
        signal: AbortSignal.timeout(5000),
      }).catch(() => undefined);
      const body = response ? await response.text() : '';
      this.pushes.push({
        jti: set.jti,
        status: response?.status ?? 0,
        headers: response?.headers ?? new Headers(),
        body,
      });
      if (response?.status === 202) this.acked.push(set.jti);
    }
  }

  /** Whether the SET was accepted: 202 on push, listed in ack on poll. */
  isAcked(jti: string): boolean {
    return this.acked.includes(jti);
  }

  push(jti: string): SuiteTransmitter['pushes'][number] | undefined {
    return this.pushes.find((p) => p.jti === jti);
  }

  /** Resolves when every SET sent so far was acknowledged. */
  async allAcked(what: string): Promise<void> {
    await eventually(() => this.sent.length > 0 && this.sent.every((jti) => this.isAcked(jti)), what);
  }

  #authorize(
    req: IncomingMessage,
    res: ServerResponse,
    scope: 'ssf.read' | 'ssf.manage',
    dynamic: boolean,
  ): boolean {
    const header = req.headers.authorization ?? '';
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    const reject = (status: number, challenge: string) => {
      res.writeHead(status, { 'www-authenticate': challenge, 'content-type': 'application/json' });
      res.end(JSON.stringify({ err: 'unauthorized', description: challenge }));
      return false;
    };
    if (!token) return reject(401, 'Bearer');
    if (!dynamic) return token === STATIC_TOKEN || reject(401, 'Bearer error="invalid_token"');
    const record = this.tokens.get(token);
    if (!record) return reject(401, 'Bearer error="invalid_token"');
    if (Date.now() >= record.expiresAt) {
      this.expiredRejections.push(token);
      return reject(401, 'Bearer error="invalid_token", error_description="The access token expired"');
    }
    if (!record.scope.includes(scope) && !record.scope.includes('ssf.manage')) {
      return reject(403, `Bearer error="insufficient_scope", scope="${scope}"`);
    }
    return true;
  }

  /** False: PATCH and PUT are answered 405, like the suite's CAEP interop transmitter. */
  updatesStreams = true;
  /** False: PATCH is answered 405 and PUT works (a transmitter that only replaces configurations). */
  patchesStreams = true;
  /** Whether the receiver authenticates with OAuth (set by the test before the receiver starts). */
  dynamic = false;

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.origin);
    const raw = (await readBody(req)).toString('utf8');
    const json = (status: number, body?: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      });
      res.end(body === undefined ? '' : JSON.stringify(body));
      return status;
    };
    const base = new URL(this.issuer).pathname;
    const path = url.pathname;
    if (path === `/.well-known/ssf-configuration${base}`) {
      json(200, {
        spec_version: '1_0',
        issuer: this.issuer,
        jwks_uri: `${this.issuer}/jwks`,
        delivery_methods_supported: [PUSH, POLL],
        configuration_endpoint: `${this.issuer}/streams`,
        status_endpoint: `${this.issuer}/status`,
        verification_endpoint: `${this.issuer}/verify`,
        ...(this.subjectEndpoints
          ? {
              add_subject_endpoint: `${this.issuer}/add_subject`,
              remove_subject_endpoint: `${this.issuer}/remove_subject`,
            }
          : {}),
        authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
        ...this.extraMetadata,
      });
      return;
    }
    if (path === `/.well-known/oauth-authorization-server${base}`) {
      json(200, {
        issuer: this.issuer,
        token_endpoint: `${this.issuer}/token`,
        grant_types_supported: ['client_credentials'],
        scopes_supported: ['ssf.read', 'ssf.manage'],
      });
      return;
    }
    if (path === `${base}/jwks`) {
      if (this.jwksDelayMs > 0) await pause(this.jwksDelayMs);
      if (res.destroyed) return;
      json(200, {
        keys: [this.key.jwk],
        ...(this.jwksPadding > 0 ? { padding: 'x'.repeat(this.jwksPadding) } : {}),
      });
      return;
    }
    if (path === `${base}/token`) {
      const form = new URLSearchParams(raw);
      const basic = `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`;
      const scope = form.get('scope') ?? '';
      const scopes = scope.split(' ').filter(Boolean);
      let status: number;
      if (req.method !== 'POST' || req.headers.authorization !== basic) {
        status = json(401, { error: 'invalid_client' });
      } else if (form.get('grant_type') !== 'client_credentials') {
        status = json(400, { error: 'unsupported_grant_type' });
      } else if (scopes.length === 0 || scopes.some((s) => s !== 'ssf.read' && s !== 'ssf.manage')) {
        status = json(400, {
          error: 'invalid_scope',
          error_description: 'scope within "ssf.read ssf.manage"',
        });
      } else {
        const token = `at-${this.tokenRequests.length + 1}-${Math.random().toString(36).slice(2)}`;
        const lifetimeMs = this.revokeAfterMs || this.tokenLifetimeS * 1000;
        this.tokens.set(token, { expiresAt: Date.now() + lifetimeMs, scope: scopes });
        status = json(200, {
          access_token: token,
          token_type: 'Bearer',
          expires_in: this.tokenLifetimeS,
          scope,
        });
      }
      this.tokenRequests.push({ scope, status });
      return;
    }
    const call: Call = {
      method: req.method ?? 'GET',
      path,
      query: Object.fromEntries(url.searchParams),
      ...(req.headers.authorization ? { authorization: req.headers.authorization } : {}),
      status: 0,
    };
    let body: Record<string, unknown> | undefined;
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
    } catch {
      call.status = json(400, { err: 'bad_request', description: 'unparsable body' });
      this.calls.push(call);
      return;
    }
    if (body !== undefined) call.body = body;
    this.calls.push(call);
    const readOnly = req.method === 'GET' || path === `${base}/events`;
    if (!this.#authorize(req, res, readOnly ? 'ssf.read' : 'ssf.manage', this.dynamic)) {
      call.status = res.statusCode;
      return;
    }
    call.status = await this.#api(req.method ?? 'GET', path.slice(base.length), url, body, req, json);
  }

  async #api(
    method: string,
    path: string,
    url: URL,
    body: Record<string, unknown> | undefined,
    req: IncomingMessage,
    json: (status: number, body?: unknown, headers?: Record<string, string>) => number,
  ): Promise<number> {
    const queryId = url.searchParams.get('stream_id');
    const bodyId = typeof body?.stream_id === 'string' ? body.stream_id : undefined;
    const notFound = () => json(404, { err: 'not_found', description: 'no such stream' });
    const view = (s: StreamState) => structuredClone(s.config);
    if (path === '/streams') {
      if (method === 'POST') {
        if (this.streams.size > 0)
          return json(409, { err: 'conflict', description: 'Only one stream allowed for receiver' });
        const delivery = { ...((body?.delivery as Record<string, unknown>) ?? { method: POLL }) };
        const streamId = `stream_${Math.random().toString(36).slice(2)}`;
        if (delivery.method === POLL) delivery.endpoint_url = `${this.issuer}/events?stream_id=${streamId}`;
        const requested = body?.events_requested as string[] | undefined;
        const config: Record<string, unknown> = {
          ...body,
          delivery,
          stream_id: streamId,
          iss: this.createIss ?? this.issuer,
          aud: AUDIENCE,
          events_supported: EVENTS_SUPPORTED,
          events_delivered: requested
            ? requested.filter((e) => EVENTS_SUPPORTED.includes(e))
            : EVENTS_SUPPORTED,
        };
        this.streams.set(streamId, { config, status: 'enabled', queue: [], removedSubjects: [] });
        setTimeout(() => void this.afterCreate(streamId), 20);
        return json(201, config);
      }
      if (method === 'GET') {
        if (queryId === null) return json(200, [...this.streams.values()].map(view));
        const stream = this.streams.get(queryId);
        return stream ? json(200, view(stream)) : notFound();
      }
      if (method === 'DELETE') {
        if (queryId === null) return json(400, { err: 'bad_request', description: 'stream_id is required' });
        if (!this.streams.delete(queryId)) return notFound();
        return json(204);
      }
      if (method === 'PATCH' || method === 'PUT') {
        if (!this.updatesStreams || (method === 'PATCH' && !this.patchesStreams)) return json(405);
        if (!bodyId)
          return json(400, { err: 'bad_request', description: 'stream_id is required in the body' });
        const stream = this.streams.get(bodyId);
        if (!stream) return notFound();
        const foreign = [
          'iss',
          'aud',
          'events_supported',
          'events_delivered',
          'min_verification_interval',
        ].filter(
          (k) => body?.[k] !== undefined && JSON.stringify(body[k]) !== JSON.stringify(stream.config[k]),
        );
        if (foreign.length > 0)
          return json(400, { err: 'bad_request', description: `transmitter-supplied ${foreign.join(', ')}` });
        const next = method === 'PUT' ? { ...body } : { ...stream.config, ...body };
        const requested = next.events_requested as string[] | undefined;
        stream.config = {
          ...next,
          stream_id: bodyId,
          iss: stream.config.iss,
          aud: AUDIENCE,
          events_supported: EVENTS_SUPPORTED,
          events_delivered: requested
            ? requested.filter((e) => EVENTS_SUPPORTED.includes(e))
            : EVENTS_SUPPORTED,
        };
        if ((stream.config.delivery as { method?: string } | undefined)?.method === POLL) {
          stream.config.delivery = {
            method: POLL,
            endpoint_url: `${this.issuer}/events?stream_id=${bodyId}`,
          };
        }
        return json(200, view(stream));
      }
      return json(405);
    }
    if (path === '/status') {
      const id = method === 'GET' ? queryId : bodyId;
      if (!id) return json(400, { err: 'bad_request', description: 'stream_id is required' });
      const stream = this.streams.get(id);
      if (!stream) return notFound();
      if (method === 'POST') {
        stream.status = body?.status as StreamState['status'];
        stream.reason = body?.reason as string | undefined;
      }
      return json(200, {
        stream_id: id,
        status: stream.status,
        ...(stream.reason ? { reason: stream.reason } : {}),
      });
    }
    if (path === '/verify' && method === 'POST') {
      if (!bodyId) return json(400, { err: 'bad_request', description: 'stream_id is required' });
      if (!this.streams.has(bodyId)) return notFound();
      if (this.verifyStatus !== 204) {
        return json(this.verifyStatus, {
          err: 'too_many_requests',
          description: 'verification requested too often',
        });
      }
      const state = typeof body?.state === 'string' ? body.state : undefined;
      setTimeout(() => void this.onVerify(bodyId, state), this.verifyDelayMs);
      return json(204);
    }
    if ((path === '/add_subject' || path === '/remove_subject') && method === 'POST') {
      const stream = bodyId ? this.streams.get(bodyId) : undefined;
      if (!stream) return notFound();
      if (path === '/remove_subject') {
        stream.removedSubjects.push(body?.subject);
        return json(204);
      }
      return json(200);
    }
    if (path === '/events' && method === 'POST') {
      const stream = queryId ? this.streams.get(queryId) : undefined;
      if (!stream) return notFound();
      this.pollHeaders.push(req.headers);
      this.pollBodies.push(body ?? {});
      this.pollTimes.push(Date.now());
      for (const jti of (body?.ack as string[] | undefined) ?? []) {
        this.acked.push(jti);
        stream.queue = stream.queue.filter((s) => s.jti !== jti);
      }
      for (const [jti, error] of Object.entries((body?.setErrs as Record<string, never>) ?? {})) {
        this.setErrs.set(jti, error);
        stream.queue = stream.queue.filter((s) => s.jti !== jti);
      }
      const max = typeof body?.maxEvents === 'number' ? body.maxEvents : 100;
      const deadline = Date.now() + (body?.returnImmediately === true ? 0 : this.longPollMs);
      for (;;) {
        if (!this.streams.has(queryId as string)) return notFound();
        // The suite's emulator: a paused or disabled stream is polled as empty.
        const ready = stream.status === 'enabled' && max > 0 ? stream.queue.slice(0, max) : [];
        if (ready.length > 0 || Date.now() >= deadline) {
          return json(200, { sets: Object.fromEntries(ready.map((s) => [s.jti, s.jwt])) });
        }
        await pause(10);
      }
    }
    return json(404, { err: 'not_found', description: `${method} ${path}` });
  }
}

// ---------------------------------------------------------------------------------------------
// The receiver: one connector instance per module run, pushes served like the bridge's server.

const connectors = new Map<string, InboundConnector>();
let ingest: { url: string; server: Server };

beforeAll(async () => {
  ingest = await serveIngest(connectors);
});

afterAll(async () => {
  ingest.server.closeAllConnections();
  await new Promise((r) => ingest.server.close(r));
});

type Mode = 'push' | 'poll';

interface Receiver {
  h: Harness;
  connector: InboundConnector;
  stop(): Promise<void>;
}

let instances = 0;

async function startReceiver(
  tx: SuiteTransmitter,
  mode: Mode,
  extra: Record<string, unknown> = {},
  h: Harness = harness(`receiver-${(instances += 1)}`),
): Promise<Receiver> {
  const id = h.ctx.instanceId;
  const config = ssfReceiver.configSchema.parse({
    issuer: tx.issuer,
    bridge_issuer: BRIDGE_ISSUER,
    ssrf: { allow_http_hosts: ['127.0.0.1'] },
    auth: tx.dynamic
      ? {
          type: 'oauth2_client_credentials',
          token_url: `${tx.issuer}/token`,
          client_id: CLIENT.id,
          client_secret: CLIENT.secret,
          scope: 'ssf.read ssf.manage',
        }
      : { type: 'bearer', token: STATIC_TOKEN },
    delivery:
      mode === 'push'
        ? { method: 'push', endpoint_url: `${ingest.url}/ingest/${id}`, authorization_header: PUSH_AUTH }
        : { method: 'poll', error_backoff: '50ms', timeout: '5s', poll_interval_when_empty: '100ms' },
    ...extra,
  });
  const connector = ssfReceiver.create(h.ctx, config);
  connectors.set(id, connector);
  await connector.start(h.ctx.signal);
  let stopped = false;
  return {
    h,
    connector,
    async stop() {
      if (stopped) return;
      stopped = true;
      await connector.stop(2000);
      connectors.delete(id);
      h.abort.abort();
    },
  };
}

/** Runs one module: a fresh transmitter alias, a receiver, the body, and clean-up. */
async function module(
  alias: string,
  mode: Mode,
  setup: (tx: SuiteTransmitter) => void,
  body: (tx: SuiteTransmitter, rx: Receiver) => Promise<void>,
  extra: Record<string, unknown> = {},
): Promise<void> {
  const tx = await new SuiteTransmitter(`${alias}-${mode}`).start();
  setup(tx);
  let rx: Receiver | undefined;
  try {
    rx = await startReceiver(tx, mode, extra);
    await body(tx, rx);
  } finally {
    await rx?.stop();
    await tx.close();
  }
}

/** The verification SET answering the receiver's request, once acknowledged. */
async function verified(tx: SuiteTransmitter): Promise<void> {
  await eventually(() => tx.callNames.includes('POST /verify'), 'the verification request');
  await tx.allAcked('the verification SET acknowledged');
}

const MODES: Mode[] = ['push', 'poll'];

describe.each(MODES)('conformance suite receiver modules, %s delivery', (mode) => {
  it(`openid-ssf-receiver-stream-verification: creates the stream, asks for verification with a state, acknowledges the verification SET (${mode})`, async () => {
    await module(
      'verification',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const create = tx.calls.find((c) => c.method === 'POST' && c.path.endsWith('/streams')) as Call;
        expect(create.status).toBe(201);
        // Receiver-supplied properties only (SSF 1.0 §8.1.1): the suite's transmitter refuses others.
        expect(Object.keys(create.body as object)).toEqual(['delivery', 'events_requested']);
        // RX-03: a non-empty events_requested, without SSF's own types, which come unasked.
        const requested = (create.body as { events_requested: string[] }).events_requested;
        expect(requested).toEqual(
          expect.arrayContaining([`${CAEP}session-revoked`, `${RISC}account-disabled`]),
        );
        expect(requested.filter((t) => t.startsWith(SSF))).toEqual([]);
        expect((create.body as { delivery: unknown }).delivery).toEqual(
          mode === 'push'
            ? {
                method: PUSH,
                endpoint_url: `${ingest.url}/ingest/${rx.h.ctx.instanceId}`,
                authorization_header: PUSH_AUTH,
              }
            : { method: POLL },
        );
        // The poll endpoint_url is used as given, its ?stream_id query included (RFC 8936 §2.1).
        if (mode === 'poll') {
          const polls = tx.calls.filter((c) => c.path.endsWith('/events'));
          expect(polls.length).toBeGreaterThan(0);
          expect(polls.every((c) => c.query.stream_id === tx.streamId && c.method === 'POST')).toBe(true);
        }
        const verify = tx.calls.find((c) => c.path.endsWith('/verify')) as Call;
        expect(verify.body).toEqual({ stream_id: tx.streamId, state: expect.any(String) });
        expect(verify.status).toBe(204);
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'matched' })).toBe(1);
        if (mode === 'push') expect(tx.pushes[0]?.status).toBe(202);
        else expect(tx.setErrs.size).toBe(0);
      },
    );
  });

  it(`SSF 1.0 §8.1.4.2: verification.interval asks for a verification event again and again, each with its own state, shows the last one answered in the status and emits none of them (${mode})`, async () => {
    await module(
      'verification-interval',
      mode,
      () => undefined,
      async (tx, rx) => {
        await eventually(
          () => tx.callNames.filter((c) => c === 'POST /verify').length >= 3,
          'three verification requests',
        );
        await tx.allAcked('the verification SETs acknowledged');
        await eventually(
          () => count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'matched' }) >= 3,
          'three verifications matched',
        );
        const states = tx.calls
          .filter((c) => c.path.endsWith('/verify'))
          .map((c) => (c.body as { state: string }).state);
        expect(new Set(states).size).toBe(states.length);
        expect(rx.h.statuses.at(-1)).toEqual({
          state: 'ok',
          reason: expect.stringMatching(
            new RegExp(`^stream ${tx.streamId} enabled; verified \\d{4}-\\d\\d-\\d\\dT`),
          ),
        });
        expect(rx.h.counters.get('ssf_receiver_last_verification_timestamp_seconds')).toBeGreaterThan(
          Date.now() / 1000 - 60,
        );
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'timed_out' })).toBe(0);
        expect(rx.h.emitted).toEqual([]);
      },
      { verification: { interval: '1s', timeout: '500ms' } },
    );
  });

  it(`SSF 1.0 §8.1.4: a verification event that does not come within verification.timeout shows the instance as recoverable_error, until the next one answered (${mode})`, async () => {
    let answer = false;
    await module(
      'verification-timeout',
      mode,
      (tx) => {
        const send = tx.onVerify;
        tx.onVerify = async (streamId, state) => (answer ? send(streamId, state) : undefined);
      },
      async (tx, rx) => {
        const failed = await eventually(
          () => rx.h.statuses.find((st) => st.state === 'recoverable_error'),
          'the verification reported as failed',
        );
        expect(failed.reason).toMatch(
          /^no verification event answered the request of stream .+ within 300ms$/,
        );
        expect(
          count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'timed_out' }),
        ).toBeGreaterThanOrEqual(1);
        answer = true;
        await eventually(
          () => rx.h.statuses.at(-1)?.state === 'ok' && /verified/.test(rx.h.statuses.at(-1)?.reason ?? ''),
          'ok again once a verification is answered',
        );
        expect(
          count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'matched' }),
        ).toBeGreaterThanOrEqual(1);
        expect(tx.setErrs.size).toBe(0);
      },
      { verification: { interval: '1s', timeout: '300ms' } },
    );
  });

  it(`SSF 1.0 §8.1.4.2: a verification request the transmitter refuses (429) shows the instance as recoverable_error with the refusal (${mode})`, async () => {
    await module(
      'verification-refused',
      mode,
      (tx) => void (tx.verifyStatus = 429),
      async (tx, rx) => {
        const failed = await eventually(
          () => rx.h.statuses.find((st) => st.state === 'recoverable_error'),
          'the refusal reported',
        );
        expect(failed.reason).toMatch(/^the transmitter refused the verification request: /);
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'request_failed' })).toBe(1);
        expect(tx.callNames.filter((c) => c === 'POST /verify')).toHaveLength(1);
      },
    );
  });

  if (mode === 'push') {
    it('a verification event pushed to another bridge instance on the same store counts for the instance that asked for it: no timeout reported', async () => {
      const tx = await new SuiteTransmitter('verification-elsewhere').start();
      const store = new Map<string, unknown>();
      const id = 'verification-elsewhere';
      try {
        const b = await startReceiver(tx, mode, {}, harness(id, store));
        await verified(tx);
        tx.verifyDelayMs = 150;
        const a = await startReceiver(tx, mode, { verification: { timeout: '600ms' } }, harness(id, store));
        // The load balancer sends the push of the verification SET asked for by A to B.
        connectors.set(id, b.connector);
        await eventually(
          () => count(b.h, 'ssf_receiver_verifications_total', { outcome: 'matched' }) === 2,
          'B matched the state A asked for',
        );
        await pause(800);
        expect(count(a.h, 'ssf_receiver_verifications_total', { outcome: 'timed_out' })).toBe(0);
        expect(a.h.statuses.at(-1)).toEqual({ state: 'ok', reason: expect.stringMatching(/; verified /) });
        await a.stop();
        await b.stop();
      } finally {
        await tx.close();
      }
    });
  }

  it(`openid-ssf-receiver-stream-create-delete: creates the stream and, with delete_stream_on_stop, deletes it with ?stream_id when the instance stops (${mode})`, async () => {
    const tx = await new SuiteTransmitter(`create-delete-${mode}`).start();
    const store = new Map<string, unknown>();
    try {
      const rx = await startReceiver(tx, mode, { delete_stream_on_stop: true }, harness(`cd-${mode}`, store));
      await verified(tx);
      const created = tx.streamId as string;
      await rx.stop();
      const del = tx.calls.find((c) => c.method === 'DELETE') as Call;
      expect({ query: del.query, status: del.status }).toEqual({
        query: { stream_id: created },
        status: 204,
      });
      expect(tx.streams.size).toBe(0);
      // Nothing is asked of the stream after its deletion; the next start creates a new one.
      expect(tx.callNames.at(-1)).toBe('DELETE /streams');
      const again = await startReceiver(tx, mode, {}, harness(`cd-${mode}`, store));
      await eventually(() => tx.streamId, 'a new stream');
      await again.stop();
      expect(
        tx.calls.filter((c) => c.method === 'POST' && c.path.endsWith('/streams')).map((c) => c.status),
      ).toEqual([201, 201]);
      expect(tx.streamId).not.toBe(created);
    } finally {
      await tx.close();
    }
  });

  it(`openid-ssf-receiver-happypath: creates the stream, reads it with ?stream_id and updates it (PATCH) when restarted with a changed configuration, deletes it on stop (${mode})`, async () => {
    const tx = await new SuiteTransmitter(`happypath-${mode}`).start();
    const store = new Map<string, unknown>();
    try {
      const first = await startReceiver(tx, mode, { description: 'first' }, harness(`hp-${mode}`, store));
      await verified(tx);
      await first.stop();
      const streamId = tx.streamId as string;
      const second = await startReceiver(
        tx,
        mode,
        { description: 'second', events_requested: [SESSION_REVOKED], delete_stream_on_stop: true },
        harness(`hp-${mode}`, store),
      );
      await eventually(
        () => tx.callNames.filter((c) => c === 'POST /verify').length === 2,
        'the second verification',
      );
      await second.stop();
      const onStreams = tx.calls.filter((c) => c.path.endsWith('/streams'));
      expect(onStreams.map((c) => `${c.method} ${c.status}`)).toEqual([
        'POST 201',
        'GET 200',
        'PATCH 200',
        'DELETE 204',
      ]);
      const [, read, update, del] = onStreams as [Call, Call, Call, Call];
      expect(read.query).toEqual({ stream_id: streamId });
      expect(update.body).toMatchObject({
        stream_id: streamId,
        description: 'second',
        events_requested: [SESSION_REVOKED],
      });
      // Only receiver-supplied properties are sent: the emulated transmitter refuses others (400).
      expect(Object.keys(update.body as object).sort()).toEqual(
        mode === 'push'
          ? ['delivery', 'description', 'events_requested', 'stream_id']
          : ['description', 'events_requested', 'stream_id'],
      );
      expect(del.query).toEqual({ stream_id: streamId });
    } finally {
      await tx.close();
    }
  });

  it(`SSF 1.0 §8.1.1.4: a transmitter without PATCH (405) gets the changed configuration by PUT, with every receiver-supplied property, the unchanged ones as the stream has them (${mode})`, async () => {
    const tx = await new SuiteTransmitter(`put-only-${mode}`).start();
    tx.patchesStreams = false;
    const store = new Map<string, unknown>();
    const id = `put-only-${mode}`;
    const delivery =
      mode === 'push'
        ? { method: PUSH, endpoint_url: `${ingest.url}/ingest/${id}`, authorization_header: PUSH_AUTH }
        : { method: POLL };
    try {
      const first = await startReceiver(tx, mode, { description: 'first' }, harness(id, store));
      await verified(tx);
      await first.stop();
      const streamId = tx.streamId as string;
      // Only the events requested change: the description is kept.
      const second = await startReceiver(
        tx,
        mode,
        { events_requested: [SESSION_REVOKED] },
        harness(id, store),
      );
      await eventually(() => tx.callNames.filter((c) => c === 'POST /verify').length === 2, 'verified');
      await tx.allAcked('the second verification acknowledged');
      await second.stop();
      // Only the description changes: the events requested are kept.
      const h = harness(id, store);
      const third = await startReceiver(tx, mode, { description: 'third' }, h);
      await eventually(() => tx.callNames.filter((c) => c === 'POST /verify').length === 3, 'verified');
      await tx.allAcked('the third verification acknowledged');
      const set = tx.enqueue(streamId, await tx.event(SESSION_REVOKED));
      await eventually(() => tx.isAcked(set.jti), 'an event on the replaced stream');
      await third.stop();
      const updates = tx.calls.filter((c) => c.method === 'PATCH' || c.method === 'PUT');
      expect(updates.map((c) => `${c.method} ${c.status}`)).toEqual([
        'PATCH 405',
        'PUT 200',
        'PATCH 405',
        'PUT 200',
      ]);
      const [, secondPut, , thirdPut] = updates as [Call, Call, Call, Call];
      expect(secondPut.body).toEqual({
        stream_id: streamId,
        delivery,
        events_requested: [SESSION_REVOKED],
        description: 'first',
      });
      expect(thirdPut.body).toEqual({
        stream_id: streamId,
        delivery,
        events_requested: [SESSION_REVOKED],
        description: 'third',
      });
      expect(tx.stream?.config).toMatchObject({
        description: 'third',
        events_requested: [SESSION_REVOKED],
        events_delivered: [SESSION_REVOKED],
        delivery: mode === 'push' ? delivery : { method: POLL },
      });
      expect(h.emitted.map((e) => e.sourceRecordId)).toEqual([set.jti]);
      expect(h.statuses.map((s) => s.state)).not.toContain('permanent_error');
    } finally {
      await tx.close();
    }
  });

  if (mode === 'push') {
    it('a push stream adopted from a transmitter with neither PATCH nor PUT (405) stops the instance with a permanent error saying so: its delivery cannot be set', async () => {
      const tx = await new SuiteTransmitter('no-updates-push').start();
      const store = new Map<string, unknown>();
      try {
        const first = await startReceiver(tx, mode, {}, harness('nup', store));
        await verified(tx);
        await first.stop();
        tx.updatesStreams = false;
        const h = harness('nup', store);
        const second = await startReceiver(tx, mode, {}, h);
        await second.stop();
        expect(
          tx.calls
            .filter((c) => c.method === 'PATCH' || c.method === 'PUT')
            .map((c) => `${c.method} ${c.status}`),
        ).toEqual(['PATCH 405', 'PUT 405']);
        expect(h.statuses.at(-1)).toEqual({
          state: 'permanent_error',
          reason: expect.stringMatching(/neither updates \(PATCH 405\) nor replaces \(PUT 405\) streams/),
        });
      } finally {
        await tx.close();
      }
    });
  }

  if (mode === 'poll') {
    it('a transmitter without stream updates (405, CAEP interop) keeps serving a polled stream whose configured description changed', async () => {
      const tx = await new SuiteTransmitter('no-updates').start();
      tx.updatesStreams = false;
      const store = new Map<string, unknown>();
      try {
        const first = await startReceiver(tx, mode, { description: 'first' }, harness('nu', store));
        await verified(tx);
        await first.stop();
        const h = harness('nu', store);
        const second = await startReceiver(tx, mode, { description: 'second' }, h);
        await eventually(
          () => tx.callNames.filter((c) => c === 'POST /verify').length === 2,
          'the verification',
        );
        await second.stop();
        expect(
          tx.calls
            .filter((c) => c.method === 'PATCH' || c.method === 'PUT')
            .map((c) => `${c.method} ${c.status}`),
        ).toEqual(['PATCH 405', 'PUT 405']);
        expect(h.statuses.map((s) => s.state)).toEqual(['ok']);
      } finally {
        await tx.close();
      }
    });
  }

  it(`openid-ssf-receiver-stream-status-update: stream_status pauses the stream (POST status) and enables it again at the next start, then the stream is deleted (${mode})`, async () => {
    const tx = await new SuiteTransmitter(`status-${mode}`).start();
    const store = new Map<string, unknown>();
    try {
      const h1 = harness(`st-${mode}`, store);
      const first = await startReceiver(tx, mode, { stream_status: 'paused' }, h1);
      await eventually(() => tx.stream?.status === 'paused', 'the pause');
      await eventually(() => h1.statuses.length > 0, 'the status');
      expect(h1.statuses[0]).toEqual({
        state: 'recoverable_error',
        reason: 'the transmitter paused the stream',
      });
      await first.stop();
      const h2 = harness(`st-${mode}`, store);
      const second = await startReceiver(
        tx,
        mode,
        { stream_status: 'enabled', delete_stream_on_stop: true },
        h2,
      );
      await eventually(() => tx.stream?.status === 'enabled', 'the resumption');
      await verified(tx);
      const streamId = tx.streamId;
      await second.stop();
      expect(h2.statuses[0]?.state).toBe('ok');
      const calls = tx.calls.filter((c) => /\/(status|streams)$/.test(c.path));
      expect(calls.map((c) => [c.method, c.path.replace(/.*\//, ''), c.query, c.body, c.status])).toEqual([
        ['POST', 'streams', {}, expect.anything(), 201],
        ['GET', 'status', { stream_id: streamId }, undefined, 200],
        ['POST', 'status', {}, { stream_id: streamId, status: 'paused' }, 200],
        ['GET', 'streams', { stream_id: streamId }, undefined, 200],
        ...(mode === 'push' ? [['PATCH', 'streams', {}, expect.anything(), 200]] : []),
        ['GET', 'status', { stream_id: streamId }, undefined, 200],
        ['POST', 'status', {}, { stream_id: streamId, status: 'enabled' }, 200],
        ['DELETE', 'streams', { stream_id: streamId }, undefined, 204],
      ]);
    } finally {
      await tx.close();
    }
  });

  it(`openid-ssf-receiver-access-token-expiry: a token refused as expired (401 invalid_token) is replaced by a new one once, and the stream is deleted with it (${mode})`, async () => {
    let event: QueuedSet | undefined;
    await module(
      'token-expiry',
      mode,
      (tx) => {
        tx.dynamic = true;
        // expires_in says an hour; the transmitter stops accepting each token after 700 ms.
        tx.revokeAfterMs = 700;
      },
      async (tx, rx) => {
        await verified(tx);
        await pause(900);
        event = tx.enqueue(tx.streamId as string, await tx.event(SESSION_REVOKED));
        await eventually(() => tx.isAcked((event as QueuedSet).jti), 'the event after the expiry');
        await rx.stop();
        const del = tx.calls.filter((c) => c.method === 'DELETE');
        expect(del.at(-1)?.status).toBe(204);
        expect(tx.expiredRejections.length).toBeGreaterThanOrEqual(1);
        // Never presented again once refused: every refusal is of another token, each followed by a new one.
        expect(new Set(tx.expiredRejections).size).toBe(tx.expiredRejections.length);
        expect(tx.tokenRequests.length).toBeGreaterThan(tx.expiredRejections.length);
        expect(tx.tokenRequests.every((r) => r.status === 200 && r.scope === 'ssf.read ssf.manage')).toBe(
          true,
        );
      },
      { delete_stream_on_stop: true },
    );
  });

  it(`openid-ssf-receiver-unsolicited-stream-verification: a stateless verification SET sent right after the stream is created is acknowledged (${mode})`, async () => {
    let unsolicited: QueuedSet | undefined;
    await module(
      'unsolicited',
      mode,
      (tx) => {
        tx.afterCreate = async (streamId) => {
          unsolicited = tx.enqueue(streamId, await tx.verificationSet(streamId, undefined));
        };
      },
      async (tx, rx) => {
        await verified(tx);
        await eventually(
          () => tx.sent.length === 2 && tx.sent.every((j) => tx.isAcked(j)),
          'both acknowledged',
        );
        expect(tx.isAcked((unsolicited as QueuedSet).jti)).toBe(true);
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'unsolicited' })).toBe(1);
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'matched' })).toBe(1);
        expect(tx.setErrs.size).toBe(0);
      },
    );
  });

  it(`openid-ssf-receiver-stream-supported-events: the stream asks for the CAEP and RISC types only, so every event the suite sends for its events_delivered, with the suite's example payloads, is acknowledged (${mode})`, async () => {
    await module(
      'supported-events',
      mode,
      (tx) => {
        tx.afterCreate = async (streamId) => {
          const delivered = tx.streams.get(streamId)?.config.events_delivered as string[];
          for (const type of delivered) tx.enqueue(streamId, await tx.event(type));
        };
      },
      async (tx, rx) => {
        const signalTypes = EVENTS_SUPPORTED.filter((t) => !t.startsWith(SSF));
        // The suite sends one event per type of the create response's events_delivered: asked
        // explicitly, those exclude SSF's control types, which the suite would send without the
        // payload they require (a verification event about an e-mail address, a stream-updated
        // event without status).
        const created = [...tx.streams.values()][0]!.config.events_delivered as string[];
        expect(new Set(created)).toEqual(new Set(signalTypes));
        await eventually(() => tx.sent.length >= signalTypes.length + 1, 'every event and the verification');
        await eventually(() => tx.sent.every((jti) => tx.isAcked(jti)), 'every SET acknowledged');
        expect(tx.setErrs.size).toBe(0);
        // The CAEP and RISC events are emitted into the pipeline; the deprecated RISC
        // sessions-revoked as CAEP session-revoked (RISC 1.0 §2.11).
        expect(rx.h.emitted).toHaveLength(signalTypes.length);
        expect(new Set(rx.h.emitted.map((e) => e.type))).toEqual(
          new Set(signalTypes.filter((t) => t !== `${RISC}sessions-revoked`)),
        );
        expect(rx.h.emitted.filter((e) => e.type === `${CAEP}session-revoked`)).toHaveLength(2);
      },
    );
  });

  it(`openid-ssf-receiver-transmitter-initiated-status-change: acknowledges stream-updated paused, tolerates the pause, acknowledges stream-updated enabled and the held event (${mode})`, async () => {
    await module(
      'status-change',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const streamId = tx.streamId as string;
        const paused = tx.enqueue(
          streamId,
          await tx.streamUpdated(streamId, 'paused', 'Transmitter maintenance'),
        );
        await eventually(() => tx.isAcked(paused.jti), 'the paused announcement acknowledged');
        tx.setStatus(streamId, 'paused', 'Transmitter maintenance');
        const held = tx.enqueue(streamId, await tx.event(SESSION_REVOKED));
        const pollsBefore = tx.pollBodies.length;
        await pause(700);
        expect(tx.isAcked(held.jti)).toBe(false);
        expect(rx.h.statuses.at(-1)).toEqual({
          state: 'recoverable_error',
          reason: 'the transmitter paused the stream: Transmitter maintenance',
        });
        // Polling a paused stream answers {"sets":{}}: the receiver keeps polling, without errors.
        if (mode === 'poll') expect(tx.pollBodies.length).toBeGreaterThan(pollsBefore);
        tx.setStatus(streamId, 'enabled');
        const enabled = tx.enqueue(
          streamId,
          await tx.streamUpdated(streamId, 'enabled', 'Transmitter maintenance finished'),
        );
        await eventually(
          () => tx.isAcked(held.jti) && tx.isAcked(enabled.jti),
          'the held event and the enabled announcement',
        );
        expect(rx.h.statuses.at(-1)?.state).toBe('ok');
        expect(rx.h.emitted.map((e) => e.sourceRecordId)).toEqual([held.jti]);
        expect(tx.setErrs.size).toBe(0);
      },
    );
  });

  it(`openid-ssf-receiver-invalid-set-rejection: SETs with a corrupted signature, another iss, another aud or an unknown kid are refused with the matching RFC 8935 code and never acknowledged (${mode})`, async () => {
    await module(
      'invalid-set',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const streamId = tx.streamId as string;
        const expected = new Map<string, string>();
        const good = tx.claims(
          SESSION_REVOKED,
          examplePayload(SESSION_REVOKED, Math.floor(Date.now() / 1000)),
        );
        const signed = await tx.sign(good);
        const [head, payload, signature] = signed.split('.') as [string, string, string];
        const corrupted = `${head}.${payload}.${signature.slice(0, 10)}${signature[10] === 'A' ? 'B' : 'A'}${signature.slice(11)}`;
        const tampered: Array<[string, string, string]> = [['invalid_key', good.jti as string, corrupted]];
        const wrongIss = tx.claims(SESSION_REVOKED, {}, VALID_SUBJECT);
        wrongIss.iss = `${tx.issuer}/tampered`;
        tampered.push(['invalid_issuer', wrongIss.jti as string, await tx.sign(wrongIss)]);
        const wrongAud = tx.claims(SESSION_REVOKED, {}, VALID_SUBJECT);
        wrongAud.aud = 'https://another-receiver.example.com';
        tampered.push(['invalid_audience', wrongAud.jti as string, await tx.sign(wrongAud)]);
        const unknownKid = tx.claims(SESSION_REVOKED, {}, VALID_SUBJECT);
        tampered.push(['invalid_key', unknownKid.jti as string, await tx.sign(unknownKid, tx.foreign)]);
        for (const [err, jti, jwt] of tampered) {
          expected.set(jti, err);
          tx.enqueue(streamId, { jti, jwt });
          if (mode === 'push') await pause(20);
        }
        if (mode === 'push') {
          await eventually(() => tx.pushes.length === 5, 'the four pushes');
          for (const [jti, err] of expected) {
            const push = tx.push(jti) as SuiteTransmitter['pushes'][number];
            expect({ jti, status: push.status, type: push.headers.get('content-type') }).toEqual({
              jti,
              status: 400,
              type: expect.stringMatching(/^application\/json/),
            });
            expect(push.headers.get('content-language')).toBe('en');
            expect(JSON.parse(push.body)).toEqual({ err, description: expect.stringMatching(/\S/) });
          }
        } else {
          await eventually(() => tx.setErrs.size === 4, 'the four SETs reported in setErrs');
          for (const [jti, err] of expected) {
            expect({ jti, err: tx.setErrs.get(jti)?.err }).toEqual({ jti, err });
            expect(tx.isAcked(jti)).toBe(false);
          }
          // RFC 8936 §2.6 (POLL-04): the poll reporting setErrs names the language of its descriptions.
          const reporting = tx.pollBodies.findIndex((b) => b.setErrs !== undefined);
          expect(tx.pollHeaders[reporting]?.['content-language']).toBe('en');
        }
        expect(rx.h.emitted).toEqual([]);
      },
    );
  });

  it(`openid-ssf-receiver-redelivered-set: the same SET delivered again is acknowledged again and emitted once (${mode})`, async () => {
    await module(
      'redelivered',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const streamId = tx.streamId as string;
        const set = tx.enqueue(streamId, await tx.event(SESSION_REVOKED));
        await eventually(() => tx.isAcked(set.jti), 'the first delivery acknowledged');
        tx.enqueue(streamId, set);
        await eventually(
          () => tx.acked.filter((j) => j === set.jti).length === 2,
          'the redelivery acknowledged',
        );
        expect(rx.h.emitted.map((e) => e.sourceRecordId)).toEqual([set.jti]);
        expect(tx.setErrs.size).toBe(0);
      },
    );
  });

  it(`RFC 8935 §2.2: a SET redelivered to another bridge instance on the same store, or after a restart, is acknowledged and not emitted again (${mode})`, async () => {
    const tx = await new SuiteTransmitter(`replay-shared-${mode}`).start();
    const store = new Map<string, unknown>();
    const id = `replay-shared-${mode}`;
    try {
      const a = await startReceiver(tx, mode, {}, harness(id, store));
      await verified(tx);
      const streamId = tx.streamId as string;
      const set = tx.enqueue(streamId, await tx.event(SESSION_REVOKED));
      await eventually(() => tx.isAcked(set.jti), 'the first delivery acknowledged');
      expect(a.h.emitted.map((e) => e.sourceRecordId)).toEqual([set.jti]);
      // A second bridge instance on the same database; pushes now reach it, and it is the
      // scheduler's leader polling. The first one stops polling.
      if (mode === 'poll') await a.stop();
      const b = await startReceiver(tx, mode, {}, harness(id, store));
      await eventually(() => tx.callNames.filter((c) => c === 'POST /verify').length === 2, 'B verified');
      await tx.allAcked('the second verification acknowledged');
      tx.enqueue(streamId, set);
      await eventually(() => tx.acked.filter((j) => j === set.jti).length === 2, 'the redelivery to B');
      expect(b.h.emitted).toEqual([]);
      await b.stop();
      await a.stop();
      // A restart: a new process over the same store.
      const c = await startReceiver(tx, mode, {}, harness(id, store));
      await eventually(() => tx.callNames.filter((n) => n === 'POST /verify').length === 3, 'C verified');
      await tx.allAcked('the third verification acknowledged');
      tx.enqueue(streamId, set);
      await eventually(() => tx.acked.filter((j) => j === set.jti).length === 3, 'the redelivery to C');
      expect(c.h.emitted).toEqual([]);
      expect(tx.setErrs.size).toBe(0);
      await c.stop();
    } finally {
      await tx.close();
    }
  });

  it(`openid-ssf-receiver-removed-subject-event: the receiver removes its configured subject (remove_subject) and accepts an event about it that still comes (${mode})`, async () => {
    const removed = { format: 'email', email: 'removed.user@example.com' };
    await module(
      'removed-subject',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const streamId = tx.streamId as string;
        await eventually(
          () => (tx.streams.get(streamId)?.removedSubjects.length ?? 0) > 0,
          'the remove-subject request',
        );
        const call = tx.calls.find((c) => c.path.endsWith('/remove_subject')) as Call;
        // SSF 1.0 §8.1.3.3: {stream_id, subject}, answered 204.
        expect(call.body).toEqual({ stream_id: streamId, subject: removed });
        expect(call.status).toBe(204);
        const set = tx.enqueue(streamId, await tx.event(SESSION_REVOKED, undefined, removed));
        await eventually(() => tx.isAcked(set.jti), 'the event acknowledged');
        expect(tx.setErrs.size).toBe(0);
        expect(rx.h.emitted.map((e) => e.subject)).toEqual([removed]);
      },
      { subjects: { remove: [removed] } },
    );
  });

  it(`SSF 1.0 §8.1.3.2: subjects.add are added to the stream in canonical form, as verified, at every start (${mode})`, async () => {
    await module(
      'add-subject',
      mode,
      () => undefined,
      async (tx) => {
        await verified(tx);
        const adds = tx.calls.filter((c) => c.path.endsWith('/add_subject'));
        expect(adds.map((c) => [c.body, c.status])).toEqual([
          [
            {
              stream_id: tx.streamId,
              subject: { format: 'email', email: 'Alice@example.com' },
              verified: true,
            },
            200,
          ],
        ]);
      },
      { subjects: { add: [{ format: 'email', email: 'Alice@EXAMPLE.com' }] } },
    );
  });

  it(`subjects configured for a transmitter without subject endpoints stop the instance with a permanent error naming the endpoint (${mode})`, async () => {
    await module(
      'no-subject-endpoints',
      mode,
      (tx) => (tx.subjectEndpoints = false),
      async (tx, rx) => {
        const failed = await eventually(
          () => rx.h.statuses.find((s) => s.state === 'permanent_error'),
          'the refusal',
        );
        expect(failed.reason).toContain('add_subject_endpoint');
        expect(tx.callNames.filter((c) => c.includes('subject'))).toEqual([]);
      },
      { subjects: { add: [{ format: 'email', email: 'alice@example.com' }] } },
    );
  });

  it(`openid-ssf-receiver-stream-issuer-mismatch: a stream whose create response names another iss is not used any further (${mode})`, async () => {
    await module(
      'issuer-mismatch',
      mode,
      (tx) => (tx.createIss = 'https://impostor.example.com/test/a/other'),
      async (tx, rx) => {
        await eventually(() => rx.h.statuses.find((s) => s.state === 'permanent_error'), 'the refusal');
        await pause(300);
        expect(rx.h.statuses.at(-1)?.reason).toContain('https://impostor.example.com/test/a/other');
        // Reading the stream again or deleting it would be fine; nothing else is asked of it.
        const used = tx.callNames.filter((c) => !/^(POST|GET|DELETE) \/streams$/.test(c));
        expect(used).toEqual([]);
      },
    );
  });

  it(`openid-ssf-receiver-verification-wrong-state: a verification SET with a state the receiver never asked for is refused as invalid_state (${mode})`, async () => {
    let wrong: QueuedSet | undefined;
    await module(
      'wrong-state',
      mode,
      (tx) => {
        tx.onVerify = async (streamId) => {
          wrong = tx.enqueue(streamId, await tx.verificationSet(streamId, 'a-state-the-receiver-never-sent'));
        };
      },
      async (tx, rx) => {
        const jti = await eventually(() => wrong?.jti, 'the wrong verification SET');
        if (mode === 'push') {
          const push = await eventually(() => tx.push(jti), 'the push');
          expect(push.status).toBe(400);
          expect(push.headers.get('content-language')).toBe('en');
          expect(JSON.parse(push.body)).toEqual({ err: 'invalid_state', description: expect.any(String) });
        } else {
          await eventually(() => tx.setErrs.has(jti), 'the setErrs report');
          expect(tx.setErrs.get(jti)?.err).toBe('invalid_state');
          expect(tx.isAcked(jti)).toBe(false);
        }
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'mismatched' })).toBe(1);
      },
    );
  });

  it(`openid-ssf-receiver-verification-wrong-subject: a verification SET whose opaque sub_id names another stream is refused (${mode})`, async () => {
    let wrong: QueuedSet | undefined;
    await module(
      'wrong-subject',
      mode,
      (tx) => {
        tx.onVerify = async (streamId, state) => {
          wrong = tx.enqueue(streamId, await tx.verificationSet(streamId, state, 'stream_of-someone-else'));
        };
      },
      async (tx, rx) => {
        const jti = await eventually(() => wrong?.jti, 'the wrong verification SET');
        if (mode === 'push') {
          const push = await eventually(() => tx.push(jti), 'the push');
          expect(push.status).toBe(400);
          expect(push.headers.get('content-type')).toMatch(/^application\/json/);
          expect(JSON.parse(push.body)).toEqual({
            err: expect.any(String),
            description: expect.stringContaining('stream_of-someone-else'),
          });
        } else {
          await eventually(() => tx.setErrs.has(jti), 'the setErrs report');
          expect(tx.isAcked(jti)).toBe(false);
        }
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'matched' })).toBe(0);
      },
    );
  });

  it(`openid-ssf-receiver-verification-behind-queued-events: three events queued before the verification SET are all acknowledged (${mode})`, async () => {
    await module(
      'behind-queued',
      mode,
      (tx) => {
        tx.onVerify = async (streamId, state) => {
          for (let i = 0; i < 3; i += 1) tx.enqueue(streamId, await tx.event(SESSION_REVOKED));
          tx.enqueue(streamId, await tx.verificationSet(streamId, state));
        };
      },
      async (tx, rx) => {
        await eventually(() => tx.sent.length === 4, 'the four SETs');
        await tx.allAcked('all four acknowledged');
        expect(rx.h.emitted).toHaveLength(3);
        expect(count(rx.h, 'ssf_receiver_verifications_total', { outcome: 'matched' })).toBe(1);
        expect(tx.setErrs.size).toBe(0);
      },
    );
  });
});

describe('subjects in the configuration', () => {
  it('a subject identifier that is not valid (RFC 9493) is refused when the config loads, with its path', () => {
    const parsed = ssfReceiver.configSchema.safeParse({
      issuer: 'https://transmitter.example.com/test/a/x',
      bridge_issuer: BRIDGE_ISSUER,
      auth: { type: 'bearer', token: STATIC_TOKEN },
      delivery: { method: 'poll' },
      subjects: { remove: [{ format: 'email', email: 'not an address' }] },
    });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues).toEqual([
      expect.objectContaining({ path: ['subjects', 'remove', 0], message: expect.stringContaining('email') }),
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// Beyond the suite's modules: what a receiver must also get right against real transmitters.

/** The outcome of a SET: `202`/`400`… when pushed; `ack` or the setErrs code when polled. */
function outcome(tx: SuiteTransmitter, mode: Mode, jti: string): string | undefined {
  if (mode === 'push') {
    const push = tx.push(jti);
    return push ? String(push.status) : undefined;
  }
  if (tx.isAcked(jti)) return 'ack';
  return tx.setErrs.get(jti)?.err;
}

describe('polling an idle stream', () => {
  it('RFC 8936 §2.4 (POLL-06): a transmitter that answers empty polls at once is polled again only after poll_interval_when_empty, not in a busy loop; a poll that brought SETs is followed at once', async () => {
    await module(
      'empty-polls',
      'poll',
      (tx) => {
        tx.longPollMs = 0; // returns at once, like Keycloak or a paused stream's {"sets":{}}
      },
      async (tx) => {
        await eventually(() => tx.pollTimes.length > 0, 'the first poll');
        const before = tx.pollTimes.length;
        await pause(1500);
        const idle = tx.pollTimes.length - before;
        // One poll a second (poll_interval_when_empty 1s); the busy loop made hundreds.
        expect(idle).toBeGreaterThanOrEqual(1);
        expect(idle).toBeLessThanOrEqual(2);
        const streamId = tx.streamId as string;
        const started = Date.now();
        const queued: QueuedSet[] = [];
        for (let i = 0; i < 3; i += 1) queued.push(tx.enqueue(streamId, await tx.event(SESSION_REVOKED)));
        await eventually(() => queued.every((q) => tx.isAcked(q.jti)), 'the three SETs acknowledged');
        // At most one wait for the idle poll to end, then one SET a poll (max_events 1), each poll
        // following the one before at once (three waits would take more than 3 s).
        expect(Date.now() - started).toBeLessThan(2500);
        expect(tx.setErrs.size).toBe(0);
      },
      {
        verify_on_start: false,
        delivery: {
          method: 'poll',
          error_backoff: '50ms',
          timeout: '5s',
          max_events: 1,
          poll_interval_when_empty: '1s',
        },
      },
    );
  });

  it('RFC 8936 §2.4: poll_interval_when_empty defaults to 5 s, a long poll held that long is followed at once, and stop() ends the wait without waiting it out', async () => {
    const config = ssfReceiver.configSchema.parse({
      issuer: 'https://transmitter.example.com/t',
      bridge_issuer: BRIDGE_ISSUER,
      auth: { type: 'bearer', token: STATIC_TOKEN },
      delivery: { method: 'poll' },
    });
    expect(config.delivery).toMatchObject({ poll_interval_when_empty: 5000 });
    await module(
      'empty-polls-default',
      'poll',
      (tx) => {
        tx.longPollMs = 0;
      },
      async (tx, rx) => {
        await eventually(() => tx.pollTimes.length > 0, 'the first poll');
        await pause(1000);
        expect(tx.pollTimes).toHaveLength(1);
        const stopping = Date.now();
        await rx.stop();
        expect(Date.now() - stopping).toBeLessThan(500);
      },
      { verify_on_start: false, delivery: { method: 'poll', error_backoff: '50ms', timeout: '5s' } },
    );
    await module(
      'long-polls-held',
      'poll',
      (tx) => {
        tx.longPollMs = 300;
      },
      async (tx) => {
        await eventually(() => tx.pollTimes.length >= 4, 'four long polls');
        const gaps = tx.pollTimes.slice(1).map((t, i) => t - (tx.pollTimes[i] as number));
        // Each held 300 ms and answered empty, and followed by the next after that hold, not
        // after a further wait (poll_interval_when_empty 200ms is less than the hold).
        expect(Math.max(...gaps)).toBeLessThan(1000);
      },
      {
        verify_on_start: false,
        delivery: { method: 'poll', error_backoff: '50ms', timeout: '5s', poll_interval_when_empty: '200ms' },
      },
    );
  }, 20_000);
});

describe('critical subject members', () => {
  const TENANT_SUBJECT = {
    format: 'complex',
    user: VALID_SUBJECT,
    tenant: { format: 'opaque', id: 'tenant-B' },
  };
  const DEVICE_SUBJECT = {
    format: 'complex',
    user: VALID_SUBJECT,
    device: { format: 'opaque', id: 'laptop-7' },
  };

  for (const mode of MODES) {
    it(`SSF 1.0 §3.6 (checklist SSF-06): an event whose subject has a member the metadata lists in critical_subject_members, which this bridge does not honour, is discarded — answered as processed, not emitted, logged at warn with the member, counted — and others are relayed (${mode})`, async () => {
      const tx = await new SuiteTransmitter(`critical-${mode}`).start();
      tx.extraMetadata = { critical_subject_members: ['tenant', 'session'] };
      const { logger, lines } = recordingLogger();
      const rx = await startReceiver(
        tx,
        mode,
        { verify_on_start: false },
        harness(`receiver-${(instances += 1)}`, new Map(), logger),
      );
      try {
        await eventually(() => tx.streamId, 'the stream');
        const streamId = tx.streamId as string;
        const tenant = tx.enqueue(streamId, await tx.event(SESSION_REVOKED, undefined, TENANT_SUBJECT));
        const device = tx.enqueue(streamId, await tx.event(SESSION_REVOKED, undefined, DEVICE_SUBJECT));
        await eventually(
          () => outcome(tx, mode, tenant.jti) && outcome(tx, mode, device.jti),
          'both SETs answered',
        );
        // The SET is valid: 202 / ack, not a refusal blaming the transmitter (RFC 8935 §2.2).
        expect(outcome(tx, mode, tenant.jti)).toBe(mode === 'push' ? '202' : 'ack');
        expect(outcome(tx, mode, device.jti)).toBe(mode === 'push' ? '202' : 'ack');
        expect(rx.h.emitted.map((e) => e.sourceRecordId)).toEqual([device.jti]);
        expect(count(rx.h, 'ssf_receiver_sets_total', { outcome: 'discarded' })).toBe(1);
        expect(lines).toContainEqual(
          expect.objectContaining({
            level: 'warn',
            fields: expect.objectContaining({ jti: tenant.jti, criticalMembers: ['tenant'] }),
            msg: expect.stringContaining('SSF 1.0 §3.6'),
          }),
        );
        // Delivered again, it is answered the same way and still not emitted.
        if (mode === 'push') {
          tx.enqueue(streamId, tenant);
          await eventually(() => tx.pushes.filter((p) => p.jti === tenant.jti).length === 2, 'redelivery');
          expect(tx.pushes.filter((p) => p.jti === tenant.jti).map((p) => p.status)).toEqual([202, 202]);
          expect(rx.h.emitted).toHaveLength(1);
        }
      } finally {
        await rx.stop();
        await tx.close();
      }
    });
  }

  it('SSF 1.0 §3.6: honoured_subject_members lists the critical members the routes act on; events with them are relayed, their subject whole', async () => {
    await module(
      'critical-honoured',
      'push',
      (tx) => {
        tx.extraMetadata = { critical_subject_members: ['tenant'] };
      },
      async (tx, rx) => {
        await eventually(() => tx.streamId, 'the stream');
        const sent = tx.enqueue(
          tx.streamId as string,
          await tx.event(SESSION_REVOKED, undefined, TENANT_SUBJECT),
        );
        await eventually(() => tx.isAcked(sent.jti), 'the SET acknowledged');
        expect(rx.h.emitted.map((e) => e.subject)).toEqual([TENANT_SUBJECT]);
        expect(count(rx.h, 'ssf_receiver_sets_total', { outcome: 'discarded' })).toBe(0);
      },
      { verify_on_start: false, honoured_subject_members: ['tenant'] },
    );
  });
});

describe.each(MODES)('what a receiver must tolerate, %s delivery', (mode) => {
  it(`RFC 8935 §4 / SSF 1.0 §8.1.5: an older stream-updated paused delivered after a newer enabled is ignored, the stream stays enabled; a newer one still applies (${mode})`, async () => {
    await module(
      'status-order',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const streamId = tx.streamId as string;
        const stream = { format: 'opaque', id: streamId };
        const now = Math.floor(Date.now() / 1000);
        const announce = async (status: string, iat: number): Promise<QueuedSet> => {
          const claims: Record<string, unknown> = { ...tx.claims(STREAM_UPDATED, { status }, stream), iat };
          return { jti: claims.jti as string, jwt: await tx.sign(claims) };
        };
        const newer = await announce('enabled', now);
        const older = await announce('paused', now - 30);
        tx.enqueue(streamId, newer);
        tx.enqueue(streamId, older);
        await eventually(() => tx.isAcked(newer.jti) && tx.isAcked(older.jti), 'both announcements');
        expect(rx.h.statuses.at(-1)?.state).toBe('ok');
        expect(count(rx.h, 'ssf_receiver_stream_paused', {})).toBe(0);
        const later = tx.enqueue(streamId, await announce('paused', now + 1));
        await eventually(() => tx.isAcked(later.jti), 'the later announcement');
        expect(rx.h.statuses.at(-1)?.state).toBe('recoverable_error');
        expect(tx.setErrs.size).toBe(0);
      },
    );
  });

  it(`SSF 1.0 §4.2.3 (checklist SET-15, SSF-12): a stream-updated event carrying a member it does not define (a pre-Final subject) is taken, the member ignored, not refused (${mode})`, async () => {
    await module(
      'status-extra-member',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const streamId = tx.streamId as string;
        const stream = { format: 'opaque', id: streamId };
        const claims = tx.claims(
          STREAM_UPDATED,
          { status: 'paused', reason: 'maintenance', subject: stream },
          stream,
        );
        const sent = tx.enqueue(streamId, { jti: claims.jti as string, jwt: await tx.sign(claims) });
        await eventually(() => outcome(tx, mode, sent.jti), 'the announcement answered');
        expect(outcome(tx, mode, sent.jti)).toBe(mode === 'push' ? '202' : 'ack');
        expect(rx.h.statuses.at(-1)).toEqual({
          state: 'recoverable_error',
          reason: 'the transmitter paused the stream: maintenance',
        });
      },
    );
  });

  it(`SSF 1.0 §4.2.1 (checklist SET-13, SSF-12): one event under two alternative URIs (RISC sessions-revoked, CAEP session-revoked) is taken and relayed once; two different events in one SET are still refused (${mode})`, async () => {
    await module(
      'alternative-uris',
      mode,
      () => undefined,
      async (tx, rx) => {
        await verified(tx);
        const streamId = tx.streamId as string;
        const now = Math.floor(Date.now() / 1000);
        const sign = async (events: Record<string, unknown>): Promise<QueuedSet> => {
          const claims: Record<string, unknown> = { ...tx.claims(SESSION_REVOKED, {}), events };
          return { jti: claims.jti as string, jwt: await tx.sign(claims) };
        };
        const alternatives = tx.enqueue(
          streamId,
          await sign({
            [`${RISC}sessions-revoked`]: {},
            [SESSION_REVOKED]: { event_timestamp: now, initiating_entity: 'policy' },
          }),
        );
        const different = tx.enqueue(
          streamId,
          await sign({ [SESSION_REVOKED]: {}, [`${CAEP}session-presented`]: {} }),
        );
        await eventually(
          () => outcome(tx, mode, alternatives.jti) && outcome(tx, mode, different.jti),
          'both SETs answered',
        );
        expect(outcome(tx, mode, alternatives.jti)).toBe(mode === 'push' ? '202' : 'ack');
        expect(outcome(tx, mode, different.jti)).toBe(mode === 'push' ? '400' : 'invalid_request');
        expect(rx.h.emitted.map((e) => [e.sourceRecordId, e.type, e.claims])).toEqual([
          [alternatives.jti, SESSION_REVOKED, { event_timestamp: now, initiating_entity: 'policy' }],
        ]);
      },
    );
  });
});

describe('the transmitter’s JWKS', () => {
  it('request_timeout (documented to cover JWKS requests) governs the JWKS fetch: a JWKS answered after 5.5 s is used with request_timeout 20s, not cut off at the core’s 5 s', async () => {
    await module(
      'jwks-slow',
      'poll',
      (tx) => {
        tx.jwksDelayMs = 5_500;
      },
      async (tx, rx) => {
        await eventually(() => tx.streamId, 'the stream');
        const sent = tx.enqueue(tx.streamId as string, await tx.event(SESSION_REVOKED));
        await eventually(() => tx.isAcked(sent.jti), 'the SET verified and acknowledged', 20_000);
        expect(rx.h.emitted.map((e) => e.sourceRecordId)).toEqual([sent.jti]);
      },
      { verify_on_start: false, request_timeout: '20s' },
    );
  }, 30_000);

  it('the JWKS is read only up to 512 KiB, like the core’s JWKS fetcher: a 1 MiB document is not used, the SET answered retryable (503), never accepted', async () => {
    await module(
      'jwks-large',
      'push',
      (tx) => {
        tx.jwksPadding = 1024 * 1024;
      },
      async (tx, rx) => {
        await eventually(() => tx.streamId, 'the stream');
        const sent = tx.enqueue(tx.streamId as string, await tx.event(SESSION_REVOKED));
        await eventually(() => tx.push(sent.jti), 'the push answered');
        expect(tx.push(sent.jti)?.status).toBe(503);
        expect(tx.push(sent.jti)?.body).toMatch(/JWKS/);
        expect(rx.h.emitted).toEqual([]);
      },
      { verify_on_start: false },
    );
  });
});
