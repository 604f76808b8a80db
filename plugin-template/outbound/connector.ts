import {
  PermanentError,
  type CheckResult,
  type ConnectorContext,
  type OutboundConnector,
} from '../../core/plugin-api/index.ts';
import type { ExampleOutboundConfig } from './config.ts';
import { toVendorAction } from './mapping.ts';

/**
 * Acts on SETs through the vendor's API: one `POST /v1/actions` per SET. Errors are those of
 * ctx.http, already classified (retryable, permanent, refused credentials), so the core retries
 * or dead-letters the delivery as they say.
 */
export function createExampleOutbound(
  ctx: ConnectorContext,
  config: ExampleOutboundConfig,
): OutboundConnector {
  const api = ctx.http.create({
    baseURL: config.base_url,
    timeoutMs: config.request_timeout,
    auth: { type: 'bearer', token: config.api_token },
  });
  const sent = ctx.metrics.counter('actions_sent_total', 'Actions the vendor API accepted', ['action']);

  return {
    target: { audience: config.audience },
    async check(signal): Promise<CheckResult> {
      try {
        await api.get('/v1/health', { signal, responseType: 'text' });
        return { ok: true };
      } catch (err) {
        return { ok: false, message: (err as Error).message, retryable: !(err instanceof PermanentError) };
      }
    },
    async start() {},
    async stop() {},
    async deliver(set, signal) {
      const action = toVendorAction(set);
      const res = await api.post('/v1/actions', action, {
        signal,
        responseType: 'text',
        headers: { 'idempotency-key': set.jti },
      });
      sent.inc({ action: action.action });
      return { status: res.status, detail: action.action };
    },
  };
}
