import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { scimDeprovision } from './index.ts';

runConnectorConformance(scimDeprovision, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    base_url: `${server.url}/scim/v2`,
    token: 'kit-scim-bearer-token',
  }),
  invalidConfigs: [
    { config: { base_url: 'https://app.example.com/scim/v2' }, error: 'exactly one of token or oauth' },
    { config: { token: 't' }, error: 'base_url' },
  ],
  mock: (server) => {
    server.on('GET', '/scim/v2/Users', () => ({
      headers: { 'content-type': 'application/scim+json' },
      body: {
        schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
        totalResults: 1,
        Resources: [{ id: 'u-kit-1', userName: 'pat.lee@example.com', active: true }],
      },
    }));
    server.on('PATCH', '/scim/v2/Users/u-kit-1', () => ({ body: { id: 'u-kit-1', active: false } }));
  },
  metrics: [
    { name: 'scim_deprovision_actions_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'scim_deprovision_actions_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
