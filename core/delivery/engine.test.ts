import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import type { Logger, SubjectIdentifier } from '../plugin-api/types.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import { ManualClock, storedEvent } from '../storage/testing/fixtures.ts';
import type { DeliveryOutcome, Store } from '../storage/types.ts';
import type { CircuitState } from './breaker.ts';
import { deliveryConfigSchema, type DeliveryConfigInput } from './config.ts';
import { DeliveryEngine } from './engine.ts';
import { deliveryJti, orderingKey } from './jti.ts';
import { ScriptedDestination, deferred, testSigner } from './testing.ts';
import { DestinationHeldError, type DeliveryObserver } from './types.ts';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Harness {
  store: Store;
  clock: ManualClock;
  engine: DeliveryEngine;
  events: Record<string, unknown[]>;
  enqueue(subject?: SubjectIdentifier, destinations?: string[]): Promise<{ eventId: string; jtis: string[] }>;
  /** One leasing round and wait for everything it started. */
  round(destinationId?: string): Promise<number>;
  newEngine(owner: string): DeliveryEngine;
}

let records = 0;

async function harness(
  destinations: ScriptedDestination[],
  config: DeliveryConfigInput = {},
  options: { store?: Store; clock?: ManualClock; random?: () => number } = {},
): Promise<Harness> {
  let store = options.store;
  if (store === undefined) {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-delivery-'));
    const opened = SqliteStore.open({ path: join(dir, 'bridge.db') });
    store = opened;
    cleanups.push(async () => {
      await opened.close();
      rmSync(dir, { recursive: true, force: true });
    });
  }
  const clock = options.clock ?? new ManualClock();
  const parsed = deliveryConfigSchema.parse({
    poll_interval: '10ms',
    retry: { initial_interval: '1s', max_interval: '1m', max_attempts: 10, max_age: '1h' },
    ...config,
  });
  const events: Record<string, unknown[]> = {};
  const observer: DeliveryObserver = new Proxy(
    {},
    {
      get:
        (_, name: string) =>
        (...args: unknown[]) =>
          (events[name] ??= []).push(args.length === 1 ? args[0] : args),
    },
  );
  const newEngine = (owner: string) => {
    const engine = new DeliveryEngine({
      store: store!,
      signer: testSigner(),
      config: parsed,
      clock,
      owner,
      random: options.random ?? (() => 0.5),
      observer,
    });
    cleanups.push(() => engine.stop(0));
    return engine;
  };
  const engine = newEngine('engine-1');
  for (const d of destinations) engine.register(d);
  const s = store;
  return {
    store: s,
    clock,
    engine,
    events,
    newEngine,
    async enqueue(
      subject = { format: 'email', email: `u${++records}@example.com` },
      to = destinations.map((d) => d.id),
    ) {
      const event = storedEvent({
        subject,
        subjectKey: JSON.stringify(subject),
        sourceRecordId: `rec-${++records}`,
        acceptedAt: clock.now(),
        occurredAt: clock.now(),
      });
      const deliveries = to.map((destinationId) => ({
        destinationId,
        jti: deliveryJti(event.instanceId, event.sourceRecordId, event.type, destinationId),
        orderingKey: orderingKey(destinationId, event.subjectKey),
      }));
      await s.accept({ now: clock.now(), events: [{ event, deliveries }], dedupeExpiresAt: clock.now() });
      return { eventId: event.id, jtis: deliveries.map((d) => d.jti) };
    },
    async round(destinationId = destinations[0]!.id) {
      const n = await engine.pump(destinationId);
      await engine.idle();
      return n;
    },
  };
}

const unavailable = (retryAfterMs?: number) =>
  new RetryableError('receiver answered 503', {
    detail: { status: 503 },
    ...(retryAfterMs === undefined ? {} : { retryAfterMs }),
  });

