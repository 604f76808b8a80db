/**
 * Event SETs leaving the outbox for a stream, and RFC 8936 polls.
 *
 * The delivery engine calls `deliver` for a stream destination with a signed SET: a push stream
 * POSTs it (RFC 8935), a poll stream queues it for the receiver's next poll. The engine holds a
 * paused stream's deliveries in the outbox (`isPaused`), so they go out in order on resume;
 * `deliver` reads the stream's status from the store and holds a delivery that reaches it anyway.
 */
import { DestinationHeldError } from '../delivery/types.ts';
import { RetryableError } from '../plugin-api/errors.ts';
import type { DeliveryReceipt, SignedSet } from '../plugin-api/types.ts';
import type { StreamRecord } from '../storage/types.ts';
import { PUSH_METHOD } from './config.ts';
import type { TransmitterContext } from './context.ts';
import { streamNotFound, TransmitterHttpError } from './errors.ts';
import type { Principal } from './auth.ts';
import { readPollRequest, type PollRequest } from './poll.ts';
import { classifyPush, type PushClient } from './push.ts';
import { takeControl } from './control.ts';
import { controlQueueId, verificationQueueId } from './queues.ts';
import type { StreamService } from './service.ts';
import { storedConfig } from './stream-model.ts';
import { setErrorLabel } from '../ssf/errors.ts';

/** setErrs entries of one poll logged one by one; the rest are counted. */
const MAX_LOGGED_SET_ERRORS = 20;

export interface PollResponse {
  sets: Record<string, string>;
  moreAvailable: boolean;
}

/**
 * When a delivery found its stream paused is tried again, unless the engine learns of the pause
 * first (and then holds it until the stream is enabled).
 */
const PAUSED_RETRY_MS = 1_000;

/** How long a cached queue depth is trusted before it is counted again. */
const DEPTH_TTL_MS = 1_000;

export interface StreamDeliveryOptions {
  ctx: TransmitterContext;
  service: StreamService;
  push: PushClient;
  /** Re-signs a queued SET whose key has retired since it was queued. */
  refresh(jwt: string): Promise<string>;
  /**
   * Pushes the SETs a push stream still has in its poll queue (queued before it switched from
   * poll); resolves with how many are left.
   */
  handOver(streamId: string): Promise<number>;
  onVerificationFailed(streamId: string, description: string): void;
  /**
   * A delivery found its stream paused in the store: this instance's index may not know yet (a
   * pause made at another instance), so it may sync now rather than at its next round.
   */
  onPausedUnseen?(streamId: string): void;
}

export class StreamDelivery {
  readonly #o: StreamDeliveryOptions;
  readonly #depth = new Map<string, { n: number; at: number }>();

  constructor(options: StreamDeliveryOptions) {
    this.#o = options;
  }

