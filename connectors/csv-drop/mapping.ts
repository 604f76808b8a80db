import {
  PermanentError,
  usableEmail,
  z,
  type EventDraft,
  type MappingResult,
} from '../../core/plugin-api/index.ts';
import type { CsvDropConfig } from './config.ts';
import { CsvError, parseCsv } from './csv.ts';
import {
  applyWorker,
  emptyHrState,
  hrDate,
  hrStateShape,
  leaverPolicy,
  unnamedLeaver,
  type HrState,
  type HrWorker,
  type LeaverPolicy,
} from '../_shared/hr-leaver.ts';

export interface CsvDropState extends HrState {
  /** Rows in the last accepted export (the guard compares the next one with it). */
  rows?: number | undefined;
  /** SHA-256 of the export applied last (older states list more, newest last). */
  files?: string[] | undefined;
}

/** The checkpoint, checked when it is loaded (held events are stored as plain JSON drafts). */
export const stateSchema = z.object({
  ...hrStateShape,
  rows: z.number().int().min(0).optional(),
  files: z.array(z.string()).optional(),
}) as unknown as z.ZodType<CsvDropState>;

export function policyOf(config: CsvDropConfig): LeaverPolicy {
  // A terminated row must carry a date (readExport); one undated all the same, on first sight,
  // is an old leaver rather than today's.
  return leaverPolicy(config, config.hr_id_issuer ?? 'urn:ssf-bridge:hr', { undated: 'backfill' });
}

/** Refusals are permanent for the file: it goes to failed/ with the reason. */
export function refuse(message: string, code = 'SSF_ERR_CSV_INVALID'): PermanentError {
  return new PermanentError(message, { code });
}

const MAX_LISTED = 10;

/** A row of an export, as the leaver policy takes it, with the line it starts on. */
export type CsvWorker = HrWorker & { line?: number | undefined };

/**
 * Whether the export applied next announces its terminations: a later export with missing_rows:
 * ignore may list only what changed, so an employee first seen there is news, and a termination
 * it shows is sent however old its date (entered late), as a change feed's is. The first export,
 * and the full listings of missing_rows: terminate, find old leavers, which backfill_window
 * keeps quiet.
 */
export function announces(state: CsvDropState, config: CsvDropConfig): boolean {
  const applied = state.rows !== undefined || (state.files?.length ?? 0) > 0;
  return applied && config.missing_rows === 'ignore';
}

