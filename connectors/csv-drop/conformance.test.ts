import { mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';
import { fileURLToPath } from 'node:url';
import { loadFixtures } from '../../core/plugin-api/testing/index.ts';
import { parseCsv } from './csv.ts';
import { csvDropConnector } from './index.ts';

const folder = mkdtempSync(join(tmpdir(), 'csv-drop-conformance-'));
afterAll(() => rmSync(folder, { recursive: true, force: true }));
const fixtures = loadFixtures(fileURLToPath(new URL('./fixtures/', import.meta.url))).fixtures;
const ignoredExports = new Set(fixtures.filter((f) => 'ignored' in f.expect).map((f) => f.input));
/** The first export's leaver from decades ago (one row) is recorded without events: counted backfilled. */
const withOldLeaver = fixtures.find((f) => f.name === 'backfill-old-leaver-on-first-export')?.input;
const served = { files: 0, rows: 0, ignoredRows: 0, backfilledRows: 0 };

/** "Serves" the fixture exports the way an HR system does: as files dropped in the folder. */
function serve(_server: unknown, records: unknown[]): void {
  for (const entry of readdirSync(folder)) rmSync(join(folder, entry), { recursive: true, force: true });
  const settled = new Date(Date.now() - 60_000);
  served.files = 0;
  served.rows = 0;
  served.ignoredRows = 0;
  served.backfilledRows = 0;
  records.forEach((record, i) => {
    if (typeof record !== 'string') return;
    const file = join(folder, `hr-export-${String(i).padStart(3, '0')}.csv`);
    writeFileSync(file, record);
    utimesSync(file, settled, settled);
    served.files += 1;
    const rows = parseCsv(record).rows.length;
    served.rows += rows;
    // Rows of exports the fixtures expect to be ignored change nothing; in the others one row
    // each gives events, and the first export's old leaver is recorded without (backfilled).
    const backfilled = record === withOldLeaver ? 1 : 0;
    served.backfilledRows += backfilled;
    served.ignoredRows += (ignoredExports.has(record) ? rows : rows - 1) - backfilled;
  });
}

// settle_time 0: the kit drops each export whole, as an atomic rename does, so one scan takes it.
runConnectorConformance(csvDropConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: { folder, settle_time: '0ms', timezone: 'America/New_York', backfill_window: '9000d' },
  invalidConfigs: [
    { config: {}, error: 'folder' },
    { config: { folder, delimiter: ';;' }, error: 'delimiter' },
    { config: { folder, mass_change_guard: { max_ratio: 0 } }, error: 'max_ratio' },
  ],
  poll: { serve, task: 'scan' },
  metrics: [
    { name: 'csv_drop_files_total', labels: { outcome: 'processed' }, value: () => served.files },
    { name: 'csv_drop_files_total', labels: { outcome: 'failed' }, value: () => 0 },
    { name: 'csv_drop_files_total', labels: { outcome: 'duplicate' }, value: () => 0 },
    { name: 'csv_drop_rows_total', value: () => served.rows },
    { name: 'csv_drop_rows_total', labels: { outcome: 'ignored' }, value: () => served.ignoredRows },
    { name: 'csv_drop_rows_total', labels: { outcome: 'backfilled' }, value: () => served.backfilledRows },
    { name: 'csv_drop_events_total', value: (t) => t.events },
  ],
});