describe('delivery engine', () => {
  it('delivers a due event with a SET signed for the destination, and marks it delivered', async () => {
    const dest = new ScriptedDestination('okta');
    const h = await harness([dest]);
    const { eventId, jtis } = await h.enqueue();
    expect(await h.round()).toBe(1);
    expect(dest.delivered).toEqual(jtis);
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({ state: 'delivered', attempts: 1, jti: jtis[0] });
    expect(h.events.delivered).toHaveLength(1);
    expect(await h.round()).toBe(0);
  });

  it('rule: a retryable failure is retried after a full-jitter delay below the backoff bound', async () => {
    const draws = [0.5, 0.99];
    const dest = new ScriptedDestination('okta', [unavailable(), unavailable()]);
    const h = await harness([dest], {}, { random: () => draws.shift() ?? 0 });
    const { eventId } = await h.enqueue();
    const t0 = h.clock.now().getTime();
    await h.round();
    let [row] = await h.store.deliveries.forEvent(eventId);
    // Attempt 1: bound 1 s, draw 0.5 → 500 ms.
    expect(row).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: { class: 'retryable', status: 503 },
    });
    expect(row!.dueAt.getTime()).toBe(t0 + 500);
    h.clock.advance(499);
    expect(await h.round()).toBe(0);
    h.clock.advance(1);
    expect(await h.round()).toBe(1);
    [row] = await h.store.deliveries.forEvent(eventId);
    // Attempt 2: bound 2 s, draw 0.99 → 1980 ms.
    expect(row!.dueAt.getTime()).toBe(t0 + 500 + 1980);
    expect(dest.calls.map((c) => c.attempt)).toEqual([0, 1]);
  });

  it('rule: Retry-After sets the next attempt and holds the whole destination until then', async () => {
    const dest = new ScriptedDestination('okta', [unavailable(7000)]);
    const h = await harness([dest]);
    const first = await h.enqueue();
    await h.round();
    const second = await h.enqueue();
    h.clock.advance(6999);
    expect(await h.round()).toBe(0);
    h.clock.advance(1);
    expect(await h.round()).toBe(2);
    expect(dest.delivered.sort()).toEqual([...first.jtis, ...second.jtis].sort());
  });

  it('rule: exhausted attempts become a dead letter with the SET, attempts and last error', async () => {
    const dest = new ScriptedDestination('okta', [], unavailable());
    const h = await harness([dest], { retry: { max_attempts: 3 } });
    const { jtis } = await h.enqueue();
    for (let i = 0; i < 3; i++) {
      expect(await h.round()).toBe(1);
      h.clock.advance(60_000);
    }
    expect(await h.round()).toBe(0);
    const [letter, ...rest] = await h.store.deadLetters.list();
    expect(rest).toEqual([]);
    expect(letter).toMatchObject({
      destinationId: 'okta',
      jti: jtis[0],
      attempts: 3,
      lastError: { status: 503 },
    });
    expect(decodeJwt(letter!.setJwt!)).toMatchObject({ jti: jtis[0], aud: 'https://okta.example' });
    expect(h.events.deadLettered).toEqual([expect.objectContaining({ reason: 'max_attempts', attempts: 3 })]);
  });

  it('rule: a delivery still failing max_age after its first attempt becomes a dead letter after a last attempt at the limit', async () => {
    const dest = new ScriptedDestination('okta', [], unavailable());
    const h = await harness([dest], { retry: { max_age: '10s', initial_interval: '1m' } });
    const { eventId } = await h.enqueue();
    const t0 = h.clock.now().getTime();
    await h.round();
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row!.dueAt.getTime()).toBe(t0 + 10_000);
    h.clock.advance(10_000);
    await h.round();
    expect((await h.store.deliveries.forEvent(eventId))[0]!.state).toBe('dead');
    expect(h.events.deadLettered).toEqual([expect.objectContaining({ reason: 'max_age', attempts: 2 })]);
  });

  it('rule: max_age counts from the first attempt: a delivery held untried longer (paused) is retried after a transient failure', async () => {
    const dest = new ScriptedDestination('okta', [], unavailable());
    dest.paused = true;
    const h = await harness([dest], { retry: { max_age: '10s', initial_interval: '1m' } });
    const { eventId } = await h.enqueue();
    expect(await h.round()).toBe(0);
    h.clock.advance(3_600_000); // paused for an hour, far past max_age; nothing was attempted
    dest.paused = false;
    await h.round();
    const firstAttempt = h.clock.now().getTime();
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({ state: 'pending', attempts: 1 });
    // Its whole age is still ahead: the last attempt comes at max_age after the first one.
    expect(row!.dueAt.getTime()).toBe(firstAttempt + 10_000);
    expect(h.events.deadLettered).toBeUndefined();
    h.clock.advance(10_000);
    await h.round();
    expect((await h.store.deliveries.forEvent(eventId))[0]!.state).toBe('dead');
    expect(h.events.deadLettered).toEqual([expect.objectContaining({ reason: 'max_age', attempts: 2 })]);
  });

  it('rule: a delivery that waited behind a failing earlier event for its subject gets its own max_age once tried', async () => {
    const alice = { format: 'email', email: 'alice@example.com' };
    const dest = new ScriptedDestination('okta', [unavailable(), unavailable(), unavailable()]);
    const h = await harness([dest], { max_in_flight: 1, retry: { max_age: '10s', initial_interval: '1m' } });
    const a1 = await h.enqueue(alice);
    const a2 = await h.enqueue(alice);
    await h.round(); // a1 fails; a2 waits behind it
    h.clock.advance(10_000);
    await h.round(); // a1's last attempt at its age limit fails: a dead letter
    expect(h.events.deadLettered).toEqual([expect.objectContaining({ jti: a1.jtis[0], reason: 'max_age' })]);
    await h.round(); // a2, queued as long as a1, is tried for the first time and fails once
    expect((await h.store.deliveries.forEvent(a2.eventId))[0]).toMatchObject({
      state: 'pending',
      attempts: 1,
    });
    expect(h.events.deadLettered).toHaveLength(1);
    h.clock.advance(10_000);
    await h.round();
    expect(dest.delivered).toEqual(a2.jtis);
  });

  it('rule: a permanent error dead-letters at once, and an auth refusal is reported', async () => {
    const dest = new ScriptedDestination('okta', [
      new PermanentError('receiver answered 400', { detail: { status: 400 } }),
      new PermanentError('receiver answered 401', { detail: { status: 401 }, authFailure: true }),
    ]);
    const h = await harness([dest]);
    await h.enqueue();
    await h.enqueue();
    await h.round();
    expect(await h.store.deadLetters.count()).toBe(2);
    expect((await h.store.deadLetters.list()).map((d) => d.attempts)).toEqual([1, 1]);
    expect(h.events.authFailure).toEqual([['okta', expect.objectContaining({ status: 401 })]]);
  });

  it('rule: events for one subject reach a destination in acceptance order; a later one waits while an earlier one retries', async () => {
    const alice = { format: 'email', email: 'alice@example.com' };
    const dest = new ScriptedDestination('okta', [unavailable()]);
    const h = await harness([dest], { max_in_flight: 1 });
    const a1 = await h.enqueue(alice);
    const a2 = await h.enqueue(alice);
    const bob = await h.enqueue({ format: 'email', email: 'bob@example.com' });
    await h.round(); // a1 fails
    await h.round(); // a2 must wait: bob goes
    expect(dest.delivered).toEqual(bob.jtis);
    h.clock.advance(1000);
    await h.round();
    await h.round();
    expect(dest.delivered).toEqual([...bob.jtis, ...a1.jtis, ...a2.jtis]);
  });

  it('rule: no more than max_in_flight deliveries run at once for a destination', async () => {
    const gate = deferred();
    const dest = new ScriptedDestination('okta', [], async () => {
      await gate.promise;
      return { status: 202 };
    });
    const h = await harness([dest], { max_in_flight: 3 });
    for (let i = 0; i < 10; i++) await h.enqueue();
    expect(await h.engine.pump('okta')).toBe(3);
    expect(await h.engine.pump('okta')).toBe(0);
    await expect.poll(() => dest.inFlight).toBe(3);
    h.engine.start();
    gate.resolve();
    await expect.poll(() => dest.delivered.length, { timeout: 5000 }).toBe(10);
    expect(dest.maxInFlight).toBe(3);
  });

  it('rule: the circuit opens after consecutive failures and lets a single probe through after open_duration', async () => {
    const probe = deferred();
    const dest = new ScriptedDestination('okta', [
      unavailable(),
      unavailable(),
      async () => {
        await probe.promise;
        return { status: 202 };
      },
    ]);
    const h = await harness([dest], {
      max_in_flight: 5,
      retry: { initial_interval: '1ms' },
      circuit_breaker: { failure_threshold: 2, open_duration: '10s' },
    });
    await h.enqueue();
    await h.enqueue();
    expect(await h.round()).toBe(2);
    expect(h.engine.circuitState('okta')).toBe('open');
    for (let i = 0; i < 3; i++) await h.enqueue();
    expect(await h.round()).toBe(0);
    h.clock.advance(10_000);
    expect(await h.engine.pump('okta')).toBe(1);
    expect(await h.engine.pump('okta')).toBe(0);
    probe.resolve();
    await h.engine.idle();
    expect(h.engine.circuitState('okta')).toBe('closed');
    expect(await h.round()).toBe(4);
    expect(dest.delivered).toHaveLength(5);
    const changes = (h.events.circuit as Array<[string, CircuitState]>).map(([, s]) => s);
    expect(changes).toEqual(['open', 'half_open', 'closed']);
  });

  it('rule: when a lease expires another worker takes the row over, and the late outcome of the first is ignored', async () => {
    const hang = deferred();
    const slow = new ScriptedDestination('okta', [
      async () => {
        await hang.promise;
        return { status: 202 };
      },
    ]);
    const h = await harness([slow], { lease_duration: '1m', attempt_timeout: '50s' });
    const { eventId, jtis } = await h.enqueue();
    expect(await h.engine.pump('okta')).toBe(1);
    const other = h.newEngine('engine-2');
    const fast = new ScriptedDestination('okta');
    other.register(fast);
    expect(await other.pump('okta')).toBe(0);
    h.clock.advance(60_000);
    expect(await other.pump('okta')).toBe(1);
    await other.idle();
    hang.resolve();
    await h.engine.idle();
    expect(fast.delivered).toEqual(jtis);
    expect(slow.delivered).toEqual(jtis);
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({ state: 'delivered', attempts: 2 });
    expect(h.events.leaseLost).toEqual([1]);
  });

  it('rule: a leased row starts only if its attempt can end inside its lease; otherwise it is given back and leased afresh', async () => {
    const first = deferred();
    const dest = new ScriptedDestination('slow', [
      async () => {
        await first.promise;
        return { status: 202 };
      },
    ]);
    const h = await harness([dest], {
      lease_duration: '1m',
      max_in_flight: 1,
      destinations: { slow: { attempt_timeout: '50s' } },
    });
    const a = await h.enqueue();
    const b = await h.enqueue();
    // One lease takes both rows; the second waits in line for the only slot.
    expect(await h.engine.pump('slow')).toBe(1);
    // 20 s of its 60 s lease gone (less than half): a 50 s attempt could still outlive the lease.
    h.clock.advance(20_000);
    first.resolve();
    await h.engine.idle();
    expect(await h.engine.pump('slow')).toBe(0);
    await h.engine.idle();
    expect(dest.calls.map((c) => c.jti)).toEqual(a.jtis);
    const [given] = await h.store.deliveries.forEvent(b.eventId);
    expect(given).toMatchObject({ state: 'pending', attempts: 0 });
    // Leased afresh, it has its whole lease ahead and starts.
    expect(await h.round('slow')).toBe(1);
    expect(dest.delivered).toEqual([...a.jtis, ...b.jtis]);
    const [done] = await h.store.deliveries.forEvent(b.eventId);
    expect(done).toMatchObject({ state: 'delivered', attempts: 1 });
    expect(h.events.leaseLost).toBeUndefined();
  });

  it('rule: a destination whose own attempt_timeout is not shorter than lease_duration is refused', async () => {
    const h = await harness([], { lease_duration: '1m' });
    const slow = new ScriptedDestination('slow', [], { status: 202 }, { attempt_timeout: 60_000 });
    expect(() => h.engine.register(slow)).toThrow(
      'destination slow: its attempt_timeout (60000 ms) must be shorter than delivery.lease_duration (60000 ms)',
    );
    expect(h.engine.destinations()).toEqual([]);
    h.engine.register(new ScriptedDestination('ok', [], { status: 202 }, { attempt_timeout: 59_999 }));
    expect(h.engine.destinations().map((d) => d.id)).toEqual(['ok']);
  });

  it('rule: a replayed dead letter is delivered with the same jti', async () => {
    const dest = new ScriptedDestination('okta', [new PermanentError('receiver answered 422')]);
    const h = await harness([dest]);
    const { jtis } = await h.enqueue();
    await h.round();
    const [letter] = await h.store.deadLetters.list();
    expect(await h.store.deadLetters.replay({ ids: [letter!.id] }, h.clock.now())).toBe(1);
    await h.round();
    expect(dest.calls.map((c) => c.jti)).toEqual([jtis[0], jtis[0]]);
    expect(dest.delivered).toEqual([letter!.jti]);
    expect(await h.store.deadLetters.count()).toBe(0);
  });

  it('rule: a paused destination keeps its deliveries in the outbox until it resumes', async () => {
    const dest = new ScriptedDestination('stream:s1');
    dest.paused = true;
    const h = await harness([dest]);
    await h.enqueue();
    expect(await h.round()).toBe(0);
    dest.paused = false;
    expect(await h.round()).toBe(1);
  });

  it('rule: a destination that holds a delivery (paused, seen only at delivery) costs no attempt and leaves its circuit closed', async () => {
    const held = () => new DestinationHeldError('stream s1 is paused', { retryAfterMs: 1_000 });
    const dest = new ScriptedDestination('stream:s1', [held(), held(), held()]);
    const h = await harness([dest], {
      max_in_flight: 5,
      retry: { initial_interval: '1ms', max_attempts: 2 },
      circuit_breaker: { failure_threshold: 2, open_duration: '10s' },
    });
    const first = await h.enqueue();
    await h.enqueue();
    await h.enqueue();
    expect(await h.round()).toBe(3);
    expect(h.engine.circuitState('stream:s1')).toBe('closed');
    const [row] = await h.store.deliveries.forEvent(first.eventId);
    expect(row).toMatchObject({ state: 'pending', attempts: 0 });
    // The destination is left alone for the wait the error names.
    expect(await h.round()).toBe(0);
    h.clock.advance(1_000);
    expect(await h.round()).toBe(3);
    expect(dest.delivered).toHaveLength(3);
    expect(h.events.deadLettered).toBeUndefined();
  });

  it('rule: a hung attempt times out and is retried', async () => {
    const dest = new ScriptedDestination('okta', [() => new Promise(() => undefined)]);
    const h = await harness([dest], { attempt_timeout: '50ms', lease_duration: '1m' });
    const { eventId } = await h.enqueue();
    await h.round();
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({
      state: 'pending',
      attempts: 1,
      lastError: { code: 'SSF_ERR_DELIVERY_TIMEOUT' },
    });
  });

  it('rule: stopping gives in-flight rows back at the deadline without counting the attempt', async () => {
    const dest = new ScriptedDestination('okta', [() => new Promise(() => undefined)]);
    const h = await harness([dest]);
    const { eventId } = await h.enqueue();
    h.engine.start();
    await expect.poll(() => dest.calls.length).toBe(1);
    await h.engine.stop(20);
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({ state: 'pending', attempts: 0 });
  });

  it('the running engine delivers new rows as soon as it is notified', async () => {
    const dest = new ScriptedDestination('okta');
    const h = await harness([dest], { poll_interval: '1m' });
    h.engine.start();
    await new Promise((r) => setTimeout(r, 20));
    const { jtis } = await h.enqueue();
    h.engine.notify(['okta']);
    await expect.poll(() => dest.delivered, { timeout: 2000 }).toEqual(jtis);
  });

  it('rule: an event the signer refuses for a destination is dead-lettered without touching its circuit', async () => {
    const dest = new ScriptedDestination('okta');
    const h = await harness([dest], { circuit_breaker: { failure_threshold: 1 } });
    const engine = new DeliveryEngine({
      store: h.store,
      signer: {
        sign: async () => {
          throw new PermanentError('the okta-itp profile has no form for this event', {
            code: 'SSF_ERR_SSF_PROFILE',
          });
        },
      },
      config: deliveryConfigSchema.parse({}),
      clock: h.clock,
    });
    cleanups.push(() => engine.stop(0));
    engine.register(dest);
    await h.enqueue();
    await engine.pump('okta');
    await engine.idle();
    const [letter] = await h.store.deadLetters.list();
    expect(letter).toMatchObject({
      attempts: 1,
      lastError: { class: 'permanent', code: 'SSF_ERR_SSF_PROFILE' },
    });
    expect(letter!.setJwt).toBeUndefined();
    expect(dest.calls).toEqual([]);
    expect(engine.circuitState('okta')).toBe('closed');
  });

  it('refuses a second destination with the same id', async () => {
    const h = await harness([new ScriptedDestination('okta')]);
    expect(() => h.engine.register(new ScriptedDestination('okta'))).toThrow(/already registered/);
  });

  it('prunes delivered rows once they are older than the retention', async () => {
    const dest = new ScriptedDestination('okta');
    const h = await harness([dest], { delivered_retention: '1h' });
    const { eventId } = await h.enqueue();
    await h.round();
    h.clock.advance(3_600_001);
    expect(await h.engine.maintain()).toMatchObject({ deliveries: 1, events: 1 });
    expect(await h.store.events.get(eventId)).toBeUndefined();
  });
});

