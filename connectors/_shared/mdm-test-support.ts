/**
 * Test support: an inbound connector context with in-memory checkpoints (shareable between
 * contexts, and committed compare-and-set when emit is given `expected`), a recording emit, a
 * scheduler whose tasks the test runs, and the bridge's own HTTP client (classified errors,
 * Retry-After, token caches, flagging refused credentials), with no proxy and no SSRF policy so
 * that it reaches the loopback mock servers. Shared by the MDM connectors' behaviour tests
 * (intune, jamf-pro, kandji).
 */
import {
  RetryableError,
  callbackLogger,
  type EmitOptions,
  type EmitResult,
  type EventDraft,
  type InboundContext,
  type InstanceState,
  type ScheduleOptions,
} from '../../core/plugin-api/index.ts';
import {
  assertCheckpointExpected,
  memoryReceivedIds,
  staticDeviceDirectory,
  testHttpClientFactory,
} from '../../core/plugin-api/testing/index.ts';

export interface EmitCall {
  events: EventDraft[];
  checkpoint: EmitOptions['checkpoint'];
}

export interface LogEntry {
  level: string;
  msg: string | undefined;
  fields: Record<string, unknown>;
}

export interface TestContext<S = unknown> {
  ctx: InboundContext<S>;
  checkpoints: Map<string, unknown>;
  /** Successful emits, in order. */
  emits: EmitCall[];
  /** Every event of every successful emit. */
  events(): EventDraft[];
  /** Makes the next emit fail with `error` (default: an outbox-full RetryableError); nothing is committed. */
  failNextEmit(error?: Error): void;
  statuses: Array<{ state: InstanceState; reason: string | undefined }>;
  successes: number;
  logs: LogEntry[];
  counter(name: string, labels?: Record<string, string>): number;
  /** The tasks start() scheduled. */
  tasks: Array<{ name: string; options: ScheduleOptions; run: (signal: AbortSignal) => Promise<void> }>;
  /** Runs a scheduled task once, as the scheduler would. */
  runTask(name?: string): Promise<void>;
  /** Aborts the instance signal, as the host does before stop(). */
  abort(): void;
  /** Requests made to the token endpoint by clients of this context. */
  tokenRequests(): number;
}

export function testContext<S = unknown>(
  options: {
    instanceId?: string;
    now?: () => Date;
    /** Another context's checkpoints: two instances of one connector on one database. */
    checkpoints?: Map<string, unknown>;
  } = {},
): TestContext<S> {
  const abort = new AbortController();
  const checkpoints = options.checkpoints ?? new Map<string, unknown>();
  const emits: EmitCall[] = [];
  const statuses: TestContext<S>['statuses'] = [];
  const logs: LogEntry[] = [];
  const counters = new Map<string, number>();
  const tasks: TestContext<S>['tasks'] = [];
  let failure: Error | undefined;
  let tokens = 0;
  const result = { successes: 0 } as { successes: number };

  const key = (name: string, labels?: Record<string, string>) =>
    `${name}${JSON.stringify(Object.entries(labels ?? {}).sort())}`;

  const logger = callbackLogger((level, fields, msg) => logs.push({ level, msg, fields }));
  const http = testHttpClientFactory({
    logger,
    signal: abort.signal,
    onAuthFailure: (reason) => statuses.push({ state: 'permanent_error', reason }),
    onTokenRequest: () => (tokens += 1),
  });

  const ctx: InboundContext<S> = {
    instanceId: options.instanceId ?? 'mdm-test',
    devices: staticDeviceDirectory(),
    receivedIds: memoryReceivedIds(),
    connectorId: 'test',
    logger,
    http,
    checkpoints: {
      get: async (name = 'default') => structuredClone(checkpoints.get(name)) as S | undefined,
      set: async (value, name = 'default') => void checkpoints.set(name, structuredClone(value)),
    },
    scheduler: {
      schedule: (name, scheduleOptions, run) => {
        const task = { name, options: scheduleOptions, run };
        tasks.push(task);
        return {
          stop: () => {
            const i = tasks.indexOf(task);
            if (i >= 0) tasks.splice(i, 1);
          },
        };
      },
    },
    clock: { now: options.now ?? (() => new Date()) },
    metrics: {
      counter: (name) => ({
        inc: (labels, value = 1) => {
          counters.set(key(name, labels), (counters.get(key(name, labels)) ?? 0) + value);
          counters.set(key(name), (counters.get(key(name)) ?? 0) + (labels ? value : 0));
        },
      }),
      histogram: () => ({ observe: () => undefined }),
      gauge: (name) => ({ set: (labels, value) => void counters.set(key(name, labels ?? undefined), value) }),
    },
    status: {
      set: (state, reason) => void statuses.push({ state, reason }),
      success: () => void (result.successes += 1),
    },
    signal: abort.signal,
    emit: async (events: EventDraft[], emitOptions?: EmitOptions): Promise<EmitResult> => {
      if (failure) {
        const err = failure;
        failure = undefined;
        throw err;
      }
      // Compare-and-set, as the stores do: contexts sharing one map share one database.
      assertCheckpointExpected(ctx.instanceId, emitOptions?.checkpoint, (name) => checkpoints.get(name));
      emits.push({ events: structuredClone(events), checkpoint: structuredClone(emitOptions?.checkpoint) });
      if (emitOptions?.checkpoint) {
        checkpoints.set(
          emitOptions.checkpoint.name ?? 'default',
          structuredClone(emitOptions.checkpoint.value),
        );
      }
      return { accepted: events.map((e) => e.sourceRecordId), duplicates: 0 };
    },
  };

  return {
    ctx,
    checkpoints,
    emits,
    events: () => emits.flatMap((e) => e.events),
    failNextEmit(error) {
      failure =
        error ??
        new RetryableError('the outbox is full', { code: 'SSF_ERR_DELIVERY_QUEUE_FULL', retryAfterMs: 2000 });
    },
    statuses,
    get successes() {
      return result.successes;
    },
    logs,
    counter: (name, labels) => counters.get(key(name, labels)) ?? 0,
    tasks,
    async runTask(name) {
      const task = name ? tasks.find((t) => t.name === name) : tasks[0];
      if (!task) throw new Error(`no task ${name ?? ''} scheduled`);
      await task.run(new AbortController().signal);
    },
    abort: () => abort.abort(new Error('instance stopping')),
    tokenRequests: () => tokens,
  };
}
