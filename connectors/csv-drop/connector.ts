import { createHash } from 'node:crypto';
import { watch, type FSWatcher, type Stats } from 'node:fs';
import { access, constants, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  PermanentError,
  RetryableError,
  type InboundConnector,
  type InboundContext,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import type { CsvDropConfig } from './config.ts';
import { hrCheckpoint, logBackfilled } from '../_shared/hr-checkpoint.ts';
import { emptyHrState, notHeld } from '../_shared/hr-leaver.ts';
import {
  applyExport,
  policyOf,
  readExport,
  refuse,
  stateSchema,
  type CsvDropState,
  type ExportOutcome,
} from './mapping.ts';

/** Error code of an unreadable checkpoint: the bridge's problem, not the file's. */
const STATE_CODE = 'SSF_ERR_CSV_STATE';

/** `*` and `?` wildcards → a regular expression for whole file names (case-insensitive). */
export function globToRegExp(glob: string): RegExp {
  const body = glob
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '[^/]*')
    .replace(/\?/g, '[^/]');
  return new RegExp(`^${body}$`, 'i');
}

/**
 * The most an export may hold: read whole and decoded into one string, a larger file would not
 * fit (V8 strings end near 512 Mi characters). Far above any HR export (100,000 employees take
 * about 20 MB).
 */
export const MAX_EXPORT_BYTES = 256 * 1024 * 1024;

/** Read errors that the same file will give again: it goes to failed/ instead of blocking the folder. */
const UNREADABLE = new Set(['EACCES', 'EPERM', 'EISDIR', 'ELOOP', 'ERR_FS_FILE_TOO_LARGE']);

/** Scans in a row a file may fail in before it goes to failed/, so the exports after it go on. */
export const MAX_FILE_ATTEMPTS = 3;

/** The longest file name (in bytes) common file systems take. */
const NAME_MAX = 255;
const REASON_SUFFIX = '.reason.txt';

interface ExportBytes {
  bytes: Buffer;
  /** Size and mtime before reading: a writer still at work changes them. */
  size: number;
  mtimeMs: number;
}

/** The export's bytes, or why it cannot be read (a reason for failed/). */
async function readExportFile(path: string): Promise<ExportBytes | string> {
  try {
    const { size, mtimeMs } = await stat(path);
    if (size > MAX_EXPORT_BYTES) {
      return `the file holds ${size} bytes, more than the ${MAX_EXPORT_BYTES} an export may hold; split it`;
    }
    return { bytes: await readFile(path), size, mtimeMs };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== undefined && UNREADABLE.has(code)) {
      return `the file cannot be read (${code}): give the bridge's user read access and drop it again`;
    }
    throw err;
  }
}

/** A file-system-safe time stamp for names in processed/ and failed/. */
function stamp(at: Date): string {
  return at.toISOString().replace(/[:.]/g, '-');
}

/**
 * `<time stamp>_<name>`, short enough for the file system with `.reason.txt` added: a long
 * export name is cut (its extension kept) and marked with a hash of the whole, so that no name
 * can keep a file from leaving processing/.
 */
