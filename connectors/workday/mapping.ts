import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PermanentError, z, type MappingResult } from '../../core/plugin-api/index.ts';
import type { WorkdayColumns, WorkdayConfig } from './config.ts';
import {
  applyWorker,
  emptyHrState,
  hrDate,
  hrStateShape,
  leaverPolicy,
  zonedDate,
  type HrState,
  type HrWorker,
  type LeaverOutcome,
  type LeaverPolicy,
} from '../_shared/hr-leaver.ts';

export interface WorkdayState extends HrState {
  /**
   * Start time of the last completed run (ISO 8601). None yet: the next run is the first read,
   * whose old leavers the backfill window keeps quiet.
   */
  watermark?: string | undefined;
  /**
   * Leavers a run could not send for want of a subject (subject_format email, and no usable work
   * email, or only one another active worker has now), by employee id, with the start of the
   * window (ISO 8601) of the run that read them: the next runs read from there again, whatever
   * the watermark says, until they can be sent.
   */
  unnamed?: Record<string, string> | undefined;
}

/** The checkpoint, checked when it is loaded (held events are stored as plain JSON drafts). */
export const stateSchema = z.object({
  ...hrStateShape,
  watermark: z.string().optional(),
  unnamed: z.record(z.string(), z.string()).optional(),
}) as unknown as z.ZodType<WorkdayState>;

export function emptyState(): WorkdayState {
  return emptyHrState();
}

/** The `iss` of the HR-id alias: the tenant's URL unless configured. */
export function policyOf(config: WorkdayConfig): LeaverPolicy {
  return leaverPolicy(config, config.hr_id_issuer ?? `${new URL(config.base_url).origin}/${config.tenant}`);
}

const reportSchema = z.looseObject({ Report_Entry: z.array(z.unknown()) });

function text(value: unknown): string | undefined {
  if (typeof value === 'string') return value.trim() || undefined;
  if (typeof value === 'number') return String(value);
  if (Array.isArray(value)) return text(value[0]);
  return undefined;
}

const ACTIVE = new Set(['1', 'true', 'yes', 'y', 'active']);
const INACTIVE = new Set(['0', 'false', 'no', 'n', 'inactive', 'terminated']);

/** Workday's many spellings of a boolean worker status. */
export function parseActive(value: unknown, field: string): boolean | undefined {
  const raw = text(typeof value === 'boolean' ? String(value) : value);
  if (raw === undefined) return undefined;
  const v = raw.toLowerCase();
  if (ACTIVE.has(v)) return true;
  if (INACTIVE.has(v)) return false;
  throw new Error(
    `${field}: "${raw}" is not an active status (expected 1/0, true/false or Active/Terminated)`,
  );
}

/**
 * A termination date of a worker Workday already shows as no longer active: an unreadable one is
 * taken as unknown (the termination is dated when it was seen), since the status alone makes the
 * leaver. Any other worker's date is read strictly, and an unreadable one refuses the record.
 */
function terminationDate(value: string | undefined, field: string, inactive: boolean): string | undefined {
  if (!inactive) return hrDate(value, field);
  try {
    return hrDate(value, field);
  } catch {
    return undefined;
  }
}

/** A date that only tempers the reading of a record (a hire date): unreadable is unknown. */
function lenientDate(value: string | undefined, field: string): string | undefined {
  try {
    return hrDate(value, field);
  } catch {
    return undefined;
  }
}

/**
 * A worker as Workday describes it: the HR worker, its WID (Get_Workers), and the termination
 * reason, which is only ever logged (at debug level): receivers never get it.
 */
export type WorkdayWorker = HrWorker & {
  wid?: string | undefined;
  terminationReason?: string | undefined;
  /** `YYYY-MM-DD`: Hire_Date (Get_Workers) or the report's hire-date column. */
  hireDate?: string | undefined;
  /**
   * Read as terminated only because the worker is not active: no Terminated flag says so (a
   * report's active status, or Get_Workers without Terminated). A pre-hire is inactive too.
   */
  inactiveOnly?: boolean | undefined;
};

/**
 * A worker as of `now`. Workday shows a pre-hire (hired with a date ahead) inactive until the
 * hire date: not active is then no termination, and a termination date before the hire date is
 * an earlier employment's. The worker says nothing of an employment ending (status unknown), so
 * a pre-hire is no leaver, and on the hire date no rehire.
 */
