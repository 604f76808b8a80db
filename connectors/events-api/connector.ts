import { timingSafeEqual, createHash } from 'node:crypto';
import {
  isBridgeError,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InboundResponse,
} from '../../core/plugin-api/index.ts';
import type { EventsApiConfig } from './config.ts';
import { mapPayload, sentPaths } from './mapping.ts';

/**
 * `POST /ingest/<instance-id>`: authenticates the sender, validates every event, and answers
 * 202 only after the core has made the events durable.
 */
export function createEventsApi(ctx: InboundContext, config: EventsApiConfig): InboundConnector {
  const tokens = [config.token, config.previous_token]
    .filter((t) => t !== undefined)
    .map((t) => digest(t.reveal()));
  const requests = ctx.metrics.counter('events_api_requests_total', 'Ingest requests by outcome', [
    'outcome',
  ]);

  return {
    async start() {},
    async stop() {},
    async handleWebhook(req: InboundRequest): Promise<InboundResponse> {
      const auth = authenticate(req.headers.authorization, tokens);
      if (auth !== 'ok') {
        requests.inc({ outcome: auth === 'missing' ? 'unauthenticated' : 'forbidden' });
        return auth === 'missing'
          ? {
              status: 401,
              headers: { 'www-authenticate': 'Bearer realm="ssf-bridge"' },
              body: {
                error: 'unauthorized',
                message: 'send the ingest token as "Authorization: Bearer <token>"',
              },
            }
          : {
              status: 403,
              body: { error: 'forbidden', message: 'the ingest token is not valid for this instance' },
            };
      }
      const mapped = mapPayload(req.body, config.max_events_per_request);
      if (!mapped.ok) {
        requests.inc({ outcome: 'invalid' });
        return { status: 400, body: { error: 'invalid_request', problems: mapped.problems } };
      }
      try {
        const result = await ctx.emit(mapped.events);
        requests.inc({ outcome: 'accepted' });
        ctx.status.success();
        return { status: 202, body: { accepted: result.accepted, duplicates: result.duplicates } };
      } catch (err) {
        // The core refuses events the catalog does not know, with every problem listed.
        const problems =
          isBridgeError(err) && err.errorClass === 'permanent' ? err.detail?.problems : undefined;
        if (Array.isArray(problems)) {
          requests.inc({ outcome: 'invalid' });
          return {
            status: 400,
            body: { error: 'invalid_request', problems: sentPaths(problems, mapped.events, mapped.pathOf) },
          };
        }
        requests.inc({ outcome: 'error' });
        throw err; // the server maps RetryableError (outbox full) to 503 + Retry-After
      }
    },
  };
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value).digest();
}

/** Constant-time comparison over digests, so neither content nor length leaks through timing. */
function authenticate(header: string | undefined, tokens: Buffer[]): 'ok' | 'missing' | 'refused' {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match) return 'missing';
  const presented = digest(match[1] as string);
  let ok = false;
  for (const token of tokens) ok = timingSafeEqual(presented, token) || ok;
  return ok ? 'ok' : 'refused';
}
