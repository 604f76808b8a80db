import { describe, expect, it } from 'vitest';
import { newEventId } from './event-id.ts';

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('event ids (RFC 9562 §5.7 UUIDv7)', () => {
  it('rule: version 7, variant 10, the creation time in the first 48 bits', () => {
    const at = Date.UTC(2026, 10, 29, 16, 30, 0, 123);
    const id = newEventId(at + 10_000);
    expect(id).toMatch(UUID_V7);
    expect(parseInt(id.replace(/-/g, '').slice(0, 12), 16)).toBe(at + 10_000);
  });

  it('sort in creation order, within one millisecond too, and never repeat', () => {
    const ids = Array.from({ length: 20_000 }, () => newEventId());
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('stay in order when the clock steps back or 4,096 ids share one millisecond', () => {
    const base = Date.now() + 60_000;
    const ids = [
      newEventId(base),
      ...Array.from({ length: 5_000 }, () => newEventId(base + 1)),
      newEventId(base - 5_000),
    ];
    expect([...ids].sort()).toEqual(ids);
    for (const id of ids) expect(id).toMatch(UUID_V7);
  });
});
