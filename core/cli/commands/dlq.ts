import type { Command } from 'commander';
import { parseDuration } from '../../plugin-api/index.ts';
import {
  AdminQueryError,
  deadLetterCursor,
  readDeadLetterCursor,
  readIsoTime,
  type IsoTimeReading,
} from '../../admin/paging.ts';
import { decodeCompact, eventCatalog, findEventType } from '../../ssf/index.ts';
import { type DeadLetter, type DeadLetterFilter, type Store } from '../../storage/index.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { openBridgeStore } from '../bridge-store.ts';
import { loadBridgeConfig } from '../load-config.ts';

/** Letters replayed per transaction; also the step of the progress bar. */
export const REPLAY_BATCH = 500;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 1000;

interface FilterOptions {
  config?: string;
  destination?: string;
  eventType?: string;
  since?: string;
  until?: string;
}

interface ListOptions extends FilterOptions {
  limit: string;
  after?: string;
  json?: boolean;
}

interface ActOptions extends FilterOptions {
  all?: boolean;
  yes?: boolean;
  progress?: boolean;
}

/**
 * A time as an operator writes it: a duration meaning that long ago (`2h`, `7d`), or an ISO 8601
 * time read as the admin API reads it (a time of day without a zone is UTC, whatever the shell's
 * zone; a day the calendar does not have is refused, not moved).
 */
function readTime(text: string, now: Date): IsoTimeReading {
  const trimmed = text.trim();
  const ago = parseDuration(trimmed);
  if (ago !== undefined && !/^\d+$/.test(trimmed)) return { ok: true, at: new Date(now.getTime() - ago) };
  return readIsoTime(trimmed);
}

/** The time `text` names (see readTime); undefined when it names none. */
export function parseTime(text: string, now: Date): Date | undefined {
  const read = readTime(text, now);
  return read.ok ? read.at : undefined;
}

/** The event type URI for a short name or URI; a URI the catalog no longer knows is kept. */
function eventTypeUri(name: string): string {
  const known = findEventType(name);
  if (known) return known.uri;
  if (/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(name)) return name;
  try {
    eventCatalog.get(name);
  } catch (err) {
    throw new CliExit(EXIT.invalid, `--event-type: ${(err as Error).message}`);
  }
  return name;
}

function timeOption(flag: string, text: string | undefined, now: Date): Date | undefined {
  if (text === undefined) return undefined;
  const read = readTime(text, now);
  if (read.ok) return read.at;
  // A day that does not exist is a typo to fix: read as the days after it, a purge would take more.
  if (read.problem === 'calendar') {
    throw new CliExit(EXIT.invalid, `${flag} "${text}" names a day the calendar does not have`);
  }
  throw new CliExit(
    EXIT.invalid,
    `${flag} "${text}" is neither an ISO 8601 time (2026-01-31T09:00:00Z) nor a duration ago (2h, 7d)`,
  );
}

function idArguments(values: string[]): number[] {
  return values.map((value) => {
    if (!/^[1-9]\d*$/.test(value)) throw new CliExit(EXIT.invalid, `"${value}" is not a dead letter id`);
    return Number(value);
  });
}

/** The store filter the options and id arguments describe. */
export function filterFrom(options: FilterOptions, ids: number[], now: Date): DeadLetterFilter {
  const since = timeOption('--since', options.since, now);
  const until = timeOption('--until', options.until, now);
  if (since && until && since >= until) throw new CliExit(EXIT.invalid, '--since must be before --until');
  return {
    ...(ids.length > 0 ? { ids } : {}),
    ...(options.destination !== undefined ? { destinationId: options.destination } : {}),
    ...(options.eventType !== undefined ? { eventType: eventTypeUri(options.eventType) } : {}),
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
  };
}

function isNarrowed(filter: DeadLetterFilter): boolean {
  return Object.keys(filter).length > 0;
}

