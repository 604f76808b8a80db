import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { FAKE_TOKEN, systemLogApi } from './fake-api.ts';
import { oktaSystemLog, POLL_TASK } from './index.ts';

runConnectorConformance(oktaSystemLog, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: { url: string }) => ({
    org_url: server.url,
    auth: { type: 'ssws', token: FAKE_TOKEN },
    page_size: 2,
    // The fixtures are dated and the fake API honours `since`, as Okta does: reach back to them.
    initial_lookback: '3650d',
  }),
  invalidConfigs: [
    { config: { org_url: 'https://acme.okta.com' }, error: 'auth' },
    // The API token would travel in clear text; the admin console serves no API; a path is no org.
    { config: { org_url: 'http://acme.okta.com', auth: { type: 'ssws', token: 'x' } }, error: 'org_url' },
    {
      config: { org_url: 'https://acme-admin.okta.com', auth: { type: 'ssws', token: 'x' } },
      error: 'org_url',
    },
    {
      config: { org_url: 'https://acme.okta.com/oauth2/default', auth: { type: 'ssws', token: 'x' } },
      error: 'org_url',
    },
    {
      config: { org_url: 'https://acme.okta.com', auth: { type: 'ssws', token: 'x' }, page_size: 5000 },
      error: 'page_size',
    },
  ],
  poll: { serve: (server, records) => void systemLogApi(server, records), task: POLL_TASK },
  metrics: [
    {
      name: 'okta_system_log_events_read_total',
      labels: { outcome: 'mapped' },
      value: (t) => t.records - t.ignored - t.rejected,
    },
    { name: 'okta_system_log_events_read_total', labels: { outcome: 'ignored' }, value: (t) => t.ignored },
    { name: 'okta_system_log_events_read_total', labels: { outcome: 'malformed' }, value: (t) => t.rejected },
    { name: 'okta_system_log_rate_limited_total', value: () => 0 },
    // Users are read only with identifier_changes, which the conformance config leaves off.
    { name: 'okta_system_log_user_reads_total', labels: { outcome: 'changed' }, value: () => 0 },
  ],
});
