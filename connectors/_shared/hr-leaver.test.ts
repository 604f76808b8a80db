/**
 * The leaver policy around `leave` (garden leave up to a termination date) and the backfill
 * window, through the shared logic and through csv-drop, the connector whose exports say `leave`.
 */
import { mkdtempSync, readdirSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { InboundConnector } from '../../core/plugin-api/index.ts';
import { csvDropConnector } from '../csv-drop/index.ts';
import { mapExport, policyOf, type CsvDropState } from '../csv-drop/mapping.ts';
import {
  applyDeletion,
  applyWorker,
  emptyHrState,
  releaseDue,
  unnamedFor,
  unnamedLeaver,
  type HrState,
  type LeaverPolicy,
} from './hr-leaver.ts';
import { createTestContext, type TestContext } from './hr-test-support.ts';

const policy: LeaverPolicy = {
  termination_basis: 'termination_date',
  effective_time: '00:00',
  timezone: 'UTC',
  backfill_window: 30 * 86_400_000,
  subject_format: 'email',
  reason_admin: 'HR termination',
  issuer: 'https://hr.example.com',
};

const dana = { id: '1', email: 'dana@example.com' };
const LEAVER = ['risc.account-disabled', 'caep.session-revoked'];

function types(events: Array<{ type: string }>): string[] {
  return events.map((e) => e.type);
}

/** Dana is on garden leave from 21 January until her termination on 10 February. */
function gardenLeave(): HrState {
  const state = emptyHrState();
  applyWorker(state, { ...dana, status: 'active' }, policy, new Date('2026-01-20T09:00:00Z'));
  const held = applyWorker(
    state,
    { ...dana, status: 'leave', terminationDate: '2026-02-10' },
    policy,
    new Date('2026-01-21T09:00:00Z'),
  );
  expect(types(held.events)).toEqual(LEAVER);
  expect(state.pending['1:terminate']?.dueAt).toBe('2026-02-10T00:00:00.000Z');
  return state;
}

describe('leave around the termination date', () => {
  it('keeps a released termination when the record still says leave: no account-enabled', () => {
    const state = gardenLeave();
    expect(types(releaseDue(state, policy, new Date('2026-02-10T00:01:00Z')))).toEqual(LEAVER);
    const lagging = applyWorker(
      state,
      { ...dana, status: 'leave', terminationDate: '2026-02-10' },
      policy,
      new Date('2026-02-11T09:00:00Z'),
    );
    expect(lagging).toMatchObject({ events: [], ignored: expect.stringContaining('already reported') });
    expect(state.workers['1']).toMatchObject({ status: 'terminated', date: '2026-02-10', released: true });
    // The source then says terminated itself: nothing more.
    const final = applyWorker(
      state,
      { ...dana, status: 'terminated', terminationDate: '2026-02-10' },
      policy,
      new Date('2026-02-12T09:00:00Z'),
    );
    expect(final.events).toEqual([]);
    expect(state.workers['1']?.released).toBeUndefined();
  });

  it('sends a held termination whose date passed while the bridge was down, when the first record after it says leave', () => {
    const state = gardenLeave();
    const after = applyWorker(
      state,
      { ...dana, status: 'leave', terminationDate: '2026-02-10' },
      policy,
      new Date('2026-02-11T09:00:00Z'),
    );
    expect(after.events.map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', '1:terminated:2026-02-10', '2026-02-10T00:00:00.000Z'],
      ['caep.session-revoked', '1:terminated:2026-02-10', '2026-02-10T00:00:00.000Z'],
    ]);
    expect(state.pending).toEqual({});
    expect(state.workers['1']).toMatchObject({ status: 'terminated', date: '2026-02-10', released: true });
    expect(releaseDue(state, policy, new Date('2026-02-11T09:00:01Z'))).toEqual([]);
  });

  it('keeps a held termination whose time has come though the leave record no longer shows its date', () => {
    const state = gardenLeave();
    const after = applyWorker(state, { ...dana, status: 'leave' }, policy, new Date('2026-02-11T09:00:00Z'));
    expect(after.events.map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', '1:terminated:2026-02-10', '2026-02-10T00:00:00.000Z'],
      ['caep.session-revoked', '1:terminated:2026-02-10', '2026-02-10T00:00:00.000Z'],
    ]);
    expect(state.pending).toEqual({});
  });

  it('ends the employment of a worker on leave whose termination date has passed, with nothing held', () => {
    // The date was entered after it had passed (or while the bridge was down).
    const state = emptyHrState();
    applyWorker(state, { ...dana, status: 'active' }, policy, new Date('2026-01-20T09:00:00Z'));
    const late = applyWorker(
      state,
      { ...dana, status: 'leave', terminationDate: '2026-02-10' },
      policy,
      new Date('2026-02-11T09:00:00Z'),
    );
    expect(late.events.map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '1:terminated:2026-02-10'],
      ['caep.session-revoked', '1:terminated:2026-02-10'],
    ]);
  });

  it('still reads leave without a date as employed, and cancels a held termination rescinded before its date', () => {
    const state = emptyHrState();
    const parental = applyWorker(
      state,
      { ...dana, status: 'leave' },
      policy,
      new Date('2026-01-20T09:00:00Z'),
    );
    expect(parental).toMatchObject({ events: [], ignored: 'no leaver-relevant change' });
    expect(state.workers['1']?.status).toBe('active');

    const held = gardenLeave();
    const rescinded = applyWorker(
      held,
      { ...dana, status: 'leave' },
      policy,
      new Date('2026-02-01T09:00:00Z'),
    );
    expect(rescinded).toMatchObject({ events: [], ignored: expect.stringContaining('rescinded') });
    expect(held.pending).toEqual({});
  });

  it('an explicit active record still cancels and reverses: the same date is the source lagging, none a rehire', () => {
    const state = gardenLeave();
    releaseDue(state, policy, new Date('2026-02-10T00:01:00Z'));
    // Later that day.
    const now = new Date('2026-02-10T09:00:00Z');
    expect(
      applyWorker(state, { ...dana, status: 'active', terminationDate: '2026-02-10' }, policy, now).events,
    ).toEqual([]);
    expect(types(applyWorker(state, { ...dana, status: 'active' }, policy, now).events)).toEqual([
      'risc.account-enabled',
    ]);
  });

  it('never re-enables on a leave record a worker the source itself reported terminated', () => {
    const state = emptyHrState();
    const now = new Date('2026-02-11T09:00:00Z');
    applyWorker(state, { ...dana, status: 'terminated', terminationDate: '2026-02-10' }, policy, now);
    for (const terminationDate of ['2026-02-10', undefined, '2026-03-31']) {
      const leave = applyWorker(state, { ...dana, status: 'leave', terminationDate }, policy, now);
      expect(leave.events, String(terminationDate)).toEqual([]);
      expect(state.workers['1']?.status).toBe('terminated');
    }
  });
});

