import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NewEvent } from '../../core/storage/types.ts';
import { READ_TOKEN, WRITE_TOKEN, call, startBridge, type Running } from '../admin/harness.ts';
import { ensureConsoleBuilt, openBrowser, type Browser } from './browser.ts';

const EVENTS = 100_000;
const BATCH = 5_000;
const USERS = 1_000;
/** Every console page's API call must answer within this, however full the store. */
const BOUND_MS = 1_500;
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

/** Events spread over the last six days, one in 50 with a dead-lettered delivery. */
function seed(i: number, now: number): NewEvent {
  const at = new Date(now - Math.floor((i / EVENTS) * 6 * 24 * 3_600_000));
  const id = randomUUID();
  const user = `user${i % USERS}@example.com`;
  return {
    event: {
      id,
      instanceId: 'api',
      sourceRecordId: `seed-${i}`,
      type: SESSION_REVOKED,
      subject: { format: 'email', email: user },
      subjectKey: JSON.stringify({ format: 'email', email: user }),
      claims: { event_timestamp: Math.floor(at.getTime() / 1000) },
      txn: `txn-${i}`,
      occurredAt: at,
      acceptedAt: at,
    },
    deliveries:
      i % 50 === 0 ? [{ destinationId: 'archive', jti: `${id}/archive`, orderingKey: `archive|${id}` }] : [],
  };
}

describe('the console with 100,000 events in the store', () => {
  let b: Running;
  let browser: Browser;

  beforeAll(async () => {
    ensureConsoleBuilt();
    b = await startBridge();
    const now = Date.now();
    const store = b.bridge.store;
    for (let start = 0; start < EVENTS; start += BATCH) {
      const events = Array.from({ length: BATCH }, (_, k) => seed(start + k, now));
      await store.accept({ now: new Date(now), events, dedupeExpiresAt: new Date(now) });
    }
    // The seeded deliveries go to a destination the bridge does not run: dead-letter them.
    const leased = await store.deliveries.lease({
      destinationId: 'archive',
      owner: 'seed',
      limit: 10_000,
      now: new Date(now),
      leaseMs: 60_000,
    });
    const error = { class: 'permanent', code: 'HTTP_410', message: 'receiver gone', status: 410 };
    await store.deliveries.complete(
      leased.map((d) => ({ kind: 'dead' as const, id: d.id, leaseToken: d.leaseToken, error })),
      new Date(now),
    );
    browser = await openBrowser();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await b?.stop();
  });

  it('answers every list the console shows within the bound, one page at a time', async () => {
    const timed = async (path: string) => {
      const started = performance.now();
      const res = await call(b.url, `/admin${path}`, { token: READ_TOKEN });
      const ms = performance.now() - started;
      expect(res.status, path).toBe(200);
      expect(ms, `${path} took ${Math.round(ms)} ms`).toBeLessThan(BOUND_MS);
      return res.body;
    };
    const events = await timed('/events');
    expect(events.items.length).toBe(50);
    const deeper = await timed(`/events?cursor=${events.next_cursor}&limit=500`);
    expect(deeper.items.length).toBe(500);
    expect((await timed('/events?subject=user7@example.com&limit=100')).items.length).toBe(100);
    const timeline = await timed('/timeline?subject=user123@example.com');
    expect(timeline.items.length).toBe(50);
    expect(timeline.items.every((i: any) => i.event.subject.email === 'user123@example.com')).toBe(true);
    const older = await timed(`/timeline?subject=user123@example.com&cursor=${timeline.next_cursor}`);
    expect(older.items.length).toBe(50);
    expect(older.next_cursor).toBeNull();
    const dead = await timed('/dead-letters');
    expect(dead.total).toBe(EVENTS / 50);
    expect(dead.items.length).toBe(50);
    expect((await timed('/deliveries?state=dead&limit=200')).items.length).toBe(200);
    const overview = await timed('/overview?window=7d');
    const accepted = overview.activity.buckets.reduce((n: number, x: any) => n + x.accepted, 0);
    expect(accepted).toBe(EVENTS);
    expect(overview.dead_letters.archive).toBe(EVENTS / 50);
    await timed('/destinations?window=7d');
    await timed('/audit');
  });

  it('loads the dashboard, the timeline and the dead letters in the browser within the bound', async () => {
    const { page } = browser;
    await page.goto(`${b.url}/console/`);
    await page.fill('#token', WRITE_TOKEN);
    await page.click('button[type=submit]');
    for (const [route, ready] of [
      ['dashboard?window=7d', '[data-test=dashboard]'],
      ['timeline?subject=user42@example.com', '[data-test=timeline-entry]'],
      ['dead-letters', '[data-test=dead-letter-table]'],
      ['events', '[data-test=events]'],
    ] as const) {
      const started = performance.now();
      await page.goto(`${b.url}/console/#/${route}`);
      await page.waitForSelector(ready);
      const ms = performance.now() - started;
      expect(ms, `${route} took ${Math.round(ms)} ms`).toBeLessThan(BOUND_MS * 2);
      await browser.shot(`scale-${route.split('?')[0]}`);
    }
    expect(await page.locator('[data-test=events] tbody tr').count()).toBe(50);
    expect(await page.locator('[data-test=events-more]').isVisible()).toBe(true);
  });
});
