import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createSsfPush } from './connector.ts';

/** SSF push: delivers every SET to one statically configured RFC 8935 receiver. */
export const ssfPush = defineConnector({
  manifest: {
    id: 'ssf-push',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'stable',
    displayName: 'SSF push (RFC 8935)',
    description:
      'Pushes each SET to one SSF/CAEP/RISC receiver over RFC 8935, with a static Authorization header or an OAuth 2.0 client-credentials token, and classifies RFC 8935 error answers.',
    accepts: ['*'],
  },
  configSchema,
  examples: [
    {
      title: 'Receiver with a static bearer token',
      config: {
        endpoint_url: 'https://receiver.example.net/ssf/events',
        audience: 'https://receiver.example.net/',
        authorization_header: '${env:RECEIVER_PUSH_AUTHORIZATION}',
      },
    },
    {
      title: 'Receiver behind OAuth 2.0 client credentials',
      config: {
        endpoint_url: 'https://caep.example.org/events',
        audience: 'caep-receiver-01',
        oauth: {
          token_url: 'https://auth.example.org/oauth2/token',
          client_id: 'ssf-bridge',
          client_secret: '${env:CAEP_CLIENT_SECRET}',
          scope: 'caep.push',
        },
      },
    },
  ],
  create: (ctx, config) => createSsfPush(ctx, config),
});
