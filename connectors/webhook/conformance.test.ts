import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { webhook } from './index.ts';

runConnectorConformance(webhook, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    url: `${server.url}/hooks/ssf`,
    signing_secret: 'kit-webhook-signing-secret-0123456789',
    authorization_header: 'Bearer kit-webhook-token',
  }),
  invalidConfigs: [
    { config: { url: 'https://hooks.example.com' }, error: 'signing_secret' },
    { config: { url: 'hooks', signing_secret: 's' }, error: 'url' },
    // Checked when the config loads, not by failing every delivery with "unknown target profile".
    { config: { url: 'https://hooks.example.com', signing_secret: 's', profile: 'okta' }, error: 'profile' },
    {
      config: {
        url: 'https://hooks.example.com',
        signing_secret: 's',
        profile_options: { caep_interop: 'yes' },
      },
      error: 'profile_options.caep_interop',
    },
    // Google refuses any other aud: every SET would be dead-lettered, the default audience's too.
    {
      config: { url: 'https://hooks.example.com', signing_secret: 's', profile: 'google-workspace' },
      error: 'audience https://sharedsignals.googleapis.com, not urn:ssf-bridge:webhook',
    },
  ],
  metrics: [
    { name: 'webhook_posts_total', labels: { outcome: 'ok' }, value: (t) => t.delivered },
    { name: 'webhook_posts_total', labels: { outcome: 'retryable' }, value: (t) => t.failed },
  ],
});
