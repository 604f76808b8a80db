import {
  PermanentError,
  RetryableError,
  Secret,
  pathSegment,
  sameOriginLink,
  type EventDraft,
  type HttpAuth,
  type HttpClient,
  type InboundConnector,
  type InboundContext,
  type ScheduledTask,
} from '../../core/plugin-api/index.ts';
import {
  salvageState,
  stateSchema,
  type LogQuery,
  type OktaSystemLogConfig,
  type OktaSystemLogState,
} from './config.ts';
import { advance, emittedBefore, logsUrl, placeOf, queryOfLink, sameQuery, type Position } from './cursor.ts';
import { compareProfile, forgetUser, oktaUserSchema } from './identifiers.ts';
import { mapLogEvent, mappingOptions } from './mapping.ts';

export const POLL_TASK = 'system-log';
const CHECKPOINT = 'cursor';

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** The `rel="next"` target of a Link header, if any. */
export function nextLink(header: string | undefined): string | undefined {
  for (const part of (header ?? '').split(',')) {
    const match = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(part);
    if (match) return match[1];
  }
  return undefined;
}

function httpAuth(config: OktaSystemLogConfig): HttpAuth {
  if (config.auth.type === 'ssws')
    return { type: 'header', name: 'authorization', value: new Secret(`SSWS ${config.auth.token.reveal()}`) };
  return {
    type: 'oauth2_private_key_jwt',
    tokenUrl: new URL('/oauth2/v1/token', config.org_url).href,
    clientId: config.auth.client_id,
    privateKey: config.auth.private_key,
    ...(config.auth.key_id ? { keyId: config.auth.key_id } : {}),
    // Reading users for identifier_changes needs okta.users.read; asked for only then, as Okta
    // refuses a token request for a scope the app was not granted.
    scope: config.identifier_changes ? 'okta.logs.read okta.users.read' : 'okta.logs.read',
  };
}

/** What identifier_changes carries from page to page: users' identifiers, and updates awaiting a read. */
type Memory = Pick<OktaSystemLogState, 'users' | 'awaiting'>;

/** The part of the checkpoint that says where reading resumes. */
type Cursor = Pick<OktaSystemLogState, 'next' | 'query' | 'since' | 'seen'>;

/** Where a run starts reading; `unsaved` when that is not in the checkpoint yet. */
interface Start {
  url: string;
  query: LogQuery;
  position: Position | undefined;
  unsaved?: boolean;
}

/** A page read up to `count` records: their events, and the position after the last of them. */
interface PageRead {
  events: EventDraft[];
  count: number;
  position: Position | undefined;
}

/** A field of a record as it is, shortened, for a log line about a malformed record. */
function fieldOf(record: unknown, name: string): unknown {
  const value =
    typeof record === 'object' && record !== null ? (record as Record<string, unknown>)[name] : undefined;
  return typeof value === 'string' ? value.slice(0, 64) : (value ?? null);
}

function nonEmpty<T extends object>(record: T | undefined): record is T {
  return record !== undefined && Object.keys(record).length > 0;
}

function positionFields(position: Position): Cursor {
  return { since: position.since, ...(position.seen.length > 0 ? { seen: position.seen } : {}) };
}

/**
 * Polls `/api/v1/logs` in ascending order and follows Okta's `next` links, which keep working
 * as a polling cursor once the newest event is reached. Each page's events and the cursor after
 * it are committed together, so a failed emit reads the same page again. The cursor also carries
 * the position of the newest event emitted (see cursor.ts): a page left half-read, or a query
 * changed since, resumes from there.
 */
