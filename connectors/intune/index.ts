import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createIntune } from './connector.ts';
import { DEVICE_COMPLIANCE_CHANGE, mapSnapshot, RISK_LEVEL_CHANGE, stateSchema } from './mapping.ts';

/** Microsoft Intune: device compliance and Mobile Threat Defense levels from Graph managedDevices. */
export const intuneConnector = defineConnector({
  manifest: {
    id: 'intune',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Microsoft Intune',
    description:
      'Scans Intune managed devices through Microsoft Graph and emits CAEP device-compliance-change when a device turns compliant or non-compliant, and risk-level-change (principal DEVICE) when its Mobile Threat Defense level changes.',
    emits: [DEVICE_COMPLIANCE_CHANGE, RISK_LEVEL_CHANGE],
    capabilities: { poll: true, check: true },
    conformance: {
      skip: {
        'delivery.skips-malformed':
          'The rejected fixtures are device records without an id; the fake Graph API serves devices by id, so it cannot serve them to a poll.',
      },
    },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'App registration with a client secret',
      config: {
        tenant_id: 'contoso.onmicrosoft.com',
        client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
        client_secret: '${env:INTUNE_CLIENT_SECRET}',
        poll_interval: '15m',
      },
    },
  ],
  map: (record, config, state) => mapSnapshot(record, config, state),
  create: createIntune,
});
