/**
 * The admin API: `/admin/...` on the bridge's server, for operators and the web console.
 * Bearer admin tokens only (never receiver or ingest tokens); `read` sees, `write` also acts.
 * Every list pages (`limit`, `cursor` → `next_cursor`) and filters; every write is audited.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DeliveryEngine } from '../delivery/index.ts';
import type { Clock, Logger } from '../plugin-api/types.ts';
import type { StatusBoard } from '../runtime/status.ts';
import { issuedAt, type FutureEventsPolicy } from '../runtime/ssf-adapters.ts';
import { nearest } from '../config/suggest.ts';
import { SetCodec, decodeCompact, findEventType, listEventTypes, type KeyStore } from '../ssf/index.ts';
import type {
  DeadLetter,
  DeadLetterFilter,
  DeliveryRecord,
  DeliveryState,
  Store,
  StoredEvent,
  StreamStatus,
} from '../storage/types.ts';
import { streamDestinationId } from '../storage/types.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import { scrubSecrets } from '../plugin-api/secret.ts';
import type { Transmitter } from '../transmitter/index.ts';
import { adminAuthenticator, bearerToken, mayWrite, type AdminPrincipal } from './auth.ts';
import type { AdminConfig } from './config.ts';
import { deviceCompliance } from './devices.ts';
import {
  AdminQueryError,
  deadLetterCursor,
  decodeCursor,
  encodeCursor,
  isEventPosition,
  isRowId,
  pathRowId,
  refuseUnstorable,
  keysetPage,
  oneOf,
  optionalText,
  pageOf,
  parseLimit,
  parseTimeRange,
  readDeadLetterCursor,
  singleValued,
} from './paging.ts';
import { subjectTimeline, timelineTerms } from './timeline.ts';

export interface AdminDeps {
  config: AdminConfig;
  store: Store;
  keys: KeyStore;
  transmitter: Transmitter;
  status: StatusBoard;
  metrics: MetricsRegistry;
  clock: Clock;
  logger: Logger;
  /** Configured connector instances. */
  instances: Array<{ id: string; connector: string; kind: string; enabled: boolean }>;
  /** Static subject aliases of the config (`subjects.aliases`). */
  subjectAliases: Array<{ from: unknown; to: unknown }>;
  issuer(): string;
  /** The delivery engine once it runs (it starts after the server listens). */
  engine(): DeliveryEngine | undefined;
  /** The delivery's future_events policy: a held event's SET is issued at its occurred-at. */
  futureEvents?: FutureEventsPolicy;
}

/** Query parameters once singleValued has refused any given more than once. */
type Query = Record<string, string | undefined>;
type Req = FastifyRequest<{ Querystring: Query; Params: Record<string, string>; Body: unknown }>;

const DELIVERY_STATES: readonly DeliveryState[] = ['pending', 'leased', 'delivered', 'dead'];
const STREAM_STATUSES: readonly StreamStatus[] = ['enabled', 'paused', 'disabled'];
const INSTANCE_STATES = [
  'stopped',
  'starting',
  'ok',
  'recoverable_error',
  'permanent_error',
  'stopping',
] as const;
const KEY_STATUSES = ['active', 'published', 'retiring', 'retired'] as const;
const HOUR = 3_600_000;
/** Windows the dashboard may ask for, with the bucket width of its charts. */
const WINDOWS: Record<string, { ms: number; bucketMs: number }> = {
  '1h': { ms: HOUR, bucketMs: 60_000 },
  '6h': { ms: 6 * HOUR, bucketMs: 5 * 60_000 },
  '24h': { ms: 24 * HOUR, bucketMs: 30 * 60_000 },
  '7d': { ms: 7 * 24 * HOUR, bucketMs: 6 * HOUR },
};

class NotFound extends Error {
  readonly statusCode = 404;
}

class Conflict extends Error {
  readonly statusCode = 409;
}

/** An absolute URI (RFC 3986 §4.3): a scheme, a colon, and more. */
const ABSOLUTE_URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;
/** Longer text is neither quoted whole nor matched: the edit distance costs its length times each name's. */
const MAX_SUGGESTED_INPUT = 200;

/**
 * The URI an event type filter names: a short name the catalog knows, or an absolute URI (kept as
 * it is: events and dead letters keep types the catalog may no longer know). Other text is
 * refused with 400, with the nearest short name: taken as it is, a typo would match nothing, and
 * a listing or a replay would answer an empty success.
 */
