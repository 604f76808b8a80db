import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import { checkClient } from '../_shared/edr-connector.ts';
import { createIntake } from '../_shared/edr-intake.ts';
import { schedulePolling, WatermarkPoller } from '../_shared/edr-poller.ts';
import { webhookOf } from '../_shared/edr-webhook.ts';
import { FalconClient } from './client.ts';
import type { FalconConfig } from './config.ts';
import { alertVersion, describeFalconRecord, mapFalconRecord } from './mapping.ts';
import { checkpointName, FalconStream } from './stream.ts';

/**
 * How often the scheduler starts the stream task when it is not running, and checks while it
 * runs that this instance is still the leader.
 */
const STREAM_LEADER_CHECK_MS = 5_000;

/** Wrapper keys a Falcon Fusion workflow or script may put its records under. */
const WEBHOOK_WRAPPERS = ['resources', 'alerts', 'events', 'records'];

/**
 * A CrowdStrike Falcon instance. `alerts` polls the Alerts API on the scheduler; `stream` reads
 * every Event Streams partition in one long run of a scheduled task, on the leader only; with a
 * `webhook` block (in any mode, and alone in mode `webhook`) it also maps what a Falcon Fusion
 * workflow posts. create() does no I/O: clients are built here and connect on first use.
 */
export function createFalconConnector(ctx: InboundContext, config: FalconConfig): InboundConnector {
  const intake = createIntake(
    ctx,
    (record, owners, history) => mapFalconRecord(record, config, owners, history),
    describeFalconRecord,
    {
      deviceOwners: config.subjects.device_owners,
      // The poll's watermark, or the offset of the datafeed's first partition.
      priorCheckpoints: ['alerts', checkpointName('0')],
    },
  );
  const client = config.mode === 'webhook' ? undefined : new FalconClient(ctx.http, config);

  let polling: { stop(deadlineMs: number): Promise<void> } | undefined;
  let stopped = false;

  const connector: InboundConnector = {
    check: (signal) => checkClient(client, signal),

    async start() {
      if (stopped || polling || !client) return;
      if (config.mode === 'alerts') {
        const poller = new WatermarkPoller({
          ctx,
          checkpointName: 'alerts',
          overlapMs: config.alerts.overlap,
          initialLookbackMs: config.alerts.initial_lookback,
          sortedAscending: true,
          maxPagesPerRun: config.alerts.max_pages_per_run,
          fetchPage: async (since, after, signal) => {
            const page = await client.alerts(since, after, signal);
            return { records: page.alerts, next: page.after };
          },
          version: alertVersion,
          intake,
          soleSource: config.webhook === undefined,
        });
        polling = schedulePolling(ctx, 'alerts', config.alerts.poll_interval, (signal) => poller.run(signal));
        return;
      }
      // The datafeed is read through the scheduler, so that of several bridge instances sharing
      // one database only the leader reads it (one consumer per app_id, one writer of each
      // partition's offset). The run lasts until the instance stops or is no longer the leader;
      // the next leader's run resumes from the committed offsets.
      const stream = new FalconStream({ ctx, client, config, intake });
      polling = schedulePolling(ctx, 'stream', STREAM_LEADER_CHECK_MS, (signal) => stream.run(signal));
    },

    async stop(deadlineMs) {
      stopped = true;
      const p = polling;
      polling = undefined;
      await p?.stop(deadlineMs);
    },
  };

  // The poll or the datafeed reports the instance's status; the webhook only in mode webhook.
  connector.handleWebhook = webhookOf(ctx, config.webhook, WEBHOOK_WRAPPERS, intake, client === undefined);
  return connector;
}
