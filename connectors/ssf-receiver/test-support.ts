/**
 * What the ssf-receiver tests share: an inbound context that records what the connector emits,
 * reports and counts, with a scheduler that runs tasks as the core's does (on the leader only,
 * never overlapping themselves), and a wait for a condition.
 */
import { assertCheckpointExpected, staticDeviceDirectory } from '../../core/plugin-api/testing/index.ts';
import type {
  EventDraft,
  HttpClientFactory,
  InboundContext,
  InstanceState,
  Logger,
} from '../../core/plugin-api/index.ts';

export interface Harness {
  ctx: InboundContext;
  emitted: EventDraft[];
  statuses: Array<{ state: InstanceState; reason?: string }>;
  counters: Map<string, number>;
  abort: AbortController;
}

export interface HarnessOptions {
  /** Stands for the store: two harnesses given the same map are two bridge instances on one database. */
  checkpoints?: Map<string, unknown>;
  /** False: this instance is not the scheduler's leader, so its scheduled tasks never run. */
  leader?: boolean;
  /** The HTTP client factory the connector gets, stopped by the harness's signal. */
  http: (signal: AbortSignal, logger: Logger) => HttpClientFactory;
}

export function receiverHarness(instanceId: string, options: HarnessOptions): Harness {
  const { checkpoints = new Map<string, unknown>(), leader = true } = options;
  const abort = new AbortController();
  const emitted: EventDraft[] = [];
  const statuses: Harness['statuses'] = [];
  const counters = new Map<string, number>();
  const logger: Logger = {
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    child: () => logger,
  };
  const key = (name: string, labels?: Record<string, string>) =>
    `${name}${labels ? JSON.stringify(Object.entries(labels).sort()) : ''}`;
  const ctx: InboundContext = {
    instanceId,
    devices: staticDeviceDirectory(),
    connectorId: 'ssf-receiver',
    logger,
    http: options.http(abort.signal, logger),
    checkpoints: {
      get: async (name = 'default') => checkpoints.get(name),
      set: async (value, name = 'default') => void checkpoints.set(name, value),
    },
    scheduler: {
      schedule: (_name, schedule, task) => {
        const controller = new AbortController();
        let running = false;
        const run = () => {
          if (!leader || running || controller.signal.aborted) return;
          running = true;
          void task(controller.signal)
            .catch(() => undefined)
            .finally(() => (running = false));
        };
        if (schedule.runOnStart) setImmediate(run);
        const timer = schedule.everyMs ? setInterval(run, schedule.everyMs) : undefined;
        return {
          stop: () => {
            clearInterval(timer);
            controller.abort();
          },
        };
      },
    },
    clock: { now: () => new Date() },
    metrics: {
      counter: (name) => ({
        inc: (labels, value = 1) =>
          void counters.set(key(name, labels), (counters.get(key(name, labels)) ?? 0) + value),
      }),
      histogram: () => ({ observe: () => undefined }),
      gauge: (name) => ({ set: (labels, value) => void counters.set(key(name, labels), value) }),
    },
    status: {
      set: (state, reason) => void statuses.push({ state, ...(reason ? { reason } : {}) }),
      success: () => undefined,
    },
    signal: abort.signal,
    async emit(events, emitOptions) {
      // Like the stores: a checkpoint goes with the events, compare-and-set when it says so.
      const write = emitOptions?.checkpoint;
      assertCheckpointExpected(instanceId, write, (name) => checkpoints.get(name));
      emitted.push(...events);
      if (write) checkpoints.set(write.name ?? 'default', structuredClone(write.value));
      return { accepted: events.map((e) => e.sourceRecordId), duplicates: 0 };
    },
  };
  return { ctx, emitted, statuses, counters, abort };
}

/** The value of a counter or gauge the connector recorded with these labels. */
export function count(h: Harness, name: string, labels: Record<string, string>): number {
  return h.counters.get(`${name}${JSON.stringify(Object.entries(labels).sort())}`) ?? 0;
}

/** Polls until `probe` gives a value, or fails naming `what`. */
export async function eventually<T>(
  probe: () => T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
