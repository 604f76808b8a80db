/**
 * The in-memory runtime the kit drives connectors with. It is built from the real runtime pieces
 * — the context builder, the scheduler service, the HTTP client factory, the metrics registry and
 * the status board — with in-memory stand-ins for the durable parts: an event sink that can be
 * told to fail or hold the next persist, and a checkpoint store that records every write.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import type { ResolvedInstance } from '../../config/index.ts';
import { createHttpClientFactory, DEFAULT_TIMEOUT_MS } from '../../http/client.ts';
import { buildConnectorContext } from '../../runtime/context.ts';
import { staticDeviceDirectory } from '../../devices/owners.ts';
import type { CheckpointStore, EventSink, HttpFactoryMaker } from '../../runtime/ports.ts';
import { StatusBoard } from '../../runtime/status.ts';
import { SchedulerService } from '../../scheduling/scheduler.ts';
import { MetricsRegistry } from '../../telemetry/metrics.ts';
import { PermanentError, RetryableError } from '../errors.ts';
import { assertCheckpointExpected } from './checkpoints.ts';
import type {
  ConnectorDefinition,
  DeviceDirectory,
  EmitOptions,
  EmitResult,
  EventDraft,
  HttpClient,
  HttpClientFactory,
  HttpRequest,
  InboundConnector,
  InboundContext,
  Logger,
  OutboundConnector,
  ScheduleOptions,
  Scheduler,
} from '../types.ts';
import { checkDraft } from './events.ts';
import { memoryOneTimeIds, type OneTimeIds } from '../../runtime/ports.ts';

/** Header the kit adds to every request made through ctx.http, to tell them from any other. */
export const KIT_MARKER_HEADER = 'x-ssf-bridge-kit';
/** Requests through ctx.http get at most this deadline here, so a hanging target fails fast. */
export const KIT_REQUEST_TIMEOUT_MS = 400;

/** Everything a connector wrote or threw during a suite, scanned for secrets. */
export class Capture {
  readonly lines: string[] = [];
  readonly logger: Logger;

  constructor() {
    const destination = new Writable({
      write: (chunk, _enc, done) => {
        this.lines.push(...String(chunk).split('\n').filter(Boolean));
        done();
      },
    });
    // Deliberately without the production logger's redaction and scrubbing: a connector must not
    // hand a secret to the logger in the first place.
    this.logger = pino({ level: 'trace', base: { service: 'ssf-bridge' } }, destination);
  }

  /** Keeps what a connector wrote to stdout or stderr while `fn` runs (and shows none of it). */
  async withOutputCaptured<T>(fn: () => Promise<T>): Promise<T> {
    const out = process.stdout.write;
    const err = process.stderr.write;
    const keep = (chunk: unknown): boolean => {
      this.lines.push(String(chunk));
      return true;
    };
    process.stdout.write = keep as typeof process.stdout.write;
    process.stderr.write = keep as typeof process.stderr.write;
    try {
      return await fn();
    } finally {
      process.stdout.write = out;
      process.stderr.write = err;
    }
  }

  /** Records text the connector produced outside the logger (error messages, response bodies). */
  note(text: string): void {
    this.lines.push(text);
  }

  /** Records what an error the connector threw says: its message and those of its causes. */
  noteError(err: unknown): void {
    const seen = new Set<unknown>();
    for (let e = err; e !== undefined && e !== null && !seen.has(e); e = (e as { cause?: unknown }).cause) {
      seen.add(e);
      this.note(e instanceof Error ? `${e.name}: ${e.message}` : String(e));
      if (!(e instanceof Error)) break;
    }
  }
}

export type JournalOp = 'emit' | 'emit-failed' | 'direct-set' | 'commit';

export interface JournalEntry {
  op: JournalOp;
  /** Which kit-driven unit of work (task run or webhook call) it happened in. */
  run: number;
}

/** Checkpoints in memory; every write is journalled so the kit can check their order. */
export class MemoryCheckpoints implements CheckpointStore {
  readonly values = new Map<string, unknown>();
  onDirectSet: (() => void) | undefined;
  onRead: (() => void) | undefined;

  async getCheckpoint(instanceId: string, name: string): Promise<unknown> {
    this.onRead?.();
    return structuredClone(this.values.get(`${instanceId}/${name}`));
  }

  async setCheckpoint(instanceId: string, name: string, value: unknown): Promise<void> {
    this.onDirectSet?.();
    this.values.set(`${instanceId}/${name}`, structuredClone(value));
  }

  /** Written by the sink, in the same step as the events it came with. */
  commit(instanceId: string, name: string, value: unknown): void {
    this.values.set(`${instanceId}/${name}`, structuredClone(value));
  }

  snapshot(): string {
    return JSON.stringify([...this.values].sort(([a], [b]) => (a < b ? -1 : 1)));
  }
}

