import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { crowdstrikeFalconConnector } from './index.ts';
import { alertsApi, CLIENT_ID, CLIENT_SECRET, FIXTURE_ALIASES, tokenEndpoint } from './mock-api.ts';

const WEBHOOK_SECRET = 'falcon-fusion-shared-secret-5c1d';

runConnectorConformance(crowdstrikeFalconConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: { url: string }) => ({
    mode: 'alerts',
    base_url: server.url,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    // The fixtures are dated 2026-01-01; read back far enough to see them.
    alerts: { initial_lookback: '3650d', page_size: 7 },
    webhook: { secret: WEBHOOK_SECRET },
    subjects: { user_aliases: FIXTURE_ALIASES },
  }),
  invalidConfigs: [
    { config: { mode: 'alerts' }, error: 'mode alerts needs client_id' },
    { config: { mode: 'stream', client_id: 'x' }, error: 'mode stream needs client_secret' },
    { config: { mode: 'webhook' }, error: 'mode webhook needs webhook.secret' },
    { config: { mode: 'webhook', webhook: { secret: 'short' } }, error: 'at least 16 characters' },
    {
      config: { client_id: 'x', client_secret: 'y', base_url: 'http://api.crowdstrike.com' },
      error: 'must be an https URL',
    },
    {
      config: { client_id: 'x', client_secret: 'y', stream: { app_id: 'has spaces' } },
      error: 'letters or digits',
    },
    {
      config: { client_id: 'x', client_secret: 'y', mapping: { score_thresholds: { medium: 80, high: 70 } } },
      error: 'thresholds must rise',
    },
  ],
  // A Falcon Fusion workflow's HTTP action presents the shared secret as a bearer token.
  webhook: { request: () => ({ headers: { authorization: `Bearer ${WEBHOOK_SECRET}` } }) },
  mock: (server) => void tokenEndpoint(server),
  poll: { serve: (server, records) => alertsApi(server, records), task: 'alerts' },
  metrics: [
    {
      name: 'edr_records_total',
      labels: { outcome: 'mapped' },
      value: (t) => t.records - t.ignored - t.rejected,
    },
    { name: 'edr_records_total', labels: { outcome: 'ignored' }, value: (t) => t.ignored },
    // The three stream-*-rejected fixtures are Event Streams records, which the alerts poll does not take.
    { name: 'edr_records_total', labels: { outcome: 'rejected' }, value: (t) => t.rejected - 3 },
    { name: 'edr_webhook_requests_total', value: () => 0 },
  ],
});
