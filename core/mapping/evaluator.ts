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
 */
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
  results?: RuleResult[];
}

const WORKER_URL = new URL('./evaluator-worker.mjs', import.meta.url);

/** How long one record may take across all of a rule set's expressions. */
export const EVALUATION_DEADLINE_MS = 2_000;
/** How long a new thread may take to start and compile a rule set (no record is evaluated). */
const STARTUP_DEADLINE_MS = 30_000;
/** A rule set's thread unused this long is ended; the next record starts a new one. */
const IDLE_MS = 60_000;

export class EvaluationTimeout extends Error {
  constructor(readonly deadlineMs: number) {
    super(`evaluation took longer than ${deadlineMs} ms`);
  }
}

/** Why a request could not be copied to the thread: a record too deeply nested, or not cloneable. */
function unsendable(err: unknown): Error {
  if (err instanceof RangeError) return new Error('the record is nested too deeply to be evaluated');
  return new Error(`the record cannot be evaluated: ${(err as Error).message}`);
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
    });
    // The thread must never keep a finished process alive.
    this.#worker.unref();
    this.#port.unref();
  }

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
  blocking ??= new BlockingThread();
  return blocking;
}

/** One rule set's own thread, answering one request at a time through promises. */
class SetThread {
  readonly #port: MessagePort;
  readonly #worker: Worker;
  #seq = 0;
  #pending: { seq: number; resolve: (answer: Answer) => void; reject: (err: Error) => void } | undefined;
  #ended: Error | undefined;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.#port = port1;
    this.#worker = new Worker(WORKER_URL, { workerData: { port: port2 }, transferList: [port2] });
    // Only a pending call (its deadline timer) keeps the process alive, never the thread itself.
    this.#worker.unref();
    this.#port.unref();
    this.#port.on('message', (answer: Answer) => {
      if (this.#pending?.seq !== answer.seq) return;
      const { resolve } = this.#pending;
      this.#pending = undefined;
      resolve(answer);
    });
    this.#worker.on('error', (err) => this.#end(err));
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
  #thread: SetThread | undefined;
  #ready: Promise<SetThread> | undefined;
  /** The end of the line of records waiting for this set's thread. */
  #tail: Promise<unknown> = Promise.resolve();
  #idle: NodeJS.Timeout | undefined;

  constructor(rules: RuleSources[]) {
    this.#rules = rules;
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
      if (answer.error || !answer.results) throw new Error(answer.error ?? 'no results');
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

  /** This set's thread, started and given the rules if it is not running. */
  #started(): Promise<SetThread> {
    if (this.#thread && !this.#thread.ended && this.#ready) return this.#ready;
    const thread = new SetThread();
    this.#thread = thread;
    this.#ready = thread
      .call({ define: { id: this.#id, rules: this.#rules } }, STARTUP_DEADLINE_MS)
      .then((defined) => {
        if (defined.error) throw new Error(defined.error);
        return thread;
      })
      .catch((err: unknown) => {
        this.#drop(thread);
        throw err;
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
    try {
      if (!worker.defined.has(this.#id)) {
        const defined = worker.call({ define: { id: this.#id, rules: this.#rules } }, STARTUP_DEADLINE_MS);
        if (defined.error) throw new Error(defined.error);
        worker.defined.add(this.#id);
      }
      const answer = worker.call({ set: this.#id, record }, deadlineMs);
      if (answer.error || !answer.results) throw new Error(answer.error ?? 'no results');
      return answer.results;
    } catch (err) {
      // A timed-out thread may still be spinning: replace it so the next record gets a fresh one.
      if (err instanceof EvaluationTimeout) {
        worker.terminate();
        if (blocking === worker) blocking = undefined;
      }
      throw err;
    }
  }
}
