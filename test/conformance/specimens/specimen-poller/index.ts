import { timingSafeEqual } from 'node:crypto';
import {
  defineConnector,
  duration,
  PermanentError,
  secret,
  z,
  type EventDraft,
  type InboundRequest,
  type InboundResponse,
  type MappingResult,
  type ScheduledTask,
} from '../../../../core/plugin-api/index.ts';

/** Faults the kit must catch, each one a realistic mistake in a polling connector. */
export type PollerFault =
  | 'io-in-create'
  | 'crash-on-stop-without-start'
  | 'checkpoint-before-persist'
  | 'throws-on-malformed'
  | 'ignores-signal'
  | 'secret-in-poll-error'
  // Variants that also take webhooks: one checks the sender's token, one takes any request, one
  // checks the token but answers before its events are persisted.
  | 'webhook'
  | 'unauthenticated-webhook'
  | 'webhook-acks-before-emit';

const alertSchema = z.looseObject({
  id: z.string().min(1),
  kind: z.string().min(1),
  email: z.email(),
  at: z.iso.datetime(),
});

const pageSchema = z.looseObject({
  alerts: z.array(z.looseObject({ id: z.string().min(1) })),
  has_more: z.boolean(),
});

export function mapAlert(record: unknown): MappingResult {
  const parsed = alertSchema.safeParse(record);
  if (!parsed.success) throw new PermanentError(`malformed alert: ${z.prettifyError(parsed.error)}`);
  const alert = parsed.data;
  if (alert.kind !== 'session_revoked')
    return { events: [], ignored: `alert kind ${alert.kind} is not a security signal` };
  const event: EventDraft = {
    type: 'caep.session-revoked',
    subject: { format: 'email', email: alert.email },
    sourceRecordId: alert.id,
    occurredAt: alert.at,
  };
  return { events: [event] };
}

const configSchema = z.strictObject({
  base_url: z.url().meta({ description: 'Base URL of the alerts API.' }),
  api_token: secret('Bearer token for the alerts API.'),
  page_size: z.number().int().min(1).default(2).meta({ description: 'Alerts per page.' }),
  poll_interval: duration('Time between polls.').prefault('1m'),
  webhook_token: secret('Token the vendor sends as a bearer token with each webhook.').optional(),
});

/** A small polling connector; `faults` seeds the mistakes the conformance kit must report. */
export function specimenPoller(...faults: PollerFault[]) {
  const has = (fault: PollerFault) => faults.includes(fault);
  const takesWebhooks = has('webhook') || has('unauthenticated-webhook') || has('webhook-acks-before-emit');
  return defineConnector({
    manifest: {
      id: 'specimen-poller',
      kind: 'inbound',
      version: '1.0.0',
      stability: 'beta',
      displayName: 'Specimen poller',
      description: 'Polls an alerts API; used to prove the conformance kit catches faults.',
      emits: ['caep.session-revoked'],
      capabilities: takesWebhooks ? { poll: true, webhook: true } : { poll: true },
    },
    configSchema,
    stateSchema: z.strictObject({ after: z.string() }),
    examples: [
      {
        title: 'Token from the environment',
        config: { base_url: 'https://alerts.example', api_token: '${env:T}' },
      },
    ],
    map: (record) => mapAlert(record),
    create(ctx, config) {
      const client = ctx.http.create({
        baseURL: config.base_url,
        auth: { type: 'bearer', token: config.api_token },
      });
      const read = ctx.metrics.counter('alerts_read_total', 'Alerts read from the API');
      const malformed = ctx.metrics.counter('alerts_malformed_total', 'Alerts the mapping refused (skipped)');
      if (has('io-in-create')) void client.get('/v1/ping').catch(() => undefined);
      let running: { task: ScheduledTask } | undefined;

      /** Maps one alert; a malformed one is logged and skipped (unless the fault stops the poll on it). */
      const mapOne = (alert: { id: string }): EventDraft[] => {
        if (has('throws-on-malformed')) return mapAlert(alert).events;
        try {
          return mapAlert(alert).events;
        } catch (err) {
          malformed.inc();
          ctx.logger.warn({ alert: alert.id, err: (err as Error).message }, 'skipping a malformed alert');
          return [];
        }
      };

      const pollPages = async (signal: AbortSignal) => {
        let after = ((await ctx.checkpoints.get()) as { after?: string } | undefined)?.after;
        for (;;) {
          const res = await client.get('/v1/alerts', {
            params: { after, limit: config.page_size },
            ...(has('ignores-signal') ? {} : { signal }),
          });
          const page = pageSchema.parse(res.data);
          if (page.alerts.length === 0) return;
          const events = page.alerts.flatMap(mapOne);
          const last = page.alerts.at(-1)!.id;
          if (has('checkpoint-before-persist')) {
            await ctx.checkpoints.set({ after: last });
            await ctx.emit(events);
          } else {
            await ctx.emit(events, { checkpoint: { value: { after: last } } });
          }
          read.inc(undefined, page.alerts.length);
          if (!page.has_more) return;
          after = last;
        }
      };

      const poll = async (signal: AbortSignal) => {
        if (!has('secret-in-poll-error')) return pollPages(signal);
        try {
          await pollPages(signal);
        } catch (err) {
          // The mistake: the credential in the error the scheduler logs.
          throw new Error(
            `polling with token ${config.api_token.reveal()} failed: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        }
      };

      const handleWebhook = async (req: InboundRequest): Promise<InboundResponse> => {
        const expected = Buffer.from(`Bearer ${config.webhook_token?.reveal() ?? ''}`);
        const given = Buffer.from(req.headers.authorization ?? '');
        const authentic =
          config.webhook_token !== undefined &&
          given.length === expected.length &&
          timingSafeEqual(given, expected);
        // The mistake: the webhook takes whatever reaches it.
        if (!authentic && !has('unauthenticated-webhook')) return { status: 401 };
        read.inc();
        const { events } = mapAlert(req.body);
        if (has('webhook-acks-before-emit')) {
          // The mistake: the sender is answered at once and the events persisted after it, so a
          // failed persist (or a stop) loses events the sender was told were taken.
          void ctx.emit(events).catch((err: unknown) => {
            ctx.logger.warn({ err: (err as Error).message }, 'could not persist the webhook events');
          });
          return { status: 202 };
        }
        await ctx.emit(events);
        return { status: 202 };
      };

      return {
        ...(takesWebhooks ? { handleWebhook } : {}),
        async start() {
          running = { task: ctx.scheduler.schedule('poll', { everyMs: config.poll_interval }, poll) };
        },
        async stop() {
          if (has('crash-on-stop-without-start')) running!.task.stop();
          else running?.task.stop();
          running = undefined;
        },
      };
    },
  });
}
