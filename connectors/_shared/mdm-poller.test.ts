import { describe, expect, it } from 'vitest';
import { RetryableError } from '../../core/plugin-api/index.ts';
import { WaitBudget, withRetries } from './mdm-poller.ts';

/** A call that fails as throttled `failures` times (Retry-After as given), then answers. */
function throttled(failures: number, retryAfterMs: number | undefined) {
  const calls: number[] = [];
  const fn = async () => {
    calls.push(Date.now());
    if (calls.length <= failures) {
      throw new RetryableError('Kandji answered 429', {
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    return 'answered';
  };
  return { fn, calls };
}

describe('withRetries: retries within the scan budget', () => {
  it('waits what Retry-After asks, charging it to the budget', async () => {
    const { fn, calls } = throttled(2, 600);
    expect(await withRetries(fn, new WaitBudget(2_000), new AbortController().signal)).toBe('answered');
    expect(calls).toHaveLength(3);
    expect(calls[2]! - calls[0]!).toBeGreaterThanOrEqual(1_100);
  });

  it('Retry-After: 0 (or a reset already past) still backs off, so a throttling storm ends with the budget', async () => {
    const { fn, calls } = throttled(1_000, 0);
    const started = Date.now();
    await expect(withRetries(fn, new WaitBudget(1_600), new AbortController().signal)).rejects.toThrow(
      'Kandji answered 429',
    );
    // 500 ms, then 1 s; the next 2 s no longer fit the budget of 1.6 s.
    expect(calls).toHaveLength(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });

  it('a failure without Retry-After is retried twice with backoff, then given up', async () => {
    const { fn, calls } = throttled(1_000, undefined);
    await expect(withRetries(fn, new WaitBudget(60_000), new AbortController().signal)).rejects.toThrow();
    expect(calls).toHaveLength(3);
  });
});