export function stampedName(at: Date, name: string): string {
  const prefix = `${stamp(at)}_`;
  const budget = NAME_MAX - REASON_SUFFIX.length - prefix.length;
  if (Buffer.byteLength(name) <= budget) return prefix + name;
  const hash = createHash('sha256').update(name).digest('hex').slice(0, 8);
  const dot = name.lastIndexOf('.');
  const ext = dot > 0 && name.length - dot <= 16 ? name.slice(dot) : '';
  const room = budget - Buffer.byteLength(ext) - hash.length - 1;
  let head = '';
  for (const ch of name.slice(0, name.length - ext.length)) {
    if (Buffer.byteLength(head + ch) > room) break;
    head += ch;
  }
  return `${prefix}${head}~${hash}${ext}`;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

interface Candidate {
  path: string;
  name: string;
  /** In processing/ already. */
  claimed: boolean;
  mtime: number;
  /** Settled: found the same by two scans in a row (or left in processing/ by a crash). */
  ready: boolean;
}

/**
 * Watches a folder for HR exports. Each file is claimed by moving it into processing/, read
 * whole, diffed against the previous snapshot and, when the mass-change guard allows it,
 * applied: its events and the new snapshot are committed in one transaction, then the file
 * moves to processed/. A refused file moves to failed/ next to a `.reason.txt`, as does one
 * that fails in MAX_FILE_ATTEMPTS scans in a row. Held changes are released on their own
 * schedule, so a file that cannot be handled holds back no leaver.
 */
export function createCsvDrop(ctx: InboundContext<CsvDropState>, config: CsvDropConfig): InboundConnector {
  const folder = resolve(config.folder);
  const dirs = {
    processing: join(folder, 'processing'),
    processed: join(folder, 'processed'),
    failed: join(folder, 'failed'),
  };
  const matches = globToRegExp(config.pattern);
  const policy = policyOf(config);
  const files = ctx.metrics.counter('csv_drop_files_total', 'Export files handled, by outcome', ['outcome']);
  const rowsRead = ctx.metrics.counter('csv_drop_rows_total', 'Rows of accepted exports, by outcome', [
    'outcome',
  ]);
  const checkpoint = hrCheckpoint<CsvDropState>(ctx, {
    metricPrefix: 'csv_drop',
    source: 'csv-drop',
    code: STATE_CODE,
    schema: stateSchema,
    empty: emptyHrState,
  });
  const { serial } = checkpoint;
  const tasks: ScheduledTask[] = [];
  /** Size and mtime of each file as the last scan found it. */
  const observed = new Map<string, { size: number; mtimeMs: number }>();
  /** Failed scans in a row, by file name. */
  const failures = new Map<string, number>();
  /** Files that failed and could not be moved to failed/ either: skipped until a restart. */
  const parked = new Set<string>();
  let watcher: FSWatcher | undefined;
  let nudge: NodeJS.Timeout | undefined;
  let stopped = true;

  /**
   * Whether a file is as the previous scan found it (same size and mtime) and unchanged for
   * settle_time. A writer that stalls longer than settle_time still changes the file between
   * two scans, or while it is read (see processFile). A settle_time of zero says exports are
   * moved in complete (an atomic rename), so a file is ready when first seen.
   */
  function steady(path: string, info: Stats, now: number): boolean {
    const before = observed.get(path);
    observed.set(path, { size: info.size, mtimeMs: info.mtimeMs });
    if (config.settle_time === 0) return true;
    const same = before?.size === info.size && before.mtimeMs === info.mtimeMs;
    return same && now - info.mtimeMs >= config.settle_time;
  }

  /** Matching files, oldest first, and whether each has settled. Leftovers of a crash come first. */
  async function candidates(): Promise<Candidate[]> {
    const now = Date.now();
    const out: Candidate[] = [];
    const seen = new Set<string>();
    const look = async (path: string) => {
      seen.add(path);
      const info = await stat(path).catch(() => undefined);
      return info && { info, ready: steady(path, info, now) };
    };
    for (const entry of await readdir(dirs.processing, { withFileTypes: true })) {
      const path = join(dirs.processing, entry.name);
      if (!entry.isFile() || parked.has(path)) continue;
      // One that changed while it was read is taken again once it has settled; other files
      // there were claimed before a crash.
      const found = observed.has(path) ? await look(path) : { ready: true };
      if (found) out.push({ path, name: entry.name, claimed: true, mtime: 0, ready: found.ready });
    }
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      const path = join(folder, entry.name);
      if (!entry.isFile() || !matches.test(entry.name) || parked.has(path)) continue;
      const found = await look(path);
      if (found)
        out.push({ path, name: entry.name, claimed: false, mtime: found.info.mtimeMs, ready: found.ready });
    }
    for (const path of observed.keys()) if (!seen.has(path)) observed.delete(path);
    return out.sort(
      (a, b) => Number(b.claimed) - Number(a.claimed) || a.mtime - b.mtime || a.name.localeCompare(b.name),
    );
  }

  async function fail(path: string, name: string, reason: string, at: Date): Promise<void> {
    const target = join(dirs.failed, stampedName(at, name));
    await rename(path, target);
    await writeFile(`${target}${REASON_SUFFIX}`, `${at.toISOString()}\n${reason}\n`, 'utf8');
    files.inc({ outcome: 'failed' });
    ctx.status.set('recoverable_error', `${name} was refused: ${reason}`);
    ctx.logger.warn({ file: name, reason }, 'HR export refused; moved to failed/');
  }

  /** Moves an applied export to processed/; a failure says that its events are sent already. */
  async function moveApplied(path: string, target: string): Promise<void> {
    try {
      await rename(path, target);
    } catch (err) {
      const problem = `the export is applied (its events are sent), but cannot be moved to processed/`;
      throw new Error(`${problem}: ${describe(err)}`, { cause: err });
    }
  }

  /**
   * Whether the file changed since it was read: its writer is still at work (it stalled longer
   * than settle_time and went on, into the claimed file). Applied, the cut-off export would make
   * a leaver of everyone after the cut (missing_rows: terminate); it is read again once settled.
   */
  async function changedSince(path: string, read: ExportBytes, name: string): Promise<boolean> {
    const now = await stat(path);
    if (now.size === read.size && now.size === read.bytes.length && now.mtimeMs === read.mtimeMs)
      return false;
    observed.set(path, { size: now.size, mtimeMs: now.mtimeMs });
    files.inc({ outcome: 'unsettled' });
    ctx.logger.warn(
      { file: name, bytes_read: read.bytes.length, bytes_now: now.size },
      'HR export changed while it was read (still being written?); nothing applied, it is read again once settled',
    );
    return true;
  }

  async function processFile(path: string, name: string): Promise<void> {
    const read = await readExportFile(path);
    if (typeof read === 'string') return fail(path, name, read, ctx.clock.now());
    const { bytes } = read;
    const sha = createHash('sha256').update(bytes).digest('hex');
    const now = ctx.clock.now();
    const state = await checkpoint.load();
    const processed = join(dirs.processed, stampedName(now, name));
    // Only the export applied last is skipped: a re-sent copy, or a file a crash left in
    // processing/ after its commit. An export equal to an older one is applied, since the
    // employees may have changed back to it (a termination rescinded, then entered again).
    if (state.files?.at(-1) === sha) {
      await moveApplied(path, processed);
      files.inc({ outcome: 'duplicate' });
      ctx.logger.info({ file: name, sha256: sha }, 'export already applied; moved to processed/');
      return;
    }
    const firstExport = state.rows === undefined && !state.files?.length;
    let rows = 0;
    let applied: ExportOutcome | PermanentError;
    try {
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        throw refuse(
          `the file is not UTF-8 text: line ${firstNonUtf8Line(bytes)} is not (save the export as UTF-8)`,
        );
      }
      const workers = readExport(text, config);
      rows = workers.length;
      applied = applyExport(state, workers, config, now);
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      applied = err;
    }
    // Checked before a refusal too: a file cut off mid-row is refused as unreadable.
    if (await changedSince(path, read, name)) return;
    if (applied instanceof PermanentError) return fail(path, name, applied.message, now);
    state.files = [sha];
    const due = notHeld(applied.events, state);
    await checkpoint.commit(state, due);
    await moveApplied(path, processed);
    files.inc({ outcome: 'processed' });
    const unnamedRows = applied.unnamed.filter((u) => u.line !== undefined).length;
    rowsRead.inc({ outcome: 'mapped' }, applied.mapped);
    rowsRead.inc({ outcome: 'backfilled' }, applied.backfilled.length);
    rowsRead.inc({ outcome: 'no_email' }, unnamedRows);
    rowsRead.inc({ outcome: 'ignored' }, rows - applied.mapped - applied.backfilled.length - unnamedRows);
    ctx.logger.info(
      { file: name, rows, events: due.length, held: Object.keys(state.pending).length },
      'HR export applied; moved to processed/',
    );
    logBackfilled(ctx, applied.backfilled, config.backfill_window, { file: name, first_export: firstExport });
    if (applied.unnamed.length > 0) reportUnnamed(name, applied.unnamed);
    else ctx.status.success();
  }

  /** Leavers that no subject could be made for: nothing was sent, and nothing may pass silently. */
  function reportUnnamed(name: string, unnamed: ExportOutcome['unnamed']): void {
    const listed = unnamed
      .slice(0, 10)
      .map((u) =>
        u.line === undefined
          ? `employee ${u.id} (missing from the export)`
          : `line ${u.line} (employee ${u.id})`,
      );
    const more = unnamed.length > listed.length ? ` and ${unnamed.length - listed.length} more` : '';
    const message = `${name}: ${unnamed.length} leaver(s) not sent: no usable email, and subject_format is email: ${listed.join(', ')}${more}`;
    ctx.logger.warn({ file: name, leavers: unnamed.length, examples: listed }, message);
    ctx.status.set('recoverable_error', message);
  }

  /**
   * Claims and processes one file. A failure of the bridge's (the outbox full, the stored state
   * unreadable) leaves it to be taken first again; one of the file's own (it cannot be moved,
   * or read) does too, MAX_FILE_ATTEMPTS times, then it goes to failed/ with the reason.
   */
  async function handle(file: Candidate): Promise<void> {
    let path = file.path;
    try {
      if (!file.claimed) {
        const claimed = join(dirs.processing, file.name);
        try {
          await rename(file.path, claimed);
        } catch (err) {
          // Another process claimed it first, or it was removed: not ours to handle.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw err;
        }
        path = claimed;
      }
      await processFile(path, file.name);
      failures.delete(file.name);
    } catch (err) {
      if (err instanceof RetryableError || (err instanceof PermanentError && err.code === STATE_CODE))
        throw err;
      const tries = (failures.get(file.name) ?? 0) + 1;
      failures.set(file.name, tries);
      if (tries < MAX_FILE_ATTEMPTS) throw err;
      failures.delete(file.name);
      await giveUp(path, file.name, `${describe(err)} (failed ${tries} times)`);
    }
  }

  async function giveUp(path: string, name: string, reason: string): Promise<void> {
    try {
      await fail(path, name, reason, ctx.clock.now());
    } catch (err) {
      parked.add(path);
      const message = `${name} keeps failing (${reason}) and cannot be moved to failed/ either (${describe(err)}); skipped until the bridge restarts`;
      ctx.status.set('recoverable_error', message);
      ctx.logger.error({ file: name, reason, move_error: describe(err) }, 'HR export skipped');
    }
  }

  async function scan(signal?: AbortSignal): Promise<void> {
    await Promise.all(Object.values(dirs).map((d) => mkdir(d, { recursive: true })));
    for (const file of await candidates()) {
      if (signal?.aborted || stopped) return;
      // Exports apply in order: one not settled yet holds back the newer ones.
      if (!file.ready) return scanSoon(Math.max(config.settle_time, 500));
      await handle(file);
    }
  }

  /** A scan after `delayMs`, in turn with the other work (a change seen, a file settling). */
  function scanSoon(delayMs: number): void {
    if (stopped || nudge) return;
    nudge = setTimeout(() => {
      nudge = undefined;
      if (!stopped)
        void serial(() => scan()).catch((err: unknown) => ctx.logger.warn({ err }, 'scan failed'));
    }, delayMs + 50);
    nudge.unref();
  }

  function report(err: unknown): never {
    if (err instanceof PermanentError) ctx.status.set('permanent_error', err.message);
    else if (err instanceof RetryableError) ctx.status.set('recoverable_error', err.message);
    else ctx.status.set('recoverable_error', err instanceof Error ? err.message : String(err));
    throw err;
  }

  return {
    async check() {
      try {
        await access(folder, constants.R_OK | constants.W_OK);
        if (!(await stat(folder)).isDirectory()) return { ok: false, message: `${folder} is not a folder` };
        return { ok: true, message: `watching ${folder}` };
      } catch (err) {
        return {
          ok: false,
          message: `${folder} cannot be read and written: ${(err as Error).message}`,
          retryable: true,
        };
      }
    },
    async start() {
      stopped = false;
      tasks.push(
        ctx.scheduler.schedule('scan', { everyMs: config.scan_interval, runOnStart: true }, (signal) =>
          serial(() => scan(signal)).catch(report),
        ),
        // Apart from the scans: a file that cannot be handled must not hold back a leaver.
        checkpoint.scheduleRelease(policy, config.scan_interval),
      );
      try {
        watcher = watch(folder, () => scanSoon(config.settle_time));
        watcher.on('error', (err) =>
          ctx.logger.warn({ err: err.message }, 'folder watcher failed; scanning on schedule'),
        );
      } catch (err) {
        ctx.logger.info(
          { reason: (err as Error).message },
          'folder cannot be watched; scanning on schedule only',
        );
      }
    },
    async stop(deadlineMs) {
      stopped = true;
      for (const task of tasks.splice(0)) task.stop();
      watcher?.close();
      watcher = undefined;
      clearTimeout(nudge);
      nudge = undefined;
      await checkpoint.settle(deadlineMs);
    },
  };
}

/** The line (from 1) holding the first byte sequence that is not UTF-8. */
export function firstNonUtf8Line(bytes: Uint8Array): number {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let line = 1;
  let start = 0;
  for (let i = 0; i <= bytes.length; i += 1) {
    if (i < bytes.length && bytes[i] !== 0x0a) continue;
    try {
      decoder.decode(bytes.subarray(start, i));
    } catch {
      return line;
    }
    line += 1;
    start = i + 1;
  }
  return line;
}
