/**
 * The durable state of ssf-bridge: accepted events, the outbox of deliveries, dead letters,
 * checkpoints, dedupe keys, scheduled events, SSF streams and their poll queues, and leader
 * leases. Two implementations (SQLite and PostgreSQL) pass one contract test suite.
 *
 * Every time is passed in by the caller (from the injected clock) rather than read from the
 * database, so tests control time and all instances sharing a database agree on one rule.
 */
import type { Severity, SubjectIdentifier } from '../plugin-api/types.ts';

export type StoreDriver = 'sqlite' | 'postgres';

/** Checkpoint name used when a connector does not name one. */
export const DEFAULT_CHECKPOINT_NAME = 'default';

/** The destination id under which an SSF stream's deliveries are queued. */
export function streamDestinationId(streamId: string): string {
  return `stream:${streamId}`;
}

/** The stream id of a stream destination id, or undefined for an outbound instance. */
export function streamIdOf(destinationId: string): string | undefined {
  return destinationId.startsWith('stream:') ? destinationId.slice('stream:'.length) : undefined;
}

/** An event as accepted by the pipeline: validated, enriched and made durable. */
export interface StoredEvent {
  id: string;
  instanceId: string;
  sourceRecordId: string;
  /** Event type URI. */
  type: string;
  subject: SubjectIdentifier;
  /** Canonical key of the subject (after enrichment); routing and ordering use it. */
  subjectKey: string;
  claims: Record<string, unknown>;
  txn: string;
  occurredAt: Date;
  acceptedAt: Date;
  severity?: Severity | undefined;
}

export type DeliveryState = 'pending' | 'leased' | 'delivered' | 'dead';

/** One row of the outbox to write: an event for one destination. */
export interface NewDelivery {
  destinationId: string;
  jti: string;
  /** Deliveries with the same key are delivered one at a time, in acceptance order. */
  orderingKey: string;
}

export interface NewEvent {
  event: StoredEvent;
  /** (instance, source record, type) key; absent means the event is never de-duplicated. */
  dedupeKey?: string;
  /** Outbox rows, written now (ignored when `releaseAt` is set: routing runs at release). */
  deliveries: NewDelivery[];
  /** Holds the event until this time; its deliveries are written by `releaseSchedules`. */
  releaseAt?: Date;
}

export interface CheckpointWrite {
  instanceId: string;
  name: string;
  value: unknown;
  /**
   * Compare-and-set: the batch is written only if the stored checkpoint still equals
   * `expected.value` (undefined: none is stored). Otherwise it fails, writing nothing, with a
   * RetryableError coded SSF_ERR_CHECKPOINT_CONFLICT.
   */
  expected?: { value: unknown };
}

export interface AcceptBatch {
  now: Date;
  events: NewEvent[];
  /** Dedupe keys written by this batch expire at this time. */
  dedupeExpiresAt: Date;
  checkpoint?: CheckpointWrite;
}

export type AcceptItemResult =
  | { status: 'accepted'; id: string }
  /** A non-expired dedupe key (or an earlier item of the same batch) already names an event. */
  | { status: 'duplicate'; id: string };

export interface AcceptOutcome {
  /** One entry per input event, in input order. */
  results: AcceptItemResult[];
}

export interface ScheduleRelease {
  eventId: string;
  deliveries: NewDelivery[];
}

export interface LastError {
  /** Error class: retryable, permanent, not_connected, config. */
  class: string;
  code: string;
  message: string;
  /** HTTP status or equivalent, when the destination answered. */
  status?: number;
}

/** A delivery handed to a worker under a lease. */
export interface LeasedDelivery {
  id: number;
  destinationId: string;
  jti: string;
  /** Attempts so far, including the one this lease is for. */
  attempts: number;
  /**
   * Leases of this row in a row that expired without a recorded outcome (the worker holding it
   * was killed, crashed or stalled), counting the one that ended when this lease was taken.
   * A recorded retry clears it; so does a replay.
   */
  interruptedAttempts: number;
  enqueuedAt: Date;
  /**
   * When the row was first leased for an attempt (this lease, for a first attempt): `max_age`
   * counts from here, so time spent queued untried (a paused stream, a held destination, a
   * failing row ahead of it on its ordering key) never ages a delivery.
   */
  firstAttemptAt: Date;
  /** Fences every completion: a worker whose lease expired cannot overwrite a newer one. */
  leaseToken: string;
  event: StoredEvent;
}

