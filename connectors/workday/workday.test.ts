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
import { mapRecord, type WorkdayState } from './mapping.ts';
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

    // The next run asks for changes since the last one (and the 5 minutes before it, in case
    // Workday's clock is behind ours), and sends nothing twice.
    tc.clock.set('2026-11-29T14:15:00.000Z');
    await tc.runTask('poll');
    expect(server.requests[1]?.query.Changed_Since).toBe('2026-11-29T13:55:00.000Z');
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

describe('workday OAuth: an access token Workday revoked before its expiry', () => {
  it('is replaced after the 401 without flagging the credentials, for the report and for Get_Workers', async () => {
    let tokens = 0;
    server.on('POST', TOKEN, () => {
      tokens += 1;
      return { body: { access_token: `access-${tokens}`, token_type: 'Bearer', expires_in: 3600 } };
    });
    // Workday revoked access-1 early: refused once, then the run goes on with access-2.
    const fresh = (req: RecordedRequest) => req.headers.authorization === 'Bearer access-2';
    server.on('GET', REPORT, (req) =>
      fresh(req) ? { body: { Report_Entry: [dana] } } : { status: 401, body: { error: 'invalid_token' } },
    );
    server.on('POST', SOAP, (req) =>
      fresh(req)
        ? { headers: { 'content-type': 'text/xml' }, body: page(1, 0, []) }
        : { status: 401, body: 'Unauthorized' },
    );
    const auth = {
      type: 'oauth_refresh_token',
      client_id: 'NzQ2ZTA0YjQ',
      client_secret: 'client-secret-for-tests',
      refresh_token: 'refresh-token-for-tests',
    };
    for (const mode of [{}, SOAP_CONFIG]) {
      tokens = 0;
      const { connector, tc } = await started({ ...mode, auth });
      await tc.runTask('poll');
      expect(tokens).toBe(2);
      expect(tc.statuses).toEqual([]);
      expect(tc.successes).toBe(1);
      await connector.stop(100);
    }
    // A new access token refused too: the credentials are flagged.
    server.on('GET', REPORT, () => ({ status: 401, body: { error: 'invalid_token' } }));
    tokens = 0;
    const { connector, tc } = await started({ auth });
    const refused = await tc.runTask('poll').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PermanentError);
    expect(tokens).toBe(2);
    expect(tc.statuses.map((s) => s.state)).toContain('permanent_error');
    await connector.stop(100);
  });
});

