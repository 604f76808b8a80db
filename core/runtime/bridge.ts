import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { fastifyTrustProxy, type LoadedConfig } from '../config/index.ts';
import { createRootContainer } from '../di/container.ts';
import { DeliveryEngine, type Destination } from '../delivery/index.ts';
import { createHttpClientFactory } from '../http/client.ts';
import { createServer } from '../http/server.ts';
import { Pipeline, EventValidationError } from '../pipeline/index.ts';
import type { Clock, EmitResult, Logger } from '../plugin-api/types.ts';
import { PermanentError } from '../plugin-api/errors.ts';
import { SchedulerService } from '../scheduling/scheduler.ts';
import { KeyStore, SetCodec, subjectKey, findEventType } from '../ssf/index.ts';
import { openStore, type Store } from '../storage/index.ts';
import { LeaderElection } from '../storage/leader.ts';
import { createTransmitter, registerTransmitter, type Transmitter } from '../transmitter/index.ts';
import { registerBridgeAdmin } from '../admin/index.ts';
import { registerConsole } from '../console/serve.ts';
import { hostname } from 'node:os';
import { randomUUID } from 'node:crypto';
import { createLogger, type RootLogger } from '../telemetry/logger.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import { Host, type CoreService } from './host.ts';
import type { CheckpointStore, EventSink } from './ports.ts';
import { codecSigner, validateDraft } from './ssf-adapters.ts';
import { StatusBoard } from './status.ts';
import { deliveryObserver } from './observer.ts';
import { createDeviceDirectory } from '../devices/owners.ts';

/** Default lifetime of the scheduler leader lease on PostgreSQL (`storage.leader_lease`). */
export const LEADER_LEASE_MS = 15_000;

export interface BridgeOptions {
  logger?: RootLogger;
  clock?: Clock;
}

/**
 * The composition root: builds every core service from the validated config, wires them, and
 * runs them in order. Start: store → keys → HTTP server (health answers during start-up) →
 * outbound connectors → delivery engine → inbound connectors. Stop: the reverse, then the store.
 */
export class Bridge {
  readonly config: LoadedConfig;
  readonly logger: RootLogger;
  readonly metrics = new MetricsRegistry();
  readonly status: StatusBoard;
  readonly clock: Clock;
  readonly dataDir: string;
  #store: Store | undefined;
  #keys: KeyStore | undefined;
  #server: FastifyInstance | undefined;
  #host: Host | undefined;
  #pipeline: Pipeline | undefined;
  #engine: DeliveryEngine | undefined;
  #scheduler: SchedulerService | undefined;
  #stopping: Promise<void> | undefined;
  /** Aborted by stop(): ends what start() may still be waiting for (the SQLite writer lock). */
  readonly #starting = new AbortController();
  #url: string | undefined;
  #election: LeaderElection | undefined;
  #transmitter: Transmitter | undefined;
  #codec: SetCodec | undefined;
  /** This process's identity in lease rows, unique among instances sharing a database. */
  readonly instanceName = `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;

  constructor(config: LoadedConfig, options: BridgeOptions = {}) {
    this.config = config;
    this.logger = options.logger ?? createLogger({ level: config.root.telemetry.log_level });
    this.clock = options.clock ?? { now: () => new Date() };
    this.status = new StatusBoard(this.clock);
    this.dataDir = resolve(config.root.data_dir);
  }

  /** Base URL the server listens on, once started. */
  get url(): string {
    if (!this.#url) throw new Error('the bridge is not listening');
    return this.#url;
  }

  get issuer(): string {
    return this.config.root.issuer ?? this.url;
  }

  get store(): Store {
    if (!this.#store) throw new Error('the bridge has not started');
    return this.#store;
  }

  get keys(): KeyStore {
    if (!this.#keys) throw new Error('the bridge has not started');
    return this.#keys;
  }

  get pipeline(): Pipeline {
    if (!this.#pipeline) throw new Error('the bridge has not started');
    return this.#pipeline;
  }

  get deliveryEngine(): DeliveryEngine {
    if (!this.#engine) throw new Error('the bridge has not started');
    return this.#engine;
  }

  get transmitter(): Transmitter {
    if (!this.#transmitter) throw new Error('the bridge has not started');
    return this.#transmitter;
  }

  get server(): FastifyInstance {
    if (!this.#server) throw new Error('the bridge has not started');
    return this.#server;
  }

  async start(): Promise<void> {
    const { root } = this.config;
    const logger: Logger = this.logger;
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    try {
      this.#store = await openStore(root.storage, {
        dataDir: this.dataDir,
        logger,
        exclusive: true,
        signal: this.#starting.signal,
      });
      this.#keys = await KeyStore.open({ dataDir: this.dataDir, config: root.keys, clock: this.clock });

      const server = createServer({
        logger,
        metrics: this.metrics,
        status: this.status,
        bodyLimitBytes: root.server.body_limit_bytes,
        requestTimeoutMs: root.server.request_timeout,
        trustProxy: fastifyTrustProxy(root.server.trust_proxy),
        inbound: (id) => this.#host?.inbound(id),
        isConfiguredInbound: (id) =>
          this.config.instances.some((i) => i.kind === 'inbound' && i.enabled && i.id === id),
        servesScim: (id) =>
          this.config.instances.some(
            (i) => i.kind === 'inbound' && i.id === id && i.definition.manifest.capabilities.scim === true,
          ),
      });
      this.#server = server;
      // The default issuer (http://HOST:PORT) is known only once the server listens, but routes
      // must be registered before: the transmitter reads the issuer and the codec lazily.
      const transmitter = createTransmitter({
        config: root.transmitter,
        issuer: root.issuer ?? (() => this.issuer),
        store: this.#store,
        minter: {
          mint: (input) => this.#requireCodec().mint(input),
          refresh: (jwt) => this.#requireCodec().refresh(jwt),
        },
        keys: this.#keys,
        clock: this.clock,
        logger,
        metrics: this.metrics,
        instanceId: this.instanceName,
      });
      this.#transmitter = transmitter;
      registerTransmitter(server, transmitter);
      registerBridgeAdmin(server, this);
      registerConsole(server);
      await server.listen({ host: root.server.host, port: root.server.port });
      const address = server.server.address();
      const port = typeof address === 'object' && address ? address.port : root.server.port;
      const hostname = root.server.host.includes(':') ? `[${root.server.host}]` : root.server.host;
      this.#url = `http://${hostname}:${port}`;

