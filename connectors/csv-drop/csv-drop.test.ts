import {
  appendFileSync,
  closeSync,
  existsSync,
  futimesSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  renameSync,
  truncateSync,
  utimesSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RetryableError, type InboundConnector } from '../../core/plugin-api/index.ts';
import { globToRegExp, MAX_EXPORT_BYTES } from './connector.ts';
import { parseCsv } from './csv.ts';
import { csvDropConnector } from './index.ts';
import { mapExport, type CsvDropState } from './mapping.ts';
import {
  createTestContext,
  simulateFixtures,
  startBridge,
  type TestContext,
} from '../_shared/hr-test-support.ts';

describe('CSV reader (RFC 4180)', () => {
  it('reads quoted fields with delimiters, doubled quotes and line breaks, CRLF and a byte order mark', () => {
    const table = parseCsv('\ufeffid,name,note\r\n1,"Okoye, Adaeze","said ""bye"";\r\nsee you"\r\n2,,""\r\n');
    expect(table.header).toEqual(['id', 'name', 'note']);
    expect(table.rows).toEqual([
      ['1', 'Okoye, Adaeze', 'said "bye";\r\nsee you'],
      ['2', '', ''],
    ]);
    expect(table.lines).toEqual([2, 4]);
  });

  it('skips blank lines, accepts a missing final line break and other delimiters', () => {
    expect(parseCsv('a;b\n\n1;2\n\n3;4', ';').rows).toEqual([
      ['1', '2'],
      ['3', '4'],
    ]);
    expect(parseCsv('a\n""\n').rows).toEqual([['']]);
    // What spreadsheets leave behind: rows of delimiters only, a last line of spaces.
    expect(parseCsv('a,b,c\n1,2,3\n,,\n , ,\n   ').rows).toEqual([['1', '2', '3']]);
    // A quoted empty field is a value, not a blank line.
    expect(parseCsv('a,b\n"",\n').rows).toEqual([['', '']]);
  });

  it('refuses what it cannot read unambiguously, naming the line', () => {
    expect(() => parseCsv('a,b\n1,"2\n3,4\n')).toThrow('line 2: a quoted field is not closed');
    expect(() => parseCsv('a,b\n1,x"y"\n')).toThrow('line 2: a quote inside an unquoted field');
    expect(() => parseCsv('a,b\n1,"2"x\n')).toThrow('line 2: text after a closing quote');
    expect(() => parseCsv('a,b\n1,2\n3\n')).toThrow('line 3: 1 fields, but the header has 2');
    expect(() => parseCsv('a,A\n1,2\n')).toThrow('names column "A" twice');
    expect(() => parseCsv('')).toThrow('the file is empty');
    expect(() => parseCsv('a,b', '"')).toThrow('cannot be a CSV delimiter');
  });

  it('refuses in the config a delimiter no export can be read with, instead of failing on every file', () => {
    for (const delimiter of ['"', '\n', '\r']) {
      const parsed = csvDropConnector.configSchema.safeParse({ folder: '/srv/hr-drop', delimiter });
      expect(parsed.success, JSON.stringify(delimiter)).toBe(false);
    }
    expect(csvDropConnector.configSchema.safeParse({ folder: '/srv/hr-drop', delimiter: ';' }).success).toBe(
      true,
    );
  });

  it('matches file names with * and ? wildcards, ignoring case', () => {
    const re = globToRegExp('employees_*.csv');
    expect(re.test('employees_2026-11-29.CSV')).toBe(true);
    expect(re.test('employees_2026.csv.tmp')).toBe(false);
    expect(globToRegExp('hr-?.csv').test('hr-1.csv')).toBe(true);
    expect(globToRegExp('a.b').test('axb')).toBe(false);
  });
});

interface Step {
  input: unknown;
  expect: { events?: unknown[]; ignored?: string; rejected?: string };
}

describe('csv-drop mapping sequences (state carried between exports, as ssf-bridge simulate does)', () => {
  const dir = new URL('./fixtures/sequences/', import.meta.url);
  const now = new Date('2026-11-29T12:00:00.000Z');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const sequence = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as {
      description: string;
      config?: Record<string, unknown>;
      steps: Step[];
    };
    it(`${file}: ${sequence.description}`, () => {
      const config = csvDropConnector.configSchema.parse({
        folder: '/unused',
        timezone: 'America/New_York',
        backfill_window: '9000d',
        ...sequence.config,
      });
      let state: CsvDropState | undefined;
      sequence.steps.forEach((step, i) => {
        if (step.expect.rejected) {
          expect(() => mapExport(step.input, config, state, now), `step ${i + 1}`).toThrow(
            step.expect.rejected,
          );
          return;
        }
        const result = mapExport(step.input, config, state, now);
        state = result.state;
        if (step.expect.ignored) {
          expect(result.events, `step ${i + 1}`).toEqual([]);
          expect(result.ignored, `step ${i + 1}`).toContain(step.expect.ignored);
        } else {
          expect(JSON.parse(JSON.stringify(result.events)), `step ${i + 1}`).toEqual(step.expect.events);
        }
      });
    });
  }
});