describe('workday: a leaver it cannot name (subject_format email, no work email)', () => {
  it('is kept on the status, and its window read again by every run (the watermark moves on), until it can be sent', async () => {
    const checkpoints = new Map<string, unknown>([
      ['default', { workers: {}, pending: {}, watermark: '2026-11-29T13:45:00.000Z' }],
    ]);
    const unnamed = { ...dana, Work_Email: '' };
    server.on('GET', REPORT, (req) => ({
      body: { Report_Entry: (req.query.Changed_Since ?? '') <= '2026-11-29T13:40:00.000Z' ? [unnamed] : [] },
    }));
    const { connector, tc } = await started(
      { raas: { ...BASE.raas, since_prompt: 'Changed_Since' }, subject_format: 'email' },
      createTestContext<WorkdayState>({ now: NOW, checkpoints }),
    );
    await tc.runTask('poll');
    const state = () => tc.checkpoints.get('default') as WorkdayState;
    expect(tc.events()).toEqual([]);
    expect(state().watermark).toBe(NOW);
    expect(state().unnamed).toEqual({ '21034': '2026-11-29T13:40:00.000Z' });
    expect(tc.statuses.at(-1)).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringContaining('1 leaver(s) not sent, employee 21034'),
    });
    expect(tc.logs.filter((l) => l.level === 'warn')).toEqual([
      expect.objectContaining({ fields: expect.objectContaining({ examples: ['21034'] }) }),
    ]);
    expect(tc.counter('workday_records_total', { outcome: 'no_email' })).toBe(1);
    expect(tc.successes).toBe(0);

    // The next run reads from the window that read it, not from the watermark.
    tc.clock.set('2026-11-29T14:15:00.000Z');
    await tc.runTask('poll');
    expect(server.requests.at(-1)?.query.Changed_Since).toBe('2026-11-29T13:40:00.000Z');
    expect(tc.statuses.at(-1)?.state).toBe('recoverable_error');

    // HR gives the worker a work email: sent, and the window moves on again.
    Object.assign(unnamed, { Work_Email: 'dana.lee@example.com' });
    tc.clock.set('2026-11-29T14:30:00.000Z');
    await tc.runTask('poll');
    expect(tc.events().map((e) => [e.type, e.subject])).toEqual([
      ['risc.account-disabled', { format: 'email', email: 'dana.lee@example.com' }],
      ['caep.session-revoked', { format: 'email', email: 'dana.lee@example.com' }],
    ]);
    expect(state().unnamed).toBeUndefined();
    expect(tc.successes).toBe(1);
    tc.clock.set('2026-11-29T14:45:00.000Z');
    await tc.runTask('poll');
    expect(server.requests.at(-1)?.query.Changed_Since).toBe('2026-11-29T14:25:00.000Z');
    await connector.stop(100);
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

    // The next run starts its windows at the previous run, less an overlap of 5 minutes.
    server.requests.length = 0;
    tc.clock.set('2026-11-29T14:15:00.000Z');
    await tc.runTask('poll');
    expect(server.requests[0]?.body).toContain(
      '<bsvc:Updated_From>2026-11-29T13:55:00.000Z</bsvc:Updated_From>',
    );
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

// ---------------------------------------------------------------------------------------------
// Terminations entered late: the backfill window keeps old leavers quiet on the first read only

describe('workday termination entered late (backdated)', () => {
  // Sam left on 6 February; HR enters the termination on 20 March. The bridge has been live
  // since January, and Sam's record never changed in between: the change feed shows Sam now.
  const sam = row('4711', {
    Worker: 'Sam Patel',
    Work_Email: 'sam.patel@example.com',
    User_Name: 'spatel',
    Active_Status: '0',
    Hire_Date: '2019-04-01',
    Termination_Date: '2026-02-06',
    Last_Day_of_Work: '2026-02-06',
    Primary_Termination_Reason: 'Resignation > Personal',
    Business_Process_Completed_On: '2026-03-20T01:52:00.000-07:00',
  });
  const live = (watermark: string | undefined) => {
    const checkpoints = new Map<string, unknown>();
    const known = { email: 'tomas.herrera@example.com', status: 'active' };
    if (watermark) checkpoints.set('default', { workers: { '21110': known }, pending: {}, watermark });
    return createTestContext<WorkdayState>({ now: '2026-03-20T09:00:00.000Z', checkpoints });
  };
  const CHANGED_SINCE = { backfill_window: '30d', raas: { ...BASE.raas, since_prompt: 'Changed_Since' } };

  it('RaaS with a "changed since" prompt: a worker first seen after the first run is news however old the date', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [sam] } }));
    const { connector, tc } = await started(CHANGED_SINCE, live('2026-03-20T08:45:00.000Z'));
    await tc.runTask('poll');
    expect(tc.events().map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', '4711:terminated:2026-02-06', '2026-02-06T08:00:00.000Z'],
      ['caep.session-revoked', '4711:terminated:2026-02-06', '2026-02-06T08:00:00.000Z'],
    ]);
    await connector.stop(100);
  });

  it('Get_Workers: the transaction log brings up a worker never seen before, with a termination weeks old', async () => {
    server.on('POST', SOAP, (req) => ({
      headers: { 'content-type': 'text/xml' },
      body: req.body.includes('<bsvc:Updated_From>')
        ? page(1, 1, [
            worker('4711', 'sam.patel@example.com', { active: '0', terminated: '1', date: '2026-02-06' }),
          ])
        : page(1, 0, []),
    }));
    const { connector, tc } = await started(
      { ...SOAP_CONFIG, backfill_window: '30d' },
      live('2026-03-20T08:45:00.000Z'),
    );
    await tc.runTask('poll');
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      '4711:terminated:2026-02-06',
      '4711:terminated:2026-02-06',
    ]);
    await connector.stop(100);
  });

  it('the first run keeps old leavers quiet and says how many at info level; so does a full report later', async () => {
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [sam, tomas] } }));
    const first = await started(CHANGED_SINCE, live(undefined));
    await first.tc.runTask('poll');
    expect(first.tc.events()).toEqual([]);
    expect(first.tc.logs.filter((l) => l.level === 'info' && l.fields.first_read === true)).toEqual([
      expect.objectContaining({
        msg: expect.stringContaining('recorded 1 leaver(s)'),
        fields: expect.objectContaining({ employees: 1, examples: ['4711'] }),
      }),
    ]);
    await first.connector.stop(100);

    // A report that lists every worker each run (no prompt): a worker it shows for the first
    // time after the first run (the report's filter widened) is an old leaver too.
    const full = await started({ backfill_window: '30d' }, live('2026-03-20T08:45:00.000Z'));
    await full.tc.runTask('poll');
    expect(full.tc.events()).toEqual([]);
    expect(full.tc.logs.some((l) => l.level === 'info' && l.fields.employees === 1)).toBe(true);
    await full.connector.stop(100);
  });

  it('simulate: a state with a watermark (change feed) sends it; a first payload keeps it quiet', () => {
    const config = workdayConnector.configSchema.parse({ ...BASE, ...CHANGED_SINCE });
    const report = { Report_Entry: [sam] };
    const state = { workers: {}, pending: {}, watermark: '2026-03-20T08:45:00.000Z' };
    const now = new Date('2026-03-20T09:00:00.000Z');
    const mapped = (s: WorkdayState | undefined) => mapRecord(report, config, s, now);
    expect(mapped(state).events.map((e) => e.type)).toEqual([
      'risc.account-disabled',
      'caep.session-revoked',
    ]);
    expect(mapped(undefined)).toMatchObject({
      events: [],
      ignored: expect.stringContaining('backfill window'),
    });
  });
});

