/**
 * The upgrade that added `first_attempt_at` (max_age counts from a delivery's first attempt),
 * seen from outside a store: rows written before it get a first attempt that keeps the promise
 * of the old rule or is exact, whichever driver.
 */
import { expect } from 'vitest';
import type { Store } from '../types.ts';
import { ManualClock, newEvent } from './fixtures.ts';

const HOUR = 3_600_000;

export interface BackfillDriver {
  /** Opens a store on the database, applying the migrations it lacks. */
  open(): Promise<Store>;
  /** Runs SQL on the database directly (no store open). */
  exec(sql: string): Promise<void>;
  /** The version of the migration that adds first_attempt_at. */
  version: number;
}

/**
 * Writes unfinished rows attempted 0, 1 and 2 times and a dead letter, takes the database back to
 * the schema before the migration (no first_attempt_at, neither it nor a later one applied),
 * reopens it, and checks the backfill: a row tried once gets its one attempt's time; a row tried
 * more often (its first attempt not recorded) gets its queueing time, the deadline it had;
 * untried and finished rows get none.
 */
export async function checkFirstAttemptBackfill(driver: BackfillDriver): Promise<void> {
  const clock = new ManualClock();
  const queuedAt = clock.now();
  const items = Object.fromEntries(
    ['untried', 'once', 'twice', 'dead'].map((d) => [d, newEvent({ destinations: [d] })]),
  );
  const store = await driver.open();
  try {
    await store.accept({ now: queuedAt, events: Object.values(items), dedupeExpiresAt: queuedAt });
    const error = { class: 'retryable', code: 'X', message: 'refused' };
    const attempt = async (destinationId: string, kind: 'retry' | 'dead') => {
      const [leased] = await store.deliveries.lease({
        destinationId,
        owner: 'w',
        limit: 1,
        now: clock.now(),
        leaseMs: 60_000,
      });
      const { id, leaseToken } = leased!;
      await store.deliveries.complete(
        [
          kind === 'retry'
            ? { kind, id, leaseToken, error, dueAt: clock.now() }
            : { kind, id, leaseToken, error },
        ],
        clock.now(),
      );
    };
    clock.advance(HOUR);
    await attempt('twice', 'retry');
    clock.advance(HOUR);
    await attempt('once', 'retry');
    await attempt('twice', 'retry');
    await attempt('dead', 'dead');
  } finally {
    await store.close();
  }
  // The later migrations are undone too, the one numbering dead letters first: a store applies
  // only the migrations past its latest version, so they are applied again on reopen.
  await driver.exec(
    `DROP TABLE dead_letter_sequence;
     DROP INDEX deliveries_dead_seq;
     ALTER TABLE deliveries DROP COLUMN dead_seq;
     ALTER TABLE deliveries DROP COLUMN first_attempt_at;
     DELETE FROM schema_migrations WHERE version >= ${driver.version};`,
  );
  const upgraded = await driver.open();
  try {
    const row = async (d: string) => (await upgraded.deliveries.forEvent(items[d]!.event.id))[0]!;
    const triedOnceAt = new Date(queuedAt.getTime() + 2 * HOUR);
    expect(await row('once')).toMatchObject({ attempts: 1, firstAttemptAt: triedOnceAt });
    expect(await row('twice')).toMatchObject({ attempts: 2, firstAttemptAt: queuedAt });
    expect(await row('untried')).toMatchObject({ attempts: 0, firstAttemptAt: undefined });
    expect(await row('dead')).toMatchObject({ state: 'dead', firstAttemptAt: undefined });
    // The rows go on from there: the next lease keeps what the upgrade found.
    const [next] = await upgraded.deliveries.lease({
      destinationId: 'once',
      owner: 'w',
      limit: 1,
      now: clock.advance(HOUR),
      leaseMs: 60_000,
    });
    expect(next).toMatchObject({ attempts: 2, firstAttemptAt: triedOnceAt });
  } finally {
    await upgraded.close();
  }
}
