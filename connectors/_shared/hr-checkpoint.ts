/**
 * How the HR connectors (workday, bamboohr, hibob, csv-drop) keep the leaver state: in the
 * instance checkpoint, changed by one piece of work at a time (a poll, a webhook, the release of
 * held terminations), and committed together with the events it produced, in one transaction.
 *
 * One at a time within a process (serial), and across the instances sharing a database by
 * compare-and-set: a state is committed only if the stored one is still the one it was made
 * from. A piece of work that lost the race runs again from the state that won.
 */
import {
  PermanentError,
  RetryableError,
  retryOnCheckpointConflict,
  type EventDraft,
  type InboundContext,
  type ScheduledTask,
  type z,
} from '../../core/plugin-api/index.ts';
import { nextDue, releaseDue, type HrState, type LeaverPolicy } from './hr-leaver.ts';

/**
 * How far each read of a change feed reaches back over the end of the previous one, when that
 * end is the bridge's own clock (Workday's windows and report prompt, BambooHR without
 * `latest`): an entry the source dates just before it (its clock behind ours, or an entry
 * committed late) is read, not lost. Reading a change again sends nothing twice: the worker
 * snapshot already holds it.
 */
export const CHANGE_WINDOW_OVERLAP_MS = 5 * 60_000;

export interface HrCheckpointOptions<S extends HrState> {
  /** Metric name prefix, e.g. `bamboohr` for `bamboohr_events_total`. */
  metricPrefix: string;
  /** The source as messages name it, e.g. `BambooHR`. */
  source: string;
  /** Error code of an unreadable checkpoint. */
  code: string;
  schema: z.ZodType<S>;
  empty(): S;
  /** Called after every commit (workday reports the held changes). */
  committed?(state: S): void;
}

export interface HrCheckpoint<S extends HrState> {
  /**
   * Runs `work` once the work before it settled: the state changes one piece of work at a time.
   * Work whose commit met a state another instance committed meanwhile runs again (a few times).
   */
  serial<T>(work: () => Promise<T>): Promise<T>;
  /** The stored state. One this version cannot read is refused rather than guessed from. */
  load(): Promise<S>;
  /**
   * Emits `events` with `state` as the checkpoint, in one transaction — if `state` came from
   * load(), only while the stored state is still the one it was made from.
   */
  commit(state: S, events: EventDraft[]): Promise<void>;
  /** Emits the held terminations and purges whose time has come (call it inside serial). */
  release(policy: LeaverPolicy): Promise<void>;
  /** Schedules release() every `everyMs`, in turn with the other work; failures go to the status. */
  scheduleRelease(policy: LeaverPolicy, everyMs: number): ScheduledTask;
  /** Waits for the work in flight, at most `deadlineMs`. */
  settle(deadlineMs: number): Promise<void>;
}

