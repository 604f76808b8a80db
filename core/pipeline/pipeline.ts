import { newEventId } from './event-id.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { MAX_EVENT_NESTING, nestsDeeperThan } from '../plugin-api/json-depth.ts';
import { unstorableTextPath } from '../plugin-api/storable-text.ts';
import type { Clock, EmitOptions, EventDraft, Logger, SubjectIdentifier } from '../plugin-api/types.ts';
import { policyFor, type DeliveryConfig } from '../delivery/config.ts';
import { dedupeKey, defaultTxn, deliveryJti, orderingKey } from '../delivery/jti.ts';
import {
  DEFAULT_CHECKPOINT_NAME,
  streamIdOf,
  type NewDelivery,
  type NewEvent,
  type StoredEvent,
  type Store,
} from '../storage/types.ts';
import { subjectsConfigSchema, type RoutesConfig, type SubjectsConfig } from './config.ts';
import { Router, SEVERITIES } from './routing.ts';
import { aliasResolver, type SubjectResolver } from './subjects.ts';

export interface Problem {
  path: string;
  message: string;
}

export type ValidationResult = { ok: true; event: EventDraft } | { ok: false; problems: Problem[] };

/** Checks a draft against the event catalog; the returned event carries the type URI. */
export type ValidateEvent = (draft: EventDraft) => ValidationResult | Promise<ValidationResult>;

export interface PipelineOptions {
  store: Store;
  delivery: DeliveryConfig;
  routes: RoutesConfig;
  subjects?: SubjectsConfig;
  validateEvent: ValidateEvent;
  /** Canonical key of a subject: equal for subjects that name the same principal. */
  subjectKey: (subject: SubjectIdentifier) => string;
  /** Resolves event-type names used in routes to URIs; undefined for an unknown name. */
  resolveEventType?: (nameOrUri: string) => string | undefined;
  clock?: Clock;
  logger?: Logger;
  /** Outbox bound of a destination; defaults to the delivery config's queue_size for it. */
  queueLimit?: (destinationId: string) => number;
  /** Told which destinations received new rows (wakes the delivery workers). */
  notify?: (destinationIds: string[]) => void;
  /**
   * The SSF streams (as `stream:<id>` destination ids) that get an event: the transmitter's
   * in-memory routing index (subjects, default_subjects, events_delivered, status, paused holds).
   * Without it (no transmitter), routes to streams reach no stream.
   */
  streamRoutes?: (event: StoredEvent) => string[];
  /** How long a read of the backlog counts is reused. */
  backlogRefreshMs?: number;
  /**
   * Outbound instances that are configured but disabled: routes naming them queue nothing for
   * them (nothing would deliver it), and an event no other target takes counts as unrouted.
   */
  disabledDestinations?: Iterable<string>;
  /** Where `ssf_bridge_events_unrouted_total{instance}` is counted. */
  metrics?: MetricsRegistry;
}

export interface AcceptOptions {
  /** Committed in the same transaction as the events. */
  checkpoint?: EmitOptions['checkpoint'];
  /** `reject` (default) refuses the whole batch when any event is invalid; `skip` drops those. */
  onInvalid?: 'reject' | 'skip';
}

export interface AcceptResult {
  /** Ids of the valid events in input order; a duplicate gives the id of the event it repeats. */
  accepted: string[];
  duplicates: number;
  /** Events held until their future occurred-at. */
  scheduled: number;
  /** Events accepted that no route sends anywhere. */
  unrouted: number;
  /** Invalid events (only with onInvalid: 'skip'). */
  rejected: Array<{ index: number; problems: Problem[] }>;
}

/** Some events of a batch are invalid; nothing of the batch was accepted. */
export class EventValidationError extends PermanentError {
  readonly problems: Array<Problem & { index: number }>;
  constructor(problems: Array<Problem & { index: number }>) {
    const shown = problems
      .slice(0, 5)
      .map((p) => `event ${p.index}${p.path ? ` at ${p.path}` : ''}: ${p.message}`)
      .join('; ');
    const more = problems.length > 5 ? ` (and ${problems.length - 5} more)` : '';
    super(`invalid events: ${shown}${more}`, { code: 'SSF_ERR_PIPELINE_INVALID_EVENT' });
    this.problems = problems;
  }
}

/** The outbox of a destination is full: the source must wait and try again. */
export class OutboxFullError extends RetryableError {
  readonly destinations: string[];
  constructor(destinations: string[], retryAfterMs: number) {
    super(
      `the outbox is full for ${destinations.join(', ')}; try again in ${Math.ceil(retryAfterMs / 1000)} s ` +
        '(the destination is slow or down; see delivery metrics)',
      { code: 'SSF_ERR_DELIVERY_QUEUE_FULL', retryAfterMs, detail: { destinations } },
    );
    this.destinations = destinations;
  }
}

