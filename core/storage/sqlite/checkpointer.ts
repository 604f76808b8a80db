/**
 * Moves SQLite's WAL checkpoints off the event loop. By default SQLite checkpoints inside the
 * commit that pushes the log past 1,000 pages: that commit copies the pages into the database
 * file and waits for two fsyncs, and the event loop (which serves ingest and delivery) stalls
 * with it. The store turns automatic checkpoints off and this checkpointer runs them on a
 * thread with its own connection whenever the log has grown past a threshold. In WAL mode a
 * checkpoint and the writer do not block each other.
 *
 * If the thread fails, the store's own connection takes automatic checkpoints back, so the log
 * can never grow without bound.
 */
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { stopWorker } from './stop-worker.ts';

const WORKER_URL = new URL('./checkpoint-worker.mjs', import.meta.url);

export interface CheckpointerOptions {
  /** The database file; its log is `<path>-wal`. */
  path: string;
  /** Checkpoint once the log is at least this large; default 4 MiB (SQLite's 1,000 pages). */
  thresholdBytes?: number;
  /** How often the log's size is looked at; default 250 ms. */
  intervalMs?: number;
  busyTimeoutMs?: number;
  /** Called once if the thread fails; the store then checkpoints on its own connection again. */
  onFailure(reason: string): void;
  /**
   * Holds the store's commits back until the returned function is called. Used for a short
   * second pass when commits kept arriving during a checkpoint: with nothing left in the log to
   * copy, the next commit starts the log again from its beginning.
   */
  holdWrites?: () => () => void;
}

interface Result {
  seq: number;
  error?: string;
  busy?: number;
  log?: number;
  checkpointed?: number;
}

export class WalCheckpointer {
  readonly #options: Required<Omit<CheckpointerOptions, 'onFailure' | 'holdWrites'>> &
    Pick<CheckpointerOptions, 'onFailure' | 'holdWrites'>;
  readonly #worker: Worker;
  readonly #timer: NodeJS.Timeout;
  readonly #waiting = new Map<number, (result: Result) => void>();
  #seq = 0;
  #running = false;
  #failed = false;
  #closed = false;
  /** Checkpoints completed, for tests and diagnostics. */
  completed = 0;
  /** Second passes made with commits held, for tests and diagnostics. */
  caughtUp = 0;

  constructor(options: CheckpointerOptions) {
    this.#options = {
      thresholdBytes: 4 * 1024 * 1024,
      intervalMs: 250,
      busyTimeoutMs: 5000,
      ...options,
    };
    this.#worker = new Worker(WORKER_URL, {
      workerData: { path: options.path, busyTimeoutMs: this.#options.busyTimeoutMs },
    });
    this.#worker.unref();
    this.#worker.on('message', (result: Result) => {
      const resolve = this.#waiting.get(result.seq);
      this.#waiting.delete(result.seq);
      resolve?.(result);
    });
    this.#worker.on('error', (err) => this.#fail(`the checkpoint thread failed: ${err.message}`));
    this.#worker.on('exit', (code) => {
      if (!this.#closed) this.#fail(`the checkpoint thread exited (code ${code})`);
    });
    this.#timer = setInterval(() => void this.#tick(), this.#options.intervalMs);
    this.#timer.unref();
  }

  get failed(): boolean {
    return this.#failed;
  }

  /** The log's size in bytes (0 when it does not exist). */
  logBytes(): number {
    try {
      return statSync(`${this.#options.path}-wal`).size;
    } catch {
      return 0;
    }
  }

  /** Runs one checkpoint now on the thread; resolves with SQLite's answer. */
  checkpoint(mode: 'PASSIVE' | 'TRUNCATE' = 'PASSIVE'): Promise<Result> {
    if (this.#failed || this.#closed)
      return Promise.resolve({ seq: 0, error: 'the checkpointer is stopped' });
    const seq = ++this.#seq;
    return new Promise((resolve) => {
      this.#waiting.set(seq, resolve);
      this.#worker.postMessage({ type: 'checkpoint', mode, seq });
    });
  }

  async #tick(): Promise<void> {
    if (this.#running || this.#failed || this.#closed) return;
    if (this.logBytes() < this.#options.thresholdBytes) return;
    this.#running = true;
    try {
      let result = await this.checkpoint('PASSIVE');
      if (!result.error && this.#options.holdWrites) {
        // Under steady load commits append while the pages are copied, the log is never fully
        // copied, and it never starts over: it grows without bound and every page read searches
        // more of it. A second pass with commits held copies the few frames added meanwhile.
        const release = this.#options.holdWrites();
        try {
          result = await this.checkpoint('PASSIVE');
        } finally {
          release();
        }
        if (!result.error) this.caughtUp += 1;
      }
      if (result.error) this.#fail(`a checkpoint failed: ${result.error}`);
      else this.completed += 1;
    } finally {
      this.#running = false;
    }
  }

  #fail(reason: string): void {
    if (this.#failed || this.#closed) return;
    this.#failed = true;
    clearInterval(this.#timer);
    for (const resolve of this.#waiting.values()) resolve({ seq: 0, error: reason });
    this.#waiting.clear();
    void this.#worker.terminate();
    this.#options.onFailure(reason);
  }

  /** Stops the thread after any checkpoint in progress; the store checkpoints itself on close. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    if (this.#failed) return;
    await stopWorker(this.#worker, { type: 'close' }, 5000);
    for (const resolve of this.#waiting.values()) resolve({ seq: 0, error: 'the checkpointer is stopped' });
    this.#waiting.clear();
  }
}
