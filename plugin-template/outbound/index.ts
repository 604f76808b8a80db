import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createExampleOutbound } from './connector.ts';

/** Example Outbound: revokes sessions and suspends users through a vendor API. */
export const exampleOutboundConnector = defineConnector({
  manifest: {
    id: 'example-outbound',
    kind: 'outbound',
    version: '0.1.0',
    stability: 'development',
    displayName: 'Example Outbound',
    description:
      "Acts on CAEP and RISC events through the vendor's API: revokes the user's sessions or suspends the user.",
    accepts: ['caep.session-revoked', 'risc.account-disabled'],
    capabilities: { check: true },
  },
  configSchema,
  examples: [
    {
      title: 'Token from the environment',
      config: { base_url: 'https://api.vendor.example', api_token: '${env:VENDOR_API_TOKEN}' },
    },
  ],
  create: createExampleOutbound,
});

export default exampleOutboundConnector;
