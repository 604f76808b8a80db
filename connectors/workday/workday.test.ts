import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';

import { PermanentError, RetryableError, type InboundConnector } from '../../core/plugin-api/index.ts';
import {
  MockServer,
  registeredSecretValues,
  type RecordedRequest,
} from '../../core/plugin-api/testing/index.ts';
import { workdayConnector } from './index.ts';
import {
  applyDeletion,
  applyWorker,
  emptyHrState,
  hrDate,
  notHeld,
  releaseDue,
  zonedDate,
  zonedInstant,
  type LeaverPolicy,
} from '../_shared/hr-leaver.ts';
import type { WorkdayState } from './mapping.ts';
import { getWorkersEnvelope } from './client.ts';
import type { WorkdayConfig } from './config.ts';
import {
  createTestContext,
  simulateFixtures,
  startBridge,
  type TestContext,
} from '../_shared/hr-test-support.ts';

const BASE = {
  mode: 'raas',
  base_url: 'https://wd2-impl-services1.workday.com',
  tenant: 'acme',
  auth: { type: 'basic', username: 'ISU_SSF@acme', password: 'isu-password-for-tests' },
  raas: { owner: 'ISU_SSF', report: 'SSF_Worker_Status' },
  timezone: 'America/Los_Angeles',
  backfill_window: '9000d',
  hr_id_issuer: 'https://wd2-impl-services1.workday.com/acme',
};

interface Step {
  input: unknown;
  expect: { events?: unknown[]; ignored?: string; rejected?: string };
}