function eventTypeUri(value: string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  const known = findEventType(value);
  if (known) return known.uri;
  if (ABSOLUTE_URI.test(value)) return value;
  const candidates = listEventTypes().map((t) => t.shortName);
  const quotable = value.length <= MAX_SUGGESTED_INPUT;
  const hint = quotable ? nearest(value, candidates) : undefined;
  throw new AdminQueryError(
    `type "${quotable ? value : `${value.slice(0, MAX_SUGGESTED_INPUT)}…`}" is not a known event type` +
      `${hint ? `; did you mean "${hint}"?` : ''} (give a short name such as caep.session-revoked, or an absolute URI)`,
  );
}

function windowOf(value: string | undefined) {
  const key = value ?? '24h';
  // Own keys only: `__proto__`, `toString` and the like are no windows.
  if (!Object.hasOwn(WINDOWS, key))
    throw new AdminQueryError(`window must be one of ${Object.keys(WINDOWS).join(', ')}`);
  return WINDOWS[key] as { ms: number; bucketMs: number };
}

function eventJson(e: StoredEvent) {
  return {
    id: e.id,
    instance_id: e.instanceId,
    source_record_id: e.sourceRecordId,
    type: e.type,
    subject: e.subject,
    claims: e.claims,
    txn: e.txn,
    severity: e.severity ?? null,
    occurred_at: e.occurredAt.toISOString(),
    accepted_at: e.acceptedAt.toISOString(),
  };
}

function deadLetterJson(l: DeadLetter) {
  return {
    id: l.id,
    destination_id: l.destinationId,
    jti: l.jti,
    event_id: l.eventId,
    event_type: l.eventType,
    instance_id: l.instanceId,
    subject: l.subject,
    attempts: l.attempts,
    last_error: l.lastError ?? null,
    enqueued_at: l.enqueuedAt.toISOString(),
    dead_at: l.deadAt.toISOString(),
  };
}

function deliveryJson(d: DeliveryRecord) {
  return {
    id: d.id,
    event_id: d.eventId,
    destination_id: d.destinationId,
    jti: d.jti,
    state: d.state,
    attempts: d.attempts,
    due_at: d.dueAt.toISOString(),
    enqueued_at: d.enqueuedAt.toISOString(),
    updated_at: d.updatedAt.toISOString(),
    last_attempt_at: d.lastAttemptAt?.toISOString() ?? null,
    delivered_at: d.deliveredAt?.toISOString() ?? null,
    dead_at: d.deadAt?.toISOString() ?? null,
    last_error: d.lastError ?? null,
  };
}

/** What the receiver last answered, as far as the outbox recorded it. */
export function receiverAnswer(d: DeliveryRecord) {
  if (d.state === 'delivered') {
    return { outcome: 'accepted', at: d.deliveredAt?.toISOString() ?? null, error: d.lastError ?? null };
  }
  if (d.lastError) return { outcome: d.state === 'dead' ? 'refused' : 'failed', error: d.lastError };
  return { outcome: 'not_attempted', error: null };
}

/** Dead letters one replay or purge may name by id (each is one bound parameter of one statement). */
export const MAX_ACTION_IDS = 1000;

/** What a replay or purge body may hold; any other key is a mistake, never a filter to drop. */
const DEAD_LETTER_ACTION_KEYS = ['ids', 'destination', 'type', 'since', 'until', 'all'];

/**
 * Dead-letter filter from a replay or purge body; an unfiltered action must say `all: true`.
 * A key it does not know or a value of the wrong type is a 400: dropping it would widen the action
 * to letters the operator did not name (`{"destination": ["x"], "since": …}` must not purge every
 * destination's letters since then).
 */
