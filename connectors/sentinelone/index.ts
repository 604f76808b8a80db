import { defineConnector } from '../../core/plugin-api/index.ts';
import { deviceOwnerReferences } from '../_shared/edr-config.ts';
import { configSchema } from './config.ts';
import { createSentinelOneConnector } from './connector.ts';
import { mapThreat } from './mapping.ts';

/** SentinelOne: Singularity threats → CAEP risk-level-change and session-revoked events. */
export const sentineloneConnector = defineConnector({
  manifest: {
    id: 'sentinelone',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'SentinelOne',
    description:
      'Turns SentinelOne Singularity threats (polled from the threats API, or posted by a notification) into CAEP risk-level-change and session-revoked events about the user and endpoint involved.',
    emits: ['caep.risk-level-change', 'caep.session-revoked'],
    capabilities: { poll: true, webhook: true, check: true },
  },
  configSchema,
  examples: [
    {
      title: 'Threats of one site',
      config: {
        console_url: 'https://usea1-acme.sentinelone.net',
        api_token: '${env:S1_API_TOKEN}',
        site_ids: ['1234567890123456789'],
        poll_interval: '1m',
      },
    },
    {
      title: 'Notifications posted by a SOAR playbook',
      config: { mode: 'webhook', webhook: { secret: '${env:S1_WEBHOOK_SECRET}' } },
    },
  ],
  map: (record, config) => mapThreat(record, config),
  references: deviceOwnerReferences,
  create: createSentinelOneConnector,
});
