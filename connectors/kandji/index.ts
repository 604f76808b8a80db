import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createKandji } from './connector.ts';
import { DEVICE_COMPLIANCE_CHANGE, mapSnapshot, stateSchema } from './mapping.ts';

/** Kandji (Iru Endpoint Management): device compliance from blueprint parameters and library items. */
export const kandjiConnector = defineConnector({
  manifest: {
    id: 'kandji',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Kandji',
    description:
      'Polls the Kandji device list and device status within the hourly API budget, and emits CAEP device-compliance-change when blueprint checks start or stop failing.',
    emits: [DEVICE_COMPLIANCE_CHANGE],
    capabilities: { poll: true, check: true },
    conformance: {
      skip: {
        'delivery.skips-malformed':
          'The rejected fixtures are not device snapshots; the fake API builds its device list from snapshots, so it cannot serve them to a poll.',
      },
    },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'US tenant, token from the environment',
      config: {
        api_url: 'https://acme.api.kandji.io',
        api_token: '${env:KANDJI_API_TOKEN}',
        poll_interval: '15m',
        max_requests_per_hour: 5000,
      },
    },
  ],
  map: (record, config, state) => mapSnapshot(record, config, state),
  create: createKandji,
});
