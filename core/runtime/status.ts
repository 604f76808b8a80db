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

/** A dependency `/readyz` checks besides the instances (the store): it fails by rejecting. */
export type ReadinessProbe = (signal: AbortSignal) => Promise<unknown>;

/**
 * The live status of every connector instance (and core service). `/readyz` and the admin
 * API read it; connectors write it through `ctx.status`.
 */
export class StatusBoard {
  readonly #entries = new Map<string, InstanceStatus>();
  readonly #listeners = new Set<StatusListener>();
  /** Instances whose permanent error is a refusal of their credentials (see `refused`). */
  readonly #refusals = new Set<string>();
  readonly #probes = new Map<string, ReadinessProbe>();
  /**
   * When each instance last succeeded, as a Date: `success` runs once per delivered SET, and
   * formatting the time there cost about 1% of the event loop at full load. It is formatted when
   * a status is read.
   */
  readonly #lastSuccess = new Map<string, Date>();

  constructor(private readonly clock: Clock) {}

  register(id: string, connector: string, kind: InstanceStatus['kind']): void {
    this.#lastSuccess.delete(id);
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
    // A connector restating a refusal in its own words keeps it a refusal; any other state ends it.
    if (state !== 'permanent_error') this.#refusals.delete(id);
    const now = this.clock.now().toISOString();
    if (previous !== state || entry.reason !== reason) entry.since = now;
    entry.state = state;
    entry.reason = reason;
    if (state === 'recoverable_error' || state === 'permanent_error') {
      entry.lastErrorAt = now;
      entry.lastError = reason;
    }
    for (const listener of this.#listeners) listener(this.#view(entry), previous);
  }

  /**
   * A target refused the instance's credentials (401/403, a refused token request): a permanent
   * error, since retrying the same credentials will not help, but one that a later success
   * disproves (the secret was rotated, the vendor's outage ended), so `success` clears it.
   */
  refused(id: string, reason: string): void {
    if (!this.#entries.has(id)) return;
    this.set(id, 'permanent_error', reason);
    this.#refusals.add(id);
  }

  /**
   * A unit of work succeeded: clears a recoverable error and a refusal of the credentials. Other
   * permanent errors stay until the connector that raised them sets another state: only it knows
   * whether one success means the condition is gone (a stream the transmitter disabled is not
   * enabled again by a poll that went through).
   */
  success(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#lastSuccess.set(id, this.clock.now());
    const refused = entry.state === 'permanent_error' && this.#refusals.has(id);
    if (entry.state === 'recoverable_error' || refused) this.set(id, 'ok');
  }

  get(id: string): InstanceStatus | undefined {
    const entry = this.#entries.get(id);
    return entry ? this.#view(entry) : undefined;
  }

  list(): InstanceStatus[] {
    return [...this.#entries.values()].map((e) => this.#view(e));
  }

  /** A copy of an entry for readers, with its last success formatted. */
  #view(entry: InstanceStatus): InstanceStatus {
    return { ...entry, lastSuccessAt: this.#lastSuccess.get(entry.id)?.toISOString() };
  }

  onChange(listener: StatusListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Adds (or replaces) a dependency `check()` asks for readiness. */
  addProbe(name: string, probe: ReadinessProbe): void {
    this.#probes.set(name, probe);
  }

  /**
   * `readiness()` and every probe, each given at most `timeoutMs`: a dependency that does not
   * answer in time makes the bridge not ready as one that fails does.
   */
  async check(timeoutMs = 2_000): Promise<{ ready: boolean; reasons: string[] }> {
    const { reasons } = this.readiness();
    const failed = await Promise.all(
      [...this.#probes].map(async ([name, probe]) => {
        const controller = new AbortController();
        let timer: NodeJS.Timeout | undefined;
        const expired = new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            controller.abort();
            reject(new Error(`no answer within ${timeoutMs} ms`));
          }, timeoutMs);
        });
        const answer = Promise.resolve().then(() => probe(controller.signal));
        answer.catch(() => undefined); // one that fails after its time is up is not waited for
        try {
          await Promise.race([answer, expired]);
          return undefined;
        } catch (err) {
          return `${name}: ${err instanceof Error ? err.message : String(err)}`;
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const all = [...reasons, ...failed.filter((r): r is string => r !== undefined)];
    return { ready: all.length === 0, reasons: all };
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
