import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffCeiling, decideRetry, fullJitter } from './backoff.ts';
import { CircuitBreaker, type CircuitState } from './breaker.ts';
import { deliveryConfigSchema, policyFor, type RetryPolicy } from './config.ts';

const retry: RetryPolicy = {
  initialMs: 1000,
  maxMs: 60_000,
  multiplier: 2,
  maxAttempts: 5,
  maxAgeMs: 3_600_000,
  maxInterruptedAttempts: 3,
};
const T0 = new Date('2026-01-01T00:00:00Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

describe('backoff', () => {
  it('rule: the delay bound grows by the multiplier per attempt and stops at max_interval', () => {
    expect([1, 2, 3, 4, 6, 7, 20].map((n) => backoffCeiling(n, retry))).toEqual([
      1000, 2000, 4000, 8000, 32_000, 60_000, 60_000,
    ]);
  });

  it('rule: full jitter draws a delay in [0, bound)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 60 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, r) => {
          const delay = fullJitter(n, retry, () => r);
          return delay >= 0 && delay < backoffCeiling(n, retry) && delay <= retry.maxMs;
        },
      ),
    );
    expect(fullJitter(3, retry, () => 0)).toBe(0);
    expect(fullJitter(3, retry, () => 0.5)).toBe(2000);
  });

  it('rule: the attempt limit dead-letters, counting the attempt that just failed', () => {
    const base = { firstAttemptAt: T0, now: at(1000), retry, random: () => 0.5 };
    expect(decideRetry({ ...base, attempts: 4 })).toEqual({ kind: 'retry', dueAt: at(1000 + 4000) });
    expect(decideRetry({ ...base, attempts: 5 })).toEqual({ kind: 'dead', reason: 'max_attempts' });
  });

  it('rule: the age limit dead-letters, after one last attempt at the limit', () => {
    const base = {
      attempts: 1,
      firstAttemptAt: T0,
      retry: { ...retry, maxAgeMs: 10_000, initialMs: 60_000 },
      random: () => 0.5,
    };
    expect(decideRetry({ ...base, now: at(1000) })).toEqual({ kind: 'retry', dueAt: at(10_000) });
    expect(decideRetry({ ...base, now: at(10_000) })).toEqual({ kind: 'dead', reason: 'max_age' });
  });

  it('rule: Retry-After replaces a shorter computed delay, even beyond max_interval', () => {
    const base = { attempts: 1, firstAttemptAt: T0, now: at(0), retry, random: () => 0 };
    expect(decideRetry({ ...base, retryAfterMs: 120_000 })).toEqual({ kind: 'retry', dueAt: at(120_000) });
    expect(decideRetry({ ...base, retryAfterMs: 0 })).toEqual({ kind: 'retry', dueAt: at(0) });
  });

  it('rule: Retry-After is a floor — 0 or a date in the past never shortens the jittered backoff', () => {
    const base = { attempts: 3, firstAttemptAt: T0, now: at(0), retry, random: () => 0.5 };
    // attempt 3: bound 4 s, jitter 0.5 → 2 s
    expect(decideRetry({ ...base, retryAfterMs: 0 })).toEqual({ kind: 'retry', dueAt: at(2000) });
    expect(decideRetry({ ...base, retryAfterMs: -30_000 })).toEqual({ kind: 'retry', dueAt: at(2000) });
    expect(decideRetry({ ...base, retryAfterMs: 500 })).toEqual({ kind: 'retry', dueAt: at(2000) });
    expect(decideRetry({ ...base, retryAfterMs: 7000 })).toEqual({ kind: 'retry', dueAt: at(7000) });
  });

  it('rule: with the default settings a receiver down for less than max_age loses nothing', () => {
    const policy = policyFor(deliveryConfigSchema.parse({}), 'okta').retry;
    expect(policy.maxAgeMs).toBe(72 * 3_600_000);
    for (const random of [() => 0.5, () => 0.01]) {
      let now = T0.getTime();
      let attempts = 0;
      let decision: ReturnType<typeof decideRetry>;
      // Every attempt fails; the next one is made when due (never sooner than 1 s later).
      do {
        attempts += 1;
        decision = decideRetry({ attempts, firstAttemptAt: T0, now: new Date(now), retry: policy, random });
        if (decision.kind === 'retry') now = Math.max(decision.dueAt.getTime(), now + 1000);
      } while (decision.kind === 'retry');
      expect(decision).toEqual({ kind: 'dead', reason: 'max_age' });
      expect(now - T0.getTime()).toBe(policy.maxAgeMs);
    }
  });
});

