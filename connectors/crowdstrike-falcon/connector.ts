import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import { checkClient } from '../_shared/edr-connector.ts';
import { createIntake } from '../_shared/edr-intake.ts';
import { schedulePolling, waitAtMost, WatermarkPoller } from '../_shared/edr-poller.ts';
import { webhookOf } from '../_shared/edr-webhook.ts';
import { FalconClient } from './client.ts';
import type { FalconConfig } from './config.ts';
import { alertVersion, describeFalconRecord, mapFalconRecord } from './mapping.ts';
import { FalconStream } from './stream.ts';

/** Wrapper keys a Falcon Fusion workflow or script may put its records under. */
const WEBHOOK_WRAPPERS = ['resources', 'alerts', 'events', 'records'];

/**
 * A CrowdStrike Falcon instance. `alerts` polls the Alerts API on the scheduler; `stream` reads
 * every Event Streams partition in the background; with a `webhook` block (in any mode, and
 * alone in mode `webhook`) it also maps what a Falcon Fusion workflow posts. create() does no
 * I/O: clients are built here and connect on first use.
 */
export function createFalconConnector(ctx: InboundContext, config: FalconConfig): InboundConnector {
  const intake = createIntake(
    ctx,
    (record, owners) => mapFalconRecord(record, config, owners),
    describeFalconRecord,
    config.subjects.device_owners,
  );
  const client = config.mode === 'webhook' ? undefined : new FalconClient(ctx.http, config);

  let polling: { stop(deadlineMs: number): Promise<void> } | undefined;
  let streaming: { abort: AbortController; done: Promise<void> } | undefined;
  let stopped = false;

  const connector: InboundConnector = {
    check: (signal) => checkClient(client, signal),

    async start() {
      if (stopped || polling || streaming || !client) return;
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
        });
        polling = schedulePolling(ctx, 'alerts', config.alerts.poll_interval, (signal) => poller.run(signal));
        return;
      }
      const abort = new AbortController();
      const onStop = () => abort.abort();
      ctx.signal.addEventListener('abort', onStop, { once: true });
      const stream = new FalconStream({ ctx, client, config, intake });
      const done = stream.run(abort.signal).finally(() => ctx.signal.removeEventListener('abort', onStop));
      streaming = { abort, done };
    },

    async stop(deadlineMs) {
      stopped = true;
      const p = polling;
      const s = streaming;
      polling = undefined;
      streaming = undefined;
      await p?.stop(deadlineMs);
      if (s) {
        s.abort.abort();
        await waitAtMost(s.done, deadlineMs);
      }
    },
  };

  connector.handleWebhook = webhookOf(ctx, config.webhook, WEBHOOK_WRAPPERS, intake);
  return connector;
}
