import type { Container } from 'inversify';
import type { LoadedConfig } from '../config/index.ts';
import { createInstanceContainer, disposeInstanceContainer, type InstanceScope } from '../di/container.ts';
import type { InboundConnector, Logger, OutboundConnector } from '../plugin-api/types.ts';
import type { SchedulerService } from '../scheduling/scheduler.ts';
import type { StatusBoard } from './status.ts';

/** A core service with a lifecycle (delivery engine, transmitter workers, HTTP server). */
export interface CoreService {
  readonly name: string;
  start(): Promise<void>;
  stop(deadlineMs: number): Promise<void>;
}

interface Unit {
  id: string;
  kind: 'inbound' | 'outbound' | 'core';
  start(): Promise<void>;
  stop(deadlineMs: number): Promise<void>;
}

export class StartupError extends Error {
  readonly code = 'SSF_ERR_RUNTIME_START';
  constructor(
    readonly unitId: string,
    cause: unknown,
  ) {
    super(`${unitId} failed to start: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

export interface HostDeps {
  root: Container;
  config: LoadedConfig;
  logger: Logger;
  status: StatusBoard;
  scheduler: SchedulerService;
  /** Core services started after outbound connectors and before inbound ones. */
  services?: CoreService[];
  /** How long one start() may take before the start is considered failed. */
  startTimeoutMs?: number;
}

/**
 * Starts and stops everything in dependency order: outbound connectors, then core services
 * (delivery, transmitter), then inbound connectors, so nothing produces events before their
 * consumers run. Stopping goes in reverse: inbound first, outbound last. A failed start stops,
 * in reverse order, everything already started.
 */
export class Host {
  readonly #deps: HostDeps;
  readonly #scopes = new Map<string, InstanceScope>();
  #started: Unit[] = [];
  #state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  #stopping: Promise<void> | undefined;
  /** The start in progress, which a stop() waits for: it stops what the start got to. */
  #startRun: Promise<void> | undefined;

  constructor(deps: HostDeps) {
    this.#deps = deps;
    for (const instance of deps.config.instances) {
      if (instance.enabled) deps.status.register(instance.id, instance.definition.manifest.id, instance.kind);
    }
  }

  get state(): string {
    return this.#state;
  }

  /** The running inbound connector of an instance (for routing webhooks), if any. */
  inbound(id: string): InboundConnector | undefined {
    const scope = this.#scopes.get(id);
    const instance = this.#deps.config.instances.find((i) => i.id === id);
    return scope && instance?.kind === 'inbound' && this.#started.some((u) => u.id === id)
      ? (scope.connector as InboundConnector)
      : undefined;
  }

  /** The running outbound connectors by instance id (destinations for delivery). */
  outbound(): Map<string, OutboundConnector> {
    const out = new Map<string, OutboundConnector>();
    for (const instance of this.#deps.config.instances) {
      const scope = this.#scopes.get(instance.id);
      if (instance.kind === 'outbound' && scope) out.set(instance.id, scope.connector as OutboundConnector);
    }
    return out;
  }

  /**
   * Creates every enabled instance (no I/O), then starts the units in order. Outbound
   * connectors are created up front so core services can look them up before they start.
   */
  start(): Promise<void> {
    if (this.#state !== 'idle')
      return Promise.reject(new Error(`cannot start a host that is ${this.#state}`));
    this.#state = 'starting';
    this.#startRun = this.#start();
    return this.#startRun;
  }

  async #start(): Promise<void> {
    const units: Unit[] = [];
    try {
      for (const kind of ['outbound', 'inbound'] as const) {
        for (const instance of this.#deps.config.instances) {
          if (instance.kind !== kind || !instance.enabled) continue;
          try {
            this.#scopes.set(instance.id, createInstanceContainer(this.#deps.root, instance));
          } catch (err) {
            throw new StartupError(`${instance.path} (${instance.id})`, err);
          }
        }
      }
    } catch (err) {
      this.#state = 'stopped';
      throw err;
    }
    units.push(...this.#connectorUnits('outbound'));
    for (const service of this.#deps.services ?? []) {
      units.push({
        id: service.name,
        kind: 'core',
        start: () => service.start(),
        stop: (d) => service.stop(d),
      });
    }
    units.push(...this.#connectorUnits('inbound'));

    for (const unit of units) {
      // stop() was called meanwhile: start nothing more (it stops what started once this returns).
      if (this.#state !== 'starting') return;
      try {
        await withTimeout(unit.start(), this.#deps.startTimeoutMs ?? 30_000, `${unit.id} start`);
        if (this.#state !== 'starting') {
          // Stopped while this unit was starting: it is the last one started, so it stops first.
          await unit.stop(5_000).catch(() => undefined);
          return;
        }
        this.#started.push(unit);
      } catch (err) {
        this.#deps.logger.error({ err, unit: unit.id }, 'start failed; stopping what already started');
        if (unit.kind !== 'core') this.#deps.status.set(unit.id, 'permanent_error', (err as Error).message);
        // The failed unit may have started background work before failing: stop it too.
        await unit.stop(5_000).catch(() => undefined);
        await this.#stopStarted(10_000);
        this.#state = 'stopped';
        throw new StartupError(unit.id, err);
      }
    }
    if (this.#state === 'starting') this.#state = 'running';
  }

  /** Stops everything started, inbound first. Idempotent; safe before start. */
  stop(deadlineMs = 15_000): Promise<void> {
    if (this.#state === 'idle') {
      this.#state = 'stopped';
      return Promise.resolve();
    }
    this.#stopping ??= (async () => {
      const deadline = Date.now() + deadlineMs;
      this.#state = 'stopping';
      // A stop during start lets the unit starting now finish (within the deadline; the start
      // stops it itself), then stops everything started: otherwise the start would go on to
      // start the rest (inbound pollers) after the stop.
      if (this.#startRun) await withTimeout(this.#startRun, deadlineMs, 'start').catch(() => undefined);
      await this.#stopStarted(Math.max(100, deadline - Date.now()));
      this.#state = 'stopped';
    })();
    return this.#stopping;
  }

  async #stopStarted(deadlineMs: number): Promise<void> {
    const deadline = Date.now() + deadlineMs;
    const started = this.#started.reverse();
    this.#started = [];
    for (const unit of started) {
      const remaining = Math.max(100, deadline - Date.now());
      try {
        await withTimeout(unit.stop(remaining), remaining, `${unit.id} stop`);
      } catch (err) {
        this.#deps.logger.warn({ err, unit: unit.id }, 'stop did not finish cleanly');
      }
    }
    for (const [id, scope] of this.#scopes) {
      disposeInstanceContainer(scope);
      this.#scopes.delete(id);
    }
  }

  #connectorUnits(kind: 'inbound' | 'outbound'): Unit[] {
    const units: Unit[] = [];
    for (const instance of this.#deps.config.instances) {
      const scope = this.#scopes.get(instance.id);
      if (instance.kind !== kind || !scope) continue;
      const { status, scheduler } = this.#deps;
      units.push({
        id: instance.id,
        kind,
        start: async () => {
          status.set(instance.id, 'starting');
          await scope.connector.start(scope.abort.signal);
          // A connector may already have reported its own state (e.g. recoverable_error).
          if (status.get(instance.id)?.state === 'starting') status.set(instance.id, 'ok');
        },
        stop: async (deadline) => {
          status.set(instance.id, 'stopping');
          scope.abort.abort(new Error('instance stopping'));
          scheduler.stopInstance(instance.id);
          try {
            await scope.connector.stop(deadline);
          } finally {
            status.set(instance.id, 'stopped');
          }
        },
      });
    }
    return units;
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}
