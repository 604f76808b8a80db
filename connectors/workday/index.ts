import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createWorkday } from './connector.ts';
import { mapRecord, stateSchema } from './mapping.ts';

/** Workday: leavers, rehires and identifier changes from a RaaS report or Get_Workers. */
export const workdayConnector = defineConnector({
  manifest: {
    id: 'workday',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'Workday (HR leavers)',
    description:
      'Polls a Workday custom report (RaaS, JSON) or Get_Workers (SOAP, transaction-log windows) and turns terminations, rehires, deletions after retention and work-email changes into RISC and CAEP events; future-dated terminations fire when they take effect.',
    emits: [
      'risc.account-disabled',
      'caep.session-revoked',
      'risc.account-enabled',
      'risc.account-purged',
      'risc.identifier-changed',
    ],
    capabilities: { poll: true },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'RaaS report with an Integration System User',
      config: {
        mode: 'raas',
        base_url: 'https://wd2-impl-services1.workday.com',
        tenant: 'acme',
        auth: { type: 'basic', username: 'ISU_SSF@acme', password: '${env:WORKDAY_ISU_PASSWORD}' },
        raas: { owner: 'ISU_SSF', report: 'SSF_Worker_Status', since_prompt: 'Changed_Since' },
        poll_interval: '15m',
        timezone: 'America/Los_Angeles',
      },
    },
    {
      title: 'Get_Workers (SOAP) with OAuth refresh token',
      config: {
        mode: 'soap',
        base_url: 'https://wd2-impl-services1.workday.com',
        tenant: 'acme',
        auth: {
          type: 'oauth_refresh_token',
          client_id: 'NzQ2ZTA0YjQtYjI4OS00',
          client_secret: '${env:WORKDAY_CLIENT_SECRET}',
          refresh_token: '${env:WORKDAY_REFRESH_TOKEN}',
        },
        soap: { version: 'v43.0', page_size: 100 },
        purge_after: '30d',
      },
    },
  ],
  map: (record, config, state) => mapRecord(record, config, state, new Date()),
  create: createWorkday,
});