describe('backfill window', () => {
  it('records an old termination on first sight without events, flagged; an announced one is sent', () => {
    const state = emptyHrState();
    const now = new Date('2026-03-20T09:00:00Z');
    const old = { status: 'terminated' as const, terminationDate: '2026-02-06' };
    const quiet = applyWorker(state, { id: '7', email: 'old@example.com', ...old }, policy, now);
    expect(quiet).toMatchObject({ events: [], backfilled: true });
    expect(quiet.ignored).toContain('before the backfill window');
    const news = applyWorker(
      state,
      { id: '8', email: 'sam@example.com', ...old, announced: true },
      policy,
      now,
    );
    expect(types(news.events)).toEqual(LEAVER);
    expect(news.backfilled).toBeUndefined();
  });

  it('with undated: backfill, records an undated termination on first sight without events; an announced one, or a known worker’s, is sent', () => {
    const state = emptyHrState();
    const now = new Date('2026-03-20T09:00:00Z');
    const observedAt = now.toISOString();
    const first = { id: '7', email: 'old@example.com', status: 'terminated' as const, observedAt };
    // By default (Workday, BambooHR) it is a leaver as of when it was seen.
    expect(types(applyWorker(emptyHrState(), first, policy, now).events)).toEqual(LEAVER);
    const undated = { ...policy, undated: 'backfill' as const };
    const quiet = applyWorker(state, first, undated, now);
    expect(quiet).toMatchObject({ events: [], backfilled: true });
    expect(quiet.ignored).toContain('termination without a date, first seen');
    // No date is made up for it.
    expect(state.workers['7']).toEqual({ email: 'old@example.com', status: 'terminated' });
    const news = applyWorker(
      state,
      { id: '8', email: 'sam@example.com', status: 'terminated', observedAt, announced: true },
      undated,
      now,
    );
    expect(news.events.map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '8:terminated:2026-03-20'],
      ['caep.session-revoked', '8:terminated:2026-03-20'],
    ]);
    applyWorker(state, { id: '9', email: 'kim@example.com', status: 'active' }, undated, now);
    const known = applyWorker(
      state,
      { id: '9', email: 'kim@example.com', status: 'terminated', observedAt },
      undated,
      now,
    );
    expect(types(known.events)).toEqual(LEAVER);
    expect(known.backfilled).toBeUndefined();
  });
});