// ---------------------------------------------------------------------------------------------

const HEADER = 'employee_id,email,status,effective_date,termination_date\n';
const NOW = '2026-11-29T14:00:00.000Z';
let folder: string;

beforeEach(() => {
  folder = mkdtempSync(join(tmpdir(), 'csv-drop-test-'));
});
afterEach(() => rmSync(folder, { recursive: true, force: true }));

/**
 * Drops a file whose last change lies `ageMs` in the past. It is written and dated under another
 * name, then renamed into place: a running bridge scanning the folder may take it at once.
 */
function drop(name: string, text: string | Buffer, ageMs = 60_000, dir = folder): string {
  const file = join(dir, name);
  const staging = `${file}.staging`;
  writeFileSync(staging, text);
  const at = new Date(Date.now() - ageMs);
  utimesSync(staging, at, at);
  renameSync(staging, file);
  return file;
}

function list(sub: string): string[] {
  const dir = join(folder, sub);
  return existsSync(dir) ? readdirSync(dir).sort() : [];
}

async function started(
  config: Record<string, unknown> = {},
  tc = createTestContext<CsvDropState>({ now: NOW }),
) {
  const connector: InboundConnector = csvDropConnector.create(
    tc.ctx,
    csvDropConnector.configSchema.parse({ folder, settle_time: '5s', timezone: 'UTC', ...config }),
  );
  await connector.start(tc.ctx.signal);
  return { connector, tc };
}

/**
 * Scans as the schedule does until the files dropped so far are taken: a file is claimed once a
 * second scan finds it as the first did.
 */
async function scanTwice(tc: TestContext<CsvDropState>): Promise<void> {
  await tc.runTask('scan');
  await tc.runTask('scan');
}

const baseline = Array.from(
  { length: 30 },
  (_, i) => `${1000 + i},p${i}@example.com,active,2022-01-01,\n`,
).join('');

