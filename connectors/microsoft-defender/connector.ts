import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import { createEdrConnector } from '../_shared/edr-connector.ts';
import { createIntake } from '../_shared/edr-intake.ts';
import { DefenderClient } from './client.ts';
import type { DefenderConfig } from './config.ts';
import { alertVersion, describeDefenderAlert, mapDefenderAlert } from './mapping.ts';

/** Wrapper keys a Logic App, Power Automate flow or script may put its alerts under. */
const WEBHOOK_WRAPPERS = ['value', 'alerts', 'records'];

/**
 * A Microsoft Defender instance: polls Graph alerts_v2 (or the legacy Defender for Endpoint
 * alerts API) on the scheduler, and with a `webhook` block also maps alerts posted to it.
 * create() does no I/O.
 */
export function createDefenderConnector(ctx: InboundContext, config: DefenderConfig): InboundConnector {
  return createEdrConnector(ctx, {
    intake: createIntake(
      ctx,
      (record, owners, history) => mapDefenderAlert(record, config, owners, history),
      describeDefenderAlert,
      { deviceOwners: config.subjects.device_owners, priorCheckpoints: ['alerts_v2', 'mde_alerts'] },
    ),
    client: config.mode === 'webhook' ? undefined : new DefenderClient(ctx.http, config),
    webhook: config.webhook,
    wrapperKeys: WEBHOOK_WRAPPERS,
    task: 'alerts',
    everyMs: config.poll_interval,
    poller: (client) => ({
      checkpointName: config.mode === 'graph' ? 'alerts_v2' : 'mde_alerts',
      overlapMs: config.overlap,
      initialLookbackMs: config.initial_lookback,
      // Neither API sorts by update time, so the watermark moves once every page was read; each
      // page is committed with its window and the next link, so a poll stopped by a 429 (150
      // requests a minute on Graph) goes on at that page in the next one.
      sortedAscending: false,
      maxPagesPerRun: Number.POSITIVE_INFINITY,
      fetchPage: async (since, next, signal) => {
        const page = await client.alerts(since, next, signal);
        return { records: page.alerts, next: page.next };
      },
      version: alertVersion,
    }),
  });
}