/** A logger that keeps what was logged, by level. */
function recordingLogger(): Logger & {
  lines: Array<{ level: string; msg: string | undefined; obj: object }>;
} {
  const lines: Array<{ level: string; msg: string | undefined; obj: object }> = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      lines.push({
        level,
        msg: typeof obj === 'string' ? obj : msg,
        obj: typeof obj === 'string' ? {} : obj,
      });
    };
  const logger = {
    lines,
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

type Deliveries = Store['deliveries'];

/** The store with some of its delivery methods replaced (a database failing in a given way). */
function withDeliveries(store: Store, replaced: Partial<Deliveries>): Store {
  const deliveries = new Proxy(store.deliveries, {
    get(target, name, receiver) {
      const own = (replaced as Record<string | symbol, unknown>)[name];
      if (own !== undefined) return own;
      const value: unknown = Reflect.get(target, name, receiver);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return new Proxy(store, {
    get(target, name) {
      if (name === 'deliveries') return deliveries;
      const value: unknown = Reflect.get(target, name, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

/** The store with its leasing failing while `down()` says so (a database that went away). */
function withLeaseFailing(store: Store, down: () => boolean): { store: Store; leases: () => number } {
  let leases = 0;
  const wrapped = withDeliveries(store, {
    lease: async (...args: Parameters<Deliveries['lease']>) => {
      leases += 1;
      if (down()) throw new Error('connect ECONNREFUSED 127.0.0.1:5432');
      return store.deliveries.lease(...args);
    },
  });
  return { store: wrapped, leases: () => leases };
}

describe('delivery engine while the store is unreachable', () => {
  it('backs off its leasing and logs the outage once, not every poll, then says when leasing works again', async () => {
    const h = await harness([]);
    let down = true;
    const { store, leases } = withLeaseFailing(h.store, () => down);
    const logger = recordingLogger();
    const engine = new DeliveryEngine({
      store,
      signer: testSigner(),
      config: deliveryConfigSchema.parse({ poll_interval: '10ms' }),
      clock: h.clock,
      logger,
    });
    cleanups.push(() => engine.stop(0));
    const dest = new ScriptedDestination('okta');
    engine.register(dest);
    engine.start();
    await new Promise((r) => setTimeout(r, 400));
    // Polling every 10 ms would be ~40 leases and as many warnings in 400 ms; doubling from
    // 10 ms, the worker tries at about 0, 10, 30, 70, 150 and 310 ms.
    expect(leases()).toBeGreaterThanOrEqual(3);
    expect(leases()).toBeLessThanOrEqual(8);
    const warnings = logger.lines.filter((l) => l.level === 'warn' && l.msg === 'leasing failed');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({
      destination: 'okta',
      err: 'connect ECONNREFUSED 127.0.0.1:5432',
    });
    down = false;
    const { jtis } = await h.enqueue(undefined, ['okta']);
    engine.notify(['okta']);
    await expect.poll(() => dest.delivered, { timeout: 3000 }).toEqual(jtis);
    expect(logger.lines.filter((l) => l.msg === 'leasing works again')).toHaveLength(1);
  });
});

describe('delivery engine and what connectors hand back', () => {
  it('a SET the destination accepted is recorded delivered even when deliver() resolves to no receipt', async () => {
    const dest = new ScriptedDestination('okta', [
      (async () => undefined) as unknown as () => Promise<{ status: number }>,
      (async () => 'ok') as unknown as () => Promise<{ status: number }>,
    ]);
    const h = await harness([dest], { circuit_breaker: { failure_threshold: 1 } });
    const a = await h.enqueue();
    const b = await h.enqueue();
    expect(await h.round()).toBe(2);
    for (const { eventId } of [a, b]) {
      const [row] = await h.store.deliveries.forEvent(eventId);
      expect(row).toMatchObject({ state: 'delivered', attempts: 1 });
    }
    expect(h.events.retrying).toBeUndefined();
    expect(h.events.delivered).toHaveLength(2);
    expect(h.engine.circuitState('okta')).toBe('closed');
    expect(await h.round()).toBe(0);
    expect(dest.calls).toHaveLength(2);
  });
});

describe('delivery engine and values thrown that are not errors', () => {
  it('a thrown value with no string form is a retryable failure, and a probe that throws it reopens the circuit', async () => {
    const bare = Object.create(null) as object; // String(bare) throws
    const dest = new ScriptedDestination('okta', [
      unavailable(),
      async () => {
        throw bare;
      },
    ]);
    const h = await harness([dest], {
      retry: { initial_interval: '1ms' },
      circuit_breaker: { failure_threshold: 1, open_duration: '10s' },
    });
    const { eventId, jtis } = await h.enqueue();
    expect(await h.round()).toBe(1);
    expect(h.engine.circuitState('okta')).toBe('open');
    h.clock.advance(10_000);
    expect(await h.round()).toBe(1); // the probe
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({
      state: 'pending',
      attempts: 2,
      lastError: { class: 'retryable', code: 'SSF_ERR_DELIVERY_UNEXPECTED', message: '[object Object]' },
    });
    expect(h.engine.circuitState('okta')).toBe('open');
    h.clock.advance(10_000);
    expect(await h.round()).toBe(1);
    expect(dest.delivered).toEqual(jtis);
    expect(h.engine.circuitState('okta')).toBe('closed');
  });
});

describe('delivery engine and a Retry-After beyond reason', () => {
  it('rule: a Retry-After longer than an hour holds the destination for an hour, not for as long as it says', async () => {
    const tenYears = 10 * 365 * 24 * 3_600_000;
    const dest = new ScriptedDestination('okta', [unavailable(tenYears), unavailable(Infinity)]);
    const h = await harness([dest], { retry: { max_age: '3d' } });
    const first = await h.enqueue();
    expect(await h.round()).toBe(1);
    const t0 = h.clock.now().getTime();
    const [row] = await h.store.deliveries.forEvent(first.eventId);
    expect(row!.dueAt.getTime()).toBe(t0 + 3_600_000);
    const second = await h.enqueue();
    h.clock.advance(3_600_000 - 1);
    expect(await h.round()).toBe(0);
    h.clock.advance(1);
    // Both go: one is answered Retry-After: Infinity (due again in an hour), the other is delivered.
    expect(await h.round()).toBe(2);
    const rows = [
      ...(await h.store.deliveries.forEvent(first.eventId)),
      ...(await h.store.deliveries.forEvent(second.eventId)),
    ];
    const waiting = rows.filter((r) => r.state === 'pending');
    expect(waiting).toHaveLength(1);
    expect(waiting[0]!.dueAt.getTime()).toBe(h.clock.now().getTime() + 3_600_000);
    h.clock.advance(3_600_000 - 1);
    expect(await h.round()).toBe(0);
    h.clock.advance(1);
    expect(await h.round()).toBe(1);
    expect(dest.delivered.sort()).toEqual([...first.jtis, ...second.jtis].sort());
  });
});

/**
 * A bridge process that leases okta's due rows and dies mid-delivery (its attempts never settle
 * and no outcome is written); then its one-minute lease runs out. Resolves to the rows it started.
 */
async function dies(h: Harness, name: string): Promise<number> {
  const engine = h.newEngine(name);
  engine.register(new ScriptedDestination('okta', [], () => new Promise(() => undefined)));
  const started = await engine.pump('okta');
  h.clock.advance(60_000);
  return started;
}

/** A bridge started after them, with a receiver that answers: it must give the row up, unsent. */
async function givesUpUnsent(h: Harness, name: string): Promise<void> {
  const engine = h.newEngine(name);
  const fresh = new ScriptedDestination('okta');
  engine.register(fresh);
  expect(await engine.pump('okta')).toBe(0);
  await engine.idle();
  expect(fresh.calls).toEqual([]);
}

describe('delivery engine and attempts that never finish', () => {
  it('rule: a delivery whose max_attempts attempts all ended without an outcome (the bridge died mid-delivery) becomes a dead letter', async () => {
    const h = await harness([], {
      lease_duration: '1m',
      attempt_timeout: '50s',
      retry: { max_attempts: 2, max_age: '3d' },
    });
    const { eventId, jtis } = await h.enqueue(undefined, ['okta']);
    // Two bridge processes each lease it and die mid-delivery (modelled by attempts that never
    // settle and whose engines never write an outcome); each time the lease runs out.
    for (const name of ['engine-1', 'engine-2']) expect(await dies(h, name)).toBe(1);
    // The third lease would be attempt 3 of at most 2: it is given up instead of sent again.
    await givesUpUnsent(h, 'engine-3');
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({ state: 'dead', attempts: 2 });
    const [letter] = await h.store.deadLetters.list();
    expect(letter).toMatchObject({
      jti: jtis[0],
      lastError: { class: 'retryable', code: 'SSF_ERR_DELIVERY_ATTEMPTS_UNFINISHED' },
    });
    expect(h.events.deadLettered).toEqual([expect.objectContaining({ reason: 'max_attempts', attempts: 2 })]);
  });
});

describe('delivery engine and attempts interrupted in a row', () => {
  it('rule: without max_attempts, a delivery whose attempts ended with the bridge max_interrupted_attempts times in a row becomes a dead letter, unsent', async () => {
    const h = await harness([], { lease_duration: '1m', attempt_timeout: '50s', retry: { max_age: '3d' } });
    const { eventId, jtis } = await h.enqueue(undefined, ['okta']);
    // Three bridge processes in turn take it and die mid-delivery (the default limit is 3).
    for (const name of ['engine-1', 'engine-2', 'engine-3']) expect(await dies(h, name)).toBe(1);
    await givesUpUnsent(h, 'engine-4');
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({ state: 'dead', attempts: 3 });
    const [letter] = await h.store.deadLetters.list();
    expect(letter).toMatchObject({
      jti: jtis[0],
      lastError: {
        class: 'retryable',
        code: 'SSF_ERR_DELIVERY_ATTEMPTS_INTERRUPTED',
        message: expect.stringContaining('3 attempts in a row ended without an outcome'),
      },
    });
    expect(h.events.deadLettered).toEqual([
      expect.objectContaining({ reason: 'max_interrupted_attempts', attempts: 3 }),
    ]);
  });

  it('rule: an attempt that records an outcome in between starts the count again, and a destination may set its own limit', async () => {
    const h = await harness([], {
      lease_duration: '1m',
      attempt_timeout: '50s',
      retry: { max_age: '3d', initial_interval: '1s', max_interval: '1s' },
      destinations: { okta: { retry: { max_interrupted_attempts: 2 } } },
    });
    const { eventId } = await h.enqueue(undefined, ['okta']);
    expect(await dies(h, 'engine-1')).toBe(1);
    // The next bridge reaches the receiver, which answers 503: a recorded retry.
    const refusing = h.newEngine('engine-2');
    const busy = new ScriptedDestination('okta', [unavailable()]);
    refusing.register(busy);
    expect(await refusing.pump('okta')).toBe(1);
    await refusing.idle();
    expect(busy.calls).toHaveLength(1);
    h.clock.advance(1000);
    // One interruption since that outcome: still below this destination's limit of 2.
    expect(await dies(h, 'engine-3')).toBe(1);
    const last = h.newEngine('engine-4');
    const healthy = new ScriptedDestination('okta');
    last.register(healthy);
    expect(await last.pump('okta')).toBe(1);
    await last.idle();
    expect(healthy.calls).toHaveLength(1);
    const [row] = await h.store.deliveries.forEvent(eventId);
    expect(row).toMatchObject({ state: 'delivered', attempts: 4 });
    expect(h.events.deadLettered).toBeUndefined();
  });
});

describe('delivery engine and a suspect delivery run alone', () => {
  it('rule: after one interruption a row is attempted with the others (a kill interrupts every row in flight, and the restart does not slow down for them)', async () => {
    const h = await harness([], { lease_duration: '1m', attempt_timeout: '50s', retry: { max_age: '3d' } });
    const interrupted = await h.enqueue(undefined, ['okta']);
    expect(await dies(h, 'engine-1')).toBe(1);
    const fresh = await h.enqueue(undefined, ['okta']);
    const okta = new ScriptedDestination('okta');
    const engine = h.newEngine('engine-2');
    engine.register(okta);
    // Both started by one pump: a row run alone would have been the pump's only one.
    expect(await engine.pump('okta')).toBe(2);
    await engine.idle();
    expect(okta.calls.map((c) => c.jti).sort()).toEqual([...interrupted.jtis, ...fresh.jtis].sort());
  });

  it('rule: a row whose next interrupted attempt would be its last runs alone: rows leased with it go back, and no destination starts anything until its outcome is written', async () => {
    // With a limit of 2, the attempt after one interruption is the row's last chance.
    const h = await harness([], {
      lease_duration: '1m',
      attempt_timeout: '50s',
      retry: { max_age: '3d', max_interrupted_attempts: 2 },
    });
    const suspect = await h.enqueue(undefined, ['okta']);
    expect(await dies(h, 'engine-1')).toBe(1);
    const beside = await h.enqueue(undefined, ['okta']);
    const elsewhere = await h.enqueue(undefined, ['slack']);

    const answer = deferred<{ status: number }>();
    const okta = new ScriptedDestination('okta', [() => answer.promise]);
    const slack = new ScriptedDestination('slack');
    const engine = h.newEngine('engine-2');
    engine.register(okta);
    engine.register(slack);
    expect(await engine.pump('okta')).toBe(1);
    // Only the suspect is attempted; the row leased with it went back, unattempted.
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(okta.calls.map((c) => c.jti)).toEqual(suspect.jtis);
    const [besideRow] = await h.store.deliveries.forEvent(beside.eventId);
    expect(besideRow).toMatchObject({ state: 'pending', attempts: 0 });
    // Another destination waits too.
    expect(await engine.pump('slack')).toBe(0);
    expect(slack.calls).toEqual([]);

    answer.resolve({ status: 202 });
    await engine.idle();
    expect(await engine.pump('okta')).toBe(1);
    expect(await engine.pump('slack')).toBe(1);
    await engine.idle();
    expect(okta.calls.map((c) => c.jti)).toEqual([...suspect.jtis, ...beside.jtis]);
    expect(slack.calls.map((c) => c.jti)).toEqual(elsewhere.jtis);
    for (const { eventId } of [suspect, beside, elsewhere]) {
      expect((await h.store.deliveries.forEvent(eventId))[0]).toMatchObject({
        state: 'delivered',
        attempts: 1 + (eventId === suspect.eventId ? 1 : 0),
      });
    }
    expect(h.events.deadLettered).toBeUndefined();
  });
});

describe('delivery engine circuit with attempts from before it opened', () => {
  it('rule: a half-open circuit has one probe in flight, even when an attempt started before it opened fails meanwhile', async () => {
    const early = deferred<{ status: number }>();
    const probe = deferred<{ status: number }>();
    const dest = new ScriptedDestination('okta', [
      () => early.promise, // in flight when the circuit opens
      unavailable(), // opens the circuit
      () => probe.promise, // the probe after open_duration
    ]);
    const h = await harness([dest], {
      max_in_flight: 5,
      retry: { initial_interval: '1ms' },
      circuit_breaker: { failure_threshold: 1, open_duration: '10s' },
    });
    await h.enqueue();
    await h.enqueue();
    expect(await h.engine.pump('okta')).toBe(2);
    await expect.poll(() => h.engine.circuitState('okta')).toBe('open');
    await h.enqueue();
    await h.enqueue();
    h.clock.advance(10_000);
    expect(await h.engine.pump('okta')).toBe(1);
    expect(h.engine.circuitState('okta')).toBe('half_open');
    // The attempt started while the circuit was closed now times out, say: it says nothing the
    // circuit did not know when it opened, and the probe is still out.
    early.reject(unavailable());
    await new Promise((r) => setTimeout(r, 20));
    h.clock.advance(10_000);
    expect(await h.engine.pump('okta')).toBe(0);
    expect(dest.calls).toHaveLength(3);
    probe.resolve({ status: 202 });
    await h.engine.idle();
    expect(h.engine.circuitState('okta')).toBe('closed');
  });
});

/** The store with its writes of outcomes failing with the error `refusal` gives (or none). */
function withOutcomesRefused(
  store: Store,
  refusal: (outcomes: readonly DeliveryOutcome[]) => Error | undefined,
): { store: Store; writes: number[][] } {
  const writes: number[][] = [];
  const wrapped = withDeliveries(store, {
    complete: async (...args: Parameters<Deliveries['complete']>) => {
      writes.push(args[0].map((o) => o.id));
      const err = refusal(args[0]);
      if (err !== undefined) throw err;
      return store.deliveries.complete(...args);
    },
  });
  return { store: wrapped, writes };
}

describe('delivery engine and outcomes the store refuses', () => {
  async function run(
    events: number,
    refusal: (outcomes: readonly DeliveryOutcome[], ids: number[]) => Error | undefined,
  ) {
    // Every delivery finishes at once, so that their outcomes are written together.
    const gate = deferred();
    const dest = new ScriptedDestination('okta', [], async () => {
      await gate.promise;
      return { status: 202 };
    });
    const h = await harness([]);
    const enqueued = [];
    for (let i = 0; i < events; i++) enqueued.push(await h.enqueue(undefined, ['okta']));
    const ids: number[] = [];
    for (const e of enqueued) ids.push((await h.store.deliveries.forEvent(e.eventId))[0]!.id);
    const { store, writes } = withOutcomesRefused(h.store, (outcomes) => refusal(outcomes, ids));
    const logger = recordingLogger();
    const engine = new DeliveryEngine({
      store,
      signer: testSigner(),
      config: deliveryConfigSchema.parse({ poll_interval: '10ms', max_in_flight: 16 }),
      clock: h.clock,
      logger,
      outcomeRetryBaseMs: 1,
    });
    cleanups.push(() => engine.stop(0));
    engine.register(dest);
    expect(await engine.pump('okta')).toBe(events);
    await expect.poll(() => dest.inFlight).toBe(events);
    gate.resolve();
    await engine.idle();
    expect(dest.delivered).toHaveLength(events);
    const rows = await Promise.all(enqueued.map((e) => h.store.deliveries.forEvent(e.eventId)));
    return {
      ids,
      writes,
      states: rows.map(([row]) => row!.state),
      errors: logger.lines.filter((l) => l.level === 'error'),
    };
  }

  it('after the batch fails every retry, its other outcomes are recorded one by one; the refused row stays leased', async () => {
    const poison = new Error('CHECK constraint failed: deliveries');
    const r = await run(3, (outcomes, ids) => (outcomes.some((o) => o.id === ids[2]) ? poison : undefined));
    expect(r.states).toEqual(['delivered', 'delivered', 'leased']);
    // Nine tries of the poisoned batch (outcomes that finish in the same turn share one), then
    // each of its outcomes alone.
    const batch = [...r.writes[0]!].sort((a, b) => a - b);
    expect(batch).toEqual(r.ids);
    expect(r.writes.map((ids) => ids.length)).toEqual([...Array<number>(9).fill(3), 1, 1, 1]);
    expect(
      r.writes
        .slice(-3)
        .flat()
        .sort((a, b) => a - b),
    ).toEqual(r.ids);
    expect(r.errors.map((l) => l.msg)).toEqual([
      'could not record delivery outcomes together; recording them one by one',
      'could not record a delivery outcome; the delivery is attempted again when its lease expires',
    ]);
    expect(r.errors[1]!.obj).toMatchObject({ delivery: r.ids[2], outcome: 'delivered' });
  });

  it('when the first three outcomes alone fail too, the store is down and the rest are not tried one by one', async () => {
    const down = new Error('connect ECONNREFUSED 127.0.0.1:5432');
    const r = await run(6, () => down);
    expect(r.states).toEqual(Array<string>(6).fill('leased'));
    const batch = r.writes[0]!;
    expect([...batch].sort((a, b) => a - b)).toEqual(r.ids);
    expect(r.writes).toEqual([...Array<number[]>(9).fill(batch), ...batch.slice(0, 3).map((id) => [id])]);
    const gaveUp = r.errors.find((l) => l.msg?.startsWith('could not record delivery outcomes; '));
    expect(gaveUp?.msg).toBe(
      'could not record delivery outcomes; the deliveries are attempted again when their leases expire',
    );
    expect(gaveUp?.obj).toMatchObject({ outcomes: batch.length - 3, err: down.message });
  });
});
