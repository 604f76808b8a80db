import { describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from '../../core/plugin-api/index.ts';
import {
  FAILURES_TO_STOP,
  FailureStreak,
  lookUpMissing,
  readEach,
  ReadsFailing,
  scanningConnector,
  WaitBudget,
  withRetries,
  type ScanOutcome,
} from './mdm-poller.ts';
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

describe('readEach: reads devices one by one, so that one failing device costs itself alone', () => {
  const serverError = () =>
    new RetryableError('GET /devices/b/status answered 500', { code: 'SSF_ERR_HTTP_SERVER' });

  it('records a failure about one device and goes on with the others, in the order given', async () => {
    const asked: string[] = [];
    const error = serverError();
    const result = await readEach(['a', 'b', 'c'], {
      concurrency: 1,
      read: async (id) => {
        asked.push(id);
        if (id === 'b') throw error;
        return `status of ${id}`;
      },
      failure: () => 'device',
      waits: new WaitBudget(0),
      signal: new AbortController().signal,
    });
    expect(asked).toEqual(['a', 'b', 'c']);
    expect([...result.answers]).toEqual([
      ['a', 'status of a'],
      ['c', 'status of c'],
    ]);
    expect(result.failed).toEqual([{ id: 'b', error }]);
    expect(result.unread).toEqual([]);
    expect(result.stoppedBy).toBeUndefined();
  });

  it('stops at a failure about the API (recorded) or a spent budget (left unread with the rest)', async () => {
    const refused = new PermanentError('the token was refused', {
      code: 'SSF_ERR_HTTP_AUTH',
      authFailure: true,
    });
    const spent = new Error('the request budget is used up');
    for (const [error, kind, failed] of [
      [refused, 'stop', ['b']],
      [spent, 'unread', []],
    ] as const) {
      const asked: string[] = [];
      const result = await readEach(['a', 'b', 'c'], {
        concurrency: 1,
        read: async (id) => {
          asked.push(id);
          if (id === 'b') throw error;
          return id;
        },
        failure: () => kind,
        waits: new WaitBudget(0),
        signal: new AbortController().signal,
      });
      expect(asked).toEqual(['a', 'b']);
      expect(result.failed.map((f) => f.id)).toEqual(failed);
      expect(result.unread).toEqual(kind === 'stop' ? ['c'] : ['b', 'c']);
      expect(result.stoppedBy).toBe(error);
    }
  });
});

describe('readEach: failures about their device in a row stop the reads (an endpoint down for every device)', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => `d${String(i).padStart(2, '0')}`);
  const serverError = (id: string) =>
    new RetryableError(`GET /devices/${id}/status answered 500`, { code: 'SSF_ERR_HTTP_SERVER' });

  it(`stops after ${FAILURES_TO_STOP} in a row by default, with a ReadsFailing naming the last; an answer between them starts the count over`, async () => {
    const asked: string[] = [];
    // d05 answers; every other read fails.
    const result = await readEach(ids(25), {
      concurrency: 1,
      read: async (id) => {
        asked.push(id);
        if (id === 'd05') return 'status of d05';
        throw serverError(id);
      },
      failure: () => 'device',
      waits: new WaitBudget(0),
      signal: new AbortController().signal,
    });
    // Five failures, an answer, then ten failures: d06 … d15.
    expect(asked).toEqual(ids(16));
    expect([...result.answers.keys()]).toEqual(['d05']);
    expect(result.failed.map((f) => f.id)).toEqual(ids(16).filter((id) => id !== 'd05'));
    expect(result.unread).toEqual(ids(25).slice(16));
    expect(result.stoppedBy).toBeInstanceOf(ReadsFailing);
    const stop = result.stoppedBy as ReadsFailing;
    expect(stop.failures).toBe(FAILURES_TO_STOP);
    expect(stop.last).toBe(result.failed.at(-1)?.error);
    expect(stop.errorClass).toBe('retryable');
    expect(stop.code).toBe('SSF_ERR_MDM_READS_FAILING');
    expect(stop.message).toBe(
      '10 reads in a row failed, the last with: GET /devices/d15/status answered 500',
    );
  });

  it('with reads in flight, no read starts after the stop: at most the limit plus the concurrency, less one', async () => {
    let asked = 0;
    const result = await readEach(ids(50), {
      concurrency: 4,
      read: async (id) => {
        asked += 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
        throw serverError(id);
      },
      failure: () => 'device',
      streak: new FailureStreak(5),
      waits: new WaitBudget(0),
      signal: new AbortController().signal,
    });
    expect(asked).toBeGreaterThanOrEqual(5);
    expect(asked).toBeLessThanOrEqual(8);
    expect(result.failed).toHaveLength(asked);
    expect(result.unread).toHaveLength(50 - asked);
    expect(result.stoppedBy).toBeInstanceOf(ReadsFailing);
  });

  it('one streak carries the count across calls (a scan that reads in chunks); a stop or a spent budget does not count', async () => {
    const streak = new FailureStreak(3);
    const read = async (id: string) => {
      if (id.startsWith('ok')) return id;
      throw serverError(id);
    };
    const options = {
      concurrency: 1,
      read,
      failure: (err: unknown) => (String(err).includes('spent') ? ('unread' as const) : ('device' as const)),
      streak,
      waits: new WaitBudget(0),
      signal: new AbortController().signal,
    };
    const first = await readEach(['ok-a', 'b', 'c'], options);
    expect(first.stoppedBy).toBeUndefined();
    expect(streak.count).toBe(2);
    const second = await readEach(['d', 'e'], options);
    expect(second.failed.map((f) => f.id)).toEqual(['d']);
    expect(second.unread).toEqual(['e']);
    expect((second.stoppedBy as ReadsFailing).failures).toBe(3);

    // A device whose read was never made (a spent budget) neither counts nor starts the count over.
    const spent = new FailureStreak(2);
    const third = await readEach(['x', 'y'], {
      ...options,
      streak: spent,
      read: async (id) => {
        throw id === 'x' ? serverError(id) : new Error('budget spent');
      },
    });
    expect(third.failed.map((f) => f.id)).toEqual(['x']);
    expect(spent.count).toBe(1);
  });

  it(`lookUpMissing stops after ${FAILURES_TO_STOP} lookups in a row failed about their device (a 400 each), deferring the rest`, async () => {
    const asked: string[] = [];
    const result = await lookUpMissing(ids(15), {
      limit: 100,
      concurrency: 1,
      lookup: async (id) => {
        asked.push(id);
        throw new PermanentError(`GET /devices/${id} answered 400`, { code: 'SSF_ERR_HTTP_STATUS' });
      },
      waits: new WaitBudget(0),
      signal: new AbortController().signal,
    });
    expect(asked).toEqual(ids(10));
    expect(result.failed.map((f) => f.id)).toEqual(ids(10));
    expect(result.deferred).toEqual(ids(15).slice(10));
    expect(result.gone).toEqual([]);
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
