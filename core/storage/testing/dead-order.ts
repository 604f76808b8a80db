/**
 * The upgrade that numbers dead letters in the order they died (`dead_seq`, which lists page
 * by), seen from outside a store, whichever driver.
 */
import { expect } from 'vitest';
import type { BackfillDriver } from './first-attempt.ts';
import { ManualClock, newEvent } from './fixtures.ts';

/**
 * Dead-letters three deliveries out of their id order (the newest first, then the two others in
 * one millisecond), takes the database back to the schema before the migration (no dead_seq, no
 * counter, the migration not applied), reopens it, and checks that the letters are numbered in
 * the order they died (time, then id), that a letter dying next comes after them, and that a
 * replayed letter leaves the order.
 */
export async function checkDeadOrderBackfill(driver: BackfillDriver): Promise<void> {
  const clock = new ManualClock();
  const items = ['a', 'b', 'c', 'd'].map(() => newEvent());
  const store = await driver.open();
  const leased = await (async () => {
    try {
      await store.accept({ now: clock.now(), events: items, dedupeExpiresAt: clock.now() });
      const rows = await store.deliveries.lease({
        destinationId: 'dest-a',
        owner: 'w',
        limit: 4,
        now: clock.now(),
        leaseMs: 3_600_000,
      });
      const die = (i: number) =>
        store.deliveries.complete(
          [
            {
              kind: 'dead',
              id: rows[i]!.id,
              leaseToken: rows[i]!.leaseToken,
              error: { class: 'permanent', code: 'X', message: 'refused' },
            },
          ],
          clock.now(),
        );
      await die(2);
      clock.advance(1000);
      await die(1);
      await die(0);
      return rows;
    } finally {
      await store.close();
    }
  })();
  await driver.exec(
    `DROP TABLE dead_letter_sequence;
     DROP INDEX deliveries_dead_seq;
     ALTER TABLE deliveries DROP COLUMN dead_seq;
     DELETE FROM schema_migrations WHERE version >= ${driver.version};`,
  );
  const upgraded = await driver.open();
  try {
    const [a, b, c, d] = leased.map((l) => l.id);
    const listed = await upgraded.deadLetters.list();
    expect(listed.map((l) => [l.id, l.deadSeq])).toEqual([
      [c, 1],
      [a, 2],
      [b, 3],
    ]);
    await upgraded.deliveries.complete(
      [
        {
          kind: 'dead',
          id: d!,
          leaseToken: leased[3]!.leaseToken,
          error: { class: 'permanent', code: 'X', message: 'refused' },
        },
      ],
      clock.now(),
    );
    expect(await upgraded.deadLetters.list({}, { afterDeadSeq: 3 })).toMatchObject([{ id: d, deadSeq: 4 }]);
    expect(await upgraded.deadLetters.replay({ ids: [a!] }, clock.now())).toBe(1);
    expect((await upgraded.deadLetters.list()).map((l) => l.id)).toEqual([c, b, d]);
  } finally {
    await upgraded.close();
  }
}
