/**
 * The SSF 1.0 transmitter as one core service: it owns the routing index, the stream
 * destinations, the push client, the control channel and the background work (sync with other
 * instances, inactivity sweep). The HTTP surface is mounted with registerTransmitter().
 */
import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import type { Clock, Logger, SubjectIdentifier } from '../plugin-api/types.ts';
import { ConfigError } from '../plugin-api/errors.ts';
import type { Store, StreamRecord, StreamStatus } from '../storage/types.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import type { Resolver } from '../http/ssrf.ts';
import { eventCatalog, type EventCatalog } from '../ssf/events/catalog.ts';
import type { JwksFetcher } from '../ssf/set/jwks.ts';
import { ReceiverAuthenticator } from './auth.ts';
import type { TransmitterConfig } from './config.ts';
import {
  receiverTargets,
  supportedEventTypes,
  transmitterMetrics,
  type TransmitterContext,
} from './context.ts';
import { ControlChannel, type SetMinter } from './control.ts';
import { StreamDelivery } from './delivery.ts';
import { StreamDestinations, type DestinationRegistry } from './destinations.ts';
import {
  WELL_KNOWN_SSF,
  transmitterMetadata,
  transmitterUrls,
  type TransmitterMetadata,
  type TransmitterUrls,
} from './metadata.ts';
import { QueueSignal } from './poll.ts';
import { PushClient } from './push.ts';
import { RoutingIndex } from './routing.ts';
import { StreamService, type StatusView } from './service.ts';
import type { RenderContext, RenderedStream } from './stream-model.ts';
import { StreamSync } from './sync.ts';

export interface TransmitterDeps {
  config: TransmitterConfig;
  /**
   * The issuer: metadata `issuer`, stream `iss`, and the `iss` the minter puts in every SET. A
   * function when it is only known once the server listens (an issuer without a path, such as the
   * default http://HOST:PORT); it is first called when a request or start() needs it.
   */
  issuer: string | (() => string);
  store: Store;
  /** Mints verification and stream-updated SETs (core/ssf SetCodec built with the same issuer). */
  minter: SetMinter;
  /** The signing keys' public JWKS (core/ssf KeyStore). */
  keys: { jwks(): { keys: unknown[] } };
  clock: Clock;
  logger: Logger;
  metrics: MetricsRegistry;
  catalog?: EventCatalog;
  /** This instance's identity in lease rows. */
  instanceId?: string;
  /** DNS for the SSRF policy (tests pin answers). */
  resolve?: Resolver;
  /** Fetches the authorization server's JWKS (tests inject one). */
  fetchOAuthJwks?: JwksFetcher;
}

/**
 * Whether a URL's host (`URL.hostname`, which WHATWG URL parsing has normalised: IPv4 in dotted
 * decimal, IPv6 bracketed and compressed) is this machine's loopback: localhost, 127.0.0.0/8,
 * ::1 or an IPv4-mapped 127.x address.
 */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return isIP(host) === 6 && (host === '::1' || /^::ffff:7f[0-9a-f]{2}:/.test(host));
}

/**
 * How often push streams' control queues are looked at again, so control events queued by an
 * instance that stopped, or left waiting for a retry, still go out.
 */
const CONTROL_SWEEP_MS = 60_000;

export class Transmitter {
  readonly name = 'transmitter';
  /** Where the routes are mounted: the issuer's path, and the metadata path inserted before it. */
  readonly mount: { basePath: string; wellKnownPath: string };
  readonly auth: ReceiverAuthenticator;
  readonly service: StreamService;
  readonly delivery: StreamDelivery;
  readonly destinations: StreamDestinations;
  readonly logger: Logger;
  readonly #ctx: TransmitterContext;
  readonly #deps: TransmitterDeps;
  readonly #sync: StreamSync;
  readonly #control: ControlChannel;
  readonly #push: PushClient;
  readonly #timers: NodeJS.Timeout[] = [];
  #running = false;
  #ticking: Promise<void> | undefined;
  #urls: TransmitterUrls | undefined;
  #metadata: TransmitterMetadata | undefined;

