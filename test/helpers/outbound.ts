/**
 * Runs one outbound connector the way the bridge does, for tests against loopback fakes of its
 * target: the real connector context (HTTP client factory, checkpoints, metrics, status), and
 * real SETs — built from an event draft, shaped by the connector's target profile after its
 * prepare() step, and signed with a key whose JWKS a fake receiver can fetch. Logs are kept
 * without the production logger's scrubbing, so a test sees exactly what a connector logged.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { ResolvedInstance } from '../../core/config/index.ts';
import { createHttpClientFactory } from '../../core/http/client.ts';
import {
  classOf,
  type ConnectorDefinition,
  type DeliveryReceipt,
  type EventDraft,
  type OutboundConnector,
  type PermanentError,
  type SignedSet,
} from '../../core/plugin-api/index.ts';
import { buildConnectorContext } from '../../core/runtime/context.ts';
import { staticDeviceDirectory } from '../../core/devices/owners.ts';
import { StatusBoard } from '../../core/runtime/status.ts';
import { SchedulerService } from '../../core/scheduling/scheduler.ts';
import {
  KeyStore,
  SetCodec,
  SetVerificationError,
  defaultKeysConfig,
  eventCatalog,
  generateKeyMaterial,
  localJwks,
  verifySet,
  type VerifiedSet,
} from '../../core/ssf/index.ts';
import { MetricsRegistry } from '../../core/telemetry/metrics.ts';
import type { MockResponse, MockServer, RecordedRequest } from '../../core/plugin-api/testing/index.ts';
import { memoryOneTimeIds } from '../../core/runtime/ports.ts';

export const BRIDGE_ISSUER = 'https://signals.example.com/';

let keys: Promise<KeyStore> | undefined;

/** One RS256 signing key per test file (what Okta's example providers use). */
export function bridgeKeys(): Promise<KeyStore> {
  keys ??= (async () => {
    const material = await generateKeyMaterial('RS256');
    const config = defaultKeysConfig({ algorithm: 'RS256', secrets: [JSON.stringify(material.privateJwk)] });
    return KeyStore.open({ dataDir: 'unused-with-configured-keys', config });
  })();
  return keys;
}

export async function bridgeJwks() {
  return (await bridgeKeys()).jwks();
}

export type Outcome =
  | { ok: true; receipt: DeliveryReceipt; set: SignedSet }
  | {
      ok: false;
      class: 'retryable' | 'permanent' | 'credentials' | 'config' | 'not_connected';
      error: Error & { retryAfterMs?: number; code?: string };
      set: SignedSet | undefined;
    };

export interface DeliverOptions {
  attempt?: number;
  sourceRecordId?: string;
  signal?: AbortSignal;
}

/** Verifies a SET as a receiver with our JWKS would; the RFC 8935 code when it refuses. */
export async function receiverVerify(
  jwt: string,
  expect: { issuer?: string | null; audience: string | string[] | null },
): Promise<{ ok: true; set: VerifiedSet } | { ok: false; err: string; description: string }> {
  try {
    const set = await verifySet(jwt, {
      keys: localJwks(await bridgeJwks()),
      issuer: expect.issuer === undefined ? BRIDGE_ISSUER : expect.issuer,
      audience: expect.audience,
      legacySubject: true,
    });
    return { ok: true, set };
  } catch (err) {
    if (err instanceof SetVerificationError) return { ok: false, err: err.err, description: err.description };
    throw err;
  }
}

/**
 * An instance of `definition` with `config` (as an operator writes it), started, with helpers
 * to deliver events through prepare → sign → deliver exactly as the delivery engine does.
 */
