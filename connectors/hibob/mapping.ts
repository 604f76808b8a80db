import { PermanentError, z, type MappingResult } from '../../core/plugin-api/index.ts';
import type { HibobConfig } from './config.ts';
import {
  applyDeletion,
  applyWorker,
  emptyHrState,
  hrDate,
  hrStateShape,
  leaverPolicy,
  type HrState,
  type HrWorker,
  type LeaverOutcome,
  type LeaverPolicy,
} from '../_shared/hr-leaver.ts';

export type HibobState = HrState;

/** The checkpoint, checked when it is loaded (held events are stored as plain JSON drafts). */
export const stateSchema = z.object(hrStateShape) as unknown as z.ZodType<HibobState>;

export function policyOf(config: HibobConfig): LeaverPolicy {
  // Bob's records of old leavers may lack a termination date: read on a later update of the
  // employee, such a record is no leaver of today (employee.left announces one as it happens).
  return leaverPolicy(config, config.hr_id_issuer ?? 'https://app.hibob.com', { undated: 'backfill' });
}

const id = z.union([z.string().trim().min(1), z.number().int()]);

/** A webhooks v2 delivery: `{companyId, type, triggeredBy, triggeredAt, version, data}`. */
export const envelopeSchema = z.looseObject({
  type: z.string().min(1),
  triggeredAt: z.string().min(1),
  data: z.looseObject({ employeeId: id }),
});
export type HibobEnvelope = z.output<typeof envelopeSchema>;

const text = z.union([z.string(), z.null()]).optional();

/** An employee as the Public API answers (the fields the mapping reads). */
export const employeeSchema = z.looseObject({
  id,
  email: text,
  internal: z
    .looseObject({ status: text, lifecycleStatus: text, terminationDate: text })
    .nullable()
    .optional(),
});
export type HibobEmployee = z.output<typeof employeeSchema>;

/** Fields read with POST /people/{id}. */
export const EMPLOYEE_FIELDS = [
  'root.id',
  'root.email',
  'internal.status',
  'internal.lifecycleStatus',
  'internal.terminationDate',
];

/** Events after which the employee is looked up; the others are not about employment. */
export function isEmployeeEvent(type: string): boolean {
  return type.startsWith('employee.');
}

const LEAVING = new Set(['employee.left', 'employee.inactivated']);