export interface DeliveryRecord {
  id: number;
  eventId: string;
  destinationId: string;
  jti: string;
  orderingKey: string;
  state: DeliveryState;
  attempts: number;
  /** Next attempt (pending) or lease expiry (leased). */
  dueAt: Date;
  leaseOwner?: string | undefined;
  enqueuedAt: Date;
  updatedAt: Date;
  /** Set by the lease that counts the first attempt; cleared when attempts go back to 0. */
  firstAttemptAt?: Date | undefined;
  lastAttemptAt?: Date | undefined;
  deliveredAt?: Date | undefined;
  deadAt?: Date | undefined;
  lastError?: LastError | undefined;
  /** The last SET signed for this delivery (kept for dead letters and inspection). */
  setJwt?: string | undefined;
}

export type DeliveryOutcome =
  | { kind: 'delivered'; id: number; leaseToken: string }
  | { kind: 'retry'; id: number; leaseToken: string; dueAt: Date; error: LastError; setJwt?: string }
  | {
      kind: 'dead';
      id: number;
      leaseToken: string;
      error: LastError;
      setJwt?: string;
      /** The lease that gave up sent nothing: it is not counted as an attempt. */
      notAttempted?: boolean;
    }
  /** Gives the lease back without counting the attempt (shutdown while in flight). */
  | { kind: 'release'; id: number; leaseToken: string };

export interface LeaseRequest {
  destinationId: string;
  owner: string;
  limit: number;
  now: Date;
  leaseMs: number;
}

export interface DeliveryStore {
  /**
   * Leases up to `limit` due deliveries of one destination: pending rows whose next attempt
   * is due and leased rows whose lease expired, skipping rows locked by another instance and
   * any row with an earlier unfinished row of the same ordering key. Counts the attempt.
   */
  lease(request: LeaseRequest): Promise<LeasedDelivery[]>;
  /** Applies outcomes in one transaction; returns how many still held their lease. */
  complete(outcomes: DeliveryOutcome[], now: Date): Promise<number>;
  get(id: number): Promise<DeliveryRecord | undefined>;
  /** Deliveries of one event (all destinations). */
  forEvent(eventId: string): Promise<DeliveryRecord[]>;
  /** Earliest due time of unfinished deliveries of a destination. */
  nextDueAt(destinationId: string): Promise<Date | undefined>;
  /** Unfinished (pending + leased) deliveries per destination. */
  backlog(): Promise<Map<string, number>>;
  /** Drops unfinished deliveries of a destination that no longer exists (a deleted stream). */
  discardUnfinished(destinationId: string): Promise<number>;
}

export interface DeadLetter {
  id: number;
  destinationId: string;
  jti: string;
  eventId: string;
  eventType: string;
  instanceId: string;
  sourceRecordId: string;
  subject: SubjectIdentifier;
  attempts: number;
  lastError?: LastError | undefined;
  setJwt?: string | undefined;
  enqueuedAt: Date;
  deadAt: Date;
  /**
   * The letter's place in the order letters died: each death takes the next number, and deaths
   * commit in that order, so a letter that dies after a page was read sorts after that page.
   * A replayed letter that dies again takes a new one.
   */
  deadSeq: number;
}

export interface DeadLetterFilter {
  ids?: number[];
  destinationId?: string;
  /** Event type URI. */
  eventType?: string;
  /** Dead-lettered at or after. */
  since?: Date;
  /** Dead-lettered before. */
  until?: Date;
}

export interface DeadLetterPage {
  /** Returns letters that died after the one with this `deadSeq` (keyset paging). */
  afterDeadSeq?: number;
  limit?: number;
}

export interface DeadLetterStore {
  /** Letters in the order they died (`deadSeq`), earliest first. */
  list(filter?: DeadLetterFilter, page?: DeadLetterPage): Promise<DeadLetter[]>;
  get(id: number): Promise<DeadLetter | undefined>;
  count(filter?: DeadLetterFilter): Promise<number>;
  /** Puts matching letters back in the outbox (same jti, attempts reset, due now). */
  replay(filter: DeadLetterFilter, now: Date): Promise<number>;
  purge(filter: DeadLetterFilter): Promise<number>;
}

export interface CheckpointStore {
  get(instanceId: string, name?: string): Promise<unknown>;
  set(instanceId: string, name: string, value: unknown, now: Date): Promise<void>;
  delete(instanceId: string, name?: string): Promise<boolean>;
  list(instanceId: string): Promise<Array<{ name: string; value: unknown; updatedAt: Date }>>;
}

export interface EventStore {
  get(id: string): Promise<StoredEvent | undefined>;
  /** Events on hold whose release time has come, oldest first. */
  dueSchedules(now: Date, limit: number): Promise<Array<{ event: StoredEvent; releaseAt: Date }>>;
  /**
   * Writes the deliveries of released events. Each event is released once: a schedule already
   * released (by another instance) is skipped. Returns the ids released by this call.
   */
  releaseSchedules(releases: ScheduleRelease[], now: Date): Promise<string[]>;
  /** Which of these dedupe keys are held by a non-expired entry, and by which event. */
  findDuplicates(keys: string[], now: Date): Promise<Map<string, string>>;
}