  get #ctx(): TransmitterContext {
    return this.#o.ctx;
  }

  /** Delivers one event SET to a stream; resolves when delivered, throws classified errors. */
  async deliver(streamId: string, set: SignedSet, signal: AbortSignal): Promise<DeliveryReceipt> {
    const { store, metrics } = this.#ctx;
    const record = await store.streams.get(streamId);
    if (!record) {
      metrics.dropped.inc({ reason: 'stream_deleted' });
      return { detail: 'dropped: the stream was deleted' };
    }
    if (record.status === 'disabled') {
      metrics.dropped.inc({ reason: 'stream_disabled' });
      return { detail: 'dropped: the stream is disabled' };
    }
    if (record.status === 'paused') {
      // SSF 1.0 §8.1.2: a paused stream transmits nothing. The engine holds a paused stream's
      // deliveries (isPaused), but by this instance's index, which learns of a pause made at
      // another instance only at its next sync, and a delivery leased just before the pause
      // still gets here. The SET stays in the outbox, counted in the hold, and goes out in
      // order when the stream is enabled; a poll stream's SET is not queued for polling either.
      this.#o.onPausedUnseen?.(streamId);
      throw new DestinationHeldError(`stream ${streamId} is paused; the SET is held until it is enabled`, {
        code: 'SSF_ERR_TRANSMITTER_STREAM_PAUSED',
        retryAfterMs: PAUSED_RETRY_MS,
      });
    }
    const delivery = storedConfig(record.config).delivery;
    if (delivery.method !== PUSH_METHOD) return this.#enqueue(record, set);
    if ((await this.#queueDepth(streamId)) > 0) {
      // SETs queued for polling before the stream switched to push go out first, in order.
      const left = await this.#o.handOver(streamId);
      this.#depth.set(streamId, { n: left, at: Date.now() });
      if (left > 0) {
        throw new RetryableError(
          `stream ${streamId} still holds ${left} SETs queued for polling before it switched to push; they are pushed first`,
          { code: 'SSF_ERR_TRANSMITTER_HANDOVER_PENDING', retryAfterMs: 5_000 },
        );
      }
    }
    return this.#push(streamId, delivery, set, signal);
  }

  async #push(
    streamId: string,
    delivery: { endpoint_url: string; authorization_header?: string },
    set: SignedSet,
    signal: AbortSignal,
  ): Promise<DeliveryReceipt> {
    const { config, clock, metrics, logger } = this.#ctx;
    const answer = await this.#o.push.send(
      delivery.endpoint_url,
      set.jwt,
      delivery.authorization_header,
      signal,
    );
    const error = classifyPush(answer, {
      url: delivery.endpoint_url,
      attempt: set.attempt,
      invalidKeyRetries: config.push.invalid_key_retries,
      invalidKeyRetryAfterMs: config.push.invalid_key_retry_after,
      nowMs: clock.now().getTime(),
    });
    if (error) {
      metrics.pushFailures.inc({ err: answer.err === undefined ? error.code : setErrorLabel(answer.err) });
      if (answer.err !== undefined) {
        logger.warn(
          {
            streamId,
            jti: set.jti,
            status: answer.status,
            err: answer.err,
            description: answer.description,
            code: error.code,
          },
          'receiver refused a SET',
        );
      }
      throw error;
    }
    metrics.served.inc({ method: 'push' });
    return { status: answer.status, detail: `pushed, receiver answered ${answer.status}` };
  }

  async #queueDepth(streamId: string): Promise<number> {
    const cached = this.#depth.get(streamId);
    const now = Date.now();
    if (cached && now - cached.at < DEPTH_TTL_MS) return cached.n;
    const n = await this.#ctx.store.streams.pollQueueDepth(streamId);
    this.#depth.set(streamId, { n, at: now });
    return n;
  }

  async #enqueue(record: StreamRecord, set: SignedSet): Promise<DeliveryReceipt> {
    const { store, clock, config, signal } = this.#ctx;
    const streamId = record.streamId;
    const depth = await this.#queueDepth(streamId);
    if (depth >= config.poll.max_queue) {
      throw new RetryableError(
        `stream ${streamId} holds ${depth} unacknowledged SETs (poll.max_queue); waiting for its receiver to poll`,
        { code: 'SSF_ERR_TRANSMITTER_POLL_QUEUE_FULL', retryAfterMs: 30_000 },
      );
    }
    const added = await store.streams.enqueuePoll(
      streamId,
      [{ jti: set.jti, eventId: set.jti, setJwt: set.jwt }],
      clock.now(),
    );
    const cached = this.#depth.get(streamId);
    if (cached) cached.n += added;
    signal.notify(streamId);
    return { detail: added > 0 ? 'queued for polling' : 'already queued for polling' };
  }

  // ------------------------------------------------------------------------------------------
  // RFC 8936 poll

  /**
   * Serves a poll: acknowledgements and setErrs first, then up to maxEvents SETs — stream-updated
   * events first, whatever the stream's status, then verification events and event SETs while
   * the stream is enabled (a paused or disabled stream transmits nothing else, SSF 1.0 §8.1.2;
   * checklist SSF-36, POLL-11, TX-12). Without returnImmediately the request waits, bounded by
   * poll.long_poll_max_wait, and returns as soon as a SET is queued.
   */
  async poll(
    principal: Principal,
    streamId: string,
    body: unknown,
    abort: AbortSignal,
  ): Promise<PollResponse> {
    const request = readPollRequest(body);
    let record = await this.#o.service.owned(principal, streamId);
    if (storedConfig(record.config).delivery.method === PUSH_METHOD) {
      throw new TransmitterHttpError(
        400,
        'invalid_request',
        `stream ${streamId} delivers by push (urn:ietf:rfc:8935); it has no poll endpoint`,
        'SSF_ERR_TRANSMITTER_NOT_POLL',
      );
    }
    await this.#o.service.touch(record);
    await this.#settle(streamId, request);
    const { config, signal } = this.#ctx;
    const max = Math.min(request.maxEvents ?? config.poll.default_max_events, config.poll.max_events);
    if (max === 0) {
      // Stream-updated SETs are served whatever the status; the rest only while enabled.
      const { store } = this.#ctx;
      const more =
        (await store.streams.pollQueueDepth(controlQueueId(streamId))) > 0 ||
        (record.status === 'enabled' &&
          ((await store.streams.pollQueueDepth(verificationQueueId(streamId))) > 0 ||
            (await store.streams.pollQueueDepth(streamId)) > 0));
      return { sets: {}, moreAvailable: more };
    }
    const deadline = Date.now() + (request.returnImmediately ? 0 : config.poll.long_poll_max_wait);
    for (;;) {
      const result = await this.#take(record, max);
      const remaining = deadline - Date.now();
      if (Object.keys(result.sets).length > 0 || remaining <= 0 || abort.aborted || signal.closed)
        return result;
      await signal.wait(streamId, Math.min(remaining, config.poll.store_check_interval), abort);
      const fresh = await this.#ctx.store.streams.get(streamId);
      // Deleted while the poll waited: the stream is gone, as the next poll would say (POLL-11).
      if (!fresh) throw streamNotFound(streamId);
      record = fresh;
    }
  }

  /**
   * Applies ack and setErrs (RFC 8936 §2.4) to the stream's queue, its control queue and its
   * verification queue, whatever the stream's status (a receiver acknowledges what it was given).
   */
  async #settle(streamId: string, request: PollRequest): Promise<void> {
    const { store, clock, logger, metrics } = this.#ctx;
    const queues = [streamId, controlQueueId(streamId), verificationQueueId(streamId)];
    let rest = request.ack;
    for (const queue of queues) {
      if (rest.length === 0) break;
      const acked = new Set(await store.streams.ack(queue, rest));
      rest = rest.filter((jti) => !acked.has(jti));
    }
    const errors = Object.entries(request.setErrs);
    if (errors.length === 0) return;
    const now = clock.now();
    let recorded = 0;
    for (const queue of queues) recorded += await store.streams.recordErrors(queue, request.setErrs, now);
    if (recorded === 0) {
      // None of them was a SET this stream had handed out and not yet settled: one line, not
      // one per entry, however many the receiver sent.
      logger.warn(
        { streamId, reported: errors.length },
        'receiver reported errors for SETs this stream has no unsettled copy of; ignored',
      );
      return;
    }
    for (const [i, [jti, error]] of errors.entries()) {
      metrics.setErrors.inc({ err: setErrorLabel(error.err) });
      if (i < MAX_LOGGED_SET_ERRORS) {
        logger.warn(
          { streamId, jti, err: error.err, description: error.description },
          'receiver reported an invalid SET',
        );
      }
      if (error.err === 'invalid_state')
        this.#o.onVerificationFailed(streamId, error.description ?? 'invalid_state');
    }
    if (errors.length > MAX_LOGGED_SET_ERRORS) {
      logger.warn(
        { streamId, reported: errors.length, logged: MAX_LOGGED_SET_ERRORS },
        'receiver reported more invalid SETs than are logged one by one',
      );
    }
  }

  async #take(record: StreamRecord, max: number): Promise<PollResponse> {
    const { store, clock, config, metrics } = this.#ctx;
    const options = { now: clock.now(), redeliverAfterMs: config.poll.redeliver_after };
    const control = await takeControl(store.streams, record, { ...options, max });
    const taken = [...control.sets];
    let moreAvailable = control.moreAvailable;
    if (record.status === 'enabled') {
      // Verification SETs, then event SETs: a paused or disabled stream gets neither (SSF-36).
      for (const queue of [verificationQueueId(record.streamId), record.streamId]) {
        if (taken.length < max) {
          const more = await store.streams.poll(queue, { ...options, max: max - taken.length });
          taken.push(...more.sets);
          moreAvailable ||= more.moreAvailable;
        } else {
          moreAvailable ||= (await store.streams.pollQueueDepth(queue)) > 0;
        }
      }
    }
    if (taken.length > 0) metrics.served.inc({ method: 'poll' }, taken.length);
    const sets = await Promise.all(taken.map(async (s) => [s.jti, await this.#o.refresh(s.setJwt)]));
    return { sets: Object.fromEntries(sets), moreAvailable };
  }

  /** SETs receivers reported in setErrs, and control SETs a push receiver refused. */
  async errors(
    streamId: string,
  ): Promise<Array<{ jti: string; err: string; description?: string; at: Date }>> {
    const { store } = this.#ctx;
    const lists = await Promise.all([
      store.streams.listErrors(streamId),
      store.streams.listErrors(controlQueueId(streamId)),
      store.streams.listErrors(verificationQueueId(streamId)),
    ]);
    return lists
      .flat()
      .map((e) => ({
        jti: e.jti,
        err: e.error.err,
        ...(e.error.description ? { description: e.error.description } : {}),
        at: e.at,
      }))
      .sort((a, b) => a.at.getTime() - b.at.getTime());
  }
}
