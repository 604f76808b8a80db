import { generateKeyPairSync } from 'node:crypto';
import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { oktaUniversalLogout } from './index.ts';

const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048 })
  .privateKey.export({ type: 'pkcs8', format: 'pem' })
  .toString();

runConnectorConformance(oktaUniversalLogout, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    org_url: server.url,
    client_id: '0oa1kitclient',
    private_key: privateKey,
    key_id: 'kit-key',
  }),
  invalidConfigs: [
    { config: { org_url: 'https://example.okta.com', client_id: 'c' }, error: 'private_key' },
    {
      config: {
        org_url: 'https://example.okta.com',
        client_id: 'c',
        private_key: 'k',
        trigger_on: ['logout'],
      },
      error: 'trigger_on',
    },
    {
      config: {
        org_url: 'https://example.okta.com',
        client_id: 'c',
        private_key: 'k',
        trigger_on: ['session-revoked'],
        deactivate_on_account_disabled: true,
      },
      error: 'deactivate_on_account_disabled needs account-disabled in trigger_on',
    },
  ],
  mock: (server) => {
    server.on('POST', '/oauth2/v1/token', () => ({
      body: {
        token_type: 'Bearer',
        expires_in: 3600,
        access_token: 'kit-okta-access-token',
        scope: 'okta.universalLogout.manage',
      },
    }));
    server.on('GET', '/api/v1/users/pat.lee@example.com', () => ({
      body: {
        id: '00u1kitpatlee0000001',
        status: 'ACTIVE',
        profile: { login: 'pat.lee@example.com', email: 'pat.lee@example.com' },
      },
    }));
    server.on('POST', '/oauth2/v1/global-token-revocation', () => ({ status: 204 }));
  },
  metrics: [
    { name: 'okta_universal_logout_revocations_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    {
      name: 'okta_universal_logout_revocations_total',
      labels: { outcome: 'retryable' },
      value: (t) => t.failed,
    },
    // deactivate_on_account_disabled is off in this configuration: nobody is deactivated.
    { name: 'okta_universal_logout_deactivations_total', labels: { outcome: 'ok' }, value: () => 0 },
  ],
});