export type StreamStatus = 'enabled' | 'paused' | 'disabled';

export interface StreamRecord {
  streamId: string;
  clientId: string;
  /** The SSF stream configuration as the transmitter stores it. */
  config: Record<string, unknown>;
  status: StreamStatus;
  statusReason?: string | undefined;
  createdAt: Date;
  updatedAt: Date;
}

export interface StreamSubjectRecord {
  subjectKey: string;
  subject: SubjectIdentifier;
  /** False records an explicit removal, which matters for streams that get all subjects. */
  included: boolean;
  addedAt: Date;
}

export interface PollItem {
  jti: string;
  eventId: string;
  setJwt: string;
}

export interface PollRequest {
  max: number;
  now: Date;
  /** A SET returned but not acknowledged is returned again after this long. */
  redeliverAfterMs: number;
}

export interface PollResult {
  sets: Array<{ jti: string; setJwt: string }>;
  moreAvailable: boolean;
}

export interface SetError {
  err: string;
  description?: string;
}

export type DefaultSubjects = 'ALL' | 'NONE';

export interface StreamStore {
  create(
    stream: Omit<StreamRecord, 'createdAt' | 'updatedAt' | 'statusReason'> & { statusReason?: string },
    now: Date,
  ): Promise<StreamRecord>;
  get(streamId: string): Promise<StreamRecord | undefined>;
  /**
   * Streams oldest first (by created_at, then stream_id), of one client or status when given;
   * `after` (the last stream of the previous page) and `limit` page through them by key.
   */
  list(filter?: {
    clientId?: string;
    status?: StreamStatus;
    after?: { createdAt: Date; streamId: string };
    limit?: number;
  }): Promise<StreamRecord[]>;
  /**
   * Undefined when the stream does not exist. With `expectedRev`, writes only while the stored
   * config's `internal.rev` still equals it; otherwise nothing is written and it throws a
   * RetryableError coded SSF_ERR_STREAM_CONFLICT (another instance changed the stream first).
   */
  update(
    streamId: string,
    patch: {
      config?: Record<string, unknown>;
      status?: StreamStatus;
      statusReason?: string | null;
      expectedRev?: string;
    },
    now: Date,
  ): Promise<StreamRecord | undefined>;
  /** Deletes the stream, its subjects, its poll queue and its unfinished deliveries. */
  delete(streamId: string): Promise<boolean>;
  putSubject(
    streamId: string,
    subject: { subjectKey: string; subject: SubjectIdentifier; included: boolean },
    now: Date,
  ): Promise<void>;
  deleteSubject(streamId: string, subjectKey: string): Promise<boolean>;
  listSubjects(
    streamId: string,
    page?: { afterKey?: string; limit?: number },
  ): Promise<StreamSubjectRecord[]>;
  /** Adds SETs to a stream's poll queue; a jti already queued is not added twice. */
  enqueuePoll(streamId: string, items: PollItem[], now: Date): Promise<number>;
  poll(streamId: string, request: PollRequest): Promise<PollResult>;
  /** Removes acknowledged SETs; returns the jtis that were queued. */
  ack(streamId: string, jtis: string[]): Promise<string[]>;
  /** Records the receiver's setErrs; those SETs leave the queue and are kept for inspection. */
  recordErrors(streamId: string, errors: Record<string, SetError>, now: Date): Promise<number>;
  /** The newest `limit` (1,000 by default) SETs reported in setErrs, oldest first. */
  listErrors(streamId: string, limit?: number): Promise<Array<{ jti: string; error: SetError; at: Date }>>;
  pollQueueDepth(streamId: string): Promise<number>;
}

export interface LeaseHolder {
  holder: string;
  expiresAt: Date;
}

/** Leader leases: at most one live holder per name; an expired lease may be taken over. */
export interface LeaderLeaseStore {
  /** Acquires the lease, or renews it when `holder` already has it. */
  tryAcquire(name: string, holder: string, ttlMs: number, now: Date): Promise<boolean>;
  release(name: string, holder: string): Promise<void>;
  current(name: string, now: Date): Promise<LeaseHolder | undefined>;
}

/**
 * Ids that may be used once within their lifetime, such as the `jti` of a DPoP proof
 * (RFC 9449 §11.1): kept in the store so that every instance sharing it refuses a second use.
 */
export interface OneTimeIdStore {
  /**
   * Records the first use of `id` in `scope` until `expiresAt`. Resolves to false when the id
   * was used before and that use has not expired yet.
   */
  claim(scope: string, id: string, expiresAt: Date, now: Date): Promise<boolean>;
  /** Whether `id` was claimed in `scope` and that use has not expired at `now`. */
  used(scope: string, id: string, now: Date): Promise<boolean>;
}

