import {
  PermanentError,
  RetryableError,
  type InboundConnector,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import { lookupOrder, presentDevices } from '../_shared/mdm-mapping.ts';
import {
  FailureStreak,
  loadScanState,
  lookupFailure,
  logMissingKept,
  lookUpMissing,
  readEach,
  ReadsFailing,
  scanningConnector,
  WaitBudget,
  withRetries,
  type ReadFailure,
  type ScanOutcome,
} from '../_shared/mdm-poller.ts';
import { BudgetExhausted, KandjiClient, PAGE_SIZE, RequestBudget } from './client.ts';
import type { KandjiConfig } from './config.ts';
import {
  diffDevices,
  finishScan,
  kandjiDeviceSchema,
  needsStatus,
  stateSchema,
  vanishedHold,
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
 * The order of the status reads: devices whose last read failed after all the others (the one
 * that failed longest ago first), so that a device the API keeps failing for does not take the
 * place of the others scan after scan; among the others, by evaluatedAt.
 */
function readOrder(state: KandjiState): (a: string, b: string) => number {
  return (a, b) => {
    const failedA = state.devices[a]?.read_failed ?? '';
    const failedB = state.devices[b]?.read_failed ?? '';
    if (failedA !== failedB) return failedA < failedB ? -1 : 1;
    return evaluatedAt(state.devices[a]) - evaluatedAt(state.devices[b]);
  };
}

/**
 * How a failed status read counts. The request budget spent leaves the device (and the rest)
 * unread. Throttling beyond the wait budget and refused credentials are about the API as a whole
 * (any 401/403 means the token was refused or lacks a permission): the reads stop. Anything else
 * (a server error that persists, a timeout, a 400) is about that device: it is recorded and the
 * reads go on, so that one device cannot hold the fleet back — until status_failures_to_stop of
 * them in a row (see readEach) say that the endpoint fails for every device.
 */
function statusReadFailure(err: unknown): ReadFailure {
  if (err instanceof BudgetExhausted) return 'unread';
  if (err instanceof PermanentError && err.authFailure) return 'stop';
  if (err instanceof RetryableError && err.code === 'SSF_ERR_HTTP_RATE_LIMITED') return 'stop';
  return 'device';
}

/** A lookup the request budget no longer allows is left for a later scan, not failed. */
function lookupReadFailure(err: unknown): ReadFailure {
  return err instanceof BudgetExhausted ? 'unread' : lookupFailure(err);
}

/** `state` with `field` set to `at` on each of `ids` the state has. */
function stamp(
  state: KandjiState,
  ids: readonly string[],
  field: 'read_failed' | 'looked_up',
  at: string,
): KandjiState {
  if (ids.length === 0) return state;
  const devices = { ...state.devices };
  for (const id of ids) if (devices[id]) devices[id] = { ...devices[id], [field]: at };
  return { ...state, devices };
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
  const statusFailures = ctx.metrics.counter(
    'kandji_status_read_failures_total',
    'Device status reads that failed (after the in-scan retries); the device is read again later',
  );
  const deferredCount = ctx.metrics.counter(
    'kandji_devices_deferred_total',
    'Devices whose status was left for the next scan (request budget used up, status not found or not read)',
  );
  const emitted = ctx.metrics.counter('kandji_events_total', 'Compliance transitions emitted');
  const rejectedCount = ctx.metrics.counter(
    'kandji_rejected_records_total',
    'Device records or statuses Kandji sent malformed',
  );
  const missingCount = ctx.metrics.counter(
    'kandji_missing_devices_total',
    'Devices missing from a complete device list, by what became of them (present, gone, failed, deferred, held)',
    ['outcome'],
  );

  /** Logs and counts the records of a diff Kandji sent malformed. */
  function reportRejected(diff: DiffResult): void {
    for (const r of diff.rejected) {
      rejectedCount.inc();
      if (r.message.startsWith('status:')) {
        log.warn(
          { id: r.id, problem: r.message },
          'Kandji answered a device status that decides nothing; the device keeps its state and its status is read again next scan',
        );
      } else log.warn({ id: r.id, problem: r.message }, 'skipped a malformed Kandji device record');
    }
    if (diff.outcomes.deferred > 0) deferredCount.inc(undefined, diff.outcomes.deferred);
  }

  /**
   * A device missing from the list is not gone until Kandji confirms it: a device removed while
   * the scan pages shifts the later pages, so another one can be missed. Each missing device is
   * looked up on its own (GET /api/v1/devices/{id}, not its status, whose 404 can also mean "no
   * status yet"; at most vanished_lookups_per_scan per scan, those never looked up first). One
   * Kandji still has is decided from its record and counts as seen; one whose lookup fails, or
   * that is left for a later scan (by the limit or the request budget), counts as seen and keeps
   * its state; only a 404 leaves it missing, for the vanished-device policy. Returns the state,
   * and how many devices were left unconfirmed.
   */
  async function confirmMissing(
    state: KandjiState,
    seen: Set<string>,
    waits: WaitBudget,
    signal: AbortSignal,
    at: string,
  ): Promise<{ state: KandjiState; unconfirmed: number }> {
    const missing = lookupOrder(
      presentDevices(state).filter((id) => !seen.has(id)),
      (id) => state.devices[id]?.looked_up,
    );
    if (missing.length === 0) return { state, unconfirmed: 0 };
    const found = await lookUpMissing(missing, {
      limit: config.vanished_lookups_per_scan,
      concurrency: config.status_concurrency,
      lookup: (id, s) => client.device(id, s),
      failure: lookupReadFailure,
      waits,
      signal,
    });
    missingCount.inc({ outcome: 'present' }, found.present.size);
    missingCount.inc({ outcome: 'gone' }, found.gone.length);
    missingCount.inc({ outcome: 'failed' }, found.failed.length);
    missingCount.inc({ outcome: 'deferred' }, found.deferred.length);

    // Decided like a listed device: a flag decides at once; a status it needs waits until it is
    // listed again (its state stays as it is meanwhile).
    const diff = diffDevices([...found.present.values()], {}, config, state, at);
    reportRejected(diff);
    // Looked up but not listed: behind the devices never looked up at the next lookups.
    const next = stamp(
      diff.state,
      [...found.present.keys(), ...found.failed.map((f) => f.id)],
      'looked_up',
      at,
    );
    if (diff.events.length > 0) {
      await ctx.emit(diff.events, { checkpoint: { value: next } });
      emitted.inc(undefined, diff.events.length);
    }
    for (const id of [...found.present.keys(), ...found.deferred]) seen.add(id);
    for (const { id } of found.failed) seen.add(id);

    logMissingKept(log, found, config.vanished_lookups_per_scan, {
      item: 'device',
      listing: 'the device list',
      vendor: 'Kandji',
      run: 'scan',
    });
    return { state: next, unconfirmed: found.failed.length + found.deferred.length };
  }

  /**
   * The problem a scan whose status reads `failing` stopped reports (recoverable_error), with
   * `unread` devices left for the next scan and `failed` reads; logged.
   */
  function stoppedReading(failing: ReadsFailing, unread: number, failed: number): string {
    const last = failing.last instanceof Error ? failing.last.message : String(failing.last);
    log.warn(
      { failures: failing.failures, unread, failed, error: last },
      'device status reads failed in a row; the status reads stop until the next scan',
    );
    const devices = (n: number) => `${n} device${n === 1 ? '' : 's'}`;
    return `${failing.failures} device status reads in a row failed (status_failures_to_stop), the last with: ${last}; the status reads stopped for this scan: what was read is kept, and the next scan reads again, the ${devices(unread)} not read before the ${failed} whose read failed`;
  }

  /**
   * One scan: the whole device list first, then the statuses of the devices that checked in since
   * their last evaluation, the longest-unevaluated first, as far as the request budget goes. The
   * devices the budget leaves over are therefore the first read by the next scan, whatever their
   * place in the list. A status read that fails costs that device alone: it keeps its state and
   * is read after the others next time. After status_failures_to_stop failed reads in a row the
   * status reads stop for this scan (the endpoint is down or hanging for every device): what was
   * read is committed and the scan ends as usual, `stopped` with the problem. `partial` when a
   * status needed, or a missing device's lookup, was left for a later scan; `held` when the
   * vanished-device guard distrusts the list.
   */
  async function scan(signal: AbortSignal): Promise<ScanOutcome> {
    const waits = new WaitBudget(config.max_retry_wait);
    // The time of a change the scan sees without a check-in to date it (a flag set or cleared).
    const scannedAt = ctx.clock.now().toISOString();
    let state = await loadScanState(ctx, stateSchema);
    const seen = new Set<string>();
    /** Records of the devices whose status is to be read, by device id, in list order. */
    const wanted = new Map<string, unknown>();
    let exhausted = false;
    let listed = false;

    // Events go out with the state of everything decided so far; a step that only updates the
    // state (baselines, new check-in times) is committed with the next events or at the end.
    const commit = async (diff: DiffResult, next = diff.state) => {
      reportRejected(diff);
      for (const id of diff.seen) seen.add(id);
      state = next;
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
      await commit(diffDevices(others, {}, config, state, scannedAt));
      if (devices.length < PAGE_SIZE) {
        listed = true;
        break;
      }
    }

    const queue = [...wanted.keys()].sort(readOrder(state));
    /** The failure that stopped the status reads (throttling, refused credentials), if one did. */
    let halted: unknown;
    /** The failed reads in a row that stopped the status reads, if they did. */
    let failing: ReadsFailing | undefined;
    // Counted across the chunks: failures in a row may span two of them.
    const streak = new FailureStreak(config.status_failures_to_stop);
    let answered = 0;
    let failedReads = 0;
    for (let i = 0; i < queue.length; i += PAGE_SIZE) {
      const chunk = queue.slice(i, i + PAGE_SIZE);
      const statuses: Record<string, unknown> = {};
      const failed: string[] = [];
      if (!exhausted && halted === undefined && failing === undefined) {
        const reads = await readEach(chunk, {
          concurrency: config.status_concurrency,
          read: (id, s) => client.deviceStatus(id, s),
          failure: statusReadFailure,
          streak,
          waits,
          signal,
        });
        statusReads.inc(undefined, reads.answers.size);
        answered += reads.answers.size;
        for (const [id, status] of reads.answers) if (status !== undefined) statuses[id] = status;
        for (const { id, error } of reads.failed) {
          if (error === reads.stoppedBy) continue;
          failed.push(id);
          statusFailures.inc();
          log.warn(
            { device: id, error: error instanceof Error ? error.message : String(error) },
            'could not read the status of a device; it keeps its state and is read again after the others',
          );
        }
        if (reads.stoppedBy instanceof BudgetExhausted) exhausted = true;
        else if (reads.stoppedBy instanceof ReadsFailing) failing = reads.stoppedBy;
        else if (reads.stoppedBy !== undefined) halted = reads.stoppedBy;
      }
      failedReads += failed.length;
      const diff = diffDevices(
        chunk.map((id) => wanted.get(id)),
        statuses,
        config,
        state,
        scannedAt,
      );
      await commit(diff, stamp(diff.state, failed, 'read_failed', scannedAt));
    }
    requests.set(undefined, budget.used);

    if (halted !== undefined) {
      // What was read so far is kept; the scan fails as the API said (throttled: until the next
      // scan; refused credentials: the instance is flagged).
      await ctx.emit([], { checkpoint: { value: state } });
      throw halted;
    }
    if (!listed) {
      await ctx.emit([], { checkpoint: { value: state } });
      log.info(
        { budget: config.max_requests_per_hour, seen: seen.size },
        'request budget used up before the device list was read; the scan starts over on the next run',
      );
      return 'partial';
    }
    // Status reads stopped by failures in a row: the list is complete all the same, so the scan
    // goes on to the devices missing from it (their lookups stop on their own if the API is
    // down), so that a set of devices Kandji keeps failing for cannot hold that back for good.
    const stopped = failing && stoppedReading(failing, queue.length - answered - failedReads, failedReads);
    let unconfirmed = 0;
    const hold = vanishedHold(state, seen, config);
    if (hold === undefined && config.vanished_devices !== 'keep') {
      ({ state, unconfirmed } = await confirmMissing(state, seen, waits, signal, scannedAt));
    }
    const end = finishScan(state, seen, config, ctx.clock.now().toISOString());
    if (end.skipped) {
      const missing = presentDevices(state).filter((id) => !seen.has(id)).length;
      missingCount.inc({ outcome: 'held' }, missing);
      log.warn({ known: presentDevices(state).length, listed: seen.size }, end.skipped);
    } else if (end.vanished.length > 0)
      log.info({ vanished: end.vanished, policy: config.vanished_devices }, 'devices no longer in Kandji');
    await ctx.emit(end.events, { checkpoint: { value: end.state } });
    emitted.inc(undefined, end.events.length);
    requests.set(undefined, budget.used);
    if (end.skipped)
      return { outcome: 'held', problem: stopped ? `${end.skipped}; ${stopped}` : end.skipped };
    if (stopped) return { outcome: 'stopped', problem: stopped };
    if (exhausted) {
      log.info(
        { budget: config.max_requests_per_hour, seen: seen.size },
        'request budget used up; the devices left over are read first by the next scan',
      );
      return 'partial';
    }
    return unconfirmed > 0 || failedReads > 0 ? 'partial' : 'ok';
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
