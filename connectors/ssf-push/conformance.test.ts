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
    // RFC 8935 §1 (PUSH-03): SETs are delivered over TLS, whether or not the push carries credentials.
    { config: { endpoint_url: 'http://r.example.net/ssf/events', audience: 'x' }, error: 'https' },
    // The URL's user:password would never be sent: the request is built from host and path.
    {
      config: { endpoint_url: 'https://user:pass@r.example.net/ssf/events', audience: 'x' },
      error: 'user name or password',
    },
  ],
  metrics: [
    { name: 'ssf_push_sets_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'ssf_push_sets_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
