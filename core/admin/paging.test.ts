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
