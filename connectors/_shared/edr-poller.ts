/**
 * The polling loop the EDR connectors share: read records updated since a watermark (minus an
 * overlap window), page by page, and hand each page's events to the core together with the
 * checkpoint that page reached, in one transaction. Nothing is committed ahead of its events,
 * so a failed emit or a crash means the same page is read again; records already processed in
 * the overlap window are skipped, and the core's de-duplication catches the rest. A record whose
 * events the event catalog refuses is skipped as malformed (see Intake.emit), so it never keeps
 * the watermark from moving on.
 *
 * The memory of records processed in the overlap window is bounded (`maxSeen`, the newest kept).
 * When more records than that were updated inside the window (a bulk close), the oldest of them
 * are read again and mapped again — the core drops their events as duplicates — but a page
 * counts toward a sorted run's page budget only when it holds a record updated after the
 * committed watermark, so every run moves the watermark on: a full window never stalls the poll.
 *
 * An API that does not sort by update time moves the watermark only once every page of the
 * window was read. Each page is committed with the window it belongs to (where it starts, the
 * highest update time read in it) and the link of the next page, so a run that stops half-way —
 * a rate limit, a full outbox, a failure — is resumed by the next run at the page it stopped at,
 * in the same window: a window larger than one rate-limit budget is read over several runs
 * instead of starting again at its first page each time (and never finishing), and the first
 * window does not slide with the clock. The next link is followed as any other (the client
 * follows links only to the configured API); one the API no longer accepts (a permanent error)
 * starts the window again at its first page.
 */
