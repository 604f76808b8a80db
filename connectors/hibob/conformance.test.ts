import { createHmac } from 'node:crypto';
import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { hibobConnector } from './index.ts';

const SECRET = 'conformance-bob-webhook-secret-5d1';

/** The Public API answers for the employees the fixture deliveries name. */
function mock(server: MockServer): void {
  server.on('POST', '/v1/people/3332883884017713240', () => ({
    body: {
      id: '3332883884017713240',
      email: 'nina.keller@example.de',
      internal: { status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-02-02' },
    },
  }));
}

runConnectorConformance(hibobConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    webhook_secret: SECRET,
    service_user_id: 'SERVICE-44117',
    service_user_token: 'conformance-bob-service-token-8a7',
    api_base_url: `${server.url}/v1`,
    timezone: 'Europe/Berlin',
    backfill_window: '9000d',
    // The fixtures are recorded deliveries; their triggeredAt lies in the past.
    max_event_age: '9000d',
  }),
  invalidConfigs: [
    { config: { service_user_id: 'S', service_user_token: 't' }, error: 'webhook_secret' },
    {
      config: {
        webhook_secret: 's',
        service_user_id: 'S',
        service_user_token: 't',
        signature_algorithm: 'md5',
      },
      error: 'signature_algorithm',
    },
  ],
  mock,
  webhook: {
    request: (_body, rawBody) => ({
      headers: { 'bob-signature': createHmac('sha512', SECRET).update(rawBody).digest('base64') },
    }),
  },
  metrics: [
    // Deliveries with the employee attached ({event, employee}) are fixtures, not Bob's wire format: refused with 400.
    { name: 'hibob_webhooks_total', labels: { outcome: 'accepted' }, value: (t) => t.accepted - 1 },
    { name: 'hibob_webhooks_total', labels: { outcome: 'ignored' }, value: () => 1 },
    { name: 'hibob_webhooks_total', labels: { outcome: 'invalid' }, value: (t) => t.rejected },
    { name: 'hibob_webhooks_total', labels: { outcome: 'unauthenticated' }, value: () => 0 },
    { name: 'hibob_webhooks_total', labels: { outcome: 'stale' }, value: () => 0 },
    { name: 'hibob_employees_total', labels: { outcome: 'mapped' }, value: (t) => t.accepted - 1 },
    { name: 'hibob_employees_total', labels: { outcome: 'ignored' }, value: () => 0 },
    { name: 'hibob_events_total', value: (t) => t.events },
  ],
});
