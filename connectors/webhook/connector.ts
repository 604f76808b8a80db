import {
  registerSecretValue,
  type ConnectorContext,
  type OutboundConnector,
} from '../../core/plugin-api/index.ts';
import { counted } from '../_shared/outbound-common.ts';
import type { WebhookConfig } from './config.ts';
import { signature, webhookPayload } from './mapping.ts';

/**
 * Whether a path segment looks like a key, a token or an id: twelve characters or more, or six
 * or more with a digit. Incoming-webhook URLs carry their credential there (Slack's
 * `/services/T…/B…/<secret>`, Teams' `…/IncomingWebhook/<id>/<guid>`, Discord's
 * `/api/webhooks/<id>/<token>`, Zapier's `/hooks/catch/<account>/<key>/`, n8n's
 * `/webhook/<uuid>`, Make's `/<key>`); a path of plain words (`/api/events`) does not.
 */
function keyLike(segment: string): boolean {
  let text = segment;
  try {
    text = decodeURIComponent(segment);
  } catch {
    // Not percent-encoded text: judged as it is.
  }
  return text.length >= 12 || (text.length >= 6 && /\d/.test(text));
}

/**
 * The part of the webhook URL after its origin's `/` when its path may hold the receiver's
 * credential, as the client sends it and as configured; none for a path of plain words.
 * Registered as secret values, they are scrubbed from every error message, log line (the HTTP
 * client's `http response` line included) and dead letter, which then show the endpoint as
 * `https://hooks.example.com/[redacted]`: the origin stays visible to tell which endpoint failed.
 */
export function pathSecrets(url: string): string[] {
  if (!URL.canParse(url)) return [];
  const parsed = new URL(url);
  if (!parsed.pathname.split('/').some(keyLike)) return [];
  const sent = parsed.pathname.slice(1);
  const written = /^[a-z][a-z\d+.-]*:\/\/[^/?#]*\/([^?#]*)/i.exec(url)?.[1] ?? sent;
  return [...new Set([sent, written])].filter((value) => value.length > 0);
}

/** POSTs every delivered event as signed JSON to one URL. */
export function createWebhook(ctx: ConnectorContext, config: WebhookConfig): OutboundConnector {
  for (const value of pathSecrets(config.url)) registerSecretValue(value);
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
