/**
 * Stream management (SSF 1.0 §8.1): configuration CRUD, status, subjects and verification, for
 * one authenticated receiver at a time. Each stream belongs to the client that created it;
 * another client's stream is answered exactly like one that does not exist (404, §8).
 */
import { randomUUID } from 'node:crypto';
import type { SubjectIdentifier } from '../plugin-api/types.ts';
import type { StreamRecord, StreamStatus } from '../storage/types.ts';
import { streamDestinationId } from '../storage/types.ts';
import { isStreamConflict } from '../storage/stream-conflict.ts';
import { validateTargetUrl, type Resolver, type SsrfReason } from '../http/ssrf.ts';
import { formatProblems } from '../ssf/errors.ts';
import { normaliseSubject, validateSubject } from '../ssf/subjects.ts';
import { POLL_METHOD, PUSH_METHOD } from './config.ts';
import type { TransmitterContext } from './context.ts';
import type { ControlChannel } from './control.ts';
import { TransmitterHttpError, badRequest, streamNotFound } from './errors.ts';
import type { Principal } from './auth.ts';
import { controlQueueId, purgeQueue, verificationQueueId } from './queues.ts';
import { subjectStorageKey } from './routing.ts';
import {
  mergeFields,
  readStreamRequest,
  renderStream,
  replaceFields,
  requireObject,
  requireStreamId,
  storedConfig,
  transmitterFieldMismatch,
  type DeliveryConfig,
  type RenderedStream,
  type StoredStreamConfig,
} from './stream-model.ts';
import type { StreamSync } from './sync.ts';

export const STATUSES: readonly StreamStatus[] = ['enabled', 'paused', 'disabled'];
const MAX_STATE_LENGTH = 1024;
const MAX_REASON_LENGTH = 1024;
/** A stream's activity is written at most once per this share of inactivity_timeout. */
const ACTIVITY_WRITE_SHARE = 10;

export interface StatusView {
  stream_id: string;
  status: StreamStatus;
  reason?: string;
}

export type StatusInitiator = 'receiver' | 'transmitter';

export interface StreamServiceOptions {
  ctx: TransmitterContext;
  sync: StreamSync;
  control: ControlChannel;
  /** DNS for the SSRF check of push URLs (tests pin answers). */
  resolve?: Resolver;
}

const ADDRESS_REFUSALS: ReadonlySet<SsrfReason> = new Set<SsrfReason>([
  'unresolvable',
  'loopback',
  'private',
  'link_local',
  'cgnat',
  'unspecified',
  'multicast',
  'reserved',
  'metadata',
]);

/**
 * What a receiver is told about a refused push URL: the URL's own faults as they are, and for
 * its host's addresses one answer whatever the DNS said (no address, a private one, which one),
 * so the answers tell nothing about internal names.
 */
function pushUrlRefusal(reason: SsrfReason): string {
  if (ADDRESS_REFUSALS.has(reason)) {
    return 'its host is not a public address this transmitter delivers to (it resolves to a private, loopback, link-local or otherwise reserved address, or does not resolve)';
  }
  switch (reason) {
    case 'unsupported_scheme':
    case 'insecure_scheme':
      return 'it must be an https URL';
    case 'credentials_in_url':
      return 'it must not carry a user name or password';
    default:
      return 'it is not a valid absolute URL';
  }
}

function statusView(record: StreamRecord): StatusView {
  return {
    stream_id: record.streamId,
    status: record.status,
    ...(record.statusReason ? { reason: record.statusReason } : {}),
  };
}

/** Runs of one stream change in all when other instances keep writing the stream first. */
const STREAM_WRITE_TRIES = 4;

function withRev(config: StoredStreamConfig): StoredStreamConfig {
  return { ...config, internal: { ...config.internal, rev: randomUUID() } };
}

export class StreamService {
  readonly #o: StreamServiceOptions;
  readonly #locks = new Map<string, Promise<unknown>>();
  readonly #lastActivity = new Map<string, number>();

