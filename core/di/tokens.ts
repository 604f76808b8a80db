import type { ServiceIdentifier } from 'inversify';
import type { LoadedConfig, ResolvedInstance } from '../config/index.ts';
import type {
  Clock,
  ConnectorContext,
  DeviceDirectory,
  HttpClientFactory,
  InboundConnector,
  Logger,
  OutboundConnector,
} from '../plugin-api/types.ts';
import type { SchedulerService } from '../scheduling/scheduler.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import type { StatusBoard } from '../runtime/status.ts';
import type { CheckpointStore, EventSink, HttpFactoryMaker, OneTimeIds } from '../runtime/ports.ts';

/** Typed service identifiers. Only core/di and core/runtime resolve them. */
export const TOKENS = {
  config: Symbol.for('core.config') as ServiceIdentifier<LoadedConfig>,
  logger: Symbol.for('core.logger') as ServiceIdentifier<Logger>,
  metrics: Symbol.for('core.metrics') as ServiceIdentifier<MetricsRegistry>,
  clock: Symbol.for('core.clock') as ServiceIdentifier<Clock>,
  status: Symbol.for('core.status') as ServiceIdentifier<StatusBoard>,
  scheduler: Symbol.for('core.scheduler') as ServiceIdentifier<SchedulerService>,
  httpFactoryMaker: Symbol.for('core.httpFactoryMaker') as ServiceIdentifier<HttpFactoryMaker>,
  checkpointStore: Symbol.for('core.checkpointStore') as ServiceIdentifier<CheckpointStore>,
  eventSink: Symbol.for('core.eventSink') as ServiceIdentifier<EventSink>,
  devices: Symbol.for('core.devices') as ServiceIdentifier<DeviceDirectory>,
  oneTimeIds: Symbol.for('core.oneTimeIds') as ServiceIdentifier<OneTimeIds>,
  // Bound in each instance's child container:
  instance: Symbol.for('instance.resolved') as ServiceIdentifier<ResolvedInstance>,
  instanceContext: Symbol.for('instance.context') as ServiceIdentifier<ConnectorContext>,
  instanceAbort: Symbol.for('instance.abort') as ServiceIdentifier<AbortController>,
  connector: Symbol.for('instance.connector') as ServiceIdentifier<InboundConnector | OutboundConnector>,
} as const;

export type { HttpClientFactory };
