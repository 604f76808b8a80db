/**
 * The front half of the HR webhooks (bamboohr, hibob): checking the sender's HMAC signature, and
 * the answers every delivery can get. Refusals are counted by outcome in
 * `<prefix>_webhooks_total`. A failure the sender should retry (the HR API throttling or down,
 * a full outbox) is rethrown, so the server answers 503 with Retry-After; one the bridge must
 * have put right first is answered 500.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import {
  PermanentError,
  type InboundContext,
  type InboundResponse,
  type Secret,
} from '../../core/plugin-api/index.ts';

export type SignatureAlgorithm = 'sha256' | 'sha512';

const HEX_LENGTH: Record<SignatureAlgorithm, number> = { sha256: 64, sha512: 128 };

/** The configured signing keys, current first; the previous one keeps working during a rotation. */
export function signingKeys(...secrets: Array<Secret | undefined>): Buffer[] {
  return secrets.filter((s) => s !== undefined).map((s) => Buffer.from(s.reveal(), 'utf8'));
}

/**
 * A signature header as bytes: hex when it has the length of one of `algorithms`' digests,
 * otherwise base64, after an optional `<algorithm>=` prefix.
 */
function decodeSignature(value: string, algorithms: readonly SignatureAlgorithm[]): Buffer {
  const v = value.replace(new RegExp(`^(?:${algorithms.join('|')})=`, 'i'), '');
  const hex = /^[0-9a-f]+$/i.test(v) && algorithms.some((a) => v.length === HEX_LENGTH[a]);
  return Buffer.from(v, hex ? 'hex' : 'base64');
}

function digest(value: Buffer): Buffer {
  return createHash('sha256').update(value).digest();
}

/**
 * Whether `signature` is the HMAC (`algorithm`) of `parts` under one of `keys`. Every key is
 * tried and digests of equal length are compared, so the time taken tells nothing.
 */
export function signatureMatches(
  signature: string,
  keys: readonly Buffer[],
  algorithm: SignatureAlgorithm,
  parts: ReadonlyArray<Buffer | string>,
  accepted: readonly SignatureAlgorithm[] = [algorithm],
): boolean {
  const presented = digest(decodeSignature(signature, accepted));
  let ok = false;
  for (const key of keys) {
    const hmac = createHmac(algorithm, key);
    for (const part of parts) hmac.update(part);
    ok = timingSafeEqual(presented, digest(hmac.digest())) || ok;
  }
  return ok;
}

/** The answer while the instance is stopping: the sender retries. */
export function unavailable(): InboundResponse {
  return { status: 503, headers: { 'retry-after': '5' }, body: { error: 'unavailable' } };
}

export interface HrWebhookReplies {
  /** Answers `body` with `status`, counted under `outcome`. */
  reply(status: number, outcome: string, body: Record<string, unknown>): InboundResponse;
  /** Refuses the delivery with `error` and `message`, counted under `outcome`. */
  refuse(status: number, outcome: string, error: string, message: string): InboundResponse;
  /**
   * A failed read of the employee from the HR API. A permanent one (refused credentials, a bad
   * request) is answered 502 and shown in the instance status; any other is rethrown.
   */
  lookupFailed(err: unknown, source: string): InboundResponse;
  /**
   * Commits the delivery with `apply` (which returns the number of events) and answers 200. A
   * permanent failure there is the bridge's, not the sender's (its stored state is unreadable,
   * or the catalog refused what the mapping made): answered 500 so the sender delivers again
   * once an operator has put it right, and shown in the instance status. A 4xx would make the
   * sender drop a leaver for good. An answer `apply` returns instead (made with refuse or
   * lookupFailed: the employee was read inside it, and could not be) is given as it is.
   */
  accept(received: number, apply: () => Promise<number | InboundResponse>): Promise<InboundResponse>;
}

export function hrWebhookReplies<S>(ctx: InboundContext<S>, metricPrefix: string): HrWebhookReplies {
  const webhooks = ctx.metrics.counter(`${metricPrefix}_webhooks_total`, 'Webhook requests by outcome', [
    'outcome',
  ]);
  const reply = (status: number, outcome: string, body: Record<string, unknown>): InboundResponse => {
    webhooks.inc({ outcome });
    return { status, body };
  };
  const refuse = (status: number, outcome: string, error: string, message: string) =>
    reply(status, outcome, { error, message });
  return {
    reply,
    refuse,
    lookupFailed(err, source) {
      if (err instanceof PermanentError) {
        ctx.status.set(err.authFailure ? 'permanent_error' : 'recoverable_error', err.message);
        return refuse(
          502,
          'upstream_error',
          'upstream_error',
          `could not read the employee from ${source}: ${err.message}`,
        );
      }
      webhooks.inc({ outcome: 'retry' });
      throw err;
    },
    async accept(received, apply) {
      try {
        const events = await apply();
        if (typeof events !== 'number') return events;
        webhooks.inc({ outcome: 'accepted' });
        ctx.status.success();
        return { status: 200, body: { received, events } };
      } catch (err) {
        if (err instanceof PermanentError) {
          ctx.status.set('permanent_error', err.message);
          ctx.logger.error({ code: err.code, problem: err.message }, 'could not commit a webhook delivery');
          return refuse(500, 'failed', 'internal_error', err.message);
        }
        webhooks.inc({ outcome: 'retry' });
        throw err;
      }
    },
  };
}
