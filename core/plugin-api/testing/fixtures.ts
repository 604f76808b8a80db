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

const expectSchema = z.union([
  z.strictObject({ events: z.array(expectedEventSchema).min(1) }),
  z.strictObject({ ignored: z.string().min(1) }),
  z.strictObject({ rejected: z.string().min(1) }),
]);

const fixtureSchema = z.strictObject({
  description: z.string().min(1),
  input: z.unknown(),
  expect: expectSchema,
});

export type FixtureExpectation = z.output<typeof expectSchema>;
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
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    return {
      problem: `${issues.join('; ')} (expect is {"events": [...]}, {"ignored": "reason"} or {"rejected": "message"})`,
    };
  }
  const { description, input, expect } = result.data;
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