export function asOf(worker: WorkdayWorker, now: Date, timeZone: string): WorkdayWorker {
  if (!worker.inactiveOnly || !worker.hireDate || worker.hireDate <= zonedDate(now, timeZone)) return worker;
  const hired = worker.hireDate;
  const later = (date: string | undefined) => (date !== undefined && date >= hired ? date : undefined);
  return {
    ...worker,
    status: 'unknown',
    inactiveOnly: false,
    terminationDate: later(worker.terminationDate),
    lastDayOfWork: later(worker.lastDayOfWork),
  };
}

/** The schema of a row, made once per column mapping: a full report has tens of thousands. */
const rowSchemas = new WeakMap<WorkdayColumns, z.ZodType>();

function rowSchema(columns: WorkdayColumns): z.ZodType {
  let schema = rowSchemas.get(columns);
  if (!schema) {
    schema = z.looseObject({ [columns.employee_id]: z.union([z.string().trim().min(1), z.number()]) });
    rowSchemas.set(columns, schema);
  }
  return schema;
}

/** One report row → an HR worker, reading the configured columns. */
export function workerFromRow(row: unknown, columns: WorkdayColumns): WorkdayWorker {
  const parsed = rowSchema(columns).safeParse(row);
  if (!parsed.success) {
    throw new Error(`report row has no ${columns.employee_id}: ${z.prettifyError(parsed.error)}`);
  }
  const r = parsed.data as Record<string, unknown>;
  const active = parseActive(r[columns.active_status], columns.active_status);
  return {
    id: String(r[columns.employee_id]).trim(),
    email: text(r[columns.work_email]),
    username: text(r[columns.user_name]),
    status: active === undefined ? 'unknown' : active ? 'active' : 'terminated',
    terminationDate: terminationDate(
      text(r[columns.termination_date]),
      columns.termination_date,
      active === false,
    ),
    lastDayOfWork: terminationDate(
      text(r[columns.last_day_of_work]),
      columns.last_day_of_work,
      active === false,
    ),
    terminationReason: text(r[columns.termination_reason]),
    hireDate: lenientDate(text(r[columns.hire_date]), columns.hire_date),
    ...(active === false ? { inactiveOnly: true } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// Get_Workers (SOAP)

const ARRAYS = new Set(['Worker', 'ID', 'Email_Address_Data', 'Usage_Data', 'Type_Data']);

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: true,
  processEntities: true,
  isArray: (name) => ARRAYS.has(name),
});

type Node = Record<string, unknown>;

function child(node: unknown, name: string): Node | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const value = (node as Node)[name];
  if (Array.isArray(value)) return value[0] as Node | undefined;
  return value && typeof value === 'object' ? (value as Node) : undefined;
}

function children(node: unknown, name: string): Node[] {
  if (!node || typeof node !== 'object') return [];
  const value = (node as Node)[name];
  return Array.isArray(value) ? (value as Node[]) : value && typeof value === 'object' ? [value as Node] : [];
}

function leaf(node: unknown, name: string): string | undefined {
  if (!node || typeof node !== 'object') return undefined;
  const value = (node as Node)[name];
  const first = Array.isArray(value) ? value[0] : value;
  if (typeof first === 'string') return first.trim() || undefined;
  if (first && typeof first === 'object' && typeof (first as Node)['#text'] === 'string') {
    return ((first as Node)['#text'] as string).trim() || undefined;
  }
  return undefined;
}

function idOfType(reference: Node | undefined, type: string): string | undefined {
  for (const id of children(reference, 'ID')) {
    if (id['@_type'] === type && typeof id['#text'] === 'string') return id['#text'].trim();
  }
  return undefined;
}

/** A reason reference as people read it: its descriptor, else its subcategory id. */
function reasonOf(reference: Node | undefined): string | undefined {
  const descriptor = reference?.['@_Descriptor'];
  if (typeof descriptor === 'string' && descriptor.trim()) return descriptor.trim();
  return idOfType(reference, 'Termination_Subcategory_ID');
}

