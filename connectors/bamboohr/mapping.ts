import { PermanentError, z, type EventDraft, type MappingResult } from '../../core/plugin-api/index.ts';
import type { BambooHrConfig } from './config.ts';
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

export interface BambooHrState extends HrState {
  /**
   * `latest` of the last /employees/changed answer (poll modes). None yet: the next poll is the
   * first read, whose old leavers the backfill window keeps quiet.
   */
  since?: string | undefined;
  /**
   * Leavers a poll could not send for want of a subject (subject_format email, and no usable
   * work email, or only one another active employee has now), by employee id, with when each
   * was first read so (ISO 8601): every poll reads them again until they can be sent, since
   * /employees/changed has moved past them.
   */
  unnamed?: Record<string, string> | undefined;
}

/** The checkpoint, checked when it is loaded (held events are stored as plain JSON drafts). */
export const stateSchema = z.object({
  ...hrStateShape,
  since: z.string().optional(),
  unnamed: z.record(z.string(), z.string()).optional(),
}) as unknown as z.ZodType<BambooHrState>;

export function emptyState(): BambooHrState {
  return emptyHrState();
}

export function policyOf(config: BambooHrConfig): LeaverPolicy {
  return leaverPolicy(config, config.hr_id_issuer ?? `https://${config.company_domain}.bamboohr.com`);
}

/** The fields asked for with GET /employees/{id}. */
export function employeeFields(config: BambooHrConfig): string[] {
  const fields = [
    'firstName',
    'lastName',
    'workEmail',
    'status',
    'employmentHistoryStatus',
    'terminationDate',
    'hireDate',
    'employeeNumber',
  ];
  if (config.username_field) fields.push(config.username_field);
  return fields;
}

const optionalText = z.union([z.string(), z.null()]).optional();

/** GET /employees/{id}: the fields the mapping reads are typed, the rest passes through. */
export const employeeSchema = z.looseObject({
  id: z.union([z.string().trim().min(1), z.number().int()]),
  workEmail: optionalText,
  status: optionalText,
  employmentHistoryStatus: optionalText,
  terminationDate: optionalText,
});
export type BambooEmployee = z.output<typeof employeeSchema>;

/** An employee record → an HR worker. `0000-00-00` means no termination date. */
export function workerFromEmployee(
  employee: BambooEmployee,
  config: BambooHrConfig,
  observedAt?: string,
  announced?: boolean,
): HrWorker {
  const employment = employee.employmentHistoryStatus?.trim().toLowerCase();
  const terminated = config.terminated_statuses.some((s) => s.toLowerCase() === employment);
  const status = employee.status?.trim().toLowerCase();
  const username = config.username_field ? employee[config.username_field] : undefined;
  const leaver = terminated || status === 'inactive';
  return {
    id: String(employee.id).trim(),
    email: employee.workEmail ?? undefined,
    username: typeof username === 'string' ? username : undefined,
    status: leaver ? 'terminated' : status === 'active' || employment ? 'active' : 'unknown',
    terminationDate: leaver
      ? readableDate(employee.terminationDate)
      : hrDate(employee.terminationDate, 'terminationDate'),
    // Only tempers the reading of an active record (a rehire after the termination date).
    hireDate: readableDate(employee.hireDate),
    observedAt,
    ...(announced ? { announced: true } : {}),
  };
}

/**
 * The termination date of an employee BambooHR already shows as terminated; an unreadable one is
 * taken as unknown (the termination is dated when it was seen), since the status alone makes
 * the leaver. The hire date likewise: it only tempers the reading of a record.
 */
function readableDate(value: unknown): string | undefined {
  try {
    return hrDate(value, 'terminationDate');
  } catch {
    return undefined;
  }
}

export type ChangeAction = 'created' | 'updated' | 'deleted';

/** One employee named by a webhook or by /employees/changed. */
export interface EmployeeChange {
  employeeId: string;
  action: ChangeAction;
  /** ISO 8601, when the source says when it happened. */
  at?: string | undefined;
  /**
   * The webhook names an employment field among the changed ones: a termination it shows is
   * news, sent even on first sight of the employee and however long ago its date.
   */
  announced?: boolean | undefined;
}

/** Changed fields that carry the employment: `employmentHistoryStatus`, `Status`, `terminationDate` … */
const EMPLOYMENT_FIELD = /status|termination/i;

function employmentChanged(fields: unknown): boolean {
  return Array.isArray(fields) && fields.some((f) => typeof f === 'string' && EMPLOYMENT_FIELD.test(f));
}

const eventWebhookSchema = z.looseObject({
  type: z.string().regex(/^employee\.(created|updated|deleted)$/),
  timestamp: z.string().optional(),
  data: z.looseObject({ employeeId: z.union([z.string().trim().min(1), z.number().int()]) }),
});

/** Employees one field-based webhook call may name. */
export const MAX_WEBHOOK_EMPLOYEES = 100;

const fieldWebhookSchema = z.looseObject({
  employees: z
    .array(
      z.looseObject({
        id: z.union([z.string().trim().min(1), z.number().int()]),
        action: z.string().min(1),
        timestamp: z.string().optional(),
      }),
    )
    .min(1),
});

function actionOf(value: string): ChangeAction {
  const action = value.toLowerCase().replace(/^employee(_with_fields)?\./, '');
  if (action === 'created' || action === 'inserted') return 'created';
  if (action === 'deleted') return 'deleted';
  if (action === 'updated') return 'updated';
  throw new Error(`unknown action "${value}"`);
}

