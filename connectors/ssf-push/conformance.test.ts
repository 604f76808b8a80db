import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { ssfPush } from './index.ts';

runConnectorConformance(ssfPush, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    endpoint_url: `${server.url}/ssf/events`,
    audience: 'https://receiver.kit.test',
    authorization_header: 'Bearer kit-push-secret-4f2a',
  }),
  invalidConfigs: [
    { config: { audience: 'x' }, error: 'endpoint_url' },
    { config: { endpoint_url: 'ftp://r.example.net', audience: 'x' }, error: 'http(s)' },
  ],
  metrics: [
    { name: 'ssf_push_sets_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'ssf_push_sets_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
