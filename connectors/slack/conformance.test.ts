import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { slack } from './index.ts';

runConnectorConformance(slack, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({ token: 'xoxp-kit-0000-1111-abcdef', api_url: `${server.url}/api` }),
  invalidConfigs: [
    { config: {}, error: 'token' },
    { config: { token: 'xoxp-1', sessions: 'desktop' }, error: 'sessions' },
  ],
  mock: (server) => {
    server.on('GET', '/api/users.lookupByEmail', () => ({ body: { ok: true, user: { id: 'W0KIT0001' } } }));
    server.on('POST', '/api/admin.users.session.reset', () => ({ body: { ok: true } }));
  },
  metrics: [
    { name: 'slack_session_resets_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'slack_session_resets_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