describe('a leaver no subject can be made for', () => {
  it('is flagged, in effect or held, and nothing is recorded', () => {
    const state = emptyHrState();
    const now = new Date('2026-03-20T09:00:00Z');
    // subject_format email, and no email on the record or known before.
    const inEffect = applyWorker(
      state,
      { id: '3', status: 'terminated', terminationDate: '2026-03-19', announced: true },
      policy,
      now,
    );
    expect(inEffect).toMatchObject({ events: [] });
    expect(unnamedLeaver(inEffect)).toBe(true);
    expect(inEffect.ignored).toContain('no usable work email');
    expect(state.workers['3']).toBeUndefined();
    const held = applyWorker(
      state,
      { id: '4', status: 'active', terminationDate: '2026-04-30' },
      policy,
      now,
    );
    expect(held.events).toEqual([]);
    expect(unnamedLeaver(held)).toBe(true);
    expect(state.pending).toEqual({});
    // Once the email is known, the same record is sent, unflagged.
    const named = applyWorker(
      state,
      {
        id: '3',
        email: 'lee@example.com',
        status: 'terminated',
        terminationDate: '2026-03-19',
        announced: true,
      },
      policy,
      now,
    );
    expect(types(named.events)).toEqual(LEAVER);
    expect(unnamedLeaver(named)).toBe(false);
    // A rehire or a deletion that cannot be named is no leaver.
    applyWorker(state, { id: '5', status: 'active' }, policy, now);
    expect(unnamedLeaver(applyDeletion(state, '5', undefined, policy, undefined, now))).toBe(false);
  });
});