  constructor(options: StreamServiceOptions) {
    this.#o = options;
  }

  get #ctx(): TransmitterContext {
    return this.#o.ctx;
  }

  /**
   * Runs `fn` after every earlier mutation of the same key in this process. Other instances are
   * not in that queue: a stream is written only while its revision is the one `fn` read, and when
   * another instance wrote it first, `fn` runs again on what that instance wrote.
   */
  async #locked<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(key) ?? Promise.resolve();
    const attempt = async (): Promise<T> => {
      for (let run = 1; ; run += 1) {
        try {
          return await fn();
        } catch (err) {
          if (!isStreamConflict(err) || run >= STREAM_WRITE_TRIES) throw err;
        }
      }
    };
    const run = previous.catch(() => undefined).then(attempt);
    this.#locks.set(key, run);
    try {
      return await run;
    } finally {
      if (this.#locks.get(key) === run) this.#locks.delete(key);
    }
  }

  render(record: StreamRecord): RenderedStream {
    return renderStream(
      record.streamId,
      storedConfig(record.config),
      this.#ctx.targetOf(record.clientId).render,
    );
  }

  /** The caller's stream, or 404 when it does not exist or belongs to another client. */
  async owned(principal: Principal, streamId: string): Promise<StreamRecord> {
    const record = await this.#ctx.store.streams.get(streamId);
    if (!record || record.clientId !== principal.clientId) throw streamNotFound(streamId);
    return record;
  }

  /**
   * Refuses a push endpoint_url the SSRF policy does not allow. The receiver is told the kind of
   * refusal only: what a name resolves to, or whether it resolves at all, is never echoed, or any
   * client with ssf.manage could map internal DNS through the answers. The details go to the log.
   */
  async #checkPushUrl(
    delivery: DeliveryConfig | undefined,
    context: { clientId: string; streamId?: string },
  ): Promise<void> {
    if (delivery?.method !== PUSH_METHOD) return;
    const resolve = this.#o.resolve;
    const policy = resolve ? { ...this.#ctx.config.ssrf, resolve } : this.#ctx.config.ssrf;
    const verdict = await validateTargetUrl(delivery.endpoint_url, policy);
    if (verdict.ok) return;
    this.#ctx.logger.info(
      { ...context, reason: verdict.reason, detail: verdict.message },
      'push endpoint_url refused by the SSRF policy',
    );
    throw badRequest(
      `delivery.endpoint_url refused: ${pushUrlRefusal(verdict.reason)}`,
      'SSF_ERR_TRANSMITTER_PUSH_URL_REFUSED',
    );
  }

  async #save(
    record: StreamRecord,
    config: StoredStreamConfig,
    status?: { status: StreamStatus; reason?: string },
  ): Promise<StreamRecord> {
    const { store, clock } = this.#ctx;
    const updated = await store.streams.update(
      record.streamId,
      {
        config: config as unknown as Record<string, unknown>,
        ...(status ? { status: status.status, statusReason: status.reason ?? null } : {}),
        expectedRev: storedConfig(record.config).internal.rev,
      },
      clock.now(),
    );
    if (!updated) throw streamNotFound(record.streamId);
    this.#o.sync.apply(updated);
    await this.#o.sync.markChanged();
    return updated;
  }

  // ------------------------------------------------------------------------------------------
  // Configuration (§8.1.1)

  async create(principal: Principal, body: unknown): Promise<RenderedStream> {
    const request = readStreamRequest(body, 'create');
    const delivery = request.fields.delivery ?? { method: POLL_METHOD };
    await this.#checkPushUrl(delivery, { clientId: principal.clientId });
    return this.#locked(`client:${principal.clientId}`, async () => {
      const { store, clock, config } = this.#ctx;
      if (
        config.streams.per_receiver === 'one' &&
        (await store.streams.list({ clientId: principal.clientId })).length > 0
      ) {
        throw new TransmitterHttpError(
          409,
          'conflict',
          'this receiver already has a stream and this transmitter allows one per receiver; read it with GET and change it with PATCH or PUT, or DELETE it first',
          'SSF_ERR_TRANSMITTER_STREAM_EXISTS',
        );
      }
      const now = clock.now();
      const stored: StoredStreamConfig = {
        aud: principal.audience,
        ...(request.fields.events_requested ? { events_requested: request.fields.events_requested } : {}),
        delivery,
        ...(request.fields.description !== undefined ? { description: request.fields.description } : {}),
        internal: { rev: randomUUID(), last_activity_at: now.getTime() },
      };
      const record = await store.streams.create(
        {
          streamId: randomUUID(),
          clientId: principal.clientId,
          config: stored as unknown as Record<string, unknown>,
          status: 'enabled',
        },
        now,
      );
      this.#o.sync.apply(record);
      await this.#o.sync.markChanged();
      this.#ctx.logger.info(
        { streamId: record.streamId, clientId: principal.clientId, method: delivery.method },
        'stream created',
      );
      if (config.streams.verify_on_create) await this.#o.control.verification(record);
      return this.render(record);
    });
  }

  async read(principal: Principal, streamId: string): Promise<RenderedStream> {
    const record = await this.owned(principal, streamId);
    await this.touch(record);
    return this.render(record);
  }

  async list(principal: Principal): Promise<RenderedStream[]> {
    const records = await this.#ctx.store.streams.list({ clientId: principal.clientId });
    return records.map((r) => this.render(r));
  }

  /** PATCH (merge) and PUT (replace), SSF 1.0 §8.1.1.3–4. */
  async update(principal: Principal, body: unknown, mode: 'update' | 'replace'): Promise<RenderedStream> {
    const request = readStreamRequest(body, mode);
    const streamId = request.streamId as string;
    // The stream first (404 for another client's): a URL is checked, and its host resolved,
    // only for the stream's own receiver. Outside the lock, so a slow DNS answer holds up no
    // other change of the stream; the lock reads the stream again.
    await this.owned(principal, streamId);
    await this.#checkPushUrl(request.fields.delivery, { clientId: principal.clientId, streamId });
    const saved = await this.#locked(`stream:${streamId}`, async () => {
      const record = await this.owned(principal, streamId);
      const mismatch = transmitterFieldMismatch(request, this.render(record));
      if (mismatch) {
        throw badRequest(
          `${mismatch} is set by the transmitter and must equal its current value when sent`,
          'SSF_ERR_TRANSMITTER_FIELD_MISMATCH',
        );
      }
      const current = storedConfig(record.config);
      const next = withRev(
        mode === 'update' ? mergeFields(current, request.fields) : replaceFields(current, request.fields),
      );
      const saved = await this.#save(record, next);
      if (current.delivery.method !== next.delivery.method) {
        this.#ctx.logger.info(
          { streamId, clientId: principal.clientId, from: current.delivery.method, to: next.delivery.method },
          'stream delivery method changed; SETs not yet delivered follow it',
        );
      }
      return saved;
    });
    // Poll to push: SETs still waiting for a poll are pushed first, in order (while the stream is
    // enabled). Push to poll needs nothing: undelivered SETs are still in the outbox, and are
    // queued for polling when they are next attempted.
    if (storedConfig(saved.config).delivery.method === PUSH_METHOD) this.#o.control.drain(streamId);
    await this.touch(saved);
    return this.render(saved);
  }

  async delete(principal: Principal, streamId: string): Promise<void> {
    await this.#locked(`stream:${streamId}`, async () => {
      await this.owned(principal, streamId);
      await this.remove(streamId);
      this.#ctx.logger.info({ streamId, clientId: principal.clientId }, 'stream deleted');
    });
  }

  /** Deletes a stream with its subjects, queues and undelivered events. */
  async remove(streamId: string): Promise<void> {
    const { store, clock } = this.#ctx;
    await store.streams.delete(streamId);
    await purgeQueue(store.streams, controlQueueId(streamId), clock);
    await purgeQueue(store.streams, verificationQueueId(streamId), clock);
    this.#lastActivity.delete(streamId);
    this.#o.sync.forget(streamId);
    await this.#o.sync.markChanged();
  }

  // ------------------------------------------------------------------------------------------
  // Status (§8.1.2)

  async readStatus(principal: Principal, streamId: string): Promise<StatusView> {
    const record = await this.owned(principal, streamId);
    await this.touch(record);
    return statusView(record);
  }

  async updateStatus(principal: Principal, body: unknown, queryStreamId: unknown): Promise<StatusView> {
    const input = requireObject(body);
    // Drafts before SSF 1.0 let a receiver set the status of one subject; SSF 1.0 §8.1.2 has a
    // status per stream only. Ignoring the subject would pause or disable (and purge) the whole
    // stream for a receiver that meant one subject.
    if (input.subject !== undefined) {
      throw badRequest(
        'SSF 1.0 has no per-subject status (§8.1.2): the status applies to the whole stream; send stream_id and status without subject, or remove the subject with the remove-subject endpoint',
        'SSF_ERR_TRANSMITTER_STATUS_SUBJECT',
      );
    }
    const streamId = requireStreamId(input.stream_id ?? queryStreamId);
    const status = input.status;
    if (typeof status !== 'string' || !(STATUSES as readonly string[]).includes(status)) {
      throw badRequest(
        'status must be one of enabled, paused, disabled',
        'SSF_ERR_TRANSMITTER_STATUS_INVALID',
      );
    }
    if (input.reason !== undefined && typeof input.reason !== 'string')
      throw badRequest('reason must be a string');
    const reason = typeof input.reason === 'string' ? input.reason.slice(0, MAX_REASON_LENGTH) : undefined;
    const record = await this.changeStatus(streamId, status as StreamStatus, reason, 'receiver', {
      owner: principal.clientId,
    });
    await this.touch(record);
    return statusView(record);
  }

  /**
   * Changes a stream's status. Paused streams keep their events in the outbox (bounded by
   * paused_hold_limit), and their verification events in their verification queue, and get them
   * in order once enabled; disabling drops what is waiting, verification events included (SSF 1.0
   * §8.1.2: a disabled stream holds nothing), but not the stream-updated event announcing it.
   * A change the transmitter makes (operator, inactivity, failed verification) is announced with
   * a stream-updated event (SSF 1.0 §8.1.2, §8.1.5), queued once the new status is written and
   * only then: a write that another instance beat (run again here on what it wrote) or that
   * fails for good announces nothing, and a change is announced once however often it was
   * tried. When stopping, the announcement is queued before anything else the change does
   * (dropping a disabled stream's queue), and no event SET is handed out once the status is
   * written (StreamDelivery reads it), so the receiver gets none after the announcement but a
   * push already under way; when re-enabling, it is queued after the held event SETs are woken,
   * and before a push stream's held verification SETs are pushed.
   *
   * Ownership (`owner`) and any precondition (`onlyIf`) are checked on the stream as read under
   * the stream's lock; when `onlyIf` says no, nothing changes and the stream is returned as it is.
   */
  async changeStatus(
    streamId: string,
    status: StreamStatus,
    reason: string | undefined,
    initiator: StatusInitiator,
    guard: { owner?: string; onlyIf?: (record: StreamRecord) => boolean } = {},
  ): Promise<StreamRecord> {
    return this.#locked(`stream:${streamId}`, async () => {
      const { store, clock, logger, metrics, signal } = this.#ctx;
      const record = await store.streams.get(streamId);
      if (!record || (guard.owner !== undefined && record.clientId !== guard.owner))
        throw streamNotFound(streamId);
      if (guard.onlyIf && !guard.onlyIf(record)) return record;
      const previous = record.status;
      const announce = initiator === 'transmitter' && status !== previous;
      const saved = await this.#save(record, withRev(storedConfig(record.config)), {
        status,
        ...(reason ? { reason } : {}),
      });
      if (announce && status !== 'enabled') await this.#announce(saved, status, reason);
      if (status === previous) return saved;
      metrics.statusChanges.inc({ status, initiator });
      logger.info({ streamId, from: previous, to: status, reason, initiator }, 'stream status changed');
      if (status === 'disabled') {
        const dropped =
          (await purgeQueue(store.streams, streamId, clock)) +
          (await store.deliveries.discardUnfinished(streamDestinationId(streamId)));
        if (dropped > 0) metrics.dropped.inc({ reason: 'stream_disabled' }, dropped);
        const verifications = await purgeQueue(store.streams, verificationQueueId(streamId), clock);
        if (verifications > 0)
          logger.info({ streamId, verifications }, 'verification events of a disabled stream dropped');
      }
      if (status === 'enabled') {
        signal.notify(streamId);
        try {
          if (announce) await this.#announce(saved, status, reason);
        } finally {
          // A push stream may hold verification SETs held while it was paused, and SETs queued
          // for polling before it switched to push: pushed after the announcement, as a poll
          // hands them out after it.
          if (storedConfig(saved.config).delivery.method === PUSH_METHOD) this.#o.control.drain(streamId);
        }
      }
      return saved;
    });
  }

  /** Queues the stream-updated event of a status change already written. */
  async #announce(record: StreamRecord, status: StreamStatus, reason: string | undefined): Promise<void> {
    try {
      await this.#o.control.streamUpdated(record, status, reason);
    } catch (err) {
      // Not a conflict (those come from the status write, before this): the status stays
      // changed; say so loudly, as the receiver was not told.
      this.#ctx.logger.error(
        { err, streamId: record.streamId, status },
        'stream status changed, but its stream-updated event could not be queued',
      );
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Subjects (§8.1.3)

  #readSubjectBody(body: unknown): { streamId: string; subject: SubjectIdentifier; verified: boolean } {
    const input = requireObject(body);
    const streamId = requireStreamId(input.stream_id);
    if (input.subject === undefined)
      throw badRequest('subject is required', 'SSF_ERR_TRANSMITTER_SUBJECT_INVALID');
    const checked = validateSubject(input.subject, { lenient: true, path: 'subject' });
    if (!checked.ok)
      throw badRequest(formatProblems(checked.problems), 'SSF_ERR_TRANSMITTER_SUBJECT_INVALID');
    if (input.verified !== undefined && typeof input.verified !== 'boolean') {
      throw badRequest('verified must be true or false', 'SSF_ERR_TRANSMITTER_SUBJECT_INVALID');
    }
    return { streamId, subject: checked.subject, verified: input.verified !== false };
  }

  #isStreamSubject(streamId: string, subject: SubjectIdentifier): boolean {
    return subject.format === 'opaque' && subject.id === streamId;
  }

  /** Add subject (§8.1.3.2): 200. A subject added with verified=false may be ignored by policy. */
  async addSubject(principal: Principal, body: unknown): Promise<void> {
    const { streamId, subject, verified } = this.#readSubjectBody(body);
    const record = await this.#locked(`stream:${streamId}`, async () => {
      const found = await this.owned(principal, streamId);
      if (this.#isStreamSubject(streamId, subject)) return found;
      if (!verified && this.#ctx.config.streams.unverified_subjects === 'ignore') return found;
      await this.#putSubject(found, subject, true);
      return found;
    });
    await this.touch(record);
  }

  /** Remove subject (§8.1.3.3): 204, also for a subject never added (no probing, §9.1). */
  async removeSubject(principal: Principal, body: unknown): Promise<void> {
    const { streamId, subject } = this.#readSubjectBody(body);
    // Read inside the lock: what is written back must be the stream as it is now, not a copy
    // from before a PATCH or PUT that ran while this call waited for the lock.
    const record = await this.#locked(`stream:${streamId}`, async () => {
      const found = await this.owned(principal, streamId);
      if (this.#isStreamSubject(streamId, subject)) {
        throw badRequest(
          "a stream's own subject cannot be removed (SSF 1.0 §8.1.3)",
          'SSF_ERR_TRANSMITTER_SUBJECT_IMPLICIT',
        );
      }
      if (this.#ctx.config.streams.default_subjects === 'ALL') {
        await this.#putSubject(found, subject, false);
        return found;
      }
      const key = subjectStorageKey(normaliseSubject(subject));
      if (await this.#ctx.store.streams.deleteSubject(streamId, key)) {
        this.#ctx.index.deleteSubject(streamId, key);
        await this.#publishSubjects(found);
      }
      return found;
    });
    await this.touch(record);
  }

  /** Writes a subject of the stream; returns the stream as written after it, when known. */
  async #putSubject(
    record: StreamRecord,
    subject: SubjectIdentifier,
    included: boolean,
  ): Promise<StreamRecord | undefined> {
    const { store, clock, index, config } = this.#ctx;
    const canonical = normaliseSubject(subject);
    const key = subjectStorageKey(canonical);
    if (
      !index.hasSubject(record.streamId, key) &&
      index.subjectCount(record.streamId) >= config.streams.max_subjects
    ) {
      throw badRequest(
        `this stream already has ${config.streams.max_subjects} subjects, the most one stream may have`,
        'SSF_ERR_TRANSMITTER_SUBJECT_LIMIT',
      );
    }
    await store.streams.putSubject(
      record.streamId,
      { subjectKey: key, subject: canonical, included },
      clock.now(),
    );
    index.putSubject(record.streamId, canonical, included);
    return this.#publishSubjects(record);
  }

  /**
   * Tells the other instances that a stream's subjects changed, once a subject row was written
   * or deleted: they reload a stream's subjects when its revision moves, so the revision must
   * move after the row did. The store has no transaction for the two writes, so the row goes
   * first and the revision after it:
   *
   * - written as `record` (read before the row) said: done;
   * - another instance wrote the stream since `record` was read, maybe before the row: the
   *   revision is written again on the stream read now, after the row;
   * - another instance wrote it since even that read, so after the row: that revision already
   *   came after the row, and every instance that loads it loads the row. Only the shared marker
   *   is moved, in case that write did not move it.
   *
   * Never a conflict for the caller, so a change answered with an error can no longer have left
   * its row behind where only this instance sees it, and one answered 200 reaches every instance.
   */
  async #publishSubjects(record: StreamRecord): Promise<StreamRecord | undefined> {
    try {
      return await this.#save(record, withRev(storedConfig(record.config)));
    } catch (err) {
      if (!isStreamConflict(err)) throw err;
    }
    const fresh = await this.#ctx.store.streams.get(record.streamId);
    if (!fresh) throw streamNotFound(record.streamId);
    try {
      return await this.#save(fresh, withRev(storedConfig(fresh.config)));
    } catch (err) {
      if (!isStreamConflict(err)) throw err;
      await this.#o.sync.markChanged();
      return undefined;
    }
  }

  // ------------------------------------------------------------------------------------------
  // Verification (§8.1.4)

  /**
   * Verification request (§8.1.4): 204, and a verification event for the receiver. A paused
   * stream transmits nothing (§8.1.2): the event waits in its verification queue and is sent, in
   * order, once the stream is enabled. A disabled stream transmits and holds nothing: the request
   * is answered the same (204; SSF 1.0 says nothing of this case, checklist SSF-47, and the OIDF
   * conformance suite expects acceptance) and no event is made. min_verification_interval applies
   * whatever the status.
   */
  async verify(principal: Principal, body: unknown): Promise<void> {
    const input = requireObject(body);
    const streamId = requireStreamId(input.stream_id);
    if (
      input.state !== undefined &&
      (typeof input.state !== 'string' || input.state.length > MAX_STATE_LENGTH)
    ) {
      throw badRequest(`state must be a string of at most ${MAX_STATE_LENGTH} characters`);
    }
    const state = input.state as string | undefined;
    await this.#locked(`stream:${streamId}`, async () => {
      const record = await this.owned(principal, streamId);
      const { config, clock, store, logger } = this.#ctx;
      const stored = storedConfig(record.config);
      const now = clock.now().getTime();
      const last = stored.internal.last_verification_at;
      const interval = config.streams.min_verification_interval;
      if (last !== undefined && now - last < interval) {
        const wait = Math.max(1, Math.ceil((last + interval - now) / 1000));
        throw new TransmitterHttpError(
          429,
          'too_many_requests',
          `verification was requested less than min_verification_interval (${interval / 1000} s) ago; retry in ${wait} s`,
          'SSF_ERR_TRANSMITTER_VERIFICATION_TOO_SOON',
          { 'retry-after': String(wait) },
        );
      }
      const next: StoredStreamConfig = withRev({
        ...stored,
        internal: { ...stored.internal, last_verification_at: now, last_activity_at: now },
      });
      const saved = await store.streams.update(
        streamId,
        { config: next as unknown as Record<string, unknown>, expectedRev: stored.internal.rev },
        clock.now(),
      );
      if (!saved) throw streamNotFound(streamId);
      this.#lastActivity.set(streamId, now);
      if (saved.status === 'disabled') {
        logger.info({ streamId }, 'verification requested of a disabled stream; accepted, none sent');
        return;
      }
      await this.#o.control.verification(saved, state);
    });
  }

  // ------------------------------------------------------------------------------------------
  // Activity (inactivity_timeout, SSF 1.0 §8.1.1)

  /**
   * Records eligible activity on a stream (management calls, polls). Writes are spread out: at
   * most one per tenth of the timeout (ACTIVITY_WRITE_SHARE), which sweepInactive allows for.
   */
  async touch(record: StreamRecord): Promise<void> {
    const timeout = this.#ctx.config.streams.inactivity_timeout;
    if (timeout === undefined) return;
    const { store, clock } = this.#ctx;
    const now = clock.now().getTime();
    const last =
      this.#lastActivity.get(record.streamId) ?? storedConfig(record.config).internal.last_activity_at ?? 0;
    if (now - last < timeout / ACTIVITY_WRITE_SHARE) return;
    this.#lastActivity.set(record.streamId, now);
    await this.#locked(`stream:${record.streamId}`, async () => {
      const fresh = await store.streams.get(record.streamId);
      if (!fresh) return;
      const config = storedConfig(fresh.config);
      // The revision stays (activity changes no routing), but the write still waits for it.
      const next = { ...config, internal: { ...config.internal, last_activity_at: now } };
      await store.streams.update(
        record.streamId,
        { config: next as unknown as Record<string, unknown>, expectedRev: config.internal.rev },
        clock.now(),
      );
    });
  }

  /**
   * Pauses or disables enabled streams that saw no eligible activity for inactivity_timeout.
   * Activity within a tenth of the timeout of the last written one is not written (touch), so
   * a stream is judged inactive only once the written time is older than the timeout and that
   * tenth: never sooner than the timeout after its last activity, on any instance.
   */
  async sweepInactive(): Promise<number> {
    const { config, store, clock } = this.#ctx;
    const timeout = config.streams.inactivity_timeout;
    if (timeout === undefined) return 0;
    const idleFor = timeout + timeout / ACTIVITY_WRITE_SHARE;
    const now = clock.now().getTime();
    const target: StreamStatus = config.streams.inactivity_action === 'pause' ? 'paused' : 'disabled';
    const inactive = (record: StreamRecord) =>
      record.status === 'enabled' &&
      now - (storedConfig(record.config).internal.last_activity_at ?? record.createdAt.getTime()) >= idleFor;
    let changed = 0;
    for (const record of await store.streams.list()) {
      if (!inactive(record)) continue;
      // Judged again under the lock: the receiver may have used, paused or disabled the stream
      // since the list was read, and its choice is not overwritten with an inactivity pause.
      let still = false;
      const onlyIf = (fresh: StreamRecord) => (still = inactive(fresh));
      try {
        await this.changeStatus(record.streamId, target, 'inactivity_timeout', 'transmitter', { onlyIf });
      } catch (err) {
        // Deleted meanwhile: nothing left to pause.
        if (err instanceof TransmitterHttpError && err.status === 404) continue;
        throw err;
      }
      if (still) changed += 1;
    }
    return changed;
  }

  // ------------------------------------------------------------------------------------------
  // Provisioning from the configuration

  /**
   * Creates or brings up to date the streams listed in transmitter.provisioned_streams. The
   * configuration wins for events, delivery and description; status and subjects a receiver
   * changed are kept, and configured subjects are added.
   */
  async provision(): Promise<void> {
    const { config, store, clock, logger } = this.#ctx;
    for (const p of config.provisioned_streams) {
      const delivery: DeliveryConfig =
        p.delivery.method === PUSH_METHOD
          ? {
              method: PUSH_METHOD,
              endpoint_url: p.delivery.endpoint_url,
              ...(p.delivery.authorization_header
                ? { authorization_header: p.delivery.authorization_header.reveal() }
                : {}),
            }
          : { method: POLL_METHOD };
      // Under the stream's lock, like every change a receiver makes: what is read here is what is
      // written back.
      await this.#locked(`stream:${p.stream_id}`, async () => {
        const audience = config.receivers.find((r) => r.client_id === p.client_id)?.audience ?? p.client_id;
        const existing = await store.streams.get(p.stream_id);
        if (existing && existing.clientId !== p.client_id) {
          logger.error(
            { streamId: p.stream_id, clientId: p.client_id, owner: existing.clientId },
            'a provisioned stream id is taken by another client; leaving it as it is',
          );
          return;
        }
        const base: StoredStreamConfig = existing
          ? storedConfig(existing.config)
          : {
              aud: audience,
              delivery,
              internal: { rev: randomUUID(), last_activity_at: clock.now().getTime() },
            };
        const next: StoredStreamConfig = withRev({
          aud: base.aud,
          events_requested: p.events_requested,
          delivery,
          ...(p.description !== undefined ? { description: p.description } : {}),
          internal: { ...base.internal, provisioned: true },
        });
        let record = existing
          ? await this.#save(existing, next)
          : await store.streams.create(
              {
                streamId: p.stream_id,
                clientId: p.client_id,
                config: next as unknown as Record<string, unknown>,
                status: 'enabled',
              },
              clock.now(),
            );
        this.#o.sync.apply(record);
        for (const raw of p.subjects) {
          const checked = validateSubject(raw, {
            lenient: true,
            path: `provisioned_streams[${p.stream_id}].subjects`,
          });
          if (!checked.ok) {
            logger.error(
              { streamId: p.stream_id, problems: checked.problems },
              'skipping an invalid provisioned subject',
            );
            continue;
          }
          // The stream as each subject left it, so the next one's write expects its revision.
          record = (await this.#putSubject(record, checked.subject, true)) ?? record;
        }
        logger.info(
          { streamId: p.stream_id, clientId: p.client_id, created: !existing },
          'provisioned stream ready',
        );
      });
    }
    if (config.provisioned_streams.length > 0) await this.#o.sync.markChanged();
  }
}
