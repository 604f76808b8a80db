import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { scimServiceConnector } from './index.ts';

const token = 'conformance-scim-bearer-token-2b4';

runConnectorConformance(scimServiceConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: { token, public_url: 'https://bridge.example.com/scim/v2/hr-scim' },
  invalidConfigs: [
    { config: {}, error: 'token' },
    { config: { token, max_results: 0 }, error: 'max_results' },
  ],
  webhook: { request: () => ({ headers: { authorization: `Bearer ${token}` } }) },
  metrics: [
    // The kit posts each fixture to the service root, which is no SCIM resource: 404 every time.
    { name: 'scim_requests_total', labels: { method: 'POST', status: '404' }, value: (t) => t.records },
    { name: 'scim_events_total', value: (t) => t.events },
  ],
});