describe('csv-drop folder processing', () => {
  it('applies a settled export once, commits the snapshot with the events, and moves it to processed/', async () => {
    drop(
      'hr_2026-11-29.csv',
      `${HEADER}2001,ana@example.com,terminated,2026-11-27,\n2002,ben@example.com,active,2020-01-01,\n`,
    );
    drop('hr_2026-11-29.csv.part', 'being written');
    const { connector, tc } = await started({ pattern: 'hr_*.csv' });
    expect(tc.tasks.map((t) => t.name)).toEqual(['scan', 'release']);
    await scanTwice(tc);

    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '2001:terminated:2026-11-27'],
      ['caep.session-revoked', '2001:terminated:2026-11-27'],
    ]);
    expect(list('processed')).toEqual(['2026-11-29T14-00-00-000Z_hr_2026-11-29.csv']);
    expect(readdirSync(folder).sort()).toEqual([
      'failed',
      'hr_2026-11-29.csv.part',
      'processed',
      'processing',
    ]);
    const state = tc.checkpoints.get('default') as CsvDropState;
    expect(state.rows).toBe(2);
    expect(state.files).toHaveLength(1);
    expect(state.workers['2002']).toEqual({ email: 'ben@example.com', status: 'active' });
    expect(tc.counter('csv_drop_rows_total', { outcome: 'mapped' })).toBe(1);
    expect(tc.counter('csv_drop_rows_total', { outcome: 'ignored' })).toBe(1);
    expect(tc.directSets).toBe(0);

    // The same export dropped again is recognised by its content: moved, nothing sent.
    drop(
      'hr_2026-11-30.csv',
      `${HEADER}2001,ana@example.com,terminated,2026-11-27,\n2002,ben@example.com,active,2020-01-01,\n`,
    );
    await scanTwice(tc);
    expect(tc.events()).toHaveLength(2);
    expect(tc.counter('csv_drop_files_total', { outcome: 'duplicate' })).toBe(1);
    await connector.stop(100);
  });

  it('waits until a file has settled: unchanged for settle_time, and the same on two scans in a row', async () => {
    drop('fresh.csv', `${HEADER}2011,cy@example.com,terminated,2026-11-20,\n`, 0);
    const { connector, tc } = await started();
    await tc.runTask('scan');
    await tc.runTask('scan');
    expect(tc.emits).toEqual([]);
    expect(readdirSync(folder)).toContain('fresh.csv');
    const at = new Date(Date.now() - 10_000);
    utimesSync(join(folder, 'fresh.csv'), at, at);
    // Its mtime changed since the scan before: not the same file as then yet.
    await tc.runTask('scan');
    expect(tc.emits).toEqual([]);
    await tc.runTask('scan');
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('refuses a truncated export into failed/ with a reason file, and applies nothing', async () => {
    const { connector, tc } = await started({ missing_rows: 'terminate' });
    drop('a.csv', HEADER + baseline);
    await scanTwice(tc);
    const before = structuredClone(tc.checkpoints.get('default'));
    drop('b.csv', HEADER + baseline.split('\n').slice(0, 8).join('\n') + '\n');
    await scanTwice(tc);
    const failed = list('failed');
    expect(failed).toEqual(['2026-11-29T14-00-00-000Z_b.csv', '2026-11-29T14-00-00-000Z_b.csv.reason.txt']);
    expect(readFileSync(join(folder, 'failed', failed[1]!), 'utf8')).toContain(
      'the export has 8 rows where the previous one had 30; it looks truncated',
    );
    expect(tc.checkpoints.get('default')).toEqual(before);
    expect(tc.events()).toEqual([]);
    expect(tc.statuses.at(-1)).toMatchObject({ state: 'recoverable_error' });

    // The next complete export is fine, and clears the error.
    drop('c.csv', HEADER + baseline.replace('1003,p3@example.com,active', '1003,p3@example.com,terminated'));
    await scanTwice(tc);
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      '1003:terminated:2022-01-01',
      '1003:terminated:2022-01-01',
    ]);
    expect(tc.successes).toBeGreaterThan(0);
    await connector.stop(100);
  });

  it('refuses an older export dropped again that would make many leavers active at once', async () => {
    const { connector, tc } = await started({ mass_change_guard: { max_ratio: 0.5, min_rows: 5 } });
    const monday = HEADER + baseline;
    const leavers = [0, 1, 2, 3, 4, 5, 6, 7];
    const tuesday =
      HEADER +
      leavers.reduce(
        (text, i) =>
          text.replace(`${1000 + i},p${i}@example.com,active`, `${1000 + i},p${i}@example.com,terminated`),
        baseline,
      );
    drop('a_monday.csv', monday);
    await scanTwice(tc);
    drop('b_tuesday.csv', tuesday);
    await scanTwice(tc);
    expect(tc.events()).toHaveLength(16);
    // Monday's export again: 8 of the 8 leavers would be active again.
    drop('c_monday_again.csv', monday);
    await scanTwice(tc);
    const reason = list('failed').find((f) => f.endsWith('c_monday_again.csv.reason.txt')) as string;
    expect(readFileSync(join(folder, 'failed', reason), 'utf8')).toContain(
      '8 of 8 leavers would be active again at once (more than 50%; an older export dropped again?)',
    );
    expect(tc.events()).toHaveLength(16);
    expect(tc.events().some((e) => e.type === 'risc.account-enabled')).toBe(false);
    await connector.stop(100);
  });

  it('applies an export of changes only after a full one when missing rows are ignored', async () => {
    const { connector, tc } = await started({ missing_rows: 'ignore' });
    drop('full.csv', HEADER + baseline);
    await scanTwice(tc);
    drop(
      'delta.csv',
      `${HEADER}1003,p3@example.com,terminated,2026-11-27,\n1004,p4@example.com,active,2022-01-01,\n`,
    );
    await scanTwice(tc);
    expect(list('failed')).toEqual([]);
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '1003:terminated:2026-11-27'],
      ['caep.session-revoked', '1003:terminated:2026-11-27'],
    ]);
    await connector.stop(100);
  });

  it('applies an export equal to an older one: the employees may have changed back to it', async () => {
    const { connector, tc } = await started();
    const monday = `${HEADER}2041,bo@example.com,terminated,2026-11-23,\n`;
    drop('mon.csv', monday);
    await scanTwice(tc);
    drop('tue.csv', `${HEADER}2041,bo@example.com,active,2020-01-01,\n`);
    await scanTwice(tc);
    // The termination is entered again: Wednesday's export has Monday's bytes.
    drop('wed.csv', monday);
    await scanTwice(tc);
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '2041:terminated:2026-11-23'],
      ['caep.session-revoked', '2041:terminated:2026-11-23'],
      ['risc.account-enabled', '2041:enabled:after:2026-11-23'],
      ['risc.account-disabled', '2041:terminated:2026-11-23:1'],
      ['caep.session-revoked', '2041:terminated:2026-11-23:1'],
    ]);
    expect(tc.counter('csv_drop_files_total', { outcome: 'duplicate' })).toBe(0);
    await connector.stop(100);
  });

  it('moves a file too large to read to failed/ and goes on with the exports after it', async () => {
    const big = drop('a_huge.csv', HEADER, 120_000);
    // Sparse: 3 GiB on paper (more than Node reads into one buffer), nothing on disk.
    truncateSync(big, 3 * 1024 ** 3);
    utimesSync(big, new Date(Date.now() - 120_000), new Date(Date.now() - 120_000));
    drop('b_next.csv', `${HEADER}2001,ana@example.com,terminated,2026-11-27,\n`);
    const { connector, tc } = await started();
    await scanTwice(tc);
    const reason = list('failed').find((f) => f.endsWith('a_huge.csv.reason.txt')) as string;
    expect(readFileSync(join(folder, 'failed', reason), 'utf8')).toContain(
      `the file holds ${3 * 1024 ** 3} bytes, more than the ${MAX_EXPORT_BYTES} an export may hold; split it`,
    );
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    expect(list('processing')).toEqual([]);
    await connector.stop(100);
  });

  it('refuses a file that is not UTF-8 or not valid CSV', async () => {
    drop(
      'latin1.csv',
      Buffer.from(
        `${HEADER}2020,ana@example.com,active,2020-01-01,\n2021,jos\xe9@example.com,active,2020-01-01,\n`,
        'latin1',
      ),
    );
    drop('broken.csv', `${HEADER}2022,"dee@example.com,active,2020-01-01,\n`);
    const { connector, tc } = await started();
    await scanTwice(tc);
    const reasons = list('failed')
      .filter((f) => f.endsWith('.reason.txt'))
      .map((f) => readFileSync(join(folder, 'failed', f), 'utf8'));
    // The header is line 1: the second row, line 3, holds the Latin-1 é.
    expect(reasons.join('\n')).toContain(
      'the file is not UTF-8 text: line 3 is not (save the export as UTF-8)',
    );
    expect(reasons.join('\n')).toContain('a quoted field is not closed');
    expect(tc.counter('csv_drop_files_total', { outcome: 'failed' })).toBe(2);
    await connector.stop(100);
  });

  it('leaves the file in processing/ when the outbox is full, and finishes it on the next scan', async () => {
    drop('x.csv', `${HEADER}2031,eve@example.com,terminated,2026-11-28,\n`);
    const { connector, tc } = await started();
    tc.failNextEmit();
    await expect(scanTwice(tc)).rejects.toBeInstanceOf(RetryableError);
    expect(list('processing')).toEqual(['x.csv']);
    expect(tc.checkpoints.size).toBe(0);
    // Claimed already: the next scan takes it at once.
    await tc.runTask('scan');
    expect(list('processing')).toEqual([]);
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      '2031:terminated:2026-11-28',
      '2031:terminated:2026-11-28',
    ]);
    await connector.stop(100);
  });

  it('after a crash between commit and move, finishes the move without sending the events again', async () => {
    const text = `${HEADER}2041,fay@example.com,terminated,2026-11-28,\n`;
    drop('y.csv', text);
    const first = await started();
    await scanTwice(first.tc);
    await first.connector.stop(100);
    // Put the file back into processing/, as if the process died right after the commit.
    const processed = list('processed')[0]!;
    mkdirSync(join(folder, 'processing'), { recursive: true });
    drop('y.csv', readFileSync(join(folder, 'processed', processed)), 60_000, join(folder, 'processing'));

    const tc: TestContext<CsvDropState> = createTestContext({ now: NOW, checkpoints: first.tc.checkpoints });
    const second = await started({}, tc);
    await tc.runTask('scan');
    expect(tc.emits).toEqual([]);
    expect(list('processing')).toEqual([]);
    expect(tc.counter('csv_drop_files_total', { outcome: 'duplicate' })).toBe(1);
    await second.connector.stop(100);
  });

  it('fires a future-dated termination when it takes effect, after a restart', async () => {
    drop('z.csv', `${HEADER}2051,gus@example.com,active,2020-01-01,2026-12-01\n`);
    const first = await started();
    await scanTwice(first.tc);
    expect(first.tc.events()).toEqual([]);
    await first.connector.stop(100);
    const tc: TestContext<CsvDropState> = createTestContext({
      now: '2026-12-01T00:00:00.000Z',
      checkpoints: first.tc.checkpoints,
    });
    const second = await started({}, tc);
    await tc.runTask('release');
    expect(tc.events().map((e) => [e.type, e.occurredAt])).toEqual([
      ['risc.account-disabled', '2026-12-01T00:00:00.000Z'],
      ['caep.session-revoked', '2026-12-01T00:00:00.000Z'],
    ]);
    await second.connector.stop(100);
  });

  it('notices a dropped file through the folder watcher, without waiting for the next scheduled scan', async () => {
    const { connector, tc } = await started({ settle_time: '0ms' });
    await tc.runTask('scan'); // creates the sub-folders
    drop('w.csv', `${HEADER}2061,hal@example.com,terminated,2026-11-28,\n`);
    // The watcher's scan finds it, and a second one soon after finds it the same.
    for (let i = 0; i < 250 && tc.events().length === 0; i += 1) await delay(20);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('checks that the folder can be read and written', async () => {
    const { connector } = await started();
    expect(await connector.check!(new AbortController().signal)).toMatchObject({ ok: true });
    const missing = csvDropConnector.create(
      createTestContext<CsvDropState>().ctx,
      csvDropConnector.configSchema.parse({ folder: join(folder, 'does-not-exist') }),
    );
    expect(await missing.check!(new AbortController().signal)).toMatchObject({ ok: false });
    await connector.stop(100);
  });
});