describe('workday mapping sequences (state carried between payloads, as ssf-bridge simulate does)', () => {
  const dir = new URL('./fixtures/sequences/', import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const sequence = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as {
      description: string;
      config?: Record<string, unknown>;
      steps: Step[];
    };
    it(`${file}: ${sequence.description}`, () => {
      const config = workdayConnector.configSchema.parse({ ...BASE, ...sequence.config });
      let state: WorkdayState | undefined;
      sequence.steps.forEach((step, i) => {
        if (step.expect.rejected) {
          expect(() => workdayConnector.map!(step.input, config, state), `step ${i + 1}`).toThrow(
            step.expect.rejected,
          );
          return;
        }
        const result = workdayConnector.map!(step.input, config, state);
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

const policy: LeaverPolicy = {
  termination_basis: 'termination_date',
  effective_time: '00:00',
  timezone: 'Europe/Berlin',
  backfill_window: 30 * 86_400_000,
  purge_after: 10 * 86_400_000,
  subject_format: 'email',
  reason_admin: 'HR termination',
  issuer: 'https://hr.example.com',
};

describe('leaver policy', () => {
  it('reads HR dates: 0000-00-00 and blanks are unset, Workday offsets are dropped, other forms refused', () => {
    expect(hrDate('0000-00-00', 'terminationDate')).toBeUndefined();
    expect(hrDate('  ', 'd')).toBeUndefined();
    expect(hrDate('2026-01-15-08:00', 'd')).toBe('2026-01-15');
    expect(hrDate('2026-01-15T00:00:00.000Z', 'd')).toBe('2026-01-15');
    expect(() => hrDate('2026-02-30', 'd')).toThrow('not a calendar date');
    expect(() => hrDate('15.01.2026', 'd')).toThrow('is not a date');
    expect(() => hrDate(20260115, 'd')).toThrow('expected a date');
  });

  it('places a local date and time in its time zone, across daylight saving changes', () => {
    expect(zonedInstant('2026-01-15', '00:00', 'Europe/Berlin').toISOString()).toBe(
      '2026-01-14T23:00:00.000Z',
    );
    expect(zonedInstant('2026-07-15', '00:00', 'Europe/Berlin').toISOString()).toBe(
      '2026-07-14T22:00:00.000Z',
    );
    // 02:30 does not exist on 2026-03-29 in Berlin; the later side of the gap is taken.
    expect(zonedInstant('2026-03-29', '02:30', 'Europe/Berlin').toISOString()).toBe(
      '2026-03-29T01:30:00.000Z',
    );
    // The same on the other side of the Greenwich meridian and of the equator: the wall time
    // is read just after the change, on its own calendar date (03:30 EDT, 01:00 -03).
    expect(zonedInstant('2026-03-08', '02:30', 'America/New_York').toISOString()).toBe(
      '2026-03-08T07:30:00.000Z',
    );
    expect(zonedInstant('2026-09-06', '00:00', 'America/Santiago').toISOString()).toBe(
      '2026-09-06T04:00:00.000Z',
    );
    // An hour that happens twice (clocks going back) is read at its second occurrence.
    expect(zonedInstant('2026-10-25', '02:30', 'Europe/Berlin').toISOString()).toBe(
      '2026-10-25T01:30:00.000Z',
    );
    expect(zonedInstant('2026-11-01', '23:59', 'America/New_York').toISOString()).toBe(
      '2026-11-02T04:59:00.000Z',
    );
    expect(zonedDate(new Date('2026-01-14T23:30:00Z'), 'Europe/Berlin')).toBe('2026-01-15');
  });

  it('holds a future termination, releases it when due, and schedules the purge after retention', () => {
    const state = emptyHrState();
    const now = new Date('2026-06-01T10:00:00Z');
    const held = applyWorker(
      state,
      { id: 'E1', email: 'ana@example.com', status: 'active', terminationDate: '2026-06-30' },
      policy,
      now,
    );
    expect(held.events.map((e) => e.occurredAt)).toEqual([
      '2026-06-29T22:00:00.000Z',
      '2026-06-29T22:00:00.000Z',
    ]);
    expect(Object.keys(state.pending)).toEqual(['E1:terminate']);
    expect(releaseDue(state, policy, new Date('2026-06-29T21:59:59Z'))).toEqual([]);

    const released = releaseDue(state, policy, new Date('2026-06-29T22:00:00Z'));
    expect(released.map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    expect(state.workers.E1).toMatchObject({ status: 'terminated', date: '2026-06-30' });
    expect(state.pending['E1:purge']?.dueAt).toBe('2026-07-09T22:00:00.000Z');

    const purged = releaseDue(state, policy, new Date('2026-07-10T00:00:00Z'));
    expect(purged).toEqual([
      {
        type: 'risc.account-purged',
        subject: { format: 'email', email: 'ana@example.com' },
        claims: {},
        sourceRecordId: 'E1:purged:2026-06-30',
        occurredAt: '2026-07-09T22:00:00.000Z',
      },
    ]);
    expect(state.workers.E1?.status).toBe('deleted');
  });

  it('dates an undated termination by the source time, never later than now, and emits it at once', () => {
    const state = emptyHrState();
    const now = new Date('2026-06-01T10:00:00Z');
    const ahead = applyWorker(
      state,
      { id: 'E5', email: 'eo@example.com', status: 'terminated', observedAt: '2026-06-01T10:00:05Z' },
      policy,
      now,
    );
    expect(ahead.events.map((e) => [e.sourceRecordId, e.occurredAt])).toEqual([
      ['E5:terminated:2026-06-01', '2026-06-01T10:00:00.000Z'],
      ['E5:terminated:2026-06-01', '2026-06-01T10:00:00.000Z'],
    ]);
    expect(notHeld(ahead.events, state)).toHaveLength(2);
    const future = applyWorker(
      state,
      { id: 'E6', email: 'fu@example.com', status: 'active', terminationDate: '2026-07-01' },
      policy,
      now,
    );
    expect(future.events).toHaveLength(2);
    expect(notHeld(future.events, state)).toEqual([]);
  });

  it('cancels the scheduled purge when the employee is rehired', () => {
    const state = emptyHrState();
    const now = new Date('2026-06-01T10:00:00Z');
    applyWorker(
      state,
      { id: 'E2', email: 'bo@example.com', status: 'terminated', terminationDate: '2026-05-30' },
      policy,
      now,
    );
    expect(state.pending['E2:purge']).toBeDefined();
    const rehired = applyWorker(state, { id: 'E2', status: 'active' }, policy, now);
    expect(rehired.events.map((e) => e.type)).toEqual(['risc.account-enabled']);
    expect(state.pending).toEqual({});
  });

  it('sends account-purged once when the HR system deletes an employee, with the email it remembered', () => {
    const state = emptyHrState();
    applyWorker(state, { id: 'E3', email: 'cy@example.com', status: 'active' }, policy, new Date());
    const first = applyDeletion(
      state,
      'E3',
      undefined,
      policy,
      '2026-06-02T08:00:00.000Z',
      new Date('2026-06-03T00:00:00Z'),
    );
    expect(first.events).toEqual([
      {
        type: 'risc.account-purged',
        subject: { format: 'email', email: 'cy@example.com' },
        claims: {},
        sourceRecordId: 'E3:purged:deleted',
        occurredAt: '2026-06-02T08:00:00.000Z',
      },
    ]);
    expect(applyDeletion(state, 'E3', undefined, policy, undefined, new Date())).toEqual({
      events: [],
      ignored: 'employee already purged',
    });
    expect(applyDeletion(state, 'E404', undefined, policy, undefined, new Date()).ignored).toContain(
      'never seen',
    );
  });

  it('ignores a leaver it cannot name when subject_format is email, and retries once an email appears', () => {
    const state = emptyHrState();
    const now = new Date('2026-06-01T10:00:00Z');
    const without = applyWorker(
      state,
      { id: 'E4', status: 'terminated', terminationDate: '2026-05-31' },
      policy,
      now,
    );
    expect(without).toEqual({ events: [], ignored: expect.stringContaining('no usable work email') });
    const withEmail = applyWorker(
      state,
      { id: 'E4', email: 'di@example.com', status: 'terminated', terminationDate: '2026-05-31' },
      policy,
      now,
    );
    expect(withEmail.events.map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
  });
});

// ---------------------------------------------------------------------------------------------
// The connector against a loopback Workday

const server = new MockServer();
const REPORT = '/ccx/service/customreport2/acme/ISU_SSF/SSF_Worker_Status';
const SOAP = '/ccx/service/acme/Human_Resources/v43.0';
const TOKEN = '/ccx/oauth2/acme/token';

beforeAll(async () => {
  await server.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function row(id: string, fields: Record<string, string>) {
  return { Employee_ID: id, Worker_Type: 'Employee', ...fields };
}

const dana = row('21034', {
  Worker: 'Dana Lee',
  Work_Email: 'dana.lee@example.com',
  User_Name: 'dlee',
  Active_Status: '0',
  Termination_Date: '2026-11-27',
  Last_Day_of_Work: '2026-11-27',
  Primary_Termination_Reason: 'Resignation > Personal',
});
const priya = row('21102', {
  Worker: 'Priya Raman',
  Work_Email: 'priya.raman@example.com',
  User_Name: 'praman',
  Active_Status: '1',
  Termination_Date: '2026-12-15',
  Last_Day_of_Work: '2026-12-15',
});
const tomas = row('21110', {
  Worker: 'Tomás Herrera',
  Work_Email: 'tomas.herrera@example.com',
  Active_Status: '1',
});

const NOW = '2026-11-29T14:00:00.000Z';

function instance(config: Record<string, unknown>, tc: TestContext<WorkdayState>): InboundConnector {
  return workdayConnector.create(tc.ctx, workdayConnector.configSchema.parse(config));
}

async function started(
  config: Record<string, unknown> = {},
  tc = createTestContext<WorkdayState>({ now: NOW }),
) {
  const connector = instance({ ...BASE, base_url: server.url, ...config }, tc);
  await connector.start(tc.ctx.signal);
  return { connector, tc };
}

describe('workday RaaS polling', () => {
  it('reads the report with Basic auth, emits one disable and one revoke per leaver, holds the future one', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [dana, priya, tomas] } }));
    const { connector, tc } = await started({ raas: { ...BASE.raas, since_prompt: 'Changed_Since' } });
    expect(tc.tasks.map((t) => t.name)).toEqual(['poll', 'release']);
    await tc.runTask('poll');

    const [req] = server.requests as [RecordedRequest];
    expect(req.query).toEqual({ format: 'json', Changed_Since: '2026-11-22T14:00:00.000Z' });
    expect(req.headers.authorization).toBe(
      `Basic ${Buffer.from('ISU_SSF@acme:isu-password-for-tests').toString('base64')}`,
    );
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '21034:terminated:2026-11-27'],
      ['caep.session-revoked', '21034:terminated:2026-11-27'],
    ]);
    const state = tc.checkpoints.get('default') as WorkdayState;
    expect(state.watermark).toBe(NOW);
    expect(Object.keys(state.pending)).toEqual(['21102:terminate']);
    expect(tc.directSets).toBe(0);
    expect(tc.gauge('workday_held_changes')).toBe(1);
    expect(tc.counter('workday_records_total', { outcome: 'mapped' })).toBe(2);
    expect(tc.counter('workday_records_total', { outcome: 'ignored' })).toBe(1);
    // The termination reason is logged for the operator, and no receiver gets it.
    expect(tc.logs.filter((l) => l.msg === 'termination reason').map((l) => l.fields)).toEqual([
      { worker: '21034', termination_reason: 'Resignation > Personal' },
    ]);
    expect(JSON.stringify(tc.events())).not.toContain('Resignation');

    // The next run asks for changes since the last one, and sends nothing twice.
    tc.clock.set('2026-11-29T14:15:00.000Z');
    await tc.runTask('poll');
    expect(server.requests[1]?.query.Changed_Since).toBe(NOW);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('fires a future-dated termination at its time after a restart, and never again', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [priya] } }));
    const first = await started();
    await first.tc.runTask('poll');
    expect(first.tc.events()).toEqual([]);
    await first.connector.stop(100);

    // A new process: same checkpoint store, the effective time (00:00 in Los Angeles) has passed.
    const tc = createTestContext<WorkdayState>({
      now: '2026-12-15T08:00:01.000Z',
      checkpoints: first.tc.checkpoints,
    });
    const second = await started({}, tc);
    await tc.runTask('release');
    expect(tc.events().map((e) => [e.type, e.occurredAt])).toEqual([
      ['risc.account-disabled', '2026-12-15T08:00:00.000Z'],
      ['caep.session-revoked', '2026-12-15T08:00:00.000Z'],
    ]);
    expect((tc.checkpoints.get('default') as WorkdayState).pending).toEqual({});

    // Workday now reports the worker as terminated: already sent.
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [{ ...priya, Active_Status: '0' }] } }));
    await tc.runTask('poll');
    await tc.runTask('release');
    expect(tc.events()).toHaveLength(2);
    await second.connector.stop(100);
  });

  it('sends the held purge about the address a leaver has after an email change, not the freed one', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [dana] } }));
    const { connector, tc } = await started({ purge_after: '90d' });
    await tc.runTask('poll');
    // HR renames the leaver's address, freeing dana.lee@ for someone else.
    server.on('GET', REPORT, () => ({
      body: { Report_Entry: [{ ...dana, Work_Email: 'dana.lee.departed@example.com' }] },
    }));
    tc.clock.set('2026-11-30T14:00:00.000Z');
    await tc.runTask('poll');
    tc.clock.set('2027-03-01T00:00:00.000Z');
    await tc.runTask('release');
    // RISC identifier-changed names the old address; everything after it the new one.
    expect(tc.events().map((e) => [e.type, e.subject])).toEqual([
      ['risc.account-disabled', expect.anything()],
      ['caep.session-revoked', expect.anything()],
      ['risc.identifier-changed', { format: 'email', email: 'dana.lee@example.com' }],
      [
        'risc.account-purged',
        {
          format: 'aliases',
          identifiers: [
            { format: 'email', email: 'dana.lee.departed@example.com' },
            { format: 'iss_sub', iss: expect.any(String), sub: '21034' },
          ],
        },
      ],
    ]);
    await connector.stop(100);
  });

  it('RISC identifier-changed: an address changed back and then again is a new change each time', async () => {
    const report = (email: string) => () => ({ body: { Report_Entry: [{ ...tomas, Work_Email: email }] } });
    const { connector, tc } = await started();
    for (const [i, email] of [
      'tomas.herrera@example.com',
      'tomas.herrera-diaz@example.com',
      'tomas.herrera@example.com',
      'tomas.herrera-diaz@example.com',
    ].entries()) {
      server.on('GET', REPORT, report(email));
      tc.clock.set(new Date(Date.parse(NOW) + i * 900_000));
      await tc.runTask('poll');
    }
    const changes = tc.events();
    expect(changes.map((e) => [e.type, e.subject, e.claims?.['new-value']])).toEqual([
      [
        'risc.identifier-changed',
        { format: 'email', email: 'tomas.herrera@example.com' },
        'tomas.herrera-diaz@example.com',
      ],
      [
        'risc.identifier-changed',
        { format: 'email', email: 'tomas.herrera-diaz@example.com' },
        'tomas.herrera@example.com',
      ],
      [
        'risc.identifier-changed',
        { format: 'email', email: 'tomas.herrera@example.com' },
        'tomas.herrera-diaz@example.com',
      ],
    ]);
    // The pipeline drops an event whose (source record, type) it has seen within its dedupe
    // window: the third change must not look like a retry of the first.
    expect(new Set(changes.map((e) => e.sourceRecordId)).size).toBe(3);
    // A poll that sees the same address again sends nothing.
    await tc.runTask('poll');
    expect(tc.events()).toHaveLength(3);
    await connector.stop(100);
  });

  it('holds a future termination once when the report repeats the worker, with and without the date', async () => {
    // A report joined on a multi-instance field: one row per position, the date on one only.
    server.on('GET', REPORT, () => ({
      body: { Report_Entry: [priya, { ...priya, Termination_Date: '', Last_Day_of_Work: '' }] },
    }));
    const { connector, tc } = await started();
    await tc.runTask('poll');
    expect(tc.events()).toEqual([]);
    expect(Object.values((tc.checkpoints.get('default') as WorkdayState).pending)).toEqual([
      expect.objectContaining({ kind: 'terminate', employeeId: '21102', date: '2026-12-15' }),
    ]);
    tc.clock.set('2026-12-16T00:00:00.000Z');
    await tc.runTask('release');
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '21102:terminated:2026-12-15'],
      ['caep.session-revoked', '21102:terminated:2026-12-15'],
    ]);
    await connector.stop(100);
  });

  it('sends a held termination on its date though the report still shows the worker active with that date', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [priya] } }));
    const { connector, tc } = await started();
    await tc.runTask('poll');
    expect(tc.events()).toEqual([]);
    // The date has come; HR flips the status later that day. A poll before the release must not
    // take the unchanged record for a rescind.
    tc.clock.set('2026-12-16T00:00:00.000Z');
    await tc.runTask('poll');
    const leaver = [
      ['risc.account-disabled', '21102:terminated:2026-12-15'],
      ['caep.session-revoked', '21102:terminated:2026-12-15'],
    ];
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual(leaver);
    await tc.runTask('release');
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('takes a worker still shown active on the date of a released termination for the source lagging, not a rehire', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [priya] } }));
    const { connector, tc } = await started();
    await tc.runTask('poll');
    tc.clock.set('2026-12-16T00:00:00.000Z');
    await tc.runTask('release');
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    await tc.runTask('poll'); // still active, same date
    await tc.runTask('poll');
    expect(tc.events()).toHaveLength(2);
    // Once the source says terminated itself, active again with the old date is a rehire.
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [{ ...priya, Active_Status: '0' }] } }));
    await tc.runTask('poll');
    expect(tc.events()).toHaveLength(2);
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [priya] } }));
    await tc.runTask('poll');
    expect(tc.events().map((e) => e.type)).toEqual([
      'risc.account-disabled',
      'caep.session-revoked',
      'risc.account-enabled',
    ]);
    await connector.stop(100);
  });

  it('cancels a held termination that is rescinded before it takes effect', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [priya] } }));
    const { connector, tc } = await started();
    await tc.runTask('poll');
    server.on('GET', REPORT, () => ({
      body: { Report_Entry: [{ ...priya, Termination_Date: '', Last_Day_of_Work: '' }] },
    }));
    await tc.runTask('poll');
    tc.clock.set('2026-12-16T00:00:00.000Z');
    await tc.runTask('release');
    expect(tc.events()).toEqual([]);
    expect((tc.checkpoints.get('default') as WorkdayState).pending).toEqual({});
    await connector.stop(100);
  });

  it('keeps the watermark when the outbox is full, and sends the same events on the next run', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [dana] } }));
    const { connector, tc } = await started();
    tc.failNextEmit();
    await expect(tc.runTask('poll')).rejects.toBeInstanceOf(RetryableError);
    expect(tc.checkpoints.size).toBe(0);
    expect(tc.statuses.at(-1)?.state).toBe('recoverable_error');
    await tc.runTask('poll');
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      '21034:terminated:2026-11-27',
      '21034:terminated:2026-11-27',
    ]);
    expect(tc.successes).toBe(1);
    await connector.stop(100);
  });

  it('classifies 429 (with Retry-After), 5xx and 401 answers and commits nothing', async () => {
    const { connector, tc } = await started();
    server.on('GET', REPORT, () => ({
      status: 429,
      headers: { 'retry-after': '7' },
      body: { error: 'rate limited' },
    }));
    const limited = await tc.runTask('poll').catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RetryableError);
    expect((limited as RetryableError).retryAfterMs).toBe(7000);

    server.on('GET', REPORT, () => ({ status: 503, body: 'Service Unavailable' }));
    await expect(tc.runTask('poll')).rejects.toBeInstanceOf(RetryableError);

    server.on('GET', REPORT, () => ({ status: 401, body: { error: 'invalid username or password' } }));
    const refused = await tc.runTask('poll').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PermanentError);
    expect((refused as PermanentError).authFailure).toBe(true);
    expect(tc.statuses.at(-1)?.state).toBe('permanent_error');
    expect(tc.emits).toEqual([]);
    expect(tc.checkpoints.size).toBe(0);
    await connector.stop(100);
  });

  it('skips a malformed row and still applies the others', async () => {
    server.on('GET', REPORT, () => ({
      body: { Report_Entry: [{ ...tomas, Termination_Date: '31/12/2026' }, dana, { Worker: 'no id' }] },
    }));
    const { connector, tc } = await started();
    await tc.runTask('poll');
    expect(tc.counter('workday_records_total', { outcome: 'malformed' })).toBe(2);
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    expect(tc.logs.filter((l) => l.level === 'warn')).toHaveLength(2);
    // The watermark moves on, so the skipped rows stay on the instance status, not just the log.
    expect(tc.statuses.at(-1)).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringMatching(/^skipped 2 unreadable worker record\(s\): .*21110.*31\/12\/2026/),
    });
    expect(tc.successes).toBe(0);
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [tomas, dana] } }));
    await tc.runTask('poll');
    expect(tc.successes).toBe(1);
    await connector.stop(100);
  });

  it('disables an inactive worker whose termination date is unreadable, as of when it was seen', async () => {
    // Workday says the worker is no longer active; a report formatting its dates day-first must
    // not keep the leaver's access.
    server.on('GET', REPORT, () => ({
      body: { Report_Entry: [{ ...dana, Termination_Date: '27/11/2026', Last_Day_of_Work: '27/11/2026' }] },
    }));
    const { connector, tc } = await started({ raas: { ...BASE.raas, since_prompt: 'Changed_Since' } });
    await tc.runTask('poll');
    expect(tc.events().map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', '21034:terminated:2026-11-29', NOW],
      ['caep.session-revoked', '21034:terminated:2026-11-29', NOW],
    ]);
    await connector.stop(100);
  });

  it('authenticates with the OAuth refresh-token grant and refreshes once after a 401', async () => {
    let tokens = 0;
    server.on('POST', TOKEN, (req) => {
      tokens += 1;
      const form = new URLSearchParams(req.body);
      expect(Object.fromEntries(form)).toEqual({
        grant_type: 'refresh_token',
        refresh_token: 'refresh-token-for-tests',
        client_id: 'NzQ2ZTA0YjQ',
        client_secret: 'client-secret-for-tests',
      });
      return { body: { access_token: `access-${tokens}`, token_type: 'Bearer', expires_in: 3600 } };
    });
    server.on('GET', REPORT, (req) =>
      req.headers.authorization === 'Bearer access-2'
        ? { body: { Report_Entry: [dana] } }
        : { status: 401, body: { error: 'invalid_token' } },
    );
    const { connector, tc } = await started({
      auth: {
        type: 'oauth_refresh_token',
        client_id: 'NzQ2ZTA0YjQ',
        client_secret: 'client-secret-for-tests',
        refresh_token: 'refresh-token-for-tests',
      },
    });
    await tc.runTask('poll');
    expect(tokens).toBe(2);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
    // The access token is kept out of logs while it lives, and forgotten once it has expired.
    expect(registeredSecretValues()).toContain('access-2');
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 3_600_000 + 16 * 60_000);
      expect(registeredSecretValues()).not.toContain('access-2');
      expect(registeredSecretValues()).toContain('refresh-token-for-tests');
    } finally {
      vi.useRealTimers();
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Get_Workers (SOAP)

function worker(id: string, email: string, status: { active: string; terminated: string; date?: string }) {
  return `<wd:Worker><wd:Worker_Reference><wd:ID wd:type="WID">wid-${id}</wd:ID><wd:ID wd:type="Employee_ID">${id}</wd:ID></wd:Worker_Reference>
<wd:Worker_Data><wd:Worker_ID>${id}</wd:Worker_ID><wd:User_ID>u${id}</wd:User_ID>
<wd:Personal_Data><wd:Contact_Data><wd:Email_Address_Data><wd:Email_Address>${email}</wd:Email_Address>
<wd:Usage_Data wd:Public="1"><wd:Type_Data wd:Primary="1"><wd:Type_Reference><wd:ID wd:type="Communication_Usage_Type_ID">WORK</wd:ID></wd:Type_Reference></wd:Type_Data></wd:Usage_Data>
</wd:Email_Address_Data></wd:Contact_Data></wd:Personal_Data>
<wd:Employment_Data><wd:Worker_Status_Data><wd:Active>${status.active}</wd:Active><wd:Terminated>${status.terminated}</wd:Terminated>
${status.date ? `<wd:Termination_Date>${status.date}-08:00</wd:Termination_Date>` : ''}
${status.date ? '<wd:Primary_Termination_Reason_Reference wd:Descriptor="Resignation &gt; New Job"><wd:ID wd:type="Termination_Subcategory_ID">TERMINATE_EMPLOYEE_VOLUNTARY_NEW_JOB</wd:ID></wd:Primary_Termination_Reason_Reference>' : ''}</wd:Worker_Status_Data></wd:Employment_Data></wd:Worker_Data></wd:Worker>`;
}

function page(n: number, pages: number, workers: string[]) {
  return `<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Body>
<wd:Get_Workers_Response xmlns:wd="urn:com.workday/bsvc" wd:version="v43.0">
<wd:Response_Results><wd:Total_Results>${workers.length}</wd:Total_Results><wd:Total_Pages>${pages}</wd:Total_Pages><wd:Page_Results>${workers.length}</wd:Page_Results><wd:Page>${n}</wd:Page></wd:Response_Results>
<wd:Response_Data>${workers.join('')}</wd:Response_Data></wd:Get_Workers_Response></env:Body></env:Envelope>`;
}

const SOAP_CONFIG = { mode: 'soap', raas: undefined, soap: { version: 'v43.0', page_size: 2 } };

describe('workday Get_Workers polling', () => {
  it('asks for workers as of today where they are: in Tokyo the 30th has begun at 20:00 UTC on the 29th', () => {
    const config = workdayConnector.configSchema.parse({ ...BASE, ...SOAP_CONFIG, timezone: 'Asia/Tokyo' });
    const at = new Date('2026-11-29T20:00:00.000Z');
    const envelope = getWorkersEnvelope(
      config as WorkdayConfig,
      { kind: 'effective', from: NOW, through: NOW },
      at,
      1,
      2,
    );
    expect(envelope).toContain('<bsvc:As_Of_Effective_Date>2026-11-30</bsvc:As_Of_Effective_Date>');
    expect(envelope).toContain(
      '<bsvc:As_Of_Entry_DateTime>2026-11-29T20:00:00.000Z</bsvc:As_Of_Entry_DateTime>',
    );
  });

  it('pages through the updated and effective windows with WS-Security, and merges the workers', async () => {
    const updated = [
      [
        worker('1', 'a@example.com', { active: '0', terminated: '1', date: '2026-11-20' }),
        worker('2', 'b@example.com', { active: '1', terminated: '0' }),
      ],
      [worker('3', 'c@example.com', { active: '1', terminated: '0' })],
    ];
    const effective = [
      [
        worker('1', 'a@example.com', { active: '0', terminated: '1', date: '2026-11-20' }),
        worker('4', 'd@example.com', { active: '0', terminated: '1', date: '2026-11-28' }),
      ],
    ];
    server.on('POST', SOAP, (req) => {
      const n = Number(/<bsvc:Page>(\d+)<\/bsvc:Page>/.exec(req.body)?.[1]);
      const pages = req.body.includes('<bsvc:Updated_From>') ? updated : effective;
      return { headers: { 'content-type': 'text/xml' }, body: page(n, pages.length, pages[n - 1] ?? []) };
    });
    const { connector, tc } = await started(SOAP_CONFIG);
    await tc.runTask('poll');

    const bodies = server.requests.map((r) => r.body);
    expect(
      bodies.map((b) => [/<bsvc:(Updated|Effective)_From>/.exec(b)?.[1], /<bsvc:Page>(\d+)/.exec(b)?.[1]]),
    ).toEqual([
      ['Updated', '1'],
      ['Updated', '2'],
      ['Effective', '1'],
    ]);
    expect(bodies[0]).toContain('<bsvc:Updated_From>2026-11-22T14:00:00.000Z</bsvc:Updated_From>');
    expect(bodies[0]).toContain(`<bsvc:Updated_Through>${NOW}</bsvc:Updated_Through>`);
    expect(bodies[0]).toContain('<bsvc:As_Of_Effective_Date>2026-11-29</bsvc:As_Of_Effective_Date>');
    expect(bodies[0]).toContain('<bsvc:Count>2</bsvc:Count>');
    expect(bodies[0]).toContain('<wsse:Username>ISU_SSF@acme</wsse:Username>');
    expect(bodies[0]).toContain('>isu-password-for-tests</wsse:Password>');
    expect(server.requests[0]?.headers.authorization).toBeUndefined();

    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      '1:terminated:2026-11-20',
      '1:terminated:2026-11-20',
      '4:terminated:2026-11-28',
      '4:terminated:2026-11-28',
    ]);
    expect((tc.checkpoints.get('default') as WorkdayState).watermark).toBe(NOW);
    expect(tc.logs.filter((l) => l.msg === 'termination reason').map((l) => l.fields)).toEqual([
      { worker: '1', termination_reason: 'Resignation > New Job' },
      { worker: '4', termination_reason: 'Resignation > New Job' },
    ]);

    // The next run starts its windows at the previous run.
    server.requests.length = 0;
    tc.clock.set('2026-11-29T14:15:00.000Z');
    await tc.runTask('poll');
    expect(server.requests[0]?.body).toContain(`<bsvc:Updated_From>${NOW}</bsvc:Updated_From>`);
    expect(tc.events()).toHaveLength(4);
    await connector.stop(100);
  });

  it('treats a Client fault as permanent and a Server fault as retryable', async () => {
    const fault = (code: string, text: string) => ({
      status: 500,
      headers: { 'content-type': 'text/xml' },
      body: `<?xml version="1.0" encoding="UTF-8"?><SOAP-ENV:Envelope xmlns:SOAP-ENV="http://schemas.xmlsoap.org/soap/envelope/"><SOAP-ENV:Body><SOAP-ENV:Fault><faultcode>${code}</faultcode><faultstring>${text}</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`,
    });
    const { connector, tc } = await started(SOAP_CONFIG);
    server.on('POST', SOAP, () =>
      fault('SOAP-ENV:Client.validationError', 'Validation error occurred. Invalid version'),
    );
    const permanent = await tc.runTask('poll').catch((e: unknown) => e);
    expect(permanent).toBeInstanceOf(PermanentError);
    expect((permanent as Error).message).toContain('Invalid version');
    expect((permanent as PermanentError).authFailure).toBe(false);

    server.on('POST', SOAP, () =>
      fault('SOAP-ENV:Client.authenticationError', 'invalid username or password'),
    );
    const auth = await tc.runTask('poll').catch((e: unknown) => e);
    expect((auth as PermanentError).authFailure).toBe(true);

    server.on('POST', SOAP, () => fault('SOAP-ENV:Server', 'Processing error occurred'));
    await expect(tc.runTask('poll')).rejects.toBeInstanceOf(RetryableError);
    expect(tc.emits).toEqual([]);
    await connector.stop(100);
  });
});

