import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { eventsApi } from './index.ts';
import { mapPayload } from './mapping.ts';

const config = eventsApi.configSchema.parse({ token: 'test-ingest-token' });
const fixtureDir = new URL('./fixtures/', import.meta.url);

describe('events-api mapping fixtures', () => {
  for (const file of readdirSync(fixtureDir).filter((f) => f.endsWith('.json'))) {
    const fixture = JSON.parse(readFileSync(new URL(file, fixtureDir), 'utf8')) as {
      description: string;
      input: unknown;
      expect: { events?: unknown[]; rejected?: string };
    };
    it(`${file}: ${fixture.description}`, () => {
      if (fixture.expect.rejected) {
        expect(() => eventsApi.map?.(fixture.input, config)).toThrow(fixture.expect.rejected);
      } else {
        expect(eventsApi.map?.(fixture.input, config)).toEqual({ events: fixture.expect.events });
      }
    });
  }
});

describe('events-api payload validation', () => {
  it('lists every problem with its path, including unknown keys', () => {
    const result = mapPayload(
      [
        { type: '', subject: { email: 'x@example.com' } },
        {
          type: 'caep.session-revoked',
          subject: { format: 'email' },
          occurred_at: 'yesterday',
          colour: 'red',
        },
      ],
      10,
    );
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.path)).toEqual([
      '[0].type',
      '[0].subject.format',
      '[1].occurred_at',
      '[1].colour',
    ]);
  });

  it('refuses an empty body, an empty list and more events than the limit', () => {
    expect(mapPayload(undefined, 10)).toMatchObject({ ok: false, problems: [{ path: '(body)' }] });
    expect(mapPayload([], 10)).toMatchObject({ ok: false, problems: [{ message: 'no events given' }] });
    const many = Array.from({ length: 3 }, () => ({
      type: 'caep.session-revoked',
      subject: { format: 'opaque', id: 'x' },
    }));
    expect(mapPayload(many, 2)).toMatchObject({
      ok: false,
      problems: [{ message: '3 events in one request; the limit is 2' }],
    });
  });

  it('gives an event posted without an id a stable content id, so a retry is de-duplicated', () => {
    const event = {
      type: 'caep.session-revoked',
      subject: { format: 'opaque', id: 'u1' },
      claims: { b: 1, a: 2 },
    };
    const reordered = {
      claims: { a: 2, b: 1 },
      subject: { id: 'u1', format: 'opaque' },
      type: 'caep.session-revoked',
    };
    const first = mapPayload(event, 1);
    const second = mapPayload(reordered, 1);
    const other = mapPayload({ ...event, claims: { a: 3 } }, 1);
    if (!first.ok || !second.ok || !other.ok) throw new Error('expected valid payloads');
    expect(first.events[0]?.sourceRecordId).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(second.events[0]?.sourceRecordId).toBe(first.events[0]?.sourceRecordId);
    expect(other.events[0]?.sourceRecordId).not.toBe(first.events[0]?.sourceRecordId);
  });
});