const LEAVER = ['risc.account-disabled', 'caep.session-revoked'];

function ids(tc: TestContext<CsvDropState>): Array<[string, string]> {
  return tc.events().map((e) => [e.type, e.sourceRecordId]);
}

function reasonOf(file: string): string {
  const reason = list('failed').find((f) => f.endsWith(`${file}.reason.txt`));
  return reason === undefined ? '' : readFileSync(join(folder, 'failed', reason), 'utf8');
}

describe('csv-drop leavers: undated, entered late, without an email; rehires dated ahead', () => {
  it('refuses an export whose terminated rows have no date, naming the lines: a first export cannot send old leavers as today’s', async () => {
    const { connector, tc } = await started();
    let csv = HEADER;
    for (let i = 0; i < 4700; i += 1) csv += `${10000 + i},e${i}@example.com,active,2020-01-01,\n`;
    for (let i = 4700; i < 5000; i += 1) csv += `${10000 + i},e${i}@example.com,terminated,,\n`;
    drop('first.csv', csv);
    await scanTwice(tc);
    expect(tc.events()).toEqual([]);
    expect(tc.checkpoints.size).toBe(0);
    // The header is line 1: the first leaver, row 4701, is on line 4702.
    expect(reasonOf('first.csv')).toContain(
      '300 invalid rows: line 4702: effective_date is empty on a terminated row (give the date the termination took effect); line 4703:',
    );
    await connector.stop(100);
  });

  it('logs and counts the old leavers the first export records without events', async () => {
    const { connector, tc } = await started({ backfill_window: '30d' });
    drop(
      'first.csv',
      HEADER +
        '4001,al@example.com,terminated,2024-03-01,\n' +
        // effective_date empty, termination_date given: dated, so accepted.
        '4002,bea@example.com,terminated,,2023-06-30\n' +
        '4003,cy@example.com,terminated,2025-01-31,2025-01-31\n' +
        '4004,dee@example.com,terminated,2026-11-20,\n' +
        '4005,eve@example.com,active,2021-01-01,\n',
    );
    await scanTwice(tc);
    expect(ids(tc)).toEqual([
      ['risc.account-disabled', '4004:terminated:2026-11-20'],
      ['caep.session-revoked', '4004:terminated:2026-11-20'],
    ]);
    expect(tc.counter('csv_drop_rows_total', { outcome: 'backfilled' })).toBe(3);
    expect(tc.counter('csv_drop_rows_total', { outcome: 'mapped' })).toBe(1);
    expect(tc.counter('csv_drop_rows_total', { outcome: 'ignored' })).toBe(1);
    expect(tc.logs).toContainEqual({
      level: 'info',
      msg: 'recorded 3 leaver(s) seen for the first time, whose termination took effect before backfill_window (or has no date), without events',
      fields: {
        employees: 3,
        backfill_window_ms: 30 * 86_400_000,
        examples: ['4001', '4002', '4003'],
        file: 'first.csv',
        first_export: true,
      },
    });
    await connector.stop(100);
  });

  it('sends a termination entered late that a later export of changes brings up, however old its date', async () => {
    const tc = createTestContext<CsvDropState>({ now: '2026-10-01T12:00:00.000Z' });
    const { connector } = await started({ missing_rows: 'ignore', backfill_window: '30d' }, tc);
    // Day 1: the first export of changes lists one new hire.
    drop('day001.csv', `${HEADER}1,ana@example.com,active,2026-09-01,\n`);
    await scanTwice(tc);
    // Day 60: HR enters, late, the termination of employee 2 (never changed since go-live),
    // dated 40 days back.
    tc.clock.set(NOW);
    drop('day060.csv', `${HEADER}2,ben@example.com,terminated,2026-10-20,2026-10-20\n`);
    await scanTwice(tc);
    expect(ids(tc)).toEqual([
      ['risc.account-disabled', '2:terminated:2026-10-20'],
      ['caep.session-revoked', '2:terminated:2026-10-20'],
    ]);
    expect(tc.counter('csv_drop_rows_total', { outcome: 'backfilled' })).toBe(0);
    await connector.stop(100);
  });

  it('keeps quiet an old leaver that a later full export (missing_rows: terminate) lists for the first time', async () => {
    const { connector, tc } = await started({ missing_rows: 'terminate', backfill_window: '30d' });
    drop('a.csv', HEADER + baseline);
    await scanTwice(tc);
    // The export's scope grows by a division, with someone who left in 2024.
    drop('b.csv', `${HEADER}${baseline}5001,old@example.com,terminated,2024-05-31,\n`);
    await scanTwice(tc);
    expect(tc.events()).toEqual([]);
    expect(tc.counter('csv_drop_rows_total', { outcome: 'backfilled' })).toBe(1);
    await connector.stop(100);
  });

  it('refuses a later export of changes that would send many never-seen leavers at once', async () => {
    const { connector, tc } = await started({ missing_rows: 'ignore' });
    drop('a.csv', HEADER + baseline);
    await scanTwice(tc);
    // An export of every old leaver dropped by mistake: 12 never seen before, 30 active known.
    const leavers = Array.from(
      { length: 12 },
      (_, i) => `${6000 + i},l${i}@example.com,terminated,2023-03-31,\n`,
    );
    drop('b.csv', HEADER + leavers.join(''));
    await scanTwice(tc);
    expect(tc.events()).toEqual([]);
    expect(reasonOf('b.csv')).toContain(
      '12 employees would be sent as leavers at once: 0 of 30 active ones and 12 never seen before (more than 10%',
    );
    await connector.stop(100);
  });

  it('warns about, counts and flags a leaver row without an email when subject_format is email', async () => {
    const { connector, tc } = await started({ subject_format: 'email' });
    drop(
      'a.csv',
      `${HEADER}3001,ida@example.com,terminated,2026-11-28,\n3002,,terminated,2026-11-27,\n3003,jon@example.com,active,2021-01-01,\n`,
    );
    await scanTwice(tc);
    expect(ids(tc)).toEqual([
      ['risc.account-disabled', '3001:terminated:2026-11-28'],
      ['caep.session-revoked', '3001:terminated:2026-11-28'],
    ]);
    expect(list('processed')).toHaveLength(1);
    expect(tc.counter('csv_drop_rows_total', { outcome: 'no_email' })).toBe(1);
    const message =
      'a.csv: 1 leaver(s) not sent: no usable email, and subject_format is email: line 3 (employee 3002)';
    expect(tc.logs).toContainEqual(expect.objectContaining({ level: 'warn', msg: message }));
    expect(tc.statuses.at(-1)).toEqual({ state: 'recoverable_error', reason: message });
    expect(tc.successes).toBe(0);
    // The email is filled in, and the next export of changes shows the row again: sent then.
    drop('b.csv', `${HEADER}3002,kim@example.com,terminated,2026-11-27,\n`);
    await scanTwice(tc);
    expect(ids(tc).slice(2)).toEqual([
      ['risc.account-disabled', '3002:terminated:2026-11-27'],
      ['caep.session-revoked', '3002:terminated:2026-11-27'],
    ]);
    expect(tc.successes).toBe(1);
    await connector.stop(100);
  });

  it('holds a rehire dated ahead until its day, then sends account-enabled', async () => {
    const { connector, tc } = await started();
    drop('a.csv', `${HEADER}7,dana@example.com,terminated,2026-11-10,2026-11-10\n`);
    await scanTwice(tc);
    expect(tc.events().map((e) => e.type)).toEqual(LEAVER);
    // HR enters her rehire from 4 January: the export shows her active from then.
    drop('b.csv', `${HEADER}7,dana@example.com,active,2027-01-04,\n`);
    await scanTwice(tc);
    drop('c.csv', `${HEADER}7,dana@example.com,active,2027-01-04,\n8,eli@example.com,active,2024-05-01,\n`);
    await scanTwice(tc);
    expect(tc.events()).toHaveLength(2);
    const state = tc.checkpoints.get('default') as CsvDropState;
    expect(state.workers['7']).toMatchObject({ status: 'terminated', date: '2026-11-10' });
    expect(state.pending['7:enable']).toMatchObject({ kind: 'enable', dueAt: '2027-01-04T00:00:00.000Z' });
    tc.clock.set('2027-01-03T23:59:00.000Z');
    await tc.runTask('release');
    expect(tc.events()).toHaveLength(2);
    tc.clock.set('2027-01-04T00:00:00.000Z');
    await tc.runTask('release');
    expect(tc.events().slice(2)).toEqual([
      expect.objectContaining({
        type: 'risc.account-enabled',
        sourceRecordId: '7:enabled:after:2026-11-10',
        occurredAt: '2027-01-04T00:00:00.000Z',
      }),
    ]);
    expect((tc.checkpoints.get('default') as CsvDropState).workers['7']).toMatchObject({
      status: 'active',
      reversals: 1,
    });
    await connector.stop(100);
  });
});