/** Reads an export into workers, or refuses the whole file with every problem found. */
export function readExport(text: string, config: CsvDropConfig): CsvWorker[] {
  let table;
  try {
    table = parseCsv(text, config.delimiter);
  } catch (err) {
    if (err instanceof CsvError) throw refuse(`not readable as CSV: ${err.message}`);
    throw err;
  }
  const index = new Map(table.header.map((name, i) => [name.toLowerCase(), i]));
  const col = (name: string) => index.get(name.toLowerCase());
  const c = config.columns;
  const missing = [c.employee_id, c.email, c.status, c.effective_date].filter(
    (name) => col(name) === undefined,
  );
  if (missing.length > 0) {
    throw refuse(`the export has no column ${missing.join(', ')} (its columns: ${table.header.join(', ')})`);
  }
  const values = new Map<string, HrWorker['status']>();
  for (const v of config.status_values.active) values.set(v.trim().toLowerCase(), 'active');
  for (const v of config.status_values.terminated) values.set(v.trim().toLowerCase(), 'terminated');
  for (const v of config.status_values.leave) values.set(v.trim().toLowerCase(), 'leave');

  const problems: string[] = [];
  const workers: CsvWorker[] = [];
  const firstLine = new Map<string, number>();
  table.rows.forEach((row, r) => {
    const line = table.lines[r] as number;
    const get = (name: string) => {
      const i = col(name);
      return i === undefined ? undefined : (row[i] as string).trim() || undefined;
    };
    const id = get(c.employee_id);
    if (!id) {
      problems.push(`line ${line}: ${c.employee_id} is empty`);
      return;
    }
    const seen = firstLine.get(id);
    if (seen !== undefined) {
      problems.push(`line ${line}: employee ${id} already appears on line ${seen}`);
      return;
    }
    firstLine.set(id, line);
    const rawStatus = get(c.status) ?? '';
    const status = values.get(rawStatus.toLowerCase());
    if (!status) problems.push(`line ${line}: ${c.status} "${rawStatus}" is not a known status`);
    const email = get(c.email);
    if (email && !usableEmail(email))
      problems.push(`line ${line}: ${c.email} "${email}" is not an email address`);
    const previous = get(c.previous_email);
    if (previous && !usableEmail(previous)) {
      problems.push(`line ${line}: ${c.previous_email} "${previous}" is not an email address`);
    }
    let effective: string | undefined;
    let termination: string | undefined;
    try {
      effective = hrDate(get(c.effective_date), c.effective_date);
      termination = hrDate(get(c.termination_date), c.termination_date);
      // A leaver without a date could only be dated "now": 300 old leavers of a first export
      // would be sent as today's. The required column must date every termination.
      if (status === 'terminated' && effective === undefined && termination === undefined) {
        problems.push(
          `line ${line}: ${c.effective_date} is empty on a terminated row (give the date the termination took effect)`,
        );
      }
    } catch (err) {
      problems.push(`line ${line}: ${(err as Error).message}`);
    }
    if (!status) return;
    workers.push({
      id,
      email,
      previousEmail: previous,
      username: get(c.username),
      status,
      terminationDate: status === 'terminated' ? (termination ?? effective) : termination,
      // An active row dated ahead is a rehire that starts then.
      ...(status === 'active' && effective ? { activeFrom: effective } : {}),
      line,
    });
  });
  if (problems.length > 0) {
    const more = problems.length > MAX_LISTED ? ` (and ${problems.length - MAX_LISTED} more)` : '';
    throw refuse(`${problems.length} invalid rows: ${problems.slice(0, MAX_LISTED).join('; ')}${more}`);
  }
  return workers;
}

/**
 * The mass-change guard: refuses an export that is much shorter than the previous one (when
 * exports list every employee, missing_rows: terminate), in which too many employees turn into
 * leavers at once (including missing ones, when missing means terminated), or in which too many
 * leavers turn active again. Returns the reason, or undefined when the file may be applied.
 */
export function massChange(
  workers: HrWorker[],
  state: CsvDropState,
  config: CsvDropConfig,
): string | undefined {
  const previous = state.rows;
  if (previous === undefined || previous === 0) return undefined;
  const { max_ratio: ratio, min_rows: floor } = config.mass_change_guard;
  const lost = previous - workers.length;
  // Row counts only say "truncated" when every export lists every employee; with
  // missing_rows: ignore an export may hold only what changed.
  if (config.missing_rows === 'terminate' && lost > floor && workers.length < previous * (1 - ratio)) {
    return `the export has ${workers.length} rows where the previous one had ${previous}; it looks truncated`;
  }
  const present = new Set(workers.map((w) => w.id));
  const wasActive = (id: string) => state.workers[id]?.status === 'active';
  const flips = workers.filter((w) => w.status === 'terminated' && wasActive(w.id)).length;
  const gone =
    config.missing_rows === 'terminate'
      ? Object.keys(state.workers).filter((id) => wasActive(id) && !present.has(id)).length
      : 0;
  // Employees never seen before are sent as leavers too when the export announces (a later
  // export of changes): an export of everyone, old leavers included, would send them all.
  const fresh = announces(state, config)
    ? workers.filter((w) => w.status === 'terminated' && state.workers[w.id] === undefined).length
    : 0;
  const leavers = flips + gone + fresh;
  const base = Object.keys(state.workers).filter(wasActive).length || previous;
  if (leavers > floor && leavers > base * ratio) {
    const share = `more than ${Math.round(ratio * 100)}%`;
    return fresh === 0
      ? `${leavers} of ${base} active employees would become leavers at once (${share})`
      : `${leavers} employees would be sent as leavers at once: ${flips + gone} of ${base} active ones and ${fresh} never seen before (${share}; an export of everyone, old leavers included, with missing_rows: ignore?)`;
  }
  // The other way round: many leavers active again at once is what an older export dropped
  // again looks like, and it would give their access back.
  const wasLeaver = (id: string) => state.workers[id]?.status === 'terminated';
  const returning = workers.filter((w) => w.status === 'active' && wasLeaver(w.id)).length;
  const leaverBase = Object.keys(state.workers).filter(wasLeaver).length;
  if (returning > floor && returning > leaverBase * ratio) {
    return `${returning} of ${leaverBase} leavers would be active again at once (more than ${Math.round(ratio * 100)}%; an older export dropped again?)`;
  }
  return undefined;
}

