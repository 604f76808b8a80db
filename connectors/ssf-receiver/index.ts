import { PermanentError, defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createSsfReceiver } from './connector.ts';
import { claimRefusal, decodeUnverified, mapSet } from './mapping.ts';

/** SSF receiver: consumes another transmitter's stream and emits its events into the pipeline. */
export const ssfReceiver = defineConnector({
  manifest: {
    id: 'ssf-receiver',
    kind: 'inbound',
    version: '0.1.0',
    stability: 'beta',
    displayName: 'SSF receiver',
    description:
      'Receives Security Event Tokens from an upstream OpenID Shared Signals transmitter (pushed to POST /ingest/<instance-id> or polled), verifies them, and emits their events into the pipeline so they can be routed to any destination.',
    // Whatever the upstream transmitter sends, within the catalog.
    emits: ['*'],
    capabilities: { webhook: true },
  },
  configSchema,
  examples: [
    {
      title: 'Push delivery with a bearer token',
      config: {
        issuer: 'https://idp.example.com',
        auth: { type: 'bearer', token: '${env:UPSTREAM_SSF_TOKEN}' },
        delivery: {
          method: 'push',
          endpoint_url: 'https://bridge.example.com/ingest/okta-signals',
          authorization_header: 'Bearer ${env:UPSTREAM_PUSH_TOKEN}',
        },
        events_requested: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
        bridge_issuer: 'https://bridge.example.com',
      },
    },
    {
      title: 'Poll delivery with OAuth 2.0 client credentials',
      config: {
        issuer: 'https://transmitter.example.com/ssf',
        auth: {
          type: 'oauth2_client_credentials',
          token_url: 'https://auth.example.com/oauth2/token',
          client_id: 'ssf-bridge',
          client_secret: '${env:UPSTREAM_SSF_CLIENT_SECRET}',
          scope: 'ssf.read ssf.manage',
        },
        delivery: { method: 'poll', max_events: 200 },
        bridge_issuer: 'https://bridge.example.com',
      },
    },
  ],
  map(record, config) {
    const set = typeof record === 'string' ? decodeUnverified(record, config.legacy_subjects) : undefined;
    if (!set) return { events: [], ignored: 'not a compact SET' };
    const refusal = claimRefusal(set, config);
    if (refusal) throw new PermanentError(refusal, { code: 'SSF_ERR_RECEIVER_DRY_RUN' });
    return mapSet(set, config.bridge_issuer);
  },
  create: createSsfReceiver,
});