export function hrCheckpoint<S extends HrState>(
  ctx: InboundContext<S>,
  options: HrCheckpointOptions<S>,
): HrCheckpoint<S> {
  const emitted = ctx.metrics.counter(`${options.metricPrefix}_events_total`, 'Events emitted, by type', [
    'type',
  ]);
  let running: Promise<unknown> = Promise.resolve();
  /** The stored value each loaded state was made from: what its commit expects to replace. */
  const madeFrom = new WeakMap<object, { value: unknown }>();

  async function load(): Promise<S> {
    const raw = await ctx.checkpoints.get();
    let state: S;
    if (raw === undefined) {
      state = options.empty();
    } else {
      const parsed = options.schema.safeParse(raw);
      if (!parsed.success) {
        throw new PermanentError(
          `the stored ${options.source} checkpoint is not readable; start the instance over with \`ssf-bridge checkpoints reset ${ctx.instanceId}\``,
          { code: options.code },
        );
      }
      state = parsed.data;
    }
    madeFrom.set(state, { value: raw });
    return state;
  }

  async function commit(state: S, events: EventDraft[]): Promise<void> {
    const expected = madeFrom.get(state);
    await ctx.emit(events, { checkpoint: { value: state, ...(expected ? { expected } : {}) } });
    // Committed again later (a poll's next batch), the state replaces what was just stored.
    madeFrom.set(state, { value: JSON.parse(JSON.stringify(state)) as unknown });
    for (const e of events) emitted.inc({ type: e.type });
    options.committed?.(state);
  }

  function serial<T>(work: () => Promise<T>): Promise<T> {
    const attempt = (): Promise<T> =>
      retryOnCheckpointConflict(work, (tries) =>
        ctx.logger.debug({ tries }, 'the state changed on another instance meanwhile; running again'),
      );
    const next = running.then(attempt, attempt);
    running = next.catch(() => undefined);
    return next;
  }

  async function release(policy: LeaverPolicy): Promise<void> {
    const now = ctx.clock.now();
    const state = await load();
    const next = nextDue(state);
    if (next === undefined || new Date(next).getTime() > now.getTime()) return;
    const refused: string[] = [];
    const events = releaseDue(state, policy, now, refused);
    await commit(state, events);
    ctx.logger.info({ events: events.length }, 'released held terminations that took effect');
    if (refused.length > 0) {
      const message = `${describeEmployees(refused)}: a held termination or purge took effect, but the only work email known belongs to another active employee now, and subject_format is email: not sent`;
      ctx.logger.warn({ employees: refused.length, examples: refused.slice(0, 10) }, message);
      ctx.status.set('recoverable_error', message);
    }
  }

  return {
    serial,
    load,
    commit,
    release,
    scheduleRelease(policy, everyMs) {
      return ctx.scheduler.schedule('release', { everyMs, runOnStart: true }, () =>
        serial(() => release(policy)).catch(reportFailures(ctx)),
      );
    },
    async settle(deadlineMs) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([running, new Promise((r) => (timer = setTimeout(r, Math.max(0, deadlineMs))))]);
      clearTimeout(timer);
    },
  };
}

/**
 * Old leavers recorded without events (a termination before backfill_window, or without a date,
 * on first sight): counted at info level with a few examples, so a quiet first read, or a
 * source that stopped dating its terminations, is visible (each is at debug level).
 */
export function logBackfilled(
  ctx: Pick<InboundContext, 'logger'>,
  ids: readonly string[],
  backfillWindowMs: number,
  fields: Record<string, unknown> = {},
): void {
  if (ids.length === 0) return;
  ctx.logger.info(
    { employees: ids.length, backfill_window_ms: backfillWindowMs, examples: ids.slice(0, 10), ...fields },
    `recorded ${ids.length} leaver(s) seen for the first time, whose termination took effect before backfill_window (or has no date), without events`,
  );
}

/** `employee 7`, `employees 7, 9 and 12 more`: up to ten ids, for messages. */
function describeEmployees(ids: readonly string[]): string {
  const listed = ids.slice(0, 10).join(', ');
  const more = ids.length > 10 ? ` and ${ids.length - 10} more` : '';
  return ids.length === 1 ? `employee ${listed}` : `employees ${listed}${more}`;
}

/**
 * Leavers a poll could not send because no subject can be made for them (see unnamedLeaver):
 * the connector keeps them (`ids`) and reads them again until one can be, since its change feed
 * has moved on. Logged at warn level naming them; the message is for the instance status, which
 * a run must not report healthy while any is kept.
 */
export function unnamedLeavers(
  ctx: Pick<InboundContext, 'logger'>,
  ids: readonly string[],
  retry: string,
): string | undefined {
  if (ids.length === 0) return undefined;
  const message = `${ids.length} leaver(s) not sent, ${describeEmployees(ids)}: no usable work email (or only one another active employee has now), and subject_format is email; ${retry}`;
  ctx.logger.warn({ employees: ids.length, examples: ids.slice(0, 10) }, message);
  return message;
}

/**
 * The `.catch` of a scheduled run: permanent errors set the instance status to permanent,
 * retryable ones to recoverable (others leave it as it is); the error goes on to the scheduler.
 */
export function reportFailures(ctx: Pick<InboundContext, 'status'>): (err: unknown) => never {
  return (err) => {
    if (err instanceof PermanentError) ctx.status.set('permanent_error', err.message);
    else if (err instanceof RetryableError) ctx.status.set('recoverable_error', err.message);
    throw err;
  };
}