// ---------------------------------------------------------------------------------------------
// Pre-hires: hired with a date ahead, Workday shows them inactive until then

/** A Get_Workers worker as Workday answers it, with the whole Worker_Status_Data. */
function statusWorker(
  id: string,
  email: string,
  status: { active: string; terminated?: string; hire: string; terminatedOn?: string },
) {
  return `<wd:Worker>
  <wd:Worker_Reference><wd:ID wd:type="WID">7c1e${id}a0b94d3c8e2f5a6b7c8d9e0f</wd:ID><wd:ID wd:type="Employee_ID">${id}</wd:ID></wd:Worker_Reference>
  <wd:Worker_Data>
    <wd:Worker_ID>${id}</wd:Worker_ID>
    <wd:User_ID>${email.split('@')[0]}</wd:User_ID>
    <wd:Personal_Data>
      <wd:Name_Data><wd:Legal_Name_Data><wd:Name_Detail_Data wd:Formatted_Name="Noor Haddad"><wd:First_Name>Noor</wd:First_Name><wd:Last_Name>Haddad</wd:Last_Name></wd:Name_Detail_Data></wd:Legal_Name_Data></wd:Name_Data>
      <wd:Contact_Data><wd:Email_Address_Data wd:Email_Reference="EMAIL_REFERENCE-6-${id}">
        <wd:Email_Address>${email}</wd:Email_Address>
        <wd:Usage_Data wd:Public="1"><wd:Type_Data wd:Primary="1"><wd:Type_Reference><wd:ID wd:type="WID">1f27f250dfaa4724ab1e1617174281e4</wd:ID><wd:ID wd:type="Communication_Usage_Type_ID">WORK</wd:ID></wd:Type_Reference></wd:Type_Data></wd:Usage_Data>
      </wd:Email_Address_Data></wd:Contact_Data>
    </wd:Personal_Data>
    <wd:Employment_Data>
      <wd:Worker_Job_Data wd:Primary_Job="1"><wd:Position_Data wd:Effective_Date="${status.hire}"><wd:Position_ID>P-0${id}</wd:Position_ID><wd:Business_Title>Data Analyst</wd:Business_Title></wd:Position_Data></wd:Worker_Job_Data>
      <wd:Worker_Status_Data>
        <wd:Active>${status.active}</wd:Active>
        <wd:Hire_Date>${status.hire}</wd:Hire_Date>
        <wd:Original_Hire_Date>${status.hire}</wd:Original_Hire_Date>
        <wd:Hire_Reason_Reference><wd:ID wd:type="General_Event_Subcategory_ID">Hire_Employee_New_Hire_Fill_Vacancy</wd:ID></wd:Hire_Reason_Reference>
        <wd:Continuous_Service_Date>${status.hire}</wd:Continuous_Service_Date>
        <wd:First_Day_of_Work>${status.hire}</wd:First_Day_of_Work>
        ${status.terminated === undefined ? '' : `<wd:Terminated>${status.terminated}</wd:Terminated>`}
        ${status.terminatedOn ? `<wd:Termination_Date>${status.terminatedOn}</wd:Termination_Date>` : ''}
        <wd:Not_Eligible_for_Hire>0</wd:Not_Eligible_for_Hire>
        <wd:Retired>0</wd:Retired>
      </wd:Worker_Status_Data>
    </wd:Employment_Data>
  </wd:Worker_Data>
</wd:Worker>`;
}

