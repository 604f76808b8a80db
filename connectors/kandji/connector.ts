import { setTimeout as sleep } from 'node:timers/promises';
import {
  isBridgeError,
  PermanentError,
  type InboundConnector,
  type InboundContext,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import {
  BudgetExhausted,
  eachLimit,
  KandjiClient,
  PAGE_SIZE,
  RequestBudget,
  WaitBudget,
  withRetries,
} from './client.ts';
import type { KandjiConfig } from './config.ts';
import {
  diffDevices,
  emptyState,
  finishScan,
  kandjiDeviceSchema,
  needsStatus,
  stateSchema,
  type KandjiState,
} from './mapping.ts';

/**
 * Scans the Kandji device list on a schedule, reads the status of each device that checked in
 * since it was last evaluated, and turns compliance transitions into CAEP
 * device-compliance-change events. Requests stay within the configured hourly budget; devices
 * left over are read on the next scan. Device state is committed with the events of each page.
 */
export function createKandji(ctx: InboundContext<KandjiState>, config: KandjiConfig): InboundConnector {
  const budget = new RequestBudget(config.max_requests_per_hour, () => ctx.clock.now().getTime());
  const client = new KandjiClient(ctx, config, budget);
  const log = ctx.logger;
  const scans = ctx.metrics.counter('kandji_scans_total', 'Device scans by outcome', ['outcome']);
  const requests = ctx.metrics.gauge(
    'kandji_requests_last_hour',
    'Kandji API requests made in the last hour',
  );
  const statusReads = ctx.metrics.counter('kandji_status_reads_total', 'Device status reads');
  const deferredCount = ctx.metrics.counter(
    'kandji_devices_deferred_total',
    'Devices whose status was left for the next scan (request budget used up)',
  );
  const emitted = ctx.metrics.counter('kandji_events_total', 'Compliance transitions emitted');
  const rejectedCount = ctx.metrics.counter(
    'kandji_rejected_records_total',
    'Device records Kandji sent malformed',
  );
  const stopping = new AbortController();
  let task: ScheduledTask | undefined;
  let running: Promise<void> | undefined;

  async function loadState(): Promise<KandjiState> {
    const stored = await ctx.checkpoints.get();
    if (stored === undefined) return emptyState();
    const parsed = stateSchema.safeParse(stored);
    if (parsed.success) return parsed.data;
    log.warn(
      { problems: parsed.error.issues.length },
      'stored device state is not readable; rebuilding the baseline',
    );
    return emptyState();
  }

  async function scan(taskSignal: AbortSignal): Promise<'complete' | 'budget'> {
    const signal = AbortSignal.any([taskSignal, stopping.signal]);
    const waits = new WaitBudget(config.max_retry_wait);
    let state = await loadState();
    const seen = new Set<string>();
    let exhausted = false;
    let complete = false;

    for (let offset = 0; !exhausted; offset += PAGE_SIZE) {
      let devices: unknown[];
      try {
        devices = await withRetries(() => client.listDevices(offset, signal), waits, signal);
      } catch (err) {
        if (err instanceof BudgetExhausted) {
          exhausted = true;
          break;
        }
        throw err;
      }
      const wanted: string[] = [];
      for (const record of devices) {
        const d = kandjiDeviceSchema.safeParse(record);
        if (d.success && needsStatus(d.data, state.devices[d.data.device_id])) wanted.push(d.data.device_id);
      }
      const statuses: Record<string, unknown> = {};
      await eachLimit(wanted, config.status_concurrency, async (id) => {
        if (exhausted) return;
        try {
          const status = await withRetries(() => client.deviceStatus(id, signal), waits, signal);
          statusReads.inc();
          if (status !== undefined) statuses[id] = status;
        } catch (err) {
          if (err instanceof BudgetExhausted) exhausted = true;
          else throw err;
        }
      });
      const diff = diffDevices(devices, statuses, config, state);
      for (const id of diff.seen) seen.add(id);
      for (const r of diff.rejected) {
        rejectedCount.inc();
        log.warn(
          { index: offset + r.index, id: r.id, problem: r.message },
          'skipped a malformed Kandji device record',
        );
      }
      if (diff.outcomes.deferred > 0) deferredCount.inc(undefined, diff.outcomes.deferred);
      // Events go out with the state of every page read so far; a page that only updates the
      // state (baselines, new check-in times) is committed with the next events or at the end.
      state = diff.state;
      if (diff.events.length > 0) {
        await ctx.emit(diff.events, { checkpoint: { value: state } });
        emitted.inc(undefined, diff.events.length);
      }
      if (devices.length < PAGE_SIZE) {
        complete = !exhausted;
        break;
      }
    }
    requests.set(undefined, budget.used);

    if (!complete) {
      await ctx.emit([], { checkpoint: { value: state } });
      log.info(
        { budget: config.max_requests_per_hour, seen: seen.size },
        'request budget used up; the remaining devices are read on the next scan',
      );
      return 'budget';
    }
    const end = finishScan(state, seen, config, ctx.clock.now().toISOString());
    if (end.skipped) log.warn({ known: Object.keys(state.devices).length }, end.skipped);
    else if (end.vanished.length > 0)
      log.info({ vanished: end.vanished, policy: config.vanished_devices }, 'devices no longer in Kandji');
    await ctx.emit(end.events, { checkpoint: { value: end.state } });
    emitted.inc(undefined, end.events.length);
    return 'complete';
  }

  async function run(taskSignal: AbortSignal): Promise<void> {
    try {
      const outcome = await scan(taskSignal);
      scans.inc({ outcome: outcome === 'complete' ? 'ok' : 'partial' });
      ctx.status.success();
    } catch (err) {
      if (stopping.signal.aborted) return;
      scans.inc({ outcome: 'failed' });
      const message = err instanceof Error ? err.message : String(err);
      const auth = err instanceof PermanentError && err.authFailure;
      ctx.status.set(
        auth || (isBridgeError(err) && err.errorClass === 'permanent')
          ? 'permanent_error'
          : 'recoverable_error',
        auth ? `Kandji refused the API token: ${message}` : message,
      );
      throw err;
    }
  }

  return {
    async check(signal) {
      try {
        await client.probe(signal);
        return { ok: true, message: 'Kandji answered the device list' };
      } catch (err) {
        return {
          ok: false,
          message: err instanceof Error ? err.message : String(err),
          retryable: !(isBridgeError(err) && err.errorClass === 'permanent'),
        };
      }
    },
    async start() {
      if (task || stopping.signal.aborted) return;
      task = ctx.scheduler.schedule(
        'scan',
        {
          everyMs: config.poll_interval,
          runOnStart: true,
          jitterMs: Math.min(30_000, config.poll_interval / 10),
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
