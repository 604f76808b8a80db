import { fileURLToPath } from 'node:url';
import {
  loadFixtures,
  runConnectorConformance,
  type MockServer,
} from '../../core/plugin-api/testing/index.ts';
import { workdayConnector } from './index.ts';

const REPORT_PATH = '/ccx/service/customreport2/acme/ISU_SSF/SSF_Worker_Status';
const served = { mapped: 0, ignored: 0, malformed: 0 };
/** Whether each fixture input maps to events, is ignored or is malformed, by its JSON. */
const outcomeOf = new Map(
  loadFixtures(fileURLToPath(new URL('./fixtures/', import.meta.url))).fixtures.map((f) => [
    JSON.stringify(f.input),
    'events' in f.expect ? 'mapped' : 'rejected' in f.expect ? 'malformed' : 'ignored',
  ]),
);

/** The report the mock serves: every fixture row that is a RaaS row, one row per employee. */
function serve(server: MockServer, records: unknown[]): void {
  const rows = new Map<string, unknown>();
  served.mapped = 0;
  served.ignored = 0;
  served.malformed = 0;
  for (const record of records) {
    if (typeof record !== 'object' || record === null) continue; // Get_Workers XML: SOAP mode only
    const entries = (record as { Report_Entry?: unknown[] }).Report_Entry ?? [record];
    const outcome = outcomeOf.get(JSON.stringify(record));
    for (const row of entries) {
      const id = (row as { Employee_ID?: string }).Employee_ID;
      if (id === undefined || rows.has(id)) continue;
      rows.set(id, row);
      if (outcome === 'mapped') served.mapped += 1;
      else if (outcome === 'malformed') served.malformed += 1;
      else served.ignored += 1;
    }
  }
  server.on('GET', REPORT_PATH, () => ({ body: { Report_Entry: [...rows.values()] } }));
}

runConnectorConformance(workdayConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    mode: 'raas',
    base_url: server.url,
    tenant: 'acme',
    auth: { type: 'basic', username: 'ISU_SSF@acme', password: 'conformance-isu-password-31' },
    raas: { owner: 'ISU_SSF', report: 'SSF_Worker_Status' },
    timezone: 'America/Los_Angeles',
    backfill_window: '9000d',
    hr_id_issuer: 'https://wd2-impl-services1.workday.com/acme',
  }),
  invalidConfigs: [
    {
      config: {
        mode: 'raas',
        base_url: 'https://wd.example.com',
        tenant: 'acme',
        auth: { type: 'basic', username: 'u', password: 'p' },
      },
      error: 'raas',
    },
    {
      config: {
        mode: 'soap',
        base_url: 'not a url',
        tenant: 'acme',
        auth: { type: 'basic', username: 'u', password: 'p' },
      },
      error: 'base_url',
    },
    {
      config: {
        mode: 'soap',
        base_url: 'https://wd.example.com',
        tenant: 'acme',
        auth: { type: 'basic', username: 'u', password: 'p' },
        timezone: 'Mars/Olympus',
      },
      error: 'IANA time zone',
    },
  ],
  poll: { serve, task: 'poll' },
  metrics: [
    { name: 'workday_records_total', labels: { outcome: 'mapped' }, value: () => served.mapped },
    { name: 'workday_records_total', labels: { outcome: 'ignored' }, value: () => served.ignored },
    { name: 'workday_records_total', labels: { outcome: 'malformed' }, value: () => served.malformed },
    { name: 'workday_events_total', value: (t) => t.events },
  ],
});