describe('workday pre-hires (hire date ahead)', () => {
  const config = workdayConnector.configSchema.parse({ ...BASE, ...SOAP_CONFIG });
  const before = new Date('2026-02-15T20:00:00.000Z');
  const onHireDate = new Date('2026-03-02T17:00:00.000Z');

  it('Get_Workers: Active 0 with Terminated 0 is no leaver, nor is the worker re-enabled on the hire date', () => {
    const preHire = page(1, 1, [
      statusWorker('30001', 'noor.haddad@example.com', {
        active: '0',
        terminated: '0',
        hire: '2026-03-02-08:00',
      }),
    ]);
    const hired = page(1, 1, [
      statusWorker('30001', 'noor.haddad@example.com', {
        active: '1',
        terminated: '0',
        hire: '2026-03-02-08:00',
      }),
    ]);
    const first = mapRecord(preHire, config, undefined, before);
    expect(first).toMatchObject({ events: [], ignored: expect.stringContaining('30001') });
    expect(first.state?.workers['30001']).toEqual({
      email: 'noor.haddad@example.com',
      username: 'noor.haddad',
      status: 'active',
    });
    expect(mapRecord(hired, config, first.state, onHireDate).events).toEqual([]);
  });

  it('Get_Workers without Terminated: Active 0 is no leaver while the hire date lies ahead, and a leaver after it', () => {
    const inactive = (hire: string) =>
      page(1, 1, [statusWorker('30002', 'omar.said@example.com', { active: '0', hire })]);
    expect(mapRecord(inactive('2026-03-02-08:00'), config, undefined, before).events).toEqual([]);
    // A termination date of an earlier employment (a rehire ahead) makes no leaver either.
    const rehire = page(1, 1, [
      statusWorker('30003', 'ana.ruiz@example.com', {
        active: '0',
        hire: '2026-03-02-08:00',
        terminatedOn: '2024-06-30-07:00',
      }),
    ]);
    expect(
      mapRecord(rehire, config, { workers: {}, pending: {}, watermark: '2026-02-15T19:45:00.000Z' }, before)
        .events,
    ).toEqual([]);
    // Hired long ago, inactive now: a leaver (dated when seen, as no date is given).
    expect(
      mapRecord(inactive('2019-03-04-08:00'), config, undefined, before).events.map((e) => e.type),
    ).toEqual(['risc.account-disabled', 'caep.session-revoked']);
  });

  it('Get_Workers: Terminated 1 is a leaver whatever Active and the hire date say', () => {
    const terminated = page(1, 1, [
      statusWorker('30004', 'lea.brun@example.com', {
        active: '0',
        terminated: '1',
        hire: '2026-03-02-08:00',
        terminatedOn: '2026-02-13-08:00',
      }),
    ]);
    expect(mapRecord(terminated, config, undefined, before).events.map((e) => e.sourceRecordId)).toEqual([
      '30004:terminated:2026-02-13',
      '30004:terminated:2026-02-13',
    ]);
  });

  it('RaaS: a report with a hire-date column keeps an inactive pre-hire quiet while polling', async () => {
    const newHire = row('30005', {
      Worker: 'Kai Müller',
      Work_Email: 'kai.mueller@example.com',
      Active_Status: '0',
      Hire_Date: '2026-12-07',
    });
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [newHire] } }));
    const { connector, tc } = await started();
    await tc.runTask('poll');
    expect(tc.events()).toEqual([]);
    server.on('GET', REPORT, () => ({ body: { Report_Entry: [{ ...newHire, Active_Status: '1' }] } }));
    tc.clock.set('2026-12-07T17:00:00.000Z');
    await tc.runTask('poll');
    expect(tc.events()).toEqual([]);
    // A column named otherwise is mapped like the others.
    const renamed = workdayConnector.configSchema.parse({
      ...BASE,
      raas: { ...BASE.raas, columns: { hire_date: 'Most_Recent_Hire_Date' } },
    });
    const { Hire_Date: hire, ...rest } = newHire as Record<string, string>;
    expect(
      mapRecord({ ...rest, Most_Recent_Hire_Date: hire }, renamed, undefined, new Date(NOW)).events,
    ).toEqual([]);
    await connector.stop(100);
  });
});