/** `2026-01-15T00:00:00.000Z` etc. as ISO 8601; undefined when unreadable. */
export function isoTime(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

/**
 * A webhook event and the employee fetched after it → an HR worker. `employee.left` and
 * `employee.inactivated` make a leaver even when the API does not show it yet; garden leave
 * counts as leaving (from now) unless configured otherwise, when its termination date decides.
 */
export function workerOf(
  event: HibobEnvelope,
  employee: HibobEmployee | undefined,
  config: HibobConfig,
): HrWorker {
  const lifecycle = employee?.internal?.lifecycleStatus?.trim().toLowerCase() ?? '';
  const active = employee?.internal?.status?.trim().toLowerCase();
  const garden = lifecycle.includes('garden');
  const gardenLeaver = garden && config.garden_leave === 'leaver';
  // Garden leave as a leaver takes effect now, whatever the later termination date says; kept
  // (ignore), the employee keeps access until that date, which then ends the employment.
  const terminationDate = gardenLeaver
    ? undefined
    : hrDate(employee?.internal?.terminationDate, 'internal.terminationDate');
  let status: HrWorker['status'];
  if (garden) status = gardenLeaver || terminationDate !== undefined ? 'terminated' : 'leave';
  else if (lifecycle === 'terminated') status = 'terminated';
  else if (lifecycle.includes('leave')) status = 'leave';
  else if (active === 'inactive') status = 'terminated';
  else if (active === 'active' || lifecycle === 'employed') status = 'active';
  else status = 'unknown';
  const leaving = LEAVING.has(event.type);
  if (leaving && (status === 'active' || status === 'unknown')) status = 'terminated';
  const dataEmail = event.data.email;
  const observedAt = isoTime(event.triggeredAt);
  return {
    id: String(employee?.id ?? event.data.employeeId).trim(),
    email: employee?.email ?? (typeof dataEmail === 'string' ? dataEmail : undefined),
    status,
    terminationDate,
    observedAt,
    // Bob fires these as the employee leaves: news, even when the date was entered late. Garden
    // leave taken as leaving is going on now: news too, though no date comes with it.
    ...(leaving || gardenLeaver ? { announced: true } : {}),
    ...(leaving && observedAt && terminationDate && sameDayAnywhere(terminationDate, observedAt)
      ? { effectiveBy: observedAt }
      : {}),
  };
}

/**
 * Whether an instant falls on `date` somewhere on Earth (UTC-12 to UTC+14). Bob fires
 * `employee.left` on the employee's termination date in the employee's own time zone, which
 * may begin up to a day before it does in the instance's `timezone`.
 */
function sameDayAnywhere(date: string, instant: string): boolean {
  const start = Date.parse(`${date}T00:00:00Z`) - 14 * 3_600_000;
  const end = Date.parse(`${date}T00:00:00Z`) + (24 + 12) * 3_600_000;
  const t = Date.parse(instant);
  return t >= start && t < end;
}

/** Applies one event (with the employee fetched after it, if any) to the state in place. */
export function applyEvent(
  state: HibobState,
  event: HibobEnvelope,
  employee: HibobEmployee | undefined,
  config: HibobConfig,
  now: Date,
): LeaverOutcome {
  if (!isEmployeeEvent(event.type)) return { events: [], ignored: `${event.type} is not about employment` };
  if (event.type === 'employee.deleted') {
    const email = event.data.email ?? employee?.email;
    return applyDeletion(
      state,
      String(event.data.employeeId).trim(),
      typeof email === 'string' ? email : undefined,
      policyOf(config),
      isoTime(event.triggeredAt),
      now,
    );
  }
  if (config.employee_lookup === 'webhook_only') return applyDelivery(state, event, config, now);
  if (!employee && !LEAVING.has(event.type)) {
    // Bob answers 404 or no employee when the service user cannot see the record (inactive
    // employees are hidden unless its permissions include them): that says nothing about the
    // employment, and reading it as "active" would re-enable a leaver or cancel a held one.
    return {
      events: [],
      ignored: `Bob shows no employee ${String(event.data.employeeId).trim()} after ${event.type}; nothing changed (can the service user see inactive employees?)`,
    };
  }
  return applyWorker(state, workerOf(event, employee, config), policyOf(config), now);
}

/** Lifecycle events that say the employee has access again (a rehire, a return). */
const ACTIVATING = new Set(['employee.activated', 'employee.joined']);

/**
 * `employee_lookup: webhook_only`: what a delivery says on its own. Bob's v2 payloads carry the
 * employee id (employee.deleted also the email) and, for employee.updated, only the ids of the
 * changed fields, never their values. So:
 * - employee.left: a leaver as of triggeredAt (Bob fires it as the termination or garden leave
 *   takes effect), named by the Bob id;
 * - employee.activated / employee.joined: employed again, so a leaver reported before is
 *   re-enabled;
 * - employee.inactivated: ignored — it fires for leave (parental, sabbatical) as for
 *   termination, and only the record tells them apart; terminations come as employee.left;
 * - employee.updated / employee.created and the rest: ignored — an email change or a
 *   termination date needs the values the API holds.
 */
function applyDelivery(
  state: HibobState,
  event: HibobEnvelope,
  config: HibobConfig,
  now: Date,
): LeaverOutcome {
  const policy = policyOf(config);
  if (event.type === 'employee.left')
    return applyWorker(state, workerOf(event, undefined, config), policy, now);
  if (ACTIVATING.has(event.type)) {
    const email = event.data.email;
    return applyWorker(
      state,
      {
        id: String(event.data.employeeId).trim(),
        email: typeof email === 'string' ? email : undefined,
        status: 'active',
        observedAt: isoTime(event.triggeredAt),
      },
      policy,
      now,
    );
  }
  if (event.type === 'employee.inactivated') {
    return {
      events: [],
      ignored:
        'employee_lookup webhook_only: employee.inactivated fires for leave as for termination, and only the API tells them apart; terminations are sent on employee.left',
    };
  }
  return {
    events: [],
    ignored: `employee_lookup webhook_only: ${event.type} does not carry the changed values (Bob sends only field ids); email changes and termination dates need employee_lookup api`,
  };
}

const withEmployeeSchema = z.strictObject({
  event: envelopeSchema,
  employee: employeeSchema.nullable().optional(),
});

/**
 * The pure mapping behind `ssf-bridge simulate`. A record is a webhook delivery, or
 * `{"event": <delivery>, "employee": <GET/POST /people/{id} answer>}` — what the running
 * connector works from after fetching the employee.
 */
export function mapRecord(
  record: unknown,
  config: HibobConfig,
  state: HibobState | undefined,
  now: Date,
): MappingResult<HibobState> {
  const next = structuredClone(state ?? emptyHrState());
  let result: LeaverOutcome;
  try {
    const isPair = typeof record === 'object' && record !== null && 'event' in record;
    if (isPair) {
      const parsed = withEmployeeSchema.safeParse(record);
      if (!parsed.success) throw new Error(z.prettifyError(parsed.error));
      result = applyEvent(next, parsed.data.event, parsed.data.employee ?? undefined, config, now);
    } else {
      const parsed = envelopeSchema.safeParse(record);
      if (!parsed.success) throw new Error(z.prettifyError(parsed.error));
      result = applyEvent(next, parsed.data, undefined, config, now);
    }
  } catch (err) {
    throw new PermanentError(`malformed HiBob payload: ${(err as Error).message}`, {
      code: 'SSF_ERR_HIBOB_PAYLOAD',
      cause: err,
    });
  }
  return result.events.length > 0
    ? { events: result.events, state: next }
    : { events: [], ignored: result.ignored ?? 'no leaver-relevant change', state: next };
}
