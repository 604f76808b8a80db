import { createHash } from 'node:crypto';
import { watch, type FSWatcher } from 'node:fs';
import { access, constants, mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  PermanentError,
  RetryableError,
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import type { CsvDropConfig } from './config.ts';
import { hrCheckpoint } from '../_shared/hr-checkpoint.ts';
import { emptyHrState, notHeld } from '../_shared/hr-leaver.ts';
import { applyExport, policyOf, readExport, refuse, stateSchema, type CsvDropState } from './mapping.ts';

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

/** The export's bytes, or why it cannot be read (a reason for failed/). */
async function readExportFile(path: string): Promise<Buffer | string> {
  try {
    const { size } = await stat(path);
    if (size > MAX_EXPORT_BYTES) {
      return `the file holds ${size} bytes, more than the ${MAX_EXPORT_BYTES} an export may hold; split it`;
    }
    return await readFile(path);
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
 * Watches a folder for HR exports. Each file is claimed by moving it into processing/, read
 * whole, diffed against the previous snapshot and, when the mass-change guard allows it,
 * applied: its events and the new snapshot are committed in one transaction, then the file
 * moves to processed/. A refused file moves to failed/ next to a `.reason.txt`.
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
    code: 'SSF_ERR_CSV_STATE',
    schema: stateSchema,
    empty: emptyHrState,
  });
  const { serial } = checkpoint;
  const tasks: ScheduledTask[] = [];
  let watcher: FSWatcher | undefined;
  let nudge: NodeJS.Timeout | undefined;
  let stopped = true;

  /** Files ready to read: matching, settled, oldest first. Leftovers of a crash come first. */
  async function candidates(): Promise<Array<{ path: string; name: string; claimed: boolean }>> {
    const now = Date.now();
    const out: Array<{ path: string; name: string; claimed: boolean; mtime: number }> = [];
    for (const entry of await readdir(dirs.processing, { withFileTypes: true })) {
      if (entry.isFile())
        out.push({ path: join(dirs.processing, entry.name), name: entry.name, claimed: true, mtime: 0 });
    }
    for (const entry of await readdir(folder, { withFileTypes: true })) {
      if (!entry.isFile() || !matches.test(entry.name)) continue;
      const path = join(folder, entry.name);
      const info = await stat(path).catch(() => undefined);
      if (!info || now - info.mtimeMs < config.settle_time) continue;
      out.push({ path, name: entry.name, claimed: false, mtime: info.mtimeMs });
    }
    return out.sort(
      (a, b) => Number(b.claimed) - Number(a.claimed) || a.mtime - b.mtime || a.name.localeCompare(b.name),
    );
  }

  async function fail(path: string, name: string, reason: string, at: Date): Promise<void> {
    const target = join(dirs.failed, `${stamp(at)}_${name}`);
    await rename(path, target);
    await writeFile(`${target}.reason.txt`, `${at.toISOString()}\n${reason}\n`, 'utf8');
    files.inc({ outcome: 'failed' });
    ctx.status.set('recoverable_error', `${name} was refused: ${reason}`);
    ctx.logger.warn({ file: name, reason }, 'HR export refused; moved to failed/');
  }

  async function processFile(path: string, name: string): Promise<void> {
    const bytes = await readExportFile(path);
    if (typeof bytes === 'string') return fail(path, name, bytes, ctx.clock.now());
    const sha = createHash('sha256').update(bytes).digest('hex');
    const now = ctx.clock.now();
    const state = await checkpoint.load();
    const processed = join(dirs.processed, `${stamp(now)}_${name}`);
    // Only the export applied last is skipped: a re-sent copy, or a file a crash left in
    // processing/ after its commit. An export equal to an older one is applied, since the
    // employees may have changed back to it (a termination rescinded, then entered again).
    if (state.files?.at(-1) === sha) {
      await rename(path, processed);
      files.inc({ outcome: 'duplicate' });
      ctx.logger.info({ file: name, sha256: sha }, 'export already applied; moved to processed/');
      return;
    }
    let events: EventDraft[];
    let rows: number;
    let mapped: number;
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
      ({ events, mapped } = applyExport(state, workers, config, now));
    } catch (err) {
      if (err instanceof PermanentError) return fail(path, name, err.message, now);
      throw err;
    }
    state.files = [sha];
    const due = notHeld(events, state);
    await checkpoint.commit(state, due);
    await rename(path, processed);
    files.inc({ outcome: 'processed' });
    rowsRead.inc({ outcome: 'mapped' }, mapped);
    rowsRead.inc({ outcome: 'ignored' }, rows - mapped);
    ctx.status.success();
    ctx.logger.info(
      { file: name, rows, events: due.length, held: Object.keys(state.pending).length },
      'HR export applied; moved to processed/',
    );
  }

  async function scan(signal?: AbortSignal): Promise<void> {
    await Promise.all(Object.values(dirs).map((d) => mkdir(d, { recursive: true })));
    for (const file of await candidates()) {
      if (signal?.aborted || stopped) return;
      let path = file.path;
      if (!file.claimed) {
        path = join(dirs.processing, file.name);
        try {
          await rename(file.path, path);
        } catch (err) {
          // Another process claimed it first, or it was removed: not ours to handle.
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
      }
      await processFile(path, file.name);
    }
    await checkpoint.release(policy);
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
      );
      try {
        watcher = watch(folder, () => {
          if (stopped || nudge) return;
          nudge = setTimeout(() => {
            nudge = undefined;
            if (!stopped)
              void serial(() => scan()).catch((err: unknown) => ctx.logger.warn({ err }, 'scan failed'));
          }, config.settle_time + 50);
          nudge.unref();
        });
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
