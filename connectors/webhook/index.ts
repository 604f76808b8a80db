import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createWebhook } from './connector.ts';

/** Signed JSON webhooks: every event POSTed with an HMAC signature. */
export const webhook = defineConnector({
  manifest: {
    id: 'webhook',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'stable',
    displayName: 'Signed webhook',
    description:
      'POSTs every delivered event as JSON (id, type, occurred_at, subject, event claims, source) with an HMAC-SHA256 signature over timestamp and body, optionally with the signed SET.',
    accepts: ['*'],
  },
  configSchema,
  examples: [
    {
      title: 'Signed JSON to an internal service',
      config: {
        url: 'https://hooks.example.com/ssf-bridge',
        signing_secret: '${env:WEBHOOK_SIGNING_SECRET}',
      },
    },
    {
      title: 'With the SET and a bearer token',
      config: {
        url: 'https://soar.example.com/api/events',
        signing_secret: '${env:WEBHOOK_SIGNING_SECRET}',
        include_set: true,
        authorization_header: 'Bearer ${env:SOAR_TOKEN}',
      },
    },
  ],
  create: (ctx, config) => createWebhook(ctx, config),
});
