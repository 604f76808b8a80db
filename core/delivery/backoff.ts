import type { RetryPolicy } from './config.ts';

/** Upper bound of the delay after the n-th failed attempt (n ≥ 1): initial × multiplier^(n−1), capped. */
export function backoffCeiling(attempt: number, retry: RetryPolicy): number {
  const exponent = Math.max(0, attempt - 1);
  return Math.min(retry.maxMs, retry.initialMs * retry.multiplier ** exponent);
}

/**
 * Full jitter: a delay drawn uniformly from [0, ceiling). Spreads the retries of many
 * deliveries that failed together, so a recovering receiver is not hit by a wave.
 */
export function fullJitter(attempt: number, retry: RetryPolicy, random: () => number): number {
  return Math.floor(random() * backoffCeiling(attempt, retry));
}

export type RetryDecision =
  { kind: 'retry'; dueAt: Date } | { kind: 'dead'; reason: 'max_attempts' | 'max_age' };

export interface RetryInput {
  /** Attempts made so far, including the one that just failed. */
  attempts: number;
  /**
   * When the delivery was first attempted: its age for `max_age` counts from here, not from when
   * it was queued, so waiting untried (a paused stream, a held destination, an earlier event for
   * its subject still failing) never ages it.
   */
  firstAttemptAt: Date;
  now: Date;
  retry: RetryPolicy;
  /**
   * What the destination asked for (Retry-After): a floor. The next attempt waits at least this
   * long and at least the jittered backoff, so `Retry-After: 0` or a date in the past never makes
   * retries come back to back.
   */
  retryAfterMs?: number | undefined;
  random: () => number;
}

/**
 * What happens after a retryable failure. The attempt and age limits end retrying; otherwise
 * the next attempt is due after the longer of Retry-After and the jittered backoff, but never
 * later than the moment the delivery reaches its maximum age, so one last attempt is made at
 * that limit.
 */
export function decideRetry(input: RetryInput): RetryDecision {
  const { attempts, firstAttemptAt, now, retry } = input;
  if (attempts >= retry.maxAttempts) return { kind: 'dead', reason: 'max_attempts' };
  const deadline = firstAttemptAt.getTime() + retry.maxAgeMs;
  if (now.getTime() >= deadline) return { kind: 'dead', reason: 'max_age' };
  const backoff = fullJitter(attempts, retry, input.random);
  const asked = input.retryAfterMs;
  const delay = asked !== undefined && Number.isFinite(asked) ? Math.max(asked, backoff) : backoff;
  return { kind: 'retry', dueAt: new Date(Math.min(now.getTime() + delay, deadline)) };
}
