/**
 * JSONata evaluation off the event loop. jsonata 2 evaluates asynchronously and an expression
 * may run for ever (a catastrophic regular expression, a huge range), so expressions run on
 * helper threads and a deadline bounds every evaluation: a runaway expression costs its thread,
 * which is terminated and replaced, never the bridge.
 *
 * Two ways to wait for an answer:
 * - evaluate(), awaited: what a running bridge uses. Each rule set has a thread of its own, so
 *   one instance's slow rules never hold up another's; its records are evaluated one at a time,
 *   in order, and a record's deadline runs from when the thread takes it up.
 * - evaluateBlocking(): the calling thread waits on a shared flag (Atomics.wait) and reads the
 *   answer straight off the message port. Only where a mapping must be synchronous and nothing
 *   else is being served: loading a config (rule examples), `ssf-bridge simulate`, fixtures.
 *
 * Each thread's heap is bounded too (EVALUATOR_HEAP_MB): an expression that builds a huge value
 * ends its thread, which is replaced, instead of taking the process's memory. What fails because
 * of the record is a RecordEvaluationError; anything else is the evaluator's own failure.
 */
import { getHeapStatistics } from 'node:v8';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';

export interface RuleSources {
  match: string;
  /** Field key (`subject`, `claims.reason_admin`, …) → expression source. */
  fields: Record<string, string>;
}

export type FieldResult = { value: unknown; error?: undefined } | { error: string; value?: undefined };

export type RuleResult =
  { matched: false; error?: string } | { matched: true; fields: Record<string, FieldResult> };

/** Every rule's results for one record, and how long the thread took over it. */
export interface Evaluation {
  results: RuleResult[];
  elapsedMs: number;
}

interface Answer {
  seq: number;
  error?: string;
  /** The error is the record's (a value the rules gave cannot be passed on), not the thread's. */
  recordFault?: boolean;
  results?: RuleResult[];
}

const WORKER_URL = new URL('./evaluator-worker.mjs', import.meta.url);

/** How long one record may take across all of a rule set's expressions. */
export const EVALUATION_DEADLINE_MS = 2_000;
/** How long a new thread may take to start and compile a rule set (no record is evaluated). */
const STARTUP_DEADLINE_MS = 30_000;
/** A rule set's thread unused this long is ended; the next record starts a new one. */
const IDLE_MS = 60_000;

/**
 * The heap a thread may use: 1 GiB, or the process's own default when that is smaller (a small
 * container). A rule that keeps building values on a record ends its thread with a clear error
 * when it reaches this (if the record's deadline has not come first), instead of taking the
 * process's memory. Not lower: on Node 20, a built-in call that allocates past a worker's limit in
 * one go (`$split` of a string of a hundred million characters gives an 800 MB list) aborts the
 * whole process rather than ending the thread, and that must take far more than a record or a
 * working rule holds. What a thread hands back is bounded by the worker (a value's depth and length).
 */
export const EVALUATOR_HEAP_MB = Math.min(1024, Math.floor(getHeapStatistics().heap_size_limit / 1_048_576));

function resourceLimits(heapMb: number) {
  return { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: Math.min(32, heapMb) };
}

/**
 * The record (with the rules) is at fault: it ran out of time or memory, or it or a value the
 * rules gave could not be passed between threads. The same record fails the same way again.
 * Any other error of evaluate() is the evaluator's own (a thread that could not start or was
 * ended), and the record may well map when tried again.
 */
export class RecordEvaluationError extends Error {}

export class EvaluationTimeout extends RecordEvaluationError {
  constructor(readonly deadlineMs: number) {
    super(`evaluation took longer than ${deadlineMs} ms`);
  }
}

/** Why a request could not be copied to the thread: a record too deeply nested, or not cloneable. */
function unsendable(err: unknown): RecordEvaluationError {
  if (err instanceof RangeError)
    return new RecordEvaluationError('the record is nested too deeply to be evaluated');
  return new RecordEvaluationError(`the record cannot be evaluated: ${(err as Error).message}`);
}

/** Why a thread ended: out of memory (the record's doing), or anything else (the thread's). */
function threadEnded(err: Error & { code?: string }, heapMb: number): Error {
  if (err.code === 'ERR_WORKER_OUT_OF_MEMORY')
    return new RecordEvaluationError(
      `the rules ran out of memory on the record (a rule set's thread may use ${heapMb} MB)`,
    );
  return err;
}

/** The error of an answer the thread gave instead of results. */
function answerError(answer: Answer): Error {
  const message = answer.error ?? 'no results';
  return answer.recordFault ? new RecordEvaluationError(message) : new Error(message);
}

