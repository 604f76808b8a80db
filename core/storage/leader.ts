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
      // A renewal still unanswered when a third of the lease has passed is given up on: a store
      // that stopped answering (a dead connection) must not hold the loop, which would then never
      // renew or campaign again.
      const held = await withDeadline(
        leases.tryAcquire(name, holder, ttlMs, startedAt),
        Math.max(1, Math.floor(ttlMs / 3)),
        'the lease store did not answer',
      );
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

  /**
   * Stops campaigning and hands the lease back so a follower takes over at once. Bounded: a store
   * that does not answer leaves the lease to expire on its own.
   */
  async stop(): Promise<void> {
    const deadlineMs = Math.max(1, Math.floor(this.#options.ttlMs / 3));
    const running = this.#running;
    this.#running = undefined;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await running;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#validUntil > 0) {
      this.#validUntil = 0;
      await withDeadline(
        this.#options.leases.release(this.#options.name, this.#options.holder),
        deadlineMs,
        'the lease store did not answer',
      ).catch(() => undefined);
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

/** `work`, or a rejection once `ms` have passed without it settling. */
function withDeadline<T>(work: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${message} within ${ms} ms`)), ms);
    timer.unref();
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}
