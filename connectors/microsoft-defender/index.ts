import { defineConnector } from '../../core/plugin-api/index.ts';
import { deviceOwnerReferences } from '../_shared/edr-config.ts';
import { configSchema } from './config.ts';
import { createDefenderConnector } from './connector.ts';
import { mapDefenderAlert } from './mapping.ts';

/** Microsoft Defender: Graph security alerts (and legacy Defender for Endpoint alerts) → CAEP/RISC. */
export const microsoftDefenderConnector = defineConnector({
  manifest: {
    id: 'microsoft-defender',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Microsoft Defender',
    description:
      'Turns Microsoft Defender XDR alerts (Graph security/alerts_v2, or the legacy Defender for Endpoint alerts API) into CAEP risk-level-change and session-revoked and RISC credential-compromise events about the user or device in their evidence.',
    emits: ['caep.risk-level-change', 'caep.session-revoked', 'risc.credential-compromise'],
    capabilities: { poll: true, webhook: true, check: true },
  },
  configSchema,
  examples: [
    {
      title: 'Graph security alerts',
      config: {
        mode: 'graph',
        tenant_id: '11111111-2222-3333-4444-555555555555',
        client_id: '${env:DEFENDER_CLIENT_ID}',
        client_secret: '${env:DEFENDER_CLIENT_SECRET}',
        poll_interval: '1m',
      },
    },
    {
      title: 'Legacy Defender for Endpoint API, EU region, machine ids as device subjects',
      config: {
        mode: 'mde',
        tenant_id: 'contoso.onmicrosoft.com',
        client_id: '${env:DEFENDER_CLIENT_ID}',
        client_secret: '${env:DEFENDER_CLIENT_SECRET}',
        mde_url: 'https://eu.api.security.microsoft.com',
        mapping: { device_id: 'mde' },
      },
    },
  ],
  map: (record, config) => mapDefenderAlert(record, config),
  references: deviceOwnerReferences,
  create: createDefenderConnector,
});
