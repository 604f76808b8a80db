import { setTimeout as sleep } from 'node:timers/promises';
import {
  isBridgeError,
  PermanentError,
  RetryableError,
  type HttpClient,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import type { JamfProConfig } from './config.ts';
import { inventoryPageSchema } from './mapping.ts';

/** Inventory sections every read asks for: identity, user, serial number and group memberships. */
const SECTIONS = ['GENERAL', 'USER_AND_LOCATION', 'HARDWARE', 'GROUP_MEMBERSHIPS']
  .map((s) => `section=${s}`)
  .join('&');

/** Time a reconciliation scan may spend waiting on throttling and server errors. */
export class WaitBudget {
  #left: number;
  constructor(totalMs: number) {
    this.#left = totalMs;
  }
  take(ms: number): boolean {
    if (ms > this.#left) return false;
    this.#left -= ms;
    return true;
  }
}

/** In-run retries of a failure that carries no Retry-After (a 5xx, a reset connection). */
const BLIND_RETRIES = 2;

/**
 * Runs `fn`, retrying retryable failures within the run: after Retry-After when the API sends
 * one (throttling), otherwise up to twice with a short backoff. Timeouts are not retried in the
 * run (the request already waited its whole deadline); the next scheduled run tries again.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  budget: WaitBudget,
  signal: AbortSignal,
): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RetryableError) || signal.aborted) throw err;
      if (err.code === 'SSF_ERR_HTTP_TIMEOUT' || err.code === 'SSF_ERR_HTTP_ABORTED') throw err;
      const wait = err.retryAfterMs ?? (attempt < BLIND_RETRIES ? 500 * 2 ** attempt : undefined);
      if (wait === undefined || !budget.take(wait)) throw err;
      await sleep(wait, undefined, { signal });
    }
  }
}

/** Runs `fn` over `items` with at most `limit` in flight; stops starting new ones after a failure. */
export async function eachLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const item = items[next++] as T;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function isNotFound(err: unknown): boolean {
  return isBridgeError(err) && err.errorClass === 'permanent' && err.detail?.['status'] === 404;
}

/** The Jamf Pro API with an API client's credentials (OAuth token from /api/oauth/token, cached by the core client). */
export class JamfClient {
  readonly #http: HttpClient;

  constructor(ctx: InboundContext<unknown>, config: JamfProConfig) {
    const base = config.url.replace(/\/+$/, '');
    this.#http = ctx.http.create({
      baseURL: base,
      auth: {
        type: 'oauth2_client_credentials',
        tokenUrl: `${base}/api/oauth/token`,
        clientId: config.client_id,
        clientSecret: config.client_secret,
        clientAuth: 'body',
      },
    });
  }

  /** One computer with its identity and group memberships, or null when Jamf Pro no longer has it. */
  async computer(id: string, signal: AbortSignal): Promise<unknown> {
    try {
      const res = await this.#http.get(`/api/v1/computers-inventory/${encodeURIComponent(id)}?${SECTIONS}`, {
        signal,
      });
      return res.data;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw err;
    }
  }

  /** A page of the inventory, sorted by id so pages do not shift while computers report in. */
  async inventoryPage(
    page: number,
    pageSize: number,
    signal: AbortSignal,
  ): Promise<{ totalCount: number; results: unknown[] }> {
    const res = await this.#http.get(
      `/api/v1/computers-inventory?${SECTIONS}&page=${page}&page-size=${pageSize}&sort=id%3Aasc`,
      { signal },
    );
    const parsed = inventoryPageSchema.safeParse(res.data);
    if (!parsed.success) {
      throw new PermanentError('Jamf Pro answered the inventory without totalCount and results', {
        code: 'SSF_ERR_JAMF_PAYLOAD',
      });
    }
    return parsed.data;
  }

  async probe(signal: AbortSignal): Promise<void> {
    await this.#http.get('/api/v1/computers-inventory?section=GENERAL&page=0&page-size=1', { signal });
  }
}
