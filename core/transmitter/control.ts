/**
 * Verification (SSF 1.0 §8.1.4) and stream-updated (§8.1.5) events. The transmitter mints them
 * itself, with the stream as subject (`{"format":"opaque","id":<stream_id>}`), and queues them
 * durably (queues.ts). Stream-updated SETs go to the stream's control queue, served whatever the
 * stream's status: a transmitter-initiated pause or disable is announced before it takes effect
 * (§8.1.2). Verification SETs go to its verification queue, served only while the stream is
 * enabled, as a paused stream transmits nothing (§8.1.2): a paused stream holds them and sends
 * them in order once enabled; a disabled stream holds none (disabling purges them, and a
 * verification asked of a disabled stream is not made, StreamService.verify). Poll receivers get
 * stream-updated SETs first in every poll, then verification SETs, then event SETs; for push
 * streams this channel pushes them in that order, retrying transient failures with backoff.
 *
 * The same channel hands over a stream that switched from poll to push: event SETs still waiting
 * in its poll queue are pushed, in queue order, after its control SETs and only while the stream
 * is enabled (a paused stream holds them, as it holds its other events).
 */
import { randomUUID } from 'node:crypto';
import { RetryableError } from '../plugin-api/errors.ts';
import type { PollRequest, PollResult, StreamRecord, StreamStore } from '../storage/types.ts';
import { streamDestinationId } from '../storage/types.ts';
import type { CodecBuildInput } from '../ssf/set/codec.ts';
import type { MintedSet } from '../ssf/set/types.ts';
import { SSF_BASE } from '../ssf/events/common.ts';
import { PUSH_METHOD } from './config.ts';
import type { TransmitterContext } from './context.ts';
import { classifyPush, type PushClient } from './push.ts';
import { controlQueueId, purgeQueue, verificationQueueId } from './queues.ts';
import { storedConfig } from './stream-model.ts';
import { setErrorLabel } from '../ssf/errors.ts';

export const VERIFICATION_EVENT = `${SSF_BASE}verification`;
export const STREAM_UPDATED_EVENT = `${SSF_BASE}stream-updated`;
/** Source instance id of transmitter-made events; '@' cannot start a configured instance id. */
export const CONTROL_SOURCE = '@transmitter';

/** Mints SETs, and re-signs queued ones whose key has retired; the SetCodec of core/ssf. */
export interface SetMinter {
  mint(input: CodecBuildInput): Promise<MintedSet>;
  refresh(jwt: string): Promise<string>;
}

const BATCH = 20;
const LEASE_MS = 60_000;
/** Transient push failures of one control SET before it is given up (and recorded as failed). */
const MAX_ATTEMPTS = 12;
const BACKOFF_MS = [1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 300_000];

/** Whether a queued SET is a verification event (read from its payload, not verified). */
function isVerificationSet(jwt: string): boolean {
  try {
    const payload = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      events?: unknown;
    };
    return (
      typeof payload.events === 'object' && payload.events !== null && VERIFICATION_EVENT in payload.events
    );
  } catch {
    return false;
  }
}

/**
 * Takes up to `request.max` SETs of a stream's control queue, as the store's poll does. A
 * verification SET found there, queued by a version that kept verification SETs in the control
 * queue, is not handed out: it is moved to the verification queue, to wait there for the stream
 * to be enabled, or dropped when the stream is disabled (SSF 1.0 §8.1.2).
 */
export async function takeControl(
  streams: StreamStore,
  record: StreamRecord,
  request: PollRequest,
): Promise<PollResult> {
  const queue = controlQueueId(record.streamId);
  for (;;) {
    const batch = await streams.poll(queue, request);
    const stray = batch.sets.filter((s) => isVerificationSet(s.setJwt));
    if (stray.length === 0) return batch;
    if (record.status !== 'disabled') {
      await streams.enqueuePoll(
        verificationQueueId(record.streamId),
        stray.map((s) => ({ jti: s.jti, eventId: s.jti, setJwt: s.setJwt })),
        request.now,
      );
    }
    await streams.ack(
      queue,
      stray.map((s) => s.jti),
    );
    const sets = batch.sets.filter((s) => !stray.includes(s));
    // Strays leave the queue, so taking again makes progress.
    if (sets.length > 0 || !batch.moreAvailable) return { sets, moreAvailable: batch.moreAvailable };
  }
}