describe('csv-drop rehires dated ahead (mapping, as ssf-bridge simulate runs it)', () => {
  const config = csvDropConnector.configSchema.parse({
    folder: '/unused',
    timezone: 'UTC',
    missing_rows: 'terminate',
  });
  const at = (iso: string) => new Date(iso);

  it('with missing_rows: terminate, drops a held rehire when the next full export no longer lists the employee', () => {
    const everyone = `${HEADER}7,dana@example.com,active,2020-01-01,\n8,eli@example.com,active,2024-05-01,\n`;
    let state = mapExport(everyone, config, undefined, at('2026-11-01T12:00:00Z')).state;
    state = mapExport(
      `${HEADER}7,dana@example.com,terminated,2026-11-10,\n8,eli@example.com,active,2024-05-01,\n`,
      config,
      state,
      at('2026-11-15T12:00:00Z'),
    ).state;
    const held = mapExport(
      `${HEADER}7,dana@example.com,active,2027-01-04,\n8,eli@example.com,active,2024-05-01,\n`,
      config,
      state,
      at('2026-11-29T12:00:00Z'),
    );
    expect(held.events.map((e) => [e.type, e.occurredAt])).toEqual([
      ['risc.account-enabled', '2027-01-04T00:00:00.000Z'],
    ]);
    const gone = mapExport(
      `${HEADER}8,eli@example.com,active,2024-05-01,\n`,
      config,
      held.state,
      at('2026-11-30T12:00:00Z'),
    );
    expect(gone.events).toEqual([]);
    expect(gone.state?.pending).toEqual({});
    expect(gone.state?.workers['7']).toMatchObject({ status: 'terminated', date: '2026-11-10' });
  });
});

