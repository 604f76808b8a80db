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
  type DeviceState,
  type DiffResult,
  type KandjiState,
} from './mapping.ts';

/**
 * When a device was last evaluated, for the order status reads are made in: never (or reported
 * gone since) first, then by the check-in its status was last read at, oldest first.
 */
function evaluatedAt(device: DeviceState | undefined): number {
  if (device?.status === undefined || device.gone !== undefined || device.checked_in === undefined) return 0;
  const t = Date.parse(device.checked_in);
  return Number.isFinite(t) ? t : 0;
}

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

  /** Logs and counts the records of a diff Kandji sent malformed. */
  function reportRejected(diff: DiffResult): void {
    for (const r of diff.rejected) {
      rejectedCount.inc();
      log.warn({ id: r.id, problem: r.message }, 'skipped a malformed Kandji device record');
    }
    if (diff.outcomes.deferred > 0) deferredCount.inc(undefined, diff.outcomes.deferred);
  }

  /**
   * One scan: the whole device list first, then the statuses of the devices that checked in since
   * their last evaluation, the longest-unevaluated first, as far as the request budget goes. The
   * devices the budget leaves over are therefore the first read by the next scan, whatever their
   * place in the list. `partial` when the budget ran out before every status needed was read.
   */
  async function scan(signal: AbortSignal): Promise<'ok' | 'partial'> {
    const waits = new WaitBudget(config.max_retry_wait);
    let state = await loadScanState(ctx, stateSchema);
    const seen = new Set<string>();
    /** Records of the devices whose status is to be read, by device id, in list order. */
    const wanted = new Map<string, unknown>();
    let exhausted = false;
    let listed = false;

    // Events go out with the state of everything decided so far; a step that only updates the
    // state (baselines, new check-in times) is committed with the next events or at the end.
    const commit = async (diff: DiffResult) => {
      reportRejected(diff);
      for (const id of diff.seen) seen.add(id);
      state = diff.state;
      if (diff.events.length > 0) {
        await ctx.emit(diff.events, { checkpoint: { value: state } });
        emitted.inc(undefined, diff.events.length);
      }
    };

    for (let offset = 0; ; offset += PAGE_SIZE) {
      let devices: unknown[];
      try {
        devices = await withRetries(() => client.listDevices(offset, signal), waits, signal);
      } catch (err) {
        if (!(err instanceof BudgetExhausted)) throw err;
        exhausted = true;
        break;
      }
      const others: unknown[] = [];
      for (const record of devices) {
        const d = kandjiDeviceSchema.safeParse(record);
        if (
          d.success &&
          (wanted.has(d.data.device_id) || needsStatus(d.data, state.devices[d.data.device_id]))
        )
          wanted.set(d.data.device_id, record);
        else others.push(record);
      }
      // Devices whose status is not needed (unchanged, or flagged removed/missing) are decided now.
      await commit(diffDevices(others, {}, config, state));
      if (devices.length < PAGE_SIZE) {
        listed = true;
        break;
      }
    }

    const queue = [...wanted.keys()].sort(
      (a, b) => evaluatedAt(state.devices[a]) - evaluatedAt(state.devices[b]),
    );
    for (let i = 0; i < queue.length; i += PAGE_SIZE) {
      const chunk = queue.slice(i, i + PAGE_SIZE);
      const statuses: Record<string, unknown> = {};
      await eachLimit(chunk, config.status_concurrency, async (id) => {
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
      await commit(
        diffDevices(
          chunk.map((id) => wanted.get(id)),
          statuses,
          config,
          state,
        ),
      );
    }
    requests.set(undefined, budget.used);

    if (!listed) {
      await ctx.emit([], { checkpoint: { value: state } });
      log.info(
        { budget: config.max_requests_per_hour, seen: seen.size },
        'request budget used up before the device list was read; the scan starts over on the next run',
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
    requests.set(undefined, budget.used);
    if (!exhausted) return 'ok';
    log.info(
      { budget: config.max_requests_per_hour, seen: seen.size },
      'request budget used up; the devices left over are read first by the next scan',
    );
    return 'partial';
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
