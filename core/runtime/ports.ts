import type { EmitOptions, EmitResult, EventDraft, HttpClientFactory, Logger } from '../plugin-api/types.ts';
import type { OneTimeIdStore } from '../storage/types.ts';

/**
 * What the runtime needs from the rest of the core, as narrow interfaces: the durable
 * pipeline (events in), the checkpoint store, and a maker of per-instance HTTP client
 * factories. The composition root binds the real implementations; tests bind fakes.
 */
export interface EventSink {
  /** Validates, de-duplicates, routes and makes durable; resolves only once durable. */
  accept(instanceId: string, events: EventDraft[], options?: EmitOptions): Promise<EmitResult>;
}

export interface CheckpointStore {
  getCheckpoint(instanceId: string, name: string): Promise<unknown>;
  setCheckpoint(instanceId: string, name: string, value: unknown): Promise<void>;
}

/** Ids used once per scope until they expire (the store's one-time ids), behind ctx.receivedIds. */
export type OneTimeIds = OneTimeIdStore;

/** One-time ids in this process's memory, for runs without a store (validate --check) and tests. */
export function memoryOneTimeIds(): OneTimeIds {
  const expiries = new Map<string, number>();
  const key = (scope: string, id: string) => `${scope}\u0000${id}`;
  return {
    async claim(scope, id, expiresAt, now) {
      const held = expiries.get(key(scope, id));
      if (held !== undefined && held > now.getTime()) return false;
      expiries.set(key(scope, id), expiresAt.getTime());
      return true;
    },
    async used(scope, id, now) {
      return (expiries.get(key(scope, id)) ?? 0) > now.getTime();
    },
  };
}

export interface HttpFactoryDeps {
  logger: Logger;
  signal: AbortSignal;
  onAuthFailure(reason: string): void;
}

export type HttpFactoryMaker = (deps: HttpFactoryDeps) => HttpClientFactory;
