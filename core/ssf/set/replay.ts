/**
 * Remembers SET jtis for a while so a replayed SET is recognised. A push receiver that follows
 * RFC 8935 §2 acknowledges a repeated jti like a first delivery; the replay cache lets it tell
 * the two apart (error code SSF_ERR_SET_REPLAYED), and lets tools that treat a SET as a one-time
 * message refuse it.
 */
export interface ReplayCache {
  /** Records `key` at `nowMs`; resolves false when it was already recorded and has not expired. */
  remember(key: string, nowMs: number): boolean | Promise<boolean>;
}

export interface MemoryReplayCacheOptions {
  /** How long a jti is remembered; keep it above the verifier's max age plus clock skew. */
  ttlMs: number;
  /** Bound on memory; the oldest entries go first. Default 100 000. */
  maxEntries?: number;
}

/** An in-process replay cache. */
export class MemoryReplayCache implements ReplayCache {
  readonly #expiries = new Map<string, number>();
  readonly #ttlMs: number;
  readonly #maxEntries: number;

  constructor(options: MemoryReplayCacheOptions) {
    if (!(options.ttlMs > 0)) throw new RangeError('ttlMs must be positive');
    this.#ttlMs = options.ttlMs;
    this.#maxEntries = options.maxEntries ?? 100_000;
  }

  get size(): number {
    return this.#expiries.size;
  }

  remember(key: string, nowMs: number): boolean {
    this.#evictExpired(nowMs);
    const expiry = this.#expiries.get(key);
    if (expiry !== undefined && expiry > nowMs) return false;
    this.#expiries.delete(key);
    if (this.#expiries.size >= this.#maxEntries) {
      const oldest = this.#expiries.keys().next();
      if (!oldest.done) this.#expiries.delete(oldest.value);
    }
    this.#expiries.set(key, nowMs + this.#ttlMs);
    return true;
  }

  /** Entries are in insertion order and share one TTL, so expired ones sit at the front. */
  #evictExpired(nowMs: number): void {
    for (const [key, expiry] of this.#expiries) {
      if (expiry > nowMs) break;
      this.#expiries.delete(key);
    }
  }
}