/** BambooHR's `2026-01-31T18:42:00+0000` (offset without colon) as ISO 8601. */
export function isoTime(value: string | undefined): string | undefined {
  if (!value) return undefined;
  const fixed = value.trim().replace(/([+-]\d{2})(\d{2})$/, '$1:$2');
  const t = new Date(fixed);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

/** The employees a webhook body names: event-based (`employee.*`) or field-based (`employees`). */
export function changesOfWebhook(body: unknown): EmployeeChange[] {
  const event = eventWebhookSchema.safeParse(body);
  if (event.success) {
    return [
      {
        employeeId: String(event.data.data.employeeId).trim(),
        action: actionOf(event.data.type),
        at: isoTime(event.data.timestamp),
        announced: employmentChanged(event.data.data.changedFields),
      },
    ];
  }
  const fields = fieldWebhookSchema.safeParse(body);
  const named = fields.success ? fields.data.employees.length : 0;
  if (named > MAX_WEBHOOK_EMPLOYEES) {
    // Each employee is read from the API before the webhook is answered: a bound keeps one call
    // inside the sender's timeout (BambooHR batches changes far below it).
    throw new Error(`at most ${MAX_WEBHOOK_EMPLOYEES} employees in one webhook call (got ${named})`);
  }
  if (fields.success) {
    return fields.data.employees.map((e) => ({
      employeeId: String(e.id).trim(),
      action: actionOf(e.action),
      at: isoTime(e.timestamp),
      announced: employmentChanged(e.changedFields),
    }));
  }
  throw new Error(
    'not a BambooHR webhook: expected {"type": "employee.*", "data": {"employeeId"}} or {"employees": [...]}',
  );
}

/** A form-encoded event webhook (`type=employee.updated&data[employeeId]=…`) as its JSON shape. */
export function formToWebhook(raw: string): unknown {
  const form = new URLSearchParams(raw);
  const employeeId = form.get('data[employeeId]') ?? form.get('employeeId');
  return {
    type: form.get('type'),
    ...(form.get('timestamp') ? { timestamp: form.get('timestamp') } : {}),
    data: { employeeId },
  };
}

const changedSchema = z.looseObject({
  latest: z.string().optional(),
  employees: z.union([
    z.record(
      z.string(),
      z.looseObject({ id: z.union([z.string(), z.number()]).optional(), action: z.string() }),
    ),
    z.array(z.looseObject({ id: z.union([z.string(), z.number()]), action: z.string() })),
  ]),
});

/** GET /employees/changed → the changes and the `latest` watermark. */
export function parseChanged(body: unknown): { latest?: string | undefined; changes: EmployeeChange[] } {
  const parsed = changedSchema.safeParse(body);
  if (!parsed.success)
    throw new Error(`unexpected /employees/changed answer: ${z.prettifyError(parsed.error)}`);
  const entries = Array.isArray(parsed.data.employees)
    ? parsed.data.employees.map((e) => [String(e.id), e] as const)
    : Object.entries(parsed.data.employees);
  const changes = entries.map(([key, e]) => ({
    employeeId: String(e.id ?? key).trim(),
    action: actionOf(e.action),
    at: isoTime(typeof e.lastChanged === 'string' ? e.lastChanged : undefined),
  }));
  return { latest: parsed.data.latest, changes };
}

/** Applies a batch of outcomes' events and ignore reasons into one. */
export function combine(outcomes: Array<{ id: string; outcome: LeaverOutcome }>): LeaverOutcome {
  const events: EventDraft[] = outcomes.flatMap((o) => o.outcome.events);
  if (events.length > 0) return { events };
  const reasons = outcomes.map((o) => `${o.id}: ${o.outcome.ignored ?? 'no change'}`);
  return { events: [], ignored: reasons.join('; ') || 'nothing to do' };
}

/**
 * The pure mapping behind `ssf-bridge simulate`. A record is an employee (as GET
 * /employees/{id} answers), or a webhook body: deletions map on their own; created and updated
 * webhooks carry only ids, which the running connector resolves by fetching the employee.
 */
export function mapRecord(
  record: unknown,
  config: BambooHrConfig,
  state: BambooHrState | undefined,
  now: Date,
): MappingResult<BambooHrState> {
  const next = structuredClone(state ?? emptyState());
  const policy = policyOf(config);
  let result: LeaverOutcome;
  try {
    const isWebhook =
      typeof record === 'object' && record !== null && ('employees' in record || 'type' in record);
    if (isWebhook) {
      const changes = changesOfWebhook(record);
      result = combine(
        changes.map((c) => ({
          id: c.employeeId,
          outcome:
            c.action === 'deleted'
              ? applyDeletion(next, c.employeeId, undefined, policy, c.at, now)
              : {
                  events: [],
                  ignored: `webhook names employee ${c.employeeId}; its record is fetched from the API`,
                },
        })),
      );
    } else {
      const parsed = employeeSchema.safeParse(record);
      if (!parsed.success) throw new Error(z.prettifyError(parsed.error));
      // A state with a watermark is a poller's after its first poll: what it reads is news.
      const news = next.since !== undefined;
      result = applyWorker(next, workerFromEmployee(parsed.data, config, undefined, news), policy, now);
    }
  } catch (err) {
    throw new PermanentError(`malformed BambooHR payload: ${(err as Error).message}`, {
      code: 'SSF_ERR_BAMBOOHR_PAYLOAD',
      cause: err,
    });
  }
  return result.events.length > 0
    ? { events: result.events, state: next }
    : { events: [], ignored: result.ignored ?? 'no leaver-relevant change', state: next };
}
