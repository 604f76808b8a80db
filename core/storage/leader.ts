import type { Clock, Logger } from '../plugin-api/types.ts';
import type { LeaderLeaseStore } from './types.ts';

export interface LeaderElectionOptions {
  leases: LeaderLeaseStore;
  /** What is being led, e.g. `scheduler`. */
  name: string;
  /** This instance's identity (stable for its lifetime, unique among instances). */
  holder: string;
  /** Lease lifetime. A killed leader is replaced at most `ttlMs + renewEveryMs` later. */
  ttlMs: number;
  /** How often the leader renews and followers try to take over; defaults to ttlMs / 3. */
  renewEveryMs?: number;
  clock: Clock;
  logger?: Logger;
  /** Called whenever this instance gains or loses leadership. */
  onChange?: (isLeader: boolean) => void;
}

/**
 * Leader election over a lease row. The leader renews well before expiry; a follower takes
 * the lease once it has expired. Leadership is also bounded locally: an instance that cannot
 * reach the store stops calling itself leader when its last lease would have run out, so two
 * leaders never overlap while clocks agree.
 */
export class LeaderElection {
  readonly #options: LeaderElectionOptions;
  #validUntil = 0;
  #wasLeader = false;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;

  constructor(options: LeaderElectionOptions) {
    if (!(options.ttlMs > 0)) throw new RangeError('ttlMs must be positive');
    this.#options = options;
  }

  get renewEveryMs(): number {
    return this.#options.renewEveryMs ?? Math.max(1, Math.floor(this.#options.ttlMs / 3));
  }

  isLeader(): boolean {
    return this.#options.clock.now().getTime() < this.#validUntil;
  }

  /** One acquire-or-renew round; resolves to whether this instance leads afterwards. */
  async tick(): Promise<boolean> {
    const { leases, name, holder, ttlMs, clock, logger } = this.#options;
    const startedAt = clock.now();
    try {
      const held = await leases.tryAcquire(name, holder, ttlMs, startedAt);
      // Counted from before the call, so local validity never outlasts the stored lease.
      this.#validUntil = held ? startedAt.getTime() + ttlMs : 0;
    } catch (err) {
      logger?.warn(
        { err: err instanceof Error ? err.message : String(err), lease: name },
        'lease renewal failed',
      );
    }
    this.#notify();
    return this.isLeader();
  }

  start(): void {
    if (this.#timer !== undefined || this.#running !== undefined) return;
    const loop = async () => {
      await this.tick();
      if (this.#running === undefined) return;
      this.#timer = setTimeout(() => void (this.#running = loop()), this.renewEveryMs);
      this.#timer.unref();
    };
    this.#running = loop();
  }

  /** Stops campaigning and hands the lease back so a follower takes over at once. */
  async stop(): Promise<void> {
    const running = this.#running;
    this.#running = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await running;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#validUntil > 0) {
      this.#validUntil = 0;
      await this.#options.leases.release(this.#options.name, this.#options.holder).catch(() => undefined);
    }
    this.#notify();
  }

  #notify(): void {
    const now = this.isLeader();
    if (now === this.#wasLeader) return;
    this.#wasLeader = now;
    this.#options.logger?.info(
      { lease: this.#options.name, leader: now },
      now ? 'became leader' : 'lost leadership',
    );
    this.#options.onChange?.(now);
  }
}
