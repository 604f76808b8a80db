/**
 * A real bridge for transmitter tests: the fastify server with the transmitter mounted, listening
 * on 127.0.0.1, a real store (SQLite in a temp directory, or a PostgreSQL schema), the pipeline
 * and the delivery engine, signing with a real RSA key. Assembled here the way the composition
 * root assembles it.
 */
import type { Principal } from '../../core/transmitter/auth.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import type { EventDraft, Logger } from '../../core/plugin-api/types.ts';
import { createServer } from '../../core/http/server.ts';
import {
  DeliveryEngine,
  deliveryConfigSchema,
  type DeliveryConfigInput,
  type SetSigner,
} from '../../core/delivery/index.ts';
import { Pipeline, type AcceptResult } from '../../core/pipeline/index.ts';
import { openStore, storageConfigSchema, type Store } from '../../core/storage/index.ts';
import { KeyStore, SetCodec, eventCatalog, parseSubject } from '../../core/ssf/index.ts';
import { subjectKey } from '../../core/ssf/subjects.ts';
import { StatusBoard } from '../../core/runtime/status.ts';
import { MetricsRegistry } from '../../core/telemetry/metrics.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import {
  createTransmitter,
  registerTransmitter,
  transmitterConfigSchema,
  type Transmitter,
  type TransmitterConfigInput,
} from '../../core/transmitter/index.ts';
import type { JwksFetcher } from '../../core/ssf/set/jwks.ts';
import type { Resolver } from '../../core/http/ssrf.ts';

export const READER = { client_id: 'reader', token: 'reader-token-0001', scopes: ['ssf.read'] as const };
export const ALICE = { client_id: 'alice', token: 'alice-token-0001' };
export const BOB = { client_id: 'bob', token: 'bob-token-0001-0001' };

/** ALICE as the service sees her once authenticated, for calls that bypass HTTP. */
export const alice: Principal = {
  clientId: ALICE.client_id,
  scopes: new Set(['ssf.read', 'ssf.manage']),
  audience: ALICE.client_id,
  method: 'static',
};

export const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/';
export const SESSION_REVOKED = `${CAEP}session-revoked`;
export const CREDENTIAL_CHANGE = `${CAEP}credential-change`;
export const DEVICE_COMPLIANCE = `${CAEP}device-compliance-change`;
export const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
export const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';
export const PUSH = 'urn:ietf:rfc:8935';
export const POLL = 'urn:ietf:rfc:8936';

/** Loopback receivers are reachable over http in tests; everything else follows the default policy. */
export const LOOPBACK_SSRF = { allow_http_hosts: ['127.0.0.1'], allow_cidrs: ['127.0.0.0/8'] };

let sharedKeys: Promise<{ keys: KeyStore; dir: string }> | undefined;

/** One RSA signing key per test file (generating one takes a while). */
export function testKeys(): Promise<{ keys: KeyStore; dir: string }> {
  sharedKeys ??= (async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-tx-keys-'));
    return { keys: await KeyStore.generate({ dataDir: dir }), dir };
  })();
  return sharedKeys;
}

export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Signs outbox events with the SET codec (what the composition root does). */
export function codecSigner(codec: SetCodec): SetSigner {
  return {
    async sign(event, destination, delivery) {
      const minted = await codec.mint({
        event: {
          type: event.type,
          subject: event.subject,
          claims: event.claims,
          sourceRecordId: event.sourceRecordId,
          occurredAt: event.occurredAt,
          txn: event.txn,
        },
        sourceInstanceId: event.instanceId,
        destination: {
          id: destination.id,
          audience: destination.target.audience,
          ...(destination.target.profile ? { profile: destination.target.profile } : {}),
        },
        jti: delivery.jti,
      });
      return { ...minted, attempt: delivery.attempt };
    },
  };
}

export interface BridgeOptions {
  transmitter?: TransmitterConfigInput;
  /** Path of the issuer, e.g. `/tenants/a` (default: none). */
  issuerPath?: string;
  /** The origin the issuer names, as for instances behind one load balancer (default: this bridge's). */
  publicOrigin?: string;
  /** A store to use instead of a fresh SQLite file (e.g. PostgreSQL); not closed by the bridge. */
  store?: Store;
  delivery?: DeliveryConfigInput;
  /** Do not run the delivery engine (SETs stay in the outbox). */
  noEngine?: boolean;
  resolve?: Resolver;
  fetchOAuthJwks?: JwksFetcher;
  logger?: Logger;
  /** Instance id in lease rows (scale-out tests run two bridges on one store). */
  instanceId?: string;
  /** Give the transmitter its issuer as a function (known only once the server listens). */
  lazyIssuer?: boolean;
  /** The bridge's clock (default: the real one). */
  clock?: { now(): Date };
  /** Signing keys of its own, e.g. to rotate them (default: keys shared by every test bridge). */
  keys?: KeyStore;
}

