/**
 * The HR leaver policy: from what an HR system says about one employee (and what was known
 * before) to the CAEP/RISC events a leaver, a rehire, a deletion or an identifier change calls
 * for. Pure: time is a parameter, and the state passed in is changed in place (callers that
 * need purity clone it first).
 *
 * Shared by the HR connectors (workday, bamboohr, hibob, csv-drop).
 */
import {
  duration,
  usableEmail,
  z,
  type EventDraft,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';

/** An HR record reduced to what the policy reads. */
export interface HrWorker {
  /** The HR system's employee id. */
  id: string;
  /** Work email, as the HR system has it now. */
  email?: string | undefined;
  /** The email the record says the employee had before (CSV `previous_email`). */
  previousEmail?: string | undefined;
  username?: string | undefined;
  /** What the HR system says of the employment; `unknown` when the source has no status. */
  status: 'active' | 'terminated' | 'leave' | 'unknown';
  /** `YYYY-MM-DD`. */
  terminationDate?: string | undefined;
  /** `YYYY-MM-DD`. */
  lastDayOfWork?: string | undefined;
  /**
   * `YYYY-MM-DD`: the start of the current employment, where the record carries one. A hire date
   * after the termination date the record still shows is a later employment's: a rehire.
   */
  hireDate?: string | undefined;
  /**
   * `YYYY-MM-DD`: the day an `active` status takes effect (csv-drop's `effective_date`). A
   * leaver shown active from a day ahead is rehired then: account-enabled is held until it.
   */
  activeFrom?: string | undefined;
  /** When the source saw the change (ISO 8601); dates an undated termination. */
  observedAt?: string | undefined;
  /**
   * An instant (ISO 8601) by which the source says the termination has taken effect, such as
   * Bob's `employee.left`: the termination takes effect then if its date's `effective_time` in
   * `timezone` comes later (an employee in a time zone ahead of the configured one).
   */
  effectiveBy?: string | undefined;
  /**
   * The record is news, so a termination it shows is sent even on first sight of the employee
   * and however long ago its date: a termination entered late is still a leaver to cut off. The
   * source announces the termination as it happens (Bob's `employee.left`, a BambooHR webhook
   * naming an employment field), or a change feed brought the record up after the connector's
   * first read (a transaction log, a changed-since query): most of a workforce is first seen
   * there at its first change after go-live. The backfill window only keeps quiet the old
   * leavers that a first read, or a full listing, finds.
   */
  announced?: boolean | undefined;
}

export type WorkerStatus = 'active' | 'terminated' | 'deleted';

/** What is remembered of an employee between records. */
export interface WorkerSnapshot {
  email?: string | undefined;
  username?: string | undefined;
  status: WorkerStatus;
  /** Date of the termination that was reported (terminated and deleted workers). */
  date?: string | undefined;
  /**
   * How many times a reported termination was reversed (account-enabled sent). It tells a
   * termination re-entered after a rescind from the first one on the same date, so it is not
   * taken for a duplicate (same record id, same jti) and dropped.
   */
  reversals?: number | undefined;
  /**
   * How many identifier changes were reported. It tells a change back to an earlier address and
   * away again (a → b → a → b) from the first one, so it is not taken for a duplicate and dropped.
   */
  renames?: number | undefined;
  /**
   * The termination was sent by the bridge when its date came, while the source still showed
   * the worker active (HR changes the status later that day). On that day, until the source says
   * terminated itself, a record still active with that date is the source lagging, not a rehire.
   */
  released?: boolean | undefined;
  /**
   * The email is remembered from an earlier record: the last one showed none (HR moved it to
   * another record, or the field is hidden). A worker whose record shows an email now has it
   * before one that only remembers it (see emailOwner).
   */
  remembered?: boolean | undefined;
}

/**
 * Events held until their time: a future-dated termination, a purge after retention, or a
 * rehire dated ahead (`enable`).
 */
export interface PendingChange {
  kind: 'terminate' | 'purge' | 'enable';
  employeeId: string;
  /** The termination date it belongs to (of a rehire: the day it takes effect). */
  date: string;
  /** ISO 8601 instant at which the events are emitted. */
  dueAt: string;
  events: EventDraft[];
}

export interface HrState {
  workers: Record<string, WorkerSnapshot>;
  pending: Record<string, PendingChange>;
}

const draftSchema = z.looseObject({
  type: z.string().min(1),
  subject: z.looseObject({ format: z.string().min(1) }),
  claims: z.record(z.string(), z.unknown()).optional(),
  sourceRecordId: z.string().min(1),
  occurredAt: z.union([z.string(), z.date()]).optional(),
});

/** Schema of the part of a connector's checkpoint the policy owns. */
export const hrStateShape = {
  workers: z.record(
    z.string(),
    z.object({
      email: z.string().optional(),
      username: z.string().optional(),
      status: z.enum(['active', 'terminated', 'deleted']),
      date: z.string().optional(),
      reversals: z.number().int().nonnegative().optional(),
      renames: z.number().int().nonnegative().optional(),
      released: z.boolean().optional(),
      remembered: z.boolean().optional(),
    }),
  ),
  pending: z.record(
    z.string(),
    z.object({
      kind: z.enum(['terminate', 'purge', 'enable']),
      employeeId: z.string(),
      date: z.string(),
      dueAt: z.string(),
      events: z.array(draftSchema),
    }),
  ),
};

export function emptyHrState(): HrState {
  return { workers: {}, pending: {} };
}

function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** The `backfill_window` config field; a connector may override it to say what it reads. */
export function backfillWindow(description: string) {
  return duration(description).prefault('30d');
}

/** Config fields every HR connector shares; spread into its config schema. */
export const leaverPolicyShape = {
  termination_basis: z.enum(['termination_date', 'last_day_of_work']).default('termination_date').meta({
    description:
      'Which date makes a termination take effect: the termination date, or the last day of work (each falls back to the other when missing).',
  }),
  effective_time: z
    .string()
    .regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'must be a time of day such as 00:00 or 18:30')
    .default('00:00')
    .meta({ description: 'Time of day (in `timezone`) at which a termination date takes effect.' }),
  timezone: z
    .string()
    .refine(validTimeZone, 'must be an IANA time zone such as Europe/Berlin or UTC')
    .default('UTC')
    .meta({ description: 'IANA time zone that termination dates are read in.' }),
  backfill_window: backfillWindow(
    "Keeps old leavers quiet: an employee first seen by the connector's first read (or in a full listing) with a termination that took effect before this window is recorded without events. A termination that a change feed (Workday's transaction log or changed-since report, BambooHR polling) or an announcing webhook brings up later is sent however old its date.",
  ),
  purge_after: duration(
    'When set, RISC account-purged is sent this long after a termination took effect (a rehire cancels it).',
  ).optional(),
  subject_format: z.enum(['aliases', 'email']).default('aliases').meta({
    description:
      '`aliases`: the work email plus the HR id (iss_sub) as an alias; `email`: the work email only (use it for Okta ITP, which takes one identifier).',
  }),
  hr_id_issuer: z
    .url()
    .optional()
    .meta({ description: 'The `iss` of the HR-id alias (iss_sub). Defaults to the HR system URL.' }),
  reason_admin: z
    .string()
    .min(1)
    .default('HR termination')
    .meta({ description: 'Message sent as `reason_admin.en` with CAEP session-revoked.' }),
};

