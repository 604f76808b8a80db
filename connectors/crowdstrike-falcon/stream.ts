/**
 * Event Streams reader: discovery, one reader per partition, session refresh (a failed one tried
 * again with backoff while the session lasts), resume from the committed offset, reconnect with
 * backoff. A partition's records are handed to the core in
 * batches together with the offset they reach (`partition-<n>` checkpoint), in one transaction,
 * so an offset is never ahead of its events. On reconnect a partition resumes at its committed
 * offset and skips records at or below it, whether the API replays that offset or not.
 */
import type { Readable } from 'node:stream';
import {
  PermanentError,
  RetryableError,
  isBridgeError,
  z,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import type { Intake, MappedRecord } from '../_shared/edr-intake.ts';
import { isRecord } from '../_shared/edr-mapping.ts';
import { sleep } from '../_shared/edr-poller.ts';
import type { Feed, FalconClient } from './client.ts';
import type { FalconConfig } from './config.ts';

/** Largest record accepted from the stream; a longer one means the framing is lost. */
const MAX_RECORD_CHARS = 8 * 1024 * 1024;

/**
 * Splits a stream of concatenated JSON objects (newline-separated or not) into the text of each
 * object, across chunk boundaries, with string and escape awareness.
 */
export class JsonObjectSplitter {
  #buffer = '';
  #depth = 0;
  #inString = false;
  #escaped = false;
  #start = -1;
  #scanned = 0;

  push(chunk: string): string[] {
    const out: string[] = [];
    this.#buffer += chunk;
    for (let i = this.#scanned; i < this.#buffer.length; i += 1) {
      const c = this.#buffer[i];
      if (this.#inString) {
        if (this.#escaped) this.#escaped = false;
        else if (c === '\\') this.#escaped = true;
        else if (c === '"') this.#inString = false;
        continue;
      }
      if (c === '"') {
        if (this.#depth > 0) this.#inString = true;
      } else if (c === '{') {
        if (this.#depth === 0) this.#start = i;
        this.#depth += 1;
      } else if (c === '}' && this.#depth > 0) {
        this.#depth -= 1;
        if (this.#depth === 0) {
          out.push(this.#buffer.slice(this.#start, i + 1));
          this.#start = -1;
        }
      }
    }
    if (this.#depth === 0) {
      this.#buffer = '';
      this.#scanned = 0;
    } else {
      this.#buffer = this.#buffer.slice(this.#start);
      this.#scanned = this.#buffer.length;
      this.#start = 0;
      if (this.#buffer.length > MAX_RECORD_CHARS) {
        throw new PermanentError(`a stream record is longer than ${MAX_RECORD_CHARS} characters`, {
          code: 'SSF_ERR_CONNECTOR_MALFORMED_RECORD',
        });
      }
    }
    return out;
  }
}

const offsetStateSchema = z.object({ offset: z.number().int().nonnegative() });

export function checkpointName(partition: string): string {
  return `partition-${partition}`;
}

/** Why a partition reader ended without an error. */
type ReaderEnd = 'eof' | 'cancelled';

export interface StreamDeps {
  ctx: InboundContext;
  client: FalconClient;
  config: FalconConfig;
  intake: Intake;
}

/** The datafeed supervisor: discover, read every partition, and start over when any ends. */
export class FalconStream {
  readonly #d: StreamDeps;
  readonly #offsets;
  readonly #reconnects;
  /**
   * Connection failures since a connection last handed records over (or a feed last ended
   * normally): the reconnect backoff grows with them.
   */
  #failures = 0;

  constructor(deps: StreamDeps) {
    this.#d = deps;
    this.#offsets = deps.ctx.metrics.gauge('falcon_stream_offset', 'Last committed offset per partition', [
      'partition',
    ]);
    this.#reconnects = deps.ctx.metrics.counter(
      'falcon_stream_reconnects_total',
      'Stream reconnections by cause',
      ['cause'],
    );
  }

  /** Runs until `signal` fires. Never rejects. */
  async run(signal: AbortSignal): Promise<void> {
    const { ctx, config } = this.#d;
    const s = config.stream;
    this.#failures = 0;
    while (!signal.aborted) {
      let delay: number;
      try {
        await this.#cycle(signal);
        if (signal.aborted) return;
        this.#failures = 0;
        this.#reconnects.inc({ cause: 'eof' });
        ctx.logger.info('the datafeed ended; rediscovering');
        delay = Math.min(s.reconnect_initial_backoff, s.reconnect_max_backoff);
      } catch (err) {
        if (signal.aborted) return;
        // Reset by every batch a connection hands over: only failures in a row back off further.
        this.#failures += 1;
        this.#reconnects.inc({ cause: 'error' });
        const backoff = Math.min(
          s.reconnect_initial_backoff * 2 ** (this.#failures - 1),
          s.reconnect_max_backoff,
        );
        const jittered = backoff / 2 + Math.random() * (backoff / 2);
        delay =
          err instanceof RetryableError && err.retryAfterMs !== undefined
            ? Math.max(err.retryAfterMs, jittered)
            : jittered;
        this.#report(err);
        ctx.logger.warn(
          { err: err instanceof Error ? err.message : String(err), retryInMs: Math.round(delay) },
          'datafeed failed; reconnecting',
        );
      }
      await sleep(delay, signal);
    }
  }

  #report(err: unknown): void {
    const { ctx } = this.#d;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof PermanentError && err.authFailure) {
      ctx.status.set('permanent_error', `the vendor refused the credentials: ${message}`);
    } else if (isBridgeError(err) && err.errorClass !== 'retryable') {
      ctx.status.set('permanent_error', message);
    } else {
      ctx.status.set('recoverable_error', message);
    }
  }

  /** One discovery and its readers. Resolves when a feed ends normally, rejects on an error. */
  async #cycle(outer: AbortSignal): Promise<void> {
    const { ctx, client } = this.#d;
    const feeds = await client.discover(outer);
    if (feeds.length === 0) {
      throw new RetryableError('Event Streams discovery returned no feed for this API client', {
        code: 'SSF_ERR_CONNECTOR_NO_FEED',
      });
    }
    const cycle = new AbortController();
    const stopCycle = () => cycle.abort();
    outer.addEventListener('abort', stopCycle, { once: true });
    try {
      const readers = feeds.map((feed) =>
        this.#read(feed, cycle.signal).finally(() => {
          if (!cycle.signal.aborted) cycle.abort();
        }),
      );
      const outcomes = await Promise.allSettled(readers);
      const failure = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
      if (failure) throw failure.reason;
      ctx.logger.debug({ partitions: feeds.map((f) => f.partition) }, 'datafeed cycle ended');
    } finally {
      outer.removeEventListener('abort', stopCycle);
    }
  }

  async #committedOffset(partition: string): Promise<number | undefined> {
    const { ctx } = this.#d;
    const raw = await ctx.checkpoints.get(checkpointName(partition));
    if (raw === undefined) return undefined;
    const parsed = offsetStateSchema.safeParse(raw);
    if (!parsed.success) {
      ctx.logger.warn({ partition }, 'stored offset is not readable; reading the partition from its start');
      return undefined;
    }
    return parsed.data.offset;
  }

  /** Reads one partition until EOF (resolves), cancellation (resolves) or an error (rejects). */
  async #read(feed: Feed, cancel: AbortSignal): Promise<ReaderEnd> {
    const { ctx, client, config } = this.#d;
    const s = config.stream;
    const log = ctx.logger.child({ partition: feed.partition });
    const committed = await this.#committedOffset(feed.partition);
    const local = new AbortController();
    const stop = () => local.abort();
    cancel.addEventListener('abort', stop, { once: true });
    let failure: unknown;
    const fail = (err: unknown) => {
      failure ??= err;
      local.abort();
    };

    let pending: MappedRecord[] = [];
    let pendingRecords = 0;
    let pendingOffset: number | undefined;
    let lastCommitted = committed;
    let firstPendingAt = 0;
    let chain: Promise<void> = Promise.resolve();
    const serial = (fn: () => Promise<void>) => (chain = chain.then(fn));

    const flush = async () => {
      const offset = pendingOffset;
      const advance = offset !== undefined && offset !== lastCommitted;
      if (pending.length === 0 && !advance) {
        pendingRecords = 0;
        return;
      }
      const mapped = pending;
      await this.#d.intake.emit(
        mapped,
        advance ? { checkpoint: { name: checkpointName(feed.partition), value: { offset } } } : undefined,
      );
      pending = [];
      pendingRecords = 0;
      if (advance) {
        lastCommitted = offset;
        this.#offsets.set({ partition: feed.partition }, offset);
      }
      // The connection delivered: a failure after this starts the backoff over.
      this.#failures = 0;
      ctx.status.success();
    };
    const flushOrFail = () => serial(() => flush().catch(fail));

    let refreshTimer: NodeJS.Timeout | undefined;
    let refreshRetry: NodeJS.Timeout | undefined;
    let flushTimer: NodeJS.Timeout | undefined;
    let body: Readable | undefined;
    try {
      body = await client.open(feed, committed, local.signal);
      log.info({ offset: committed ?? 'start' }, 'datafeed connected');
      ctx.status.success();

      const refreshEvery = Math.max(feed.refreshIntervalMs - s.refresh_margin, feed.refreshIntervalMs / 2);
      // The session lasts refreshIntervalMs from its last refresh; a failed refresh (429, 5xx,
      // timeout) is tried again with the reconnect backoff for as long as the session lasts.
      let sessionEndsAt = Date.now() + feed.refreshIntervalMs;
      const refresh = (attempt: number) => {
        refreshRetry = undefined;
        client.refresh(feed, local.signal).then(
          () => {
            sessionEndsAt = Date.now() + feed.refreshIntervalMs;
            log.debug({ attempt: attempt + 1 }, 'stream session refreshed');
          },
          (err: unknown) => {
            if (local.signal.aborted) return;
            const message = err instanceof Error ? err.message : String(err);
            if (err instanceof PermanentError && err.authFailure) return fail(err);
            if (err instanceof PermanentError) {
              // 404 "no active stream session found": the session is gone; a new discovery opens one.
              return fail(
                new RetryableError(`the stream session could not be refreshed: ${message}`, { cause: err }),
              );
            }
            const backoff = Math.min(s.reconnect_initial_backoff * 2 ** attempt, s.reconnect_max_backoff);
            const delay =
              err instanceof RetryableError && err.retryAfterMs !== undefined
                ? Math.max(err.retryAfterMs, backoff)
                : backoff;
            if (Date.now() + delay >= sessionEndsAt) {
              log.warn(
                { err: message, attempts: attempt + 1 },
                'session refresh failed and the session ends before another try; the stream reconnects when it does',
              );
              return;
            }
            log.warn({ err: message, retryInMs: delay }, 'session refresh failed; trying again');
            refreshRetry = setTimeout(() => refresh(attempt + 1), delay);
          },
        );
      };
      refreshTimer = setInterval(() => {
        clearTimeout(refreshRetry);
        refresh(0);
      }, refreshEvery);
      flushTimer = setInterval(
        () => {
          if (pendingRecords > 0 && Date.now() - firstPendingAt >= s.flush_interval) void flushOrFail();
        },
        Math.max(10, Math.min(s.flush_interval, 1000)),
      );

      const stream = body;
      local.signal.addEventListener('abort', () => stream.destroy(), { once: true });
      const splitter = new JsonObjectSplitter();
      const decoder = new TextDecoder('utf-8');
      for await (const chunk of stream) {
        const text = decoder.decode(chunk as Buffer, { stream: true });
        for (const json of splitter.push(text)) {
          await serial(async () => {
            await this.#take(json, committed, pending, (mapped, offset) => {
              if (pendingRecords === 0) firstPendingAt = Date.now();
              pending.push(...mapped);
              pendingRecords += 1;
              if (offset !== undefined) pendingOffset = offset;
            });
            if (pendingRecords >= s.batch_size) await flush().catch(fail);
          });
          if (failure) break;
        }
        if (failure) break;
      }
      if (failure) throw failure;
      await serial(() => flush());
      if (failure) throw failure;
      return cancel.aborted ? 'cancelled' : 'eof';
    } catch (err) {
      if (failure !== undefined) {
        await chain.catch(() => undefined);
        throw failure;
      }
      if (cancel.aborted) {
        // Another partition ended or the instance is stopping: keep what was read.
        await serial(() => flush()).catch((e: unknown) =>
          log.warn(
            { err: e instanceof Error ? e.message : String(e) },
            'could not hand over the last records',
          ),
        );
        return 'cancelled';
      }
      // The connection broke: hand over complete records read so far, then report.
      await serial(() => flush()).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(refreshTimer);
      clearTimeout(refreshRetry);
      clearInterval(flushTimer);
      cancel.removeEventListener('abort', stop);
      body?.destroy();
    }
  }

  /** Parses and maps one record, skipping those at or below the committed offset. */
  async #take(
    json: string,
    committed: number | undefined,
    pending: readonly MappedRecord[],
    add: (mapped: MappedRecord[], offset: number | undefined) => void,
  ): Promise<void> {
    const { intake, ctx } = this.#d;
    let record: unknown;
    try {
      record = JSON.parse(json);
    } catch {
      intake.malformed(1);
      ctx.logger.warn({ excerpt: json.slice(0, 200) }, 'a stream record is not valid JSON; skipped');
      return;
    }
    const meta = isRecord(record) && isRecord(record['metadata']) ? record['metadata'] : undefined;
    const offset = typeof meta?.['offset'] === 'number' ? meta['offset'] : undefined;
    if (offset !== undefined && committed !== undefined && offset <= committed) {
      intake.skipped('replayed_offset', 1);
      return;
    }
    // Raises read earlier in this batch count as raised: they are handed over with it.
    const { records } = await intake.map([record], undefined, pending);
    add(records, offset);
  }
}