/** A thread that could not start or take the rules: never the fault of a record. */
function startFailure(err: unknown): Error {
  return new Error(`the JSONata evaluator thread could not start: ${(err as Error).message}`, { cause: err });
}

/** The shared thread evaluateBlocking() waits on. */
class BlockingThread {
  readonly #flag = new Int32Array(new SharedArrayBuffer(4));
  readonly #port: MessagePort;
  readonly #worker: Worker;
  readonly defined = new Set<number>();
  #seq = 0;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#worker = new Worker(WORKER_URL, {
      workerData: { port: port2, flag: this.#flag.buffer },
      transferList: [port2],
      resourceLimits: resourceLimits(EVALUATOR_HEAP_MB),
    });
    // The thread must never keep a finished process alive.
    this.#worker.unref();
    this.#port.unref();
    // A thread that ran out of memory or failed otherwise is replaced before the next call; its
    // 'error' must have a listener, or it would be thrown on the main thread.
    const end = () => {
      this.ended = true;
    };
    this.#worker.on('error', end);
    this.#worker.on('exit', end);
  }

  /** Whether the thread has ended (seen only between calls: a blocked caller hears no events). */
  ended = false;

  call(request: Record<string, unknown>, deadlineMs: number): Answer {
    this.#seq = (this.#seq % 0x7fffffff) + 1;
    const seq = this.#seq;
    try {
      this.#port.postMessage({ ...request, seq });
    } catch (err) {
      throw unsendable(err);
    }
    const until = Date.now() + deadlineMs;
    while (Atomics.load(this.#flag, 0) !== seq) {
      const left = until - Date.now();
      if (left <= 0) throw new EvaluationTimeout(deadlineMs);
      Atomics.wait(this.#flag, 0, Atomics.load(this.#flag, 0), left);
    }
    for (;;) {
      const received = receiveMessageOnPort(this.#port);
      if (!received) throw new Error('the JSONata evaluator answered without a message');
      const answer = received.message as Answer;
      if (answer.seq === seq) return answer;
    }
  }

  terminate(): void {
    void this.#worker.terminate();
    this.#port.close();
  }
}

let blocking: BlockingThread | undefined;

function blockingThread(): BlockingThread {
  if (blocking?.ended) blocking = undefined;
  if (!blocking) {
    try {
      blocking = new BlockingThread();
    } catch (err) {
      throw startFailure(err);
    }
  }
  return blocking;
}

/** One rule set's own thread, answering one request at a time through promises. */
class SetThread {
  readonly #port: MessagePort;
  readonly #worker: Worker;
  #seq = 0;
  #pending: { seq: number; resolve: (answer: Answer) => void; reject: (err: Error) => void } | undefined;
  #ended: Error | undefined;

  constructor(heapMb: number) {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#worker = new Worker(WORKER_URL, {
      workerData: { port: port2 },
      transferList: [port2],
      resourceLimits: resourceLimits(heapMb),
    });
    // Only a pending call (its deadline timer) keeps the process alive, never the thread itself.
    this.#worker.unref();
    this.#port.unref();
    this.#port.on('message', (answer: Answer) => {
      if (this.#pending?.seq !== answer.seq) return;
      const { resolve } = this.#pending;
      this.#pending = undefined;
      resolve(answer);
    });
    this.#worker.on('error', (err) => this.#end(threadEnded(err, heapMb)));
    this.#worker.on('exit', (code) => this.#end(new Error(`the JSONata evaluator thread exited (${code})`)));
  }

  get ended(): boolean {
    return this.#ended !== undefined;
  }

  #end(err: Error): void {
    this.#ended ??= err;
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(this.#ended);
  }

  /** One request; the caller waits for its answer before it sends the next. */
  call(request: Record<string, unknown>, deadlineMs: number): Promise<Answer> {
    if (this.#ended) return Promise.reject(this.#ended);
    if (this.#pending) return Promise.reject(new Error('the JSONata evaluator thread is busy'));
    this.#seq = (this.#seq % 0x7fffffff) + 1;
    const seq = this.#seq;
    return new Promise<Answer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending = undefined;
        reject(new EvaluationTimeout(deadlineMs));
      }, deadlineMs);
      this.#pending = {
        seq,
        resolve: (answer) => {
          clearTimeout(timer);
          resolve(answer);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      try {
        this.#port.postMessage({ ...request, seq });
      } catch (err) {
        // The request never reached the thread (a record nested too deeply to copy): the thread
        // is idle and stays usable for the next record.
        this.#pending = undefined;
        clearTimeout(timer);
        reject(unsendable(err));
      }
    });
  }

  terminate(): void {
    this.#end(new Error('the JSONata evaluator thread was ended'));
    void this.#worker.terminate();
    this.#port.close();
  }
}

