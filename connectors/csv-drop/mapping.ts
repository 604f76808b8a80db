import { PermanentError, usableEmail, z, type MappingResult } from '../../core/plugin-api/index.ts';
import type { CsvDropConfig } from './config.ts';
import { CsvError, parseCsv } from './csv.ts';
import {
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
  return leaverPolicy(config, config.hr_id_issuer ?? 'urn:ssf-bridge:hr');
}

/** Refusals are permanent for the file: it goes to failed/ with the reason. */
export function refuse(message: string, code = 'SSF_ERR_CSV_INVALID'): PermanentError {
  return new PermanentError(message, { code });
}

const MAX_LISTED = 10;

/** Reads an export into workers, or refuses the whole file with every problem found. */
export function readExport(text: string, config: CsvDropConfig): HrWorker[] {
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
  const workers: HrWorker[] = [];
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
  const leavers = flips + gone;
  const base = Object.keys(state.workers).filter(wasActive).length || previous;
  if (leavers > floor && leavers > base * ratio) {
    return `${leavers} of ${base} active employees would become leavers at once (more than ${Math.round(ratio * 100)}%)`;
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

/** Applies an export to the state (in place): every row, then missing employees if configured. */
export function applyExport(
  state: CsvDropState,
  workers: HrWorker[],
  config: CsvDropConfig,
  now: Date,
): LeaverOutcome & { mapped: number } {
  const reason = massChange(workers, state, config);
  if (reason) {
    throw refuse(
      `${reason}; nothing was applied. If the change is real, raise mass_change_guard.max_ratio for one file.`,
      'SSF_ERR_CSV_MASS_CHANGE',
    );
  }
  const policy = policyOf(config);
  const events = [];
  const ignored: string[] = [];
  const present = new Set<string>();
  let mapped = 0;
  for (const worker of workers) {
    present.add(worker.id);
    const result = applyWorker(state, worker, policy, now);
    events.push(...result.events);
    if (result.ignored) ignored.push(`${worker.id}: ${result.ignored}`);
    else mapped += 1;
  }
  if (config.missing_rows === 'terminate') {
    for (const [id, known] of Object.entries(state.workers)) {
      if (present.has(id) || known.status !== 'active') continue;
      const result = applyWorker(
        state,
        { id, status: 'terminated', observedAt: now.toISOString() },
        policy,
        now,
      );
      events.push(...result.events);
    }
  }
  state.rows = workers.length;
  if (events.length > 0) return { events, mapped };
  return { events: [], ignored: ignored.length > 0 ? ignored.join('; ') : 'the export has no rows', mapped };
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
