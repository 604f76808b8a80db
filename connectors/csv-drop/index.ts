import { defineConnector } from '../../core/plugin-api/index.ts';
import { configSchema } from './config.ts';
import { createCsvDrop } from './connector.ts';
import { mapExport, stateSchema } from './mapping.ts';

/** CSV drop: HR exports dropped in a folder, diffed against the previous one. */
export const csvDropConnector = defineConnector({
  manifest: {
    id: 'csv-drop',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'beta',
    displayName: 'CSV drop (HR exports)',
    description:
      'Watches a folder for CSV exports from any HR system, processes each file once, diffs it against the previous snapshot and turns leavers, rehires and email changes into RISC and CAEP events, refusing exports that would fire a mass leaver event.',
    emits: [
      'risc.account-disabled',
      'caep.session-revoked',
      'risc.account-enabled',
      'risc.account-purged',
      'risc.identifier-changed',
    ],
    capabilities: { poll: true, check: true },
    conformance: {
      skip: {
        'delivery.skips-malformed':
          'The rejected fixtures are whole CSV files the reader refuses (a row with a field too many); they cannot be served as rows beside the good ones in one drop file.',
        'lifecycle.check':
          'check() tests that the drop folder can be read and written; there are no credentials a remote target could refuse.',
        'delivery.request-timeout':
          'csv-drop reads files from a local folder and makes no HTTP requests, so there is no request deadline to check.',
        'delivery.abort-signal':
          'csv-drop reads files from a local folder and makes no HTTP requests, so there is no request to leave hanging.',
      },
    },
  },
  configSchema,
  stateSchema,
  examples: [
    {
      title: 'Nightly export from the HR system',
      config: { folder: '/var/lib/ssf-bridge/hr-drop', timezone: 'America/New_York' },
    },
    {
      title: 'Semicolon-separated export with its own column names; missing rows are leavers',
      config: {
        folder: '/srv/exports/hr',
        pattern: 'employees_*.csv',
        delimiter: ';',
        columns: {
          employee_id: 'Personnel No',
          email: 'E-Mail',
          status: 'State',
          effective_date: 'Valid From',
        },
        status_values: { active: ['aktiv'], terminated: ['ausgetreten'], leave: ['ruhend'] },
        missing_rows: 'terminate',
        mass_change_guard: { max_ratio: 0.05, min_rows: 5 },
      },
    },
  ],
  map: (record, config, state) => mapExport(record, config, state, new Date()),
  create: createCsvDrop,
});