/** The work email: an Email_Address_Data whose usage type is WORK (the primary one first). */
function workEmail(contact: Node | undefined): string | undefined {
  let fallback: string | undefined;
  for (const entry of children(contact, 'Email_Address_Data')) {
    const address = leaf(entry, 'Email_Address');
    if (!address) continue;
    for (const usage of children(entry, 'Usage_Data')) {
      for (const type of children(usage, 'Type_Data')) {
        if (idOfType(child(type, 'Type_Reference'), 'Communication_Usage_Type_ID') !== 'WORK') continue;
        if (type['@_Primary'] === '1' || type['@_Primary'] === 'true') return address;
        fallback ??= address;
      }
    }
  }
  return fallback;
}

export interface GetWorkersPage {
  page: number;
  totalPages: number;
  totalResults: number;
  workers: WorkdayWorker[];
  /** Workers that could not be read, each with the reason. */
  problems: string[];
}

/** The fault of a SOAP answer (Workday sends faults with HTTP 500), if it is one. */
export function parseFault(body: string): { code: string; message: string } | undefined {
  if (XMLValidator.validate(body) !== true) return undefined;
  const fault = child(child(child(xml.parse(body) as Node, 'Envelope'), 'Body'), 'Fault');
  if (!fault) return undefined;
  return { code: leaf(fault, 'faultcode') ?? 'unknown', message: leaf(fault, 'faultstring') ?? 'no message' };
}

/** Parses one Get_Workers response page (namespaced XML, `wd:` = urn:com.workday/bsvc). */
export function parseGetWorkers(body: string): GetWorkersPage {
  const valid = XMLValidator.validate(body);
  if (valid !== true) {
    throw new Error(`Get_Workers answered malformed XML: ${valid.err.msg} (line ${valid.err.line})`);
  }
  const doc = xml.parse(body) as Node;
  const soapBody = child(child(doc, 'Envelope'), 'Body');
  const fault = child(soapBody, 'Fault');
  if (fault)
    throw new Error(`Get_Workers answered a SOAP fault: ${leaf(fault, 'faultstring') ?? 'no message'}`);
  const response = child(soapBody, 'Get_Workers_Response');
  if (!response) throw new Error('the SOAP body has no Get_Workers_Response');
  const results = child(response, 'Response_Results');
  const number = (name: string, fallback: number) => {
    const raw = leaf(results, name);
    const n = raw === undefined ? fallback : Number(raw);
    if (!Number.isInteger(n) || n < 0) throw new Error(`Response_Results/${name} "${raw}" is not a count`);
    return n;
  };
  const workers: GetWorkersPage['workers'] = [];
  const problems: string[] = [];
  children(child(response, 'Response_Data'), 'Worker').forEach((worker, index) => {
    try {
      workers.push(workerFromXml(worker, index));
    } catch (err) {
      problems.push((err as Error).message);
    }
  });
  return {
    page: number('Page', 1),
    totalPages: number('Total_Pages', workers.length + problems.length > 0 ? 1 : 0),
    totalResults: number('Total_Results', workers.length + problems.length),
    workers,
    problems,
  };
}

function workerFromXml(worker: Node, index: number): WorkdayWorker {
  const data = child(worker, 'Worker_Data');
  const id = leaf(data, 'Worker_ID') ?? idOfType(child(worker, 'Worker_Reference'), 'Employee_ID');
  if (!id) throw new Error(`Worker ${index + 1} has no Worker_ID`);
  const at = `Worker ${id}: `;
  try {
    const status = child(child(data, 'Employment_Data'), 'Worker_Status_Data');
    const active = parseActive(leaf(status, 'Active'), 'Worker_Status_Data/Active');
    const terminated = parseActive(leaf(status, 'Terminated'), 'Worker_Status_Data/Terminated');
    // Terminated says whether the employment has ended; Active 0 alone is also a pre-hire's
    // (hired with a date ahead). So Active 0 is a termination only when Terminated is absent,
    // and then not before a hire date still ahead (see asOf).
    const inactiveOnly = terminated === undefined && active === false;
    const inactive = terminated === true || inactiveOnly;
    return {
      id,
      wid: idOfType(child(worker, 'Worker_Reference'), 'WID'),
      email: workEmail(child(child(data, 'Personal_Data'), 'Contact_Data')),
      username: leaf(data, 'User_ID') ?? leaf(child(data, 'User_Account_Data'), 'User_Name'),
      status: inactive ? 'terminated' : active === true ? 'active' : 'unknown',
      terminationDate: terminationDate(leaf(status, 'Termination_Date'), 'Termination_Date', inactive),
      lastDayOfWork: terminationDate(
        leaf(status, 'Termination_Last_Day_of_Work'),
        'Termination_Last_Day_of_Work',
        inactive,
      ),
      terminationReason: reasonOf(child(status, 'Primary_Termination_Reason_Reference')),
      hireDate: lenientDate(leaf(status, 'Hire_Date'), 'Hire_Date'),
      ...(inactiveOnly ? { inactiveOnly } : {}),
    };
  } catch (err) {
    throw new Error(at + (err as Error).message, { cause: err });
  }
}

