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
  // The poll drops every risc.account-disabled and stores caep.session-revoked as
  // risc.account-purged, a type manifest.emits does not list; map() is right all along.
  | 'drops-and-renames'
  // The poll reads every page first, then commits the last page's cursor with the first page's
  // events and saves the other pages' events without a cursor.
  | 'cursor-ahead'
  // The poll task is scheduled without timeoutMs.
  // The API client asks for a deadline of 2e9 ms (about 23 days).
  | 'huge-timeout'
  // The API token goes into reason_admin of the events the poll emits.
  | 'secret-in-event'
  // Without webhook_token the instance answers every webhook request 404.
  | 'webhook-off-404'
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
  const type = { session_revoked: 'caep.session-revoked', user_suspended: 'risc.account-disabled' }[
    alert.kind
  ];
  if (type === undefined) return { events: [], ignored: `alert kind ${alert.kind} is not a security signal` };
  const event: EventDraft = {
    type,
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
  const takesWebhooks =
    has('webhook') ||
    has('unauthenticated-webhook') ||
    has('webhook-acks-before-emit') ||
    has('webhook-off-404');
  return defineConnector({
    manifest: {
      id: 'specimen-poller',
      kind: 'inbound',
      version: '1.0.0',
      stability: 'beta',
      displayName: 'Specimen poller',
      description: 'Polls an alerts API; used to prove the conformance kit catches faults.',
      emits: ['caep.session-revoked', 'risc.account-disabled'],
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
        // The mistake of huge-timeout: a request that may hang for weeks.
        ...(has('huge-timeout') ? { timeoutMs: 2e9 } : {}),
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

      /** What the poll stores of a page's events (the mistakes of drops-and-renames and secret-in-event). */
      const stored = (events: EventDraft[]): EventDraft[] => {
        if (has('drops-and-renames')) {
          return events
            .filter((e) => e.type !== 'risc.account-disabled')
            .map((e) => (e.type === 'caep.session-revoked' ? { ...e, type: 'risc.account-purged' } : e));
        }
        if (has('secret-in-event')) {
          const reason = { en: `revoked through token ${config.api_token.reveal()}` };
          return events.map((e) => ({ ...e, claims: { ...e.claims, reason_admin: reason } }));
        }
        return events;
      };

      /** The mistake of cursor-ahead: every page read first, the last cursor saved with the first page. */
      const pollAllThenSave = async (signal: AbortSignal) => {
        const after = ((await ctx.checkpoints.get()) as { after?: string } | undefined)?.after;
        const pages: Array<{ events: EventDraft[]; last: string }> = [];
        for (let cursor = after; ;) {
          const res = await client.get('/v1/alerts', {
            params: { after: cursor, limit: config.page_size },
            signal,
          });
          const page = pageSchema.parse(res.data);
          if (page.alerts.length === 0) break;
          cursor = page.alerts.at(-1)!.id;
          pages.push({ events: page.alerts.flatMap(mapOne), last: cursor });
          read.inc(undefined, page.alerts.length);
          if (!page.has_more) break;
        }
        const [first, ...rest] = pages;
        if (!first) return;
        await ctx.emit(first.events, { checkpoint: { value: { after: pages.at(-1)!.last } } });
        for (const page of rest) await ctx.emit(page.events);
      };

      const pollPages = async (signal: AbortSignal) => {
        if (has('cursor-ahead')) return pollAllThenSave(signal);
        let after = ((await ctx.checkpoints.get()) as { after?: string } | undefined)?.after;
        for (;;) {
          const res = await client.get('/v1/alerts', {
            params: { after, limit: config.page_size },
            ...(has('ignores-signal') ? {} : { signal }),
          });
          const page = pageSchema.parse(res.data);
          if (page.alerts.length === 0) return;
          const events = stored(page.alerts.flatMap(mapOne));
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
        // The mistake of webhook-off-404: an instance that takes no webhooks is never checked.
        if (has('webhook-off-404') && config.webhook_token === undefined) return { status: 404 };
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
          const every = { everyMs: config.poll_interval };
          const options = { ...every, timeoutMs: config.poll_interval };
          running = { task: ctx.scheduler.schedule('poll', options, poll) };
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
