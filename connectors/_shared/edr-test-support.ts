/**
 * Test support for the EDR connectors' behaviour tests: an InboundContext that records what a
 * connector emits, commits and reports, with the bridge's own HTTP client (refused
 * credentials flag the instance). Like the core, it refuses a whole batch when the event
 * catalog would refuse one of its events (by default: an unusable e-mail subject). Vendor APIs are mocked by the conformance kit's loopback
 * MockServer.
 */
import {
  assertCheckpointExpected,
  memoryReceivedIds,
  staticDeviceDirectory,
  testHttpClientFactory,
} from '../../core/plugin-api/testing/index.ts';
import {
  isEmailAddress,
  PermanentError,
  RetryableError,
  type EmitOptions,
  type EmitResult,
  type DeviceDirectory,
  type EventDraft,
  type InboundContext,
  type InstanceState,
  type Logger,
  type ScheduleOptions,
} from '../../core/plugin-api/index.ts';

export interface TestLogLine {
  level: string;
  obj: unknown;
  msg: string | undefined;
}

function recordingLogger(lines: TestLogLine[]): Logger {
  const at = (level: string) => (obj: object | string, msg?: string) => void lines.push({ level, obj, msg });
  const logger: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

export interface Emitted {
  events: EventDraft[];
  checkpoint: EmitOptions['checkpoint'];
  ok: boolean;
}

export interface TestTask {
  name: string;
  options: ScheduleOptions;
  run(signal: AbortSignal): Promise<void>;
  stopped: boolean;
}

export interface TestContextOptions {
  /** Checkpoints of an earlier instance, to restart from them. */
  checkpoints?: Map<string, unknown>;
  /** Source record ids seen by an earlier instance, so duplicates are counted across restarts. */
  persisted?: Set<string>;
  now?: () => number;
  /** What `ctx.devices` knows (default: no devices). */
  devices?: DeviceDirectory;
  /**
   * Why the event catalog refuses an event, if it does; a batch holding one is refused whole, as
   * the core does. Default: an e-mail subject (alone or as the user of a complex subject) that
   * is not an address the catalog takes.
   */
  refuse?: (event: EventDraft) => string | undefined;
}

/** The core's check of an e-mail subject: the address must be one the catalog takes. */
export function refuseUnusableEmail(event: EventDraft): string | undefined {
  const subject = event.subject as { format?: unknown; email?: unknown; user?: unknown };
  const email =
    subject.format === 'email'
      ? subject.email
      : subject.format === 'complex' && (subject.user as { format?: unknown } | undefined)?.format === 'email'
        ? (subject.user as { email?: unknown }).email
        : undefined;
  if (email === undefined) return undefined;
  return typeof email === 'string' && isEmailAddress(email)
    ? undefined
    : `subject.email: ${JSON.stringify(email)} is not an e-mail address`;
}

/** An inbound context for one test instance, and what the connector did with it. */
export function createTestContext(options: TestContextOptions = {}) {
  const abort = new AbortController();
  const checkpoints = options.checkpoints ?? new Map<string, unknown>();
  const persisted = options.persisted ?? new Set<string>();
  const emitted: Emitted[] = [];
  const statuses: Array<{ state: InstanceState; reason?: string }> = [];
  const logs: TestLogLine[] = [];
  const tasks: TestTask[] = [];
  const counters = new Map<string, number>();
  const now = options.now ?? Date.now;
  const refuse = options.refuse ?? refuseUnusableEmail;
  let failEmits = 0;
  let emitFailureRetryAfterMs: number | undefined;
  const flag = (state: InstanceState, reason?: string) =>
    void statuses.push(reason === undefined ? { state } : { state, reason });

  const ctx: InboundContext = {
    instanceId: 'edr-test',
    devices: options.devices ?? staticDeviceDirectory(),
    receivedIds: memoryReceivedIds(),
    connectorId: 'edr-test',
    logger: recordingLogger(logs),
    http: testHttpClientFactory({
      logger: recordingLogger(logs),
      signal: abort.signal,
      onAuthFailure: (reason) => flag('permanent_error', reason),
      now,
    }),
    checkpoints: {
      get: async (name = 'default') => structuredClone(checkpoints.get(name)),
      set: async () => {
        throw new Error('checkpoints are committed with the events, never set directly');
      },
    },
    scheduler: {
      schedule(name, scheduleOptions, run) {
        const task: TestTask = { name, options: scheduleOptions, run, stopped: false };
        tasks.push(task);
        return { stop: () => void (task.stopped = true) };
      },
    },
    clock: { now: () => new Date(now()) },
    metrics: {
      counter: (name) => ({
        inc: (labels, value = 1) => {
          const key = `${name}${JSON.stringify(labels ?? {})}`;
          counters.set(key, (counters.get(key) ?? 0) + value);
        },
      }),
      gauge: () => ({ set: () => undefined }),
      histogram: () => ({ observe: () => undefined }),
    },
    status: { set: flag, success: () => flag('ok') },
    signal: abort.signal,
    async emit(events: EventDraft[], emitOptions?: EmitOptions): Promise<EmitResult> {
      if (failEmits > 0) {
        failEmits -= 1;
        emitted.push({ events, checkpoint: emitOptions?.checkpoint, ok: false });
        throw new RetryableError('the outbox is full', {
          code: 'SSF_ERR_DELIVERY_QUEUE_FULL',
          ...(emitFailureRetryAfterMs === undefined ? {} : { retryAfterMs: emitFailureRetryAfterMs }),
        });
      }
      const problems = events.flatMap((event, index) => {
        const problem = refuse(event);
        return problem === undefined ? [] : [`event ${index}: ${problem}`];
      });
      if (problems.length > 0) {
        emitted.push({ events, checkpoint: emitOptions?.checkpoint, ok: false });
        throw new PermanentError(`invalid events: ${problems.join('; ')}`, {
          code: 'SSF_ERR_PIPELINE_INVALID_EVENT',
        });
      }
      // Compare-and-set as the stores do it: contexts sharing one map act as processes on one database.
      try {
        assertCheckpointExpected('edr-test', emitOptions?.checkpoint, (name) => checkpoints.get(name));
      } catch (err) {
        emitted.push({ events, checkpoint: emitOptions?.checkpoint, ok: false });
        throw err;
      }
      emitted.push({ events, checkpoint: emitOptions?.checkpoint, ok: true });
      let duplicates = 0;
      for (const e of events) {
        const key = `${e.sourceRecordId}|${e.type}`;
        if (persisted.has(key)) duplicates += 1;
        persisted.add(key);
      }
      if (emitOptions?.checkpoint) {
        checkpoints.set(
          emitOptions.checkpoint.name ?? 'default',
          structuredClone(emitOptions.checkpoint.value),
        );
      }
      return { accepted: events.map((e) => e.sourceRecordId), duplicates };
    },
  };

  return {
    ctx,
    abort,
    checkpoints,
    persisted,
    emitted,
    statuses,
    logs,
    tasks,
    /**
     * Each commit of the checkpoint `name` (a poll page, a datafeed batch), with the events made
     * durable since the one before: a page's raises are handed over with the memory of raised
     * detections just before its checkpoint.
     */
    commits(name: string): Array<{ events: EventDraft[]; value: unknown }> {
      const out: Array<{ events: EventDraft[]; value: unknown }> = [];
      let events: EventDraft[] = [];
      for (const e of emitted.filter((x) => x.ok)) {
        events.push(...e.events);
        if (e.checkpoint?.name === name) {
          out.push({ events, value: e.checkpoint.value });
          events = [];
        }
      }
      return out;
    },
    /** Events that were made durable, in order. */
    events: () => emitted.filter((e) => e.ok).flatMap((e) => e.events),
    counter: (name: string, labels: Record<string, string>) =>
      counters.get(`${name}${JSON.stringify(labels)}`) ?? 0,
    failNextEmits(count: number, retryAfterMs?: number) {
      failEmits = count;
      emitFailureRetryAfterMs = retryAfterMs;
    },
    /** Runs the task scheduled under `name` once, as the scheduler would. */
    async runTask(name: string): Promise<void> {
      const task = tasks.find((t) => t.name === name && !t.stopped);
      if (!task)
        throw new Error(`no running task ${name}; scheduled: ${tasks.map((t) => t.name).join(', ')}`);
      await task.run(new AbortController().signal);
    },
    /** Polls `predicate` until it holds (or fails after `timeoutMs`). */
    async until(predicate: () => boolean, timeoutMs = 5_000, what = 'the condition'): Promise<void> {
      const started = Date.now();
      while (!predicate()) {
        if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

export type TestContext = ReturnType<typeof createTestContext>;
