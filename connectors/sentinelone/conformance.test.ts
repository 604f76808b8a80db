import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { sentineloneConnector } from './index.ts';
import { API_TOKEN, FIXTURE_ALIASES, threatsApi } from './mock-api.ts';

const WEBHOOK_SECRET = 'sentinelone-soar-secret-c0ffee';

runConnectorConformance(sentineloneConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: { url: string }) => ({
    console_url: server.url,
    api_token: API_TOKEN,
    // The fixtures are dated 2026-01-01; read back far enough to see them.
    initial_lookback: '3650d',
    page_size: 5,
    webhook: { secret: WEBHOOK_SECRET },
    subjects: { user_aliases: FIXTURE_ALIASES },
  }),
  invalidConfigs: [
    { config: { api_token: 'x' }, error: 'mode poll needs console_url' },
    { config: { console_url: 'https://usea1-acme.sentinelone.net' }, error: 'mode poll needs api_token' },
    { config: { mode: 'webhook' }, error: 'mode webhook needs webhook.secret' },
    {
      config: { console_url: 'http://usea1-acme.sentinelone.net', api_token: 'x' },
      error: 'must be an https URL',
    },
    {
      config: { console_url: 'https://a.sentinelone.net', api_token: 'x', site_ids: ['abc'] },
      error: 'numeric site id',
    },
    {
      config: {
        console_url: 'https://a.sentinelone.net',
        api_token: 'x',
        mapping: { levels: { malicious_active: 'severe' } },
      },
      error: 'malicious_active',
    },
  ],
  // The SOAR playbook (or notification) presents the shared secret as a bearer token.
  webhook: { request: () => ({ headers: { authorization: `Bearer ${WEBHOOK_SECRET}` } }) },
  poll: { serve: (server, records) => threatsApi(server, records), task: 'threats' },
  metrics: [
    {
      name: 'edr_records_total',
      labels: { outcome: 'mapped' },
      value: (t) => t.records - t.ignored - t.rejected,
    },
    { name: 'edr_records_total', labels: { outcome: 'ignored' }, value: (t) => t.ignored },
    // not-an-object has no updatedAt: the API's updatedAt__gte filter never returns it.
    { name: 'edr_records_total', labels: { outcome: 'rejected' }, value: (t) => t.rejected - 1 },
    { name: 'edr_webhook_requests_total', value: () => 0 },
  ],
});
