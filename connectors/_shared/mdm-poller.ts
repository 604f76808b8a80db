/**
 * The scan machinery the MDM connectors share (intune, kandji, jamf-pro's reconciliation): a
 * scheduled task that reads the whole device inventory, retries within a budget of waiting time,
 * reports failures in the instance status and stops within the host's deadline; the `check`
 * that probes the API; reads of devices one by one, among them the lookups that confirm a device
 * missing from a listing is gone; and the stored device state.
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

/** A 404: the vendor does not know the device (any more). */
export function isNotFound(err: unknown): boolean {
  return isBridgeError(err) && err.errorClass === 'permanent' && err.detail?.['status'] === 404;
}

/**
 * How a failed read of one device counts (see readEach): `device` — about that device alone
 * (recorded; the reads go on, unless it makes a FailureStreak); `stop` — about the API as a
 * whole, such as throttling beyond the wait budget or refused credentials (recorded; no further
 * read starts); `unread` — no request was made, as when a budget of requests is spent (the device
 * is left unread with the rest, and no further read starts).
 */
export type ReadFailure = 'device' | 'stop' | 'unread';

/**
 * Reads in a row that may fail about their device before readEach stops (see FailureStreak).
 * One device the API keeps failing for costs that device alone; ten in a row say rather that the
 * endpoint is down, or hanging, for every device, and reading on would cost a request (or a
 * whole timeout) per device, for nothing, until the next scan.
 */
export const FAILURES_TO_STOP = 10;

/**
 * Reads that failed about their device in a row (in the order they ended), counted across the
 * calls of readEach one scan makes (a scan that reads in chunks passes the same streak to each);
 * any answer starts the count over. At `limit`, the reads stop (ReadsFailing).
 */
export class FailureStreak {
  #count = 0;
  #last: unknown;
  constructor(readonly limit: number = FAILURES_TO_STOP) {}

  /** Failures in a row so far. */
  get count(): number {
    return this.#count;
  }

  /** Counts a failed read; true when it makes `limit` in a row. */
  failed(err: unknown): boolean {
    this.#count += 1;
    this.#last = err;
    return this.#count >= this.limit;
  }

  /** An answer: the count starts over. */
  answered(): void {
    this.#count = 0;
    this.#last = undefined;
  }