export function createOktaSystemLog(ctx: InboundContext, config: OktaSystemLogConfig): InboundConnector {
  const origin = new URL(config.org_url).origin;
  let client: HttpClient | undefined;
  let task: ScheduledTask | undefined;
  /** Epoch ms before which nothing is read from Okta: the rate-limit window is spent. */
  let notBefore = 0;
  /**
   * Where reading starts while no cursor is saved. Fixed by the first run: runs that commit
   * nothing (a 429, a failed emit) must not move it forward, losing what lies between.
   */
  let lookbackStart: string | undefined;
  const read = ctx.metrics.counter('okta_system_log_events_read_total', 'System Log events read', [
    'outcome',
  ]);
  const limited = ctx.metrics.counter(
    'okta_system_log_rate_limited_total',
    'Runs paused because the rate-limit window was spent or Okta answered 429',
  );
  const lookups = ctx.metrics.counter(
    'okta_system_log_user_reads_total',
    'Users read after a profile update (identifier_changes), by outcome',
    ['outcome'],
  );
  const options = mappingOptions(config);
  const configured: LogQuery = {
    limit: config.page_size,
    ...(config.filter ? { filter: config.filter } : {}),
  };

  const windowSpent = (): boolean => ctx.clock.now().getTime() < notBefore;

  function memoryOf(state: OktaSystemLogState): Memory {
    if (!config.identifier_changes) return {};
    return {
      ...(nonEmpty(state.users) ? { users: state.users } : {}),
      ...(nonEmpty(state.awaiting) ? { awaiting: state.awaiting } : {}),
    };
  }

  /**
   * Where a run starts: Okta's saved cursor while it asks what the config asks; otherwise the
   * saved position (a query changed since, or a page left half-read); the first run, or a cursor
   * saved for another org, from initial_lookback.
   */
  function startingPoint(state: OktaSystemLogState): Start {
    const position = state.since ? { since: state.since, seen: state.seen ?? [] } : undefined;
    if (state.next && originOf(state.next) !== origin) {
      // A cursor saved before org_url changed: following it would send this org's credentials
      // to the other one. Start over here instead, from initial_lookback.
      ctx.logger.warn(
        { cursorOrigin: originOf(state.next) ?? null, org: origin },
        'the saved System Log cursor is not on org_url; reading from initial_lookback instead',
      );
      return fromLookback();
    }
    if (state.next) {
      const query = state.query ?? queryOfLink(state.next, config.page_size);
      // A cursor saved by an earlier version has no position to start a new query from.
      if (sameQuery(query, configured) || position === undefined) return { url: state.next, query, position };
      ctx.logger.info(
        { saved: query, configured },
        'page_size or filter changed since the System Log cursor was saved; reading on from the last event read',
      );
      return fromPosition(position);
    }
    return position ? fromPosition(position) : fromLookback();
  }

  function fromPosition(position: Position): Start {
    return { url: logsUrl(origin, position.since, configured), query: configured, position };
  }

  function fromLookback(): Start {
    lookbackStart ??= new Date(ctx.clock.now().getTime() - config.initial_lookback).toISOString();
    return { ...fromPosition({ since: lookbackStart, seen: [] }), unsaved: true };
  }

  function pauseUntilReset(headers: Record<string, string>, why: string): void {
    const reset = Number(headers['x-rate-limit-reset']);
    const now = ctx.clock.now().getTime();
    notBefore = Number.isFinite(reset) && reset * 1000 > now ? reset * 1000 : now + config.poll_interval;
    limited.inc();
    ctx.logger.warn({ resumeAt: new Date(notBefore).toISOString() }, `System Log reads paused: ${why}`);
  }

  /**
   * Whether an answer leaves rate_limit_reserve requests or fewer in its window; if so, reads
   * pause until the reset, leaving those to other clients of the org.
   */
  function reserveReached(headers: Record<string, string>): boolean {
    const remaining = Number(headers['x-rate-limit-remaining']);
    if (!Number.isFinite(remaining) || remaining > config.rate_limit_reserve) return false;
    pauseUntilReset(headers, `${remaining} requests left in the rate-limit window`);
    return true;
  }

  /**
   * The saved checkpoint. One that does not parse is never swapped for a start from
   * initial_lookback, which would skip everything Okta logged between the lost cursor and then:
   * what still parses is kept and reading goes on from it, reported; without a place to resume,
   * the poll stops until the checkpoint is reset. `salvaged` says the first case.
   */
  function readState(raw: unknown): { state: OktaSystemLogState; salvaged: boolean } {
    const stored = stateSchema.safeParse(raw ?? {});
    if (stored.success) return { state: stored.data, salvaged: false };
    const { state, dropped } = salvageState(raw);
    const what =
      dropped.slice(0, 5).join(', ') + (dropped.length > 5 ? ` and ${dropped.length - 5} more` : '');
    if (state.next === undefined && state.since === undefined) {
      const message = `the saved System Log cursor is not readable (${what}) and holds no point to read on from; reading from initial_lookback would skip what Okta logged since it was saved. Start the instance over with \`ssf-bridge checkpoints reset ${ctx.instanceId}\` to read from initial_lookback`;
      ctx.logger.error({ dropped }, message);
      ctx.status.set('permanent_error', message);
      throw new PermanentError(message, { code: 'SSF_ERR_OKTA_SYSTEM_LOG_STATE' });
    }
    const from = state.next !== undefined ? 'its next link' : `its last event read (${state.since})`;
    const message = `the saved System Log cursor was partly unreadable (${what}, left out); reading on from ${from}`;
    ctx.logger.error({ dropped }, message);
    ctx.status.set('recoverable_error', message);
    return { state, salvaged: true };
  }

  async function commit(events: EventDraft[], cursor: Cursor, memory: Memory): Promise<void> {
    await ctx.emit(events, { checkpoint: { name: CHECKPOINT, value: { ...cursor, ...memoryOf(memory) } } });
  }

  /**
   * Where reading resumes after a page: Okta's next link once the page was read whole; the
   * position after the last record read when it was not; the page itself when even that is
   * unknown (a cursor of an earlier version, and no event read).
   */
  function cursorAfter(progress: PageRead, next: string | undefined, url: string, query: LogQuery): Cursor {
    const position = progress.position === undefined ? {} : positionFields(progress.position);
    if (next !== undefined) return { next, query, ...position };
    return progress.position === undefined ? { next: url, query } : position;
  }

  async function run(signal: AbortSignal): Promise<void> {
    if (windowSpent()) return;
    client ??= ctx.http.create({ auth: httpAuth(config), headers: { accept: 'application/json' } });
    const { state, salvaged } = readState(await ctx.checkpoints.get(CHECKPOINT));
    let memory = memoryOf(state);
    const start = startingPoint(state);
    let { url, position } = start;
    for (let page = 0; page < config.max_pages_per_run && !signal.aborted; page += 1) {
      const response = await client.get<unknown>(url, { signal, acceptStatuses: [429] });
      if (response.status === 429) {
        pauseUntilReset(response.headers, 'Okta answered 429');
        // A first run Okta turns away keeps its starting point across a restart too.
        if (page === 0 && start.unsaved && position) await commit([], positionFields(position), memory);
        return;
      }
      if (!Array.isArray(response.data)) {
        throw new RetryableError('the System Log answered with something other than a list of events', {
          code: 'SSF_ERR_OKTA_SYSTEM_LOG_BODY',
        });
      }
      const records: unknown[] = response.data;
      const link = nextLink(response.headers.link);
      const next = link === undefined ? undefined : orgLink(link);
      // A page is read on a copy of the memory: one that fails leaves the memory as it was.
      const working = structuredClone(memory);
      const progress = await readPage(records, working, position, signal);
      const whole = progress.count === records.length;
      await commit(
        progress.events,
        cursorAfter(progress, whole ? next : undefined, url, start.query),
        working,
      );
      lookbackStart = undefined; // saved now
      memory = working;
      position = progress.position;
      // The run that salvaged a cursor leaves its report up until the next run reads cleanly.
      if (!salvaged) ctx.status.success();
      // A user read spent the window (the rest of the page waits for the reset), or this answer did.
      if (windowSpent() || reserveReached(response.headers)) return;
      // A short page is the newest one: the next link is where the next run continues. Short
      // against the limit the link asks for, which is page_size only if the link was built with it.
      if (!whole || next === undefined || records.length < start.query.limit) return;
      url = next;
    }
  }

  /**
   * The next link, once it is known to point at the org. The cursor carries the API token to wherever it
   * points: only ever to the org itself. Anything else (another origin, a protocol-relative
   * `//host/…`, no URL at all) stops the poll for good, as a retry would get the same link.
   */
  function orgLink(link: string): string {
    sameOriginLink(link, origin, {
      code: 'SSF_ERR_OKTA_SYSTEM_LOG_LINK',
      message: (foreign) =>
        foreign === undefined
          ? `Okta sent a next link that is not a URL (${JSON.stringify(link)}); not followed`
          : `Okta sent a next link to another origin (${foreign}); not followed`,
    });
    return link;
  }

  /**
   * Reads a page's records in order until the rate-limit window is spent, skipping those emitted
   * before. Returns the events of the `count` records read, and the position after them.
   */
  async function readPage(
    records: unknown[],
    memory: Memory,
    position: Position | undefined,
    signal: AbortSignal,
  ): Promise<PageRead> {
    const events: EventDraft[] = [];
    // Profile updates the last run stopped at: their users are read before the events after them.
    await readAwaitedUsers(memory, events, signal);
    let count = 0;
    for (const record of records) {
      if (windowSpent()) break;
      if (placeOf(record) === undefined) {
        // No uuid or no ISO 8601 published time: nothing to skip it by on a re-read, nor a
        // position to save (advance leaves it out), so it is counted and left.
        read.inc({ outcome: 'malformed' });
        ctx.logger.warn(
          { uuid: fieldOf(record, 'uuid'), published: fieldOf(record, 'published') },
          'skipped a System Log event without a uuid or an ISO 8601 published time',
        );
      } else if (!emittedBefore(position, record)) {
        events.push(...mapRecord(record, memory));
        // A profile update that may have changed a login or email: read the user now, so the
        // events after it in the log compare with what it changed to.
        await readAwaitedUsers(memory, events, signal);
      }
      position = advance(position, record);
      count += 1;
    }
    return { events, count, position };
  }

  function mapRecord(record: unknown, memory: Memory): EventDraft[] {
    try {
      const mapped = mapLogEvent(record, options, memory);
      read.inc({ outcome: mapped.ignored === undefined ? 'mapped' : 'ignored' });
      return mapped.events;
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      read.inc({ outcome: 'malformed' });
      ctx.logger.warn({ err: err.message }, 'skipped a malformed System Log event');
      return [];
    }
  }

  /** Reads the users of the awaiting profile updates while the window allows; the rest stay awaiting. */
  async function readAwaitedUsers(memory: Memory, events: EventDraft[], signal: AbortSignal): Promise<void> {
    for (const id of Object.keys(memory.awaiting ?? {})) {
      if (windowSpent()) return;
      events.push(...(await readUser(id, memory, signal)));
    }
  }

  /** Reads a user whose profile changed and compares it with what was remembered. */
  async function readUser(id: string, memory: Memory, signal: AbortSignal): Promise<EventDraft[]> {
    const url = new URL(`/api/v1/users/${pathSegment(id)}`, origin).href;
    const response = await client!.get<unknown>(url, { signal, acceptStatuses: [404, 429] });
    if (response.status === 429) {
      // The update stays awaiting, saved with the events before it; it is read after the reset.
      pauseUntilReset(response.headers, 'Okta answered 429 to a user read');
      return [];
    }
    reserveReached(response.headers);
    if (response.status === 404) {
      // Deleted since: there is no current identifier to name (the deletion is its own event).
      lookups.inc({ outcome: 'gone' });
      forgetUser(memory, id);
      return [];
    }
    if (!oktaUserSchema.safeParse(response.data).success) {
      lookups.inc({ outcome: 'malformed' });
      ctx.logger.warn(
        { user: id },
        'Okta answered a user read without a profile.login; its profile update is not compared',
      );
      if (memory.awaiting) delete memory.awaiting[id];
      return [];
    }
    const compared = compareProfile(response.data, memory, ctx.clock.now(), config.identifier_memory);
    if (memory.awaiting) delete memory.awaiting[id];
    lookups.inc({ outcome: compared.events.length > 0 ? 'changed' : 'unchanged' });
    if (compared.ignored !== undefined) ctx.logger.debug({ user: id }, compared.ignored);
    return compared.events;
  }

  return {
    async start() {
      task = ctx.scheduler.schedule(POLL_TASK, { everyMs: config.poll_interval, runOnStart: true }, run);
    },
    async stop() {
      task?.stop();
      task = undefined;
    },
  };
}
