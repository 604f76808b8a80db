import {
  PermanentError,
  z,
  type CheckResult,
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import type { ExampleInboundConfig, ExampleInboundState } from './config.ts';
import { mapAlert } from './mapping.ts';
import { createWebhookHandler } from './webhook.ts';

/** A page of `GET /v1/alerts?after=<id>&limit=<n>`, oldest alert first. */
const pageSchema = z.looseObject({
  alerts: z.array(z.looseObject({ id: z.string().min(1) })),
  has_more: z.boolean(),
});

/**
 * Polls the vendor's alerts API. Each page's events are handed to the core together with the
 * cursor (the last alert id), so the cursor moves only once the events are durable.
 */
export function createExampleInbound(
  ctx: InboundContext<ExampleInboundState>,
  config: ExampleInboundConfig,
): InboundConnector {
  const api = ctx.http.create({
    baseURL: config.base_url,
    timeoutMs: config.request_timeout,
    auth: { type: 'bearer', token: config.api_token },
  });
  const read = ctx.metrics.counter('alerts_read_total', 'Alerts read from the vendor API');
  const ignored = ctx.metrics.counter('alerts_ignored_total', 'Alerts with no Shared Signals equivalent');
  const malformed = ctx.metrics.counter('alerts_malformed_total', 'Alerts the mapping refused (skipped)');
  let task: ScheduledTask | undefined;

  async function fetchPage(after: string | undefined, signal: AbortSignal) {
    const res = await api.get('/v1/alerts', { params: { after, limit: config.page_size }, signal });
    const page = pageSchema.safeParse(res.data);
    if (!page.success) {
      throw new PermanentError(`the alerts API answered an unexpected page: ${z.prettifyError(page.error)}`);
    }
    return page.data;
  }

  /** Maps one alert and counts it; a malformed one throws PermanentError. */
  function mapOne(alert: unknown): EventDraft[] {
    read.inc();
    const result = mapAlert(alert);
    if (result.ignored !== undefined) ignored.inc();
    return result.events;
  }

  /** Maps a page; a malformed alert is logged and skipped so it cannot block the ones after it. */
  function mapPage(alerts: ReadonlyArray<{ id: string }>): EventDraft[] {
    const events: EventDraft[] = [];
    for (const alert of alerts) {
      try {
        events.push(...mapOne(alert));
      } catch (err) {
        malformed.inc();
        ctx.logger.warn({ alert: alert.id, err: (err as Error).message }, 'skipping a malformed alert');
      }
    }
    return events;
  }

  async function poll(signal: AbortSignal): Promise<void> {
    let after = (await ctx.checkpoints.get())?.after;
    for (;;) {
      const page = await fetchPage(after, signal);
      const last = page.alerts.at(-1);
      if (!last) return;
      after = last.id;
      await ctx.emit(mapPage(page.alerts), { checkpoint: { value: { after } } });
      ctx.status.success();
      if (!page.has_more) return;
    }
  }

  return {
    // Optional: the vendor's webhooks, when webhook_secret is set (see webhook.ts). A connector
    // that only polls deletes this line, the import of createWebhookHandler and webhook.ts, and
    // what else uses it: see README.md (fake-api.ts, config.ts, capabilities.webhook in index.ts).
    handleWebhook: createWebhookHandler(ctx, config.webhook_secret, mapOne),
    async check(signal): Promise<CheckResult> {
      try {
        await api.get('/v1/alerts', { params: { limit: 1 }, signal });
        return { ok: true };
      } catch (err) {
        return { ok: false, message: (err as Error).message, retryable: !(err instanceof PermanentError) };
      }
    },
    async start() {
      task = ctx.scheduler.schedule(
        'poll-alerts',
        { everyMs: config.poll_interval, runOnStart: true, timeoutMs: config.poll_interval },
        poll,
      );
    },
    async stop() {
      task?.stop();
      task = undefined;
    },
  };
}