async function withStore<T>(configFile: string | undefined, io: CliIo, work: (s: Store) => Promise<T>) {
  const store = await openBridgeStore(await loadBridgeConfig(configFile, io));
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

function shortType(uri: string): string {
  return findEventType(uri)?.shortName ?? uri;
}

function errorSummary(letter: DeadLetter): string {
  const e = letter.lastError;
  if (!e) return '-';
  return `${e.status !== undefined ? `HTTP ${e.status} ` : ''}${e.code}: ${e.message}`;
}

function letterJson(letter: DeadLetter, withSet: boolean) {
  return {
    id: letter.id,
    destination: letter.destinationId,
    jti: letter.jti,
    event_id: letter.eventId,
    event_type: letter.eventType,
    instance: letter.instanceId,
    source_record_id: letter.sourceRecordId,
    subject: letter.subject,
    attempts: letter.attempts,
    last_error: letter.lastError ?? null,
    enqueued_at: letter.enqueuedAt.toISOString(),
    dead_at: letter.deadAt.toISOString(),
    ...(withSet ? { set: letter.setJwt ?? null, set_claims: setClaims(letter.setJwt) ?? null } : {}),
  };
}

function setClaims(jwt: string | undefined): unknown {
  if (jwt === undefined) return undefined;
  try {
    return decodeCompact(jwt).payload;
  } catch {
    return undefined;
  }
}

/** Column-aligned rows; the last column is never padded. */
export function table(rows: string[][]): string[] {
  const widths = (rows[0] ?? []).map((_, col) => Math.max(...rows.map((r) => (r[col] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, col) => (col < r.length - 1 ? cell.padEnd(widths[col] ?? 0) : cell))
      .join('  ')
      .trimEnd(),
  );
}

function clip(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** `[#####-----] 250/500 (50%)`. */
export function progressBar(done: number, total: number, width = 30): string {
  const share = total === 0 ? 1 : Math.min(1, done / total);
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${done}/${total} (${Math.floor(share * 100)}%)`;
}

/**
 * Progress on standard error. On a terminal the bar is redrawn in place (cursor up, clear
 * line); with --progress into a file or pipe each step is its own line.
 */
function progressReporter(io: CliIo, tty: boolean) {
  let drawn = false;
  return (done: number, total: number) => {
    const bar = `replaying ${progressBar(done, total)}`;
    io.err(tty && drawn ? `\x1b[1A\x1b[2K${bar}` : bar);
    drawn = true;
  };
}

function withFilterOptions(command: Command): Command {
  return command
    .option(
      '-c, --config <file>',
      'config file of the bridge (default: env SSF_BRIDGE_CONFIG, else quickstart)',
    )
    .option('--destination <id>', 'only letters for this destination (outbound instance id or stream:<id>)')
    .option('--event-type <type>', 'only this event type (URI or short name, e.g. caep.session-revoked)')
    .option('--since <time>', 'dead-lettered at or after (ISO 8601, or a duration ago such as 24h)')
    .option('--until <time>', 'dead-lettered before (ISO 8601, or a duration ago)');
}

/** Letters a replay or purge acts on: named ids, a filter, or --all; never nothing said. */
function selection(options: ActOptions, idArgs: string[], verb: string): DeadLetterFilter {
  const filter = filterFrom(options, idArguments(idArgs), new Date());
  if (!isNarrowed(filter) && !options.all) {
    throw new CliExit(
      EXIT.invalid,
      `say which dead letters to ${verb}: ids, a filter (--destination, --event-type, --since, --until) or --all`,
    );
  }
  if (isNarrowed(filter) && options.all)
    throw new CliExit(EXIT.invalid, '--all cannot be combined with ids or filters');
  return filter;
}

/**
 * Where `--after` starts: the cursor a page ends with (the admin API's, opaque). Letters page in
 * the order they died, not by id, so that one dying while an operator pages is on a later page.
 */
function afterCursor(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return readDeadLetterCursor(text.trim());
  } catch (err) {
    if (!(err instanceof AdminQueryError)) throw err;
    throw new CliExit(
      EXIT.invalid,
      `--after "${clip(text, 40)}" is not a cursor dlq list printed: give the one at the end of the ` +
        'last page (letter ids no longer mark a page), or start again without it',
    );
  }
}

async function listLetters(options: ListOptions, io: CliIo): Promise<void> {
  const limit = Number(options.limit);
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE) {
    throw new CliExit(EXIT.invalid, `--limit must be a whole number from 1 to ${MAX_PAGE}`);
  }
  const afterDeadSeq = afterCursor(options.after);
  const filter = filterFrom(options, [], new Date());
  const fetched = await withStore(options.config, io, (store) =>
    store.deadLetters.list(filter, {
      limit: limit + 1,
      ...(afterDeadSeq === undefined ? {} : { afterDeadSeq }),
    }),
  );
  const letters = fetched.slice(0, limit);
  const last = letters.at(-1);
  const next = fetched.length > limit && last !== undefined ? deadLetterCursor(last.deadSeq) : null;
  if (options.json) {
    io.out(JSON.stringify({ dead_letters: letters.map((l) => letterJson(l, false)), next_after: next }));
    return;
  }
  if (letters.length === 0) {
    io.out(afterDeadSeq === undefined ? 'no dead letters' : 'no more dead letters');
    return;
  }
  const rows = [
    ['ID', 'DEAD AT', 'DESTINATION', 'EVENT TYPE', 'ATTEMPTS', 'LAST ERROR'],
    ...letters.map((l) => [
      String(l.id),
      l.deadAt.toISOString(),
      l.destinationId,
      shortType(l.eventType),
      String(l.attempts),
      clip(errorSummary(l), 100),
    ]),
  ];
  for (const line of table(rows)) io.out(line);
  if (next !== null) io.err(`more letters follow: add --after ${next} for the next page`);
}

async function showLetter(idArg: string, options: { config?: string; json?: boolean }, io: CliIo) {
  const [id] = idArguments([idArg]);
  const letter = await withStore(options.config, io, (store) => store.deadLetters.get(id as number));
  if (letter === undefined) throw new CliExit(EXIT.failure, `no dead letter with id ${id}`);
  if (options.json) {
    io.out(JSON.stringify(letterJson(letter, true), null, 2));
    return;
  }
  const e = letter.lastError;
  const fields: string[][] = [
    ['destination', letter.destinationId],
    ['jti', letter.jti],
    ['event', `${letter.eventId} (${shortType(letter.eventType)})`],
    ['source', `instance ${letter.instanceId}, record ${letter.sourceRecordId}`],
    ['subject', JSON.stringify(letter.subject)],
    ['attempts', String(letter.attempts)],
    ['queued at', letter.enqueuedAt.toISOString()],
    ['dead at', letter.deadAt.toISOString()],
    ['last error', e ? `${e.class} ${errorSummary(letter)}` : '-'],
  ];
  io.out(`dead letter ${letter.id}`);
  for (const line of table(fields)) io.out(`  ${line}`);
  const claims = setClaims(letter.setJwt);
  if (claims !== undefined) io.out(`SET claims:\n${JSON.stringify(claims, null, 2)}`);
  if (letter.setJwt !== undefined) io.out(`SET:\n${letter.setJwt}`);
}

/** The admin API's audit target for the same selection: a destination, the ids, or everything. */
function auditTarget(filter: DeadLetterFilter): string {
  return filter.destinationId ?? (filter.ids ? `ids ${filter.ids.join(',')}` : 'all destinations');
}

/**
 * Runs a replay or purge and records it in the audit log as the admin API records the same action
 * (`dead_letters.replay|purge`, target, filter, count as `result`), with actor `cli` as
 * `checkpoints reset` does; a failure is recorded with the letters already done. An audit
 * entry that cannot be written is reported on stderr and changes nothing else.
 */
export async function audited(
  store: Store,
  io: CliIo,
  action: 'replay' | 'purge',
  filter: DeadLetterFilter,
  work: (done: { count: number }) => Promise<void>,
): Promise<number> {
  const entry = {
    at: new Date(),
    actor: 'cli',
    role: 'write',
    action: `dead_letters.${action}`,
    target: auditTarget(filter),
  };
  const done = { count: 0 };
  // The failure is what the operator must see, and done is done (running it again would replay
  // twice): an entry that cannot be written is reported, and changes nothing else.
  const record = (detail: Record<string, unknown>) =>
    store.operator
      .recordAudit({ ...entry, detail: { filter, ...detail, result: done.count } })
      .catch((auditErr: Error) =>
        io.err(`could not record the ${action} in the audit log: ${auditErr.message}`),
      );
  try {
    await work(done);
  } catch (err) {
    await record({ outcome: 'failed', error: (err as Error).message });
    throw err;
  }
  await record({ outcome: 'ok' });
  return done.count;
}

async function replayLetters(idArgs: string[], options: ActOptions, io: CliIo): Promise<void> {
  const filter = selection(options, idArgs, 'replay');
  await withStore(options.config, io, async (store) => {
    const total = await store.deadLetters.count(filter);
    const tty = process.stderr.isTTY === true;
    const report =
      options.progress || (tty && total > REPLAY_BATCH) ? progressReporter(io, tty) : () => undefined;
    const replayed = await audited(store, io, 'replay', filter, async (done) => {
      let afterDeadSeq = 0;
      // Page in the order the letters died and replay each page by its ids. A letter replayed
      // here that dies again meanwhile comes back after the cursor: it keeps its id, so it is
      // passed over rather than replayed twice in one run.
      const replayedIds = new Set<number>();
      for (;;) {
        const page = await store.deadLetters.list(filter, { afterDeadSeq, limit: REPLAY_BATCH });
        if (page.length === 0) break;
        afterDeadSeq = page.at(-1)?.deadSeq ?? afterDeadSeq;
        const ids = page.map((l) => l.id).filter((id) => !replayedIds.has(id));
        if (ids.length === 0) continue;
        done.count += await store.deadLetters.replay({ ...filter, ids }, new Date());
        for (const id of ids) replayedIds.add(id);
        report(done.count, Math.max(total, done.count));
      }
    });
    io.out(
      replayed === 0
        ? 'no dead letters match'
        : `replayed ${replayed} dead letter${replayed === 1 ? '' : 's'}: back in the outbox with their original jti`,
    );
  });
}

async function purgeLetters(idArgs: string[], options: ActOptions, io: CliIo): Promise<void> {
  const filter = selection(options, idArgs, 'purge');
  await withStore(options.config, io, async (store) => {
    if (!options.yes) {
      const count = await store.deadLetters.count(filter);
      throw new CliExit(
        EXIT.invalid,
        `${count} dead letter${count === 1 ? '' : 's'} match; purging deletes them for good: add --yes to confirm`,
      );
    }
    const purged = await audited(store, io, 'purge', filter, async (done) => {
      done.count = await store.deadLetters.purge(filter);
    });
    io.out(`purged ${purged} dead letter${purged === 1 ? '' : 's'}`);
  });
}

/** `ssf-bridge dlq list|show|replay|purge`: the deliveries that ran out of retries. */
export function registerDlq(program: Command, io: CliIo): void {
  const dlq = program
    .command('dlq')
    .description(
      'Inspect, replay or purge dead letters (deliveries that were refused or ran out of retries)',
    );

  withFilterOptions(dlq.command('list'))
    .description('List dead letters in the order they died, a page at a time')
    .option('--limit <n>', `letters per page (1-${MAX_PAGE})`, String(DEFAULT_PAGE))
    .option('--after <cursor>', 'the page after the one that printed this cursor at its end')
    .option('--json', 'print JSON: {"dead_letters": [...], "next_after": cursor | null}')
    .action((options: ListOptions) => listLetters(options, io));

  dlq
    .command('show')
    .description('Show one dead letter with its last error and its SET')
    .argument('<id>', 'dead letter id (from dlq list)')
    .option(
      '-c, --config <file>',
      'config file of the bridge (default: env SSF_BRIDGE_CONFIG, else quickstart)',
    )
    .option('--json', 'print JSON')
    .action((id: string, options: { config?: string; json?: boolean }) => showLetter(id, options, io));

  withFilterOptions(dlq.command('replay'))
    .description('Put dead letters back in the outbox with their original jti and a fresh retry budget')
    .argument('[ids...]', 'dead letter ids (combined with any filter)')
    .option('--all', 'replay every dead letter')
    .option('--progress', 'show progress even when standard error is not a terminal')
    .action((ids: string[], options: ActOptions) => replayLetters(ids, options, io));

  withFilterOptions(dlq.command('purge'))
    .description('Delete dead letters for good')
    .argument('[ids...]', 'dead letter ids (combined with any filter)')
    .option('--all', 'purge every dead letter')
    .option('--yes', 'confirm the deletion')
    .action((ids: string[], options: ActOptions) => purgeLetters(ids, options, io));
}
