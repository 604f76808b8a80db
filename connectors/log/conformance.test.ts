import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { logDestination } from './index.ts';

runConnectorConformance(logDestination, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: { audience: 'urn:example:log', format: 'decoded' },
  invalidConfigs: [
    { config: { format: 'yaml' }, error: 'format' },
    // Checked when the config loads, not by failing every delivery with "unknown target profile".
    { config: { profile: 'okta' }, error: 'profile' },
    { config: { profile: '' }, error: 'profile' },
    // Google refuses any other aud: every SET would be dead-lettered, the default audience's too.
    {
      config: { profile: 'google-workspace' },
      error: 'audience https://sharedsignals.googleapis.com, not urn:ssf-bridge:log',
    },
    {
      config: { profile: 'google-workspace', audience: 'urn:example:log' },
      error: '→ at audience',
    },
  ],
  outbound: { network: false },
  metrics: [{ name: 'log_sets_written_total', value: (t) => t.delivered }],
});