export interface StoreStats {
  /** Unfinished deliveries per destination. */
  backlog: Record<string, number>;
  /** Dead letters per destination. */
  deadLetters: Record<string, number>;
  /** Events on hold until a future release time. */
  scheduled: number;
  /** Unacknowledged SETs per stream poll queue. */
  pollQueues: Record<string, number>;
}

/** How many reported SETs a stream's error list shows at most (the newest). */
export const LIST_ERRORS_LIMIT = 1000;

export interface PruneRequest {
  now: Date;
  /** Delivered rows finished before this time are deleted, with events nothing refers to. */
  deliveredBefore: Date;
  /** At most this many rows of each kind per call, so one call never holds a long lock. */
  limit: number;
}

export interface PruneResult {
  deliveries: number;
  events: number;
  dedupeKeys: number;
  /** Expired one-time ids. */
  oneTimeIds: number;
  /** SETs receivers reported in setErrs, kept for operators until deliveredBefore. */
  setErrors: number;
}

export interface Store {
  readonly driver: StoreDriver;
  /**
   * Writes events with their deliveries, schedules and dedupe keys, and the checkpoint, in one
   * transaction: either all of it is durable when this resolves, or none of it is.
   */
  accept(batch: AcceptBatch): Promise<AcceptOutcome>;
  readonly events: EventStore;
  readonly deliveries: DeliveryStore;
  readonly deadLetters: DeadLetterStore;
  readonly checkpoints: CheckpointStore;
  readonly streams: StreamStore;
  readonly leases: LeaderLeaseStore;
  readonly oneTimeIds: OneTimeIdStore;
  readonly operator: OperatorStore;
  stats(): Promise<StoreStats>;
  prune(request: PruneRequest): Promise<PruneResult>;
  /** Highest migration applied. */
  schemaVersion(): Promise<number>;
  close(): Promise<void>;
}

// ─── Operator queries (admin API, console) ─────────────────────────────────────────────────────

/** Keyset position in a newest-first event listing. */
export interface EventCursor {
  acceptedAt: Date;
  id: string;
}

export interface EventQuery {
  instanceId?: string;
  /** Event type URI. */
  type?: string;
  /** Accepted at or after. */
  since?: Date;
  /** Accepted before. */
  until?: Date;
  /**
   * Events whose subject mentions any of these texts (case-insensitive substring of the stored
   * subject). A coarse filter: callers match identifiers exactly on what comes back.
   */
  subjectMentions?: string[];
  /** Events strictly older than this position. */
  before?: EventCursor;
  limit: number;
}

export interface DeliveryQuery {
  destinationId?: string;
  state?: DeliveryState;
  eventId?: string;
  /** Rows with an id lower than this (newest first). */
  beforeId?: number;
  limit: number;
}

/** Delivery health of one destination over a window. */
export interface DestinationHealth {
  destinationId: string;
  /** Delivered within the window. */
  delivered: number;
  /** Dead-lettered within the window. */
  dead: number;
  /** Unfinished now (pending + leased). */
  backlog: number;
  /** Unfinished rows that have failed at least once. */
  retrying: number;
  /** Mean time from acceptance to delivery of the rows delivered in the window. */
  meanLatencyMs?: number | undefined;
  lastDeliveredAt?: Date | undefined;
}

/** Counts per time bucket, for throughput and failure charts. */
export interface ActivityBucket {
  start: Date;
  accepted: number;
  delivered: number;
  dead: number;
}

export interface NewAuditEntry {
  at: Date;
  /** Name of the admin token that acted. */
  actor: string;
  role: string;
  /** What was done, e.g. `dead_letters.replay`. */
  action: string;
  /** What it was done to, e.g. a stream id or a filter. */
  target: string;
  detail: Record<string, unknown>;
}

export interface AuditEntry extends NewAuditEntry {
  id: number;
}

export interface AuditQuery {
  actor?: string;
  action?: string;
  since?: Date;
  until?: Date;
  beforeId?: number;
  limit: number;
}

/** Read-mostly queries for operators, plus the audit log of their write actions. */
export interface OperatorStore {
  listEvents(query: EventQuery): Promise<StoredEvent[]>;
  listDeliveries(query: DeliveryQuery): Promise<DeliveryRecord[]>;
  /** Deliveries of several events at once (timeline pages). */
  deliveriesOf(eventIds: string[]): Promise<DeliveryRecord[]>;
  destinationHealth(since: Date): Promise<DestinationHealth[]>;
  /** Buckets of `bucketMs` from `since` (aligned to it), oldest first; empty buckets included. */
  activity(since: Date, until: Date, bucketMs: number): Promise<ActivityBucket[]>;
  recordAudit(entry: NewAuditEntry): Promise<AuditEntry>;
  /** Newest first. */
  listAudit(query: AuditQuery): Promise<AuditEntry[]>;
}
