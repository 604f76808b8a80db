import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  renameSync,
  truncateSync,
  utimesSync,
  writeFileSync,
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
    expect(tc.tasks.map((t) => t.name)).toEqual(['scan']);
    await tc.runTask('scan');

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
    await tc.runTask('scan');
    expect(tc.events()).toHaveLength(2);
    expect(tc.counter('csv_drop_files_total', { outcome: 'duplicate' })).toBe(1);
    await connector.stop(100);
  });

  it('waits until a file has settled', async () => {
    drop('fresh.csv', `${HEADER}2011,cy@example.com,terminated,2026-11-20,\n`, 0);
    const { connector, tc } = await started();
    await tc.runTask('scan');
    expect(tc.emits).toEqual([]);
    expect(readdirSync(folder)).toContain('fresh.csv');
    const at = new Date(Date.now() - 10_000);
    utimesSync(join(folder, 'fresh.csv'), at, at);
    await tc.runTask('scan');
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('refuses a truncated export into failed/ with a reason file, and applies nothing', async () => {
    const { connector, tc } = await started({ missing_rows: 'terminate' });
    drop('a.csv', HEADER + baseline);
    await tc.runTask('scan');
    const before = structuredClone(tc.checkpoints.get('default'));
    drop('b.csv', HEADER + baseline.split('\n').slice(0, 8).join('\n') + '\n');
    await tc.runTask('scan');
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
    await tc.runTask('scan');
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
    await tc.runTask('scan');
    drop('b_tuesday.csv', tuesday);
    await tc.runTask('scan');
    expect(tc.events()).toHaveLength(16);
    // Monday's export again: 8 of the 8 leavers would be active again.
    drop('c_monday_again.csv', monday);
    await tc.runTask('scan');
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
    await tc.runTask('scan');
    drop(
      'delta.csv',
      `${HEADER}1003,p3@example.com,terminated,2026-11-27,\n1004,p4@example.com,active,2022-01-01,\n`,
    );
    await tc.runTask('scan');
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
    await tc.runTask('scan');
    drop('tue.csv', `${HEADER}2041,bo@example.com,active,2020-01-01,\n`);
    await tc.runTask('scan');
    // The termination is entered again: Wednesday's export has Monday's bytes.
    drop('wed.csv', monday);
    await tc.runTask('scan');
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
    await tc.runTask('scan');
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
    await tc.runTask('scan');
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
    await expect(tc.runTask('scan')).rejects.toBeInstanceOf(RetryableError);
    expect(list('processing')).toEqual(['x.csv']);
    expect(tc.checkpoints.size).toBe(0);
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
    await first.tc.runTask('scan');
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
    await first.tc.runTask('scan');
    expect(first.tc.events()).toEqual([]);
    await first.connector.stop(100);
    const tc: TestContext<CsvDropState> = createTestContext({
      now: '2026-12-01T00:00:00.000Z',
      checkpoints: first.tc.checkpoints,
    });
    const second = await started({}, tc);
    await tc.runTask('scan');
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
    for (let i = 0; i < 100 && tc.events().length === 0; i += 1) await delay(20);
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