const systemClock: Clock = { now: () => new Date() };

interface Prepared {
  index: number;
  draft: EventDraft;
  key: string;
}

/**
 * From an inbound instance's drafts to durable outbox rows: validate → drop duplicates →
 * enrich the subject → route → write events, deliveries, dedupe keys and the checkpoint in one
 * transaction. Resolves only once everything is durable.
 */
export class Pipeline {
  readonly #o: PipelineOptions;
  readonly #clock: Clock;
  readonly #router: Router;
  readonly #resolvers: SubjectResolver[] = [];
  readonly #backlog: BacklogTracker;
  readonly #unrouted: ReturnType<MetricsRegistry['counter']> | undefined;
  #releaseTimer: NodeJS.Timeout | undefined;
  #releasing: Promise<unknown> | undefined;

  constructor(options: PipelineOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
    this.#router = new Router(
      options.routes,
      options.resolveEventType,
      new Set(options.disabledDestinations ?? []),
    );
    for (const { route, instance } of this.#router.skipped) {
      options.logger?.warn(
        { route, instance },
        `route ${route} names outbound instance ${instance}, which is disabled: its events are not queued for it`,
      );
    }
    this.#unrouted = options.metrics?.counter(
      'ssf_bridge_events_unrouted_total',
      'Events accepted (or released after a hold) that no route sent to any enabled destination or stream',
      ['instance_id'],
    );
    const subjects = options.subjects ?? subjectsConfigSchema.parse(undefined);
    if (subjects.aliases.length > 0) this.#resolvers.push(aliasResolver(subjects, options.subjectKey));
    this.#backlog = new BacklogTracker(options.store, this.#clock, options.backlogRefreshMs ?? 1000);
  }

  /** Adds a subject resolver (after the alias map and earlier resolvers); returns its remover. */
  addResolver(resolver: SubjectResolver): () => void {
    this.#resolvers.push(resolver);
    return () => {
      const i = this.#resolvers.indexOf(resolver);
      if (i >= 0) this.#resolvers.splice(i, 1);
    };
  }

  async accept(instanceId: string, drafts: EventDraft[], options: AcceptOptions = {}): Promise<AcceptResult> {
    const now = this.#clock.now();
    const { valid, rejected } = await this.#validate(drafts);
    if (rejected.length > 0 && options.onInvalid !== 'skip') {
      throw new EventValidationError(
        rejected.flatMap((r) => r.problems.map((p) => ({ index: r.index, ...p }))),
      );
    }
    const prepared: Prepared[] = valid.map(({ index, draft }) => ({
      index,
      draft,
      key: dedupeKey(instanceId, draft.sourceRecordId, draft.type),
    }));
    const known = await this.#o.store.events.findDuplicates(
      prepared.map((p) => p.key),
      now,
    );
    const fresh = prepared.filter((p) => !known.has(p.key));
    const items = await Promise.all(fresh.map((p) => this.#build(instanceId, p, now)));
    this.#addStreamDeliveries(items.filter((i) => i.releaseAt === undefined));
    await this.#checkCapacity(items);

    const outcome = await this.#o.store.accept({
      now,
      events: items,
      dedupeExpiresAt: new Date(now.getTime() + this.#o.delivery.dedupe_window),
      ...(options.checkpoint === undefined
        ? {}
        : {
            checkpoint: {
              instanceId,
              name: options.checkpoint.name ?? DEFAULT_CHECKPOINT_NAME,
              value: options.checkpoint.value,
              ...(options.checkpoint.expected ? { expected: options.checkpoint.expected } : {}),
            },
          }),
    });

    const ids = new Map<number, string>();
    prepared.forEach((p) => {
      const id = known.get(p.key);
      if (id !== undefined) ids.set(p.index, id);
    });
    let duplicates = known.size === 0 ? 0 : prepared.filter((p) => known.has(p.key)).length;
    let scheduled = 0;
    let unrouted = 0;
    const touched = new Set<string>();
    outcome.results.forEach((result, i) => {
      const item = items[i]!;
      ids.set(fresh[i]!.index, result.id);
      if (result.status === 'duplicate') {
        duplicates += 1;
        return;
      }
      if (item.releaseAt !== undefined) scheduled += 1;
      else if (item.deliveries.length === 0) unrouted += 1;
      for (const d of item.deliveries) {
        this.#backlog.add(d.destinationId, 1);
        touched.add(d.destinationId);
      }
    });
    if (unrouted > 0) {
      this.#unrouted?.inc({ instance_id: instanceId }, unrouted);
      this.#o.logger?.info({ instance: instanceId, unrouted }, 'accepted events that no route matches');
    }
    if (touched.size > 0) this.#o.notify?.([...touched]);
    return {
      accepted: prepared.map((p) => ids.get(p.index)!),
      duplicates,
      scheduled,
      unrouted,
      rejected,
    };
  }

  /** Routes and releases held events whose time has come; returns how many were released. */
  async releaseDue(limit = 500): Promise<number> {
    const now = this.#clock.now();
    const due = await this.#o.store.events.dueSchedules(now, limit);
    if (due.length === 0) return 0;
    const releases = due.map(({ event }) => ({ event, deliveries: this.#outboundDeliveries(event) }));
    this.#addStreamDeliveries(releases);
    const released = new Set(
      await this.#o.store.events.releaseSchedules(
        releases.map((r) => ({ eventId: r.event.id, deliveries: r.deliveries })),
        now,
      ),
    );
    const touched = new Set<string>();
    for (const r of releases) {
      if (!released.has(r.event.id)) continue;
      if (r.deliveries.length === 0) this.#unrouted?.inc({ instance_id: r.event.instanceId });
      for (const d of r.deliveries) {
        this.#backlog.add(d.destinationId, 1);
        touched.add(d.destinationId);
      }
    }
    if (touched.size > 0) this.#o.notify?.([...touched]);
    return released.size;
  }

  /** Starts releasing held events on the configured interval. */
  start(): void {
    if (this.#releaseTimer !== undefined) return;
    this.#releaseTimer = setInterval(() => {
      if (this.#releasing !== undefined) return;
      this.#releasing = this.#releaseAllDue()
        .catch((err: unknown) =>
          this.#o.logger?.warn(
            { err: err instanceof Error ? err.message : String(err) },
            'releasing held events failed',
          ),
        )
        .finally(() => (this.#releasing = undefined));
    }, this.#o.delivery.future_events.check_interval);
    this.#releaseTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#releaseTimer);
    this.#releaseTimer = undefined;
    await this.#releasing;
  }

  async #releaseAllDue(): Promise<void> {
    while ((await this.releaseDue()) > 0);
  }

  async #validate(drafts: EventDraft[]) {
    const valid: Array<{ index: number; draft: EventDraft }> = [];
    const rejected: Array<{ index: number; problems: Problem[] }> = [];
    for (const [index, draft] of drafts.entries()) {
      const problems = basicProblems(draft);
      if (problems.length === 0) {
        const result = await this.#o.validateEvent(draft);
        if (result.ok) valid.push({ index, draft: result.event });
        else problems.push(...result.problems);
      }
      if (problems.length > 0) rejected.push({ index, problems });
    }
    return { valid, rejected };
  }

  async #build(instanceId: string, p: Prepared, now: Date): Promise<NewEvent> {
    const { draft } = p;
    let subject = draft.subject;
    for (const resolve of this.#resolvers) {
      subject = (await resolve(subject, { instanceId, eventType: draft.type })) ?? subject;
    }
    if (subject !== draft.subject) subject = await this.#renormalise(instanceId, draft, subject);
    const occurredAt = draft.occurredAt === undefined ? now : new Date(draft.occurredAt);
    const event: StoredEvent = {
      id: newEventId(now.getTime()),
      instanceId,
      sourceRecordId: draft.sourceRecordId,
      type: draft.type,
      subject,
      subjectKey: this.#o.subjectKey(subject),
      claims: draft.claims ?? {},
      txn: draft.txn ?? defaultTxn(instanceId, draft.sourceRecordId),
      occurredAt,
      acceptedAt: now,
      ...(draft.severity === undefined ? {} : { severity: draft.severity }),
    };
    const { hold, tolerance } = this.#o.delivery.future_events;
    if (hold && occurredAt.getTime() > now.getTime() + tolerance) {
      return { event, dedupeKey: p.key, deliveries: [], releaseAt: occurredAt };
    }
    return { event, dedupeKey: p.key, deliveries: this.#outboundDeliveries(event) };
  }

  /**
   * A subject an alias or resolver rewrote, checked and normalised by the catalog again (a
   * rewritten member of an aliases subject may repeat another, a `to` may be spelt loosely). One
   * the event type does not take is not applied: the event keeps the subject its source sent.
   */
  async #renormalise(
    instanceId: string,
    draft: EventDraft,
    subject: SubjectIdentifier,
  ): Promise<SubjectIdentifier> {
    const result = await this.#o.validateEvent({ ...draft, subject });
    if (result.ok) return result.event.subject;
    this.#o.logger?.warn(
      {
        instance: instanceId,
        type: draft.type,
        sourceRecordId: draft.sourceRecordId,
        problems: result.problems.map((p) => `${p.path}: ${p.message}`),
      },
      'a subject alias or resolver gave a subject this event type does not take; the event keeps its own subject',
    );
    return draft.subject;
  }

  #outboundDeliveries(event: StoredEvent): NewDelivery[] {
    return [...this.#router.targets(event).destinations].map((id) => delivery(event, id));
  }

  /** Adds one delivery per stream the transmitter routes each event to, where its route allows. */
  #addStreamDeliveries(items: Array<{ event: StoredEvent; deliveries: NewDelivery[] }>): void {
    const routes = this.#o.streamRoutes;
    if (!routes) return;
    for (const item of items) {
      const streams = this.#router.targets(item.event).streams;
      if (streams !== 'all' && streams.size === 0) continue;
      for (const destinationId of routes(item.event)) {
        const streamId = streamIdOf(destinationId);
        if (streamId === undefined || (streams !== 'all' && !streams.has(streamId))) continue;
        item.deliveries.push(delivery(item.event, destinationId));
      }
    }
  }

  /**
   * Refuses the batch when any destination it adds to has an outbox already at or past its
   * bound. The batch's own size is not counted against the bound: a batch larger than
   * `queue_size` would otherwise be refused even by an empty outbox, every retry alike (a
   * poller's page would never pass). One batch may overshoot, as a burst may between two reads
   * of the count; memory stays bounded, since a batch is capped by the request limits.
   */
  async #checkCapacity(items: NewEvent[]): Promise<void> {
    const adding = new Set<string>();
    for (const item of items) {
      for (const d of item.deliveries) adding.add(d.destinationId);
    }
    if (adding.size === 0) return;
    const backlog = await this.#backlog.current();
    const limit = this.#o.queueLimit ?? ((id: string) => policyFor(this.#o.delivery, id).queueSize);
    const full = [...adding].filter((id) => (backlog.get(id) ?? 0) >= limit(id)).sort();
    if (full.length > 0) throw new OutboxFullError(full, this.#o.delivery.backpressure_retry_after);
  }
}