export interface ControlChannelOptions {
  ctx: TransmitterContext;
  minter: SetMinter;
  push: PushClient;
  /** Called when a receiver rejects a verification event (err invalid_state). */
  onVerificationFailed(streamId: string, description: string): void;
}

export class ControlChannel {
  readonly #o: ControlChannelOptions;
  readonly #draining = new Map<string, Promise<void>>();
  readonly #again = new Set<string>();
  readonly #timers = new Map<string, NodeJS.Timeout>();
  readonly #attempts = new Map<string, number>();
  #stopped = false;

  constructor(options: ControlChannelOptions) {
    this.#o = options;
  }

  /**
   * Queues a verification event; `state` is echoed exactly, and absent when unsolicited. It waits
   * in the verification queue while the stream is paused. The caller checked that the stream is
   * not disabled; should another instance disable or delete it before the SET is queued (after
   * that instance purged the queue), the SET is taken out again: a disabled stream holds nothing.
   */
  async verification(record: StreamRecord, state?: string): Promise<MintedSet> {
    const { store } = this.#o.ctx;
    const queue = verificationQueueId(record.streamId);
    const minted = await this.#emit(record, queue, VERIFICATION_EVENT, state === undefined ? {} : { state });
    const now = await store.streams.get(record.streamId);
    if (!now || now.status === 'disabled') await store.streams.ack(queue, [minted.jti]);
    return minted;
  }

