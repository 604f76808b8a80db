import { createRootContainer } from '../../core/di/container.ts';
import type { LoadedConfig } from '../../core/config/index.ts';
import type { EmitOptions, EventDraft, HttpClientFactory, Logger } from '../../core/plugin-api/index.ts';
import { SchedulerService } from '../../core/scheduling/scheduler.ts';
import { MetricsRegistry } from '../../core/telemetry/metrics.ts';
import { StatusBoard } from '../../core/runtime/status.ts';
import type { CheckpointStore, EventSink } from '../../core/runtime/ports.ts';
import { staticDeviceDirectory } from '../../core/devices/owners.ts';
import { memoryOneTimeIds } from '../../core/runtime/ports.ts';

/** In-memory core services for runtime tests that do not exercise storage or HTTP clients. */
export function createTestCore(config: LoadedConfig, logger: Logger) {
  const clock = { now: () => new Date() };
  const metrics = new MetricsRegistry({ collectDefault: false });
  const status = new StatusBoard(clock);
  const scheduler = new SchedulerService({ logger, metrics });
  const checkpoints = new Map<string, unknown>();
  const accepted: Array<{ instanceId: string; events: EventDraft[]; options?: EmitOptions }> = [];
  const checkpointStore: CheckpointStore = {
    getCheckpoint: async (instanceId, name) => checkpoints.get(`${instanceId}/${name}`),
    setCheckpoint: async (instanceId, name, value) => void checkpoints.set(`${instanceId}/${name}`, value),
  };
  const eventSink: EventSink = {
    accept: async (instanceId, events, options) => {
      accepted.push({ instanceId, events, ...(options ? { options } : {}) });
      return { accepted: events.map((e) => e.sourceRecordId), duplicates: 0 };
    },
  };
  const noHttp: HttpClientFactory = {
    create: () => {
      throw new Error('this test does not expect HTTP calls');
    },
  };
  const root = createRootContainer({
    config,
    logger,
    metrics,
    clock,
    status,
    scheduler,
    httpFactoryMaker: () => noHttp,
    checkpointStore,
    eventSink,
    devices: staticDeviceDirectory(),
    oneTimeIds: memoryOneTimeIds(),
  });
  return { root, metrics, status, scheduler, clock, accepted, checkpoints };
}
