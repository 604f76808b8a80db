/**
 * The ordering-head rule seen from outside a store: each ordering key with unfinished
 * deliveries flags exactly one of them, its lowest id, and that is the only row `lease` takes.
 */
import { expect } from 'vitest';
import type { DeliveryOutcome, LeasedDelivery, Store } from '../types.ts';
import { ManualClock, newEvent } from './fixtures.ts';

/**
 * Counts ordering keys whose `head` flag is not on exactly their lowest unfinished delivery
 * (the row leasing may take next); 0 in every committed state of either store.
 */
export const MISPLACED_HEADS_SQL = `SELECT COUNT(*) AS n FROM (
  SELECT * FROM (SELECT ordering_key, MIN(id) AS id FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY ordering_key
                 EXCEPT SELECT ordering_key, id FROM deliveries WHERE head = true) AS unflagged
  UNION ALL
  SELECT * FROM (SELECT ordering_key, id FROM deliveries WHERE head = true
                 EXCEPT SELECT ordering_key, MIN(id) FROM deliveries WHERE state IN ('pending', 'leased') GROUP BY ordering_key)
    AS wrongly_flagged
) AS misplaced`;

/**
 * Runs a fixed pseudo-random mix of accepts, leases, outcomes (delivered, retry, dead),
 * replays and discards over a few ordering keys, checking `misplaced()` (MISPLACED_HEADS_SQL
 * on the store's database) after every step, then drains the store: no key may be stuck.
 */
export async function exerciseOrderingHeads(store: Store, misplaced: () => Promise<number>): Promise<void> {
  const clock = new ManualClock();
  let seed = 7;
  const rand = (n: number) => {
    // mulberry32: a fixed sequence, so a failure replays.
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
  const destinations = ['dest-a', 'dest-b'];
  const error = { class: 'permanent', code: 'BAD', message: 'no' };
  let held: LeasedDelivery[] = [];
  for (let step = 0; step < 400; step++) {
    const op = rand(10);
    if (op < 3) {
      const items = Array.from({ length: 1 + rand(4) }, () =>
        newEvent({ destinations: [destinations[rand(2)]!], orderingKey: `k${rand(5)}` }),
      );
      await store.accept({ now: clock.now(), events: items, dedupeExpiresAt: clock.now() });
    } else if (op < 6) {
      held.push(
        ...(await store.deliveries.lease({
          destinationId: destinations[rand(2)]!,
          owner: 'w',
          limit: 1 + rand(4),
          now: clock.now(),
          leaseMs: 30_000,
        })),
      );
    } else if (op < 9) {
      const done = held.filter(() => rand(2) === 0);
      held = held.filter((l) => !done.includes(l));
      const outcomes = done.map((l): DeliveryOutcome => {
        const pick = rand(20);
        if (pick < 12) return { kind: 'delivered', id: l.id, leaseToken: l.leaseToken };
        if (pick < 17)
          return { kind: 'retry', id: l.id, leaseToken: l.leaseToken, dueAt: clock.now(), error };
        return { kind: 'dead', id: l.id, leaseToken: l.leaseToken, error };
      });
      await store.deliveries.complete(outcomes, clock.now());
    } else if (rand(2) === 0) {
      await store.deadLetters.replay({ destinationId: destinations[rand(2)]! }, clock.now());
    } else {
      await store.deliveries.discardUnfinished('dest-b');
    }
    expect(await misplaced(), `after step ${step} (op ${op})`).toBe(0);
  }
  // Nothing is stuck: every unfinished row is delivered in the end.
  await store.deliveries.complete(
    held.map((l) => ({ kind: 'delivered', id: l.id, leaseToken: l.leaseToken })),
    clock.now(),
  );
  for (const destinationId of destinations) {
    for (;;) {
      const batch = await store.deliveries.lease({
        destinationId,
        owner: 'w',
        limit: 50,
        now: clock.now(),
        leaseMs: 1,
      });
      if (batch.length === 0) break;
      await store.deliveries.complete(
        batch.map((l) => ({ kind: 'delivered', id: l.id, leaseToken: l.leaseToken })),
        clock.now(),
      );
    }
  }
  expect((await store.stats()).backlog).toEqual({});
  expect(await misplaced()).toBe(0);
}
