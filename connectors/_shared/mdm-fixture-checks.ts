/**
 * Fixture checks the MDM connectors' tests share (intune, jamf-pro, kandji). A fixture file is
 * `{ description, input, expect }` where `expect` holds the events `map` returns, the reason it
 * ignores the input, or the message it rejects it with. A sequence is a folder of fixtures mapped
 * in file-name order with the state carried from one to the next. The golden check runs a
 * sequence and one malformed fixture through `ssf-bridge simulate` and holds what it prints to
 * the fixtures.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'vitest';

export interface Fixture {
  description: string;
  input: unknown;
  expect: { events?: unknown[]; ignored?: string; rejected?: string };
}

const asJson = (value: unknown) => JSON.parse(JSON.stringify(value)) as unknown;

export function readFixture(url: URL): Fixture {
  return JSON.parse(readFileSync(url, 'utf8')) as Fixture;
}

/** Checks what `run` returns (or throws) against the fixture's `expect`. */
export function checkFixture(fixture: Fixture, run: () => { events: unknown[]; ignored?: string }) {
  if (fixture.expect.rejected !== undefined) {
    expect(run).toThrow(fixture.expect.rejected);
    return;
  }
  const result = run();
  if (fixture.expect.ignored !== undefined) {
    expect(result.events).toEqual([]);
    expect(result.ignored).toContain(fixture.expect.ignored);
  } else {
    expect(asJson(result.events)).toEqual(fixture.expect.events);
  }
}

/**
 * Checks every fixture of the sequence in `dir` (more than one), in file-name order, handing
 * `map` the state the previous fixture's mapping returned.
 */
export function checkSequence<S>(
  dir: URL,
  map: (input: unknown, state: S | undefined) => { events: unknown[]; ignored?: string; state?: S },
): void {
  let state: S | undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
  expect(files.length).toBeGreaterThan(1);
  for (const file of files) {
    const fixture = readFixture(new URL(file, dir));
    checkFixture(fixture, () => {
      const result = map(fixture.input, state);
      state = result.state;
      return result;
    });
  }
}

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

function simulateCli(
  connectorId: string,
  files: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['core/cli/bin.cjs', 'simulate', '--json', '--connector', connectorId, ...files],
      { cwd: repoRoot, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? Number(err.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/**
 * Runs the sequence in `sequenceDir` and then the `malformed` fixture through
 * `ssf-bridge simulate --json --connector <connectorId>`, and checks that it prints the
 * sequence's events in order, notes each ignored fixture, and rejects the malformed one
 * (exit code 2).
 */
export async function checkSimulateGolden(connectorId: string, sequenceDir: URL, malformedFixture: URL) {
  const dir = fileURLToPath(sequenceDir);
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => join(dir, f));
  const malformed = fileURLToPath(malformedFixture);
  const run = await simulateCli(connectorId, [...files, malformed]);
  expect(run.code).toBe(2);

  type Expected = {
    type: string;
    subject: unknown;
    claims: unknown;
    sourceRecordId: string;
    occurredAt?: string;
    severity?: string;
  };
  const expected = files.flatMap((f) => (readFixture(pathToFileURL(f)).expect.events ?? []) as Expected[]);
  const printed = run.stdout
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(printed.every((p) => typeof p['txn'] === 'string')).toBe(true);
  expect(printed.map(({ txn: _txn, ...rest }) => rest)).toEqual(
    expected.map((e) => ({
      type: e.type,
      subject: e.subject,
      claims: e.claims,
      source_record_id: e.sourceRecordId,
      ...(e.occurredAt ? { occurred_at: e.occurredAt } : {}),
      ...(e.severity ? { severity: e.severity } : {}),
    })),
  );

  const notes = run.stderr
    .split('\n')
    .filter((l) => l.trim().startsWith('{'))
    .map((l) => JSON.parse(l) as { file?: string; ignored?: string; rejected?: string });
  const ignored = files
    .map((f) => ({ file: f, reason: readFixture(pathToFileURL(f)).expect.ignored }))
    .filter((x) => x.reason !== undefined);
  expect(notes.filter((n) => n.ignored !== undefined).map((n) => n.file)).toEqual(ignored.map((x) => x.file));
  for (const x of ignored) expect(notes.find((n) => n.file === x.file)?.ignored).toContain(x.reason);
  expect(notes.at(-1)).toMatchObject({
    file: malformed,
    rejected: expect.stringContaining(readFixture(pathToFileURL(malformed)).expect.rejected!),
  });
}
