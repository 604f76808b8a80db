import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { genericWebhook } from './index.ts';

const token = 'conformance-generic-webhook-token-51c2';

runConnectorConformance(genericWebhook, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: {
    auth: { type: 'bearer', token },
    rules: genericWebhook.examples?.[0]?.config.rules,
  },
  invalidConfigs: [
    { config: { auth: { type: 'bearer', token } }, error: 'rules' },
    {
      config: {
        auth: { type: 'bearer', token },
        rules: [{ name: 'r', match: 'severity = ', event_type: 'caep.session-revoked', subject: 'x' }],
      },
      error: 'invalid JSONata',
    },
    {
      config: {
        auth: { type: 'bearer', token },
        rules: [{ name: 'r', match: 'true', event_type: 'caep.sesion-revoked', subject: 'x' }],
      },
      error: 'unknown event type "caep.sesion-revoked"',
    },
  ],
  webhook: { request: () => ({ headers: { authorization: `Bearer ${token}` } }) },
  metrics: [
    { name: 'generic_webhook_requests_total', labels: { outcome: 'accepted' }, value: (t) => t.accepted },
    { name: 'generic_webhook_requests_total', labels: { outcome: 'invalid' }, value: (t) => t.rejected },
    { name: 'generic_webhook_records_total', labels: { outcome: 'ignored' }, value: (t) => t.ignored },
    {
      name: 'generic_webhook_records_total',
      labels: { outcome: 'mapped' },
      value: (t) => t.accepted - t.ignored,
    },
  ],
});