describe('a termination the bridge released while the source still showed the worker active', () => {
  /** Dana's termination of 31 January, entered on 10 January, released by the bridge on its date. */
  function released(): HrState {
    const state = emptyHrState();
    applyWorker(state, { ...dana, status: 'active' }, policy, new Date('2026-01-05T09:00:00Z'));
    const held = applyWorker(
      state,
      { ...dana, status: 'active', terminationDate: '2026-01-31' },
      policy,
      new Date('2026-01-10T09:00:00Z'),
    );
    expect(types(held.events)).toEqual(LEAVER);
    expect(types(releaseDue(state, policy, new Date('2026-01-31T00:01:00Z')))).toEqual(LEAVER);
    return state;
  }

  it('reads the record still active with that date as the source lagging on that day only: a rehire months later is sent', () => {
    const state = released();
    const lagging = { ...dana, status: 'active' as const, terminationDate: '2026-01-31' };
    expect(applyWorker(state, lagging, policy, new Date('2026-01-31T17:00:00Z')).events).toEqual([]);
    expect(state.workers['1']).toMatchObject({ status: 'terminated', released: true });
    // 1 June: rehired; the record never showed the termination, and keeps its date.
    const rehire = applyWorker(state, lagging, policy, new Date('2026-06-01T09:00:00Z'));
    expect(rehire.events.map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-enabled', '1:enabled:after:2026-01-31'],
    ]);
    expect(state.workers['1']).toEqual({ email: 'dana@example.com', status: 'active', reversals: 1 });
  });

  it('takes a hire date after the termination date for a rehire, even on that day; one ahead is held until it', () => {
    const sameDay = released();
    const rehire = applyWorker(
      sameDay,
      { ...dana, status: 'active', terminationDate: '2026-01-31', hireDate: '2026-01-31' },
      policy,
      new Date('2026-01-31T17:00:00Z'),
    );
    // A hire date on the termination date is the old employment's start at the latest: no rehire.
    expect(rehire.events).toEqual([]);
    const state = released();
    const ahead = applyWorker(
      state,
      { ...dana, status: 'active', terminationDate: '2026-01-31', hireDate: '2026-02-02' },
      policy,
      new Date('2026-01-31T17:00:00Z'),
    );
    expect(ahead.events).toEqual([
      expect.objectContaining({ type: 'risc.account-enabled', occurredAt: '2026-02-02T00:00:00.000Z' }),
    ]);
    expect(state.pending['1:enable']?.dueAt).toBe('2026-02-02T00:00:00.000Z');
    expect(types(releaseDue(state, policy, new Date('2026-02-02T00:00:00Z')))).toEqual([
      'risc.account-enabled',
    ]);
  });
});

describe('an email another active employee has now', () => {
  const aliases: LeaverPolicy = { ...policy, subject_format: 'aliases' };

  /** Dana, a contingent worker (C100), is hired as an employee (E200): HR moves her email over. */
  function converted(leaverPolicy: LeaverPolicy): HrState {
    const state = emptyHrState();
    const day = (at: string) => new Date(`2026-03-02T${at}Z`);
    applyWorker(
      state,
      { id: 'C100', email: 'dana@example.com', status: 'active' },
      leaverPolicy,
      day('08:00:00'),
    );
    applyWorker(
      state,
      { id: 'E200', email: 'dana@example.com', status: 'active' },
      leaverPolicy,
      day('09:00:00'),
    );
    applyWorker(state, { id: 'C100', status: 'active' }, leaverPolicy, day('09:05:00'));
    return state;
  }
  const ended = { id: 'C100', status: 'terminated' as const, terminationDate: '2026-03-02' };
  const now = new Date('2026-03-02T10:00:00Z');

  it('is not the subject of the old record’s termination: refused and flagged with subject_format email', () => {
    const state = converted(policy);
    const out = applyWorker(state, ended, policy, now);
    expect(out.events).toEqual([]);
    expect(unnamedLeaver(out)).toBe(true);
    expect(unnamedFor(out)).toBe('E200');
    expect(out.ignored).toContain('belongs to active employee E200 now');
  });

  it('leaves the HR id alone as the subject with subject_format aliases', () => {
    const state = converted(aliases);
    const out = applyWorker(state, ended, aliases, now);
    expect(out.events.map((e) => [e.type, e.subject])).toEqual([
      ['risc.account-disabled', { format: 'iss_sub', iss: policy.issuer, sub: 'C100' }],
      ['caep.session-revoked', { format: 'iss_sub', iss: policy.issuer, sub: 'C100' }],
    ]);
    expect(unnamedLeaver(out)).toBe(false);
  });

  it('is not purged when a duplicate record is deleted, nor by a held termination or purge released later', () => {
    const state = emptyHrState();
    applyWorker(state, { id: '100', email: 'dana@example.com', status: 'active' }, policy, now);
    applyWorker(state, { id: '101', email: 'Dana@example.com', status: 'active' }, policy, now);
    const deleted = applyDeletion(state, '101', undefined, policy, undefined, now);
    expect(deleted.events).toEqual([]);
    expect(unnamedFor(deleted)).toBe('100');
    const purged = applyDeletion(state, '101', undefined, aliases, undefined, now);
    expect(purged.ignored).toBe('employee already purged');
    const withAliases = emptyHrState();
    applyWorker(withAliases, { id: '100', email: 'dana@example.com', status: 'active' }, aliases, now);
    applyWorker(withAliases, { id: '101', email: 'dana@example.com', status: 'active' }, aliases, now);
    expect(applyDeletion(withAliases, '101', undefined, aliases, undefined, now).events).toEqual([
      expect.objectContaining({
        type: 'risc.account-purged',
        subject: { format: 'iss_sub', iss: policy.issuer, sub: '101' },
      }),
    ]);

    // C100's termination was held for 31 March before E200 took the email.
    const purging = { ...policy, purge_after: 30 * 86_400_000 };
    const held = emptyHrState();
    applyWorker(held, { id: 'C100', email: 'dana@example.com', status: 'active' }, purging, now);
    const entered = applyWorker(
      held,
      { id: 'C100', email: 'dana@example.com', status: 'active', terminationDate: '2026-03-31' },
      purging,
      now,
    );
    expect(types(entered.events)).toEqual(LEAVER);
    applyWorker(held, { id: 'E200', email: 'dana@example.com', status: 'active' }, purging, now);
    const refused: string[] = [];
    expect(releaseDue(held, purging, new Date('2026-03-31T00:00:00Z'), refused)).toEqual([]);
    expect(refused).toEqual(['C100']);
    expect(held.workers['C100']).toMatchObject({ status: 'terminated', date: '2026-03-31' });
    expect(held.pending).toEqual({});
  });

  it('names the leaver whose record shows it, though an old record remembers it; and is used again once that one has left', () => {
    const state = converted(policy);
    const named = { format: 'email', email: 'dana@example.com' };
    const left = applyWorker(
      state,
      { id: 'E200', email: 'dana@example.com', status: 'terminated', terminationDate: '2026-03-02' },
      policy,
      now,
    );
    expect(left.events.map((e) => [e.type, e.subject])).toEqual([
      ['risc.account-disabled', named],
      ['caep.session-revoked', named],
    ]);
    expect(applyWorker(state, ended, policy, now).events.map((e) => e.subject)).toEqual([named, named]);
  });
});