  streamUpdated(record: StreamRecord, status: string, reason?: string): Promise<MintedSet> {
    return this.#emit(record, controlQueueId(record.streamId), STREAM_UPDATED_EVENT, {
      status,
      ...(reason ? { reason } : {}),
    });
  }

  async #emit(
    record: StreamRecord,
    queue: string,
    type: string,
    claims: Record<string, unknown>,
  ): Promise<MintedSet> {
    const { ctx, minter } = this.#o;
    const config = storedConfig(record.config);
    const minted = await minter.mint({
      event: {
        type,
        subject: { format: 'opaque', id: record.streamId },
        claims,
        sourceRecordId: randomUUID(),
      },
      sourceInstanceId: CONTROL_SOURCE,
      destination: { id: streamDestinationId(record.streamId), audience: config.aud },
    });
    await ctx.store.streams.enqueuePoll(
      queue,
      [{ jti: minted.jti, eventId: minted.jti, setJwt: minted.jwt }],
      ctx.clock.now(),
    );
    if (config.delivery.method === PUSH_METHOD) this.drain(record.streamId);
    else ctx.signal.notify(record.streamId);
    return minted;
  }

  /**
   * Pushes the control queue of a push stream, and while it is enabled its verification queue and
   * what is left of its poll queue (no-op for poll streams); never throws.
   */
  drain(streamId: string): void {
    if (this.#stopped) return;
    if (this.#draining.has(streamId)) {
      this.#again.add(streamId);
      return;
    }
    const run = this.#drainOnce(streamId)
      .catch((err: unknown) => {
        this.#o.ctx.logger.warn({ err, streamId }, 'pushing control events failed; retrying later');
        this.#schedule(streamId, BACKOFF_MS[0] as number);
      })
      .finally(() => {
        this.#draining.delete(streamId);
        if (this.#again.delete(streamId)) this.drain(streamId);
      });
    this.#draining.set(streamId, run);
  }

  /**
   * Pushes what a push stream still has in its poll queue (SETs queued before it switched from
   * poll) and waits for that; returns how many are left (still held: paused stream, failing
   * receiver, or another instance pushing them).
   */
  async handOver(streamId: string): Promise<number> {
    this.drain(streamId);
    for (let run = this.#draining.get(streamId); run; run = this.#draining.get(streamId)) await run;
    return this.#o.ctx.store.streams.pollQueueDepth(streamId);
  }

  #schedule(streamId: string, delayMs: number): void {
    if (this.#stopped || this.#timers.has(streamId)) return;
    const timer = setTimeout(() => {
      this.#timers.delete(streamId);
      this.drain(streamId);
    }, delayMs);
    timer.unref();
    this.#timers.set(streamId, timer);
  }

  async #drainOnce(streamId: string): Promise<void> {
    const { ctx } = this.#o;
    const lease = `transmitter:control:${streamId}`;
    if (!(await ctx.store.leases.tryAcquire(lease, ctx.holder, LEASE_MS, ctx.clock.now()))) {
      this.#schedule(streamId, LEASE_MS / 4);
      return;
    }
    try {
      for (let round = 0; ; round++) {
        // A long drain (the poll backlog of a stream switched to push) renews its lease each
        // batch: expired, it would let another instance push the same SETs again, out of order.
        if (round > 0 && !(await ctx.store.leases.tryAcquire(lease, ctx.holder, LEASE_MS, ctx.clock.now())))
          return;
        const record = await ctx.store.streams.get(streamId);
        if (!record) {
          await purgeQueue(ctx.store.streams, controlQueueId(streamId), ctx.clock);
          await purgeQueue(ctx.store.streams, verificationQueueId(streamId), ctx.clock);
          return;
        }
        const delivery = storedConfig(record.config).delivery;
        if (delivery.method !== PUSH_METHOD || this.#stopped) return;
        const take = { max: BATCH, now: ctx.clock.now(), redeliverAfterMs: 0 };
        let queue = controlQueueId(streamId);
        let batch = await takeControl(ctx.store.streams, record, take);
        // A paused or disabled stream gets its stream-updated SETs only (SSF 1.0 §8.1.2).
        if (batch.sets.length === 0 && record.status === 'enabled') {
          queue = verificationQueueId(streamId);
          batch = await ctx.store.streams.poll(queue, take);
        }
        if (batch.sets.length === 0 && record.status === 'enabled') {
          // Event SETs queued for polling before the stream switched to push.
          queue = streamId;
          batch = await ctx.store.streams.poll(queue, take);
        }
        if (batch.sets.length === 0) return;
        for (const item of batch.sets) {
          if (!(await this.#pushOne(streamId, queue, delivery, item))) return;
        }
      }
    } finally {
      await ctx.store.leases.release(lease, ctx.holder).catch(() => undefined);
    }
  }

  /** Pushes one SET of `queue`; false when the channel must pause (retry scheduled). */
  async #pushOne(
    streamId: string,
    queue: string,
    delivery: { endpoint_url: string; authorization_header?: string },
    item: { jti: string; setJwt: string },
  ): Promise<boolean> {
    const { ctx, push, minter } = this.#o;
    const attempt = this.#attempts.get(item.jti) ?? 0;
    const jwt = await minter.refresh(item.setJwt);
    const answer = await push.send(delivery.endpoint_url, jwt, delivery.authorization_header);
    const error = classifyPush(answer, {
      url: delivery.endpoint_url,
      attempt,
      invalidKeyRetries: ctx.config.push.invalid_key_retries,
      invalidKeyRetryAfterMs: ctx.config.push.invalid_key_retry_after,
      nowMs: ctx.clock.now().getTime(),
    });
    if (!error) {
      this.#attempts.delete(item.jti);
      await ctx.store.streams.ack(queue, [item.jti]);
      ctx.metrics.served.inc({ method: 'push' });
      return true;
    }
    ctx.metrics.pushFailures.inc({ err: answer.err === undefined ? error.code : setErrorLabel(answer.err) });
    if (error instanceof RetryableError && attempt + 1 < MAX_ATTEMPTS) {
      this.#attempts.set(item.jti, attempt + 1);
      const delay = error.retryAfterMs ?? (BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)] as number);
      ctx.logger.warn(
        { streamId, jti: item.jti, code: error.code, err: error.message, retryInMs: delay },
        queue === streamId
          ? 'push of a SET queued before the switch from poll failed'
          : 'control event push failed',
      );
      this.#schedule(streamId, delay);
      return false;
    }
    this.#attempts.delete(item.jti);
    const err = answer.err ?? 'delivery_failed';
    await ctx.store.streams.recordErrors(
      queue,
      { [item.jti]: { err, description: error.message } },
      ctx.clock.now(),
    );
    ctx.logger.warn(
      { streamId, jti: item.jti, err, code: error.code, description: error.message },
      queue === streamId
        ? 'receiver refused a SET queued before the switch from poll'
        : 'receiver refused a control event',
    );
    if (err === 'invalid_state' && queue !== streamId) this.#o.onVerificationFailed(streamId, error.message);
    return true;
  }

  stop(): void {
    this.#stopped = true;
    for (const timer of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
  }

  async idle(): Promise<void> {
    while (this.#draining.size > 0) await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
