/**
 * The embedded store with its SQLite connection on a thread of its own. better-sqlite3 is
 * synchronous: on the event loop, every statement and commit holds up the requests and
 * deliveries the loop serves (about a third of its time under load). Here the same SqliteStore
 * runs on a worker thread, and this class forwards each call of the async Store interface to it.
 * Durability is unchanged: a call resolves only after the thread has committed (and, for accepted
 * events, synced) its work.
 *
 * If the thread dies (it should not: SQL errors come back as rejected calls), the calls it was
 * serving are rejected and the next call starts a new thread on the same file.
 */
import { Worker } from 'node:worker_threads';
import type { Logger } from '../../plugin-api/types.ts';
import type {
  CheckpointStore,
  DeadLetterStore,
  DeliveryStore,
  EventStore,
  LeaderLeaseStore,
  OneTimeIdStore,
  OperatorStore,
  Store,
  StreamStore,
} from '../types.ts';
import type { SqliteStoreOptions } from './store.ts';
import { stopWorker } from './stop-worker.ts';
import {
  STORE_METHODS,
  SUB_STORE_METHODS,
  deserializeError,
  type CallMessage,
  type HostMessage,
  type ThreadStoreOptions,
} from './thread-protocol.ts';
import { WriterLock } from './writer-lock.ts';

const THREAD_URL = new URL('./store-thread.mjs', import.meta.url);
/** How long close waits for the thread to commit what it holds before stopping it. */
const CLOSE_DEADLINE_MS = 10_000;

interface PendingCall {
  resolve(value: unknown): void;
  reject(err: unknown): void;
}

export class ThreadedSqliteStore implements Store {
  readonly driver = 'sqlite' as const;
  readonly events: EventStore;
  readonly deliveries: DeliveryStore;
  readonly deadLetters: DeadLetterStore;
  readonly checkpoints: CheckpointStore;
  readonly streams: StreamStore;
  readonly leases: LeaderLeaseStore;
  readonly oneTimeIds: OneTimeIdStore;
  readonly operator: OperatorStore;
  declare accept: Store['accept'];
  declare stats: Store['stats'];
  declare prune: Store['prune'];
  declare schemaVersion: Store['schemaVersion'];

  readonly #options: ThreadStoreOptions;
  readonly #logger: Logger | undefined;
  readonly #pending = new Map<number, PendingCall>();
  #thread: Worker | undefined;
  #starting: Promise<Worker> | undefined;
  #nextId = 0;
  #closed = false;
  /** Threads started so far (1 unless one died); for tests and diagnostics. */
  threadsStarted = 0;

  /**
   * Held here, not on the thread: a thread that dies must not take the lock with it while this
   * process still owns the file, nor leave it held where its replacement could not take it.
   */
  #writerLock: WriterLock | undefined;

  private constructor(options: SqliteStoreOptions) {
    const { logger, exclusive: _exclusive, writerLock: _writerLock, ...threadOptions } = options;
    this.#options = threadOptions;
    this.#logger = logger;
    for (const name of STORE_METHODS) {
      (this as Record<string, unknown>)[name] = (...args: unknown[]) => this.#call([name], args);
    }
    const part = <T>(name: keyof typeof SUB_STORE_METHODS): T =>
      Object.fromEntries(
        SUB_STORE_METHODS[name].map((method) => [
          method,
          (...args: unknown[]) => this.#call([name, method], args),
        ]),
      ) as T;
    this.events = part('events');
    this.deliveries = part('deliveries');
    this.deadLetters = part('deadLetters');
    this.checkpoints = part('checkpoints');
    this.streams = part('streams');
    this.leases = part('leases');
    this.oneTimeIds = part('oneTimeIds');
    this.operator = part('operator');
  }

  /** Opens the store on a new thread; rejects with the store's own error if it cannot open. */
  static async open(options: SqliteStoreOptions): Promise<ThreadedSqliteStore> {
    const store = new ThreadedSqliteStore(options);
    store.#writerLock = WriterLock.forStore(options);
    try {
      await store.#ensureThread();
    } catch (err) {
      store.#writerLock?.release();
      throw err;
    }
    return store;
  }

  #call(method: CallMessage['method'], args: unknown[]): Promise<unknown> {
    if (this.#closed) return Promise.reject(new Error('the store is closed'));
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const send = (thread: Worker) => {
        // While calls are open the thread keeps the process alive, so an awaited call settles.
        if (this.#pending.size === 1) thread.ref();
        thread.postMessage({ id, method, args } satisfies CallMessage);
      };
      if (this.#thread !== undefined) send(this.#thread);
      else
        this.#ensureThread().then(send, (err: unknown) => {
          this.#pending.delete(id);
          reject(err);
        });
    });
  }

  #ensureThread(): Promise<Worker> {
    if (this.#thread !== undefined) return Promise.resolve(this.#thread);
    this.#starting ??= this.#startThread().finally(() => (this.#starting = undefined));
    return this.#starting;
  }

  #startThread(): Promise<Worker> {
    this.threadsStarted += 1;
    const thread = new Worker(THREAD_URL, { workerData: this.#options });
    return new Promise<Worker>((resolve, reject) => {
      let ready = false;
      thread.on('message', (message: HostMessage) => {
        switch (message.kind) {
          case 'ready':
            ready = true;
            this.#thread = thread;
            if (this.#pending.size === 0) thread.unref();
            resolve(thread);
            return;
          case 'failed':
            reject(deserializeError(message.error));
            return;
          case 'result': {
            const call = this.#pending.get(message.id);
            this.#pending.delete(message.id);
            if (message.ok) call?.resolve(message.value);
            else call?.reject(deserializeError(message.error));
            if (this.#pending.size === 0) thread.unref();
            return;
          }
          case 'log':
            this.#logger?.[message.level](message.fields, message.message);
            return;
        }
      });
      thread.on('error', (err) => {
        if (!ready) reject(err);
        else this.#logger?.error({ err: err.message }, 'the database thread failed');
      });
      thread.on('exit', (code) => {
        if (!ready) {
          reject(new Error(`the database thread exited (code ${code}) before the store opened`));
          return;
        }
        if (this.#thread === thread) this.#thread = undefined;
        if (this.#closed) return;
        // Everything the thread was serving is lost with it; the callers see why.
        const lost = this.#failPending(`the database thread stopped (code ${code}) before answering`);
        this.#logger?.error(
          { code, calls: lost },
          'the database thread stopped; the next store call starts a new one',
        );
      });
    });
  }

  /** Rejects every call still waiting for an answer; returns how many there were. */
  #failPending(message: string): number {
    const calls = [...this.#pending.values()];
    this.#pending.clear();
    for (const call of calls) call.reject(new Error(message));
    return calls.length;
  }

  /** Stops the thread after it has answered, committed and synced every call made before. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    try {
      await this.#starting?.catch(() => undefined);
      const thread = this.#thread;
      if (thread === undefined) return;
      await stopWorker(thread, 'close', CLOSE_DEADLINE_MS);
      this.#failPending('the store closed before answering');
    } finally {
      this.#writerLock?.release();
    }
  }

  /** Ends the thread abruptly, as a crash would (for tests). */
  async crashThreadForTest(): Promise<void> {
    await this.#thread?.terminate();
  }
}
