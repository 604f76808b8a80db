import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LeaderElection } from './leader.ts';
import { SqliteStore } from './sqlite/store.ts';
import { ManualClock } from './testing/fixtures.ts';

describe('LeaderElection', () => {
  let dir: string;
  let store: SqliteStore;
  let clock: ManualClock;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-leader-'));
    store = SqliteStore.open({ path: join(dir, 'bridge.db') });
    clock = new ManualClock();
  });
  afterEach(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const elect = (holder: string, changes: boolean[] = []) =>
    new LeaderElection({
      leases: store.leases,
      name: 'scheduler',
      holder,
      ttlMs: 15_000,
      clock,
      onChange: (leader) => changes.push(leader),
    });

  it('rule: exactly one instance leads; a killed leader is replaced within ttl + renew interval', async () => {
    const aChanges: boolean[] = [];
    const a = elect('a', aChanges);
    const b = elect('b');
    expect(await a.tick()).toBe(true);
    expect(await b.tick()).toBe(false);
    expect(aChanges).toEqual([true]);
    // a is killed: it never renews again. b keeps trying every renew interval.
    let waited = 0;
    while (!(await b.tick())) {
      clock.advance(b.renewEveryMs);
      waited += b.renewEveryMs;
    }
    expect(waited).toBeGreaterThanOrEqual(15_000);
    expect(waited).toBeLessThanOrEqual(15_000 + b.renewEveryMs);
    // The old leader stopped believing it leads when its lease ran out.
    expect(a.isLeader()).toBe(false);
  });

  it('rule: a leader that cannot reach the store steps down when its lease would expire', async () => {
    const a = elect('a');
    expect(await a.tick()).toBe(true);
    await store.close();
    clock.advance(10_000);
    expect(await a.tick()).toBe(true);
    clock.advance(5_000);
    expect(await a.tick()).toBe(false);
    store = SqliteStore.open({ path: join(dir, 'bridge.db') });
  });

  it('rule: stopping hands the lease over at once', async () => {
    const changes: boolean[] = [];
    const a = elect('a', changes);
    const b = elect('b');
    a.start();
    await expect.poll(() => a.isLeader()).toBe(true);
    await a.stop();
    expect(changes).toEqual([true, false]);
    expect(await b.tick()).toBe(true);
  });
});
