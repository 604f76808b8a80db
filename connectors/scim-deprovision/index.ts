import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createScimDeprovision } from './connector.ts';

/** SCIM 2.0 deprovisioning of leavers in any app with a SCIM API. */
export const scimDeprovision = defineConnector({
  manifest: {
    id: 'scim-deprovision',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'SCIM 2.0 deprovisioning',
    description:
      'Deactivates users (PATCH active=false) in any app with a SCIM 2.0 API when their account is disabled, and deletes them on purge when enabled.',
    accepts: ['risc.account-disabled', 'risc.account-purged'],
  },
  configSchema,
  examples: [
    {
      title: 'Static bearer token',
      config: { base_url: 'https://app.example.com/scim/v2', token: '${env:APP_SCIM_TOKEN}' },
    },
    {
      title: 'OAuth client credentials, deleting purged users',
      config: {
        base_url: 'https://api.example.org/scim/v2',
        oauth: {
          token_url: 'https://api.example.org/oauth/token',
          client_id: 'ssf-bridge',
          client_secret: '${env:APP_SCIM_CLIENT_SECRET}',
          scope: 'scim.users.write',
        },
        delete_on_purge: true,
      },
    },
  ],
  create: (ctx, config) => createScimDeprovision(ctx, config),
});
