import { describe, expect, it } from 'vitest';
import {
  DEFAULT_MAX_RETRY_AFTER_MS,
  parseEpochRetryAfter,
  parseHttpDate,
  parseRateLimitReset,
  parseRetryAfter,
  retryAfterFromHeaders,
} from './retry-after.ts';

const NOW = Date.UTC(2026, 10, 6, 8, 49, 37); // Fri, 06 Nov 2026 08:49:37 GMT

describe('parseRetryAfter', () => {
  it.each([
    ['120', 120_000],
    ['0', 0],
    [' 5 ', 5_000],
    ['13s', 13_000],
    ['1.5', 1_500],
  ])('reads delay-seconds %j as %d ms', (value, expected) => {
    expect(parseRetryAfter(value, NOW)).toBe(expected);
  });

  it('reads an IMF-fixdate in the future as the time left', () => {
    expect(parseRetryAfter('Fri, 06 Nov 2026 08:51:07 GMT', NOW)).toBe(90_000);
  });

  it('reads the obsolete RFC 850 and asctime forms (RFC 9110 §5.6.7)', () => {
    expect(parseRetryAfter('Friday, 06-Nov-26 08:50:37 GMT', NOW)).toBe(60_000);
    expect(parseRetryAfter('Fri Nov  6 08:50:07 2026', NOW)).toBe(30_000);
  });

  it('treats a date in the past as no wait', () => {
    expect(parseRetryAfter('Sun, 06 Nov 1994 08:49:37 GMT', NOW)).toBe(0);
  });

  it('clamps long waits to the maximum', () => {
    expect(parseRetryAfter('999999', NOW)).toBe(DEFAULT_MAX_RETRY_AFTER_MS);
    expect(parseRetryAfter('600', NOW, 60_000)).toBe(60_000);
    expect(parseRetryAfter('Sat, 01 Jan 2050 00:00:00 GMT', NOW, 5_000)).toBe(5_000);
  });

  it.each([
    undefined,
    null,
    '',
    'soon',
    '-5',
    '5 minutes',
    'Fri, 31 Feb 2026 08:49:37 GMT',
    'Fri, 06 Nov 2026 25:00:00 GMT',
  ])('gives undefined for %j', (value) => {
    expect(parseRetryAfter(value, NOW)).toBeUndefined();
  });
});

describe('parseHttpDate', () => {
  it('puts a two-digit RFC 850 year within 50 years of now', () => {
    expect(parseHttpDate('Sunday, 06-Nov-94 08:49:37 GMT', NOW)).toBe(Date.UTC(1994, 10, 6, 8, 49, 37));
    expect(parseHttpDate('Monday, 06-Nov-30 08:49:37 GMT', NOW)).toBe(Date.UTC(2030, 10, 6, 8, 49, 37));
  });
});

describe('parseEpochRetryAfter', () => {
  it('reads epoch seconds (CrowdStrike X-Ratelimit-Retryafter)', () => {
    expect(parseEpochRetryAfter(String(NOW / 1000 + 42), NOW)).toBe(42_000);
  });

  it('reads epoch milliseconds when the value is that large', () => {
    expect(parseEpochRetryAfter(String(NOW + 1_234), NOW)).toBe(1_234);
    expect(parseEpochRetryAfter(String(NOW / 1000 + 3), NOW, undefined, 's')).toBe(3_000);
  });

  it('gives 0 for a past instant and clamps a far one', () => {
    expect(parseEpochRetryAfter(String(NOW / 1000 - 10), NOW)).toBe(0);
    expect(parseEpochRetryAfter(String(NOW / 1000 + 86_400), NOW, 60_000)).toBe(60_000);
  });

  it('refuses values that are not numbers', () => {
    expect(parseEpochRetryAfter('tomorrow', NOW)).toBeUndefined();
    expect(parseEpochRetryAfter(undefined, NOW)).toBeUndefined();
  });
});

describe('retryAfterFromHeaders', () => {
  it('prefers Retry-After, in any letter case', () => {
    const headers = { 'Retry-After': '3', 'x-ratelimit-retryafter': String(NOW / 1000 + 60) };
    expect(retryAfterFromHeaders(headers, NOW)).toBe(3_000);
  });

  it('falls back to the epoch-time vendor header', () => {
    expect(retryAfterFromHeaders({ 'X-RateLimit-RetryAfter': String(NOW / 1000 + 60) }, NOW)).toBe(60_000);
  });

  it('gives undefined when neither header is usable', () => {
    expect(retryAfterFromHeaders({ 'retry-after': 'later' }, NOW)).toBeUndefined();
  });

  it('on a 429, reads the end of Okta’s rate-limit window (X-Rate-Limit-Reset, epoch seconds)', () => {
    const reset = { 'X-Rate-Limit-Reset': String(NOW / 1000 + 45) };
    expect(retryAfterFromHeaders(reset, NOW, undefined, 429)).toBe(45_000);
    // Retry-After still wins.
    expect(retryAfterFromHeaders({ ...reset, 'retry-after': '2' }, NOW, undefined, 429)).toBe(2_000);
    // Okta sends the header with every answer: on a 5xx it is no wait.
    expect(retryAfterFromHeaders(reset, NOW, undefined, 503)).toBeUndefined();
    expect(retryAfterFromHeaders(reset, NOW)).toBeUndefined();
  });
});

describe('parseRateLimitReset', () => {
  it('reads epoch seconds (Okta), and milliseconds when the value is that large; clamps far ones', () => {
    expect(parseRateLimitReset(String(NOW / 1000 + 30), NOW)).toBe(30_000);
    expect(parseRateLimitReset(String(NOW + 1_500), NOW)).toBe(1_500);
    expect(parseRateLimitReset(String(NOW / 1000 - 5), NOW)).toBe(0);
    expect(parseRateLimitReset(String(NOW / 1000 + 86_400), NOW, 60_000)).toBe(60_000);
  });

  it('does not guess at a count of seconds (below 10^9) or anything that is not a number', () => {
    expect(parseRateLimitReset('30', NOW)).toBeUndefined();
    expect(parseRateLimitReset('Wed, 21 Oct 2026 07:28:00 GMT', NOW)).toBeUndefined();
    expect(parseRateLimitReset(undefined, NOW)).toBeUndefined();
  });
});
