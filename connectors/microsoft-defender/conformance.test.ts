import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { microsoftDefenderConnector } from './index.ts';
import { alertsApi, CLIENT_ID, CLIENT_SECRET, FIXTURE_ALIASES, TENANT, tokenEndpoint } from './mock-api.ts';

const WEBHOOK_SECRET = 'defender-logic-app-secret-77aa';

runConnectorConformance(microsoftDefenderConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: { url: string }) => ({
    mode: 'graph',
    tenant_id: TENANT,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    login_url: server.url,
    graph_url: server.url,
    // The fixtures are dated 2026-01-01; read back far enough to see them.
    initial_lookback: '3650d',
    page_size: 6,
    webhook: { secret: WEBHOOK_SECRET },
    subjects: { user_aliases: FIXTURE_ALIASES },
  }),
  invalidConfigs: [
    { config: { mode: 'graph', client_id: 'x', client_secret: 'y' }, error: 'mode graph needs tenant_id' },
    {
      config: { mode: 'mde', tenant_id: 'contoso.onmicrosoft.com', client_id: 'x' },
      error: 'mode mde: one of client_secret, client_certificate, federated_token_file is required',
    },
    { config: { mode: 'webhook' }, error: 'mode webhook needs webhook.secret' },
    {
      config: { tenant_id: 'a b', client_id: 'x', client_secret: 'y' },
      error: 'tenant id (GUID) or a verified domain',
    },
    {
      config: { tenant_id: 't', client_id: 'x', client_secret: 'y', mapping: { device_id: 'serial' } },
      error: 'device_id',
    },
  ],
  // The Logic App (or Defender notification) presents the shared secret as a bearer token.
  // It posts each alert in a batch under `value`, as Graph delivers them (a bare array body is a batch too).
  webhook: {
    request: () => ({ headers: { authorization: `Bearer ${WEBHOOK_SECRET}` } }),
    body: (alert) => ({ value: [alert] }),
  },
  mock: (server) => void tokenEndpoint(server),
  poll: { serve: (server, records) => void alertsApi(server, records), task: 'alerts' },
  // The two *-resolved-false-positive fixtures and graph-in-progress-false-positive are alerts
  // this fresh instance first reads already classified a false positive: it never raised the
  // level for them, so they send no downgrade (not_raised_here), although mapped alone they show
  // the downgrade.
  metrics: [
    {
      name: 'edr_records_total',
      labels: { outcome: 'mapped' },
      value: (t) => t.records - t.ignored - t.rejected - 3,
    },
    { name: 'edr_records_total', labels: { outcome: 'ignored' }, value: (t) => t.ignored + 3 },
    // not-an-alert and not-an-object have no lastUpdateDateTime: the API's $filter on it never returns them.
    { name: 'edr_records_total', labels: { outcome: 'rejected' }, value: (t) => t.rejected - 2 },
    { name: 'edr_webhook_requests_total', value: () => 0 },
  ],
});
