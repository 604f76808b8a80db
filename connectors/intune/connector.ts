import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import { loadScanState, scanningConnector, WaitBudget, withRetries } from '../_shared/mdm-poller.ts';
import { PageCursors } from '../_shared/page-cursors.ts';
import { GraphClient } from './client.ts';
import type { IntuneConfig } from './config.ts';
import { diffDevices, finishScan, stateSchema, type IntuneState } from './mapping.ts';

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

  async function scan(signal: AbortSignal): Promise<void> {
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
      // Events go out with the state of every page read so far; a page that only updates the
      // state (baselines, new names) is committed with the next events or at the end of the scan.
      state = diff.state;
      if (diff.events.length > 0) {
        await ctx.emit(diff.events, { checkpoint: { value: state } });
        for (const e of diff.events) transitions.inc({ type: e.type.slice(e.type.lastIndexOf('/') + 1) });
      }
      url = page.nextLink === undefined ? undefined : links.follow(page.nextLink);
    }
    const end = finishScan(state, seen, config, ctx.clock.now().toISOString());
    if (end.skipped) log.warn({ known: Object.keys(state.devices).length }, end.skipped);
    else if (end.vanished.length > 0)
      log.info({ vanished: end.vanished, policy: config.vanished_devices }, 'devices no longer in Intune');
    await ctx.emit(end.events, { checkpoint: { value: end.state } });
    for (const e of end.events) transitions.inc({ type: e.type.slice(e.type.lastIndexOf('/') + 1) });
    log.debug({ pages, devices: seen.size }, 'scan complete');
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