function delivery(event: StoredEvent, destinationId: string): NewDelivery {
  return {
    destinationId,
    jti: deliveryJti(event.instanceId, event.sourceRecordId, event.type, destinationId),
    orderingKey: orderingKey(destinationId, event.subjectKey),
  };
}

/** What the pipeline itself needs of a draft, whatever the catalog says. */
function basicProblems(draft: EventDraft): Problem[] {
  const problems: Problem[] = [];
  if (draft === null || typeof draft !== 'object') return [{ path: '', message: 'must be an object' }];
  if (typeof draft.sourceRecordId !== 'string' || draft.sourceRecordId.length === 0) {
    problems.push({ path: 'sourceRecordId', message: 'must be a non-empty string' });
  }
  if (draft.occurredAt !== undefined && Number.isNaN(new Date(draft.occurredAt).getTime())) {
    problems.push({ path: 'occurredAt', message: 'must be a date' });
  }
  if (draft.severity !== undefined && !(SEVERITIES as readonly unknown[]).includes(draft.severity)) {
    problems.push({
      path: 'severity',
      message: `must be one of ${SEVERITIES.join(', ')} (lower case), not ${JSON.stringify(draft.severity)}`,
    });
  }
  for (const part of ['subject', 'claims'] as const) {
    if (nestsDeeperThan(draft[part], MAX_EVENT_NESTING)) {
      problems.push({ path: part, message: `nests more than ${MAX_EVENT_NESTING} levels deep` });
    }
  }
  if (problems.length > 0) return problems;
  for (const part of ['sourceRecordId', 'txn', 'subject', 'claims'] as const) {
    const at = unstorableTextPath(draft[part], part);
    if (at !== undefined) {
      problems.push({
        path: at,
        message: 'holds U+0000 or half of a surrogate pair, which no store keeps',
      });
    }
  }
  return problems;
}

/**
 * Backlog counts per destination, read from the store at most once per refresh interval and
 * advanced locally in between, so the bound costs no query per accepted batch.
 */
class BacklogTracker {
  #counts = new Map<string, number>();
  #readAt = Number.NEGATIVE_INFINITY;
  #reading: Promise<void> | undefined;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly refreshMs: number,
  ) {}

  async current(): Promise<Map<string, number>> {
    if (this.clock.now().getTime() - this.#readAt >= this.refreshMs) {
      this.#reading ??= this.store.deliveries
        .backlog()
        .then((counts) => {
          this.#counts = counts;
          this.#readAt = this.clock.now().getTime();
        })
        .finally(() => (this.#reading = undefined));
      await this.#reading;
    }
    return this.#counts;
  }

  add(destinationId: string, n: number): void {
    this.#counts.set(destinationId, (this.#counts.get(destinationId) ?? 0) + n);
  }
}