describe('a rehire dated ahead', () => {
  const purging = { ...policy, purge_after: 90 * 86_400_000 };

  /** Dana left on 10 February; on 1 March HR enters her rehire from 4 May. */
  function rehireEntered(): HrState {
    const state = emptyHrState();
    applyWorker(state, { ...dana, status: 'active' }, purging, new Date('2026-02-01T09:00:00Z'));
    const left = applyWorker(
      state,
      { ...dana, status: 'terminated', terminationDate: '2026-02-10' },
      purging,
      new Date('2026-02-10T09:00:00Z'),
    );
    expect(types(left.events)).toEqual(LEAVER);
    const entered = applyWorker(
      state,
      { ...dana, status: 'active', activeFrom: '2026-05-04' },
      purging,
      new Date('2026-03-01T09:00:00Z'),
    );
    // Returned with its day, so a dry run shows it; held until then.
    expect(entered.events).toEqual([
      expect.objectContaining({
        type: 'risc.account-enabled',
        sourceRecordId: '1:enabled:after:2026-02-10',
        occurredAt: '2026-05-04T00:00:00.000Z',
      }),
    ]);
    expect(state.workers['1']).toMatchObject({ status: 'terminated', date: '2026-02-10' });
    expect(Object.keys(state.pending).sort()).toEqual(['1:enable', '1:purge']);
    return state;
  }

  it('holds account-enabled until its day and sends it once; the purge due after it is cancelled', () => {
    const state = rehireEntered();
    const again = applyWorker(
      state,
      { ...dana, status: 'active', activeFrom: '2026-05-04' },
      purging,
      new Date('2026-03-02T09:00:00Z'),
    );
    expect(again).toMatchObject({ events: [], ignored: expect.stringContaining('rehire already scheduled') });
    expect(releaseDue(state, purging, new Date('2026-05-03T23:59:00Z'))).toEqual([]);
    // The bridge was down over both days: the rehire (4 May) comes before the purge (11 May).
    const released = releaseDue(state, purging, new Date('2026-06-01T00:00:00Z'));
    expect(released.map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-enabled', '1:enabled:after:2026-02-10'],
    ]);
    expect(state.pending).toEqual({});
    expect(state.workers['1']).toEqual({ email: 'dana@example.com', status: 'active', reversals: 1 });
    // Employed again: the next record of her as active sends nothing.
    expect(
      applyWorker(state, { ...dana, status: 'active' }, purging, new Date('2026-06-02T09:00:00Z')).events,
    ).toEqual([]);
  });

  it('is sent at once when the day moves to one that has come, and cancelled by a record saying terminated', () => {
    const early = rehireEntered();
    const now = applyWorker(
      early,
      { ...dana, status: 'active', activeFrom: '2026-03-02' },
      purging,
      new Date('2026-03-05T09:00:00Z'),
    );
    expect(now.events.map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-enabled', '1:enabled:after:2026-02-10', undefined],
    ]);
    expect(early.pending).toEqual({});

    const cancelled = rehireEntered();
    const still = applyWorker(
      cancelled,
      { ...dana, status: 'terminated', terminationDate: '2026-02-10' },
      purging,
      new Date('2026-03-05T09:00:00Z'),
    );
    expect(still.events).toEqual([]);
    expect(still.ignored).toContain('rehire scheduled for 2026-05-04T00:00:00.000Z cancelled');
    expect(Object.keys(cancelled.pending)).toEqual(['1:purge']);
    expect(releaseDue(cancelled, purging, new Date('2026-05-05T00:00:00Z'))).toEqual([]);
  });

  it('follows a change of email, and is cancelled by a deletion', () => {
    const state = rehireEntered();
    applyWorker(
      state,
      { id: '1', email: 'dana.berg@example.com', status: 'active', activeFrom: '2026-05-04' },
      purging,
      new Date('2026-03-10T09:00:00Z'),
    );
    expect(state.pending['1:enable']?.events[0]?.subject).toEqual({
      format: 'email',
      email: 'dana.berg@example.com',
    });
    applyDeletion(state, '1', undefined, purging, '2026-03-11T09:00:00Z', new Date('2026-03-11T09:00:00Z'));
    expect(state.pending).toEqual({});
  });
});

