/**
 * Keeps the routing index equal to the store. Streams, subjects and status live in the store so
 * that every instance of a scaled-out deployment serves them; each instance holds an index of
 * them for routing. A change made here updates the local index at once and bumps two revisions:
 * the stream's own (`internal.rev`) and a shared marker row. Other instances read the marker on
 * every tick and, when it moved, reload only the streams whose revision changed.
 */
import { randomUUID } from 'node:crypto';
import type { StreamRecord } from '../storage/types.ts';
import { streamIdOf } from '../storage/types.ts';
import { PUSH_METHOD } from './config.ts';
import type { TransmitterContext } from './context.ts';
import type { IndexedStream } from './routing.ts';
import { eventsDelivered, storedConfig } from './stream-model.ts';

/** Checkpoint row (instance id, name) holding the shared marker; '@' cannot start an instance id. */
const MARKER = { instanceId: '@transmitter', name: 'streams-revision' };
const SUBJECT_PAGE = 1000;
/** A paused stream's held count is re-read from the outbox at most this often. */
const HELD_REFRESH_MS = 5_000;
/**
 * Deliveries in flight when a stream is paused still count as unfinished for a moment; the count
 * of a stream paused this recently is left to the routing index's own tally.
 */
const HELD_SETTLE_MS = 2_000;

export type StreamChange = { kind: 'added' | 'updated' | 'removed'; streamId: string };

export class StreamSync {
  readonly #ctx: TransmitterContext;
  readonly #listeners = new Set<(change: StreamChange) => void>();
  #marker: unknown;
  #heldRefreshedAt = 0;

  constructor(ctx: TransmitterContext) {
    this.#ctx = ctx;
  }

  onChange(listener: (change: StreamChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(change: StreamChange): void {
    for (const listener of this.#listeners) {
      try {
        listener(change);
      } catch (err) {
        this.#ctx.logger.warn({ err, streamId: change.streamId }, 'stream change listener failed');
      }
    }
  }

  indexed(record: StreamRecord): IndexedStream {
    const config = storedConfig(record.config);
    return {
      streamId: record.streamId,
      clientId: record.clientId,
      audience: config.aud,
      status: record.status,
      eventsDelivered: new Set(
        eventsDelivered(config.events_requested, this.#ctx.targetOf(record.clientId).render.supportedSet),
      ),
      method: config.delivery.method === PUSH_METHOD ? 'push' : 'poll',
      rev: config.internal.rev,
    };
  }

  /** Puts a stream (not its subjects) into the index and tells listeners. */
  apply(record: StreamRecord): void {
    const known = this.#ctx.index.get(record.streamId) !== undefined;
    this.#ctx.index.setStream(this.indexed(record));
    this.#emit({ kind: known ? 'updated' : 'added', streamId: record.streamId });
  }

  forget(streamId: string): void {
    if (this.#ctx.index.get(streamId) === undefined) return;
    this.#ctx.index.removeStream(streamId);
    this.#emit({ kind: 'removed', streamId });
  }

  async #loadSubjects(streamId: string): Promise<void> {
    const { store, index } = this.#ctx;
    index.clearSubjects(streamId);
    let afterKey: string | undefined;
    for (;;) {
      const page = await store.streams.listSubjects(streamId, {
        limit: SUBJECT_PAGE,
        ...(afterKey ? { afterKey } : {}),
      });
      for (const s of page) index.putSubject(streamId, s.subject, s.included);
      if (page.length < SUBJECT_PAGE) return;
      afterKey = page.at(-1)?.subjectKey;
    }
  }

  /** Loads every stream and subject (start-up). */
  async loadAll(): Promise<void> {
    this.#marker = await this.#readMarker();
    await this.#reconcile(true);
  }

  /**
   * Records that this instance changed streams, for the other instances. The new marker is not
   * taken as seen: another instance's change written just before it would then never be read.
   * This instance's own next round reloads once, finding its own streams at their revisions.
   */
  async markChanged(): Promise<void> {
    await this.#ctx.store.checkpoints.set(
      MARKER.instanceId,
      MARKER.name,
      randomUUID(),
      this.#ctx.clock.now(),
    );
  }

  async #readMarker(): Promise<unknown> {
    return this.#ctx.store.checkpoints.get(MARKER.instanceId, MARKER.name);
  }

  /** One sync round: picks up changes from other instances and refreshes held counts. */
  async tick(): Promise<void> {
    const marker = await this.#readMarker();
    if (marker !== this.#marker) {
      this.#marker = marker;
      await this.#reconcile(false);
    }
    await this.#refreshHeld();
  }

  async #reconcile(full: boolean): Promise<void> {
    const { store, index } = this.#ctx;
    const records = await store.streams.list();
    const present = new Set<string>();
    for (const record of records) {
      present.add(record.streamId);
      const known = index.get(record.streamId);
      const rev = storedConfig(record.config).internal.rev;
      if (!full && known?.rev === rev && known.status === record.status) continue;
      this.apply(record);
      await this.#loadSubjects(record.streamId);
    }
    for (const stream of [...index.streams()])
      if (!present.has(stream.streamId)) this.forget(stream.streamId);
  }

  /** Re-reads how many events the outbox holds for each paused stream (the hold limit). */
  async #refreshHeld(): Promise<void> {
    const now = Date.now();
    if (now - this.#heldRefreshedAt < HELD_REFRESH_MS) return;
    const { index } = this.#ctx;
    const paused = [...index.streams()].filter(
      (s) => now - (index.pausedSince(s.streamId) ?? now) >= HELD_SETTLE_MS,
    );
    if (paused.length === 0) return;
    this.#heldRefreshedAt = now;
    const backlog = await this.#ctx.store.deliveries.backlog();
    const counts = new Map<string, number>();
    for (const [destinationId, n] of backlog) {
      const streamId = streamIdOf(destinationId);
      if (streamId !== undefined) counts.set(streamId, n);
    }
    for (const s of paused) this.#ctx.index.setHeld(s.streamId, counts.get(s.streamId) ?? 0);
  }
}
