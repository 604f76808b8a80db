import {
  isBridgeError,
  type CheckResult,
  type InboundConnector,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import { createIntake } from '../_shared/edr-intake.ts';
import { schedulePolling, WatermarkPoller } from '../_shared/edr-poller.ts';
import { createWebhookHandler, webhookOff } from '../_shared/edr-webhook.ts';
import { SentinelOneClient } from './client.ts';
import type { SentinelOneConfig } from './config.ts';
import { describeThreat, mapThreat, threatVersion } from './mapping.ts';

/** Wrapper keys a notification or script may put its threats under (`data` as the API does). */
const WEBHOOK_WRAPPERS = ['data', 'threats', 'records'];

/**
 * A SentinelOne instance: polls the threats API on the scheduler, and with a `webhook` block also
 * maps threats posted to it. create() does no I/O.
 */
export function createSentinelOneConnector(ctx: InboundContext, config: SentinelOneConfig): InboundConnector {
  const intake = createIntake(ctx, (record) => mapThreat(record, config), describeThreat);
  const client = config.mode === 'poll' ? new SentinelOneClient(ctx.http, config) : undefined;
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
        checkpointName: 'threats',
        overlapMs: config.overlap,
        initialLookbackMs: config.initial_lookback,
        sortedAscending: true,
        maxPagesPerRun: config.max_pages_per_run,
        fetchPage: async (since, cursor, signal) => {
          const page = await client.threats(since, cursor, signal);
          return { records: page.threats, next: page.cursor };
        },
        version: threatVersion,
        intake,
      });
      polling = schedulePolling(ctx, 'threats', config.poll_interval, (signal) => poller.run(signal));
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