import { createHash } from 'node:crypto';
import {
  isBridgeError,
  PermanentError,
  RetryableError,
  z,
  type InboundContext,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import type { Intake } from './edr-intake.ts';
import { PageCursors } from './page-cursors.ts';
import type { ReadHistory } from './edr-mapping.ts';

export interface PollPage {
  records: readonly unknown[];
  /** Opaque token or URL of the next page; absent on the last page. */
  next?: string | undefined;
}

/** The checkpoint of a watermark poller. */
export const pollStateSchema = z.object({
  /** Highest vendor update time processed (RFC 3339). */
  watermark: z.iso.datetime({ offset: true }).optional(),
  /**
   * Record id → update time (epoch ms) of records processed inside the overlap window, as
   * checkpoints written before `recent` hold them: read (and carried over into `recent`), no
   * longer written.
   */
  seen: z.record(z.string(), z.number()).optional(),
  /**
   * Key of a record id (seenKey: a short hash, whatever the id's length) → update time (epoch
   * ms) of records processed inside the overlap window.
   */
  recent: z.record(z.string(), z.number()).optional(),
  /**
   * The window an unsorted poll is reading, while pages of it are left: where it starts, the
   * highest update time read in it so far, and the link (or token) of its next page.
   */
  window: z
    .object({
      since: z.iso.datetime({ offset: true }),
      highest: z.iso.datetime({ offset: true }).optional(),
      next: z.string().min(1),
    })
    .optional(),
});
export type PollState = z.output<typeof pollStateSchema>;

/** The key of a record id in the poll checkpoint: 96 bits of its SHA-256, base64url. */
export function seenKey(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('base64url').slice(0, 16);
}

/** Where an unsorted poll resumes the window it was reading. */
interface OpenWindow {
  sinceMs: number;
  highestMs: number | undefined;
  next: string;
}

/** A poll checkpoint as a run uses it. */
interface LoadedState {
  watermark?: string | undefined;
  /** Key of a record id (seenKey) → update time (epoch ms). */
  seen: Map<string, number>;
  /** The window left unfinished by an earlier run (unsorted APIs). */
  window?: OpenWindow | undefined;
  /**
   * The watermark and next link as stored (epoch ms); undefined when nothing readable was stored
   * (it is written).
   */
  stored?: { watermarkMs: number | undefined; next: string | undefined };
}

export interface WatermarkPollerOptions {
  ctx: InboundContext;
  /** Checkpoint name, e.g. `alerts`. */
  checkpointName: string;
  overlapMs: number;
  /** How far back the first run reads. */
  initialLookbackMs: number;
  /** The vendor returns records sorted by update time, oldest first: commit after every page. */
  sortedAscending: boolean;
  /** Pages read in one run when sorted (the next run continues); unsorted runs read every page. */
  maxPagesPerRun: number;
  fetchPage(since: Date, next: string | undefined, signal: AbortSignal): Promise<PollPage>;
  /** A record's id and update time, used for the watermark and the overlap de-duplication. */
  version(record: unknown): { id: string; updatedMs: number } | undefined;
  intake: Intake;
  /**
   * The poll is the instance's only source of records (no webhook block): the mapping is told
   * which records this instance has never read before (ReadHistory), so that a detection closed
   * before it was first read sends no downgrade. False when records may also arrive otherwise.
   */
  soleSource?: boolean;
  /** Bound of the overlap de-duplication set. */
  maxSeen?: number;
}

const DEFAULT_MAX_SEEN = 20_000;

export class WatermarkPoller {
  readonly #o: WatermarkPollerOptions;
  /** Epoch ms before which runs are skipped (the vendor asked us to wait). */
  #notBefore = 0;

  constructor(options: WatermarkPollerOptions) {
    this.#o = options;
  }

  /** One scheduled run. Classifies failures into the instance status and rethrows them. */
  async run(signal: AbortSignal): Promise<void> {
    const { ctx } = this.#o;
    const now = ctx.clock.now().getTime();
    if (now < this.#notBefore) {
      ctx.logger.debug({ resumeAt: new Date(this.#notBefore).toISOString() }, 'poll skipped: rate limited');
      return;
    }
    try {
      await this.#poll(signal);
      ctx.status.success();
    } catch (err) {
      if (signal.aborted || ctx.signal.aborted) return;
      this.#report(err);
      throw err;
    }
  }

  #report(err: unknown): void {
    const { ctx } = this.#o;
    const message = err instanceof Error ? err.message : String(err);
    if (err instanceof RetryableError) {
      ctx.status.set('recoverable_error', message);
    } else if (err instanceof PermanentError && err.authFailure) {
      ctx.status.set('permanent_error', `the vendor refused the credentials: ${message}`);
    } else if (isBridgeError(err) && err.errorClass !== 'retryable') {
      ctx.status.set('permanent_error', message);
    } else {
      ctx.status.set('recoverable_error', message);
    }
  }

  async #loadState(): Promise<LoadedState> {
    const { ctx, checkpointName } = this.#o;
    const raw = await ctx.checkpoints.get(checkpointName);
    if (raw === undefined) return { seen: new Map() };
    const parsed = pollStateSchema.safeParse(raw);
    if (!parsed.success) {
      ctx.logger.warn(
        { checkpoint: checkpointName },
        'stored checkpoint is not readable; starting from the lookback',
      );
      return { seen: new Map() };
    }
    const state = parsed.data;
    const seen = new Map(Object.entries(state.recent ?? {}));
    // Written by an earlier version: ids as they are.
    for (const [id, ms] of Object.entries(state.seen ?? {})) {
      const key = seenKey(id);
      seen.set(key, Math.max(ms, seen.get(key) ?? ms));
    }
    const nowMs = ctx.clock.now().getTime();
    if (state.watermark !== undefined && Date.parse(state.watermark) > nowMs) {
      ctx.logger.warn(
        { checkpoint: checkpointName, watermark: state.watermark },
        'stored watermark is in the future; reading from now',
      );
      return { watermark: new Date(nowMs).toISOString(), seen };
    }
    const window: OpenWindow | undefined = state.window && {
      sinceMs: Date.parse(state.window.since),
      highestMs: state.window.highest === undefined ? undefined : Date.parse(state.window.highest),
      next: state.window.next,
    };
    const stored = {
      watermarkMs: state.watermark === undefined ? undefined : Date.parse(state.watermark),
      next: state.window?.next,
    };
    return { watermark: state.watermark, seen, window, stored };
  }

  async #poll(signal: AbortSignal): Promise<void> {
    const o = this.#o;
    const state = await this.#loadState();
    const nowMs = o.ctx.clock.now().getTime();
    const committedMs = state.watermark === undefined ? undefined : Date.parse(state.watermark);
    // An unsorted window an earlier run stopped in is read on from the page it stopped at.
    const resumed = o.sortedAscending ? undefined : state.window;
    const since = new Date(
      resumed?.sinceMs ??
        (committedMs === undefined ? nowMs - o.initialLookbackMs : committedMs - o.overlapMs),
    );
    const seen = state.seen;
    let highest = Math.max(
      committedMs ?? Number.NEGATIVE_INFINITY,
      resumed?.highestMs ?? Number.NEGATIVE_INFINITY,
    );
    // Every record processed before this run was created at or before the committed watermark
    // (or, on the first run, none was processed: reading starts at `since`).
    const history: ReadHistory | undefined = o.soleSource
      ? { readUpTo: new Date(committedMs ?? since.getTime()) }
      : undefined;
    const cursors = new PageCursors('the vendor API');
    let next = resumed ? cursors.follow(resumed.next) : undefined;
    if (resumed) {
      o.ctx.logger.debug(
        { since: since.toISOString(), checkpoint: o.checkpointName },
        'resuming the window an earlier poll stopped in at its next page',
      );
    }
    // The watermark and next link of the checkpoint as last written (undefined: written by no page yet).
    let written = state.stored;

    // Pages that moved the watermark on: held records updated after the committed watermark.
    // Pages of the overlap window — repeats, and records updated at or before the watermark that
    // the bounded memory of the window no longer names, read again — do not count against
    // maxPagesPerRun: a full window would otherwise use up every run and the watermark would
    // never move again.
    let productive = 0;
    // The stored link of a resumed window, until its page is read.
    let resuming = resumed?.next;
    for (;;) {
      const { records, next: following } = await this.#fetchResumed(since, next, resuming, signal);
      resuming = undefined;
      const fresh: unknown[] = [];
      const histories: Array<ReadHistory | undefined> = [];
      let repeats = 0;
      let superseded = 0;
      let advances = false;
      const added: string[] = [];
      for (const record of records) {
        const version = o.version(record);
        const key = version ? seenKey(version.id) : undefined;
        const known = key === undefined ? undefined : seen.get(key);
        if (version && known !== undefined && known >= version.updatedMs) {
          // Already processed, or older than a version already processed (pages of an unsorted
          // API can show a record twice when it changes while they are read).
          if (known === version.updatedMs) repeats += 1;
          else superseded += 1;
          continue;
        }
        fresh.push(record);
        // A record processed before (an earlier version, in the overlap window or on an earlier
        // page of this run) may have raised the level: no history is claimed for it.
        histories.push(known === undefined ? history : undefined);
        if (version && key !== undefined) {
          seen.set(key, version.updatedMs);
          added.push(key);
          highest = Math.max(highest, version.updatedMs);
          if (committedMs === undefined || version.updatedMs > committedMs) advances = true;
        }
      }
      o.intake.skipped('duplicate', repeats);
      o.intake.skipped('superseded', superseded);
      const { records: mapped } = await o.intake.map(fresh, histories);
      const done = following === undefined;
      if (advances) productive += 1;
      const stopHere = done || (o.sortedAscending && productive >= o.maxPagesPerRun);
      const watermarkMs = o.sortedAscending || done ? highest : committedMs;
      const storedMs = watermarkMs !== undefined && Number.isFinite(watermarkMs) ? watermarkMs : undefined;
      // Unsorted: where the next run goes on when this one stops after this page.
      const windowNext = o.sortedAscending || done ? undefined : following;
      // The checkpoint (the memory of the window: up to maxSeen entries) is written only when this
      // page changed it: not for a page of repeats, nor for one of records the window had
      // forgotten and forgets again (their events, which the core drops as duplicates unless they
      // are new, are handed over without it).
      const moved = written === undefined || written.watermarkMs !== storedMs || written.next !== windowNext;
      if (moved || added.length > 0) this.#forget(seen, watermarkMs ?? since.getTime());
      if (moved || added.some((k) => seen.has(k))) {
        const window =
          windowNext === undefined
            ? undefined
            : {
                since: since.toISOString(),
                ...(Number.isFinite(highest) ? { highest: new Date(highest).toISOString() } : {}),
                next: windowNext,
              };
        const value: PollState = {
          ...(storedMs !== undefined ? { watermark: new Date(storedMs).toISOString() } : {}),
          recent: Object.fromEntries(seen),
          ...(window ? { window } : {}),
        };
        await o.intake.emit(mapped, { checkpoint: { value, name: o.checkpointName } });
        written = { watermarkMs: storedMs, next: windowNext };
      } else if (mapped.some((m) => m.events.length > 0)) {
        await o.intake.emit(mapped);
      }
      if (stopHere) return;
      next = cursors.follow(following);
    }
  }

  /**
   * One page; for the stored next link of a resumed window, the window's first page instead when
   * the API refuses the link for good (expired, or leading elsewhere than the configured API).
   */
  async #fetchResumed(
    since: Date,
    next: string | undefined,
    resumedNext: string | undefined,
    signal: AbortSignal,
  ): Promise<PollPage> {
    try {
      return await this.#fetch(since, next, signal);
    } catch (err) {
      const refused = err instanceof PermanentError && !err.authFailure;
      if (resumedNext === undefined || next !== resumedNext || !refused || signal.aborted) throw err;
      this.#o.ctx.logger.warn(
        { checkpoint: this.#o.checkpointName, problem: err.message },
        'the next page link stored by an earlier poll was refused; reading its window again from the first page',
      );
      return this.#fetch(since, undefined, signal);
    }
  }

  /**
   * One page from the vendor. A rate-limit answer (429 with Retry-After or the vendor's own
   * header) makes the following runs wait until the time the vendor named. A full outbox is
   * waited out by the schedule itself: the next run reads the same page again.
   */
  async #fetch(since: Date, next: string | undefined, signal: AbortSignal): Promise<PollPage> {
    try {
      return await this.#o.fetchPage(since, next, signal);
    } catch (err) {
      if (err instanceof RetryableError && err.retryAfterMs !== undefined) {
        this.#notBefore = this.#o.ctx.clock.now().getTime() + err.retryAfterMs;
      }
      throw err;
    }
  }

  /**
   * Forgets the keys whose update time lies before the overlap window of the watermark and, of
   * more than `maxSeen` left, the oldest (of equal times, those remembered last).
   */
  #forget(seen: Map<string, number>, watermarkMs: number): void {
    const floor = watermarkMs - this.#o.overlapMs;
    const max = this.#o.maxSeen ?? DEFAULT_MAX_SEEN;
    let inWindow = 0;
    for (const ms of seen.values()) if (ms >= floor) inWindow += 1;
    if (inWindow === seen.size && inWindow <= max) return;
    // Kept: every time above `cutoff`, and `atCutoff` of the times equal to it.
    let cutoff = floor;
    let atCutoff = Number.POSITIVE_INFINITY;
    if (inWindow > max) {
      const times = new Float64Array(inWindow);
      let i = 0;
      for (const ms of seen.values()) if (ms >= floor) times[i++] = ms;
      times.sort();
      cutoff = times[inWindow - max]!;
      atCutoff = 0;
      for (let j = inWindow - max; j < inWindow && times[j] === cutoff; j += 1) atCutoff += 1;
    }
    for (const [key, ms] of seen) {
      if (ms > cutoff) continue;
      if (ms === cutoff && atCutoff > 0) atCutoff -= 1;
      else seen.delete(key);
    }
  }
}

