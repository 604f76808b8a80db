import { describe, expect, it, vi } from 'vitest';
import { RetryableError } from '../plugin-api/errors.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import { capturingLogger } from '../../test/helpers/capture.ts';
import { SchedulerService } from './scheduler.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function service(coordinator?: { shouldRun: () => boolean }) {
  const metrics = new MetricsRegistry({ collectDefault: false });
  const { logger, text } = capturingLogger();
  return {
    scheduler: new SchedulerService({ logger, metrics, ...(coordinator ? { coordinator } : {}) }),
    metrics,
    text,
  };
}

async function runCount(metrics: MetricsRegistry, outcome: string): Promise<number> {
  const m = await metrics.registry.getSingleMetric('ssf_bridge_scheduled_runs_total')?.get();
  return (m?.values ?? []).filter((v) => v.labels.outcome === outcome).reduce((n, v) => n + v.value, 0);
}

describe('scheduler', () => {
  it('never overlaps a run with itself and counts the skipped overlaps', async () => {
    const { scheduler, metrics } = service();
    let concurrent = 0;
    let maxConcurrent = 0;
    let runs = 0;
    scheduler
      .forInstance('i1', capturingLogger().logger)
      .schedule('slow', { everyMs: 10, runOnStart: true }, async () => {
        concurrent++;
        runs++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        await sleep(35);
        concurrent--;
      });
    await sleep(150);
    scheduler.stopInstance('i1');
    expect(runs).toBeGreaterThanOrEqual(2);
    expect(maxConcurrent).toBe(1);
    expect(await runCount(metrics, 'ok')).toBe(runs - (concurrent ? 1 : 0));
  });

  it('logs and counts a failed run, and keeps the schedule going', async () => {
    const { scheduler, metrics, text } = service();
    let calls = 0;
    scheduler
      .forInstance('i2', capturingLogger().logger)
      .schedule('flaky', { everyMs: 15, runOnStart: true }, async () => {
        calls++;
        if (calls === 1) throw new Error('vendor API down');
      });
    await sleep(80);
    scheduler.stopInstance('i2');
    expect(calls).toBeGreaterThanOrEqual(3);
    expect(await runCount(metrics, 'failed')).toBe(1);
    expect(text()).toBe(''); // the instance logger received it, not the root
  });

  it('aborts the run in progress when its instance stops, and runs no more', async () => {
    const { scheduler } = service();
    let aborted = false;
    let calls = 0;
    scheduler
      .forInstance('i3', capturingLogger().logger)
      .schedule('long', { everyMs: 10, runOnStart: true }, async (signal) => {
        calls++;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        aborted = signal.aborted;
      });
    await sleep(30);
    scheduler.stopInstance('i3');
    await sleep(40);
    expect(aborted).toBe(true);
    expect(calls).toBe(1);
  });

  it('runs only where the coordinator elects this instance', async () => {
    const { scheduler, metrics } = service({ shouldRun: () => false });
    let calls = 0;
    scheduler
      .forInstance('i4', capturingLogger().logger)
      .schedule('poll', { everyMs: 10, runOnStart: true }, async () => {
        calls++;
      });
    await sleep(50);
    scheduler.stopInstance('i4');
    expect(calls).toBe(0);
    expect(await runCount(metrics, 'skipped')).toBeGreaterThanOrEqual(2);
  });

  it('aborts a long run once the coordinator no longer elects this instance, and starts none until it does', async () => {
    let elected = true;
    const { scheduler, metrics } = service({ shouldRun: () => elected });
    let calls = 0;
    let abortedWith: unknown;
    scheduler
      .forInstance('i5', capturingLogger().logger)
      .schedule('stream', { everyMs: 10, runOnStart: true }, async (signal) => {
        calls++;
        await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve()));
        abortedWith = signal.reason;
      });
    await sleep(40);
    expect([calls, abortedWith]).toEqual([1, undefined]);
    elected = false;
    await sleep(40);
    expect(String(abortedWith)).toMatch(/no longer the scheduler leader/);
    expect(calls).toBe(1);
    expect(await runCount(metrics, 'skipped')).toBeGreaterThanOrEqual(1);
    elected = true;
    await sleep(40);
    scheduler.stopInstance('i5');
    expect(calls).toBe(2);
  });

  it('runs a cron task at start only where the coordinator elects this instance', async () => {
    const { scheduler, metrics } = service({ shouldRun: () => false });
    let runs = 0;
    scheduler
      .forInstance('i8', capturingLogger().logger)
      .schedule('nightly', { cron: '0 3 * * *', runOnStart: true }, async () => {
        runs += 1;
      });
    await sleep(20);
    scheduler.stopInstance('i8');
    expect(runs).toBe(0);
    expect(await runCount(metrics, 'skipped')).toBe(1);
    const elected = service({ shouldRun: () => true });
    elected.scheduler
      .forInstance('i8', capturingLogger().logger)
      .schedule('nightly', { cron: '0 3 * * *', runOnStart: true }, async () => {
        runs += 1;
      });
    await sleep(20);
    elected.scheduler.stopInstance('i8');
    expect(runs).toBe(1);
  });

  it('starts no run when its instance stops while the coordinator is still deciding', async () => {
    let decide: (elected: boolean) => void = () => undefined;
    let asked = 0;
    const coordinator = {
      shouldRun: () => {
        asked += 1;
        return new Promise<boolean>((resolve) => (decide = resolve));
      },
    };
    const { scheduler } = service(coordinator as unknown as { shouldRun: () => boolean });
    let runs = 0;
    scheduler
      .forInstance('i9', capturingLogger().logger)
      .schedule('poll', { everyMs: 10_000, runOnStart: true }, async () => {
        runs += 1;
      });
    await expect.poll(() => asked).toBe(1);
    // The leader check is a database round trip; the instance stops meanwhile.
    scheduler.stopInstance('i9');
    decide(true);
    await sleep(20);
    expect(runs).toBe(0);
  });

  it('holds later runs until the retry-after of a rate-limited run has passed', async () => {
    const { scheduler, metrics } = service();
    const calls: number[] = [];
    scheduler
      .forInstance('i6', capturingLogger().logger)
      .schedule('limited', { everyMs: 10, runOnStart: true }, async () => {
        calls.push(Date.now());
        if (calls.length === 1) throw new RetryableError('429 from the vendor', { retryAfterMs: 120 });
      });
    await sleep(250);
    scheduler.stopInstance('i6');
    expect(calls.length).toBeGreaterThanOrEqual(2);
    expect((calls[1] as number) - (calls[0] as number)).toBeGreaterThanOrEqual(110);
    expect(await runCount(metrics, 'held')).toBeGreaterThanOrEqual(3);
  });

  it('holds runs for at most an hour, however long a rate-limited run was asked to wait', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] });
    try {
      const { scheduler } = service();
      let calls = 0;
      scheduler
        .forInstance('i7', capturingLogger().logger)
        .schedule('limited', { everyMs: 60_000, runOnStart: true }, async () => {
          calls += 1;
          if (calls === 1)
            throw new RetryableError('vendor asks to wait for ever', { retryAfterMs: Infinity });
        });
      await vi.advanceTimersByTimeAsync(1);
      expect(calls).toBe(1);
      await vi.advanceTimersByTimeAsync(3_600_000 - 60_000);
      expect(calls).toBe(1);
      await vi.advanceTimersByTimeAsync(60_000);
      expect(calls).toBe(2);
      scheduler.stopInstance('i7');
    } finally {
      vi.useRealTimers();
    }
  });

  it('refuses invalid schedules with a clear message', () => {
    const { scheduler } = service();
    const s = scheduler.forInstance('i5', capturingLogger().logger);
    expect(() => s.schedule('x', { cron: 'every minute' }, async () => undefined)).toThrow(
      /not a valid cron expression/,
    );
    expect(() => s.schedule('x', {}, async () => undefined)).toThrow(/exactly one of cron or everyMs/);
    expect(() => s.schedule('x', { everyMs: 0 }, async () => undefined)).toThrow(/must be positive/);
  });

  it('measures runs of up to half an hour in buckets, since a full scan takes minutes', async () => {
    const { scheduler, metrics } = service();
    let done = false;
    scheduler
      .forInstance('i9', capturingLogger().logger)
      .schedule('scan', { everyMs: 60_000, runOnStart: true }, async () => {
        done = true;
      });
    while (!done) await sleep(5);
    await sleep(5);
    scheduler.stopInstance('i9');
    const text = (await metrics.render()).body;
    const bounds = [...text.matchAll(/^ssf_bridge_scheduled_run_seconds_bucket\{le="([^"]+)"/gm)].map(
      (m) => m[1],
    );
    expect(bounds).toEqual(['0.1', '0.5', '1', '5', '10', '30', '60', '120', '300', '600', '1800', '+Inf']);
  });
});
