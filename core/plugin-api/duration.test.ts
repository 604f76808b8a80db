import { describe, expect, it } from 'vitest';
import { duration, formatDuration, parseDuration } from './duration.ts';

describe('durations in connector configs', () => {
  it('reads unit strings and bare milliseconds, and nothing else', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration(42)).toBe(42);
    for (const bad of ['', 'soon', '5 m', '-1s', '1w']) expect(parseDuration(bad), bad).toBeUndefined();
    expect(duration().safeParse('soon').error?.issues[0]?.message).toBe(
      '"soon" is not a duration; write e.g. 500ms, 30s, 5m, 1h30m or 7d',
    );
  });

  it('refuses values outside the bounds a field declares, saying the bound in its own unit', () => {
    const timeout = duration('Deadline of one request.', { min: 100, max: 600_000 });
    expect(timeout.parse('30s')).toBe(30_000);
    expect(timeout.safeParse('0s').error?.issues[0]?.message).toBe('must be at least 100ms');
    expect(timeout.safeParse('24h').error?.issues[0]?.message).toBe('must be at most 10m');
    expect(duration(undefined, { min: 1000 }).safeParse(0).error?.issues[0]?.message).toBe(
      'must be at least 1s',
    );
    expect(duration().parse('0s')).toBe(0);
  });

  it('formats milliseconds in the unit that reads best', () => {
    expect([250, 1000, 90_000, 5_400_000, 86_400_000, 1500].map(formatDuration)).toEqual([
      '250ms',
      '1s',
      '1m30s',
      '1h30m',
      '1d',
      '1500ms',
    ]);
  });
});
