/**
 * The scan machinery the MDM connectors share (intune, kandji, jamf-pro's reconciliation): a
 * scheduled task that reads the whole device inventory, retries within a budget of waiting time,
 * reports failures in the instance status and stops within the host's deadline; the `check`
 * that probes the API; and the stored device state.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  duration,
  isBridgeError,
  PermanentError,
  RetryableError,
  type CheckResult,
  type Counter,
  type InboundConnector,
  type InboundContext,
  type ScheduledTask,
  z,
} from '../../core/plugin-api/index.ts';
import { emptyScanState, type ScanState } from './mdm-mapping.ts';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Config field of a vendor API address: https only, since the API credentials (a client secret,
 * an API token, an account's password) go with every request; plain http only for the local
 * machine (a proxy or test double on the same host).
 */
export function vendorUrlField(description: string) {
  return z
    .url({ protocol: /^https?$/, message: 'must be an https URL' })
    .refine(
      (value) => {
        // Not a URL at all: z.url() says so already.
        if (!URL.canParse(value)) return true;
        const url = new URL(value);
        return url.protocol === 'https:' || LOCAL_HOSTS.has(url.hostname);
      },
      { message: 'must be an https URL (the credentials would travel in clear text over http)' },
    )
    .meta({ description });
}

/** Config field bounding the waiting of one scan (see WaitBudget). */
export const maxRetryWaitField = duration().prefault('2m').meta({
  description:
    'Longest total time one scan waits on throttling (429 Retry-After) and server errors before it gives up until the next scan.',
});

/**
 * Time a scan may spend waiting on throttling and server errors. The API answers 429 with
 * Retry-After; the scan waits that long while its budget lasts, then gives up until the next run.
 */
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
/** The longest backoff between two attempts that Retry-After does not lengthen. */
const MAX_BACKOFF_MS = 30_000;

/**
 * Runs `fn`, retrying retryable failures within the run: after Retry-After when the API sends
 * one (throttling; never sooner than a doubling backoff), otherwise up to twice with that backoff. Timeouts are not retried in the
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
      const backoff = Math.min(MAX_BACKOFF_MS, 500 * 2 ** attempt);
      // Throttled: at least the backoff, since Retry-After: 0 (or a reset already past, by a
      // clock ahead of the vendor's) would otherwise retry at once until the budget of
      // requests, not of waiting, ran out.
      const wait =
        err.retryAfterMs !== undefined
          ? Math.max(err.retryAfterMs, backoff)
          : attempt < BLIND_RETRIES
            ? backoff
            : undefined;
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

/**
 * The stored state of every device. One this version cannot read (written by a newer one, or
 * damaged) starts over with a baseline rather than guess transitions from it.
 */
export async function loadScanState<S extends ScanState<unknown>>(
  ctx: InboundContext<S>,
  schema: z.ZodType<S>,
): Promise<S> {
  const stored = await ctx.checkpoints.get();
  if (stored === undefined) return emptyScanState() as S;
  const parsed = schema.safeParse(stored);
  if (parsed.success) return parsed.data;
  ctx.logger.warn(
    { problems: parsed.error.issues.length },
    'stored device state is not readable; rebuilding the baseline',
  );
  return emptyScanState() as S;
}

/** `check`: a small read proves the credentials, the permission and the endpoint. */
async function probeCheck(probe: () => Promise<void>, answered: string): Promise<CheckResult> {
  try {
    await probe();
    return { ok: true, message: answered };
  } catch (err) {
    return {
      ok: false,
      message: err instanceof Error ? err.message : String(err),
      retryable: !(isBridgeError(err) && err.errorClass === 'permanent'),
    };
  }
}

export interface ScanningOptions {
  /** Task name on the scheduler. */
  task: string;
  /** False leaves the task unscheduled (jamf-pro with `reconcile: false`). */
  enabled?: boolean;
  everyMs: number;
  /** Upper bound of the start jitter (a tenth of the interval below it). */
  maxJitterMs: number;
  /** Runs by outcome: what `scan` returns (`ok` by default), or `failed`. */
  runs: Counter;
  /** Status message prefix when the API refuses the credentials. */
  refused: string;
  scan(signal: AbortSignal): Promise<'ok' | 'partial' | void>;
  /** A small read for `check`, and what `check` says when it succeeds. */
  probe(signal: AbortSignal): Promise<void>;
  answered: string;
}

/**
 * An instance that scans on its scheduler: `check` probes the API, `start` schedules the scan,
 * `stop` waits for a run in flight until the deadline. A failed run sets the instance status
 * (refused credentials and other permanent errors as permanent) and is rethrown to the
 * scheduler; a run cut short by stop() is not a failure.
 */
export function scanningConnector<S>(ctx: InboundContext<S>, options: ScanningOptions): InboundConnector {
  const stopping = new AbortController();
  let task: ScheduledTask | undefined;
  let running: Promise<void> | undefined;

  async function run(taskSignal: AbortSignal): Promise<void> {
    try {
      const outcome = await options.scan(AbortSignal.any([taskSignal, stopping.signal]));
      options.runs.inc({ outcome: outcome ?? 'ok' });
      ctx.status.success();
    } catch (err) {
      if (stopping.signal.aborted) return;
      options.runs.inc({ outcome: 'failed' });
      const message = err instanceof Error ? err.message : String(err);
      const auth = err instanceof PermanentError && err.authFailure;
      ctx.status.set(
        auth || (isBridgeError(err) && err.errorClass === 'permanent')
          ? 'permanent_error'
          : 'recoverable_error',
        auth ? `${options.refused}: ${message}` : message,
      );
      throw err;
    }
  }

  return {
    check: (signal) => probeCheck(() => options.probe(signal), options.answered),
    async start() {
      if (task || stopping.signal.aborted || options.enabled === false) return;
      task = ctx.scheduler.schedule(
        options.task,
        {
          everyMs: options.everyMs,
          runOnStart: true,
          jitterMs: Math.min(options.maxJitterMs, options.everyMs / 10),
        },
        (signal) => {
          const p = run(signal);
          running = p.catch(() => undefined);
          return p;
        },
      );
    },
    async stop(deadlineMs) {
      task?.stop();
      task = undefined;
      stopping.abort();
      if (running) await Promise.race([running, sleep(Math.max(0, deadlineMs), undefined, { ref: false })]);
    },
  };
}
