import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { microsoftGraph } from './index.ts';

runConnectorConformance(microsoftGraph, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    tenant_id: 'kit.onmicrosoft.com',
    client_id: '00000000-0000-4000-8000-00000000c11e',
    client_secret: 'kit-graph-client-secret',
    token_url: `${server.url}/kit.onmicrosoft.com/oauth2/v2.0/token`,
    graph_url: server.url,
  }),
  invalidConfigs: [
    { config: { client_id: 'c', client_secret: 's' }, error: 'tenant_id' },
    {
      config: { tenant_id: 't', client_id: 'c' },
      error: 'one of client_secret, client_certificate, federated_token_file is required',
    },
    {
      config: {
        tenant_id: 't',
        client_id: 'c',
        client_secret: 's',
        client_certificate: { certificate: 'PEM', private_key: 'PEM' },
      },
      error:
        'give one of client_secret, client_certificate, federated_token_file, not client_secret and client_certificate',
    },
    {
      config: { tenant_id: 't', client_id: 'c', client_secret: 's', graph_url: 'graph' },
      error: 'graph_url',
    },
  ],
  mock: (server) => {
    server.on('POST', '/kit.onmicrosoft.com/oauth2/v2.0/token', () => ({
      body: { token_type: 'Bearer', expires_in: 3599, access_token: 'kit-graph-access-token' },
    }));
    server.on('GET', '/v1.0/users/pat.lee%40example.com', () => ({
      body: { id: '3f2504e0-4f89-41d3-9a0c-0305e82c3301', userPrincipalName: 'pat.lee@example.com' },
    }));
    server.on('POST', '/v1.0/users/3f2504e0-4f89-41d3-9a0c-0305e82c3301/revokeSignInSessions', () => ({
      body: { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean', value: true },
    }));
  },
  metrics: [
    { name: 'microsoft_graph_actions_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'microsoft_graph_actions_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
