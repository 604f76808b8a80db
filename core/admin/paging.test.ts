import { afterEach, describe, expect, it } from 'vitest';
import { parseTime } from './paging.ts';

const zone = process.env.TZ;
afterEach(() => {
  if (zone === undefined) delete process.env.TZ;
  else process.env.TZ = zone;
});

describe('admin API times (since, until)', () => {
  it('reads a time of day without a zone as UTC, whatever zone the server runs in', () => {
    process.env.TZ = 'America/New_York';
    expect(parseTime('since', '2026-01-31T09:00:00')?.toISOString()).toBe('2026-01-31T09:00:00.000Z');
    expect(parseTime('since', '2026-01-31T09:00')?.toISOString()).toBe('2026-01-31T09:00:00.000Z');
    expect(parseTime('since', '2026-01-31T09:00:00.250')?.toISOString()).toBe('2026-01-31T09:00:00.250Z');
  });

  it('reads a space between the date and the time of day as T, the time still UTC (the CLI reads it so too)', () => {
    process.env.TZ = 'America/New_York';
    expect(parseTime('since', '2026-01-31 09:00')?.toISOString()).toBe('2026-01-31T09:00:00.000Z');
    expect(parseTime('since', '2026-01-31 09:00:00.250')?.toISOString()).toBe('2026-01-31T09:00:00.250Z');
    expect(parseTime('since', '2026-01-31 09:00+02:00')?.toISOString()).toBe('2026-01-31T07:00:00.000Z');
    // July: New York is 4 hours behind UTC then, 5 in January; the reading is UTC in both.
    expect(parseTime('since', '2026-07-31 09:00')?.toISOString()).toBe('2026-07-31T09:00:00.000Z');
  });

  it('keeps an explicit zone and reads a date alone as the start of that day in UTC', () => {
    process.env.TZ = 'Asia/Tokyo';
    expect(parseTime('since', '2026-01-31T09:00:00+02:00')?.toISOString()).toBe('2026-01-31T07:00:00.000Z');
    expect(parseTime('since', '2026-01-31T09:00:00Z')?.toISOString()).toBe('2026-01-31T09:00:00.000Z');
    expect(parseTime('since', '2026-01-31')?.toISOString()).toBe('2026-01-31T00:00:00.000Z');
  });

  it('refuses what is not an ISO 8601 time', () => {
    for (const bad of ['yesterday', '2026-02-30T00:00:00Z', '2026-01-31T09:00:00ZZ'])
      expect(() => parseTime('since', bad)).toThrow('since must be an ISO 8601 time');
  });
});