  /** The failure that ended the streak, for `stoppedBy`. */
  stop(): ReadsFailing {
    return new ReadsFailing(this.#count, this.#last);
  }
}

/**
 * Why readEach stopped after a FailureStreak: `failures` reads in a row failed, the last with
 * `last` (its cause). Retryable: the next scan reads again. The failed reads themselves are in
 * `failed`, each with its own error.
 */
export class ReadsFailing extends RetryableError {
  constructor(
    readonly failures: number,
    readonly last: unknown,
  ) {
    super(
      `${failures} reads in a row failed, the last with: ${last instanceof Error ? last.message : String(last)}`,
      { code: 'SSF_ERR_MDM_READS_FAILING', cause: last, detail: { failures } },
    );
  }
}

/** What reading devices one by one found. */
export interface DeviceReads<T> {
  /** The answers, by device id, in the order given. */
  answers: Map<string, T>;
  /** Reads that failed (after the in-run retries), with the error, in the order given. */
  failed: Array<{ id: string; error: unknown }>;
  /** Devices not read: beyond `limit`, or left when a failure stopped the reads. */
  unread: string[];
  /**
   * The failure that stopped the reads, when one did: one `failure` said `stop` or `unread` for,
   * or a ReadsFailing when `streak` reached its limit (the failures it counts are in `failed`).
   */
  stoppedBy?: unknown;
}

/**
 * Reads devices one by one (`read`, retried within the wait budget), at most `limit` of them in
 * the order given and `concurrency` at once, so that one device the API keeps failing for costs
 * that device alone: `failure` says whether a failure is about the device or stops the reads.
 * Failures about their device that follow one another without an answer between them are
 * counted by `streak` (a new FailureStreak of FAILURES_TO_STOP when not given); when it reaches
 * its limit no further read starts (the reads in flight end) and `stoppedBy` is a ReadsFailing,
 * so that an endpoint down or hanging for every device costs a few reads, not one per device.
 * An aborted signal rejects.
 */
export async function readEach<T>(
  ids: readonly string[],
  options: {
    limit?: number;
    concurrency: number;
    read(id: string, signal: AbortSignal): Promise<T>;
    failure(err: unknown): ReadFailure;
    streak?: FailureStreak;
    waits: WaitBudget;
    signal: AbortSignal;
  },
): Promise<DeviceReads<T>> {
  const { signal } = options;
  const streak = options.streak ?? new FailureStreak();
  const answers = new Map<string, T>();
  const failed = new Map<string, unknown>();
  const chosen = ids.slice(0, Math.max(0, options.limit ?? ids.length));
  let stopped = false;
  let stoppedBy: unknown;
  await eachLimit(chosen, options.concurrency, async (id) => {
    if (stopped) return;
    try {
      answers.set(id, await withRetries(() => options.read(id, signal), options.waits, signal));
      streak.answered();
    } catch (err) {
      if (signal.aborted) throw err;
      const kind = options.failure(err);
      if (kind !== 'unread') failed.set(id, err);
      if (stopped) return;
      if (kind !== 'device') {
        stopped = true;
        stoppedBy = err;
      } else if (streak.failed(err)) {
        stopped = true;
        stoppedBy = streak.stop();
      }
    }
  });
  const result: DeviceReads<T> = { answers: new Map(), failed: [], unread: [] };
  for (const id of ids) {
    if (answers.has(id)) result.answers.set(id, answers.get(id) as T);
    else if (failed.has(id)) result.failed.push({ id, error: failed.get(id) });
    else result.unread.push(id);
  }
  return stopped ? { ...result, stoppedBy } : result;
}

/**
 * The failures of a lookup that are about the device looked up: a permanent answer other than
 * refused credentials (a 400, a 410, a body that is not a device). Throttling or an unavailable
 * API beyond the wait budget, and refused credentials, are about the API: they stop the lookups.
 */
export function lookupFailure(err: unknown): ReadFailure {
  const aboutThisDevice =
    isBridgeError(err) &&
    err.errorClass === 'permanent' &&
    !(err instanceof PermanentError && err.authFailure);
  return aboutThisDevice ? 'device' : 'stop';
}

/** What the lookups of the devices missing from a listing found. */
export interface MissingLookups<T> {
  /** Devices the vendor still answers for, with its answer: they are not gone. */
  present: Map<string, T>;
  /** Devices the vendor answered 404 for: the only ones the vanished-device policy may apply to. */
  gone: string[];
  /** Devices whose lookup failed otherwise (after the in-run retries), with the error: kept for now. */
  failed: Array<{ id: string; error: unknown }>;
  /** Devices not looked up this scan (beyond `limit`, or after a failure that stopped the lookups). */
  deferred: string[];
}

/** How a connector names what its lookups of missing devices are about, for the log. */
export interface MissingWords {
  /** `device` or `computer`: the log field of one, and (plural) of several. */
  item: string;
  /** Where they are missing from: "the device list". */
  listing: string;
  /** The vendor: "Kandji". */
  vendor: string;
  /** What runs the lookups: "scan", "reconciliation". */
  run: string;
}

/** Logs what the lookups found that is kept: still there, not confirmed gone, not looked up yet. */
export function logMissingKept(
  log: Pick<InboundContext['logger'], 'info' | 'warn'>,
  found: MissingLookups<unknown>,
  limit: number,
  words: MissingWords,
): void {
  const { item, listing, vendor, run } = words;
  if (found.present.size > 0) {
    log.info(
      { [`${item}s`]: [...found.present.keys()] },
      `${item}s missing from ${listing} are still in ${vendor}; kept`,
    );
  }
  for (const { id, error } of found.failed) {
    log.warn(
      { [item]: id, error: error instanceof Error ? error.message : String(error) },
      `could not confirm that a ${item} missing from ${listing} is gone; kept until a later ${run}`,
    );
  }
  if (found.deferred.length > 0) {
    log.info(
      { deferred: found.deferred.length, limit },
      `${item}s missing from ${listing} left for the next ${run} to look up`,
    );
  }
}

/**
 * Looks up devices missing from a complete listing, one by one, to tell the ones that are gone
 * (the lookup answers 404, i.e. `lookup` resolves undefined) from the ones a short listing left
 * out. At most `limit` lookups, in the order given; the rest are deferred to a later scan. A
 * lookup that fails otherwise keeps its device as it is; a failure that is not about that one
 * device (lookupFailure, or `failure` when given) stops the lookups, deferring the rest, and so
 * do FAILURES_TO_STOP failures about their device in a row (see readEach). An aborted signal
 * rejects.
 */
export async function lookUpMissing<T>(
  missing: readonly string[],
  options: {
    limit: number;
    concurrency: number;
    lookup(id: string, signal: AbortSignal): Promise<T | undefined>;
    failure?(err: unknown): ReadFailure;
    waits: WaitBudget;
    signal: AbortSignal;
  },
): Promise<MissingLookups<T>> {
  const reads = await readEach(missing, {
    limit: options.limit,
    concurrency: options.concurrency,
    read: options.lookup,
    failure: options.failure ?? lookupFailure,
    waits: options.waits,
    signal: options.signal,
  });
  const result: MissingLookups<T> = {
    present: new Map(),
    gone: [],
    failed: reads.failed,
    deferred: reads.unread,
  };
  for (const [id, answer] of reads.answers) {
    if (answer === undefined) result.gone.push(id);
    else result.present.set(id, answer);
  }
  return result;
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

/**
 * What one scan ends with: the outcome the runs counter records (`ok` when none), or a scan that
 * completed but held something back: its outcome, and the problem the instance status shows
 * (`recoverable_error`) until a later scan ends well.
 */
export type ScanOutcome = 'ok' | 'partial' | { outcome: string; problem: string } | void;

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
  scan(signal: AbortSignal): Promise<ScanOutcome>;
  /** A small read for `check`, and what `check` says when it succeeds. */
  probe(signal: AbortSignal): Promise<void>;
  answered: string;
}

/**
 * An instance that scans on its scheduler: `check` probes the API, `start` schedules the scan,
 * `stop` waits for a run in flight until the deadline. A run that ends with a problem (see
 * ScanOutcome) sets the instance status to `recoverable_error` with it. A failed run sets the
 * instance status (refused credentials and other permanent errors as permanent) and is rethrown
 * to the scheduler; a run cut short by stop() is not a failure.
 */
export function scanningConnector<S>(ctx: InboundContext<S>, options: ScanningOptions): InboundConnector {
  const stopping = new AbortController();
  let task: ScheduledTask | undefined;
  let running: Promise<void> | undefined;

  async function run(taskSignal: AbortSignal): Promise<void> {
    try {
      const outcome = await options.scan(AbortSignal.any([taskSignal, stopping.signal]));
      if (typeof outcome === 'object') {
        options.runs.inc({ outcome: outcome.outcome });
        ctx.status.set('recoverable_error', outcome.problem);
        return;
      }
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