export interface LeaverPolicy {
  termination_basis: 'termination_date' | 'last_day_of_work';
  effective_time: string;
  timezone: string;
  backfill_window: number;
  purge_after?: number | undefined;
  subject_format: 'aliases' | 'email';
  reason_admin: string;
  /** `iss` of the HR-id alias, resolved by the connector. */
  issuer: string;
  /**
   * A termination without a date, on first sight and not announced: `now` (the default) sends it
   * as of when it was seen (Workday's and BambooHR's inactive worker); `backfill` records it
   * without events, as an old leaver, since it may have taken effect at any time (a source whose
   * old leavers often lack a date, where "now" would send them all on the first read).
   */
  undated?: 'now' | 'backfill' | undefined;
}

/** The policy of a config that spreads leaverPolicyShape, with the HR-id issuer resolved. */
export function leaverPolicy(
  config: Omit<LeaverPolicy, 'issuer' | 'undated'>,
  issuer: string,
  options: Pick<LeaverPolicy, 'undated'> = {},
): LeaverPolicy {
  return {
    ...options,
    termination_basis: config.termination_basis,
    effective_time: config.effective_time,
    timezone: config.timezone,
    backfill_window: config.backfill_window,
    purge_after: config.purge_after,
    subject_format: config.subject_format,
    reason_admin: config.reason_admin,
    issuer,
  };
}