/** What applying an export gave, row by row. */
export interface ExportOutcome {
  events: EventDraft[];
  /** Why nothing was emitted (set only when `events` is empty). */
  ignored?: string;
  /** Rows that gave events. */
  mapped: number;
  /** Employees first seen as old (or undated) leavers, recorded without events. */
  backfilled: string[];
  /**
   * Leavers not sent for want of a subject (subject_format email, no email known): rows by
   * line, and employees missing from the export (missing_rows: terminate).
   */
  unnamed: Array<{ id: string; line?: number | undefined }>;
}

/** Applies an export to the state (in place): every row, then missing employees if configured. */
export function applyExport(
  state: CsvDropState,
  workers: CsvWorker[],
  config: CsvDropConfig,
  now: Date,
): ExportOutcome {
  const reason = massChange(workers, state, config);
  if (reason) {
    throw refuse(
      `${reason}; nothing was applied. If the change is real, raise mass_change_guard.max_ratio for one file.`,
      'SSF_ERR_CSV_MASS_CHANGE',
    );
  }
  const policy = policyOf(config);
  const news = announces(state, config);
  const events = [];
  const ignored: string[] = [];
  const present = new Set<string>();
  const backfilled: string[] = [];
  const unnamed: ExportOutcome['unnamed'] = [];
  let mapped = 0;
  for (const { line, ...worker } of workers) {
    present.add(worker.id);
    const result = applyWorker(state, news ? { ...worker, announced: true } : worker, policy, now);
    events.push(...result.events);
    if (result.backfilled) backfilled.push(worker.id);
    if (unnamedLeaver(result)) unnamed.push({ id: worker.id, line });
    if (result.ignored) ignored.push(`${worker.id}: ${result.ignored}`);
    else mapped += 1;
  }
  if (config.missing_rows === 'terminate') {
    for (const [id, known] of Object.entries(state.workers)) {
      // A leaver whose rehire is held, missing from a full export, is not coming back.
      const rehireHeld = state.pending[`${id}:enable`] !== undefined;
      if (present.has(id) || (known.status !== 'active' && !rehireHeld)) continue;
      const result = applyWorker(
        state,
        { id, status: 'terminated', observedAt: now.toISOString() },
        policy,
        now,
      );
      events.push(...result.events);
      if (unnamedLeaver(result)) unnamed.push({ id });
    }
  }
  state.rows = workers.length;
  const found = { mapped, backfilled, unnamed };
  if (events.length > 0) return { events, ...found };
  return {
    events: [],
    ignored: ignored.length > 0 ? ignored.join('; ') : 'the export has no rows',
    ...found,
  };
}

/** The pure mapping behind `ssf-bridge simulate`: one export (the CSV text) and the last state. */
export function mapExport(
  record: unknown,
  config: CsvDropConfig,
  state: CsvDropState | undefined,
  now: Date,
): MappingResult<CsvDropState> {
  const text =
    typeof record === 'string'
      ? record
      : typeof record === 'object' && record !== null && typeof (record as { csv?: unknown }).csv === 'string'
        ? (record as { csv: string }).csv
        : undefined;
  if (text === undefined) throw refuse('a CSV export is text (or {"csv": "<text>"})');
  const next = structuredClone(state ?? emptyHrState()) as CsvDropState;
  const result = applyExport(next, readExport(text, config), config, now);
  return result.events.length > 0
    ? { events: result.events, state: next }
    : { events: [], ignored: result.ignored ?? 'no leaver-relevant change', state: next };
}
