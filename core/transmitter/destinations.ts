/**
 * SSF streams as destinations of the delivery engine. Each stream is the destination
 * `stream:<stream id>`: its SETs are signed for the stream's aud with its client's profile and
 * handed to the stream's push or poll delivery. Streams come and go at run time (a receiver
 * creates or deletes one, here or on another instance); `connect` keeps the engine's set of
 * destinations equal to the streams, wakes a stream's worker when it is resumed, and drops a
 * deleted stream's metric series.
 */
import type { Destination } from '../delivery/types.ts';
import { streamDestinationId, streamIdOf } from '../storage/types.ts';
import type { TransmitterContext } from './context.ts';
import type { StreamDelivery } from './delivery.ts';
import type { StreamSync } from './sync.ts';

/** The part of the DeliveryEngine this module uses. */
export interface DestinationRegistry {
  register(destination: Destination): void;
  unregister(destinationId: string): Promise<void>;
  notify(destinationIds?: Iterable<string>): void;
}

export class StreamDestinations {
  readonly #ctx: TransmitterContext;
  readonly #delivery: StreamDelivery;
  readonly #sync: StreamSync;

  constructor(ctx: TransmitterContext, delivery: StreamDelivery, sync: StreamSync) {
    this.#ctx = ctx;
    this.#delivery = delivery;
    this.#sync = sync;
  }

  /** The destination of a stream destination id, if that stream exists. */
  get(destinationId: string): Destination | undefined {
    const streamId = streamIdOf(destinationId);
    const stream = streamId === undefined ? undefined : this.#ctx.index.get(streamId);
    if (!stream) return undefined;
    const { index } = this.#ctx;
    const { profile, profileOptions } = this.#ctx.targetOf(stream.clientId);
    return {
      id: streamDestinationId(stream.streamId),
      kind: 'stream',
      target: { audience: stream.audience, profile, ...(profileOptions ? { profileOptions } : {}) },
      deliver: (set, signal) => this.#delivery.deliver(stream.streamId, set, signal),
      // Paused streams keep their deliveries in the outbox until they are enabled again.
      isPaused: () => index.get(stream.streamId)?.status === 'paused',
    };
  }

  list(): Destination[] {
    return [...this.#ctx.index.streams()].map(
      (s) => this.get(streamDestinationId(s.streamId)) as Destination,
    );
  }

  /**
   * Registers every stream with the engine and follows changes until the returned function is
   * called: new streams are registered, deleted ones unregistered, changed ones woken.
   */
  connect(engine: DestinationRegistry): () => void {
    const registered = new Set<string>();
    const add = (destinationId: string) => {
      if (registered.has(destinationId)) return;
      const destination = this.get(destinationId);
      if (!destination) return;
      engine.register(destination);
      registered.add(destinationId);
    };
    for (const destination of this.list()) add(destination.id);
    const unsubscribe = this.#sync.onChange((change) => {
      const id = streamDestinationId(change.streamId);
      if (change.kind === 'removed') {
        if (registered.delete(id)) {
          // Once its worker has stopped nothing records for it again: its metric series go too,
          // so streams that come and go do not grow /metrics for ever.
          void engine
            .unregister(id)
            .then(() => this.#ctx.metrics.forgetDestination(id))
            .catch((err: unknown) =>
              this.#ctx.logger.warn({ err, destination: id }, 'could not unregister a deleted stream'),
            );
        }
        return;
      }
      add(id);
      engine.notify([id]);
    });
    return unsubscribe;
  }
}