let nextSetId = 1;

/** A rule set, evaluated on its own thread or, where a caller must block, on the shared one. */
export class EvaluatorSet {
  readonly #id = nextSetId++;
  readonly #rules: RuleSources[];
  readonly #heapMb: number;
  #thread: SetThread | undefined;
  #ready: Promise<SetThread> | undefined;
  /** The end of the line of records waiting for this set's thread. */
  #tail: Promise<unknown> = Promise.resolve();
  #idle: NodeJS.Timeout | undefined;

  /** `heapMb`: the heap this set's thread may use (EVALUATOR_HEAP_MB; less only in tests). */
  constructor(rules: RuleSources[], options: { heapMb?: number } = {}) {
    this.#rules = rules;
    this.#heapMb = options.heapMb ?? EVALUATOR_HEAP_MB;
  }

  /**
   * Every rule's match result and, for matching rules, each field's value or error, without
   * blocking the event loop. Records wait their turn; `deadlineMs` runs from when the thread
   * takes this one up. On EvaluationTimeout the thread has been replaced.
   */
  evaluate(record: unknown, deadlineMs = EVALUATION_DEADLINE_MS): Promise<Evaluation> {
    const turn = this.#tail.then(() => this.#evaluateNow(record, deadlineMs));
    this.#tail = turn.catch(() => undefined);
    return turn;
  }

  async #evaluateNow(record: unknown, deadlineMs: number): Promise<Evaluation> {
    if (this.#idle) clearTimeout(this.#idle);
    const thread = await this.#started();
    const started = performance.now();
    try {
      const answer = await thread.call({ set: this.#id, record }, deadlineMs);
      if (answer.error || !answer.results) throw answerError(answer);
      return { results: answer.results, elapsedMs: performance.now() - started };
    } catch (err) {
      // A timed-out thread may still be spinning: end it so the next record gets a fresh one.
      if (err instanceof EvaluationTimeout || thread.ended) this.#drop(thread);
      throw err;
    } finally {
      this.#idle = setTimeout(() => this.close(), IDLE_MS);
      this.#idle.unref();
    }
  }

  /**
   * This set's thread, started and given the rules if it is not running. Whatever keeps it from
   * starting is the evaluator's failure, never a record's (see RecordEvaluationError).
   */
  #started(): Promise<SetThread> {
    if (this.#thread && !this.#thread.ended && this.#ready) return this.#ready;
    let thread: SetThread;
    try {
      thread = new SetThread(this.#heapMb);
    } catch (err) {
      return Promise.reject(startFailure(err));
    }
    this.#thread = thread;
    this.#ready = thread
      .call({ define: { id: this.#id, rules: this.#rules } }, STARTUP_DEADLINE_MS)
      .then((defined) => {
        if (defined.error) throw new Error(defined.error);
        return thread;
      })
      .catch((err: unknown) => {
        this.#drop(thread);
        throw startFailure(err);
      });
    return this.#ready;
  }

  #drop(thread: SetThread): void {
    thread.terminate();
    if (this.#thread === thread) {
      this.#thread = undefined;
      this.#ready = undefined;
    }
  }

  /** Ends this set's thread (a later evaluate() starts a new one). */
  close(): void {
    if (this.#idle) clearTimeout(this.#idle);
    this.#idle = undefined;
    if (this.#thread) this.#drop(this.#thread);
  }

  /**
   * The same as evaluate(), blocking the calling thread until the answer or the deadline. Never
   * on a path that serves requests: it stops the event loop for as long as the rules take.
   */
  evaluateBlocking(record: unknown, deadlineMs = EVALUATION_DEADLINE_MS): RuleResult[] {
    const worker = blockingThread();
    const replace = () => {
      // A timed-out thread may still be spinning, or have died (out of memory: a blocked caller
      // cannot hear it, and waits out the deadline): the next record gets a fresh one.
      worker.terminate();
      if (blocking === worker) blocking = undefined;
    };
    if (!worker.defined.has(this.#id)) {
      try {
        const defined = worker.call({ define: { id: this.#id, rules: this.#rules } }, STARTUP_DEADLINE_MS);
        if (defined.error) throw new Error(defined.error);
      } catch (err) {
        if (err instanceof EvaluationTimeout) replace();
        throw startFailure(err);
      }
      worker.defined.add(this.#id);
    }
    try {
      const answer = worker.call({ set: this.#id, record }, deadlineMs);
      if (answer.error || !answer.results) throw answerError(answer);
      return answer.results;
    } catch (err) {
      if (err instanceof EvaluationTimeout) replace();
      throw err;
    }
  }
}
