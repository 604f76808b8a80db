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
import { stateSchema, type OktaSystemLogConfig, type OktaSystemLogState } from './config.ts';
import { compareProfile, oktaUserSchema } from './identifiers.ts';
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

/**
 * Polls `/api/v1/logs` in ascending order and follows Okta's `next` links, which keep working
 * as a polling cursor once the newest event is reached. Each page's events and the cursor after
 * it are committed together, so a failed emit reads the same page again.
 */
export function createOktaSystemLog(ctx: InboundContext, config: OktaSystemLogConfig): InboundConnector {
  const origin = new URL(config.org_url).origin;
  let client: HttpClient | undefined;
  let task: ScheduledTask | undefined;
  /** Epoch ms before which runs do nothing: Okta's rate-limit window is spent. */
  let notBefore = 0;
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
  /** A page given up on: Okta answered 429 while reading a user; the page is read again later. */
  class Paused extends Error {}

  function firstUrl(state: OktaSystemLogState): string {
    if (state.next) {
      if (originOf(state.next) === origin) return state.next;
      // A cursor saved before org_url changed: following it would send this org's credentials
      // to the other one. Start over here instead, from initial_lookback.
      ctx.logger.warn(
        { cursorOrigin: originOf(state.next) ?? null, org: origin },
        'the saved System Log cursor is not on org_url; reading from initial_lookback instead',
      );
    }
    const since = state.since ?? new Date(ctx.clock.now().getTime() - config.initial_lookback).toISOString();
    const url = new URL('/api/v1/logs', origin);
    url.searchParams.set('since', since);
    url.searchParams.set('sortOrder', 'ASCENDING');
    url.searchParams.set('limit', String(config.page_size));
    if (config.filter) url.searchParams.set('filter', config.filter);
    return url.href;
  }

  function pauseUntilReset(headers: Record<string, string>, why: string): void {
    const reset = Number(headers['x-rate-limit-reset']);
    const now = ctx.clock.now().getTime();
    notBefore = Number.isFinite(reset) && reset * 1000 > now ? reset * 1000 : now + config.poll_interval;
    limited.inc();
    ctx.logger.warn({ resumeAt: new Date(notBefore).toISOString() }, `System Log reads paused: ${why}`);
  }

  async function run(signal: AbortSignal): Promise<void> {
    if (ctx.clock.now().getTime() < notBefore) return;
    client ??= ctx.http.create({ auth: httpAuth(config), headers: { accept: 'application/json' } });
    const stored = stateSchema.safeParse((await ctx.checkpoints.get(CHECKPOINT)) ?? {});
    const state: OktaSystemLogState = stored.success ? stored.data : {};
    let url = firstUrl(state);
    // What the pages read in this run have taught; saved with each page's cursor.
    const memory: OktaSystemLogState = config.identifier_changes && state.users ? { users: state.users } : {};
    for (let page = 0; page < config.max_pages_per_run && !signal.aborted; page += 1) {
      const response = await client.get<unknown>(url, { signal, acceptStatuses: [429] });
      if (response.status === 429) {
        pauseUntilReset(response.headers, 'Okta answered 429');
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
      // A page is mapped on a copy of the memory: given up on, it leaves the memory as it was.
      const working: OktaSystemLogState = structuredClone(memory);
      let events: EventDraft[];
      try {
        events = await mapPage(records, working, signal);
      } catch (err) {
        if (err instanceof Paused) return;
        throw err;
      }
      if (next !== undefined || events.length > 0) {
        const users = working.users && Object.keys(working.users).length > 0 ? { users: working.users } : {};
        await ctx.emit(
          events,
          next === undefined ? undefined : { checkpoint: { name: CHECKPOINT, value: { next, ...users } } },
        );
      }
      memory.users = working.users;
      ctx.status.success();
      const remaining = Number(response.headers['x-rate-limit-remaining']);
      if (Number.isFinite(remaining) && remaining <= config.rate_limit_reserve) {
        pauseUntilReset(response.headers, `${remaining} requests left in the rate-limit window`);
        return;
      }
      // A short page is the newest one: the next link is where the next run continues.
      if (next === undefined || records.length < config.page_size) return;
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

  async function mapPage(
    records: unknown[],
    state: OktaSystemLogState,
    signal: AbortSignal,
  ): Promise<EventDraft[]> {
    const events: EventDraft[] = [];
    for (const record of records) {
      try {
        const mapped = mapLogEvent(record, options, state);
        read.inc({ outcome: mapped.ignored === undefined ? 'mapped' : 'ignored' });
        events.push(...mapped.events);
      } catch (err) {
        if (!(err instanceof PermanentError)) throw err;
        read.inc({ outcome: 'malformed' });
        ctx.logger.warn({ err: err.message }, 'skipped a malformed System Log event');
      }
      // A profile update that may have changed a login or email: read the user now, so the
      // events after it in the log compare with what it changed to.
      for (const id of Object.keys(state.awaiting ?? {})) events.push(...(await readUser(id, state, signal)));
    }
    return events;
  }

  /** Reads a user whose profile changed and compares it with what was remembered. */
  async function readUser(id: string, state: OktaSystemLogState, signal: AbortSignal): Promise<EventDraft[]> {
    const url = new URL(`/api/v1/users/${pathSegment(id)}`, origin).href;
    const response = await client!.get<unknown>(url, { signal, acceptStatuses: [404, 429] });
    if (response.status === 429) {
      pauseUntilReset(response.headers, 'Okta answered 429 to a user read');
      throw new Paused();
    }
    if (response.status === 404) {
      // Deleted since: there is no current identifier to name (the deletion is its own event).
      lookups.inc({ outcome: 'gone' });
      if (state.awaiting) delete state.awaiting[id];
      if (state.users) delete state.users[id];
      return [];
    }
    if (!oktaUserSchema.safeParse(response.data).success) {
      lookups.inc({ outcome: 'malformed' });
      ctx.logger.warn(
        { user: id },
        'Okta answered a user read without a profile.login; its profile update is not compared',
      );
      if (state.awaiting) delete state.awaiting[id];
      return [];
    }
    const compared = compareProfile(response.data, state, ctx.clock.now(), config.identifier_memory);
    if (state.awaiting) delete state.awaiting[id];
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