// ---------------------------------------------------------------------------------------------
// Through csv-drop, whose exports say `leave`

const HEADER = 'employee_id,email,status,effective_date,termination_date\n';
const CONFIG = { timezone: 'UTC', settle_time: '5s' };

describe('csv-drop garden leave (mapping)', () => {
  const config = csvDropConnector.configSchema.parse({ folder: '/unused', ...CONFIG });
  const run = (csv: string, state: CsvDropState | undefined, now: string) =>
    mapExport(HEADER + csv, config, state, new Date(now));

  it('released, then the next export still says leave: nothing more, and no account-enabled', () => {
    let state = run('1,dana@example.com,active,2025-01-01,\n', undefined, '2026-01-20T09:00:00Z').state;
    state = run('1,dana@example.com,leave,2026-01-21,2026-02-10\n', state, '2026-01-21T09:00:00Z').state;
    expect(types(releaseDue(state!, policyOf(config), new Date('2026-02-10T00:01:00Z')))).toEqual(LEAVER);
    const next = run('1,dana@example.com,leave,2026-01-21,2026-02-10\n', state, '2026-02-11T09:00:00Z');
    expect(next.events).toEqual([]);
    const final = run(
      '1,dana@example.com,terminated,2026-02-10,2026-02-10\n',
      next.state,
      '2026-02-12T09:00:00Z',
    );
    expect(final.events).toEqual([]);
  });

  it('the first export after the date says leave: the held leaver is sent, not rescinded', () => {
    let state = run('1,dana@example.com,active,2025-01-01,\n', undefined, '2026-01-20T09:00:00Z').state;
    state = run('1,dana@example.com,leave,2026-01-21,2026-02-10\n', state, '2026-01-21T09:00:00Z').state;
    const after = run('1,dana@example.com,leave,2026-01-21,2026-02-10\n', state, '2026-02-11T09:00:00Z');
    expect(after.events.map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '1:terminated:2026-02-10'],
      ['caep.session-revoked', '1:terminated:2026-02-10'],
    ]);
    expect(after.state?.pending).toEqual({});
  });
});