export interface EmitAttempt {
  events: EventDraft[];
  checkpoint: EmitOptions['checkpoint'];
  outcome: 'pending' | 'persisted' | 'failed' | 'invalid';
  jtis: string[];
  /** Why the pipeline refused the events (outcome `invalid`). */
  refusal?: string;
}

/**
 * Stands in for the pipeline: validates drafts against the event catalog, "persists" them keyed
 * by jti, and commits the checkpoint with them. It can fail the next persist or hold it.
 */
export class MemorySink implements EventSink {
  readonly attempts: EmitAttempt[] = [];
  /** Persisted events by jti. */
  readonly persisted = new Map<string, EventDraft>();
  onEmit: (() => void) | undefined;
  #failures = 0;
  /** Persists (valid batches that reached the store) so far, counting failed ones. */
  #saves = 0;
  /** Which saves (1-based, counted by #saves) fail. */
  readonly #failAt = new Set<number>();
  #held: { promise: Promise<void>; release: () => void } | undefined;

  constructor(
    private readonly checkpoints: MemoryCheckpoints,
    private readonly journal: (op: JournalOp) => void,
  ) {}

  failNextPersist(): void {
    this.#failures += 1;
  }

  /** Fails the n-th save from now (1 is the next one), letting the ones before it through. */
  failSave(n: number): void {
    this.#failAt.add(this.#saves + n);
  }

  /** Saves (valid batches that reached the store, failed ones included) so far. */
  get saves(): number {
    return this.#saves;
  }

  /** Holds every persist until the returned function is called. */
  hold(): () => void {
    let release = () => {};
    const promise = new Promise<void>((resolve) => (release = resolve));
    this.#held = { promise, release };
    return () => {
      this.#held = undefined;
      release();
    };
  }

  async accept(instanceId: string, events: EventDraft[], options?: EmitOptions): Promise<EmitResult> {
    this.onEmit?.();
    const attempt: EmitAttempt = { events, checkpoint: options?.checkpoint, outcome: 'pending', jtis: [] };
    this.attempts.push(attempt);
    const problems: Array<{ index: number; path: string; message: string }> = [];
    events.forEach((event, index) => {
      const checked = checkDraft(event, instanceId);
      if (checked.ok) attempt.jtis.push(checked.built.jti);
      else problems.push({ index, path: '', message: checked.message });
    });
    if (problems.length > 0) {
      attempt.outcome = 'invalid';
      attempt.refusal = `invalid events: ${problems.map((p) => `event ${p.index}: ${p.message}`).join('; ')}`;
      throw new PermanentError(attempt.refusal, {
        code: 'SSF_ERR_PIPELINE_INVALID_EVENT',
        detail: { problems },
      });
    }
    if (this.#held) await this.#held.promise;
    this.#saves += 1;
    const failThis = this.#failAt.delete(this.#saves);
    if (this.#failures > 0 || failThis) {
      if (!failThis) this.#failures -= 1;
      attempt.outcome = 'failed';
      this.journal('emit-failed');
      throw new RetryableError(
        'the outbox could not persist the batch (a failure the conformance kit simulates)',
        {
          code: 'SSF_ERR_KIT_PERSIST',
          retryAfterMs: 1000,
        },
      );
    }
    try {
      assertCheckpointExpected(instanceId, options?.checkpoint, (name) =>
        this.checkpoints.values.get(`${instanceId}/${name}`),
      );
    } catch (err) {
      attempt.outcome = 'failed';
      this.journal('emit-failed');
      throw err;
    }
    let duplicates = 0;
    events.forEach((event, i) => {
      const jti = attempt.jtis[i] as string;
      if (this.persisted.has(jti)) duplicates += 1;
      else this.persisted.set(jti, event);
    });
    if (options?.checkpoint) {
      this.checkpoints.commit(instanceId, options.checkpoint.name ?? 'default', options.checkpoint.value);
      this.journal('commit');
    }
    attempt.outcome = 'persisted';
    this.journal('emit');
    return { accepted: attempt.jtis, duplicates };
  }
}

export interface RegisteredTask {
  name: string;
  options: ScheduleOptions;
  run: (signal: AbortSignal) => Promise<void>;
}

/**
 * The real scheduler (it validates schedules, and stopping an instance stops its tasks), except
 * that timers run nothing: the kit runs each registered task itself, at the moments it chooses.
 */
class KitScheduler extends SchedulerService {
  readonly tasks: RegisteredTask[] = [];
  onSchedule: (() => void) | undefined;

