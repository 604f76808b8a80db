import {
  PermanentError,
  RetryableError,
  type InboundConnector,
  type InboundContext,
  type EventDraft,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import { createWorkdayClient, type TransactionWindow, type WorkdayClient } from './client.ts';
import type { WorkdayConfig } from './config.ts';
import { applyWorker, nextDue, notHeld, releaseDue, type HrWorker } from '../_shared/hr-leaver.ts';
import { emptyState, policyOf, stateSchema, workerFromRow, type WorkdayState } from './mapping.ts';

/**
 * Polls Workday (a RaaS custom report, or Get_Workers with transaction-log windows), turns
 * leavers into events, holds future-dated terminations in its checkpoint until they take effect,
 * and commits its state with the events it emits, in one transaction.
 */
export function createWorkday(ctx: InboundContext<WorkdayState>, config: WorkdayConfig): InboundConnector {
  const policy = policyOf(config);
  const records = ctx.metrics.counter('workday_records_total', 'Worker records read, by outcome', [
    'outcome',
  ]);
  const emitted = ctx.metrics.counter('workday_events_total', 'Events emitted, by type', ['type']);
  const held = ctx.metrics.gauge('workday_held_changes', 'Future-dated terminations and purges held');
  const tasks: ScheduledTask[] = [];
  let client: WorkdayClient | undefined;
  let running: Promise<unknown> = Promise.resolve();

  /** Poll and release share the checkpoint: one runs at a time. */
  function serial<T>(work: () => Promise<T>): Promise<T> {
    const next = running.then(work, work);
    running = next.catch(() => undefined);
    return next;
  }

  async function loadState(): Promise<WorkdayState> {
    const raw = await ctx.checkpoints.get();
    if (raw === undefined) return emptyState();
    const parsed = stateSchema.safeParse(raw);
    if (!parsed.success) {
      throw new PermanentError('the stored Workday checkpoint is not readable; reset it to start over', {
        code: 'SSF_ERR_WORKDAY_STATE',
      });
    }
    return parsed.data as WorkdayState;
  }

  async function commit(state: WorkdayState, events: EventDraft[]) {
    await ctx.emit(events, { checkpoint: { value: state } });
    for (const e of events) emitted.inc({ type: e.type });
    held.set(undefined, Object.keys(state.pending).length);
  }

  async function readRaas(wd: WorkdayClient, since: string, signal: AbortSignal): Promise<HrWorker[]> {
    if (!config.raas) return [];
    const rows = await wd.fetchReport(since, signal);
    const workers: HrWorker[] = [];
    for (const [index, row] of rows.entries()) {
      try {
        workers.push(workerFromRow(row, config.raas.columns));
      } catch (err) {
        records.inc({ outcome: 'malformed' });
        ctx.logger.warn({ row: index, reason: (err as Error).message }, 'skipped a malformed report row');
      }
    }
    return workers;
  }

  async function readSoap(
    wd: WorkdayClient,
    from: string,
    now: Date,
    signal: AbortSignal,
  ): Promise<HrWorker[]> {
    const byId = new Map<string, HrWorker>();
    const through = now.toISOString();
    for (const kind of ['updated', 'effective'] as const) {
      const window: TransactionWindow = { kind, from, through };
      for (let page = 1, pages = 1; page <= pages; page += 1) {
        const result = await wd.getWorkers(window, now, page, signal);
        pages = result.totalPages;
        for (const problem of result.problems) {
          records.inc({ outcome: 'malformed' });
          ctx.logger.warn({ window: kind, page, reason: problem }, 'skipped a malformed worker');
        }
        for (const worker of result.workers) byId.set(worker.id, worker);
      }
    }
    return [...byId.values()];
  }

  async function poll(signal: AbortSignal): Promise<void> {
    const wd = client;
    if (!wd) return;
    const now = ctx.clock.now();
    const state = await loadState();
    const since = state.watermark ?? new Date(now.getTime() - config.initial_lookback).toISOString();
    const workers =
      config.mode === 'raas' ? await readRaas(wd, since, signal) : await readSoap(wd, since, now, signal);
    const before = Object.keys(state.pending).length;
    const events: EventDraft[] = [];
    for (const worker of workers) {
      const result = applyWorker(state, worker, policy, now);
      records.inc({ outcome: result.events.length > 0 ? 'mapped' : 'ignored' });
      if (result.ignored) ctx.logger.debug({ worker: worker.id, reason: result.ignored }, 'no event');
      events.push(...result.events);
    }
    state.watermark = now.toISOString();
    const due = notHeld(events, state);
    await commit(state, due);
    const scheduled = Object.keys(state.pending).length - before;
    if (due.length > 0 || scheduled !== 0) {
      ctx.logger.info(
        { workers: workers.length, events: due.length, held: Object.keys(state.pending).length },
        'Workday changes processed',
      );
    }
    ctx.status.success();
  }

  async function release(): Promise<void> {
    const now = ctx.clock.now();
    const state = await loadState();
    const next = nextDue(state);
    if (next === undefined || new Date(next).getTime() > now.getTime()) return;
    const events = releaseDue(state, policy, now);
    await commit(state, events);
    ctx.logger.info({ events: events.length }, 'released held terminations that took effect');
  }

  function report(err: unknown): never {
    if (err instanceof PermanentError) {
      ctx.status.set('permanent_error', err.message);
    } else if (err instanceof RetryableError) {
      ctx.status.set('recoverable_error', err.message);
    }
    throw err;
  }

  return {
    async start() {
      client = createWorkdayClient(ctx as InboundContext<unknown>, config);
      tasks.push(
        ctx.scheduler.schedule(
          'poll',
          {
            everyMs: config.poll_interval,
            runOnStart: true,
            jitterMs: Math.min(30_000, config.poll_interval / 10),
          },
          (signal) => serial(() => poll(signal)).catch(report),
        ),
        ctx.scheduler.schedule('release', { everyMs: config.release_interval, runOnStart: true }, () =>
          serial(release).catch(report),
        ),
      );
    },
    async stop(deadlineMs) {
      for (const task of tasks.splice(0)) task.stop();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        running,
        new Promise((resolve) => (timer = setTimeout(resolve, Math.max(0, deadlineMs)))),
      ]);
      clearTimeout(timer);
    },
  };
}