describe('csv-drop: a file that cannot be handled, a writer still at work', () => {
  it('moves an export whose stamped name would be too long to processed/ under a shortened name, and goes on', async () => {
    const { connector, tc } = await started();
    const long = `${'employees_full_export_'.repeat(10)}2026-11-29.csv`;
    drop(long, `${HEADER}2001,ana@example.com,terminated,2026-11-27,\n`);
    drop(
      'z_next.csv',
      `${HEADER}2001,ana@example.com,terminated,2026-11-27,\n2002,ben@example.com,terminated,2026-11-28,\n`,
    );
    await scanTwice(tc);
    expect(ids(tc).map(([, id]) => id)).toEqual([
      '2001:terminated:2026-11-27',
      '2001:terminated:2026-11-27',
      '2002:terminated:2026-11-28',
      '2002:terminated:2026-11-28',
    ]);
    const processed = list('processed');
    expect(processed).toHaveLength(2);
    // Room is left for a `.reason.txt` beside it, should it go to failed/.
    for (const name of processed) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255 - 11);
    expect(processed[0]).toMatch(
      /^2026-11-29T14-00-00-000Z_(employees_full_export_)+empl[a-z_]*~[0-9a-f]{8}\.csv$/,
    );
    expect(list('processing')).toEqual([]);
    await connector.stop(100);
  });

  it('moves an export that keeps failing to failed/ with the reason and goes on; held leavers are released meanwhile', async () => {
    const { connector, tc } = await started();
    drop('a.csv', `${HEADER}2051,gus@example.com,active,2020-01-01,2026-12-01\n`);
    await scanTwice(tc);
    tc.clock.set('2026-12-02T00:00:00.000Z');
    // processed/ holds a folder where b.csv would go: every move of it fails.
    mkdirSync(join(folder, 'processed', '2026-12-02T00-00-00-000Z_b.csv', 'x'), { recursive: true });
    drop('b.csv', `${HEADER}2052,hal@example.com,terminated,2026-11-30,\n`);
    drop('c.csv', `${HEADER}2053,ivy@example.com,terminated,2026-12-01,\n`);
    await tc.runTask('scan');
    await expect(tc.runTask('scan')).rejects.toThrow('cannot be moved to processed/');
    // The termination of 1 December, held since a.csv, is released though the scans fail.
    await tc.runTask('release');
    expect(ids(tc).map(([, id]) => id)).toEqual([
      '2052:terminated:2026-11-30',
      '2052:terminated:2026-11-30',
      '2051:terminated:2026-12-01',
      '2051:terminated:2026-12-01',
    ]);
    await expect(tc.runTask('scan')).rejects.toThrow('cannot be moved to processed/');
    // The third failure in a row: b.csv goes to failed/, and c.csv after it is applied.
    await tc.runTask('scan');
    expect(list('failed')).toEqual([
      '2026-12-02T00-00-00-000Z_b.csv',
      '2026-12-02T00-00-00-000Z_b.csv.reason.txt',
    ]);
    expect(reasonOf('b.csv')).toMatch(
      /the export is applied \(its events are sent\), but cannot be moved to processed\/: EISDIR.* \(failed 3 times\)/,
    );
    expect(ids(tc).slice(4)).toEqual([
      ['risc.account-disabled', '2053:terminated:2026-12-01'],
      ['caep.session-revoked', '2053:terminated:2026-12-01'],
    ]);
    expect(list('processing')).toEqual([]);
    expect(tc.counter('csv_drop_files_total', { outcome: 'failed' })).toBe(1);
    await connector.stop(100);
  });

  const everyone = Array.from(
    { length: 200 },
    (_, i) => `${5000 + i},p${i}@example.com,active,2020-01-01,\n`,
  );

  it('does not claim a stalled writer’s partial export: the file must be the same on two scans in a row', async () => {
    const { connector, tc } = await started({ missing_rows: 'terminate' });
    drop('day1.csv', HEADER + everyone.join(''));
    await scanTwice(tc);
    // Day 2: the HR job writes the same export and stalls after 190 rows, longer than settle_time.
    const path = join(folder, 'day2.csv');
    const fd = openSync(path, 'w');
    writeSync(fd, HEADER + everyone.slice(0, 190).join(''));
    const stalled = new Date(Date.now() - 10_000);
    futimesSync(fd, stalled, stalled);
    await tc.runTask('scan');
    expect(readdirSync(folder)).toContain('day2.csv');
    // The upload goes on and ends; then the file rests.
    writeSync(fd, everyone.slice(190).join(''));
    closeSync(fd);
    const rested = new Date(Date.now() - 8_000);
    utimesSync(path, rested, rested);
    await tc.runTask('scan');
    expect(readdirSync(folder)).toContain('day2.csv');
    await tc.runTask('scan');
    expect(list('processed')).toHaveLength(2);
    expect(tc.events()).toEqual([]);
    expect((tc.checkpoints.get('default') as CsvDropState).rows).toBe(200);
    await connector.stop(100);
  });

  it('applies nothing of an export that changed while it was read, and reads it again once it has settled', async () => {
    const { connector, tc } = await started({ missing_rows: 'terminate' });
    drop('day1.csv', HEADER + everyone.join(''));
    await scanTwice(tc);
    // Day 2: the writer stalled long enough for two scans, and goes on into the claimed file
    // while the bridge reads it (here: as the bridge loads its state, after reading the bytes).
    const claimed = join(folder, 'processing', 'day2.csv');
    const get = tc.ctx.checkpoints.get;
    let resumed = false;
    tc.ctx.checkpoints.get = async (name) => {
      if (!resumed && existsSync(claimed)) {
        resumed = true;
        appendFileSync(claimed, everyone.slice(190).join(''));
      }
      return get(name);
    };
    drop('day2.csv', HEADER + everyone.slice(0, 190).join(''));
    await scanTwice(tc);
    expect(resumed).toBe(true);
    expect(tc.events()).toEqual([]);
    expect(list('processing')).toEqual(['day2.csv']);
    expect(tc.counter('csv_drop_files_total', { outcome: 'unsettled' })).toBe(1);
    expect(tc.logs).toContainEqual(
      expect.objectContaining({
        level: 'warn',
        fields: { file: 'day2.csv', bytes_read: expect.any(Number), bytes_now: expect.any(Number) },
      }),
    );
    // Taken again once two scans find it the same, and applied whole: nobody left.
    await tc.runTask('scan');
    expect(list('processing')).toEqual(['day2.csv']);
    const rested = new Date(Date.now() - 8_000);
    utimesSync(claimed, rested, rested);
    await scanTwice(tc);
    expect(list('processing')).toEqual([]);
    expect(tc.events()).toEqual([]);
    expect((tc.checkpoints.get('default') as CsvDropState).rows).toBe(200);
    await connector.stop(100);
  });
});

