import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadFixtures } from './fixtures.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-fixtures-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const write = (name: string, content: unknown) =>
  writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));

describe('fixture files', () => {
  it('reads each expectation kind', () => {
    write('a.json', {
      description: 'events',
      input: { id: 1 },
      expect: {
        events: [
          { type: 'caep.session-revoked', subject: { format: 'opaque', id: 'u' }, sourceRecordId: '1' },
        ],
      },
    });
    write('b.json', { description: 'ignored', input: {}, expect: { ignored: 'noise' } });
    write('c.json', { description: 'rejected', input: 5, expect: { rejected: 'must be an object' } });
    const { fixtures, problems } = loadFixtures(dir);
    expect(problems).toEqual([]);
    expect(fixtures.map((f) => Object.keys(f.expect)[0])).toEqual(['events', 'ignored', 'rejected']);
  });

  it('names the key that is wrong inside an expectation, and the draft name SET-style keys stand for', () => {
    write('snake.json', {
      description: 'pasted from simulate',
      input: {},
      expect: {
        events: [
          {
            type: 'caep.session-revoked',
            subject: { format: 'opaque', id: 'u' },
            source_record_id: '1',
            txn: 't',
          },
        ],
      },
    });
    write('two.json', { description: 'both', input: {}, expect: { ignored: 'x', rejected: 'y' } });
    write('broken.json', '{"description": ');
    const { fixtures, problems } = loadFixtures(dir);
    expect(fixtures).toEqual([]);
    expect(problems).toHaveLength(3);
    expect(problems[0]).toMatch(/^broken\.json: not valid JSON/);
    expect(problems[1]).toContain('snake.json: ');
    expect(problems[1]).toContain('expect.events.0.sourceRecordId: ');
    expect(problems[1]).toContain(
      "(fixtures use the event draft's names: sourceRecordId, not source_record_id)",
    );
    expect(problems[2]).toMatch(/^two\.json: expect must hold exactly one of events, ignored, rejected/);
  });
});