export interface LeaverOutcome {
  events: EventDraft[];
  /** Why nothing was emitted (set only when `events` is empty). */
  ignored?: string;
  /**
   * A termination in effect before the backfill window (or, with `undated: backfill`, without a
   * date), on first sight of the employee and not announced: recorded without events.
   * Connectors count these and log the count.
   */
  backfilled?: boolean;
}

/**
 * Outcomes of a termination or purge that no subject could be made for (see unnamedLeaver), with
 * the active employee whose email it would have named, if that was why.
 */
const unnamedOutcomes = new WeakMap<LeaverOutcome, { owner?: string | undefined }>();

/**
 * Whether `outcome`, as applyWorker (or applyDeletion) returned it, is a termination (in effect or
 * held) or a purge that no subject could be made for: subject_format is email and no usable email
 * is known, or the only one known belongs to another active employee now (see emailOwner).
 * Nothing was sent, so a connector must not let it pass silently (a webhook is answered so that
 * the sender retries). A predicate, not a field: callers compare outcomes whole.
 */
export function unnamedLeaver(outcome: LeaverOutcome): boolean {
  return unnamedOutcomes.has(outcome);
}

/** The active employee whose email an unnamed leaver (see unnamedLeaver) would have named, if any. */
export function unnamedFor(outcome: LeaverOutcome): string | undefined {
  return unnamedOutcomes.get(outcome)?.owner;
}

function unnamed(outcome: LeaverOutcome, owner?: string): LeaverOutcome {
  unnamedOutcomes.set(outcome, { owner });
  return outcome;
}

/**
 * Another employee, active, whose email `email` is now: an email moves to a new record when a
 * contingent worker is hired as an employee, and a duplicate record shares it. A termination or
 * purge of `employeeId` must not name it, or it would end that employee's account. One that
 * only remembers the email (its record no longer shows it) has it only from another that only
 * remembers it too (`remembered`): one whose record shows it has it first.
 */
export function emailOwner(
  state: HrState,
  employeeId: string,
  email: string | undefined,
  remembered = false,
): string | undefined {
  if (email === undefined) return undefined;
  for (const [id, known] of Object.entries(state.workers)) {
    if (id === employeeId || known.status !== 'active' || known.email === undefined) continue;
    if ((remembered || !known.remembered) && sameIdentifier(known.email, email)) return id;
  }
  return undefined;
}

/**
 * The email a termination or purge of `employeeId`, as its snapshot stands, may name: not one
 * another active employee has.
 */
function ownEmail(state: HrState, employeeId: string, email: string | undefined): string | undefined {
  const remembered = state.workers[employeeId]?.remembered === true;
  return emailOwner(state, employeeId, email, remembered) === undefined ? email : undefined;
}

/** Why a leaver went unnamed: no email, or one that another active employee has now. */
function unnamedNote(owner: string | undefined): string {
  return owner === undefined
    ? NO_EMAIL
    : `the only work email known belongs to active employee ${owner} now, and subject_format is email`;
}

function sameIdentifier(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

const DATE = /^(\d{4})-(\d{2})-(\d{2})/;

/**
 * An HR date as `YYYY-MM-DD`. Blanks and `0000-00-00` (BambooHR's "unset") give undefined;
 * Workday's offset form `2026-01-15-08:00` and date-times give their date; anything else is
 * refused with an Error.
 */
export function hrDate(value: unknown, field: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw new Error(`${field}: expected a date, got ${typeof value}`);
  const text = value.trim();
  if (text === '' || text.startsWith('0000-00-00')) return undefined;
  const m = DATE.exec(text);
  const rest = m ? text.slice(10) : '';
  if (!m || !(rest === '' || /^(?:[T ].*|[+-]\d{2}:\d{2}|Z)$/.test(rest))) {
    throw new Error(`${field}: "${text}" is not a date (expected YYYY-MM-DD)`);
  }
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const probe = new Date(Date.UTC(year, month - 1, day));
  if (probe.getUTCFullYear() !== year || probe.getUTCMonth() !== month - 1 || probe.getUTCDate() !== day) {
    throw new Error(`${field}: "${text}" is not a calendar date`);
  }
  return `${m[1]}-${m[2]}-${m[3]}`;
}

/** One formatter per time zone: making one costs far more than using it (a full report reads thousands of dates). */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let format = formatters.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, format);
  }
  return format;
}

function zoneOffsetMs(utcMs: number, timeZone: string): number {
  const parts = formatter(timeZone).formatToParts(new Date(utcMs));
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const wall = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
  return wall - Math.floor(utcMs / 1000) * 1000;
}