// ---------------------------------------------------------------------------------------------
// Answer size

describe('workday answer size (max_response_bytes)', () => {
  it('reads a full report of 45,000 workers (12 MB) within the default limit', async () => {
    const rows = Array.from({ length: 45_000 }, (_, i) => {
      const left = i % 3 === 0;
      return row(String(100_000 + i), {
        Worker: `Worker Number ${i}`,
        Work_Email: `worker.number${i}@example.com`,
        User_Name: `wnumber${i}`,
        Active_Status: left ? '0' : '1',
        Termination_Date: left ? '2019-05-31' : '',
        Last_Day_of_Work: left ? '2019-05-31' : '',
        Primary_Termination_Reason: left ? 'Resignation > Personal' : '',
      });
    });
    const body = JSON.stringify({ Report_Entry: rows });
    expect(body.length).toBeGreaterThan(11_000_000);
    server.on('GET', REPORT, () => ({ headers: { 'content-type': 'application/json' }, body }));
    const { connector, tc } = await started({ backfill_window: '30d' });
    await tc.runTask('poll');
    expect(tc.successes).toBe(1);
    const state = tc.checkpoints.get('default') as WorkdayState;
    expect(Object.keys(state.workers)).toHaveLength(45_000);
    // The old leavers of a first full read are recorded quietly, and counted at info level.
    expect(tc.events()).toEqual([]);
    expect(tc.logs.find((l) => l.fields.first_read === true)?.fields.employees).toBe(15_000);
    await connector.stop(100);
  }, 60_000);

  it('names the setting to change when the report or a Get_Workers page is larger than configured', async () => {
    // 15,000 rows: some 1.7 MB.
    const rows = Array.from({ length: 15_000 }, (_, i) =>
      row(String(200_000 + i), {
        Work_Email: `w${i}@example.com`,
        Active_Status: '1',
        Worker: `Worker ${i}`,
      }),
    );
    server.on('GET', REPORT, () => ({ body: { Report_Entry: rows } }));
    const raas = await started({ max_response_bytes: 1_048_576 });
    const err = await raas.tc.runTask('poll').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).code).toBe('SSF_ERR_HTTP_TOO_LARGE');
    expect((err as Error).message).toBe(
      'the report ISU_SSF/SSF_Worker_Status is larger than max_response_bytes, 1048576 bytes (1.0 MiB): give the report a "changed since" prompt and name it in raas.since_prompt, so each run reads only what changed, or raise max_response_bytes',
    );
    expect(raas.tc.statuses.at(-1)).toMatchObject({
      state: 'permanent_error',
      reason: (err as Error).message,
    });
    await raas.connector.stop(100);

    const many = Array.from({ length: 600 }, (_, i) =>
      statusWorker(String(40_000 + i), `p${i}@example.com`, {
        active: '1',
        terminated: '0',
        hire: '2020-01-06-08:00',
      }),
    );
    server.on('POST', SOAP, () => ({ headers: { 'content-type': 'text/xml' }, body: page(1, 1, many) }));
    const soap = await started({ ...SOAP_CONFIG, soap: { page_size: 600 }, max_response_bytes: 1_048_576 });
    const soapErr = await soap.tc.runTask('poll').catch((e: unknown) => e);
    expect((soapErr as Error).message).toMatch(
      /^a Get_Workers page of 600 workers is larger than max_response_bytes, 1048576 bytes \(1\.0 MiB\): lower soap\.page_size, or raise max_response_bytes$/,
    );
    await soap.connector.stop(100);
  });

  it('refuses a limit below 1 MiB or above what Node.js can read whole', () => {
    for (const max_response_bytes of [1024, 600 * 1_048_576]) {
      expect(workdayConnector.configSchema.safeParse({ ...BASE, max_response_bytes }).success).toBe(false);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Window overlap: an entry Workday dates just before the end of the previous window

describe('workday transaction-log windows overlap', () => {
  it('reads an entry dated just before the previous window ended, and sends nothing twice for one read again', async () => {
    // Workday's clock runs three minutes behind the bridge's: what HR enters right after a run
    // is dated before that run's Updated_Through.
    const entries: Array<{ at: string; xml: string }> = [];
    server.on('POST', SOAP, (req) => {
      const from = /<bsvc:Updated_From>([^<]+)</.exec(req.body)?.[1];
      const through = /<bsvc:Updated_Through>([^<]+)</.exec(req.body)?.[1];
      const inWindow = from
        ? entries.filter((e) => e.at >= (from as string) && e.at <= (through as string)).map((e) => e.xml)
        : [];
      return {
        headers: { 'content-type': 'text/xml' },
        body: page(1, inWindow.length > 0 ? 1 : 0, inWindow),
      };
    });
    const { connector, tc } = await started(SOAP_CONFIG);
    await tc.runTask('poll'); // 14:00, nothing entered yet
    expect(server.requests[0]?.body).toContain(`<bsvc:Updated_Through>${NOW}</bsvc:Updated_Through>`);
    entries.push({
      at: '2026-11-29T13:58:00.000Z',
      xml: worker('31', 'ria@example.com', { active: '0', terminated: '1', date: '2026-11-28' }),
    });
    entries.push({
      at: '2026-11-29T14:14:00.000Z',
      xml: worker('32', 'uma@example.com', { active: '0', terminated: '1', date: '2026-11-29' }),
    });
    tc.clock.set('2026-11-29T14:15:00.000Z');
    await tc.runTask('poll');
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      '31:terminated:2026-11-28',
      '31:terminated:2026-11-28',
      '32:terminated:2026-11-29',
      '32:terminated:2026-11-29',
    ]);
    // The next window reaches back over the entry of 14:14 again: read, nothing sent twice.
    tc.clock.set('2026-11-29T14:30:00.000Z');
    await tc.runTask('poll');
    expect(server.requests.at(-2)?.body).toContain(
      '<bsvc:Updated_From>2026-11-29T14:10:00.000Z</bsvc:Updated_From>',
    );
    expect(tc.counter('workday_records_total', { outcome: 'ignored' })).toBe(1);
    expect(tc.events()).toHaveLength(4);
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
