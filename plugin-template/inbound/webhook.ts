import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  PermanentError,
  type EventDraft,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
  type Secret,
} from '../../core/plugin-api/index.ts';

/** The header the vendor signs each webhook in: `sha256=<hex HMAC-SHA256 of the raw body>`. */
export const SIGNATURE_HEADER = 'x-vendor-signature';

/** The signature the vendor sends for `rawBody` (the fake API signs its requests with it too). */
export function sign(secret: string, rawBody: Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`;
}

/** Compared in constant time, over the body exactly as received. */
function signedWith(secret: Secret, req: InboundRequest): boolean {
  const given = Buffer.from(req.headers[SIGNATURE_HEADER] ?? '');
  const expected = Buffer.from(sign(secret.reveal(), req.rawBody));
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** The alerts of a body: one alert, or `{"alerts": [...]}` for a batch. */
function alertsOf(body: unknown): unknown[] {
  if (body === undefined || body === null) {
    throw new PermanentError('a JSON body is required (Content-Type: application/json)');
  }
  const batch = (body as { alerts?: unknown }).alerts;
  return Array.isArray(batch) ? batch : [body];
}

/**
 * The vendor posts alerts to `POST /ingest/<instance-id>` as they happen. Without a
 * `webhook_secret` the instance takes none (404). The request is authenticated before its body
 * is read, every alert is mapped before any is emitted (one malformed alert refuses the whole
 * request: PermanentError, answered 400, which the vendor does not retry), and the answer is
 * 202 only once ctx.emit() has made the events durable: a RetryableError from it (the outbox is
 * full) propagates, and the bridge answers 503 with Retry-After, so the vendor sends them again.
 */
export function createWebhookHandler(
  ctx: InboundContext<unknown>,
  secret: Secret | undefined,
  mapOne: (alert: unknown) => EventDraft[],
): (req: InboundRequest) => Promise<InboundResponse> {
  return async (req) => {
    if (secret === undefined) {
      return {
        status: 404,
        body: {
          error: 'not_found',
          message: 'this instance takes no webhooks; set webhook_secret to take them',
        },
      };
    }
    if (!signedWith(secret, req)) {
      return {
        status: 401,
        body: {
          error: 'invalid_signature',
          message: `sign the body with the shared secret in ${SIGNATURE_HEADER}`,
        },
      };
    }
    const events = alertsOf(req.body).flatMap(mapOne);
    const result = await ctx.emit(events);
    ctx.status.success();
    return { status: 202, body: { accepted: result.accepted.length, duplicates: result.duplicates } };
  };
}
