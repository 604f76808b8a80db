import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createGenericWebhook } from './connector.ts';
import { mapBody } from './mapping.ts';

/** Generic webhook: any JSON alert, turned into events by declarative mapping rules. */
export const genericWebhook = defineConnector({
  manifest: {
    id: 'generic-webhook',
    kind: 'inbound',
    version: '0.1.0',
    stability: 'beta',
    displayName: 'Generic webhook',
    description:
      'Receives any JSON alert at POST /ingest/<instance-id>, authenticated by a bearer token or an HMAC signature, and turns it into CAEP, RISC or vendor events with declarative JSONata mapping rules.',
    // The rules decide the event types: any type the catalog knows.
    emits: ['*'],
    capabilities: { webhook: true },
  },
  configSchema,
  examples: [
    {
      title: 'SIEM alerts with a bearer token',
      config: {
        auth: { type: 'bearer', token: '${env:SIEM_WEBHOOK_TOKEN}' },
        rules: [
          {
            name: 'high-risk-user',
            match: 'severity in ["high", "critical"] and $exists(user.email)',
            event_type: 'caep.risk-level-change',
            subject: '{"format": "email", "email": user.email}',
            claims: {
              principal: '"USER"',
              current_level: '"HIGH"',
              risk_reason: 'title',
            },
            id: 'alert_id',
            occurred_at: 'created_at',
            severity: 'severity',
          },
        ],
      },
    },
    {
      title: 'HMAC-signed requests',
      config: {
        auth: {
          type: 'hmac',
          key: '${env:WEBHOOK_HMAC_KEY}',
          header: 'x-hub-signature-256',
          prefix: 'sha256=',
        },
        records_field: 'events',
        rules: [
          {
            name: 'disabled-account',
            match: 'action = "account.disabled"',
            event_type: 'risc.account-disabled',
            subject: '{"format": "email", "email": target}',
            id: 'id',
          },
        ],
      },
    },
  ],
  // A whole request body, split into records as the running connector splits it.
  map: (body, config) => mapBody(body, config),
  create: createGenericWebhook,
});
