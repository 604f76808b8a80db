import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createJamfPro } from './connector.ts';
import { DEVICE_COMPLIANCE_CHANGE, mapWebhookRecord } from './mapping.ts';

/** Jamf Pro: compliance from membership of non-compliant smart computer groups, and mobile device enrollment. */
export const jamfProConnector = defineConnector({
  manifest: {
    id: 'jamf-pro',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Jamf Pro',
    description:
      'Receives Jamf Pro webhooks (JSON or XML) and emits CAEP device-compliance-change when a computer joins or leaves a configured non-compliant smart group or a mobile device is unenrolled or enrolled again; a scheduled inventory reconciliation catches missed webhooks.',
    emits: [DEVICE_COMPLIANCE_CHANGE],
    capabilities: { webhook: true, poll: true, check: true },
  },
  configSchema,
  examples: [
    {
      title: 'Basic-authenticated webhooks from Jamf Cloud',
      config: {
        url: 'https://acme.jamfcloud.com',
        client_id: 'b9a7f6c2-3d41-4e8f-9a0b-1c2d3e4f5a6b',
        client_secret: '${env:JAMF_CLIENT_SECRET}',
        webhook_auth: { type: 'basic', username: 'ssf-bridge', password: '${env:JAMF_WEBHOOK_PASSWORD}' },
        allowed_networks: ['203.0.113.0/24'],
        non_compliant_groups: ['Non-compliant Macs', 57],
      },
    },
    {
      title: 'Jamf Pro on premises, read with a user account (no API clients)',
      config: {
        url: 'https://jamf.example.com:8443',
        username: 'ssf-bridge-api',
        password: '${env:JAMF_API_PASSWORD}',
        webhook_auth: { type: 'header', name: 'X-Jamf-Hook-Token', value: '${env:JAMF_WEBHOOK_TOKEN}' },
        non_compliant_groups: ['FileVault disabled'],
      },
    },
  ],
  map: (record, config, state) => mapWebhookRecord(record, config, state),
  create: createJamfPro,
});