  override forInstance(instanceId: string, logger: Logger): Scheduler {
    const real = super.forInstance(instanceId, logger);
    return {
      schedule: (name, options, task) => {
        this.onSchedule?.();
        const handle = real.schedule(name, options, async () => {});
        const registered = { name, options, run: task };
        this.tasks.push(registered);
        return {
          stop: () => {
            handle.stop();
            const i = this.tasks.indexOf(registered);
            if (i >= 0) this.tasks.splice(i, 1);
          },
        };
      },
    };
  }
}

export interface Settled<T> {
  settled: boolean;
  ok: boolean;
  value?: T;
  error?: unknown;
  ms: number;
}

/** Waits for `promise` at most `budgetMs`; never rejects. */
export async function within<T>(promise: Promise<T>, budgetMs: number): Promise<Settled<T>> {
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    promise.then(
      (value) => ({ settled: true, ok: true, value }),
      (error: unknown) => ({ settled: true, ok: false, error }),
    ),
    new Promise<{ settled: false; ok: false }>((resolve) => {
      timer = setTimeout(() => resolve({ settled: false, ok: false }), budgetMs);
    }),
  ]);
  clearTimeout(timer);
  return { ...outcome, ms: Math.round(performance.now() - started) };
}

/** A deadline a connector asked ctx.http for: when it created a client, or for one request. */
export interface RequestedTimeout {
  /** `ctx.http.create()`, or the request (`GET /v1/alerts`). */
  what: string;
  /** The deadline it asked for, in ms (for a request: its own, else its client's, else the default). */
  ms: number;
  /** Where that value came from. */
  from: 'create' | 'request' | 'client' | 'default';
}

export interface InstanceOptions {
  config: unknown;
  /** Shared with an earlier instance, to restart from its checkpoints. */
  checkpoints?: MemoryCheckpoints;
  /** Shared with an earlier instance, to restart with the ids it received (`ctx.receivedIds`). */
  oneTimeIds?: OneTimeIds;
  /** What `ctx.devices` knows (default: no devices in any source). */
  devices?: DeviceDirectory;
  /** The longest deadline a request through ctx.http gets (default KIT_REQUEST_TIMEOUT_MS). */
  requestTimeoutMs?: number;
}

/** One connector instance in the kit's runtime, driven the way the host drives it. */
export class KitInstance {
  readonly id: string;
  readonly connector: InboundConnector | OutboundConnector;
  readonly abort = new AbortController();
  readonly metrics = new MetricsRegistry({ collectDefault: false });
  readonly status: StatusBoard;
  readonly checkpoints: MemoryCheckpoints;
  readonly oneTimeIds: OneTimeIds;
  readonly sink: MemorySink;
  readonly journal: JournalEntry[] = [];
  /** Context capabilities used while create() ran (none are allowed). */
  readonly createIo: string[] = [];
  /**
   * Every deadline the connector asked ctx.http for, before the kit shortened it (requests here
   * get at most `requestTimeoutMs`, so a hanging target fails fast whatever was asked).
   */
  readonly requestedTimeouts: RequestedTimeout[] = [];
  /** Counter of kit-driven units of work; journal entries carry it. */
  run = 0;
  readonly #scheduler: KitScheduler;
  readonly #runs = new Set<AbortController>();
  readonly #capture: Capture;
  readonly #requestTimeoutMs: number;
  #creating = true;

