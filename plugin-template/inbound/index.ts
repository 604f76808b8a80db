import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema, stateSchema } from './config.ts';
import { createExampleInbound } from './connector.ts';
import { mapAlert } from './mapping.ts';

/** Example Inbound: polls a vendor alerts API (and takes its signed webhooks) and emits CAEP and RISC events. */
export const exampleInboundConnector = defineConnector({
  manifest: {
    id: 'example-inbound',
    kind: 'inbound',
    version: '0.1.0',
    stability: 'development',
    displayName: 'Example Inbound',
    description:
      "Polls the vendor's alerts API and turns terminated sessions and suspended users into CAEP and RISC events.",
    emits: ['caep.session-revoked', 'risc.account-disabled'],
    capabilities: { poll: true, webhook: true, check: true },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'Token from the environment',
      config: { base_url: 'https://api.vendor.example', api_token: '${env:VENDOR_API_TOKEN}' },
    },
  ],
  map: (record) => mapAlert(record),
  create: createExampleInbound,
});

export default exampleInboundConnector;