export function deadLetterAction(body: unknown): DeadLetterFilter {
  if (body !== undefined && body !== null && (typeof body !== 'object' || Array.isArray(body))) {
    throw new AdminQueryError('the body must be a JSON object');
  }
  const b = (body ?? {}) as Record<string, unknown>;
  const unknown = Object.keys(b).filter((key) => !DEAD_LETTER_ACTION_KEYS.includes(key));
  if (unknown.length > 0) {
    throw new AdminQueryError(
      `unknown ${unknown.length === 1 ? 'key' : 'keys'} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; ` +
        `the letters are named by ${DEAD_LETTER_ACTION_KEYS.join(', ')}`,
    );
  }
  const filter: DeadLetterFilter = {};
  if (b.ids !== undefined) {
    if (!Array.isArray(b.ids) || !b.ids.every((id) => Number.isSafeInteger(id))) {
      throw new AdminQueryError('ids must be an array of dead letter ids');
    }
    if (b.ids.length > MAX_ACTION_IDS) {
      throw new AdminQueryError(
        `at most ${MAX_ACTION_IDS} ids in one request (got ${b.ids.length}); send them in several, or filter by destination, type and time`,
      );
    }
    filter.ids = b.ids as number[];
  }
  for (const key of ['destination', 'type', 'since', 'until'] as const) {
    if (b[key] !== undefined && (typeof b[key] !== 'string' || b[key] === '')) {
      throw new AdminQueryError(`${key} must be a non-empty string`);
    }
  }
  if (b.all !== undefined && typeof b.all !== 'boolean')
    throw new AdminQueryError('all must be true or false');
  if (b.destination !== undefined) filter.destinationId = b.destination as string;
  if (b.type !== undefined) filter.eventType = eventTypeUri(b.type as string) as string;
  const { since, until } = parseTimeRange(b.since, b.until);
  if (since) filter.since = since;
  if (until) filter.until = until;
  if (Object.keys(filter).length === 0 && b.all !== true) {
    throw new AdminQueryError('name the letters (ids, destination, type, since, until) or send "all": true');
  }
  return filter;
}

/** Counter and gauge series of the metrics registry that belong to one instance. */
async function countersOf(metrics: MetricsRegistry, id: string) {
  const out: Array<{ name: string; labels: Record<string, string | number>; value: number }> = [];
  for (const metric of await metrics.registry.getMetricsAsJSON()) {
    if (String(metric.type) !== 'counter' && String(metric.type) !== 'gauge') continue;
    for (const value of metric.values) {
      // Connector and pipeline series name their instance `instance_id`; delivery series `destination`.
      const { instance_id, instance, destination, connector: _connector, ...rest } = value.labels;
      if (instance_id !== id && instance !== id && destination !== id) continue;
      const labels: Record<string, string | number> = {};
      for (const [k, v] of Object.entries(rest)) if (v !== undefined) labels[k] = v;
      out.push({ name: metric.name, labels, value: value.value });
    }
  }
  return out;
}

/**
 * A stream's config for the admin API: the push credential (the receiver's, or the operator's
 * from provisioned_streams) is shown as set, never as its value, to any admin token.
 */
function withoutCredential(config: unknown): unknown {
  const delivery = (config as { delivery?: Record<string, unknown> } | null)?.delivery;
  if (!delivery || delivery['authorization_header'] === undefined) return config;
  return { ...(config as object), delivery: { ...delivery, authorization_header: '[redacted]' } };
}

