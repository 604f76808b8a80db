import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import { presentDevices } from '../_shared/mdm-mapping.ts';
import {
  loadScanState,
  logMissingKept,
  lookUpMissing,
  scanningConnector,
  WaitBudget,
  withRetries,
  type ScanOutcome,
} from '../_shared/mdm-poller.ts';
import { PageCursors } from '../_shared/page-cursors.ts';
import { GraphClient } from './client.ts';
import type { IntuneConfig } from './config.ts';
import {
  diffDevices,
  finishScan,
  stateSchema,
  vanishedHold,
  type DiffResult,
  type IntuneState,
} from './mapping.ts';

/** Lookups of missing devices in flight at once. */
const LOOKUP_CONCURRENCY = 4;

/**
 * Scans Intune's managedDevices on a schedule and turns compliance transitions into CAEP
 * device-compliance-change events (and Mobile Threat Defense level changes into
 * risk-level-change). The last state of every device lives in the checkpoint and is committed
 * with the events of each page, so a restart resumes without sending anything twice.
 */
export function createIntune(ctx: InboundContext<IntuneState>, config: IntuneConfig): InboundConnector {
  const client = new GraphClient(ctx, config);
  const log = ctx.logger;
  const scans = ctx.metrics.counter('intune_scans_total', 'Device scans by outcome', ['outcome']);
  const devicesSeen = ctx.metrics.counter('intune_devices_scanned_total', 'Devices read from Graph');
  const transitions = ctx.metrics.counter('intune_events_total', 'Events emitted by type', ['type']);
  const undeterminedCount = ctx.metrics.counter(
    'intune_undetermined_total',
    'Devices whose complianceState decides nothing (conflict, error, unknown, …)',
    ['compliance_state'],
  );
  const rejectedCount = ctx.metrics.counter(
    'intune_rejected_records_total',
    'Device records that are not managedDevices',
  );
  const missingCount = ctx.metrics.counter(
    'intune_missing_devices_total',
    'Devices missing from a complete listing, by what became of them (present, gone, failed, deferred, held)',
    ['outcome'],
  );

  /** Counts and logs what a diff could not decide or read. */
  function report(diff: DiffResult): void {
    for (const [value, n] of Object.entries(diff.undetermined)) {
      undeterminedCount.inc({ compliance_state: value }, n);
    }
    if (Object.keys(diff.undetermined).length > 0) {
      log.info({ undetermined: diff.undetermined }, 'devices with a complianceState that decides nothing');
    }
    for (const r of diff.rejected) {
      rejectedCount.inc();
      log.warn(
        { index: r.index, id: r.id, problem: r.message },
        'skipped a device record that is not a managedDevice',
      );
    }
  }

  async function emitEvents(diff: DiffResult, state: IntuneState): Promise<void> {
    if (diff.events.length === 0) return;
    await ctx.emit(diff.events, { checkpoint: { value: state } });
    for (const e of diff.events) transitions.inc({ type: e.type.slice(e.type.lastIndexOf('/') + 1) });
  }

  /**
   * A device missing from the listing is not gone until Graph says so: a partial answer or a
   * paging problem leaves devices out. Each missing device is looked up on its own (at most
   * vanished_lookups_per_scan per scan, those never looked up first): one Graph still has is
   * decided from what it answers and counts as seen; one whose lookup fails, or that is left for
   * a later scan, counts as seen and keeps its state; only a 404 leaves it missing, for the
   * vanished-device policy. Returns the state, and whether devices were left unconfirmed.
   */
  async function confirmMissing(
    state: IntuneState,
    seen: Set<string>,
    waits: WaitBudget,
    signal: AbortSignal,
    at: string,
  ): Promise<{ state: IntuneState; unconfirmed: number }> {
    const missing = presentDevices(state)
      .filter((id) => !seen.has(id))
      .map((id, index) => ({ id, index, after: state.devices[id]!.looked_up ?? '' }))
      .sort((a, b) => (a.after < b.after ? -1 : a.after > b.after ? 1 : a.index - b.index))
      .map((m) => m.id);
    if (missing.length === 0) return { state, unconfirmed: 0 };
    const found = await lookUpMissing(missing, {
      limit: config.vanished_lookups_per_scan,
      concurrency: LOOKUP_CONCURRENCY,
      lookup: (id, s) => client.device(id, s),
      waits,
      signal,
    });
    missingCount.inc({ outcome: 'present' }, found.present.size);
    missingCount.inc({ outcome: 'gone' }, found.gone.length);
    missingCount.inc({ outcome: 'failed' }, found.failed.length);
    missingCount.inc({ outcome: 'deferred' }, found.deferred.length);

    const diff = diffDevices([...found.present.values()], config, state);
    report(diff);
    const devices = { ...diff.state.devices };
    // Looked up but not listed: behind the devices never looked up at the next lookups.
    for (const id of [...found.present.keys(), ...found.failed.map((f) => f.id)]) {
      if (devices[id]) devices[id] = { ...devices[id], looked_up: at };
    }
    const next: IntuneState = { ...diff.state, devices };
    await emitEvents(diff, next);
    for (const id of [...found.present.keys(), ...found.deferred]) seen.add(id);
    for (const { id } of found.failed) seen.add(id);

    logMissingKept(log, found, config.vanished_lookups_per_scan, {
      item: 'device',
      listing: 'the managedDevices listing',
      vendor: 'Intune',
      run: 'scan',
    });
    return { state: next, unconfirmed: found.failed.length + found.deferred.length };
  }

  async function scan(signal: AbortSignal): Promise<ScanOutcome> {
    const budget = new WaitBudget(config.max_retry_wait);
    let state = await loadScanState(ctx, stateSchema);
    const seen = new Set<string>();
    let url: string | undefined = client.firstPage();
    const links = new PageCursors('Microsoft Graph');
    let pages = 0;
    while (url !== undefined) {
      const current: string = url;
      const page = await withRetries(() => client.page(current, signal), budget, signal);
      pages += 1;
      const diff = diffDevices(page.devices, config, state);
      for (const id of diff.seen) seen.add(id);
      devicesSeen.inc(undefined, page.devices.length);
      report(diff);
      // Events go out with the state of every page read so far; a page that only updates the
      // state (baselines, new names) is committed with the next events or at the end of the scan.
      state = diff.state;
      await emitEvents(diff, state);
      url = page.nextLink === undefined ? undefined : links.follow(page.nextLink);
    }
    const at = ctx.clock.now().toISOString();
    const hold = vanishedHold(state, seen, config);
    let unconfirmed = 0;
    if (hold === undefined && config.vanished_devices !== 'keep') {
      ({ state, unconfirmed } = await confirmMissing(state, seen, budget, signal, at));
    }
    const end = finishScan(state, seen, config, at);
    const known = presentDevices(state).length;
    if (end.skipped) {
      missingCount.inc({ outcome: 'held' }, presentDevices(state).filter((id) => !seen.has(id)).length);
      log.warn({ known, listed: seen.size }, end.skipped);
    } else if (end.vanished.length > 0)
      log.info({ vanished: end.vanished, policy: config.vanished_devices }, 'devices no longer in Intune');
    await ctx.emit(end.events, { checkpoint: { value: end.state } });
    for (const e of end.events) transitions.inc({ type: e.type.slice(e.type.lastIndexOf('/') + 1) });
    log.debug({ pages, devices: seen.size }, 'scan complete');
    if (end.skipped) return { outcome: 'held', problem: end.skipped };
    return unconfirmed > 0 ? 'partial' : 'ok';
  }

  return scanningConnector(ctx, {
    task: 'scan',
    everyMs: config.poll_interval,
    maxJitterMs: 30_000,
    runs: scans,
    refused: "Graph refused the app's credentials",
    scan,
    probe: (signal) => client.probe(signal),
    answered: 'Graph answered the managedDevices query',
  });
}