// ---------------------------------------------------------------------------------------------

/** What one vendor payload holds: report rows, a single row, or a Get_Workers XML page. */
export function workersOf(record: unknown, config: WorkdayConfig): WorkdayWorker[] {
  if (typeof record === 'string') {
    if (!record.trimStart().startsWith('<'))
      throw new Error('expected a Get_Workers XML response or report JSON');
    const page = parseGetWorkers(record);
    if (page.problems.length > 0) throw new Error(page.problems.join('; '));
    return page.workers;
  }
  const columns = config.raas?.columns ?? columnsDefault;
  const report = reportSchema.safeParse(record);
  if (report.success) return report.data.Report_Entry.map((row) => workerFromRow(row, columns));
  return [workerFromRow(record, columns)];
}

const columnsDefault: WorkdayColumns = {
  employee_id: 'Employee_ID',
  work_email: 'Work_Email',
  user_name: 'User_Name',
  active_status: 'Active_Status',
  termination_date: 'Termination_Date',
  last_day_of_work: 'Last_Day_of_Work',
  termination_reason: 'Primary_Termination_Reason',
  hire_date: 'Hire_Date',
};

/**
 * Whether the instance reads changes (Get_Workers' transaction log, a report with a "changed
 * since" prompt) rather than a full report every run.
 */
export function readsChanges(config: WorkdayConfig): boolean {
  return config.mode === 'soap' || config.raas?.since_prompt !== undefined;
}

/**
 * A worker read by a run, as the leaver policy takes it. A change feed after its first read (the
 * state has a watermark) brings up what changed since: a termination it shows is news however
 * old its date (entered late), though the worker was never seen before. A first read, and a full
 * report every run, find old leavers too, which the backfill window keeps quiet.
 */
export function asRead(
  worker: WorkdayWorker,
  state: WorkdayState,
  config: WorkdayConfig,
  now: Date,
): WorkdayWorker {
  const read = asOf(worker, now, config.timezone);
  return state.watermark !== undefined && readsChanges(config) ? { ...read, announced: true } : read;
}

/** Applies every worker of a payload to the state (in place) and gathers the outcome. */
export function applyWorkers(
  state: WorkdayState,
  workers: WorkdayWorker[],
  config: WorkdayConfig,
  now: Date,
): LeaverOutcome {
  const policy = policyOf(config);
  const events = [];
  const ignored: string[] = [];
  for (const worker of workers) {
    const result = applyWorker(state, asRead(worker, state, config, now), policy, now);
    events.push(...result.events);
    if (result.ignored) ignored.push(`${worker.id}: ${result.ignored}`);
  }
  if (events.length > 0) return { events };
  return { events: [], ignored: ignored.length > 0 ? ignored.join('; ') : 'the report has no rows' };
}

/** The pure mapping behind `ssf-bridge simulate`: a payload and the previous state → events. */
export function mapRecord(
  record: unknown,
  config: WorkdayConfig,
  state: WorkdayState | undefined,
  now: Date,
): MappingResult<WorkdayState> {
  let workers: WorkdayWorker[];
  try {
    workers = workersOf(record, config);
  } catch (err) {
    throw new PermanentError(`malformed Workday payload: ${(err as Error).message}`, {
      code: 'SSF_ERR_WORKDAY_PAYLOAD',
      cause: err,
    });
  }
  const next = structuredClone(state ?? emptyState());
  const result = applyWorkers(next, workers, config, now);
  return result.events.length > 0
    ? { events: result.events, state: next }
    : { events: [], ignored: result.ignored ?? 'no leaver-relevant change', state: next };
}
