import type * as WorkerThreads from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { RetryableError } from '../plugin-api/errors.ts';
import { compileRules } from './engine.ts';
import { EvaluatorSet, RecordEvaluationError } from './evaluator.ts';
import { mappingRulesSchema } from './rules.ts';

/** How many of the next helper threads fail to start, as one does when the process is out of threads. */
const threads = vi.hoisted(() => ({ failing: 0 }));

vi.mock('node:worker_threads', async (importOriginal) => {
  const actual = await importOriginal<typeof WorkerThreads>();
  class Worker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      if (threads.failing > 0) {
        threads.failing -= 1;
        throw Object.assign(new Error('Worker initialization failure: EAGAIN'), {
          code: 'ERR_WORKER_INIT_FAILED',
        });
      }
      super(...args);
    }
  }
  return { ...actual, default: { ...actual, Worker }, Worker };
});

const rules = mappingRulesSchema.parse([
  {
    name: 'disabled',
    match: 'action = "account.disabled"',
    event_type: 'risc.account-disabled',
    subject: '{"format": "email", "email": target}',
    id: 'id',
  },
]);
const record = { id: 'r-1', action: 'account.disabled', target: 'a@example.com' };

describe('the evaluator’s memory', () => {
  it('ends a thread whose rule outgrows its heap with the record’s error, and maps the next record on a new one', async () => {
    // Small objects, one after another, until the (small, for the test) heap is full.
    const grow = '$count($reduce([1..1000000], function($acc, $v){ {"next": $acc, "v": [$v, $v]} }, {}))';
    const set = new EvaluatorSet([{ match: `explode and ${grow} > 0`, fields: {} }], { heapMb: 48 });
    const err = await set.evaluate({ explode: true }, 60_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RecordEvaluationError);
    expect((err as Error).message).toBe(
      "the rules ran out of memory on the record (a rule set's thread may use 48 MB)",
    );
    expect((await set.evaluate({ explode: false }, 30_000)).results).toEqual([{ matched: false }]);
    set.close();
  }, 90_000);
});

describe('an evaluator that fails through no fault of the records', () => {
  it('mapRecords() rejects with a RetryableError when the thread cannot start, and maps once it can', async () => {
    const compiled = compileRules(rules);
    threads.failing = 1;
    const err = await compiled.mapRecords([record]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({
      code: 'SSF_ERR_MAPPING_UNAVAILABLE',
      retryAfterMs: 5_000,
      message:
        'mapping rules could not be evaluated, through no fault of the records: the JSONata evaluator thread could not start: Worker initialization failure: EAGAIN; try again',
    });
    const [outcome] = await compiled.mapRecords([record]);
    expect(outcome?.ok && outcome.result.events.map((e) => e.sourceRecordId)).toEqual(['r-1']);
    compiled.close();
  });

  it('map() throws the same RetryableError, not the PermanentError of a failing rule', () => {
    const compiled = compileRules(rules);
    threads.failing = 1;
    expect(() => compiled.map(record)).toThrow(RetryableError);
    expect(compiled.map(record).events).toHaveLength(1);
  });
});
