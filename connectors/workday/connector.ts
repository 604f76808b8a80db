import {
  type InboundConnector,
  type InboundContext,
  type EventDraft,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import { createWorkdayClient, type TransactionWindow, type WorkdayClient } from './client.ts';
import type { WorkdayConfig } from './config.ts';
import {
  CHANGE_WINDOW_OVERLAP_MS,
  hrCheckpoint,
  logBackfilled,
  reportFailures,
  unnamedLeavers,
} from '../_shared/hr-checkpoint.ts';
import { applyWorker, notHeld, unnamedLeaver } from '../_shared/hr-leaver.ts';
import {
  asRead,
  emptyState,
  policyOf,
  stateSchema,
  workerFromRow,
  type WorkdayState,
  type WorkdayWorker,
} from './mapping.ts';

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
  const held = ctx.metrics.gauge('workday_held_changes', 'Future-dated terminations and purges held');
  const checkpoint = hrCheckpoint(ctx, {
    metricPrefix: 'workday',
    source: 'Workday',
    code: 'SSF_ERR_WORKDAY_STATE',
    schema: stateSchema,
    empty: emptyState,
    committed: (state) => held.set(undefined, Object.keys(state.pending).length),
  });
  const tasks: ScheduledTask[] = [];
  let client: WorkdayClient | undefined;

  async function readRaas(
    wd: WorkdayClient,
    since: string,
    signal: AbortSignal,
    malformed: string[],
  ): Promise<WorkdayWorker[]> {
    if (!config.raas) return [];
    const rows = await wd.fetchReport(since, signal);
    const workers: WorkdayWorker[] = [];
    const idColumn = config.raas.columns.employee_id;
    for (const [index, row] of rows.entries()) {
      try {
        workers.push(workerFromRow(row, config.raas.columns));
      } catch (err) {
        records.inc({ outcome: 'malformed' });
        ctx.logger.warn({ row: index, reason: (err as Error).message }, 'skipped a malformed report row');
        const id = row && typeof row === 'object' ? (row as Record<string, unknown>)[idColumn] : undefined;
        const which = typeof id === 'string' || typeof id === 'number' ? ` (${idColumn} ${id})` : '';
        malformed.push(`row ${index + 1}${which}: ${(err as Error).message}`);
      }
    }
    return oneRowPerWorker(workers);
  }

  async function readSoap(
    wd: WorkdayClient,
    from: string,
    now: Date,
    signal: AbortSignal,
    malformed: string[],
  ): Promise<WorkdayWorker[]> {
    const byId = new Map<string, WorkdayWorker>();
    const through = now.toISOString();
    for (const kind of ['updated', 'effective'] as const) {
      const window: TransactionWindow = { kind, from, through };
      for (let page = 1, pages = 1; page <= pages; page += 1) {
        const result = await wd.getWorkers(window, now, page, signal);
        pages = result.totalPages;
        for (const problem of result.problems) {
          records.inc({ outcome: 'malformed' });
          ctx.logger.warn({ window: kind, page, reason: problem }, 'skipped a malformed worker');
          malformed.push(problem);
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
    const state = await checkpoint.load();
    const firstRead = state.watermark === undefined;
    // Each window reaches back over the end of the one before: an entry Workday dates just
    // before it (its clock behind ours, or an entry committed late) is read, not lost. Reading
    // a change again sends nothing twice.
    const mark = state.watermark === undefined ? Number.NaN : Date.parse(state.watermark);
    // A leaver an earlier run could not name is read again: the window starts no later than the
    // one that read it, until it can be sent (see state.unnamed).
    const held = Object.values(state.unnamed ?? {})
      .map((at) => Date.parse(at))
      .filter((at) => !Number.isNaN(at));
    const since = new Date(
      Math.min(
        Number.isNaN(mark) ? now.getTime() - config.initial_lookback : mark - CHANGE_WINDOW_OVERLAP_MS,
        ...held,
      ),
    ).toISOString();
    const malformed: string[] = [];
    const workers =
      config.mode === 'raas'
        ? await readRaas(wd, since, signal, malformed)
        : await readSoap(wd, since, now, signal, malformed);
    const before = Object.keys(state.pending).length;
    const events: EventDraft[] = [];
    const backfilled: string[] = [];
    for (const worker of workers) {
      const result = applyWorker(state, asRead(worker, state, config, now), policy, now);
      if (unnamedLeaver(result)) {
        // Kept, and its window read again by the next runs: the watermark moves past it.
        records.inc({ outcome: 'no_email' });
        (state.unnamed ??= {})[worker.id] ??= since;
        continue;
      }
      if (state.unnamed?.[worker.id] !== undefined) {
        delete state.unnamed[worker.id];
        if (Object.keys(state.unnamed).length === 0) delete state.unnamed;
      }
      records.inc({ outcome: result.events.length > 0 ? 'mapped' : 'ignored' });
      if (result.ignored) ctx.logger.debug({ worker: worker.id, reason: result.ignored }, 'no event');
      if (result.backfilled) backfilled.push(worker.id);
      if (worker.terminationReason && result.events.some((e) => e.type === 'risc.account-disabled')) {
        // For the operator's record only: a termination reason is HR data no receiver gets.
        ctx.logger.debug(
          { worker: worker.id, termination_reason: worker.terminationReason },
          'termination reason',
        );
      }
      events.push(...result.events);
    }
    state.watermark = now.toISOString();
    const due = notHeld(events, state);
    await checkpoint.commit(state, due);
    const scheduled = Object.keys(state.pending).length - before;
    if (due.length > 0 || scheduled !== 0) {
      ctx.logger.info(
        { workers: workers.length, events: due.length, held: Object.keys(state.pending).length },
        'Workday changes processed',
      );
    }
    logBackfilled(ctx, backfilled, config.backfill_window, { first_read: firstRead });
    // The watermark has moved past them: a skipped record stays on the instance's status (and in
    // the log) until a run reads every record it is given, and a leaver that cannot be named
    // until it can be.
    const problems: string[] = [];
    if (malformed.length > 0) {
      problems.push(
        `skipped ${malformed.length} unreadable worker record(s): ${malformed.slice(0, 3).join('; ')}`,
      );
    }
    const notSent = unnamedLeavers(
      ctx,
      Object.keys(state.unnamed ?? {}),
      `each run reads them again, from the window that first read them, until they can be sent (give them a work email of their own in Workday, or set subject_format: aliases)`,
    );
    if (notSent) problems.push(notSent);
    if (problems.length > 0) ctx.status.set('recoverable_error', problems.join('; '));
    else ctx.status.success();
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
          // Poll and release share the checkpoint: one runs at a time.
          (signal) => checkpoint.serial(() => poll(signal)).catch(reportFailures(ctx)),
        ),
        checkpoint.scheduleRelease(policy, config.release_interval),
      );
    },
    async stop(deadlineMs) {
      for (const task of tasks.splice(0)) task.stop();
      await checkpoint.settle(deadlineMs);
    },
  };
}

/** Whether a row says anything of a termination (a status or a date). */
function saysTermination(worker: WorkdayWorker): boolean {
  return (
    worker.status === 'terminated' ||
    worker.terminationDate !== undefined ||
    worker.lastDayOfWork !== undefined
  );
}

/**
 * One row per worker. A report joined on a multi-instance field (positions, say) repeats a
 * worker; applied one after the other, a row with a future termination date held it and a row
 * without one rescinded it, and the leaver went out at once, weeks early. The last row that says
 * something of a termination wins, else the last row.
 */
export function oneRowPerWorker(workers: readonly WorkdayWorker[]): WorkdayWorker[] {
  const byId = new Map<string, WorkdayWorker>();
  for (const worker of workers) {
    const kept = byId.get(worker.id);
    if (!kept || saysTermination(worker) || !saysTermination(kept)) byId.set(worker.id, worker);
  }
  return [...byId.values()];
}
