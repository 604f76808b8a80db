import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createHibob } from './connector.ts';
import { mapRecord, stateSchema } from './mapping.ts';

/** HiBob: leavers, rehires, deletions and email changes from Bob webhooks v2. */
export const hibobConnector = defineConnector({
  manifest: {
    id: 'hibob',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'HiBob (HR leavers)',
    description:
      'Receives Bob webhooks v2 (employee.left, employee.inactivated, employee.deleted, employee.updated …) verified by Bob-Signature, reads the employee through the Public API (or, webhook-only, works from the deliveries alone), and turns leavers, rehires, deletions and email changes into RISC and CAEP events.',
    emits: [
      'risc.account-disabled',
      'caep.session-revoked',
      'risc.account-enabled',
      'risc.account-purged',
      'risc.identifier-changed',
    ],
    capabilities: { webhook: true },
    conformance: {
      skip: {
        'manifest.capabilities':
          'HiBob pushes webhooks and is never polled; the one scheduled task releases future-dated terminations and purges after retention when they fall due, which the kit counts as polling.',
      },
    },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'Webhooks v2 with a service user',
      config: {
        webhook_secret: '${env:HIBOB_WEBHOOK_SECRET}',
        service_user_id: 'SERVICE-1234',
        service_user_token: '${env:HIBOB_SERVICE_TOKEN}',
        timezone: 'Europe/Berlin',
        subject_format: 'email',
      },
    },
    {
      title: 'Webhooks only, without a service user',
      config: {
        webhook_secret: '${env:HIBOB_WEBHOOK_SECRET}',
        employee_lookup: 'webhook_only',
        timezone: 'Europe/Berlin',
      },
    },
  ],
  map: (record, config, state) => mapRecord(record, config, state, new Date()),
  create: createHibob,
});
