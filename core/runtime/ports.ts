import type { EmitOptions, EmitResult, EventDraft, HttpClientFactory, Logger } from '../plugin-api/types.ts';

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

export interface HttpFactoryDeps {
  logger: Logger;
  signal: AbortSignal;
  onAuthFailure(reason: string): void;
}

export type HttpFactoryMaker = (deps: HttpFactoryDeps) => HttpClientFactory;
