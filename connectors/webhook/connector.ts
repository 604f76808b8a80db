import type { ConnectorContext, OutboundConnector } from '../../core/plugin-api/index.ts';
import { counted } from '../_shared/outbound-common.ts';
import type { WebhookConfig } from './config.ts';
import { signature, webhookPayload } from './mapping.ts';

/** POSTs every delivered event as signed JSON to one URL. */
export function createWebhook(ctx: ConnectorContext, config: WebhookConfig): OutboundConnector {
  const authorization = config.authorization_header;
  const client = ctx.http.create({
    timeoutMs: config.request_timeout,
    ...(authorization ? { auth: { type: 'header', name: 'Authorization', value: authorization } } : {}),
  });
  const posts = ctx.metrics.counter('webhook_posts_total', 'Webhook POSTs, by outcome', ['outcome']);
  return {
    target: {
      audience: config.audience,
      profile: config.profile,
      ...(config.profile_options ? { profileOptions: config.profile_options } : {}),
    },
    async start() {},
    async stop() {},
    deliver: (set, signal) =>
      counted(posts, {}, async () => {
        const body = JSON.stringify(webhookPayload(set, config.include_set));
        const timestamp = String(Math.floor(ctx.clock.now().getTime() / 1000));
        const res = await client.post(config.url, body, {
          headers: {
            'content-type': 'application/json',
            'x-timestamp': timestamp,
            'x-signature': signature(config.signing_secret.reveal(), timestamp, body),
          },
          responseType: 'text',
          signal,
        });
        return { status: res.status, detail: `the webhook answered ${res.status}` };
      }),
  };
}
