import { RetryableError } from '../../core/plugin-api/index.ts';

/**
 * Runs work one at a time, at least `intervalMs` apart (counted from the end of the previous
 * run), for APIs with a per-tenant request rate such as Identity Protection's one per second.
 */
export class Pacer {
  #chain: Promise<unknown> = Promise.resolve();
  #lastEnd = Number.NEGATIVE_INFINITY;

  constructor(
    private readonly intervalMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  run<T>(work: () => Promise<T>, signal: AbortSignal): Promise<T> {
    const turn = this.#chain.then(async () => {
      await this.#wait(this.#lastEnd + this.intervalMs - this.now(), signal);
      try {
        return await work();
      } finally {
        this.#lastEnd = this.now();
      }
    });
    this.#chain = turn.catch(() => undefined);
    return turn;
  }

  #wait(ms: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(aborted());
    if (ms <= 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(timer);
        reject(aborted());
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }
}

function aborted(): RetryableError {
  return new RetryableError('aborted while waiting for the Identity Protection request slot', {
    code: 'SSF_ERR_HTTP_ABORTED',
  });
}
