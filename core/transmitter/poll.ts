/**
 * RFC 8936 poll requests and the wake-up signal long polls wait on.
 */
import type { SetError } from '../storage/types.ts';
import { TransmitterHttpError } from './errors.ts';
import { isPlainObject } from './stream-model.ts';

export interface PollRequest {
  /** Absent: the transmitter chooses. 0: acknowledge only. */
  maxEvents?: number;
  returnImmediately: boolean;
  ack: string[];
  setErrs: Record<string, SetError>;
}

const MAX_ACKS = 10_000;
const MAX_TEXT = 1024;

function invalid(description: string): TransmitterHttpError {
  return new TransmitterHttpError(400, 'invalid_request', description, 'SSF_ERR_TRANSMITTER_POLL_INVALID');
}

function readSetErrs(value: unknown): Record<string, SetError> {
  if (!isPlainObject(value)) throw invalid('setErrs must be an object keyed by jti');
  const out: Record<string, SetError> = {};
  const entries = Object.entries(value);
  if (entries.length > MAX_ACKS) throw invalid(`setErrs may report at most ${MAX_ACKS} SETs`);
  for (const [jti, error] of entries) {
    if (!isPlainObject(error) || typeof error.err !== 'string' || error.err.length === 0) {
      throw invalid(`setErrs["${jti.slice(0, 64)}"] must be {"err": "<code>", "description": "<text>"}`);
    }
    if (error.description !== undefined && typeof error.description !== 'string') {
      throw invalid(`setErrs["${jti.slice(0, 64)}"].description must be a string`);
    }
    out[jti] = {
      err: error.err.slice(0, MAX_TEXT),
      ...(typeof error.description === 'string' ? { description: error.description.slice(0, MAX_TEXT) } : {}),
    };
  }
  return out;
}

/** Reads a poll body (RFC 8936 §2.1); an absent body asks for the defaults. 400 when malformed. */
export function readPollRequest(body: unknown): PollRequest {
  const input = body === undefined ? {} : body;
  if (!isPlainObject(input)) throw invalid('the poll request must be a JSON object');
  const request: PollRequest = { returnImmediately: false, ack: [], setErrs: {} };
  if (input.maxEvents !== undefined) {
    if (
      typeof input.maxEvents !== 'number' ||
      !Number.isSafeInteger(input.maxEvents) ||
      input.maxEvents < 0
    ) {
      throw invalid('maxEvents must be a whole number ≥ 0');
    }
    request.maxEvents = input.maxEvents;
  }
  if (input.returnImmediately !== undefined) {
    if (typeof input.returnImmediately !== 'boolean')
      throw invalid('returnImmediately must be true or false');
    request.returnImmediately = input.returnImmediately;
  }
  if (input.ack !== undefined) {
    if (!Array.isArray(input.ack) || input.ack.some((j) => typeof j !== 'string')) {
      throw invalid('ack must be an array of jti strings');
    }
    if (input.ack.length > MAX_ACKS) throw invalid(`ack may name at most ${MAX_ACKS} SETs`);
    request.ack = [...new Set(input.ack as string[])];
  }
  if (input.setErrs !== undefined) request.setErrs = readSetErrs(input.setErrs);
  return request;
}

/**
 * Wakes long polls when a SET is queued for their stream by this process. Other instances'
 * SETs are found by the periodic store check of the waiting poll.
 */
export class QueueSignal {
  readonly #waiters = new Map<string, Set<() => void>>();
  #closed = false;

  notify(streamId: string): void {
    const waiters = this.#waiters.get(streamId);
    if (!waiters) return;
    this.#waiters.delete(streamId);
    for (const wake of waiters) wake();
  }

  /** Resolves when the stream is notified, after `ms`, or when `signal` aborts — whichever is first. */
  wait(streamId: string, ms: number, signal?: AbortSignal): Promise<void> {
    if (this.#closed || signal?.aborted || ms <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      let waiters = this.#waiters.get(streamId);
      if (!waiters) this.#waiters.set(streamId, (waiters = new Set()));
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#waiters.get(streamId)?.delete(done);
        if (this.#waiters.get(streamId)?.size === 0) this.#waiters.delete(streamId);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
      waiters.add(done);
    });
  }

  /** Wakes every waiter and refuses new waits (shutdown). */
  close(): void {
    this.#closed = true;
    for (const streamId of [...this.#waiters.keys()]) this.notify(streamId);
  }

  get closed(): boolean {
    return this.#closed;
  }

  waiting(): number {
    let n = 0;
    for (const set of this.#waiters.values()) n += set.size;
    return n;
  }
}
