import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { z } from 'zod';

/** An expected event as written in a fixture: an EventDraft in JSON form. */
const expectedEventSchema = z.strictObject({
  type: z.string().min(1),
  subject: z.looseObject({ format: z.string().min(1) }),
  claims: z.record(z.string(), z.unknown()).optional(),
  sourceRecordId: z.string().min(1),
  occurredAt: z.string().min(1).optional(),
  txn: z.string().min(1).optional(),
  severity: z.enum(['low', 'medium', 'high', 'critical']).optional(),
});

const EXPECTATIONS = {
  events: z.strictObject({ events: z.array(expectedEventSchema).min(1) }),
  ignored: z.strictObject({ ignored: z.string().min(1) }),
  rejected: z.strictObject({ rejected: z.string().min(1) }),
};

const fixtureSchema = z.strictObject({
  description: z.string().min(1),
  input: z.unknown(),
  expect: z.unknown(),
});

/** Names the SET and `simulate` print, where a fixture uses the event draft's. */
const DRAFT_NAMES: Record<string, string> = {
  source_record_id: 'sourceRecordId',
  occurred_at: 'occurredAt',
};

export type FixtureExpectation = z.output<(typeof EXPECTATIONS)[keyof typeof EXPECTATIONS]>;
export type ExpectedEvent = z.output<typeof expectedEventSchema>;

/** One `fixtures/<case>.json`: a vendor record or request body and what it must map to. */
export interface Fixture {
  /** File name without `.json`. */
  name: string;
  file: string;
  description: string;
  input: unknown;
  expect: FixtureExpectation;
}

export interface FixtureSet {
  fixtures: Fixture[];
  /** One message per unreadable or malformed file, naming the file. */
  problems: string[];
}

/** Reads every `*.json` in `dir`, in name order; malformed files become problems. */
export function loadFixtures(dir: string): FixtureSet {
  if (!existsSync(dir)) return { fixtures: [], problems: [`no fixtures folder at ${dir}`] };
  const fixtures: Fixture[] = [];
  const problems: string[] = [];
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  for (const name of files) {
    const file = join(dir, name);
    const parsed = parseFixture(file);
    if ('problem' in parsed) problems.push(`${name}: ${parsed.problem}`);
    else fixtures.push(parsed.fixture);
  }
  return { fixtures, problems };
}

function parseFixture(file: string): { fixture: Fixture } | { problem: string } {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    return { problem: `not valid JSON (${(err as Error).message})` };
  }
  if (typeof data !== 'object' || data === null || !('input' in data)) {
    return { problem: 'a fixture is {"description", "input", "expect"}; "input" is missing' };
  }
  const result = fixtureSchema.safeParse(data);
  const shapes = '(expect is {"events": [...]}, {"ignored": "reason"} or {"rejected": "message"})';
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return { problem: `${issues.join('; ')} ${shapes}` };
  }
  // The expectation's own key picks its schema, so a problem inside it is named with its path.
  const given = result.data.expect;
  const kinds =
    given && typeof given === 'object'
      ? (Object.keys(given) as Array<keyof typeof EXPECTATIONS>).filter((k) => k in EXPECTATIONS)
      : [];
  if (kinds.length !== 1)
    return { problem: `expect must hold exactly one of events, ignored, rejected ${shapes}` };
  const expected = EXPECTATIONS[kinds[0]!].safeParse(given);
  if (!expected.success) {
    const issues = expected.error.issues.map((i) => {
      const keys = i.code === 'unrecognized_keys' ? i.keys : [];
      const hint = keys
        .filter((k) => DRAFT_NAMES[k])
        .map((k) => ` (fixtures use the event draft's names: ${DRAFT_NAMES[k]}, not ${k})`)
        .join('');
      return `${['expect', ...i.path].join('.')}: ${i.message}${hint}`;
    });
    return { problem: issues.join('; ') };
  }
  const { description, input } = result.data;
  const expect = expected.data as FixtureExpectation;
  return { fixture: { name: basename(file, '.json'), file, description, input, expect } };
}

export function expectsEvents(f: Fixture): f is Fixture & { expect: { events: ExpectedEvent[] } } {
  return 'events' in f.expect;
}

export function expectsIgnored(f: Fixture): f is Fixture & { expect: { ignored: string } } {
  return 'ignored' in f.expect;
}

export function expectsRejected(f: Fixture): f is Fixture & { expect: { rejected: string } } {
  return 'rejected' in f.expect;
}
