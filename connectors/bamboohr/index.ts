import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createBambooHr } from './connector.ts';
import { mapRecord, stateSchema } from './mapping.ts';

/** BambooHR: leavers, rehires, deletions and work-email changes from webhooks or polling. */
export const bamboohrConnector = defineConnector({
  manifest: {
    id: 'bamboohr',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'BambooHR (HR leavers)',
    description:
      'Receives BambooHR event-based webhooks (HMAC-SHA256 verified) and/or polls /employees/changed, fetches each employee, and turns terminations, rehires, deletions and work-email changes into RISC and CAEP events; future-dated terminations fire when they take effect.',
    emits: [
      'risc.account-disabled',
      'caep.session-revoked',
      'risc.account-enabled',
      'risc.account-purged',
      'risc.identifier-changed',
    ],
    capabilities: { webhook: true, poll: true, check: true },
    conformance: {
      skip: {
        'delivery.skips-malformed':
          'The rejected fixtures are webhook bodies and employee records without an id; the fake API serves records by employee id, so it cannot serve them to a poll.',
        'delivery.refuses-malformed':
          'A BambooHR webhook names employee ids only; the employee record is read from the API after the signature is checked. The malformed records of the fixtures are API answers no webhook body can carry; a malformed webhook body is refused with 400 in bamboohr.test.ts.',
      },
    },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'Event-based webhooks',
      config: {
        company_domain: 'acme',
        api_key: '${env:BAMBOOHR_API_KEY}',
        webhook_private_key: '${env:BAMBOOHR_WEBHOOK_KEY}',
        timezone: 'Europe/London',
      },
    },
    {
      title: 'Polling /employees/changed every 10 minutes',
      config: {
        company_domain: 'acme',
        api_key: '${env:BAMBOOHR_API_KEY}',
        mode: 'poll',
        poll_interval: '10m',
        purge_after: '90d',
      },
    },
    {
      title: 'Polling with an OAuth app instead of an API key',
      config: {
        company_domain: 'acme',
        oauth: {
          client_id: '4b7c1e0a-bamboo-app',
          client_secret: '${env:BAMBOOHR_CLIENT_SECRET}',
          refresh_token: '${env:BAMBOOHR_REFRESH_TOKEN}',
        },
        mode: 'poll',
      },
    },
  ],
  map: (record, config, state) => mapRecord(record, config, state, new Date()),
  create: createBambooHr,
});
