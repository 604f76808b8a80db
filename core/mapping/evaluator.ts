/**
 * Synchronous JSONata evaluation. A connector's map() is synchronous and pure, but jsonata 2
 * evaluates asynchronously; so expressions run on one shared helper thread while the caller
 * waits on a shared flag (Atomics.wait) and reads the answer straight off the message port.
 * A deadline bounds every evaluation: a runaway expression costs the thread, never the bridge.
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

interface Answer {
  seq: number;
  error?: string;
  results?: RuleResult[];
}

const WORKER_URL = new URL('./evaluator-worker.mjs', import.meta.url);

/** How long one record may take across all of a rule set's expressions. */
export const EVALUATION_DEADLINE_MS = 2_000;

class EvaluatorThread {
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
    this.#port.postMessage({ ...request, seq });
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

export class EvaluationTimeout extends Error {
  constructor(deadlineMs: number) {
    super(`evaluation took longer than ${deadlineMs} ms`);
  }
}

let thread: EvaluatorThread | undefined;
let nextSetId = 1;

function current(): EvaluatorThread {
  thread ??= new EvaluatorThread();
  return thread;
}

/** A rule set registered with the evaluator thread; defined again after a thread restart. */
export class EvaluatorSet {
  readonly #id = nextSetId++;
  readonly #rules: RuleSources[];

  constructor(rules: RuleSources[]) {
    this.#rules = rules;
  }

  /** Every rule's match result and, for matching rules, each field's value or error. */
  evaluate(record: unknown, deadlineMs = EVALUATION_DEADLINE_MS): RuleResult[] {
    const worker = current();
    try {
      if (!worker.defined.has(this.#id)) {
        const defined = worker.call({ define: { id: this.#id, rules: this.#rules } }, deadlineMs);
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
        if (thread === worker) thread = undefined;
      }
      throw err;
    }
  }
}
