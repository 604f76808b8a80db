import { describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from '../../core/plugin-api/index.ts';
import { lookUpMissing, scanningConnector, WaitBudget, withRetries, type ScanOutcome } from './mdm-poller.ts';
import { testContext } from './mdm-test-support.ts';

/** A call that fails as throttled `failures` times (Retry-After as given), then answers. */
function throttled(failures: number, retryAfterMs: number | undefined) {
  const calls: number[] = [];
  const fn = async () => {
    calls.push(Date.now());
    if (calls.length <= failures) {
      throw new RetryableError('Kandji answered 429', {
        ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
      });
    }
    return 'answered';
  };
  return { fn, calls };
}

describe('withRetries: retries within the scan budget', () => {
  it('waits what Retry-After asks, charging it to the budget', async () => {
    const { fn, calls } = throttled(2, 600);
    expect(await withRetries(fn, new WaitBudget(2_000), new AbortController().signal)).toBe('answered');
    expect(calls).toHaveLength(3);
    expect(calls[2]! - calls[0]!).toBeGreaterThanOrEqual(1_100);
  });

  it('Retry-After: 0 (or a reset already past) still backs off, so a throttling storm ends with the budget', async () => {
    const { fn, calls } = throttled(1_000, 0);
    const started = Date.now();
    await expect(withRetries(fn, new WaitBudget(1_600), new AbortController().signal)).rejects.toThrow(
      'Kandji answered 429',
    );
    // 500 ms, then 1 s; the next 2 s no longer fit the budget of 1.6 s.
    expect(calls).toHaveLength(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
  });

  it('a failure without Retry-After is retried twice with backoff, then given up', async () => {
    const { fn, calls } = throttled(1_000, undefined);
    await expect(withRetries(fn, new WaitBudget(60_000), new AbortController().signal)).rejects.toThrow();
    expect(calls).toHaveLength(3);
  });
});

describe('lookUpMissing: confirms devices missing from a listing one by one', () => {
  it('sorts answers into present, gone (404 → undefined), failed and deferred (beyond the limit), in the order given', async () => {
    const asked: string[] = [];
    const result = await lookUpMissing(['a', 'b', 'c', 'd', 'e'], {
      limit: 4,
      concurrency: 2,
      lookup: async (id) => {
        asked.push(id);
        if (id === 'b') return undefined;
        if (id === 'c')
          throw new PermanentError('GET /devices/c answered 400', { code: 'SSF_ERR_HTTP_STATUS' });
        return { id };
      },
      waits: new WaitBudget(0),
      signal: new AbortController().signal,
    });
    expect(asked.sort()).toEqual(['a', 'b', 'c', 'd']);
    expect([...result.present.keys()]).toEqual(['a', 'd']);
    expect(result.gone).toEqual(['b']);
    // A failure about one device (a 400) does not stop the others.
    expect(result.failed.map((f) => f.id)).toEqual(['c']);
    expect(result.deferred).toEqual(['e']);
  });

  it('stops at a failure that is not about one device (an unavailable API, refused credentials) and defers the rest', async () => {
    for (const error of [
      new RetryableError('GET /devices/b answered 503', { code: 'SSF_ERR_HTTP_STATUS' }),
      new PermanentError('the token was refused', { code: 'SSF_ERR_AUTH', authFailure: true }),
    ]) {
      const asked: string[] = [];
      const result = await lookUpMissing(['a', 'b', 'c', 'd'], {
        limit: 10,
        concurrency: 1,
        lookup: async (id) => {
          asked.push(id);
          if (id === 'b') throw error;
          return { id };
        },
        waits: new WaitBudget(0),
        signal: new AbortController().signal,
      });
      expect(asked).toEqual(['a', 'b']);
      expect(result.failed).toEqual([{ id: 'b', error }]);
      expect(result.deferred).toEqual(['c', 'd']);
      expect(result.gone).toEqual([]);
    }
  });

  it('rejects when the scan is aborted', async () => {
    const abort = new AbortController();
    const run = lookUpMissing(['a'], {
      limit: 10,
      concurrency: 1,
      lookup: async () => {
        abort.abort(new Error('instance stopping'));
        throw new RetryableError('aborted', { code: 'SSF_ERR_HTTP_ABORTED' });
      },
      waits: new WaitBudget(0),
      signal: abort.signal,
    });
    await expect(run).rejects.toThrow('aborted');
  });
});

describe('scanningConnector: a scan that holds something back', () => {
  it('sets recoverable_error with the problem, counts the outcome, and a later good scan clears it', async () => {
    const t = testContext();
    let outcome: ScanOutcome = { outcome: 'held', problem: '499 of 500 known devices are missing' };
    const runs = t.ctx.metrics.counter('test_scans_total', 'scans', ['outcome']);
    const instance = scanningConnector(t.ctx, {
      task: 'scan',
      everyMs: 60_000,
      maxJitterMs: 0,
      runs,
      refused: 'refused',
      scan: async () => outcome,
      probe: async () => undefined,
      answered: 'answered',
    });
    await instance.start(t.ctx.signal);
    await t.runTask('scan');
    expect(t.statuses).toEqual([
      { state: 'recoverable_error', reason: '499 of 500 known devices are missing' },
    ]);
    expect(t.successes).toBe(0);
    expect(t.counter('test_scans_total', { outcome: 'held' })).toBe(1);
    outcome = 'ok';
    await t.runTask('scan');
    expect(t.successes).toBe(1);
    expect(t.counter('test_scans_total', { outcome: 'ok' })).toBe(1);
    await instance.stop(100);
  });
});