export interface Bridge {
  origin: string;
  issuer: string;
  tx: Transmitter;
  store: Store;
  keys: KeyStore;
  app: FastifyInstance;
  engine: DeliveryEngine | undefined;
  pipeline: Pipeline;
  /** The Prometheus text the bridge would serve at /metrics. */
  metricsText(): Promise<string>;
  ingest(
    events: Array<Partial<EventDraft> & { subject: EventDraft['subject'] }>,
    instanceId?: string,
  ): Promise<AcceptResult>;
  close(): Promise<void>;
}

let recordCounter = 0;

/** A valid CAEP session-revoked draft about `email` (interop: non-empty reason_admin). */
export function sessionRevoked(email: string, extra: Partial<EventDraft> = {}): EventDraft {
  recordCounter += 1;
  return {
    type: SESSION_REVOKED,
    subject: { format: 'email', email },
    claims: { initiating_entity: 'admin', reason_admin: { en: 'Admin revoked the session' } },
    sourceRecordId: `rec-${process.pid}-${recordCounter}`,
    ...extra,
  };
}

export async function startBridge(options: BridgeOptions = {}): Promise<Bridge> {
  const logger = options.logger ?? silentLogger();
  const clock = options.clock ?? { now: () => new Date() };
  const port = await freePort();
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${options.publicOrigin ?? origin}${options.issuerPath ?? ''}`;
  const dir = options.store ? undefined : mkdtempSync(join(tmpdir(), 'ssf-tx-'));
  const store =
    options.store ??
    (await openStore(storageConfigSchema.parse({ driver: 'sqlite', synchronous: 'normal' }), {
      dataDir: dir as string,
    }));
  const keys = options.keys ?? (await testKeys()).keys;
  const codec = new SetCodec({ issuer, keys, clock });
  const metrics = new MetricsRegistry({ collectDefault: false });
  const config = transmitterConfigSchema.parse({
    receivers: [READER, ALICE, BOB],
    ssrf: LOOPBACK_SSRF,
    ...options.transmitter,
    streams: { min_verification_interval: '0s', ...options.transmitter?.streams },
  });
  const tx = createTransmitter({
    config,
    issuer: options.lazyIssuer ? () => issuer : issuer,
    store,
    minter: codec,
    keys,
    clock,
    logger,
    metrics,
    ...(options.resolve ? { resolve: options.resolve } : {}),
    ...(options.fetchOAuthJwks ? { fetchOAuthJwks: options.fetchOAuthJwks } : {}),
    ...(options.instanceId ? { instanceId: options.instanceId } : {}),
  });
  const app = createServer({
    logger,
    metrics,
    status: new StatusBoard(clock),
    bodyLimitBytes: 1_048_576,
    requestTimeoutMs: 60_000,
    inbound: () => undefined,
    isConfiguredInbound: () => false,
  });
  registerTransmitter(app, tx);
  const deliveryConfig = deliveryConfigSchema.parse({
    poll_interval: '50ms',
    retry: { initial_interval: '50ms', max_interval: '500ms' },
    maintenance_interval: '1h',
    ...options.delivery,
  });
  const engine = options.noEngine
    ? undefined
    : new DeliveryEngine({
        store,
        signer: codecSigner(codec),
        config: deliveryConfig,
        clock,
        logger,
        ...(options.instanceId ? { owner: options.instanceId } : {}),
      });
  const pipeline = new Pipeline({
    store,
    delivery: deliveryConfig,
    routes: [{ from: '*', to: [], streams: true }],
    validateEvent: (draft) => {
      try {
        const uri = eventCatalog.resolve(draft.type);
        eventCatalog.parseClaims(uri, draft.claims);
        return {
          ok: true,
          event: { ...draft, type: uri, subject: parseSubject(draft.subject, { lenient: true }) },
        };
      } catch (err) {
        return { ok: false, problems: [{ path: '', message: (err as Error).message }] };
      }
    },
    subjectKey,
    // Routed as core/runtime/bridge.ts routes: through the transmitter's routing index.
    streamRoutes: (event) => tx.routeEvent(event),
    clock,
    logger,
    ...(engine ? { notify: (ids: string[]) => engine.notify(ids) } : {}),
  });
  await tx.start();
  const disconnect = engine ? tx.connectDeliveryEngine(engine) : () => undefined;
  engine?.start();
  await app.listen({ host: '127.0.0.1', port });
  return {
    origin,
    issuer,
    tx,
    store,
    keys,
    app,
    engine,
    pipeline,
    metricsText: async () => (await metrics.render()).body,
    ingest: (events, instanceId = 'hr') =>
      pipeline.accept(
        instanceId,
        events.map((e) => ({ ...sessionRevoked('x@example.com'), ...e }) as EventDraft),
      ),
    async close() {
      disconnect();
      await tx.stop(1_000);
      await engine?.stop(1_000);
      await app.close();
      if (!options.store) {
        await store.close();
        rmSync(dir as string, { recursive: true, force: true });
      }
    },
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  text: string;
  json: any;
}

export interface CallOptions {
  token?: string;
  body?: unknown;
  /** Sent as is (e.g. broken JSON). */
  raw?: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
}

/** One HTTP call to the bridge, with a bearer token and a JSON body. */
export async function call(
  base: string,
  method: string,
  path: string,
  options: CallOptions = {},
): Promise<Answer> {
  const url = new URL(path, base.endsWith('/') ? base : `${base}/`);
  if (path.startsWith('http')) url.href = path;
  for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
    headers['content-type'] ??= 'application/json';
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(url, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  let json: unknown;
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, text, json };
}

export interface LogEntry {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string;
}

/** A logger that keeps every entry (its children's too), for tests that look at what was logged. */
export function recordingLogger(entries: LogEntry[] = []): Logger & { entries: LogEntry[] } {
  const make = (bindings: Record<string, unknown>): Logger & { entries: LogEntry[] } => {
    const at =
      (level: LogEntry['level']) =>
      (obj: object | string, msg?: string): void => {
        entries.push(
          typeof obj === 'string'
            ? { level, fields: { ...bindings }, msg: obj }
            : { level, fields: { ...bindings, ...(obj as Record<string, unknown>) }, msg: msg ?? '' },
        );
      };
    return {
      entries,
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
}

/** Waits until `check` returns a value other than undefined/false, or fails after `ms`. */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  ms = 5_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** Decodes a compact JWS without verifying it. */
export function decodeJwt(jwt: string): { header: Record<string, unknown>; payload: Record<string, any> } {
  const [h, p] = jwt.split('.');
  return {
    header: JSON.parse(Buffer.from(h as string, 'base64url').toString('utf8')) as Record<string, unknown>,
    payload: JSON.parse(Buffer.from(p as string, 'base64url').toString('utf8')) as Record<string, any>,
  };
}

export interface ReceivedPush {
  /** Path and query the SET was pushed to. */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  at: number;
}

export interface PushReceiver {
  url: string;
  received: ReceivedPush[];
  /** Answers the next pushes with these (status, body); then 202. */
  answer(...answers: Array<{ status: number; body?: unknown }>): void;
  close(): Promise<void>;
}

/** A minimal RFC 8935 receiver on loopback that records every push and answers 202. */
export async function startPushReceiver(path = '/push'): Promise<PushReceiver> {
  const { createServer: createHttpServer } = await import('node:http');
  const received: ReceivedPush[] = [];
  const script: Array<{ status: number; body?: unknown }> = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        path: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      });
      const next = script.shift() ?? { status: 202 };
      if (next.body === undefined) {
        res.writeHead(next.status).end();
      } else {
        res.writeHead(next.status, { 'content-type': 'application/json', 'content-language': 'en' });
        res.end(JSON.stringify(next.body));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    answer: (...answers) => script.push(...answers),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Checks a SET the way the conformance suite does (signature against the bridge's published JWKS,
 * typ, iss, aud, iat, jti, sub_id, one event, no sub, no exp) and returns its payload.
 */
export async function checkSet(
  bridge: { origin: string; issuer: string },
  jwt: string,
  audience: string | string[],
  algorithms = ['RS256'],
): Promise<Record<string, any>> {
  const { compactVerify, createLocalJWKSet } = await import('jose');
  const metadata = (await call(bridge.origin, 'GET', wellKnownPath(bridge.issuer))).json as {
    jwks_uri: string;
  };
  const jwks = (await call(bridge.origin, 'GET', metadata.jwks_uri)).json;
  const { protectedHeader, payload } = await compactVerify(jwt, createLocalJWKSet(jwks), { algorithms });
  if (protectedHeader.typ !== 'secevent+jwt') throw new Error(`typ is ${protectedHeader.typ}`);
  if (typeof protectedHeader.kid !== 'string') throw new Error('no kid');
  const claims = JSON.parse(new TextDecoder().decode(payload)) as Record<string, any>;
  if (claims.iss !== bridge.issuer) throw new Error(`iss ${claims.iss} is not the metadata issuer`);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  const wanted = Array.isArray(audience) ? audience : [audience];
  if (!wanted.every((a) => aud.includes(a))) throw new Error(`aud ${JSON.stringify(claims.aud)}`);
  if (typeof claims.iat !== 'number' || claims.iat > Date.now() / 1000 + 5)
    throw new Error('iat missing or in the future');
  if (typeof claims.jti !== 'string' || claims.jti.length === 0) throw new Error('jti missing');
  if ('sub' in claims || 'exp' in claims) throw new Error('sub or exp present');
  if (typeof claims.sub_id !== 'object' || typeof claims.sub_id.format !== 'string')
    throw new Error('sub_id missing');
  if (Object.keys(claims.events ?? {}).length !== 1) throw new Error('not exactly one event');
  return claims;
}

/** The inserted well-known path of an issuer (SSF 1.0 §7.2.1). */
export function wellKnownPath(issuer: string): string {
  const path = new URL(issuer).pathname.replace(/\/$/, '');
  return `/.well-known/ssf-configuration${path}`;
}
