import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createGoogleWorkspace } from './connector.ts';

/** Google Workspace: Admin SDK sign-out and suspension, or SSF push to Google's receiver. */
export const googleWorkspace = defineConnector({
  manifest: {
    id: 'google-workspace',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Google Workspace',
    description:
      'Signs users out of Google Workspace (and suspends leavers) through the Admin SDK with a service account, or pushes session-revoked SETs to Google’s Shared Signals receiver.',
    accepts: ['caep.session-revoked', 'risc.account-disabled'],
  },
  configSchema,
  examples: [
    {
      title: 'Admin SDK with a service account (domain-wide delegation)',
      config: {
        directory: {
          service_account_email: 'ssf-bridge@example-project.iam.gserviceaccount.com',
          private_key: '${env:GOOGLE_SA_PRIVATE_KEY}',
          private_key_id: '4d2c4a6b8e9f01234567890abcdef0123456789a',
          admin_email: 'it-automation@example.com',
        },
      },
    },
    {
      title: 'Shared Signals receiver (enrolled orgs)',
      config: { ssf_push: { endpoint_url: 'https://sharedsignals.googleapis.com/v1/example-org:push' } },
    },
  ],
  create: (ctx, config) => createGoogleWorkspace(ctx, config),
});