  constructor(definition: ConnectorDefinition, capture: Capture, options: InstanceOptions) {
    this.id = `kit-${definition.manifest.id}`;
    this.#capture = capture;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? KIT_REQUEST_TIMEOUT_MS;
    const clock = { now: () => new Date() };
    this.status = new StatusBoard(clock);
    this.status.register(this.id, definition.manifest.id, definition.kind);
    this.checkpoints = options.checkpoints ?? new MemoryCheckpoints();
    this.checkpoints.onDirectSet = () => this.#used('ctx.checkpoints.set', 'direct-set');
    this.checkpoints.onRead = () => this.#used('ctx.checkpoints.get');
    const oneTimeIds = options.oneTimeIds ?? memoryOneTimeIds();
    this.oneTimeIds = {
      claim: (...args) => {
        this.#used('ctx.receivedIds.add');
        return oneTimeIds.claim(...args);
      },
      used: (...args) => {
        this.#used('ctx.receivedIds.has');
        return oneTimeIds.used(...args);
      },
    };
    this.sink = new MemorySink(this.checkpoints, (op) => this.journal.push({ op, run: this.run }));
    this.sink.onEmit = () => this.#used('ctx.emit');
    this.#scheduler = new KitScheduler({ logger: capture.logger, metrics: this.metrics });
    this.#scheduler.onSchedule = () => this.#used('ctx.scheduler.schedule');

    const resolved: ResolvedInstance = {
      id: this.id,
      kind: definition.kind,
      definition,
      enabled: true,
      config: options.config,
      path: `${definition.kind}[0]`,
    };
    const httpFactoryMaker: HttpFactoryMaker = (deps) =>
      this.#httpFactory(
        createHttpClientFactory({ ...deps, defaults: { headers: { [KIT_MARKER_HEADER]: this.id } } }),
      );
    const context = buildConnectorContext(
      resolved,
      {
        logger: capture.logger,
        metrics: this.metrics,
        clock,
        status: this.status,
        scheduler: this.#scheduler,
        httpFactoryMaker,
        checkpoints: this.checkpoints,
        sink: this.sink,
        devices: options.devices ?? staticDeviceDirectory(),
        oneTimeIds: this.oneTimeIds,
      },
      this.abort,
    );
    try {
      this.connector =
        definition.kind === 'inbound'
          ? definition.create(context as InboundContext, options.config)
          : definition.create(context, options.config);
    } finally {
      this.#creating = false;
    }
  }

  get tasks(): readonly RegisteredTask[] {
    return this.#scheduler.tasks;
  }

  get inbound(): InboundConnector {
    return this.connector as InboundConnector;
  }

  get outbound(): OutboundConnector {
    return this.connector as OutboundConnector;
  }

  start(): Promise<void> {
    return this.connector.start(this.abort.signal);
  }

  /** The host's stop: abort the instance signal, stop its tasks and runs, then stop(). */
  stop(deadlineMs: number): Promise<void> {
    this.abort.abort(new Error('instance stopping'));
    this.#scheduler.stopInstance(this.id);
    for (const run of this.#runs) run.abort(new Error('instance stopping'));
    return this.connector.stop(deadlineMs);
  }

  /**
   * Runs a registered task once, as a scheduled run would (same timeout, same signal). With
   * `signal`, aborting it aborts the run's signal, as the scheduler does when a run times out.
   * What a failed run throws is noted for the secret scan, as the scheduler would log it.
   */
  async runTask(
    budgetMs: number,
    name?: string,
    options: { signal?: AbortSignal } = {},
  ): Promise<Settled<void>> {
    const task = name ? this.tasks.find((t) => t.name === name) : this.tasks[0];
    if (!task) {
      throw new Error(
        name
          ? `no task named "${name}" is scheduled; scheduled: ${this.tasks.map((t) => t.name).join(', ') || 'none'}`
          : 'start() scheduled no task to poll with (ctx.scheduler.schedule)',
      );
    }
    this.run += 1;
    const controller = new AbortController();
    this.#runs.add(controller);
    const timeout = task.options.timeoutMs;
    const timer =
      timeout === undefined
        ? undefined
        : setTimeout(() => controller.abort(new Error(`run exceeded ${timeout} ms`)), timeout);
    const given = options.signal;
    const forward = () => controller.abort(given?.reason);
    given?.addEventListener('abort', forward, { once: true });
    try {
      const outcome = await within(task.run(controller.signal), budgetMs);
      if (outcome.settled && !outcome.ok) this.#capture.noteError(outcome.error);
      return outcome;
    } finally {
      if (timer) clearTimeout(timer);
      given?.removeEventListener('abort', forward);
      this.#runs.delete(controller);
    }
  }

  /** Starts a unit of work that is not a task run (a webhook call, a delivery). */
  nextRun(): void {
    this.run += 1;
  }

  #used(what: string, op?: JournalOp): void {
    if (this.#creating) this.createIo.push(what);
    if (op) this.journal.push({ op, run: this.run });
  }

  #httpFactory(real: HttpClientFactory): HttpClientFactory {
    const most = this.#requestTimeoutMs;
    const cap = (ms: number | undefined) => Math.min(ms ?? most, most);
    const used = (what: string) => this.#used(what);
    const requested = this.requestedTimeouts;
    return {
      create(options = {}) {
        if (options.timeoutMs !== undefined)
          requested.push({ what: 'ctx.http.create()', ms: options.timeoutMs, from: 'create' });
        const client = real.create({ ...options, timeoutMs: cap(options.timeoutMs) });
        const request = <T>(req: HttpRequest) => {
          const what = `${req.method ?? 'GET'} ${req.url}`;
          used(`ctx.http request ${what}`);
          requested.push(
            req.timeoutMs !== undefined
              ? { what, ms: req.timeoutMs, from: 'request' }
              : options.timeoutMs !== undefined
                ? { what, ms: options.timeoutMs, from: 'client' }
                : { what, ms: DEFAULT_TIMEOUT_MS, from: 'default' },
          );
          return client.request<T>(
            req.timeoutMs === undefined ? req : { ...req, timeoutMs: cap(req.timeoutMs) },
          );
        };
        const kitClient: HttpClient = {
          request,
          get: (url, req = {}) => request({ ...req, url, method: 'GET' }),
          post: (url, body, req = {}) => request({ ...req, url, method: 'POST', body }),
        };
        return kitClient;
      },
    };
  }
}