describe('circuit breaker', () => {
  const make = (changes: CircuitState[] = []) =>
    new CircuitBreaker({ enabled: true, failureThreshold: 3, openMs: 10_000 }, (s) => changes.push(s));

  it('rule: opens after the threshold of consecutive failures; a success resets the count', () => {
    const b = make();
    b.failed(0);
    b.failed(0);
    b.succeeded();
    b.failed(0);
    b.failed(0);
    expect(b.state(0)).toBe('closed');
    b.failed(0);
    expect(b.state(0)).toBe('open');
    expect(b.allowance(9_999)).toBe(0);
  });

  it('rule: after open_duration exactly one probe goes through; its outcome closes or reopens', () => {
    const changes: CircuitState[] = [];
    const b = make(changes);
    for (let i = 0; i < 3; i++) b.failed(0);
    expect(b.reopensAt()).toBe(10_000);
    expect(b.allowance(10_000)).toBe(1);
    b.attemptStarted();
    expect(b.allowance(10_000)).toBe(0);
    b.failed(10_500);
    expect(b.state(10_500)).toBe('open');
    expect(b.allowance(20_499)).toBe(0);
    expect(b.allowance(20_500)).toBe(1);
    b.attemptStarted();
    b.succeeded();
    expect(b.allowance(20_600)).toBe(Infinity);
    expect(changes).toEqual(['open', 'half_open', 'open', 'half_open', 'closed']);
  });

  it('never opens when disabled', () => {
    const b = new CircuitBreaker({ enabled: false, failureThreshold: 1, openMs: 10_000 });
    b.failed(0);
    expect(b.allowance(0)).toBe(Infinity);
  });
});

describe('delivery config', () => {
  it('has documented defaults and parses durations', () => {
    const c = deliveryConfigSchema.parse({ retry: { max_age: '1h' } });
    expect(c.retry).toEqual({
      initial_interval: 1000,
      max_interval: 300_000,
      multiplier: 2,
      max_age: 3_600_000,
      max_interrupted_attempts: 3,
    });
    expect(c.queue_size).toBe(100_000);
    expect(c.lease_duration).toBe(120_000);
    expect(deliveryConfigSchema.parse(undefined).dedupe_window).toBe(86_400_000);
  });

  it('rule: a lease shorter than the attempt timeout is refused', () => {
    const r = deliveryConfigSchema.safeParse({ lease_duration: '10s', attempt_timeout: '30s' });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['lease_duration']);
  });

  it('rule: every per-destination attempt_timeout must be shorter than lease_duration', () => {
    const r = deliveryConfigSchema.safeParse({
      lease_duration: '1s',
      attempt_timeout: '500ms',
      destinations: { slow: { attempt_timeout: '5s' }, fine: { attempt_timeout: '900ms' }, other: {} },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues).toHaveLength(1);
    expect(r.error?.issues[0]).toMatchObject({
      path: ['destinations', 'slow', 'attempt_timeout'],
      message: expect.stringContaining(
        'attempt_timeout (5000 ms) must be shorter than lease_duration (1000 ms)',
      ) as unknown,
    });
    // Equal is not shorter.
    expect(
      deliveryConfigSchema.safeParse({ lease_duration: '2m', destinations: { a: { attempt_timeout: '2m' } } })
        .success,
    ).toBe(false);
    // The defaults, and an override below the default lease, are valid.
    expect(deliveryConfigSchema.safeParse({}).success).toBe(true);
    expect(deliveryConfigSchema.safeParse({ destinations: { a: { attempt_timeout: '90s' } } }).success).toBe(
      true,
    );
  });

  it('rejects unknown keys', () => {
    expect(deliveryConfigSchema.safeParse({ retries: {} }).success).toBe(false);
  });

  it('rule: a destination override beats the delivery.destinations entry, which beats the globals', () => {
    const c = deliveryConfigSchema.parse({
      max_in_flight: 8,
      destinations: { okta: { max_in_flight: 2, retry: { max_attempts: 3 }, queue_size: 10 } },
    });
    const p = policyFor(c, 'okta', { retry: { max_attempts: 7 }, circuit_breaker: { enabled: false } });
    expect(p).toMatchObject({ maxInFlight: 2, queueSize: 10, retry: { maxAttempts: 7, initialMs: 1000 } });
    expect(p.breaker.enabled).toBe(false);
    expect(policyFor(c, 'other').maxInFlight).toBe(8);
    expect(policyFor(c, 'other').retry.maxAttempts).toBe(Infinity);
  });

  it('rule: max_interrupted_attempts defaults to 3 and follows the same overrides', () => {
    const c = deliveryConfigSchema.parse({
      retry: { max_interrupted_attempts: 5 },
      destinations: { okta: { retry: { max_interrupted_attempts: 2 } } },
    });
    expect(policyFor(deliveryConfigSchema.parse({}), 'okta').retry.maxInterruptedAttempts).toBe(3);
    expect(policyFor(c, 'other').retry.maxInterruptedAttempts).toBe(5);
    expect(policyFor(c, 'okta').retry.maxInterruptedAttempts).toBe(2);
    expect(
      policyFor(c, 'okta', { retry: { max_interrupted_attempts: 9 } }).retry.maxInterruptedAttempts,
    ).toBe(9);
    // One interruption proves nothing: a kill interrupts every row in flight.
    expect(deliveryConfigSchema.safeParse({ retry: { max_interrupted_attempts: 1 } }).success).toBe(false);
  });
});
