import { describe, expect, it } from 'vitest';
import { MemoryReplayCache } from './replay.ts';

describe('MemoryReplayCache', () => {
  it('recognises a key until its TTL passes', () => {
    const cache = new MemoryReplayCache({ ttlMs: 1000 });
    expect(cache.remember('a', 0)).toBe(true);
    expect(cache.remember('a', 999)).toBe(false);
    expect(cache.remember('a', 1000)).toBe(true);
    expect(cache.remember('b', 1000)).toBe(true);
  });

  it('evicts expired entries and stays within maxEntries, oldest first', () => {
    const cache = new MemoryReplayCache({ ttlMs: 10_000, maxEntries: 3 });
    for (const key of ['a', 'b', 'c', 'd']) cache.remember(key, 0);
    expect(cache.size).toBe(3);
    expect(cache.remember('a', 1)).toBe(true);
    expect(cache.remember('d', 1)).toBe(false);
    cache.remember('e', 20_000);
    expect(cache.size).toBe(1);
  });

  it('needs a positive TTL', () => {
    expect(() => new MemoryReplayCache({ ttlMs: 0 })).toThrow(RangeError);
  });
});
