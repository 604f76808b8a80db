import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createUniversalLogout } from './connector.ts';

/** Okta Universal Logout: Global Token Revocation for users whose sessions must end. */
export const oktaUniversalLogout = defineConnector({
  manifest: {
    id: 'okta-universal-logout',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Okta Universal Logout',
    description:
      'Ends a user’s Okta sessions and revokes their tokens (Global Token Revocation, which fans out to apps that support Universal Logout) on session-revoked, account-disabled and credential-compromise.',
    accepts: ['caep.session-revoked', 'risc.account-disabled', 'risc.credential-compromise'],
  },
  configSchema,
  examples: [
    {
      title: 'API Services app with a PEM key',
      config: {
        org_url: 'https://example.okta.com',
        client_id: '0oa8f5j3ecb5w3dF35d7',
        private_key: '${file:/run/secrets/okta-universal-logout.pem}',
        key_id: 'ssf-bridge-2026',
      },
    },
    {
      title: 'Only leavers and compromised credentials',
      config: {
        org_url: 'https://example.okta.com',
        client_id: '0oa8f5j3ecb5w3dF35d7',
        private_key: '${env:OKTA_PRIVATE_KEY}',
        trigger_on: ['account-disabled', 'credential-compromise'],
      },
    },
  ],
  create: (ctx, config) => createUniversalLogout(ctx, config),
});