/** Runs `run` on the instance's scheduler and stops it within a deadline. */
export function schedulePolling(
  ctx: InboundContext,
  name: string,
  everyMs: number,
  run: (signal: AbortSignal) => Promise<void>,
): { stop(deadlineMs: number): Promise<void> } {
  const stopping = new AbortController();
  let inflight: Promise<void> | undefined;
  const task: ScheduledTask = ctx.scheduler.schedule(name, { everyMs, runOnStart: true }, async (signal) => {
    if (stopping.signal.aborted) return;
    const current = run(AbortSignal.any([signal, stopping.signal]));
    inflight = current.then(
      () => undefined,
      () => undefined,
    );
    try {
      await current;
    } finally {
      inflight = undefined;
    }
  });
  return {
    async stop(deadlineMs) {
      task.stop();
      stopping.abort(new Error('instance stopping'));
      if (inflight) await waitAtMost(inflight, deadlineMs);
    },
  };
}

/** Resolves when `promise` settles or after `ms`, whichever comes first. */
export async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise.then(
      () => undefined,
      () => undefined,
    ),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, Math.max(0, ms));
    }),
  ]);
  if (timer) clearTimeout(timer);
}

/** Sleeps `ms`, or less when `signal` fires. Never rejects. */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, Math.max(0, ms));
    signal.addEventListener('abort', done, { once: true });
  });
}
