import { hash } from 'node:crypto';
import type { ResolvedInstance } from '../config/index.ts';
import type {
  CheckpointAccess,
  Clock,
  ConnectorContext,
  DeviceDirectory,
  InboundContext,
  Logger,
  ReceivedIds,
  StatusReporter,
} from '../plugin-api/types.ts';
import { RetryableError } from '../plugin-api/errors.ts';
import type { SchedulerService } from '../scheduling/scheduler.ts';
import { connectorMetrics, type MetricsRegistry } from '../telemetry/metrics.ts';
import type { CheckpointStore, EventSink, HttpFactoryMaker, OneTimeIds } from './ports.ts';
import type { StatusBoard } from './status.ts';
import { observedInbound } from './observer.ts';

export interface ContextDeps {
  logger: Logger;
  metrics: MetricsRegistry;
  clock: Clock;
  status: StatusBoard;
  scheduler: SchedulerService;
  httpFactoryMaker: HttpFactoryMaker;
  checkpoints: CheckpointStore;
  sink: EventSink;
  /** What inbound connectors learn of devices from the MDM instances (`ctx.devices`). */
  devices: DeviceDirectory;
  /** Where `ctx.receivedIds` keeps its ids. */
  oneTimeIds: OneTimeIds;
}

const DEFAULT_CHECKPOINT = 'default';

/**
 * Builds the narrow context one connector instance sees. It never exposes the container or
 * any core service directly: only these capabilities, scoped to the instance.
 */
export function buildConnectorContext(
  instance: ResolvedInstance,
  deps: ContextDeps,
  abort: AbortController,
): ConnectorContext | InboundContext {
  const connectorId = instance.definition.manifest.id;
  const logger = deps.logger.child({ connector: connectorId, instance: instance.id });
  const status: StatusReporter = {
    set: (state, reason) => deps.status.set(instance.id, state, reason),
    success: () => deps.status.success(instance.id),
  };
  const observed = observedInbound(deps.metrics, deps.clock, instance.id);
  const checkpoints: CheckpointAccess = {
    get: (name = DEFAULT_CHECKPOINT) => deps.checkpoints.getCheckpoint(instance.id, name),
    set: async (value, name = DEFAULT_CHECKPOINT) => {
      await deps.checkpoints.setCheckpoint(instance.id, name, value);
      observed.checkpointed();
    },
  };
  const base: ConnectorContext = {
    instanceId: instance.id,
    connectorId,
    logger,
    http: deps.httpFactoryMaker({
      logger,
      signal: abort.signal,
      onAuthFailure: (reason) => deps.status.refused(instance.id, reason),
    }),
    checkpoints,
    scheduler: deps.scheduler.forInstance(instance.id, logger),
    clock: deps.clock,
    metrics: connectorMetrics(deps.metrics, connectorId, instance.id),
    status,
    signal: abort.signal,
  };
  if (instance.kind === 'outbound') return Object.freeze(base);
  const inbound: InboundContext = {
    ...base,
    emit: observed.emit((events, options) => deps.sink.accept(instance.id, events, options)),
    devices: deps.devices,
    receivedIds: receivedIdsOf(instance.id, deps.oneTimeIds),
  };
  return Object.freeze(inbound);
}

/** An instance's ReceivedIds: its own scope of the store's one-time ids. */
export function receivedIdsOf(instanceId: string, store: OneTimeIds): ReceivedIds {
  const scope = `received:${instanceId}`;
  // Kept as a digest: an id may be long, or hold characters a store refuses (PostgreSQL text
  // cannot hold NUL).
  const stored = (id: string) => hash('sha256', id, 'base64url');
  const unavailable = (doing: string, cause: unknown) =>
    new RetryableError(`cannot ${doing} the ids this instance received (store unavailable)`, {
      code: 'SSF_ERR_RECEIVED_IDS',
      cause,
    });
  return Object.freeze({
    async has(id: string, now: Date) {
      try {
        return await store.used(scope, stored(id), now);
      } catch (err) {
        throw unavailable('read', err);
      }
    },
    async add(id: string, expiresAt: Date, now: Date) {
      try {
        await store.claim(scope, stored(id), expiresAt, now);
      } catch (err) {
        throw unavailable('record', err);
      }
    },
  });
}