describe('workday through ssf-bridge simulate (golden)', () => {
  it('prints every fixture event (future ones with scheduled_for), notes the ignored ones, and stops at a malformed one', async () => {
    const { run, expected, ignored, rejected } = await simulateFixtures(
      'workday',
      BASE,
      new URL('./fixtures/', import.meta.url),
    );
    expect(run.events.map(({ txn: _txn, ...rest }) => rest)).toEqual(expected);
    expect(run.events.some((e) => e.scheduled_for === '2099-03-31T07:00:00.000Z')).toBe(true);
    // account-disabled and session-revoked of one termination share their txn.
    expect(run.events[0]?.txn).toBe(run.events[1]?.txn);
    for (const reason of ignored) expect(run.stderr).toContain(reason);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(rejected[0]);
  }, 60_000);
});

describe('workday in a running bridge', () => {
  it('sends exactly one account-disabled and one session-revoked per destination, and nothing again after a restart', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [dana, priya, tomas] } }));
    const data = mkdtempSync(join(tmpdir(), 'workday-e2e-'));
    const config = {
      inbound: [
        {
          id: 'workday-hr',
          connector: 'workday',
          config: { ...BASE, base_url: server.url, poll_interval: '300ms', subject_format: 'email' },
        },
      ],
      outbound: [
        { id: 'okta', connector: 'log', config: { audience: 'https://acme.okta.example' } },
        { id: 'slack', connector: 'log', config: { audience: 'https://slack.example' } },
      ],
      routes: [{ from: ['workday-hr'], to: ['okta', 'slack'] }],
    };
    try {
      const first = await startBridge(config, data);
      await first.waitFor(4);
      // Let several more polls read the same report.
      const polled = server.requests.length;
      while (server.requests.length < polled + 3) await delay(50);
      await delay(300);
      const sets = first.delivered();
      await first.stop();
      const count = (aud: string, type: string) =>
        sets.filter((s) => s.aud === aud && s.type.endsWith(type)).length;
      for (const aud of ['https://acme.okta.example', 'https://slack.example']) {
        expect(count(aud, '/account-disabled'), aud).toBe(1);
        expect(count(aud, '/session-revoked'), aud).toBe(1);
      }
      expect(sets).toHaveLength(4);
      expect(new Set(sets.map((s) => s.txn)).size).toBe(1);
      expect(sets[0]?.subject).toEqual({ format: 'email', email: 'dana.lee@example.com' });

      const second = await startBridge(config, data);
      const before = server.requests.length;
      while (server.requests.length < before + 3) await delay(50);
      await delay(300);
      expect(second.delivered()).toEqual([]);
      await second.stop();
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
