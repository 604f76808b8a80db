/**
 * Webhook mode of the EDR connectors: the vendor (a Falcon Fusion workflow, a Defender or
 * SentinelOne notification, a SOAR playbook) posts records to `POST /ingest/<instance-id>` with
 * a shared secret. The records go through the same mapping as polled ones. The answer is 202
 * only once the events are durable; a malformed record refuses the whole request with 400 and
 * the problems, so nothing is half-accepted.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type {
  InboundContext,
  InboundRequest,
  InboundResponse,
  Secret,
  z,
} from '../../core/plugin-api/index.ts';
import type { webhookSchema } from './edr-config.ts';
import type { Intake } from './edr-intake.ts';
import { isRecord } from './edr-mapping.ts';

export interface WebhookOptions {
  secret: Secret;
  secretHeader?: string | undefined;
  maxRecords: number;
  /** Keys of wrapper objects whose array holds the records (e.g. `resources`, `value`, `data`). */
  wrapperKeys: readonly string[];
  /**
   * Whether an accepted request reports the instance healthy (ctx.status.success). Only when the
   * webhook is the instance's only source: a poll or a datafeed reports the instance's state, and
   * a request accepted meanwhile must not clear the error it reported (refused credentials).
   */
  reportsStatus: boolean;
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

type AuthOutcome = 'ok' | 'missing' | 'refused';

function authenticate(req: InboundRequest, expected: Buffer, secretHeader: string | undefined): AuthOutcome {
  const presented: string[] = [];
  if (secretHeader) {
    const value = req.headers[secretHeader.toLowerCase()];
    if (typeof value === 'string' && value.length > 0) presented.push(value.trim());
  }
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(req.headers['authorization'] ?? '');
  if (bearer) presented.push(bearer[1] as string);
  if (presented.length === 0) return 'missing';
  let ok = false;
  for (const value of presented) ok = timingSafeEqual(digest(value), expected) || ok;
  return ok ? 'ok' : 'refused';
}

/** The records of a request body: an array, a wrapper object holding one, or a single record. */
export function splitRecords(body: unknown, wrapperKeys: readonly string[]): unknown[] {
  if (Array.isArray(body)) return body;
  if (isRecord(body)) {
    for (const key of wrapperKeys) {
      const inner = body[key];
      if (Array.isArray(inner)) return inner;
    }
  }
  return [body];
}

export function createWebhookHandler(
  ctx: InboundContext,
  options: WebhookOptions,
  intake: Intake,
): (req: InboundRequest) => Promise<InboundResponse> {
  const expected = digest(options.secret.reveal());
  const requests = ctx.metrics.counter('edr_webhook_requests_total', 'Webhook requests by outcome', [
    'outcome',
  ]);
  return async (req) => {
    const auth = authenticate(req, expected, options.secretHeader);
    if (auth !== 'ok') {
      requests.inc({ outcome: auth === 'missing' ? 'unauthenticated' : 'forbidden' });
      const how = options.secretHeader
        ? `"Authorization: Bearer <secret>" or the ${options.secretHeader} header`
        : '"Authorization: Bearer <secret>"';
      return auth === 'missing'
        ? {
            status: 401,
            headers: { 'www-authenticate': 'Bearer realm="ssf-bridge"' },
            body: { error: 'unauthorized', message: `send the shared secret as ${how}` },
          }
        : {
            status: 403,
            body: { error: 'forbidden', message: 'the shared secret is not valid for this instance' },
          };
    }
    if (req.body === undefined || req.body === null) {
      requests.inc({ outcome: 'invalid' });
      return {
        status: 400,
        body: {
          error: 'invalid_request',
          message: 'a JSON body is required (Content-Type: application/json)',
        },
      };
    }
    const records = splitRecords(req.body, options.wrapperKeys);
    if (records.length === 0 || records.length > options.maxRecords) {
      requests.inc({ outcome: 'invalid' });
      const message =
        records.length === 0
          ? 'the body holds no records'
          : `${records.length} records in one request; the limit is ${options.maxRecords}`;
      return { status: 400, body: { error: 'invalid_request', message } };
    }
    // Unreadable device records reject (retryable): the sender gets 503 and sends again.
    const result = await intake.map(records);
    if (result.rejected.length > 0) {
      requests.inc({ outcome: 'invalid' });
      return {
        status: 400,
        body: {
          error: 'invalid_request',
          message: 'malformed records; nothing was accepted',
          problems: result.rejected.map((r) => ({ index: r.index, message: r.message })),
        },
      };
    }
    // A RetryableError (outbox full) propagates: the server answers 503 with Retry-After.
    // The events of raises are handed over with the memory naming them (see RaisedMemory).
    const emitted = await intake.emitAll(result.records);
    requests.inc({ outcome: 'accepted' });
    if (options.reportsStatus) ctx.status.success();
    return {
      status: 202,
      body: {
        records: records.length,
        events: emitted.accepted.length,
        duplicates: emitted.duplicates,
        ignored: result.ignored,
      },
    };
  };
}

/** The answer of an instance without a `webhook` block. */
export function webhookOff(): InboundResponse {
  return {
    status: 404,
    body: {
      error: 'not_found',
      message: 'this instance does not accept webhooks; configure webhook.secret to enable them',
    },
  };
}

/**
 * `handleWebhook` of an EDR instance: with a `webhook` block, records posted to it go through
 * `intake`; without one, every request gets webhookOff(). `soleSource`: the instance neither
 * polls nor reads a datafeed (mode `webhook`), so the webhook reports its status.
 */
export function webhookOf(
  ctx: InboundContext,
  webhook: z.output<typeof webhookSchema> | undefined,
  wrapperKeys: readonly string[],
  intake: Intake,
  soleSource: boolean,
): (req: InboundRequest) => Promise<InboundResponse> {
  if (!webhook) return async () => webhookOff();
  return createWebhookHandler(
    ctx,
    {
      secret: webhook.secret,
      secretHeader: webhook.secret_header,
      maxRecords: webhook.max_records_per_request,
      wrapperKeys,
      reportsStatus: soleSource,
    },
    intake,
  );
}