export function registerAdmin(app: FastifyInstance, deps: AdminDeps): void {
  const authenticate = adminAuthenticator(deps.config);
  const principals = new WeakMap<FastifyRequest, AdminPrincipal>();
  const { store } = deps;
  let codec: SetCodec | undefined;

  const principalOf = (req: FastifyRequest) => principals.get(req) as AdminPrincipal;
  /** Write requests whose outcome `audited` recorded; the others are recorded as refused. */
  const recorded = new WeakSet<FastifyRequest>();

  /** Runs a write action and records it in the audit log, whether it worked or not. */
  async function audited<T>(
    req: FastifyRequest,
    action: string,
    target: string,
    detail: Record<string, unknown>,
    work: () => Promise<T>,
  ): Promise<T> {
    const who = principalOf(req);
    recorded.add(req);
    const entry = { at: deps.clock.now(), actor: who.name, role: who.role, action, target };
    let result: T;
    try {
      result = await work();
    } catch (err) {
      await recordOrLog({
        ...entry,
        detail: { ...detail, outcome: 'failed', error: (err as Error).message },
      });
      throw err;
    }
    // Done is done: an audit entry that cannot be written must not turn it into a 500 that an
    // operator retries (rotating a key twice, replaying twice).
    await recordOrLog({ ...entry, detail: { ...detail, outcome: 'ok', result } });
    deps.logger.info({ actor: who.name, action, target }, 'admin action');
    return result;
  }

  /** Writes an audit entry; one that cannot be written is logged with what it would have said. */
  async function recordOrLog(entry: Parameters<typeof store.operator.recordAudit>[0]): Promise<void> {
    try {
      await store.operator.recordAudit(entry);
    } catch (err) {
      deps.logger.error(
        { err: (err as Error).message, actor: entry.actor, action: entry.action, target: entry.target },
        'could not write the audit entry of an admin action',
      );
    }
  }

  /**
   * Records a write that an authenticated token asked for and that ended before it ran: refused
   * (the read role, a bad parameter, an unknown stream) or failed (a 5xx, such as the store
   * failing while the stream was looked up). Who tried what is part of the audit trail. An audit
   * write that fails itself is logged; the request keeps its own answer.
   */
  async function recordUnrun(req: FastifyRequest, status: number, message: string): Promise<void> {
    const action = (req.routeOptions.config as { audit?: string }).audit;
    const who = principals.get(req);
    if (!action || !who || recorded.has(req)) return;
    recorded.add(req);
    const params = req.params as Record<string, string> | undefined;
    const outcome = status >= 500 ? 'failed' : 'refused';
    await recordOrLog({
      at: deps.clock.now(),
      actor: who.name,
      role: who.role,
      action,
      target: params?.id ?? req.url.split('?')[0] ?? req.url,
      detail: { outcome, status, error: message },
    });
  }

  /**
   * The SET of a delivery, decoded. The signed compact form goes to write tokens only: a
   * receiver that authenticates pushes by the signature alone would take it from whoever holds
   * it, so handing it to a read token would let that token deliver (a dead letter, say).
   */
  async function setView(d: DeliveryRecord, event: StoredEvent | undefined, who: AdminPrincipal) {
    if (d.setJwt) {
      const decoded = decodeCompact(d.setJwt);
      return {
        source: 'stored',
        header: decoded.header,
        claims: decoded.payload,
        ...(mayWrite(who)
          ? { jwt: d.setJwt }
          : { jwt_withheld: 'the signed SET is shown to write tokens only' }),
      };
    }
    const target = deps
      .engine()
      ?.destinations()
      .find((info) => info.id === d.destinationId)?.target;
    if (!event || !target) return { source: 'unavailable', reason: 'the destination or the event is gone' };
    codec ??= new SetCodec({ issuer: deps.issuer(), keys: deps.keys, clock: deps.clock });
    // Signing is deterministic apart from the signature (same event, destination and jti give
    // the same claims), so the claims of a delivered SET can be rebuilt from the stored event.
    const built = codec.build({
      event: {
        type: event.type,
        subject: event.subject,
        claims: event.claims,
        sourceRecordId: event.sourceRecordId,
        occurredAt: event.occurredAt,
        txn: event.txn,
        ...(event.severity ? { severity: event.severity } : {}),
      },
      sourceInstanceId: event.instanceId,
      destination: {
        id: d.destinationId,
        audience: target.audience,
        ...(target.profile ? { profile: target.profile } : {}),
        ...(target.profileOptions ? { profileOptions: target.profileOptions } : {}),
      },
      jti: d.jti,
      now: issuedAt(event, deps.futureEvents),
    });
    return { source: 'rebuilt', claims: built.claims };
  }

  async function instancesView() {
    const stats = await store.stats();
    return Promise.all(
      deps.status.list().map(async (s) => ({
        id: s.id,
        connector: s.connector,
        kind: s.kind,
        state: s.state,
        reason: s.reason ?? null,
        since: s.since,
        last_success_at: s.lastSuccessAt ?? null,
        last_error_at: s.lastErrorAt ?? null,
        last_error: s.lastError ?? null,
        backlog: stats.backlog[s.id] ?? 0,
        dead_letters: stats.deadLetters[s.id] ?? 0,
        counters: await countersOf(deps.metrics, s.id),
      })),
    );
  }

  /** Whether a destination is an SSF stream that has been deleted (its deliveries outlive it). */
  async function deletedStreams(): Promise<(id: string) => boolean> {
    const engine = deps.engine();
    // Every stream is registered with the engine while it runs; without it, ask the store.
    const streams = engine
      ? new Set(engine.destinations().map((d) => d.id))
      : new Set((await store.streams.list()).map((r) => streamDestinationId(r.streamId)));
    return (id) => id.startsWith('stream:') && !streams.has(id);
  }

  async function destinationsView(since: Date) {
    const engine = deps.engine();
    const [health, deleted] = await Promise.all([store.operator.destinationHealth(since), deletedStreams()]);
    const ids = new Set([
      ...health.map((h) => h.destinationId).filter((id) => !deleted(id)),
      ...(engine?.destinations() ?? []).map((d) => d.id),
    ]);
    return [...ids].sort().map((id) => {
      const h = health.find((row) => row.destinationId === id);
      const finished = (h?.delivered ?? 0) + (h?.dead ?? 0);
      return {
        destination_id: id,
        delivered: h?.delivered ?? 0,
        dead: h?.dead ?? 0,
        success_rate: finished === 0 ? null : (h?.delivered ?? 0) / finished,
        mean_latency_ms: h?.meanLatencyMs ?? null,
        last_delivered_at: h?.lastDeliveredAt?.toISOString() ?? null,
        backlog: h?.backlog ?? 0,
        retrying: h?.retrying ?? 0,
        circuit: engine?.circuitState(id) ?? null,
      };
    });
  }

  async function streamView(streamId: string) {
    const record = await store.streams.get(streamId);
    if (!record) throw new NotFound(`no stream "${streamId}"`);
    return {
      stream_id: record.streamId,
      client_id: record.clientId,
      status: record.status,
      status_reason: record.statusReason ?? null,
      created_at: record.createdAt.toISOString(),
      updated_at: record.updatedAt.toISOString(),
      config: withoutCredential(deps.transmitter.renderStream(record)),
      poll_queue_depth: await store.streams.pollQueueDepth(streamId),
      errors: (await deps.transmitter.streamErrors(streamId)).map((e) => ({ ...e, at: e.at.toISOString() })),
    };
  }

  app.register(
    async (admin) => {
      // What connectors and receivers said (instance errors, delivery errors, stream errors) is
      // shown as it came; a credential it quotes is not, whichever token asks.
      admin.addHook('onSend', async (_req, _reply, payload) =>
        typeof payload === 'string' ? scrubSecrets(payload) : payload,
      );

      admin.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
        reply.header('cache-control', 'no-store');
        const principal = authenticate(bearerToken(req.headers.authorization));
        if (!principal) {
          return reply
            .code(401)
            .header('www-authenticate', 'Bearer realm="ssf-bridge-admin"')
            .send({ error: 'unauthorized', message: 'an admin token is required (Authorization: Bearer …)' });
        }
        principals.set(req, principal);
        if (req.method !== 'GET' && req.method !== 'HEAD' && !mayWrite(principal)) {
          const message = `token "${principal.name}" has the read role; this needs write`;
          await recordUnrun(req, 403, message);
          return reply.code(403).send({ error: 'forbidden', message });
        }
      });

      // A write body the server did not read as JSON (curl -d sends a form) would look empty to
      // the handler, and its 400 would name a missing field instead of the real mistake.
      admin.addHook('preHandler', async (req: FastifyRequest, reply: FastifyReply) => {
        singleValued(req.query);
        refuseUnstorable({ params: req.params, query: req.query, body: req.body });
        if (req.method === 'GET' || req.method === 'HEAD') return;
        if ((req.rawBody?.length ?? 0) === 0 || req.body !== undefined) return;
        const message = `send the body as JSON (Content-Type: application/json), not ${req.headers['content-type'] ?? 'without a type'}`;
        await recordUnrun(req, 415, message);
        return reply.code(415).send({ error: 'unsupported_media_type', message });
      });

      admin.setErrorHandler(async (err: Error & { statusCode?: number }, req, reply) => {
        const status = err.statusCode ?? 500;
        if (status < 500) await recordUnrun(req, status, err.message);
        if (status >= 500) {
          deps.logger.error({ err, url: req.url.split('?')[0] }, 'admin request failed');
          await recordUnrun(req, 500, 'internal error; see the bridge log');
          return reply
            .code(500)
            .send({ error: 'internal_error', message: 'internal error; see the bridge log' });
        }
        const error = status === 404 ? 'not_found' : status === 409 ? 'conflict' : 'invalid_request';
        return reply.code(status).send({ error, message: err.message });
      });

      admin.get('/session', async (req) => principalOf(req));

      admin.get('/overview', async (req: Req) => {
        const window = windowOf(req.query.window);
        const now = deps.clock.now();
        const since = new Date(now.getTime() - window.ms);
        const start = new Date(Math.floor(since.getTime() / window.bucketMs) * window.bucketMs);
        const [stats, activity, destinations] = await Promise.all([
          store.stats(),
          store.operator.activity(start, now, window.bucketMs),
          destinationsView(since),
        ]);
        return {
          readiness: await deps.status.check(),
          instances: deps.status.list().map((s) => ({
            id: s.id,
            kind: s.kind,
            connector: s.connector,
            state: s.state,
            reason: s.reason ?? null,
            last_success_at: s.lastSuccessAt ?? null,
            last_error_at: s.lastErrorAt ?? null,
            last_error: s.lastError ?? null,
          })),
          backlog: stats.backlog,
          dead_letters: stats.deadLetters,
          scheduled: stats.scheduled,
          poll_queues: stats.pollQueues,
          destinations,
          activity: {
            bucket_ms: window.bucketMs,
            buckets: activity.map((b) => ({ ...b, start: b.start.toISOString() })),
          },
        };
      });

      admin.get('/instances', async (req: Req) => {
        const kind = oneOf('kind', req.query.kind, ['inbound', 'outbound', 'core'] as const);
        const state = oneOf('state', req.query.state, INSTANCE_STATES);
        const all = (await instancesView()).filter(
          (i) => (kind === undefined || i.kind === kind) && (state === undefined || i.state === state),
        );
        return pageOf(all, req.query);
      });

      admin.get('/events', async (req: Req) => {
        const limit = parseLimit(req.query.limit);
        const position = decodeCursor(req.query.cursor, isEventPosition);
        const subject = optionalText(req.query.subject);
        const type = eventTypeUri(req.query.type);
        const instanceId = optionalText(req.query.instance);
        const { since, until } = parseTimeRange(req.query.since, req.query.until);
        const rows = await store.operator.listEvents({
          limit: limit + 1,
          ...(instanceId ? { instanceId } : {}),
          ...(type ? { type } : {}),
          ...(since ? { since } : {}),
          ...(until ? { until } : {}),
          ...(subject ? { subjectMentions: [subject] } : {}),
          ...(position ? { before: { acceptedAt: new Date(position[0]), id: position[1] } } : {}),
        });
        const page = keysetPage(rows, limit, (e) => [e.acceptedAt.getTime(), e.id]);
        return { ...page, items: page.items.map(eventJson) };
      });

      admin.get('/events/:id', async (req: Req) => {
        const event = await store.events.get(String(req.params.id));
        if (!event) throw new NotFound(`no event "${req.params.id}"`);
        return {
          event: eventJson(event),
          deliveries: (await store.deliveries.forEvent(event.id)).map(deliveryJson),
        };
      });

      admin.get('/deliveries', async (req: Req) => {
        const limit = parseLimit(req.query.limit);
        const beforeId = decodeCursor(req.query.cursor, isRowId);
        const destinationId = optionalText(req.query.destination);
        const state = oneOf('state', req.query.state, DELIVERY_STATES);
        const eventId = optionalText(req.query.event);
        const rows = await store.operator.listDeliveries({
          limit: limit + 1,
          ...(destinationId ? { destinationId } : {}),
          ...(state ? { state } : {}),
          ...(eventId ? { eventId } : {}),
          ...(beforeId !== undefined ? { beforeId } : {}),
        });
        const page = keysetPage(rows, limit, (d) => d.id);
        return { ...page, items: page.items.map(deliveryJson) };
      });

      admin.get('/deliveries/:id', async (req: Req) => {
        const id = pathRowId(req.params.id ?? '');
        const delivery = id === undefined ? undefined : await store.deliveries.get(id);
        if (!delivery) throw new NotFound(`no delivery "${req.params.id}"`);
        const event = await store.events.get(delivery.eventId);
        return {
          delivery: deliveryJson(delivery),
          event: event ? eventJson(event) : null,
          answer: receiverAnswer(delivery),
          set: await setView(delivery, event, principalOf(req)),
        };
      });

      admin.get('/destinations', async (req: Req) => {
        const window = windowOf(req.query.window);
        return pageOf(await destinationsView(new Date(deps.clock.now().getTime() - window.ms)), req.query);
      });

      admin.get('/dead-letters', async (req: Req) => {
        const limit = parseLimit(req.query.limit);
        // Letters page in the order they died, not by id: a letter of an older delivery (or a
        // replayed one) that dies while an operator pages comes on a later page, not before it.
        const afterDeadSeq = readDeadLetterCursor(req.query.cursor);
        const filter: DeadLetterFilter = {};
        const destinationId = optionalText(req.query.destination);
        const eventType = eventTypeUri(req.query.type);
        const { since, until } = parseTimeRange(req.query.since, req.query.until);
        if (destinationId) filter.destinationId = destinationId;
        if (eventType) filter.eventType = eventType;
        if (since) filter.since = since;
        if (until) filter.until = until;
        const [rows, total] = await Promise.all([
          store.deadLetters.list(filter, {
            limit: limit + 1,
            ...(afterDeadSeq !== undefined ? { afterDeadSeq } : {}),
          }),
          store.deadLetters.count(filter),
        ]);
        const items = rows.slice(0, limit);
        const page = {
          items,
          next_cursor: rows.length > limit ? deadLetterCursor(items.at(-1)!.deadSeq) : null,
        };
        return {
          ...page,
          total,
          items: page.items.map(deadLetterJson),
        };
      });

      admin.get('/dead-letters/:id', async (req: Req) => {
        const id = pathRowId(req.params.id ?? '');
        const letter = id === undefined ? undefined : await store.deadLetters.get(id);
        if (!letter) throw new NotFound(`no dead letter "${req.params.id}"`);
        const delivery = await store.deliveries.get(letter.id);
        return {
          letter: { ...deadLetterJson(letter), source_record_id: letter.sourceRecordId },
          set: delivery
            ? await setView(delivery, await store.events.get(letter.eventId), principalOf(req))
            : null,
        };
      });

      for (const action of ['replay', 'purge'] as const) {
        admin.post(
          `/dead-letters/${action}`,
          { config: { audit: `dead_letters.${action}` } },
          async (req: Req) => {
            const filter = deadLetterAction(req.body);
            const target =
              filter.destinationId ?? (filter.ids ? `ids ${filter.ids.join(',')}` : 'all destinations');
            const count = await audited(req, `dead_letters.${action}`, target, { filter }, async () => {
              const n =
                action === 'replay'
                  ? await store.deadLetters.replay(filter, deps.clock.now())
                  : await store.deadLetters.purge(filter);
              if (action === 'replay') deps.engine()?.notify();
              return n;
            });
            return { [action === 'replay' ? 'replayed' : 'purged']: count };
          },
        );
      }

      admin.get('/streams', async (req: Req) => {
        const status = oneOf('status', req.query.status, STREAM_STATUSES);
        const client = optionalText(req.query.client);
        const limit = parseLimit(req.query.limit);
        // Oldest first, paged in the store; the cursor is the last stream's (created_at, stream_id).
        const after = decodeCursor(req.query.cursor, isEventPosition);
        const rows = await store.streams.list({
          ...(client ? { clientId: client } : {}),
          ...(status ? { status } : {}),
          ...(after ? { after: { createdAt: new Date(after[0]), streamId: after[1] } } : {}),
          limit: limit + 1,
        });
        const page = keysetPage(rows, limit, (r): [number, string] => [r.createdAt.getTime(), r.streamId]);
        // Poll queues are counted for the streams of this page only.
        const items = await Promise.all(
          page.items.map(async (r) => ({
            stream_id: r.streamId,
            client_id: r.clientId,
            status: r.status,
            status_reason: r.statusReason ?? null,
            delivery_method: (r.config.delivery as { method?: string } | undefined)?.method ?? null,
            updated_at: r.updatedAt.toISOString(),
            poll_queue_depth: await store.streams.pollQueueDepth(r.streamId),
          })),
        );
        return { ...page, items };
      });

      admin.get('/streams/:id', async (req: Req) => streamView(String(req.params.id)));

      admin.get('/streams/:id/subjects', async (req: Req) => {
        const limit = parseLimit(req.query.limit);
        const afterKey = decodeCursor(req.query.cursor, (v): v is string => typeof v === 'string');
        if (!(await store.streams.get(String(req.params.id))))
          throw new NotFound(`no stream "${req.params.id}"`);
        const rows = await store.streams.listSubjects(String(req.params.id), {
          limit: limit + 1,
          ...(afterKey !== undefined ? { afterKey } : {}),
        });
        const page = keysetPage(rows, limit, (s) => s.subjectKey);
        return {
          ...page,
          items: page.items.map((s) => ({
            subject: s.subject,
            included: s.included,
            added_at: s.addedAt.toISOString(),
          })),
        };
      });

      admin.post('/streams/:id/status', { config: { audit: 'streams.status' } }, async (req: Req) => {
        const id = String(req.params.id);
        const body = (req.body ?? {}) as { status?: unknown; reason?: unknown };
        const status = oneOf('status', body.status, STREAM_STATUSES);
        if (!status) throw new AdminQueryError('status is required');
        const reason = typeof body.reason === 'string' && body.reason !== '' ? body.reason : undefined;
        if (!(await store.streams.get(id))) throw new NotFound(`no stream "${id}"`);
        return audited(req, 'streams.status', id, { status, reason: reason ?? null }, () =>
          deps.transmitter.setStreamStatus(id, status, reason),
        );
      });

      admin.delete('/streams/:id', { config: { audit: 'streams.delete' } }, async (req: Req, reply) => {
        const id = String(req.params.id);
        if (!(await store.streams.get(id))) throw new NotFound(`no stream "${id}"`);
        await audited(req, 'streams.delete', id, {}, () => deps.transmitter.deleteStream(id));
        return reply.code(204).send();
      });

      admin.get('/keys', async (req: Req) => {
        const status = oneOf('status', req.query.status, KEY_STATUSES);
        const keys = deps.keys
          .list()
          .filter((k) => status === undefined || k.status === status)
          .map((k) => ({
            kid: k.kid,
            alg: k.alg,
            status: k.status,
            source: k.source,
            created_at: k.createdAt?.toISOString() ?? null,
            activates_at: k.activatesAt?.toISOString() ?? null,
            retires_at: k.retiresAt?.toISOString() ?? null,
          }));
        const { active, next } = deps.keys.schedule();
        return {
          ...pageOf(keys, req.query),
          rotatable: deps.keys.rotatable,
          // Which key signs now, and the key a rotation added that signs next, from when.
          signing: active.kid,
          next: next ? { kid: next.kid, activates_at: next.activatesAt.toISOString() } : null,
        };
      });

      admin.post('/keys/rotate', { config: { audit: 'keys.rotate' } }, async (req: Req) => {
        // Keys from keys.files / keys.secrets are the configuration's, not the bridge's to replace.
        if (!deps.keys.rotatable) {
          throw new Conflict(
            'signing keys come from keys.files / keys.secrets in the configuration; rotate them there',
          );
        }
        const added = await audited(req, 'keys.rotate', 'signing keys', {}, async () => {
          const info = await deps.keys.rotate();
          return { kid: info.kid, alg: info.alg, activates_at: info.activatesAt?.toISOString() ?? null };
        });
        // The new key signs after keys.activation_delay; until then the current one does.
        const { active } = deps.keys.schedule();
        return { active: { kid: active.kid, alg: active.alg }, added };
      });

      admin.get('/timeline', async (req: Req) => {
        const subject = optionalText(req.query.subject);
        if (!subject) throw new AdminQueryError('subject is required (an e-mail, phone number or id)');
        const limit = parseLimit(req.query.limit);
        const position = decodeCursor(req.query.cursor, isEventPosition);
        const { since, until } = parseTimeRange(req.query.since, req.query.until);
        const page = await subjectTimeline(store, {
          terms: timelineTerms(subject, deps.subjectAliases),
          limit,
          ...(position ? { before: { acceptedAt: new Date(position[0]), id: position[1] } } : {}),
          ...(since ? { since } : {}),
          ...(until ? { until } : {}),
        });
        return {
          terms: page.terms,
          items: page.entries.map((e) => ({
            event: eventJson(e.event),
            deliveries: e.deliveries.map((d) => ({ ...deliveryJson(d), answer: receiverAnswer(d) })),
          })),
          next_cursor: page.next ? encodeCursor([page.next.acceptedAt.getTime(), page.next.id]) : null,
        };
      });

      admin.get('/devices/:id/compliance', async (req: Req) => {
        const id = String(req.params.id);
        const result = await deviceCompliance(store, deps.instances, id);
        if (!result) throw new NotFound(`no MDM source knows device "${id}"`);
        return result;
      });

      admin.get('/audit', async (req: Req) => {
        const limit = parseLimit(req.query.limit);
        const beforeId = decodeCursor(req.query.cursor, isRowId);
        const actor = optionalText(req.query.actor);
        const action = optionalText(req.query.action);
        const { since, until } = parseTimeRange(req.query.since, req.query.until);
        const rows = await store.operator.listAudit({
          limit: limit + 1,
          ...(actor ? { actor } : {}),
          ...(action ? { action } : {}),
          ...(since ? { since } : {}),
          ...(until ? { until } : {}),
          ...(beforeId !== undefined ? { beforeId } : {}),
        });
        const page = keysetPage(rows, limit, (a) => a.id);
        return { ...page, items: page.items.map((a) => ({ ...a, at: a.at.toISOString() })) };
      });
    },
    { prefix: '/admin' },
  );
}