/** The instant at which `date` at `time` (HH:MM) happens in `timeZone`. */
export function zonedInstant(date: string, time: string, timeZone: string): Date {
  const [y, mo, d] = date.split('-').map(Number) as [number, number, number];
  const [h, mi] = time.split(':').map(Number) as [number, number];
  const wall = Date.UTC(y, mo - 1, d, h, mi);
  // An offset is right when the instant it gives shows the wall time again. The offset at the
  // wall time read as UTC is a first guess, the offset at its instant a second. Inside a DST
  // gap neither is right, and the wall time is read with the offset from before the change
  // (the smaller: clocks go forward), which lands just after it, as in every hemisphere.
  const first = zoneOffsetMs(wall, timeZone);
  if (zoneOffsetMs(wall - first, timeZone) === first) return new Date(wall - first);
  const second = zoneOffsetMs(wall - first, timeZone);
  if (zoneOffsetMs(wall - second, timeZone) === second) return new Date(wall - second);
  return new Date(wall - Math.min(first, second));
}

/** The calendar date of an instant in `timeZone`, as `YYYY-MM-DD`. */
export function zonedDate(instant: Date, timeZone: string): string {
  const local = new Date(instant.getTime() + zoneOffsetMs(instant.getTime(), timeZone));
  return local.toISOString().slice(0, 10);
}

/** The subject of leaver events: the work email, with the HR id as an alias unless told otherwise. */
export function leaverSubject(
  employeeId: string,
  email: string | undefined,
  policy: LeaverPolicy,
): SubjectIdentifier | undefined {
  const hrId: SubjectIdentifier = { format: 'iss_sub', iss: policy.issuer, sub: employeeId };
  if (policy.subject_format === 'email') return email ? { format: 'email', email } : undefined;
  return email ? { format: 'aliases', identifiers: [{ format: 'email', email }, hrId] } : hrId;
}

/**
 * The part of a leaver record id that tells the termination cycles of one employee apart: none
 * for the first (so ids stay as they always were), `:<n>` after the n-th reversal.
 */
function cycle(reversals: number | undefined): string {
  return reversals ? `:${reversals}` : '';
}

function terminationEvents(
  employeeId: string,
  email: string | undefined,
  date: string,
  occurredAt: string,
  policy: LeaverPolicy,
  reversals: number | undefined,
): EventDraft[] | undefined {
  const subject = leaverSubject(employeeId, email, policy);
  if (!subject) return undefined;
  const sourceRecordId = `${employeeId}:terminated:${date}${cycle(reversals)}`;
  return [
    { type: 'risc.account-disabled', subject, claims: {}, sourceRecordId, occurredAt },
    {
      type: 'caep.session-revoked',
      subject,
      claims: { initiating_entity: 'admin', reason_admin: { en: policy.reason_admin } },
      sourceRecordId,
      occurredAt,
    },
  ];
}

/** account-enabled after the termination of `after`; `occurredAt` only for a rehire held to its day. */
function enabledEvent(
  employeeId: string,
  email: string | undefined,
  after: string | undefined,
  occurredAt: string | undefined,
  policy: LeaverPolicy,
  reversals: number | undefined,
): EventDraft[] | undefined {
  const subject = leaverSubject(employeeId, email, policy);
  if (!subject) return undefined;
  return [
    {
      type: 'risc.account-enabled',
      subject,
      claims: {},
      sourceRecordId: `${employeeId}:enabled:after:${after ?? 'termination'}${cycle(reversals)}`,
      ...(occurredAt ? { occurredAt } : {}),
    },
  ];
}

function purgeEvent(
  employeeId: string,
  email: string | undefined,
  label: string,
  occurredAt: string | undefined,
  policy: LeaverPolicy,
  reversals: number | undefined,
): EventDraft[] | undefined {
  const subject = leaverSubject(employeeId, email, policy);
  if (!subject) return undefined;
  return [
    {
      type: 'risc.account-purged',
      subject,
      claims: {},
      sourceRecordId: `${employeeId}:purged:${label}${cycle(reversals)}`,
      ...(occurredAt ? { occurredAt } : {}),
    },
  ];
}

function identifierChanged(
  employeeId: string,
  from: string,
  to: string,
  kind: string,
  renames: number | undefined,
): EventDraft {
  return {
    type: 'risc.identifier-changed',
    subject: { format: 'email', email: from },
    claims: { 'new-value': to },
    sourceRecordId: `${employeeId}:${kind}-changed:${from.toLowerCase()}:${to.toLowerCase()}${cycle(renames)}`,
  };
}