  constructor(deps: TransmitterDeps) {
    this.#deps = deps;
    const { config, clock, logger } = deps;
    const catalog = deps.catalog ?? eventCatalog;
    const basePath = typeof deps.issuer === 'string' ? transmitterUrls(deps.issuer).basePath : '';
    this.mount = { basePath, wellKnownPath: `${WELL_KNOWN_SSF}${basePath}` };
    const supported = supportedEventTypes(config, catalog);
    const log = logger.child({ component: 'transmitter' });
    const urls = () => this.urls;
    this.logger = log;
    const render: RenderContext = {
      get issuer() {
        return urls().issuer;
      },
      supported,
      supportedSet: new Set(supported),
      minVerificationInterval: Math.ceil(config.streams.min_verification_interval / 1000),
      ...(config.streams.inactivity_timeout === undefined
        ? {}
        : { inactivityTimeout: Math.ceil(config.streams.inactivity_timeout / 1000) }),
      pollEndpoint: (streamId) => urls().pollEndpoint(streamId),
    };
    this.#ctx = {
      config,
      store: deps.store,
      clock,
      logger: log,
      index: new RoutingIndex(),
      signal: new QueueSignal(),
      metrics: transmitterMetrics(deps.metrics),
      render,
      targetOf: receiverTargets(config, render),
      holder: deps.instanceId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`,
    };
    const policy = deps.resolve ? { ...config.ssrf, resolve: deps.resolve } : config.ssrf;
    this.#push = new PushClient({
      policy,
      timeoutMs: config.push.timeout,
      maxSockets: config.push.max_sockets,
    });
    this.auth = new ReceiverAuthenticator(config, {
      clock,
      logger: log,
      usedProofs: deps.store.oneTimeIds,
      ...(deps.fetchOAuthJwks ? { fetcher: deps.fetchOAuthJwks } : {}),
    });
    this.#sync = new StreamSync(this.#ctx);
    const onVerificationFailed = (streamId: string, description: string) =>
      this.#verificationFailed(streamId, description);
    this.#control = new ControlChannel({
      ctx: this.#ctx,
      minter: deps.minter,
      push: this.#push,
      onVerificationFailed,
    });
    this.service = new StreamService({
      ctx: this.#ctx,
      sync: this.#sync,
      control: this.#control,
      ...(deps.resolve ? { resolve: deps.resolve } : {}),
    });
    this.delivery = new StreamDelivery({
      ctx: this.#ctx,
      service: this.service,
      push: this.#push,
      refresh: (jwt) => deps.minter.refresh(jwt),
      handOver: (streamId) => this.#control.handOver(streamId),
      onVerificationFailed,
      onPausedUnseen: (streamId) => {
        // Paused at another instance: sync now, so the engine holds the stream's deliveries
        // (isPaused) instead of trying each and finding it paused.
        if (this.#running && this.#ctx.index.get(streamId)?.status !== 'paused') void this.#tick();
      },
    });
    this.destinations = new StreamDestinations(this.#ctx, this.delivery, this.#sync);
  }

  /** Every URL of the transmitter, derived from the issuer. */
  get urls(): TransmitterUrls {
    if (!this.#urls) {
      const issuer = typeof this.#deps.issuer === 'string' ? this.#deps.issuer : this.#deps.issuer();
      const urls = transmitterUrls(issuer);
      if (urls.basePath !== this.mount.basePath) {
        throw new ConfigError(
          `the issuer ${issuer} has a path; give it as a string when the transmitter is created`,
          {
            code: 'SSF_ERR_TRANSMITTER_ISSUER_PATH',
          },
        );
      }
      this.#urls = urls;
    }
    return this.#urls;
  }

  /** The Transmitter Configuration Metadata document (SSF 1.0 §7.1). */
  get metadata(): TransmitterMetadata {
    this.#metadata ??= transmitterMetadata(this.urls, this.#ctx.config.streams.default_subjects);
    return this.#metadata;
  }

  /** False when `transmitter.enabled` is false: nothing is served or started. */
  get enabled(): boolean {
    return this.#ctx.config.enabled;
  }

  /** The public JWKS of the signing keys. */
  jwks(): { keys: unknown[] } {
    return this.#deps.keys.jwks();
  }

  /** Loads streams, provisions configured ones and starts background work. */
  async start(): Promise<void> {
    if (this.#running || !this.enabled) return;
    await this.#sync.loadAll();
    await this.service.provision();
    this.#running = true;
    const { config } = this.#ctx;
    this.#every(config.sync_interval, () => this.#tick());
    this.#every(CONTROL_SWEEP_MS, () => this.#drainControlQueues());
    const timeout = config.streams.inactivity_timeout;
    if (timeout !== undefined) {
      this.#every(Math.max(1_000, Math.min(timeout / 4, 60_000)), () => this.#sweepInactive());
    }
    this.#drainControlQueues();
    this.#ctx.logger.info(
      { issuer: this.urls.issuer, streams: this.#ctx.index.size, metadata: this.urls.wellKnownPath },
      'SSF transmitter started',
    );
    this.#warnPlainHttpIssuer();
  }

  /**
   * SSF 1.0 §7.1 (checklist SSF-18): every endpoint the metadata lists must be https, and they
   * all derive from the issuer. A plain-http issuer is fine on loopback (the quickstart, tests),
   * but an issuer other hosts are to use, such as the default http://HOST:PORT with a public
   * server.host, lists endpoints receivers must refuse. Not refused (the quickstart would
   * break): warned about once per start.
   */
  #warnPlainHttpIssuer(): void {
    const issuer = this.urls.issuer;
    const url = new URL(issuer);
    if (url.protocol === 'https:' || isLoopbackHost(url.hostname)) return;
    this.#ctx.logger.warn(
      { issuer },
      `the SSF transmitter's issuer ${issuer} is not an https URL, so neither are the endpoints its metadata lists (SSF 1.0 requires https; receivers refuse them): set issuer to the https URL receivers reach the bridge at, e.g. through a TLS-terminating proxy`,
    );
  }

  /** Releases long polls, stops background work and closes push connections. */
  async stop(deadlineMs = 5_000): Promise<void> {
    this.#running = false;
    for (const timer of this.#timers.splice(0)) clearInterval(timer);
    this.#ctx.signal.close();
    this.#control.stop();
    const deadline = new Promise((resolve) => setTimeout(resolve, deadlineMs).unref());
    await Promise.race([Promise.all([this.#control.idle(), this.#ticking]), deadline]);
    this.#push.close();
  }

  /** Releases waiting long polls now (the HTTP server is closing). */
  releaseLongPolls(): void {
    this.#ctx.signal.close();
  }

  /** Runs `task` every `ms`, never overlapping itself. */
  #every(ms: number, task: () => Promise<void> | void): void {
    let busy = false;
    const timer = setInterval(() => {
      if (!this.#running || busy) return;
      busy = true;
      void Promise.resolve()
        .then(task)
        .catch((err: unknown) => this.#ctx.logger.warn({ err }, 'transmitter background task failed'))
        .finally(() => (busy = false));
    }, ms);
    timer.unref();
    this.#timers.push(timer);
  }

  async #tick(): Promise<void> {
    if (this.#ticking) return;
    this.#ticking = this.#sync.tick().finally(() => (this.#ticking = undefined));
    await this.#ticking;
  }

  #drainControlQueues(): void {
    for (const stream of this.#ctx.index.streams())
      if (stream.method === 'push') this.#control.drain(stream.streamId);
  }

  async #sweepInactive(): Promise<void> {
    const { store, clock, holder } = this.#ctx;
    const lease = 'transmitter:inactivity';
    if (!(await store.leases.tryAcquire(lease, holder, 60_000, clock.now()))) return;
    try {
      await this.service.sweepInactive();
    } finally {
      await store.leases.release(lease, holder);
    }
  }

  #verificationFailed(streamId: string, description: string): void {
    const action = this.#ctx.config.streams.verification_failure_action;
    if (action === 'none') return;
    const status: StreamStatus = action === 'pause' ? 'paused' : 'disabled';
    void this.service
      .changeStatus(streamId, status, `verification failed: ${description}`.slice(0, 200), 'transmitter')
      .catch((err: unknown) =>
        this.#ctx.logger.warn({ err, streamId }, 'could not change the status after a failed verification'),
      );
  }

  // ------------------------------------------------------------------------------------------
  // For the pipeline and the delivery engine

  /**
   * The stream destination ids (`stream:<id>`) an event goes to: every enabled stream (and paused
   * one with room in its hold) whose events_delivered contain the event's type and whose subjects
   * match its subject. Index lookups only; no I/O.
   */
  routeEvent(event: { type: string; subject: SubjectIdentifier }): string[] {
    const { index, config, metrics, logger } = this.#ctx;
    return index.route(event.type, event.subject, {
      defaultSubjects: config.streams.default_subjects,
      pausedHoldLimit: config.streams.paused_hold_limit,
      onHoldFull: (streamId) => {
        metrics.dropped.inc({ reason: 'hold_limit' });
        logger.debug({ streamId, type: event.type }, 'paused stream hold is full; event dropped');
      },
    });
  }

  /** Registers the streams with a delivery engine and keeps them in step; returns a disconnect. */
  connectDeliveryEngine(engine: DestinationRegistry): () => void {
    return this.destinations.connect(engine);
  }

  // ------------------------------------------------------------------------------------------
  // For operators (CLI, admin API)

  /** Every stream with its owner, status and configuration. */
  async listStreams(): Promise<Array<{ clientId: string; status: StatusView; config: RenderedStream }>> {
    const records = await this.#ctx.store.streams.list();
    return records.map((r) => ({
      clientId: r.clientId,
      status: {
        stream_id: r.streamId,
        status: r.status,
        ...(r.statusReason ? { reason: r.statusReason } : {}),
      },
      config: this.service.render(r),
    }));
  }

  /** One stream's configuration as its receiver reads it (GET /ssf/streams). */
  renderStream(record: StreamRecord): RenderedStream {
    return this.service.render(record);
  }

  /** An operator changes a stream's status; the receiver gets a stream-updated event. */
  async setStreamStatus(streamId: string, status: StreamStatus, reason?: string): Promise<StatusView> {
    const record = await this.service.changeStatus(streamId, status, reason, 'transmitter');
    return {
      stream_id: record.streamId,
      status: record.status,
      ...(record.statusReason ? { reason: record.statusReason } : {}),
    };
  }

  /** SETs the receiver reported invalid (poll setErrs) or refused (control events it was pushed). */
  streamErrors(streamId: string): ReturnType<StreamDelivery['errors']> {
    return this.delivery.errors(streamId);
  }

  /** Deletes a stream as an operator (its receiver can create a new one). */
  deleteStream(streamId: string): Promise<void> {
    return this.service.remove(streamId);
  }
}

export function createTransmitter(deps: TransmitterDeps): Transmitter {
  return new Transmitter(deps);
}
