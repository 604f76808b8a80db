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
  ],
  outbound: { network: false },
  metrics: [{ name: 'log_sets_written_total', value: (t) => t.delivered }],
});