const NO_EMAIL = 'no usable work email on the record, and subject_format is email';

/** Rebuilds the held changes of an employee about its current email: the old may go to someone else. */
function followEmail(state: HrState, id: string, email: string | undefined, policy: LeaverPolicy): void {
  const reversals = state.workers[id]?.reversals;
  const own = ownEmail(state, id, email);
  const held = state.pending[`${id}:terminate`];
  const leaver = held && terminationEvents(id, own, held.date, held.dueAt, policy, reversals);
  if (held && leaver) held.events = leaver;
  const purge = state.pending[`${id}:purge`];
  const rebuilt = purge && purgeEvent(id, own, purge.date, purge.dueAt, policy, reversals);
  if (purge && rebuilt) purge.events = rebuilt;
  const rehire = state.pending[`${id}:enable`];
  const enabled = rehire && enabledEvent(id, email, state.workers[id]?.date, rehire.dueAt, policy, reversals);
  if (rehire && enabled) rehire.events = enabled;
}

/** Schedules (or emits, when already due) the purge that follows a termination. */
function schedulePurge(
  state: HrState,
  employeeId: string,
  email: string | undefined,
  date: string,
  effectiveAt: Date,
  now: Date,
  policy: LeaverPolicy,
  events: EventDraft[],
): void {
  if (policy.purge_after === undefined) return;
  const dueAt = new Date(effectiveAt.getTime() + policy.purge_after);
  const reversals = state.workers[employeeId]?.reversals;
  const own = ownEmail(state, employeeId, email);
  const purge = purgeEvent(employeeId, own, date, dueAt.toISOString(), policy, reversals);
  if (!purge) return;
  if (dueAt.getTime() <= now.getTime()) {
    events.push(...purge);
    state.workers[employeeId] = { ...state.workers[employeeId], email, status: 'deleted', date };
    return;
  }
  state.pending[`${employeeId}:purge`] = {
    kind: 'purge',
    employeeId,
    date,
    dueAt: dueAt.toISOString(),
    events: purge,
  };
}

/**
 * Applies one HR record: emits what changed since the snapshot, schedules future-dated
 * terminations (returned with their future `occurredAt` so dry runs show them), cancels
 * rescinded ones, and updates the snapshot.
 */
export function applyWorker(
  state: HrState,
  worker: HrWorker,
  policy: LeaverPolicy,
  now: Date,
): LeaverOutcome {
  const renames = state.workers[worker.id]?.renames;
  const result = applyRecord(state, worker, policy, now, renames);
  const snapshot = state.workers[worker.id];
  const renamed = result.events.some((e) => e.type === 'risc.identifier-changed');
  const count = renamed ? (renames ?? 0) + 1 : renames;
  if (snapshot && count !== undefined) snapshot.renames = count;
  return result;
}

