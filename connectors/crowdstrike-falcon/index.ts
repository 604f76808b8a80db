import { defineConnector } from '../../core/plugin-api/index.ts';
import { deviceOwnerReferences } from '../_shared/edr-config.ts';
import { configSchema } from './config.ts';
import { createFalconConnector } from './connector.ts';
import { mapFalconRecord } from './mapping.ts';

/** CrowdStrike Falcon: EDR and Identity Protection detections → CAEP/RISC events. */
export const crowdstrikeFalconConnector = defineConnector({
  manifest: {
    id: 'crowdstrike-falcon',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'CrowdStrike Falcon',
    description:
      'Turns Falcon endpoint and Identity Protection detections (Alerts API v2, Event Streams, or records a Falcon Fusion workflow posts) into CAEP risk-level-change, session-revoked and RISC credential-compromise events about the user and device involved.',
    emits: ['caep.risk-level-change', 'caep.session-revoked', 'risc.credential-compromise'],
    capabilities: { poll: true, stream: true, webhook: true, check: true },
  },
  configSchema,
  examples: [
    {
      title: 'Alerts API polling (us-1)',
      config: {
        mode: 'alerts',
        client_id: '${env:FALCON_CLIENT_ID}',
        client_secret: '${env:FALCON_CLIENT_SECRET}',
        alerts: { poll_interval: '1m', overlap: '5m' },
        subjects: { user_aliases: { 'CORP\\dlee': 'dana.lee@example.com' } },
      },
    },
    {
      title: 'Event Streams on eu-1, device-only events for unresolved users',
      config: {
        mode: 'stream',
        base_url: 'https://api.eu-1.crowdstrike.com',
        client_id: '${env:FALCON_CLIENT_ID}',
        client_secret: '${env:FALCON_CLIENT_SECRET}',
        stream: { app_id: 'ssfbridge01' },
        subjects: { unresolved_user: 'device' },
      },
    },
    {
      title: 'Falcon Fusion workflow posting alerts',
      config: { mode: 'webhook', webhook: { secret: '${env:FALCON_WEBHOOK_SECRET}' } },
    },
  ],
  map: (record, config) => mapFalconRecord(record, config),
  references: deviceOwnerReferences,
  create: createFalconConnector,
});