describe('csv-drop through ssf-bridge simulate (golden)', () => {
  it('prints every fixture event, notes the ignored ones, and stops at a malformed one', async () => {
    const { run, expected, ignored, rejected } = await simulateFixtures(
      'csv-drop',
      { folder: '/unused', timezone: 'America/New_York', backfill_window: '9000d' },
      new URL('./fixtures/', import.meta.url),
    );
    expect(run.events.map(({ txn: _txn, ...rest }) => rest)).toEqual(expected);
    expect(run.events.some((e) => typeof e.scheduled_for === 'string')).toBe(true);
    for (const reason of ignored) expect(run.stderr).toContain(reason);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(rejected[0]);
  }, 60_000);
});

describe('csv-drop in a running bridge', () => {
  it('turns a dropped export into one account-disabled and one session-revoked per destination', async () => {
    const data = mkdtempSync(join(tmpdir(), 'csv-drop-e2e-'));
    const bridge = await startBridge(
      {
        inbound: [
          {
            id: 'hr-exports',
            connector: 'csv-drop',
            config: { folder, scan_interval: '200ms', settle_time: '0ms', subject_format: 'email' },
          },
        ],
        outbound: [
          { id: 'okta', connector: 'log', config: { audience: 'https://acme.okta.example' } },
          { id: 'zoom', connector: 'log', config: { audience: 'https://zoom.example' } },
        ],
        routes: [{ from: ['hr-exports'], to: ['okta', 'zoom'] }],
      },
      data,
    );
    try {
      drop(
        'employees.csv',
        `${HEADER}3001,ida@example.com,terminated,2026-11-28,\n3002,jon@example.com,active,2021-01-01,\n`,
      );
      const sets = await bridge.waitFor(4);
      await delay(600);
      expect(bridge.delivered()).toHaveLength(4);
      expect(sets.map((s) => `${s.aud} ${s.type.split('/').pop()}`).sort()).toEqual([
        'https://acme.okta.example account-disabled',
        'https://acme.okta.example session-revoked',
        'https://zoom.example account-disabled',
        'https://zoom.example session-revoked',
      ]);
      expect(list('processed')).toHaveLength(1);
    } finally {
      await bridge.stop();
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