function applyRecord(
  state: HrState,
  worker: HrWorker,
  policy: LeaverPolicy,
  now: Date,
  renames: number | undefined,
): LeaverOutcome {
  const id = worker.id;
  const prev = state.workers[id];
  const email = usableEmail(worker.email) ?? prev?.email;
  // The record shows no (usable) email: the one known is remembered from an earlier record.
  const remembered = email !== undefined && usableEmail(worker.email) === undefined;
  const memo = remembered ? { remembered } : {};
  const username = worker.username?.trim() || prev?.username;
  const events: EventDraft[] = [];
  const notes: string[] = [];

  const oldEmail = prev?.email ?? usableEmail(worker.previousEmail);
  const newEmail = usableEmail(worker.email);
  if (oldEmail && newEmail && !sameIdentifier(oldEmail, newEmail)) {
    events.push(identifierChanged(id, oldEmail, newEmail, 'email', renames));
  }
  const oldUser = prev?.username;
  const newUser = worker.username?.trim();
  if (oldUser && newUser && !sameIdentifier(oldUser, newUser)) {
    const from = usableEmail(oldUser);
    const to = usableEmail(newUser);
    if (from && to) events.push(identifierChanged(id, from, to, 'username', renames));
    else notes.push('username changed, but RISC identifier-changed takes only email or phone subjects');
  }

  const basisDate =
    policy.termination_basis === 'last_day_of_work'
      ? (worker.lastDayOfWork ?? worker.terminationDate)
      : (worker.terminationDate ?? worker.lastDayOfWork);
  const zoned = basisDate ? zonedInstant(basisDate, policy.effective_time, policy.timezone) : undefined;
  const effectiveAt = zoned && worker.effectiveBy ? earlier(new Date(worker.effectiveBy), zoned) : zoned;
  const future = effectiveAt !== undefined && effectiveAt.getTime() > now.getTime();
  if (prev && worker.status === 'unknown' && effectiveAt === undefined) {
    // Neither a status nor a date (fields the source no longer shows): nothing is said of the
    // employment, so a reported termination stands and a held one stays held.
    state.workers[id] = { ...withoutMemo(prev), email, username, ...memo };
    followEmail(state, id, email, policy);
    notes.push('the record shows neither a status nor a termination date; the employment is unchanged');
    return outcome(events, notes);
  }
  const gone = prev && (prev.status === 'terminated' || prev.status === 'deleted') ? prev : undefined;
  const pendingKey = `${id}:terminate`;
  const held = state.pending[pendingKey];
  // A held termination whose time has come (the release has not run yet: the bridge was down).
  const heldDue = held && Date.parse(held.dueAt) <= now.getTime() ? held : undefined;
  // A hire date after the termination date the record shows is a later employment's: a rehire.
  const rehired = worker.hireDate !== undefined && basisDate !== undefined && worker.hireDate > basisDate;
  // The date of a termination the bridge held (or released) has come, and the source still
  // shows the worker active with that date: HR changes the status later that day. On that day
  // the termination stands; read as a rescind (or a rehire) it would never be sent (or be
  // undone). After it, the record says what it says: a source keeps the last termination date
  // on a rehired worker, and a rehire weeks later is no lag.
  const sourceLagging =
    worker.status === 'active' &&
    basisDate !== undefined &&
    effectiveAt !== undefined &&
    !future &&
    !rehired &&
    zonedDate(now, policy.timezone) === zonedDate(effectiveAt, policy.timezone) &&
    (held?.date === basisDate || (gone?.released === true && gone.date === basisDate));
  // Leave (garden leave up to the termination date, say) says the employee is not working, not
  // that they work again: only an explicit `active` record reverses a termination. So a leave
  // record keeps a termination already reported, and one held whose time has come, whatever
  // date it shows (the source lagging); and a termination date it shows that has passed ends
  // the employment, as it does on a record without a status.
  const onLeave = worker.status === 'leave';
  const leaveKeeps = onLeave && (gone !== undefined || (effectiveAt === undefined && heldDue !== undefined));
  // A source that still says terminated, about a termination already reported, is no rehire
  // though its date lies ahead (a leaver sent early, as Bob's employee.left can make it).
  const phase =
    sourceLagging || leaveKeeps
      ? 'terminated'
      : worker.status === 'terminated'
        ? future && !gone
          ? 'pending'
          : 'terminated'
        : worker.status === 'unknown' || onLeave
          ? effectiveAt === undefined
            ? 'active'
            : future
              ? 'pending'
              : 'terminated'
          : future
            ? 'pending'
            : 'active';

  const reversals = prev?.reversals;

  const enableKey = `${id}:enable`;
  if (phase === 'terminated') {
    // A source clock ahead of ours must not date a termination in the future.
    const observed = worker.observedAt ? earlier(new Date(worker.observedAt), now) : now;
    // A record without a date keeps the date of the termination held for it, once due.
    const date = basisDate ?? heldDue?.date ?? zonedDate(observed, policy.timezone);
    const at = effectiveAt ?? (heldDue ? new Date(heldDue.dueAt) : observed);
    delete state.pending[pendingKey];
    const rehire = state.pending[enableKey];
    if (rehire) {
      delete state.pending[enableKey];
      notes.push(`rehire scheduled for ${rehire.dueAt} cancelled`);
    }
    if (gone) {
      notes.push(`termination of ${gone.date ?? 'an earlier date'} already reported`);
      // Released by the bridge: so marked until the source says terminated itself.
      const released = gone.released === true && worker.status !== 'terminated';
      state.workers[id] = {
        email,
        username,
        status: gone.status,
        date: gone.date ?? date,
        reversals,
        ...(released ? { released } : {}),
        ...memo,
      };
      followEmail(state, id, email, policy);
    } else if (
      !prev &&
      !worker.announced &&
      // Undated on first sight, where the source's old leavers may lack a date: "now" would be
      // a guess, and a first read would send them all as today's.
      ((basisDate === undefined && policy.undated === 'backfill') ||
        at.getTime() < now.getTime() - policy.backfill_window)
    ) {
      notes.push(
        basisDate === undefined
          ? 'termination without a date, first seen (it may have taken effect long ago); recorded without events'
          : `termination took effect on ${date}, before the backfill window; recorded without events`,
      );
      state.workers[id] = { email, username, status: 'terminated', ...(basisDate ? { date } : {}), ...memo };
      return { ...outcome(events, notes), backfilled: true };
    } else {
      const owner = emailOwner(state, id, email, remembered);
      const own = owner === undefined ? email : undefined;
      const leaver = terminationEvents(id, own, date, at.toISOString(), policy, reversals);
      if (!leaver) {
        notes.push(unnamedNote(owner));
        return unnamed(outcome(events, notes), owner);
      }
      events.push(...leaver);
      state.workers[id] = {
        email,
        username,
        status: 'terminated',
        date,
        reversals,
        // Sent while the source does not say terminated itself (yet).
        ...(sourceLagging || onLeave ? { released: true } : {}),
        ...memo,
      };
      schedulePurge(state, id, email, date, at, now, policy, events);
    }
    return outcome(events, notes);
  }

  // A leaver shown active from a day ahead (a rehire entered before it starts) keeps no access
  // until then: the account-enabled is held, as a future termination is.
  // A hire date after the termination is when the rehire starts, where the record has no other.
  const activeFrom = worker.activeFrom ?? (rehired ? worker.hireDate : undefined);
  const rehireAt =
    phase === 'active' && gone && activeFrom
      ? zonedInstant(activeFrom, policy.effective_time, policy.timezone)
      : undefined;
  if (gone && rehireAt && rehireAt.getTime() > now.getTime()) {
    state.workers[id] = { ...withoutMemo(gone), email, username, ...memo };
    followEmail(state, id, email, policy);
    const due = rehireAt.toISOString();
    const enabled = enabledEvent(id, email, gone.date, due, policy, reversals);
    if (!enabled) {
      notes.push(NO_EMAIL);
      return outcome(events, notes);
    }
    const date = activeFrom as string;
    const known = state.pending[enableKey]?.date === date;
    state.pending[enableKey] = { kind: 'enable', employeeId: id, date, dueAt: due, events: enabled };
    if (known) notes.push(`rehire already scheduled for ${due}`);
    else events.push(...enabled);
    return outcome(events, notes);
  }
  // A rehire held for a later day that the record now shows in effect is sent below, at once.
  delete state.pending[enableKey];

  let nextReversals = reversals;
  if (gone) {
    delete state.pending[`${id}:purge`];
    const enabled = enabledEvent(id, email, gone.date, undefined, policy, reversals);
    if (enabled) {
      events.push(...enabled);
      nextReversals = (reversals ?? 0) + 1;
    } else {
      notes.push(NO_EMAIL);
    }
  }
  state.workers[id] = { email, username, status: 'active', reversals: nextReversals, ...memo };

  if (phase === 'pending') {
    const date = basisDate as string;
    const due = (effectiveAt as Date).toISOString();
    const owner = emailOwner(state, id, email, remembered);
    const own = owner === undefined ? email : undefined;
    const leaver = terminationEvents(id, own, date, due, policy, nextReversals);
    if (!leaver) {
      notes.push(unnamedNote(owner));
      return unnamed(outcome(events, notes), owner);
    }
    const known = state.pending[pendingKey]?.date === date;
    // Rebuilt every time, so a held termination follows a change of email.
    state.pending[pendingKey] = { kind: 'terminate', employeeId: id, date, dueAt: due, events: leaver };
    if (known) notes.push(`termination already scheduled for ${due}`);
    else events.push(...leaver);
    return outcome(events, notes);
  }

  const rescinded = state.pending[pendingKey];
  if (rescinded) {
    delete state.pending[pendingKey];
    notes.push(`termination scheduled for ${rescinded.dueAt} rescinded`);
  }
  return outcome(events, notes);
}

