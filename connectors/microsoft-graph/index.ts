import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createMicrosoftGraph } from './connector.ts';

/** Microsoft Entra ID actions through Microsoft Graph. */
export const microsoftGraph = defineConnector({
  manifest: {
    id: 'microsoft-graph',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Microsoft Entra ID (Microsoft Graph)',
    description:
      'Acts on Microsoft Entra ID users through Microsoft Graph: revokes sign-in sessions, disables leavers, and (opt-in) confirms users compromised in Identity Protection.',
    accepts: ['caep.session-revoked', 'risc.account-disabled', 'caep.risk-level-change'],
  },
  configSchema,
  examples: [
    {
      title: 'Revoke sessions and disable leavers',
      config: {
        tenant_id: 'contoso.onmicrosoft.com',
        client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
        client_secret: '${env:GRAPH_CLIENT_SECRET}',
      },
    },
    {
      title: 'Also confirm high-risk users compromised',
      config: {
        tenant_id: '72f988bf-86f1-41af-91ab-2d7cd011db47',
        client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
        client_secret: '${env:GRAPH_CLIENT_SECRET}',
        confirm_compromised: true,
      },
    },
  ],
  create: (ctx, config) => createMicrosoftGraph(ctx, config),
});
