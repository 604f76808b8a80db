import type { BreakerPolicy } from './config.ts';

export type CircuitState = 'closed' | 'open' | 'half_open';

/**
 * Per-destination circuit breaker. After `failureThreshold` consecutive retryable failures the
 * circuit opens and no delivery is attempted for `openMs`; then one probe is let through.
 * A successful probe closes the circuit, a failed one opens it again.
 */
export class CircuitBreaker {
  #state: CircuitState = 'closed';
  #failures = 0;
  #openedAt = 0;
  #probing = false;

  constructor(
    private readonly policy: BreakerPolicy,
    private readonly onChange: (state: CircuitState) => void = () => undefined,
  ) {}

  state(nowMs: number): CircuitState {
    if (this.#state === 'open' && nowMs >= this.#openedAt + this.policy.openMs) this.#set('half_open');
    return this.#state;
  }

  /** How many attempts may start now (Infinity when closed). */
  allowance(nowMs: number): number {
    if (!this.policy.enabled) return Infinity;
    switch (this.state(nowMs)) {
      case 'closed':
        return Infinity;
      case 'open':
        return 0;
      case 'half_open':
        return this.#probing ? 0 : 1;
    }
  }

  /** When an open circuit lets its probe through; undefined unless open. */
  reopensAt(): number | undefined {
    return this.#state === 'open' ? this.#openedAt + this.policy.openMs : undefined;
  }

  /** An attempt starts; true when it is the half-open circuit's probe. */
  attemptStarted(): boolean {
    if (this.#state !== 'half_open') return false;
    this.#probing = true;
    return true;
  }

  succeeded(): void {
    this.#failures = 0;
    this.#probing = false;
    this.#set('closed');
  }

  /**
   * A retryable failure. `probe` is what attemptStarted() said: an attempt started before the
   * circuit opened that fails while it is half-open tells nothing new, so it neither reopens the
   * circuit nor frees the probe's slot while the probe is still out.
   */
  failed(nowMs: number, probe?: boolean): void {
    if (!this.policy.enabled) return;
    if (probe === false && this.#state === 'half_open') return;
    this.#probing = false;
    this.#failures += 1;
    if (
      this.#state === 'half_open' ||
      (this.#state === 'closed' && this.#failures >= this.policy.failureThreshold)
    ) {
      this.#openedAt = nowMs;
      this.#set('open');
    }
  }

  /** An attempt that ended without saying anything about the destination (e.g. a bad event). */
  neutral(probe?: boolean): void {
    if (probe === false && this.#state === 'half_open') return;
    this.#probing = false;
  }

  #set(state: CircuitState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.onChange(state);
  }
}
