import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
} from '../../core/plugin-api/index.ts';
import type { GenericWebhookConfig } from './config.ts';
import { compiledRules, recordsOf } from './mapping.ts';

type AuthOutcome = 'ok' | 'missing' | 'refused' | 'stale';

/**
 * `POST /ingest/<instance-id>` for any JSON: authenticates the sender, maps every record through
 * the rules, and answers 202 only once the events are durable. A request with a record the rules
 * fail on is refused whole (400), so the sender can fix it and resend without duplicates; one the
 * rules' helper thread failed on through no fault of its records is answered 503 to be resent.
 */
export function createGenericWebhook(ctx: InboundContext, config: GenericWebhookConfig): InboundConnector {
  const authenticate = authenticator(config.auth, () => ctx.clock.now().getTime());
  const rules = compiledRules(config);
  const requests = ctx.metrics.counter('generic_webhook_requests_total', 'Ingest requests by outcome', [
    'outcome',
  ]);
  const records = ctx.metrics.counter(
    'generic_webhook_records_total',
    'Records received, by whether a rule mapped them or none matched',
    ['outcome'],
  );

  return {
    async start() {},
    async stop() {},
    async handleWebhook(req: InboundRequest): Promise<InboundResponse> {
      const auth = authenticate(req);
      if (auth !== 'ok') {
        requests.inc({ outcome: auth === 'missing' ? 'unauthenticated' : 'forbidden' });
        return auth === 'missing'
          ? {
              status: 401,
              ...(config.auth.type === 'bearer'
                ? { headers: { 'www-authenticate': 'Bearer realm="ssf-bridge"' } }
                : {}),
              body: { error: 'unauthorized', message: missingMessage(config) },
            }
          : {
              status: 403,
              body: {
                error: 'forbidden',
                message:
                  auth === 'stale'
                    ? staleMessage(config.auth)
                    : 'the credentials are not valid for this instance',
              },
            };
      }
      const list = recordsOf(req.body, config);
      if (!list.ok) {
        requests.inc({ outcome: 'invalid' });
        return {
          status: 400,
          body: { error: 'invalid_request', problems: [{ record: null, message: list.message }] },
        };
      }
      // On a helper thread, within one time budget for the whole request: the event loop keeps
      // serving while the rules run, and the first record that runs out of time ends the mapping.
      let outcomes;
      try {
        outcomes = await rules.mapRecords(list.records);
      } catch (err) {
        // The helper thread failed, not a record (a RetryableError): the server answers 503 with
        // Retry-After, so the sender sends the same request again rather than dropping it.
        requests.inc({ outcome: 'error' });
        ctx.logger.warn(
          { error: err instanceof Error ? err.message : String(err) },
          'could not map a request: the mapping rules could not be evaluated',
        );
        throw err;
      }
      const events: EventDraft[] = [];
      const problems: Array<{ record: number; message: string }> = [];
      let ignored = 0;
      outcomes.forEach((outcome, index) => {
        if (!outcome.ok) {
          problems.push({ record: index, message: outcome.error.message });
          return;
        }
        if (outcome.result.ignored !== undefined) ignored += 1;
        events.push(...outcome.result.events);
      });
      if (problems.length > 0) {
        requests.inc({ outcome: 'invalid' });
        ctx.logger.warn(
          { problems: problems.length },
          'refused a request: mapping rules failed on its records',
        );
        return { status: 400, body: { error: 'invalid_request', problems } };
      }
      try {
        const result = events.length > 0 ? await ctx.emit(events) : { accepted: [], duplicates: 0 };
        requests.inc({ outcome: 'accepted' });
        records.inc({ outcome: 'mapped' }, list.records.length - ignored);
        records.inc({ outcome: 'ignored' }, ignored);
        ctx.status.success();
        return { status: 202, body: { accepted: result.accepted, duplicates: result.duplicates, ignored } };
      } catch (err) {
        requests.inc({ outcome: 'error' });
        throw err; // the server maps RetryableError (outbox full) to 503 + Retry-After
      }
    },
  };
}

function missingMessage(config: GenericWebhookConfig): string {
  if (config.auth.type === 'bearer') return 'send the ingest token as "Authorization: Bearer <token>"';
  if (config.auth.timestamp_header === undefined)
    return `sign the body and send the signature in the ${config.auth.header} header`;
  return `send the time of sending (seconds since the epoch) in the ${config.auth.timestamp_header} header, sign "<timestamp>.<body>" and send the signature in the ${config.auth.header} header`;
}

function staleMessage(auth: GenericWebhookConfig['auth']): string {
  const header = auth.type === 'hmac' ? auth.timestamp_header : undefined;
  const seconds = auth.type === 'hmac' ? Math.round(auth.timestamp_tolerance / 1000) : 0;
  return `the ${header ?? 'timestamp'} time is more than ${seconds} s from the bridge's clock: a replayed or delayed request, or clocks that disagree`;
}

function digest(value: string | Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Compares digests in constant time, so neither content nor length leaks through timing. */
function anyEqual(presented: string | Buffer, accepted: Buffer[]): boolean {
  const d = digest(presented);
  let ok = false;
  for (const a of accepted) ok = timingSafeEqual(d, a) || ok;
  return ok;
}

function authenticator(
  auth: GenericWebhookConfig['auth'],
  nowMs: () => number,
): (req: InboundRequest) => AuthOutcome {
  if (auth.type === 'bearer') {
    const tokens = [auth.token, auth.previous_token]
      .filter((t) => t !== undefined)
      .map((t) => digest(t.reveal()));
    return (req) => {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
      if (!match) return 'missing';
      return anyEqual(match[1] as string, tokens) ? 'ok' : 'refused';
    };
  }
  const header = auth.header.toLowerCase();
  const timestampHeader = auth.timestamp_header?.toLowerCase();
  return (req) => {
    const value = req.headers[header];
    if (!value) return 'missing';
    const timestamp = timestampHeader === undefined ? undefined : req.headers[timestampHeader]?.trim();
    if (timestampHeader !== undefined && !timestamp) return 'missing';
    const presented = value.trim().startsWith(auth.prefix)
      ? value.trim().slice(auth.prefix.length)
      : value.trim();
    const hmac = createHmac(auth.algorithm, auth.key.reveal());
    if (timestamp !== undefined) hmac.update(`${timestamp}.`);
    const expected = hmac.update(req.rawBody).digest(auth.encoding);
    // hex is case-insensitive; base64 is not.
    const normalized = auth.encoding === 'hex' ? presented.toLowerCase() : presented;
    if (!anyEqual(normalized, [digest(expected)])) return 'refused';
    // Checked once the signature holds, so only the sender learns how the clocks compare.
    if (timestamp !== undefined) {
      const seconds = /^\d{1,12}$/.test(timestamp) ? Number(timestamp) : NaN;
      if (!(Math.abs(nowMs() - seconds * 1000) <= auth.timestamp_tolerance)) return 'stale';
    }
    return 'ok';
  };
}
