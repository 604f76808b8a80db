/**
 * The instance wiring of the polling EDR connectors (microsoft-defender, sentinelone; the check
 * and webhook of crowdstrike-falcon): `check` probes the vendor API, `start` schedules a
 * watermark poller over it, and a `webhook` block also maps what the vendor posts. Without a
 * client (mode `webhook`) nothing is polled. create() stays free of I/O: the client connects on
 * first use.
 */
import {
  isBridgeError,
  type CheckResult,
  type InboundConnector,
  type InboundContext,
  type z,
} from '../../core/plugin-api/index.ts';
import type { webhookSchema } from './edr-config.ts';
import type { Intake } from './edr-intake.ts';
import { schedulePolling, WatermarkPoller, type WatermarkPollerOptions } from './edr-poller.ts';
import { webhookOf } from './edr-webhook.ts';

export interface ProbedClient {
  probe(signal: AbortSignal): Promise<void>;
}

/** `check` of an EDR instance: a small API read, or nothing to reach in webhook mode. */
export async function checkClient(
  client: ProbedClient | undefined,
  signal: AbortSignal,
): Promise<CheckResult> {
  if (!client) return { ok: true, message: 'webhook mode: nothing to reach' };
  try {
    await client.probe(signal);
    return { ok: true };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return { ok: false, message, retryable: isBridgeError(err) ? err.errorClass === 'retryable' : true };
  }
}

export interface EdrConnectorOptions<C extends ProbedClient> {
  intake: Intake;
  /** The vendor API; undefined when the instance only takes webhooks. */
  client: C | undefined;
  webhook: z.output<typeof webhookSchema> | undefined;
  /** Keys of wrapper objects a sender may put its records under. */
  wrapperKeys: readonly string[];
  /** Scheduler task name and interval of the poll. */
  task: string;
  everyMs: number;
  /** The poller over `client` (ctx and intake are added). */
  poller(client: C): Omit<WatermarkPollerOptions, 'ctx' | 'intake'>;
}

export function createEdrConnector<C extends ProbedClient>(
  ctx: InboundContext,
  options: EdrConnectorOptions<C>,
): InboundConnector {
  const { intake, client } = options;
  let polling: { stop(deadlineMs: number): Promise<void> } | undefined;
  let stopped = false;
  // With a client the poll reports the instance's status; the webhook only in webhook mode.
  const webhook = webhookOf(ctx, options.webhook, options.wrapperKeys, intake, client === undefined);

  return {
    check: (signal) => checkClient(client, signal),

    async start() {
      if (stopped || polling || !client) return;
      const poller = new WatermarkPoller({
        ctx,
        ...options.poller(client),
        intake,
        soleSource: options.webhook === undefined,
      });
      polling = schedulePolling(ctx, options.task, options.everyMs, (signal) => poller.run(signal));
    },

    async stop(deadlineMs) {
      stopped = true;
      const p = polling;
      polling = undefined;
      await p?.stop(deadlineMs);
    },

    handleWebhook: webhook,
  };
}
