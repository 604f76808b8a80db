import { describe, expect, it } from 'vitest';
import type { MappingResult } from '../../core/plugin-api/index.ts';
import { configSchema as falconConfigSchema } from '../crowdstrike-falcon/config.ts';
import { alertVersion } from '../crowdstrike-falcon/mapping.ts';
import { createIntake } from './edr-intake.ts';
import { ignored } from './edr-mapping.ts';
import { seenKey, WatermarkPoller, type PollPage } from './edr-poller.ts';
import { createTestContext, type TestContext } from './edr-test-support.ts';

/** The parts of a Falcon alert (Alerts API v2) the poll reads. */
interface Alert {
  composite_id: string;
  updated_timestamp: string;
  status: 'new' | 'closed';
}

const CID = '0a1b2c3d4e5f60718293a4b5c6d7e8f9:ind:7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b';

/**
 * POST /alerts/combined/alerts/v1 as the poll sees it: alerts updated at or after `since`, oldest
 * first, `after` paging.
 */
function alertsApi(alerts: Alert[], pageSize: number) {
  const sorted = alerts
    .map((alert) => ({ alert, ms: Date.parse(alert.updated_timestamp) }))
    .sort((a, b) => a.ms - b.ms);
  const api = {
    requests: 0,
    fetchPage: async (since: Date, after: string | undefined): Promise<PollPage> => {
      api.requests += 1;
      let first = 0;
      for (let last = sorted.length; first < last;) {
        const mid = (first + last) >>> 1;
        if (sorted[mid]!.ms < since.getTime()) first = mid + 1;
        else last = mid;
      }
      const offset = first + (after ? Number(after) : 0);
      const more = offset + pageSize < sorted.length;
      return {
        records: sorted.slice(offset, offset + pageSize).map((s) => s.alert),
        ...(more ? { next: String(offset + pageSize - first) } : {}),
      };
    },
  };
  return api;
}

/** A new alert raises the level; a closed one was never raised here. */
function mapAlert(record: unknown): MappingResult {
  const alert = record as Alert;
  if (alert.status === 'closed') return ignored('not_raised_here', `${alert.composite_id} was closed`);
  return {
    events: [
      {
        type: 'caep.risk-level-change',
        subject: { format: 'email', email: 'dana.lee@example.com' },
        claims: { principal: 'USER', current_level: 'HIGH' },
        sourceRecordId: `${alert.composite_id}#risk-level-change:USER:HIGH@${alert.updated_timestamp}`,
        txn: alert.composite_id,
      },
    ],
  };
}

/** A real poller with the crowdstrike-falcon connector's options and defaults (config.ts, connector.ts). */
function falconPoller(t: TestContext, api: ReturnType<typeof alertsApi>) {
  const defaults = falconConfigSchema.parse({ client_id: 'id', client_secret: 'secret-value-1234' }).alerts;
  const intake = createIntake(t.ctx, mapAlert, (r) => (r as Alert).composite_id, {
    priorCheckpoints: ['alerts'],
  });
  return new WatermarkPoller({
    ctx: t.ctx,
    checkpointName: 'alerts',
    overlapMs: defaults.overlap,
    initialLookbackMs: defaults.initial_lookback,
    sortedAscending: true,
    maxPagesPerRun: defaults.max_pages_per_run,
    fetchPage: (since, after) => api.fetchPage(since, after),
    version: alertVersion,
    intake,
    soleSource: true,
  });
}

const at = (ms: number) => new Date(ms).toISOString();

describe('WatermarkPoller', () => {
  it('moves on through a bulk close of more alerts than it remembers of the overlap window, and reads the alert after it', async () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    // An analyst bulk-closes 40,000 alerts: all updated within 40 s, twice as many as the poll
    // remembers of its overlap window. A minute later a new alert comes in.
    const alerts: Alert[] = Array.from({ length: 40_000 }, (_, i) => ({
      composite_id: `${CID}:bulk-${i}`,
      updated_timestamp: at(start + i),
      status: 'closed',
    }));
    alerts.push({ composite_id: `${CID}:late`, updated_timestamp: at(start + 100_000), status: 'new' });
    const api = alertsApi(alerts, 500);
    const t = createTestContext({ now: () => start + 120_000 });
    const poller = falconPoller(t, api);

    const watermarks: string[] = [];
    for (let run = 0; run < 5; run += 1) {
      await poller.run(new AbortController().signal);
      watermarks.push((t.checkpoints.get('alerts') as { watermark: string }).watermark);
    }
    // 20 pages of 500 alerts a run, each run 10,000 alerts on; then the late alert.
    expect(watermarks).toEqual([
      at(start + 9_999),
      at(start + 19_999),
      at(start + 29_999),
      at(start + 39_999),
      at(start + 100_000),
    ]);
    expect(t.events().map((e) => e.txn)).toEqual([`${CID}:late`]);
    expect(new Set(t.statuses.map((s) => s.state))).toEqual(new Set(['ok']));
    // What the window forgot was read (and mapped) again rather than skipped.
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBeGreaterThan(
      40_000,
    );
    // The memory of the window stays bounded, and pages of repeats do not write it again.
    const stored = t.checkpoints.get('alerts') as { recent: Record<string, number>; seen?: unknown };
    expect(Object.keys(stored.recent)).toHaveLength(20_000);
    expect(stored.seen).toBeUndefined();
    expect(t.commits('alerts').length).toBeLessThan(api.requests / 3);
  }, 120_000);

  it('reads a checkpoint written with record ids (seen) and skips what it names', async () => {
    const start = Date.parse('2026-01-01T00:00:00Z');
    const alerts: Alert[] = [1, 2, 3].map((n) => ({
      composite_id: `${CID}:${n}`,
      updated_timestamp: at(start + n * 60_000),
      status: 'new',
    }));
    const api = alertsApi(alerts, 500);
    const checkpoints = new Map<string, unknown>([
      [
        'alerts',
        {
          watermark: at(start + 120_000),
          seen: { [`${CID}:1`]: start + 60_000, [`${CID}:2`]: start + 120_000 },
        },
      ],
    ]);
    const t = createTestContext({ checkpoints, now: () => start + 600_000 });
    await falconPoller(t, api).run(new AbortController().signal);
    expect(t.events().map((e) => e.txn)).toEqual([`${CID}:3`]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'duplicate' })).toBe(2);
    expect(t.checkpoints.get('alerts')).toEqual({
      watermark: at(start + 180_000),
      recent: {
        [seenKey(`${CID}:1`)]: start + 60_000,
        [seenKey(`${CID}:2`)]: start + 120_000,
        [seenKey(`${CID}:3`)]: start + 180_000,
      },
    });
  });
});
