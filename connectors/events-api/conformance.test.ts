import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { eventsApi } from './index.ts';

const token = 'conformance-ingest-token-7f3a';

runConnectorConformance(eventsApi, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: { token, max_events_per_request: 50 },
  invalidConfigs: [
    { config: {}, error: 'token' },
    { config: { token, max_events_per_request: 0 }, error: 'max_events_per_request' },
  ],
  webhook: { request: () => ({ headers: { authorization: `Bearer ${token}` } }) },
  metrics: [
    { name: 'events_api_requests_total', labels: { outcome: 'accepted' }, value: (t) => t.accepted },
    { name: 'events_api_requests_total', labels: { outcome: 'invalid' }, value: (t) => t.rejected },
  ],
});
