import { setTimeout as sleep } from 'node:timers/promises';
import {
  isBridgeError,
  PermanentError,
  type InboundConnector,
  type InboundContext,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import { GraphClient, WaitBudget, withRetries } from './client.ts';
import type { IntuneConfig } from './config.ts';
import { diffDevices, emptyState, finishScan, stateSchema, type IntuneState } from './mapping.ts';

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
  const stopping = new AbortController();
  let task: ScheduledTask | undefined;
  let running: Promise<void> | undefined;

  async function loadState(): Promise<IntuneState> {
    const stored = await ctx.checkpoints.get();
    if (stored === undefined) return emptyState();
    const parsed = stateSchema.safeParse(stored);
    if (parsed.success) return parsed.data;
    // A state this version cannot read (written by a newer one, or damaged): start over with a
    // baseline rather than guess transitions from it.
    log.warn(
      { problems: parsed.error.issues.length },
      'stored device state is not readable; rebuilding the baseline',
    );
    return emptyState();
  }

  async function scan(taskSignal: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([taskSignal, stopping.signal]);
    const budget = new WaitBudget(config.max_retry_wait);
    let state = await loadState();
    const seen = new Set<string>();
    let url: string | undefined = client.firstPage();
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
      url = page.nextLink;
    }
    const end = finishScan(state, seen, config, ctx.clock.now().toISOString());
    if (end.skipped) log.warn({ known: Object.keys(state.devices).length }, end.skipped);
    else if (end.vanished.length > 0)
      log.info({ vanished: end.vanished, policy: config.vanished_devices }, 'devices no longer in Intune');
    await ctx.emit(end.events, { checkpoint: { value: end.state } });
    for (const e of end.events) transitions.inc({ type: e.type.slice(e.type.lastIndexOf('/') + 1) });
    log.debug({ pages, devices: seen.size }, 'scan complete');
  }

  async function run(taskSignal: AbortSignal): Promise<void> {
    try {
      await scan(taskSignal);
      scans.inc({ outcome: 'ok' });
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
        auth ? `Graph refused the app's credentials: ${message}` : message,
      );
      throw err;
    }
  }

  return {
    async check(signal) {
      try {
        await client.probe(signal);
        return { ok: true, message: 'Graph answered the managedDevices query' };
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
