import type { Clock, InstanceState } from '../plugin-api/types.ts';

export interface InstanceStatus {
  id: string;
  connector: string;
  kind: 'inbound' | 'outbound' | 'core';
  state: InstanceState;
  reason: string | undefined;
  since: string;
  lastSuccessAt: string | undefined;
  lastErrorAt: string | undefined;
  lastError: string | undefined;
}

export type StatusListener = (status: InstanceStatus, previous: InstanceState) => void;

/**
 * The live status of every connector instance (and core service). `/readyz` and the admin
 * API read it; connectors write it through `ctx.status`.
 */
export class StatusBoard {
  readonly #entries = new Map<string, InstanceStatus>();
  readonly #listeners = new Set<StatusListener>();

  constructor(private readonly clock: Clock) {}

  register(id: string, connector: string, kind: InstanceStatus['kind']): void {
    this.#entries.set(id, {
      id,
      connector,
      kind,
      state: 'stopped',
      reason: undefined,
      since: this.clock.now().toISOString(),
      lastSuccessAt: undefined,
      lastErrorAt: undefined,
      lastError: undefined,
    });
  }

  set(id: string, state: InstanceState, reason?: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    const previous = entry.state;
    const now = this.clock.now().toISOString();
    if (previous !== state || entry.reason !== reason) entry.since = now;
    entry.state = state;
    entry.reason = reason;
    if (state === 'recoverable_error' || state === 'permanent_error') {
      entry.lastErrorAt = now;
      entry.lastError = reason;
    }
    for (const listener of this.#listeners) listener({ ...entry }, previous);
  }

  success(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    entry.lastSuccessAt = this.clock.now().toISOString();
    // A success clears a recoverable error, not a permanent one (credentials stay flagged).
    if (entry.state === 'recoverable_error') this.set(id, 'ok');
  }

  get(id: string): InstanceStatus | undefined {
    const entry = this.#entries.get(id);
    return entry ? { ...entry } : undefined;
  }

  list(): InstanceStatus[] {
    return [...this.#entries.values()].map((e) => ({ ...e }));
  }

  onChange(listener: StatusListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Ready when every instance is ok or recovering; otherwise the reasons why not. */
  readiness(): { ready: boolean; reasons: string[] } {
    const reasons: string[] = [];
    for (const entry of this.#entries.values()) {
      if (entry.state === 'ok' || entry.state === 'recoverable_error') continue;
      reasons.push(`${entry.id}: ${entry.state}${entry.reason ? ` (${entry.reason})` : ''}`);
    }
    return { ready: reasons.length === 0, reasons };
  }
}