      const codec = new SetCodec({ issuer: this.issuer, keys: this.#keys, clock: this.clock });
      this.#codec = codec;
      const engine = new DeliveryEngine({
        owner: this.instanceName,
        store: this.#store,
        signer: codecSigner(
          codec,
          (id) => {
            const connector = this.#host?.outbound().get(id);
            return connector?.prepare?.bind(connector);
          },
          (id) => this.config.instances.find((i) => i.id === id)?.definition.manifest.id,
          root.delivery.future_events,
        ),
        config: root.delivery,
        clock: this.clock,
        logger,
        observer: deliveryObserver(this.metrics, this.status, logger),
      });
      this.#engine = engine;
      const pipeline = new Pipeline({
        store: this.#store,
        delivery: root.delivery,
        routes: root.routes,
        subjects: root.subjects,
        validateEvent: validateDraft,
        subjectKey,
        resolveEventType: (name) => findEventType(name)?.uri,
        clock: this.clock,
        logger,
        queueLimit: (id) => engine.policy(id).queueSize,
        notify: (ids) => engine.notify(ids),
        streamRoutes: (event) => transmitter.routeEvent(event),
        disabledDestinations: this.config.instances
          .filter((i) => i.kind === 'outbound' && !i.enabled)
          .map((i) => i.id),
        metrics: this.metrics,
      });
      this.#pipeline = pipeline;
      this.#scheduler = new SchedulerService({
        logger,
        metrics: this.metrics,
        ...(this.#store.driver === 'postgres' ? { coordinator: this.#electLeader(this.#store, logger) } : {}),
      });

      const store = this.#store;
      const checkpointStore: CheckpointStore = {
        getCheckpoint: (instanceId, name) => store.checkpoints.get(instanceId, name),
        setCheckpoint: (instanceId, name, value) =>
          store.checkpoints.set(instanceId, name, value, this.clock.now()),
      };
      const rootContainer = createRootContainer({
        config: this.config,
        logger,
        metrics: this.metrics,
        clock: this.clock,
        status: this.status,
        scheduler: this.#scheduler,
        httpFactoryMaker: (deps) => createHttpClientFactory(deps),
        checkpointStore,
        eventSink: pipelineSink(pipeline),
        oneTimeIds: store.oneTimeIds,
        devices: createDeviceDirectory({
          checkpoints: store.checkpoints,
          instances: this.config.instances.map((i) => ({
            id: i.id,
            connector: i.definition.manifest.id,
            kind: i.kind,
          })),
          now: () => this.clock.now().getTime(),
        }),
      });
      const hostRef: { host?: Host } = {};
      let disconnectStreams: (() => void) | undefined;
      const deliveryService: CoreService = {
        name: 'delivery',
        start: async () => {
          for (const [id, connector] of hostRef.host?.outbound() ?? []) {
            const destination: Destination = {
              id,
              kind: 'outbound',
              target: connector.target,
              deliver: (set, signal) => connector.deliver(set, signal),
            };
            engine.register(destination);
          }
          disconnectStreams = transmitter.connectDeliveryEngine(engine);
          await pipeline.start();
          await engine.start();
        },
        stop: async (deadlineMs) => {
          await pipeline.stop();
          await engine.stop(deadlineMs);
          disconnectStreams?.();
        },
      };
      const host = new Host({
        root: rootContainer,
        config: this.config,
        logger,
        status: this.status,
        scheduler: this.#scheduler,
        services: [transmitter, deliveryService],
      });
      hostRef.host = host;
      this.#host = host;
      await host.start();
      logger.info(
        {
          url: this.#url,
          issuer: this.issuer,
          dataDir: this.dataDir,
          storage: root.storage.driver,
          inbound: this.config.instances.filter((i) => i.kind === 'inbound' && i.enabled).map((i) => i.id),
          outbound: this.config.instances.filter((i) => i.kind === 'outbound' && i.enabled).map((i) => i.id),
        },
        `ssf-bridge listening on ${this.#url}; data in ${this.dataDir}`,
      );
    } catch (err) {
      await this.#shutdown(5_000);
      throw err;
    }
  }

  /**
   * Instances sharing PostgreSQL elect one leader for scheduled work (pollers): only the leader
   * runs scheduled tasks; a killed leader's lease expires and another instance takes over
   * within `storage.leader_lease` plus one renewal interval.
   */
  #electLeader(store: Store, logger: Logger): { shouldRun(): boolean } {
    const gauge = this.metrics.gauge(
      'ssf_bridge_scheduler_leader',
      '1 while this instance runs scheduled tasks',
    );
    const election = new LeaderElection({
      leases: store.leases,
      name: 'scheduler',
      holder: this.instanceName,
      ttlMs:
        this.config.root.storage.driver === 'postgres'
          ? this.config.root.storage.leader_lease
          : LEADER_LEASE_MS,
      clock: this.clock,
      logger,
      onChange: (leader) => {
        gauge.set(leader ? 1 : 0);
        logger.info(
          { instance: this.instanceName, leader },
          leader ? 'elected scheduler leader' : 'no longer scheduler leader',
        );
      },
    });
    this.#election = election;
    election.start();
    return { shouldRun: () => election.isLeader() };
  }

  #requireCodec(): SetCodec {
    if (!this.#codec) throw new Error('the SET codec is not ready: the bridge is still starting');
    return this.#codec;
  }

  /** Drains and stops everything; idempotent. */
  stop(deadlineMs = this.config.root.server.shutdown_timeout): Promise<void> {
    this.#starting.abort(new Error('the bridge was stopped while starting'));
    this.#stopping ??= this.#shutdown(deadlineMs);
    return this.#stopping;
  }

  /** Whether stop() has been called (a start that fails afterwards was cut short by it). */
  get stopRequested(): boolean {
    return this.#stopping !== undefined;
  }

  async #shutdown(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    const remaining = () => Math.max(500, deadline - Date.now());
    // Stop taking requests first, so no webhook is answered 202 by an instance that is going away.
    if (this.#server) await this.#closeServer(this.#server, deadline);
    await this.#host?.stop(remaining());
    this.#scheduler?.stopAll();
    await this.#election?.stop();
    await this.#store?.close().catch((err: unknown) => this.logger.warn({ err }, 'store close failed'));
  }

  /**
   * Closes the HTTP server, letting requests in progress (an ingest being written to the outbox,
   * say) finish and be answered until the shutdown deadline. Past it, every connection still open
   * is cut: Node no longer enforces the request and header timeouts on a closing server, so a
   * client that never finishes sending its request would otherwise hold the drain open for good.
   */
  async #closeServer(server: FastifyInstance, deadline: number): Promise<void> {
    const closed = server.close().then(
      () => true,
      (err: unknown) => {
        this.logger.warn({ err }, 'server close failed');
        return true;
      },
    );
    if (await settlesWithin(closed, deadline - Date.now())) return;
    this.logger.warn('HTTP connections still open at the shutdown deadline; closing them');
    server.server.closeAllConnections();
    if (!(await settlesWithin(closed, CLOSE_GRACE_MS))) {
      this.logger.warn('the HTTP server did not close; stopping the rest regardless');
    }
  }
}

/** How long the server may take to close once its last connections were cut at the deadline. */
const CLOSE_GRACE_MS = 500;

/** Whether the promise settles with true within `ms` (false on the timeout); the timer is cleared either way. */
async function settlesWithin(promise: Promise<boolean>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), Math.max(0, ms));
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The pipeline as the runtime's event sink: what `ctx.emit` calls. */
function pipelineSink(pipeline: Pipeline): EventSink {
  return {
    async accept(instanceId, events, options): Promise<EmitResult> {
      try {
        const result = await pipeline.accept(
          instanceId,
          events,
          options?.checkpoint ? { checkpoint: options.checkpoint } : {},
        );
        return { accepted: result.accepted, duplicates: result.duplicates };
      } catch (err) {
        if (err instanceof EventValidationError) {
          throw new PermanentError(err.message, {
            code: err.code,
            detail: {
              problems: err.problems.map((p) => ({
                path: `[${p.index}]${p.path ? `.${p.path}` : ''}`,
                message: p.message,
              })),
            },
          });
        }
        throw err;
      }
    },
  };
}
