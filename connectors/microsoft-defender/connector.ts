import {
  isBridgeError,
  type CheckResult,
  type InboundConnector,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import { createIntake } from '../_shared/edr-intake.ts';
import { schedulePolling, WatermarkPoller } from '../_shared/edr-poller.ts';
import { createWebhookHandler, webhookOff } from '../_shared/edr-webhook.ts';
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
  const intake = createIntake(ctx, (record) => mapDefenderAlert(record, config), describeDefenderAlert);
  const client = config.mode === 'webhook' ? undefined : new DefenderClient(ctx.http, config);
  let polling: { stop(deadlineMs: number): Promise<void> } | undefined;
  let stopped = false;

  const webhook = config.webhook
    ? createWebhookHandler(
        ctx,
        {
          secret: config.webhook.secret,
          secretHeader: config.webhook.secret_header,
          maxRecords: config.webhook.max_records_per_request,
          wrapperKeys: WEBHOOK_WRAPPERS,
        },
        intake,
      )
    : undefined;

  return {
    async check(signal): Promise<CheckResult> {
      if (!client) return { ok: true, message: 'webhook mode: nothing to reach' };
      try {
        await client.probe(signal);
        return { ok: true };
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        return { ok: false, message, retryable: isBridgeError(err) ? err.errorClass === 'retryable' : true };
      }
    },

    async start() {
      if (stopped || polling || !client) return;
      const poller = new WatermarkPoller({
        ctx,
        checkpointName: config.mode === 'graph' ? 'alerts_v2' : 'mde_alerts',
        overlapMs: config.overlap,
        initialLookbackMs: config.initial_lookback,
        // Neither API sorts by update time, so the watermark moves once every page was read.
        sortedAscending: false,
        maxPagesPerRun: Number.POSITIVE_INFINITY,
        fetchPage: async (since, next, signal) => {
          const page = await client.alerts(since, next, signal);
          return { records: page.alerts, next: page.next };
        },
        version: alertVersion,
        intake,
      });
      polling = schedulePolling(ctx, 'alerts', config.poll_interval, (signal) => poller.run(signal));
    },

    async stop(deadlineMs) {
      stopped = true;
      const p = polling;
      polling = undefined;
      await p?.stop(deadlineMs);
    },

    handleWebhook: async (req) => (webhook ? webhook(req) : webhookOff()),
  };
}
