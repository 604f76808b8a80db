import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { RetryableError } from '../plugin-api/errors.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import { ManualClock, storedEvent } from '../storage/testing/fixtures.ts';
import type { DeliveryOutcome, Store } from '../storage/types.ts';
import { deliveryConfigSchema, type DeliveryConfigInput } from './config.ts';
import { DeliveryEngine } from './engine.ts';
import { deliveryJti, orderingKey } from './jti.ts';
import { ScriptedDestination, deferred, testSigner } from './testing.ts';
import type { SetSigner } from './types.ts';

// How the engine batches its work with the store: it leases ahead of its free slots, gives
// leased-ahead rows back when the destination must wait, and frees a slot as soon as the
// destination answered while the outcome waits for the next commit — within a bound.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Counted {
  store: Store;
  leases: number[];
  /** Holds back every `complete` call while set. */
  gate?: Promise<void>;
}

/** A SQLite store that counts lease calls and can hold outcome writes back. */
function countingStore(): Counted {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-batching-'));
  const inner = SqliteStore.open({ path: join(dir, 'bridge.db') });
  cleanups.push(async () => {
    await inner.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const counted: Counted = { store: inner, leases: [] };
  const deliveries = new Proxy(inner.deliveries, {
    get(target, name, receiver) {
      if (name === 'lease') {
        return async (...args: Parameters<typeof target.lease>) => {
          const rows = await target.lease(...args);
          counted.leases.push(rows.length);
          return rows;
        };
      }
      if (name === 'complete') {
        return async (outcomes: DeliveryOutcome[], now: Date) => {
          await counted.gate;
          return target.complete(outcomes, now);
        };
      }
      return Reflect.get(target, name, receiver) as unknown;
    },
  });
  counted.store = new Proxy(inner, {
    get(target, name) {
      if (name === 'deliveries') return deliveries;
      // The store's methods use private fields: call them on the store itself.
      const value = Reflect.get(target, name, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  }) as Store;
  return counted;
}

async function enqueue(
  store: Store,
  clock: ManualClock,
  count: number,
  destination = 'okta',
): Promise<string[]> {
  const items = Array.from({ length: count }, (_, i) => {
    const event = storedEvent({
      subjectKey: `k${i}`,
      acceptedAt: clock.now(),
      occurredAt: clock.now(),
    });
    return {
      event,
      deliveries: [
        {
          destinationId: destination,
          jti: deliveryJti(event.instanceId, event.sourceRecordId, event.type, destination),
          orderingKey: orderingKey(destination, event.subjectKey),
        },
      ],
    };
  });
  await store.accept({ now: clock.now(), events: items, dedupeExpiresAt: clock.now() });
  return items.map((i) => i.event.id);
}

function engine(
  store: Store,
  clock: ManualClock,
  dest: ScriptedDestination,
  config: DeliveryConfigInput,
  signer: SetSigner = testSigner(),
) {
  const e = new DeliveryEngine({
    store,
    signer,
    config: deliveryConfigSchema.parse({ poll_interval: '10ms', ...config }),
    clock,
    random: () => 0.5,
  });
  e.register(dest);
  cleanups.push(() => e.stop(0));
  return e;
}

describe('delivery engine batching', () => {
  it('rule: one lease serves a batch; the rows start as slots free, without leasing again', async () => {
    const { store, leases } = countingStore();
    const clock = new ManualClock();
    const dest = new ScriptedDestination('okta');
    const e = engine(store, clock, dest, { max_in_flight: 2, batch_size: 10 });
    await enqueue(store, clock, 6);
    expect(await e.pump('okta')).toBe(2);
    expect(leases).toEqual([6]);
    await e.idle();
    expect(await e.pump('okta')).toBe(2);
    await e.idle();
    expect(await e.pump('okta')).toBe(2);
    await e.idle();
    expect(leases).toEqual([6]);
    expect(dest.delivered).toHaveLength(6);
  });

  it('rule: a lease that came back short is not run again until something wakes the worker', async () => {
    const { store, leases } = countingStore();
    const clock = new ManualClock();
    const answered = deferred();
    const dest = new ScriptedDestination('okta', [
      async () => {
        await answered.promise;
        return { status: 202 };
      },
    ]);
    const e = engine(store, clock, dest, { max_in_flight: 4, batch_size: 10, poll_interval: '1h' });
    e.start();
    await expect.poll(() => leases).toEqual([0]);
    await enqueue(store, clock, 1);
    e.notify(['okta']);
    await expect.poll(() => dest.calls.length).toBe(1);
    // One row of the ten asked for: nothing else was due, so the worker waits for the attempt
    // (or new rows) instead of running an empty lease at once.
    await new Promise((r) => setTimeout(r, 50));
    expect(leases).toEqual([0, 1]);
    answered.resolve();
    await expect.poll(() => dest.delivered).toHaveLength(1);
    // The written outcome wakes it (a row of the same subject may lead now): one lease, not one
    // for the freed slot and another for the outcome.
    await expect.poll(() => leases.length).toBe(3);
    await new Promise((r) => setTimeout(r, 50));
    expect(leases).toEqual([0, 1, 0]);
  });

  it('rule: rows leased ahead go back, attempt not counted, while Retry-After holds the destination', async () => {
    const { store } = countingStore();
    const clock = new ManualClock();
    const dest = new ScriptedDestination('okta', [
      new RetryableError('busy', { detail: { status: 503 }, retryAfterMs: 5000 }),
    ]);
    const e = engine(store, clock, dest, { max_in_flight: 1, batch_size: 10 });
    const ids = await enqueue(store, clock, 3);
    expect(await e.pump('okta')).toBe(1);
    await e.idle();
    expect(await e.pump('okta')).toBe(0);
    await e.idle();
    const rows = (await Promise.all(ids.map((id) => store.deliveries.forEvent(id)))).flat();
    expect(rows.map((r) => [r.state, r.attempts])).toEqual([
      ['pending', 1],
      ['pending', 0],
      ['pending', 0],
    ]);
    clock.advance(5000);
    expect(await e.pump('okta')).toBe(1);
  });

  it('rule: a slot frees once the destination answered, but at most max_in_flight outcomes wait to be written', async () => {
    const counted = countingStore();
    const clock = new ManualClock();
    const dest = new ScriptedDestination('okta');
    const e = engine(counted.store, clock, dest, { max_in_flight: 1, batch_size: 10 });
    await enqueue(counted.store, clock, 5);
    const gate = deferred();
    counted.gate = gate.promise;
    e.start();
    await expect.poll(() => dest.calls.length).toBe(2);
    await new Promise((r) => setTimeout(r, 50));
    expect(dest.calls).toHaveLength(2);
    gate.resolve();
    await expect.poll(() => dest.delivered.length, { timeout: 5000 }).toBe(5);
    await e.stop(1000);
    expect((await counted.store.stats()).backlog).toEqual({});
  });
});

/** The test signer, recording the jti of every SET it is asked for; refuses those in `refuse`. */
function recordingSigner(refuse: ReadonlySet<string> = new Set()) {
  const inner = testSigner();
  const signed: string[] = [];
  const signer: SetSigner = {
    async sign(event, destination, delivery) {
      signed.push(delivery.jti);
      if (refuse.has(delivery.jti)) throw new Error('the key service is unavailable');
      return inner.sign(event, destination, delivery);
    },
  };
  return { signer, signed };
}

const jtisOf = async (store: Store, ids: string[]) =>
  (await Promise.all(ids.map((id) => store.deliveries.forEvent(id)))).flat().map((r) => r.jti);

/** A destination whose first answer waits for `answered`; the later ones come at once. */
function firstAnswerHeld() {
  const answered = deferred();
  const dest = new ScriptedDestination('okta', [
    async () => {
      await answered.promise;
      return { status: 202 };
    },
  ]);
  return { dest, answered };
}

/** Runs rounds until the worker has had `rounds` chances to start what is left. */
async function drain(e: DeliveryEngine, rounds = 3): Promise<void> {
  for (let i = 0; i < rounds; i++) {
    await e.idle();
    await e.pump('okta');
  }
  await e.idle();
}

describe('delivery engine signing ahead', () => {
  it('rule: the rows of a lease are signed as they are leased, so a slot waits only for its push', async () => {
    const { store } = countingStore();
    const clock = new ManualClock();
    const { dest, answered } = firstAnswerHeld();
    const { signer, signed } = recordingSigner();
    const e = engine(store, clock, dest, { max_in_flight: 1, batch_size: 10 }, signer);
    const jtis = await jtisOf(store, await enqueue(store, clock, 4));
    expect(await e.pump('okta')).toBe(1);
    // One row holds the only slot; the three waiting for it are signed already.
    await expect.poll(() => dest.calls.length).toBe(1);
    await expect.poll(() => [...signed].sort()).toEqual([...jtis].sort());
    await new Promise((r) => setTimeout(r, 20));
    expect(dest.calls).toHaveLength(1);
    answered.resolve();
    await drain(e);
    expect([...dest.delivered].sort()).toEqual([...jtis].sort());
    // Each SET was signed once: the rows that waited went out with the SET made for them.
    expect(signed).toHaveLength(4);
  });

  it('rule: a row whose earlier attempt was interrupted is signed only when its own attempt starts', async () => {
    const { store } = countingStore();
    const clock = new ManualClock();
    const ids = await enqueue(store, clock, 3);
    const [first, suspect, last] = await jtisOf(store, ids);
    // A bridge leases the first two rows and dies with the second in flight: its lease expires.
    const held = await store.deliveries.lease({
      destinationId: 'okta',
      owner: 'died',
      limit: 2,
      now: clock.now(),
      leaseMs: 60_000,
    });
    expect(held.map((d) => d.jti)).toEqual([first, suspect]);
    await store.deliveries.complete(
      [{ kind: 'release', id: held[0]!.id, leaseToken: held[0]!.leaseToken }],
      clock.now(),
    );
    clock.advance(61_000);

    const { dest, answered } = firstAnswerHeld();
    const { signer, signed } = recordingSigner();
    const e = engine(store, clock, dest, { max_in_flight: 1, batch_size: 10 }, signer);
    expect(await e.pump('okta')).toBe(1);
    await expect.poll(() => dest.calls.length).toBe(1);
    const started = dest.calls[0]!.jti;
    expect(started).not.toBe(suspect);
    // The others are signed ahead; the suspect is not, while the row in the slot runs.
    await expect.poll(() => [...signed].sort()).toEqual([first, last].sort());
    answered.resolve();
    await drain(e);
    expect([...dest.delivered].sort()).toEqual([first, suspect, last].sort());
    expect(signed.at(-1)).toBe(suspect);
    expect(signed).toHaveLength(3);
  });

  it('rule: a signature made ahead that fails is the failure of its attempt; one dropped with its row goes unnoticed', async () => {
    const { store } = countingStore();
    const clock = new ManualClock();
    const ids = await enqueue(store, clock, 3);
    const jtis = await jtisOf(store, ids);
    const refused = jtis[2]!;
    const dest = new ScriptedDestination('okta', [
      new RetryableError('busy', { detail: { status: 503 }, retryAfterMs: 5000 }),
    ]);
    const { signer, signed } = recordingSigner(new Set([refused]));
    const e = engine(
      store,
      clock,
      dest,
      { max_in_flight: 1, batch_size: 10, retry: { max_attempts: 5 } },
      signer,
    );
    // The first attempt gets Retry-After: the rows signed ahead go back unattempted, the refused
    // signature with them (an unhandled rejection would fail this test).
    expect(await e.pump('okta')).toBe(1);
    await e.idle();
    expect(await e.pump('okta')).toBe(0);
    await e.idle();
    expect(signed).toHaveLength(3);
    clock.advance(5000);
    await drain(e);
    const rows = (await Promise.all(ids.map((id) => store.deliveries.forEvent(id)))).flat();
    const refusedRow = rows.find((r) => r.jti === refused)!;
    // Its attempt failed on the signature: recorded as that attempt's retry, with the error.
    expect(refusedRow).toMatchObject({ state: 'pending', attempts: 1 });
    expect(refusedRow.lastError?.message).toContain('the key service is unavailable');
    expect(dest.calls.map((c) => c.jti)).not.toContain(refused);
    expect(
      rows
        .filter((r) => r.state === 'delivered')
        .map((r) => r.jti)
        .sort(),
    ).toEqual(jtis.filter((j) => j !== refused).sort());
  });
});

describe('delivery engine waking', () => {
  it('rule: attempts that end in one turn of the event loop free their slots to one pump', async () => {
    const { store } = countingStore();
    const clock = new ManualClock();
    const answers = [deferred(), deferred(), deferred()];
    let pumps = 0;
    const dest = new (class extends ScriptedDestination {
      override isPaused(): boolean {
        pumps += 1;
        return super.isPaused();
      }
    })(
      'okta',
      answers.map((a) => async () => {
        await a.promise;
        return { status: 202 };
      }),
    );
    const startedIn: number[] = [];
    const deliver = dest.deliver.bind(dest);
    dest.deliver = (set, signal) => {
      startedIn.push(pumps);
      return deliver(set, signal);
    };
    const e = engine(store, clock, dest, { max_in_flight: 3, batch_size: 10 });
    await enqueue(store, clock, 6);
    e.start();
    await expect.poll(() => dest.calls.length).toBe(3);
    // The answers arrive as answers from sockets do: each in its own callback of one loop phase.
    for (const a of answers) setImmediate(() => a.resolve());
    await expect.poll(() => dest.delivered.length).toBe(6);
    // The three later rows started together, in the pump after the three answers, not one pump each.
    expect(new Set(startedIn.slice(3)).size).toBe(1);
    expect(startedIn[3]).toBeGreaterThan(startedIn[0]!);
  });
});