describe('csv-drop garden leave (a watched folder)', () => {
  let folder: string;
  beforeEach(() => {
    folder = mkdtempSync(join(tmpdir(), 'hr-leave-'));
  });
  afterEach(() => rmSync(folder, { recursive: true, force: true }));

  /** Drops a settled export (dated a minute ago, renamed into place). */
  function drop(name: string, rows: string): void {
    const file = join(folder, name);
    writeFileSync(`${file}.staging`, HEADER + rows);
    const at = new Date(Date.now() - 60_000);
    utimesSync(`${file}.staging`, at, at);
    renameSync(`${file}.staging`, file);
  }

  /** A file is claimed once a second scan finds it as the first did. */
  async function scanTwice(tc: TestContext<CsvDropState>): Promise<void> {
    await tc.runTask('scan');
    await tc.runTask('scan');
  }

  async function started(tc: TestContext<CsvDropState>): Promise<InboundConnector> {
    const connector = csvDropConnector.create(
      tc.ctx,
      csvDropConnector.configSchema.parse({ folder, ...CONFIG }),
    );
    await connector.start(tc.ctx.signal);
    return connector;
  }

  // Daily exports: Dana, and Eli, who stays; on 11 February a new hire joins the export.
  const eli = '2,eli@example.com,active,2024-05-01,\n';
  const onLeave = '1,dana@example.com,leave,2026-01-21,2026-02-10\n';

  it('releases the leaver on its date and sends nothing when the next exports still say leave', async () => {
    const tc = createTestContext<CsvDropState>({ now: '2026-01-20T09:00:00Z' });
    const connector = await started(tc);
    drop('hr_2026-01-20.csv', `1,dana@example.com,active,2025-01-01,\n${eli}`);
    await scanTwice(tc);
    tc.clock.set('2026-01-21T09:00:00Z');
    drop('hr_2026-01-21.csv', onLeave + eli);
    await scanTwice(tc);
    expect(tc.events()).toEqual([]);
    tc.clock.set('2026-02-10T00:01:00Z');
    await tc.runTask('release');
    expect(types(tc.events())).toEqual(LEAVER);
    tc.clock.set('2026-02-11T09:00:00Z');
    drop('hr_2026-02-11.csv', `${onLeave}${eli}3,fay@example.com,active,2026-02-11,\n`);
    await scanTwice(tc);
    expect(readdirSync(join(folder, 'processed'))).toHaveLength(3);
    expect(types(tc.events())).toEqual(LEAVER);
    await connector.stop(100);
  });

  it('sends the leaver when the bridge was down over the date and the first export after it says leave', async () => {
    const tc = createTestContext<CsvDropState>({ now: '2026-01-20T09:00:00Z' });
    let connector = await started(tc);
    drop('hr_2026-01-20.csv', `1,dana@example.com,active,2025-01-01,\n${eli}`);
    await scanTwice(tc);
    tc.clock.set('2026-01-21T09:00:00Z');
    drop('hr_2026-01-21.csv', onLeave + eli);
    await scanTwice(tc);
    await connector.stop(100);
    // Down from 9 to 11 February; on restart the scan reads the new export before releasing.
    const after = createTestContext<CsvDropState>({
      now: '2026-02-11T09:00:00Z',
      checkpoints: tc.checkpoints,
    });
    connector = await started(after);
    drop('hr_2026-02-11.csv', `${onLeave}${eli}3,fay@example.com,active,2026-02-11,\n`);
    await scanTwice(after);
    expect(after.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '1:terminated:2026-02-10'],
      ['caep.session-revoked', '1:terminated:2026-02-10'],
    ]);
    expect((after.checkpoints.get('default') as CsvDropState).pending).toEqual({});
    await connector.stop(100);
  });
});
