import { generateKeyPairSync } from 'node:crypto';
import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { googleWorkspace } from './index.ts';

const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

runConnectorConformance(googleWorkspace, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    directory: {
      service_account_email: 'kit@kit-project.iam.gserviceaccount.com',
      private_key: privateKey,
      admin_email: 'admin@example.com',
      token_url: `${server.url}/token`,
      api_url: server.url,
    },
  }),
  invalidConfigs: [
    { config: {}, error: 'exactly one of directory or ssf_push' },
    {
      config: {
        directory: { service_account_email: 'not-an-email', private_key: 'k', admin_email: 'a@b.c' },
      },
      error: 'service_account_email',
    },
    {
      // The push credential would travel in clear text.
      config: {
        ssf_push: { endpoint_url: 'http://push.example.com/events', authorization_header: 'Bearer g-push-1' },
      },
      error: 'endpoint_url',
    },
  ],
  mock: (server) => {
    server.on('POST', '/token', () => ({
      body: { access_token: 'ya29.kit-access-token', expires_in: 3599, token_type: 'Bearer' },
    }));
    server.on('POST', '/admin/directory/v1/users/pat.lee%40example.com/signOut', () => ({ status: 204 }));
  },
  metrics: [
    { name: 'google_workspace_actions_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'google_workspace_actions_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