/** The employee was deleted in the HR system: RISC account-purged, once. */
export function applyDeletion(
  state: HrState,
  employeeId: string,
  emailHint: string | undefined,
  policy: LeaverPolicy,
  observedAt: string | undefined,
  now: Date,
): LeaverOutcome {
  const prev = state.workers[employeeId];
  delete state.pending[`${employeeId}:terminate`];
  delete state.pending[`${employeeId}:purge`];
  delete state.pending[`${employeeId}:enable`];
  if (prev?.status === 'deleted') return { events: [], ignored: 'employee already purged' };
  const email = prev?.email ?? usableEmail(emailHint);
  if (!prev && !email) return { events: [], ignored: 'deleted employee was never seen and has no email' };
  const at = observedAt ? earlier(new Date(observedAt), now).toISOString() : undefined;
  // A duplicate record deleted, or the old record of someone hired again under a new one: the
  // email is the active employee's now, and purging it would delete their account.
  const owner = emailOwner(state, employeeId, email, prev?.remembered === true);
  const own = owner === undefined ? email : undefined;
  const purge = purgeEvent(employeeId, own, 'deleted', at, policy, prev?.reversals);
  state.workers[employeeId] = { ...prev, email, status: 'deleted' };
  if (!purge) {
    const refused = { events: [], ignored: unnamedNote(owner) };
    return owner === undefined ? refused : unnamed(refused, owner);
  }
  return { events: purge };
}