export async function outboundHarness(
  definition: ConnectorDefinition,
  rawConfig: unknown,
  instanceId = 'dest',
) {
  if (definition.kind !== 'outbound')
    throw new Error(`${definition.manifest.id} is not an outbound connector`);
  const config = definition.configSchema.parse(rawConfig);
  const lines: string[] = [];
  const logger = pino(
    { level: 'trace', base: { service: 'ssf-bridge' } },
    new Writable({
      write(chunk, _enc, done) {
        lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    }),
  );
  const clock = { now: () => new Date() };
  const metrics = new MetricsRegistry({ collectDefault: false });
  const status = new StatusBoard(clock);
  status.register(instanceId, definition.manifest.id, 'outbound');
  const stored = new Map<string, unknown>();
  const abort = new AbortController();
  const resolved: ResolvedInstance = {
    id: instanceId,
    kind: 'outbound',
    definition,
    enabled: true,
    config,
    path: 'outbound[0]',
  };
  const ctx = buildConnectorContext(
    resolved,
    {
      logger,
      metrics,
      clock,
      status,
      scheduler: new SchedulerService({ logger, metrics }),
      httpFactoryMaker: (deps) => createHttpClientFactory(deps),
      checkpoints: {
        getCheckpoint: async (id, name) => structuredClone(stored.get(`${id}/${name}`)),
        setCheckpoint: async (id, name, value) => void stored.set(`${id}/${name}`, structuredClone(value)),
      },
      devices: staticDeviceDirectory(),
      oneTimeIds: memoryOneTimeIds(),
      sink: {
        accept: async () => {
          throw new Error('an outbound connector emits nothing');
        },
      },
    },
    abort,
  );
  const connector = definition.create(ctx, config) as OutboundConnector;
  await connector.start(abort.signal);
  const codec = new SetCodec({ issuer: BRIDGE_ISSUER, keys: await bridgeKeys() });

  /** prepare() then build and sign, as the runtime's signer does; throws what signing throws. */
  async function sign(draft: EventDraft, options: DeliverOptions = {}): Promise<SignedSet> {
    const withRecord = { ...draft, sourceRecordId: options.sourceRecordId ?? draft.sourceRecordId };
    const prepared = connector.prepare
      ? await connector.prepare(withRecord, AbortSignal.timeout(30_000))
      : withRecord;
    const minted = await codec.mint({
      event: prepared,
      sourceInstanceId: 'source',
      destination: {
        id: instanceId,
        audience: connector.target.audience,
        profile: connector.target.profile,
        profileOptions: connector.target.profileOptions,
      },
    });
    return {
      ...minted,
      attempt: options.attempt ?? 0,
      source: { instance: 'source', connector: 'events-api', record: prepared.sourceRecordId },
    };
  }

  /** One delivery attempt of `draft`, with its outcome class instead of a throw. */
  async function attempt(draft: EventDraft, options: DeliverOptions = {}): Promise<Outcome> {
    let set: SignedSet | undefined;
    try {
      set = await sign(draft, options);
      const receipt = await connector.deliver(set, options.signal ?? AbortSignal.timeout(30_000));
      return { ok: true, receipt, set };
    } catch (err) {
      const cls = classOf(err);
      const credentials = cls === 'permanent' && (err as PermanentError).authFailure;
      return { ok: false, class: credentials ? 'credentials' : cls, error: err as Error, set };
    }
  }

  async function counter(name: string, labels: Record<string, string> = {}): Promise<number> {
    const all = await metrics.registry.getMetricsAsJSON();
    const metric = all.find((m) => m.name === `ssf_bridge_connector_${name}`);
    if (!metric) return 0;
    return (metric.values as Array<{ labels: Record<string, unknown>; value: number }>)
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .reduce((sum, v) => sum + v.value, 0);
  }

  return {
    connector,
    config,
    lines,
    /** Everything logged so far, as one string. */
    logText: () => lines.join('\n'),
    checkpoints: stored,
    status: () => status.get(instanceId),
    counter,
    sign,
    attempt,
    async stop() {
      abort.abort(new Error('instance stopping'));
      await connector.stop(1_000);
    },
  };
}

export type OutboundHarness = Awaited<ReturnType<typeof outboundHarness>>;

/** Short names of every catalog event type whose name starts with one of `prefixes` (e.g. `caep.`). */
export function catalogShortNames(...prefixes: string[]): string[] {
  return eventCatalog
    .list()
    .map((d) => d.shortName)
    .filter((name) => prefixes.some((p) => name.startsWith(p)));
}

/** Resolves after `ms`; used by fakes that answer slowly. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export interface ReceivedSet {
  headers: RecordedRequest['headers'];
  jwt: string;
  set: VerifiedSet;
}

/**
 * An RFC 8935 receiver on `path` of a loopback mock server: checks the content type and the
 * Authorization it expects, verifies the SET against the bridge's JWKS (signature, typ, iss,
 * aud, claims, event schema), answers 202 with an empty body, or 400 `{err, description}`.
 */
export function ssfReceiver(
  server: MockServer,
  options: { path: string; audience: string | string[]; authorization?: string },
): ReceivedSet[] {
  const received: ReceivedSet[] = [];
  server.on('POST', options.path, async (req) => {
    if (options.authorization !== undefined && req.headers['authorization'] !== options.authorization) {
      return { status: 401, headers: { 'www-authenticate': 'Bearer' } };
    }
    if (req.headers['content-type'] !== 'application/secevent+jwt') {
      return rfc8935('invalid_request', 'Content-Type must be application/secevent+jwt');
    }
    const verified = await receiverVerify(req.body, { audience: options.audience });
    if (!verified.ok) return rfc8935(verified.err, verified.description);
    received.push({ headers: req.headers, jwt: req.body, set: verified.set });
    return { status: 202 };
  });
  return received;
}

export function rfc8935(err: string, description: string): MockResponse {
  return {
    status: 400,
    headers: { 'content-type': 'application/json', 'content-language': 'en' },
    body: { err, description },
  };
}
