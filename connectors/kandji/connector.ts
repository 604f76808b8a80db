import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import {
  eachLimit,
  loadScanState,
  scanningConnector,
  WaitBudget,
  withRetries,
} from '../_shared/mdm-poller.ts';
import { presentDevices } from '../_shared/mdm-mapping.ts';
import { BudgetExhausted, KandjiClient, PAGE_SIZE, RequestBudget } from './client.ts';
import type { KandjiConfig } from './config.ts';
import {
  diffDevices,
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

  /**
   * A device missing from the list is not gone until Kandji confirms it: a device removed while
   * the scan pages shifts the later pages, so another one can be missed. Each missing device's
   * status is read; one Kandji still answers for (or that the budget leaves unread) counts as
   * seen, and only a 404 lets the vanished-device policy apply.
   */
  async function confirmMissing(
    state: KandjiState,
    seen: Set<string>,
    waits: WaitBudget,
    signal: AbortSignal,
  ): Promise<void> {
    if (seen.size === 0 || config.vanished_devices === 'keep') return;
    const missing = presentDevices(state).filter((id) => !seen.has(id));
    const present: string[] = [];
    let exhausted = false;
    await eachLimit(missing, config.status_concurrency, async (id) => {
      if (exhausted) {
        seen.add(id);
        return;
      }
      try {
        const status = await withRetries(() => client.deviceStatus(id, signal), waits, signal);
        if (status !== undefined) present.push(id);
      } catch (err) {
        if (!(err instanceof BudgetExhausted)) throw err;
        exhausted = true;
        seen.add(id);
      }
    });
    for (const id of present) seen.add(id);
    if (present.length > 0)
      log.info({ devices: present }, 'devices missing from the device list are still in Kandji; kept');
  }

  /** `partial` when the request budget ran out before the device list did. */
  async function scan(signal: AbortSignal): Promise<'ok' | 'partial'> {
    const waits = new WaitBudget(config.max_retry_wait);
    let state = await loadScanState(ctx, stateSchema);
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
      return 'partial';
    }
    await confirmMissing(state, seen, waits, signal);
    const end = finishScan(state, seen, config, ctx.clock.now().toISOString());
    if (end.skipped) log.warn({ known: Object.keys(state.devices).length }, end.skipped);
    else if (end.vanished.length > 0)
      log.info({ vanished: end.vanished, policy: config.vanished_devices }, 'devices no longer in Kandji');
    await ctx.emit(end.events, { checkpoint: { value: end.state } });
    emitted.inc(undefined, end.events.length);
    return 'ok';
  }

  return scanningConnector(ctx, {
    task: 'scan',
    everyMs: config.poll_interval,
    maxJitterMs: 30_000,
    runs: scans,
    refused: 'Kandji refused the API token',
    scan,
    probe: (signal) => client.probe(signal),
    answered: 'Kandji answered the device list',
  });
}