/**
 * Releases held changes whose time has come, oldest first. A termination or purge whose email
 * another active employee has taken meanwhile (see emailOwner) goes out without it, by the HR id;
 * with subject_format email it cannot, and the employee's id is added to `refused`.
 */
export function releaseDue(
  state: HrState,
  policy: LeaverPolicy,
  now: Date,
  refused: string[] = [],
): EventDraft[] {
  const due = Object.entries(state.pending)
    .filter(([, p]) => new Date(p.dueAt).getTime() <= now.getTime())
    .sort(([, a], [, b]) => a.dueAt.localeCompare(b.dueAt));
  const events: EventDraft[] = [];
  for (const [key, p] of due) {
    // Cancelled by one released before it (a rehire cancels the purge).
    if (state.pending[key] !== p) continue;
    delete state.pending[key];
    const prev = state.workers[p.employeeId];
    if (p.kind !== 'enable' && ownEmail(state, p.employeeId, prev?.email) !== prev?.email) {
      const build = p.kind === 'terminate' ? terminationEvents : purgeEvent;
      const rebuilt = build(p.employeeId, undefined, p.date, p.dueAt, policy, prev?.reversals);
      if (rebuilt) events.push(...rebuilt);
      else refused.push(p.employeeId);
    } else {
      events.push(...p.events);
    }
    if (p.kind === 'terminate') {
      state.workers[p.employeeId] = { ...prev, status: 'terminated', date: p.date, released: true };
      schedulePurge(state, p.employeeId, prev?.email, p.date, new Date(p.dueAt), now, policy, events);
    } else if (p.kind === 'enable') {
      // The rehire takes effect: employed again, and the purge of the old employment is off.
      delete state.pending[`${p.employeeId}:purge`];
      state.workers[p.employeeId] = {
        email: prev?.email,
        username: prev?.username,
        status: 'active',
        reversals: (prev?.reversals ?? 0) + 1,
        ...(prev?.renames !== undefined ? { renames: prev.renames } : {}),
        ...(prev?.remembered ? { remembered: true } : {}),
      };
    } else {
      state.workers[p.employeeId] = { ...prev, status: 'deleted', date: p.date };
    }
  }
  return events;
}

/** The earliest time a held change is due, if any. */
export function nextDue(state: HrState): string | undefined {
  let next: string | undefined;
  for (const p of Object.values(state.pending)) if (next === undefined || p.dueAt < next) next = p.dueAt;
  return next;
}

/**
 * The events to emit now: all but those held in `state.pending` (a future-dated termination is
 * returned by applyWorker, so dry runs show it, and held until releaseDue hands it out).
 */
export function notHeld(events: EventDraft[], state: HrState): EventDraft[] {
  const held = new Set<string>();
  for (const p of Object.values(state.pending))
    for (const e of p.events) held.add(`${e.sourceRecordId} ${e.type}`);
  return events.filter((e) => !held.has(`${e.sourceRecordId} ${e.type}`));
}

/** A snapshot without its `remembered` mark, for one the record at hand says anew. */
function withoutMemo<T extends WorkerSnapshot | undefined>(snapshot: T): Omit<NonNullable<T>, 'remembered'> {
  const { remembered: _remembered, ...rest } = snapshot ?? ({} as NonNullable<T>);
  return rest;
}

function earlier(a: Date, b: Date): Date {
  return Number.isNaN(a.getTime()) || a.getTime() > b.getTime() ? b : a;
}

function outcome(events: EventDraft[], notes: string[]): LeaverOutcome {
  if (events.length > 0) return { events };
  return { events: [], ignored: notes.length > 0 ? notes.join('; ') : 'no leaver-relevant change' };
}
