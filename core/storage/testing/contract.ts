/**
 * The store contract: every driver must pass these cases unchanged.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { NewEvent, Store, StreamRecord } from '../types.ts';
import { streamDestinationId } from '../types.ts';
import { ManualClock, newEvent, storedEvent } from './fixtures.ts';

export interface StoreHarness {
  store: Store;
  /** Opens a second store on the same database (another process, or a restart). */
  reopen(): Promise<Store>;
  cleanup(): Promise<void>;
}

const LEASE = { owner: 'worker-1', limit: 10, leaseMs: 30_000 };
const HOUR = 3_600_000;

export function storeContract(name: string, open: () => Promise<StoreHarness>): void {
  describe(`store contract: ${name}`, () => {
    let h: StoreHarness;
    let store: Store;
    let clock: ManualClock;

    beforeEach(async () => {
      h = await open();
      store = h.store;
      clock = new ManualClock();
    });
    afterEach(async () => {
      await h.cleanup();
    });

    const accept = (events: NewEvent[], extra: Partial<Parameters<Store['accept']>[0]> = {}) =>
      store.accept({
        now: clock.now(),
        events,
        dedupeExpiresAt: new Date(clock.now().getTime() + HOUR),
        ...extra,
      });
    const lease = (destinationId = 'dest-a', overrides: Partial<typeof LEASE> = {}) =>
      store.deliveries.lease({ destinationId, now: clock.now(), ...LEASE, ...overrides });

    describe('migrations', () => {
      it('applies every migration at open and does not re-apply them on reopen', async () => {
        const version = await store.schemaVersion();
        expect(version).toBeGreaterThanOrEqual(1);
        await accept([newEvent()]);
        const again = await h.reopen();
        try {
          expect(await again.schemaVersion()).toBe(version);
          expect((await again.stats()).backlog['dest-a']).toBe(1);
        } finally {
          await again.close();
        }
      });
    });

    describe('accept', () => {
      it('makes the event, its deliveries and the checkpoint durable together', async () => {
        const item = newEvent({ destinations: ['dest-a', 'dest-b'] });
        const out = await accept([item], {
          checkpoint: { instanceId: 'hr', name: 'cursor', value: { page: 2 } },
        });
        expect(out.results).toEqual([{ status: 'accepted', id: item.event.id }]);
        expect(await store.events.get(item.event.id)).toEqual(item.event);
        const rows = await store.deliveries.forEvent(item.event.id);
        expect(rows.map((r) => [r.destinationId, r.state, r.attempts, r.jti])).toEqual([
          ['dest-a', 'pending', 0, `${item.event.id}/dest-a`],
          ['dest-b', 'pending', 0, `${item.event.id}/dest-b`],
        ]);
        expect(await store.checkpoints.get('hr', 'cursor')).toEqual({ page: 2 });
      });

      it('writes nothing, checkpoint and dedupe keys included, when any part of the batch fails', async () => {
        const first = newEvent({ dedupeKey: 'k' });
        const clash = newEvent({ event: { id: first.event.id } });
        await expect(
          accept([first, clash], { checkpoint: { instanceId: 'hr', name: 'cursor', value: 'advanced' } }),
        ).rejects.toThrow();
        expect(await store.events.get(first.event.id)).toBeUndefined();
        expect(await store.checkpoints.get('hr', 'cursor')).toBeUndefined();
        expect((await store.stats()).backlog).toEqual({});
        expect(await store.events.findDuplicates(['k'], clock.now())).toEqual(new Map());
        // The key was never claimed: the record's next delivery is accepted.
        const resent = newEvent({ dedupeKey: 'k' });
        expect((await accept([resent])).results).toEqual([{ status: 'accepted', id: resent.event.id }]);
      });

      it('rule: a live dedupe key makes a later event with the same key a duplicate of the first', async () => {
        const first = newEvent({ dedupeKey: 'hr|rec-1|type' });
        await accept([first]);
        const again = newEvent({ dedupeKey: 'hr|rec-1|type' });
        const out = await accept([again]);
        expect(out.results).toEqual([{ status: 'duplicate', id: first.event.id }]);
        expect(await store.events.get(again.event.id)).toBeUndefined();
        expect((await store.stats()).backlog['dest-a']).toBe(1);
        expect(await store.events.findDuplicates(['hr|rec-1|type', 'other'], clock.now())).toEqual(
          new Map([['hr|rec-1|type', first.event.id]]),
        );
      });

      it('rule: repeated dedupe keys within one batch keep only the first event', async () => {
        const a = newEvent({ dedupeKey: 'k1' });
        const b = newEvent({ dedupeKey: 'k1' });
        const c = newEvent({ dedupeKey: 'k2' });
        const out = await accept([a, b, c]);
        expect(out.results).toEqual([
          { status: 'accepted', id: a.event.id },
          { status: 'duplicate', id: a.event.id },
          { status: 'accepted', id: c.event.id },
        ]);
      });

      it('rule: an expired dedupe key no longer blocks the same record', async () => {
        await accept([newEvent({ dedupeKey: 'k' })]);
        clock.advance(HOUR);
        const later = newEvent({ dedupeKey: 'k' });
        const out = await accept([later]);
        expect(out.results).toEqual([{ status: 'accepted', id: later.event.id }]);
        expect(await store.events.findDuplicates(['k'], clock.now())).toEqual(
          new Map([['k', later.event.id]]),
        );
      });

      it('writes a checkpoint alone when a page held no events', async () => {
        await accept([], { checkpoint: { instanceId: 'hr', name: 'cursor', value: 'empty-page' } });
        expect(await store.checkpoints.get('hr', 'cursor')).toBe('empty-page');
      });

      it('rule: with an expected checkpoint, writes the batch only while the stored one is still that', async () => {
        const cas = (value: unknown, expected: unknown) => ({
          checkpoint: { instanceId: 'hr', name: 'state', value, expected: { value: expected } },
        });
        const conflict = { code: 'SSF_ERR_CHECKPOINT_CONFLICT', errorClass: 'retryable' };
        const state = { workers: { '7': { status: 'active', email: 'ana@example.com' } }, pending: {} };
        await accept([], cas(state, undefined));
        // Another writer expected no checkpoint, but one is stored now: nothing of its batch lands.
        const late = newEvent();
        await expect(accept([late], cas({ workers: {} }, undefined))).rejects.toMatchObject(conflict);
        expect(await store.events.get(late.event.id)).toBeUndefined();
        // The value read back (whatever order the driver keeps keys in) is the expected one.
        const read = await store.checkpoints.get('hr', 'state');
        const next = newEvent();
        await accept([next], cas({ workers: {}, pending: {} }, read));
        expect(await store.events.get(next.event.id)).toEqual(next.event);
        expect(await store.checkpoints.get('hr', 'state')).toEqual({ workers: {}, pending: {} });
        // A writer still holding the first value lost the race.
        const stale = newEvent({ dedupeKey: 'stale' });
        await expect(accept([stale], cas({ workers: { '9': {} } }, state))).rejects.toMatchObject(conflict);
        expect(await store.events.get(stale.event.id)).toBeUndefined();
        expect(await store.events.findDuplicates(['stale'], clock.now())).toEqual(new Map());
        expect(await store.checkpoints.get('hr', 'state')).toEqual({ workers: {}, pending: {} });
      });

      it('rule: of two writers that read the same checkpoint, one commits and the other conflicts', async () => {
        await store.checkpoints.set('hr', 'state', { n: 0 }, clock.now());
        const other = await h.reopen();
        try {
          const write = (on: Store, n: number) =>
            on.accept({
              now: clock.now(),
              events: [newEvent()],
              dedupeExpiresAt: new Date(clock.now().getTime() + HOUR),
              checkpoint: { instanceId: 'hr', name: 'state', value: { n }, expected: { value: { n: 0 } } },
            });
          const outcomes = await Promise.allSettled([write(store, 1), write(other, 2)]);
          expect(outcomes.map((o) => o.status).sort()).toEqual(['fulfilled', 'rejected']);
          const lost = outcomes.find((o) => o.status === 'rejected') as PromiseRejectedResult;
          expect(lost.reason).toMatchObject({ code: 'SSF_ERR_CHECKPOINT_CONFLICT' });
          const won = outcomes.findIndex((o) => o.status === 'fulfilled') + 1;
          expect(await store.checkpoints.get('hr', 'state')).toEqual({ n: won });
          expect((await store.stats()).backlog['dest-a']).toBe(1);
        } finally {
          await other.close();
        }
      });
    });

    describe('leasing', () => {
      it('leases due rows, counts the attempt and hides them while the lease lives', async () => {
        const item = newEvent();
        await accept([item]);
        const [leased, ...rest] = await lease();
        expect(rest).toEqual([]);
        expect(leased).toMatchObject({
          destinationId: 'dest-a',
          jti: `${item.event.id}/dest-a`,
          attempts: 1,
        });
        expect(leased!.event).toEqual(item.event);
        expect(await lease()).toEqual([]);
        const row = await store.deliveries.get(leased!.id);
        expect(row).toMatchObject({ state: 'leased', leaseOwner: 'worker-1', attempts: 1 });
      });

      it('rule: an expired lease lets another worker take the row, and fences the first worker out', async () => {
        await accept([newEvent()]);
        const [first] = await lease('dest-a', { leaseMs: 1000 });
        clock.advance(1000);
        const [second] = await lease('dest-a', { owner: 'worker-2' });
        expect(second).toMatchObject({ id: first!.id, attempts: 2 });
        expect(second!.leaseToken).not.toBe(first!.leaseToken);
        expect(
          await store.deliveries.complete(
            [{ kind: 'delivered', id: first!.id, leaseToken: first!.leaseToken }],
            clock.now(),
          ),
        ).toBe(0);
        expect((await store.deliveries.get(first!.id))?.state).toBe('leased');
        expect(
          await store.deliveries.complete(
            [{ kind: 'delivered', id: second!.id, leaseToken: second!.leaseToken }],
            clock.now(),
          ),
        ).toBe(1);
        expect((await store.deliveries.get(first!.id))?.state).toBe('delivered');
      });

      it('rule: a lease taken after one expired counts an interrupted attempt; a recorded retry or a replay clears the count, a release keeps it', async () => {
        await accept([newEvent()]);
        const leaseAgain = async () => {
          const [row] = await lease('dest-a', { leaseMs: 1000 });
          return row!;
        };
        const first = await leaseAgain();
        expect(first.interruptedAttempts).toBe(0);
        clock.advance(1000);
        const second = await leaseAgain();
        clock.advance(1000);
        const third = await leaseAgain();
        expect([second.interruptedAttempts, third.interruptedAttempts]).toEqual([1, 2]);
        expect(third.attempts).toBe(3);
        // A release (the worker stopping before it attempted) is not an interruption, nor a reset.
        await store.deliveries.complete(
          [{ kind: 'release', id: third.id, leaseToken: third.leaseToken }],
          clock.now(),
        );
        const afterRelease = await leaseAgain();
        expect(afterRelease.interruptedAttempts).toBe(2);
        const error = { class: 'retryable' as const, code: 'X', message: 'refused' };
        await store.deliveries.complete(
          [
            {
              kind: 'retry',
              id: afterRelease.id,
              leaseToken: afterRelease.leaseToken,
              dueAt: clock.now(),
              error,
            },
          ],
          clock.now(),
        );
        const afterRetry = await leaseAgain();
        expect(afterRetry.interruptedAttempts).toBe(0);
        clock.advance(1000);
        const interrupted = await leaseAgain();
        expect(interrupted.interruptedAttempts).toBe(1);
        await store.deliveries.complete(
          [
            {
              kind: 'dead',
              id: interrupted.id,
              leaseToken: interrupted.leaseToken,
              error,
              notAttempted: true,
            },
          ],
          clock.now(),
        );
        expect(await store.deadLetters.replay({ destinationId: 'dest-a' }, clock.now())).toBe(1);
        expect((await leaseAgain()).interruptedAttempts).toBe(0);
      });

      it('rule: the lease that counts a first attempt records when; later leases keep it; attempts taken back to 0 (release, replay) clear it', async () => {
        const item = newEvent();
        await accept([item]);
        const { id } = (await store.deliveries.forEvent(item.event.id))[0]!;
        const firstAttemptAt = async () => (await store.deliveries.get(id))?.firstAttemptAt;
        const error = { class: 'retryable' as const, code: 'X', message: 'refused' };
        // Queued untried for a day (a paused stream, a held destination): that is not an attempt.
        clock.advance(24 * HOUR);
        expect(await firstAttemptAt()).toBeUndefined();
        const handedBack = (await lease())[0]!;
        expect(handedBack.firstAttemptAt).toEqual(clock.now());
        await store.deliveries.complete(
          [{ kind: 'release', id, leaseToken: handedBack.leaseToken }],
          clock.now(),
        );
        expect(await store.deliveries.get(id)).toMatchObject({ attempts: 0, firstAttemptAt: undefined });

        clock.advance(1000);
        const first = clock.now();
        const l1 = (await lease())[0]!;
        expect(l1).toMatchObject({ attempts: 1, firstAttemptAt: first });
        await store.deliveries.complete(
          [{ kind: 'retry', id, leaseToken: l1.leaseToken, dueAt: clock.now(), error }],
          clock.now(),
        );
        clock.advance(HOUR);
        const l2 = (await lease('dest-a', { leaseMs: 1000 }))[0]!;
        expect(l2).toMatchObject({ attempts: 2, firstAttemptAt: first });
        clock.advance(1000);
        const interrupted = (await lease())[0]!;
        expect(interrupted).toMatchObject({ attempts: 3, interruptedAttempts: 1, firstAttemptAt: first });
        await store.deliveries.complete(
          [{ kind: 'release', id, leaseToken: interrupted.leaseToken }],
          clock.now(),
        );
        expect(await store.deliveries.get(id)).toMatchObject({ attempts: 2, firstAttemptAt: first });

        const l3 = (await lease())[0]!;
        await store.deliveries.complete(
          [{ kind: 'dead', id, leaseToken: l3.leaseToken, error }],
          clock.now(),
        );
        expect(await firstAttemptAt()).toEqual(first);
        clock.advance(HOUR);
        expect(await store.deadLetters.replay({ ids: [id] }, clock.now())).toBe(1);
        expect(await store.deliveries.get(id)).toMatchObject({ attempts: 0, firstAttemptAt: undefined });
        clock.advance(1000);
        const again = (await lease())[0]!;
        expect(again).toMatchObject({ attempts: 1, firstAttemptAt: clock.now() });
        // Given up on unsent (notAttempted): the lease was not an attempt, so there was none.
        await store.deliveries.complete(
          [{ kind: 'dead', id, leaseToken: again.leaseToken, error, notAttempted: true }],
          clock.now(),
        );
        expect(await store.deliveries.get(id)).toMatchObject({ attempts: 0, firstAttemptAt: undefined });
      });

      it('rule: only due rows are leased, at most `limit`, oldest due first', async () => {
        const items = [newEvent(), newEvent(), newEvent()];
        await accept(items);
        const leased = await lease('dest-a', { limit: 2 });
        expect(leased.map((l) => l.event.id)).toEqual([items[0]!.event.id, items[1]!.event.id]);
        await store.deliveries.complete(
          [
            {
              kind: 'retry',
              id: leased[0]!.id,
              leaseToken: leased[0]!.leaseToken,
              dueAt: new Date(clock.now().getTime() + 5000),
              error: { class: 'retryable', code: 'X', message: 'later' },
            },
          ],
          clock.now(),
        );
        expect((await lease()).map((l) => l.event.id)).toEqual([items[2]!.event.id]);
        clock.advance(5000);
        expect((await lease()).map((l) => l.event.id)).toEqual([items[0]!.event.id]);
        expect(await lease('dest-b')).toEqual([]);
      });

      it('rule: a later row of the same ordering key waits while an earlier one is unfinished', async () => {
        const first = newEvent({ orderingKey: 'alice' });
        const second = newEvent({ orderingKey: 'alice' });
        const other = newEvent({ orderingKey: 'bob' });
        await accept([first, second, other]);
        const leased = await lease();
        expect(leased.map((l) => l.event.id)).toEqual([first.event.id, other.event.id]);
        const head = leased[0]!;
        const bob = leased[1]!;
        await store.deliveries.complete(
          [{ kind: 'delivered', id: bob.id, leaseToken: bob.leaseToken }],
          clock.now(),
        );
        // Retrying (pending, not due) still holds back the later row.
        await store.deliveries.complete(
          [
            {
              kind: 'retry',
              id: head.id,
              leaseToken: head.leaseToken,
              dueAt: new Date(clock.now().getTime() + 60_000),
              error: { class: 'retryable', code: 'X', message: 'down' },
            },
          ],
          clock.now(),
        );
        expect(await lease()).toEqual([]);
        clock.advance(60_000);
        const [again] = await lease();
        expect(again!.event.id).toBe(first.event.id);
        await store.deliveries.complete(
          [{ kind: 'delivered', id: again!.id, leaseToken: again!.leaseToken }],
          clock.now(),
        );
        expect((await lease()).map((l) => l.event.id)).toEqual([second.event.id]);
      });

      it('rule: a dead-lettered row releases the rows behind it', async () => {
        const first = newEvent({ orderingKey: 'alice' });
        const second = newEvent({ orderingKey: 'alice' });
        await accept([first, second]);
        const [head] = await lease();
        await store.deliveries.complete(
          [
            {
              kind: 'dead',
              id: head!.id,
              leaseToken: head!.leaseToken,
              error: { class: 'permanent', code: 'BAD', message: 'refused', status: 400 },
              setJwt: 'a.b.c',
            },
          ],
          clock.now(),
        );
        expect((await lease()).map((l) => l.event.id)).toEqual([second.event.id]);
      });

      it('rule: a dead letter given up on without being sent (notAttempted) does not count that lease as an attempt', async () => {
        await accept([newEvent({ orderingKey: 'a' }), newEvent({ orderingKey: 'b' })]);
        const [sent, unsent] = await lease();
        const error = { class: 'retryable' as const, code: 'GAVE_UP', message: 'gave up' };
        await store.deliveries.complete(
          [
            { kind: 'dead', id: sent!.id, leaseToken: sent!.leaseToken, error },
            { kind: 'dead', id: unsent!.id, leaseToken: unsent!.leaseToken, error, notAttempted: true },
          ],
          clock.now(),
        );
        const letters = await store.deadLetters.list();
        expect(letters.map((l) => [l.id, l.attempts])).toEqual([
          [sent!.id, 1],
          [unsent!.id, 0],
        ]);
      });

      it('rule: rows queued behind one subject hold up only that subject, which keeps its order', async () => {
        // 120 rows for alice, accepted in batches between rows of 40 other subjects.
        const alice: string[] = [];
        const others: string[] = [];
        for (let batch = 0; batch < 4; batch++) {
          const items = [
            ...Array.from({ length: 30 }, () => newEvent({ orderingKey: 'alice' })),
            ...Array.from({ length: 10 }, (_, i) => newEvent({ orderingKey: `other-${batch}-${i}` })),
          ];
          await accept(items);
          for (const item of items)
            (item.deliveries[0]!.orderingKey.endsWith('|alice') ? alice : others).push(item.event.id);
        }
        const leasedAlice: string[] = [];
        const leasedOthers: string[] = [];
        for (let round = 0; ; round++) {
          const batch = await lease('dest-a', { limit: 8 });
          if (batch.length === 0) break;
          const mine = batch.filter((l) => alice.includes(l.event.id));
          // The head of alice and no other of her rows, next to the heads of the other subjects.
          expect(mine.length, `round ${round}`).toBe(1);
          expect(batch.length).toBe(Math.min(8, 1 + others.length - leasedOthers.length));
          leasedAlice.push(mine[0]!.event.id);
          leasedOthers.push(...batch.filter((l) => l !== mine[0]).map((l) => l.event.id));
          // A second round while they are in flight finds nothing more of alice's.
          const more = await lease('dest-a', { limit: 8, owner: 'worker-2' });
          expect(more.filter((l) => alice.includes(l.event.id))).toEqual([]);
          leasedOthers.push(...more.map((l) => l.event.id));
          await store.deliveries.complete(
            [...batch, ...more].map((l) => ({
              kind: 'delivered' as const,
              id: l.id,
              leaseToken: l.leaseToken,
            })),
            clock.now(),
          );
        }
        expect(leasedAlice).toEqual(alice);
        expect(leasedOthers.sort()).toEqual([...others].sort());
        expect((await store.stats()).backlog).toEqual({});
      });

      it('rule: a head whose lease expired is taken again while the rows behind it still wait', async () => {
        const first = newEvent({ orderingKey: 'alice' });
        const second = newEvent({ orderingKey: 'alice' });
        await accept([first, second]);
        const [head] = await lease('dest-a', { leaseMs: 1000 });
        expect(head!.event.id).toBe(first.event.id);
        clock.advance(1000);
        const again = await lease('dest-a', { owner: 'worker-2' });
        expect(again.map((l) => [l.id, l.attempts])).toEqual([[head!.id, 2]]);
        await store.deliveries.complete(
          [{ kind: 'delivered', id: again[0]!.id, leaseToken: again[0]!.leaseToken }],
          clock.now(),
        );
        expect((await lease()).map((l) => l.event.id)).toEqual([second.event.id]);
      });

      it('rule: a replayed dead letter leads its subject again, ahead of rows accepted after it', async () => {
        const error = { class: 'permanent', code: 'BAD', message: 'refused' };
        const a = newEvent({ orderingKey: 'alice' });
        await accept([a]);
        const [la] = await lease();
        await store.deliveries.complete(
          [{ kind: 'dead', id: la!.id, leaseToken: la!.leaseToken, error }],
          clock.now(),
        );
        const b = newEvent({ orderingKey: 'alice' });
        const c = newEvent({ orderingKey: 'alice' });
        await accept([b, c]);
        const [lb] = await lease();
        expect(lb!.event.id).toBe(b.event.id);
        // Replayed while b is in flight: a goes next, c waits for both.
        expect(await store.deadLetters.replay({ ids: [la!.id] }, clock.now())).toBe(1);
        const [la2, ...rest] = await lease();
        expect(rest).toEqual([]);
        expect(la2!.event.id).toBe(a.event.id);
        await store.deliveries.complete(
          [{ kind: 'delivered', id: lb!.id, leaseToken: lb!.leaseToken }],
          clock.now(),
        );
        expect(await lease()).toEqual([]);
        await store.deliveries.complete(
          [{ kind: 'delivered', id: la2!.id, leaseToken: la2!.leaseToken }],
          clock.now(),
        );
        expect((await lease()).map((l) => l.event.id)).toEqual([c.event.id]);
      });

      it('rule: after a destination’s rows are discarded, a new row for the same subject leads at once', async () => {
        await accept([0, 1, 2].map(() => newEvent({ destinations: ['dest-b'], orderingKey: 'alice' })));
        const [leased] = await lease('dest-b');
        expect(await store.deliveries.discardUnfinished('dest-b')).toBe(3);
        expect(
          await store.deliveries.complete(
            [{ kind: 'delivered', id: leased!.id, leaseToken: leased!.leaseToken }],
            clock.now(),
          ),
        ).toBe(0);
        const later = newEvent({ destinations: ['dest-b'], orderingKey: 'alice' });
        await accept([later]);
        expect((await lease('dest-b')).map((l) => l.event.id)).toEqual([later.event.id]);
      });

      it('records retry errors and the signed SET, and a release gives back the attempt', async () => {
        await accept([newEvent()]);
        const [l] = await lease();
        const due = new Date(clock.now().getTime() + 1234);
        await store.deliveries.complete(
          [
            {
              kind: 'retry',
              id: l!.id,
              leaseToken: l!.leaseToken,
              dueAt: due,
              error: { class: 'retryable', code: 'HTTP', message: '503', status: 503 },
              setJwt: 'h.p.s',
            },
          ],
          clock.now(),
        );
        expect(await store.deliveries.get(l!.id)).toMatchObject({
          state: 'pending',
          attempts: 1,
          dueAt: due,
          lastError: { class: 'retryable', code: 'HTTP', message: '503', status: 503 },
          setJwt: 'h.p.s',
        });
        expect(await store.deliveries.nextDueAt('dest-a')).toEqual(due);
        clock.advance(1234);
        const [l2] = await lease();
        expect(l2!.attempts).toBe(2);
        await store.deliveries.complete(
          [{ kind: 'release', id: l2!.id, leaseToken: l2!.leaseToken }],
          clock.now(),
        );
        expect(await store.deliveries.get(l2!.id)).toMatchObject({ state: 'pending', attempts: 1 });
      });

      it('keeps errors holding U+0000 or half a surrogate pair (a receiver body cut at 200 characters) as U+FFFD, with every outcome of the batch', async () => {
        await accept([newEvent(), newEvent(), newEvent()]);
        const [a, b, c] = await lease('dest-a', { limit: 3 });
        const cut = `${'a'.repeat(199)}\ud83d`; // 'a'×199 + '😀', cut after 200 UTF-16 units
        await store.deliveries.complete(
          [
            {
              kind: 'retry',
              id: a!.id,
              leaseToken: a!.leaseToken,
              dueAt: clock.now(),
              error: { class: 'retryable', code: 'HTTP', message: cut, status: 503 },
            },
            {
              kind: 'dead',
              id: b!.id,
              leaseToken: b!.leaseToken,
              error: { class: 'permanent', code: 'HTTP', message: 'nul\u0000byte \ude00', status: 400 },
            },
            { kind: 'delivered', id: c!.id, leaseToken: c!.leaseToken },
          ],
          clock.now(),
        );
        expect((await store.deliveries.get(a!.id))?.lastError).toMatchObject({
          message: `${'a'.repeat(199)}\uFFFD`,
        });
        expect((await store.deadLetters.get(b!.id))?.lastError).toMatchObject({
          message: 'nul\uFFFDbyte \uFFFD',
        });
        expect((await store.deliveries.get(c!.id))?.state).toBe('delivered');
      });

      it('rule: concurrent leasers never receive the same row', async () => {
        await accept(Array.from({ length: 40 }, () => newEvent()));
        const batches = await Promise.all(
          ['w1', 'w2', 'w3', 'w4'].map((owner) => lease('dest-a', { owner, limit: 15 })),
        );
        const ids = batches.flat().map((l) => l.id);
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(40);
      });
    });

    describe('dead letters', () => {
      async function deadLetter(destination: string, type?: string) {
        const item = newEvent({ destinations: [destination], ...(type ? { event: { type } } : {}) });
        await accept([item]);
        const [l] = await lease(destination);
        await store.deliveries.complete(
          [
            {
              kind: 'dead',
              id: l!.id,
              leaseToken: l!.leaseToken,
              error: { class: 'permanent', code: 'BAD', message: 'no' },
              setJwt: `jwt-${l!.id}`,
            },
          ],
          clock.now(),
        );
        return { item, id: l!.id };
      }

      it('lists, counts and shows dead letters with SET, destination, attempts and last error', async () => {
        const a = await deadLetter('dest-a', 'urn:type:x');
        clock.advance(1000);
        const b = await deadLetter('dest-b', 'urn:type:y');
        expect((await store.deadLetters.list()).map((d) => d.id)).toEqual([a.id, b.id]);
        expect(await store.deadLetters.get(a.id)).toMatchObject({
          destinationId: 'dest-a',
          eventType: 'urn:type:x',
          jti: `${a.item.event.id}/dest-a`,
          attempts: 1,
          lastError: { code: 'BAD' },
          setJwt: `jwt-${a.id}`,
          subject: a.item.event.subject,
        });
        expect((await store.deadLetters.list({ destinationId: 'dest-b' })).map((d) => d.id)).toEqual([b.id]);
        expect((await store.deadLetters.list({ eventType: 'urn:type:x' })).map((d) => d.id)).toEqual([a.id]);
        expect(
          (await store.deadLetters.list({ since: new Date(clock.now().getTime()) })).map((d) => d.id),
        ).toEqual([b.id]);
        expect(
          (await store.deadLetters.list({ until: new Date(clock.now().getTime()) })).map((d) => d.id),
        ).toEqual([a.id]);
        const [first] = await store.deadLetters.list({}, { limit: 1 });
        expect(
          (await store.deadLetters.list({}, { afterDeadSeq: first!.deadSeq, limit: 5 })).map((d) => d.id),
        ).toEqual([b.id]);
        expect(await store.deadLetters.count({ destinationId: 'dest-a' })).toBe(1);
        expect((await store.stats()).deadLetters).toEqual({ 'dest-a': 1, 'dest-b': 1 });
      });

      it('rule: replay puts the letter back with the same jti and a fresh attempt budget', async () => {
        const a = await deadLetter('dest-a');
        clock.advance(5000);
        expect(await store.deadLetters.replay({ ids: [a.id] }, clock.now())).toBe(1);
        expect(await store.deadLetters.get(a.id)).toBeUndefined();
        const [again] = await lease();
        expect(again).toMatchObject({
          id: a.id,
          jti: `${a.item.event.id}/dest-a`,
          attempts: 1,
          enqueuedAt: clock.now(),
        });
      });

      /** Accepts `count` events for dest-a (each its own ordering key) and leases their deliveries. */
      async function leaseAll(count: number) {
        await accept(Array.from({ length: count }, () => newEvent()));
        const leased = await lease('dest-a', { limit: count });
        expect(leased).toHaveLength(count);
        return leased;
      }
      const die = (l: { id: number; leaseToken: string }) =>
        store.deliveries.complete(
          [
            {
              kind: 'dead',
              id: l.id,
              leaseToken: l.leaseToken,
              error: { class: 'permanent', code: 'BAD', message: 'no' },
            },
          ],
          clock.now(),
        );
      /** Every letter a walk of pages of `limit` lists, calling `between` after each page. */
      async function walk(limit: number, between: (page: number) => Promise<void> = async () => {}) {
        const seen: number[] = [];
        let after: number | undefined;
        for (let page = 1; ; page++) {
          if (page > 20) throw new Error(`the walk has not ended after 20 pages: ${seen.join(', ')}`);
          const rows = await store.deadLetters.list(
            {},
            { limit, ...(after === undefined ? {} : { afterDeadSeq: after }) },
          );
          seen.push(...rows.map((r) => r.id));
          await between(page);
          if (rows.length < limit) return seen;
          after = rows.at(-1)!.deadSeq;
        }
      }

      it('rule: letters page in the order they died, so one of an older delivery that dies after a page was read comes on a later page', async () => {
        const [older, b, c] = await leaseAll(3);
        await die(b!);
        clock.advance(1000);
        await die(c!);
        // The older delivery dies while the first page is being read.
        const seen = await walk(1, async (page) => {
          if (page === 1) {
            clock.advance(1000);
            await die(older!);
          }
        });
        expect(seen).toEqual([b!.id, c!.id, older!.id]);
        const listed = await store.deadLetters.list();
        expect(listed.map((l) => l.id)).toEqual([b!.id, c!.id, older!.id]);
        expect(listed.map((l) => l.deadSeq)).toEqual([...listed.map((l) => l.deadSeq)].sort((x, y) => x - y));
      });

      it('rule: a replayed letter that dies again is listed after the letters that died before it, even in the same millisecond', async () => {
        const [a, b] = await leaseAll(2);
        await die(a!);
        await die(b!);
        const [page1] = await store.deadLetters.list({}, { limit: 1 });
        expect(page1!.id).toBe(a!.id);
        // Letter a is replayed and dies again, at the very time b died: its place is after b.
        expect(await store.deadLetters.replay({ ids: [a!.id] }, clock.now())).toBe(1);
        const [again] = await lease();
        expect(again!.id).toBe(a!.id);
        await die(again!);
        const rest = await store.deadLetters.list({}, { afterDeadSeq: page1!.deadSeq });
        expect(rest.map((l) => l.id)).toEqual([b!.id, a!.id]);
        expect(rest[1]!.deadSeq).toBeGreaterThan(page1!.deadSeq);
      });

      it('rule: a death never takes a number already handed out, after a purge of the last letter or a restart', async () => {
        const [a, b, c] = await leaseAll(3);
        await die(a!);
        const [first] = await store.deadLetters.list();
        await store.deadLetters.purge({ ids: [a!.id] });
        await die(b!);
        const [second] = await store.deadLetters.list();
        expect(second!.deadSeq).toBeGreaterThan(first!.deadSeq);
        await store.deadLetters.purge({});
        const again = await h.reopen();
        try {
          await again.deliveries.complete(
            [
              {
                kind: 'dead',
                id: c!.id,
                leaseToken: c!.leaseToken,
                error: { class: 'permanent', code: 'BAD', message: 'no' },
              },
            ],
            clock.now(),
          );
          const [third] = await again.deadLetters.list({}, { afterDeadSeq: second!.deadSeq });
          expect(third?.id).toBe(c!.id);
        } finally {
          await again.close();
        }
      });

      it('pages with the filters: each page holds only matching letters, in the order they died', async () => {
        await accept([
          ...Array.from({ length: 3 }, () => newEvent({ destinations: ['dest-a'] })),
          ...Array.from({ length: 2 }, () => newEvent({ destinations: ['dest-b'] })),
        ]);
        const inA = await lease('dest-a', { limit: 3 });
        const inB = await lease('dest-b', { limit: 2 });
        // Deaths alternate between the destinations, newest row of dest-a first.
        for (const l of [inA[2]!, inB[0]!, inA[1]!, inB[1]!, inA[0]!]) {
          await die(l);
          clock.advance(1000);
        }
        const filter = { destinationId: 'dest-a' };
        const page1 = await store.deadLetters.list(filter, { limit: 2 });
        const page2 = await store.deadLetters.list(filter, { limit: 2, afterDeadSeq: page1.at(-1)!.deadSeq });
        expect([...page1, ...page2].map((l) => l.id)).toEqual([inA[2]!.id, inA[1]!.id, inA[0]!.id]);
        expect(await store.deadLetters.count(filter)).toBe(3);
        const since = new Date(clock.now().getTime() - 3000);
        expect((await store.deadLetters.list({ since })).map((l) => l.id)).toEqual([
          inA[1]!.id,
          inB[1]!.id,
          inA[0]!.id,
        ]);
      });

      it('purges by filter and leaves the rest', async () => {
        await deadLetter('dest-a');
        const b = await deadLetter('dest-b');
        expect(await store.deadLetters.purge({ destinationId: 'dest-a' })).toBe(1);
        expect((await store.deadLetters.list()).map((d) => d.id)).toEqual([b.id]);
        expect(await store.deadLetters.purge({ ids: [] })).toBe(0);
      });
    });

    describe('checkpoints', () => {
      it('stores JSON per (instance, name) and lists, replaces and deletes it', async () => {
        await store.checkpoints.set('hr', 'default', { cursor: 'a', n: [1, 2] }, clock.now());
        await store.checkpoints.set('hr', 'users', 'x', clock.now());
        await store.checkpoints.set('edr', 'default', 7, clock.now());
        expect(await store.checkpoints.get('hr')).toEqual({ cursor: 'a', n: [1, 2] });
        await store.checkpoints.set('hr', 'default', { cursor: 'b' }, clock.now());
        expect(await store.checkpoints.get('hr')).toEqual({ cursor: 'b' });
        expect((await store.checkpoints.list('hr')).map((c) => [c.name, c.value])).toEqual([
          ['default', { cursor: 'b' }],
          ['users', 'x'],
        ]);
        expect(await store.checkpoints.delete('hr', 'users')).toBe(true);
        expect(await store.checkpoints.delete('hr', 'users')).toBe(false);
        expect(await store.checkpoints.get('hr', 'users')).toBeUndefined();
        expect(await store.checkpoints.get('edr')).toBe(7);
      });
    });

    describe('schedules', () => {
      it('rule: a held event gets no deliveries until released, and is released once', async () => {
        const held = newEvent({
          releaseAt: new Date(clock.now().getTime() + HOUR),
          destinations: ['dest-a'],
        });
        await accept([held]);
        expect(await store.deliveries.forEvent(held.event.id)).toEqual([]);
        expect((await store.stats()).scheduled).toBe(1);
        expect(await store.events.dueSchedules(clock.now(), 10)).toEqual([]);
        clock.advance(HOUR);
        const due = await store.events.dueSchedules(clock.now(), 10);
        expect(due.map((d) => d.event)).toEqual([held.event]);
        const release = [{ eventId: held.event.id, deliveries: held.deliveries }];
        expect(await store.events.releaseSchedules(release, clock.now())).toEqual([held.event.id]);
        expect(await store.events.releaseSchedules(release, clock.now())).toEqual([]);
        expect((await store.deliveries.forEvent(held.event.id)).length).toBe(1);
        expect((await store.stats()).scheduled).toBe(0);
      });
    });

    describe('streams', () => {
      const create = (
        streamId: string,
        clientId = 'client-1',
        status: 'enabled' | 'paused' | 'disabled' = 'enabled',
      ) =>
        store.streams.create(
          { streamId, clientId, config: { delivery: { method: 'poll' } }, status },
          clock.now(),
        );

      it('creates, lists, updates and deletes stream rows', async () => {
        const s = await create('s1');
        expect(s).toMatchObject({
          streamId: 's1',
          clientId: 'client-1',
          status: 'enabled',
          config: { delivery: { method: 'poll' } },
        });
        await create('s2', 'client-2');
        expect((await store.streams.list({ clientId: 'client-2' })).map((x) => x.streamId)).toEqual(['s2']);
        clock.advance(10);
        const paused = await store.streams.update(
          's1',
          { status: 'paused', statusReason: 'receiver maintenance' },
          clock.now(),
        );
        expect(paused).toMatchObject({
          status: 'paused',
          statusReason: 'receiver maintenance',
          updatedAt: clock.now(),
        });
        const reconfigured = await store.streams.update('s1', { config: { aud: 'x' } }, clock.now());
        expect(reconfigured).toMatchObject({
          status: 'paused',
          statusReason: 'receiver maintenance',
          config: { aud: 'x' },
        });
        expect(
          (await store.streams.update('s1', { status: 'enabled', statusReason: null }, clock.now()))
            ?.statusReason,
        ).toBeUndefined();
        expect(await store.streams.update('nope', { status: 'paused' }, clock.now())).toBeUndefined();
        expect(await store.streams.delete('s2')).toBe(true);
        expect(await store.streams.get('s2')).toBeUndefined();
        expect(await store.streams.delete('s2')).toBe(false);
      });

      it('writes a stream change only while its revision is the one read (another instance may have changed it)', async () => {
        await store.streams.create(
          {
            streamId: 's1',
            clientId: 'client-1',
            config: { aud: 'a', internal: { rev: 'r1' } },
            status: 'enabled',
          },
          clock.now(),
        );
        const updated = await store.streams.update(
          's1',
          { config: { aud: 'b', internal: { rev: 'r2' } }, expectedRev: 'r1' },
          clock.now(),
        );
        expect(updated?.config).toEqual({ aud: 'b', internal: { rev: 'r2' } });
        // A writer that read r1 is refused and writes nothing, status included.
        const stale = await store.streams
          .update(
            's1',
            { config: { aud: 'c', internal: { rev: 'r3' } }, status: 'paused', expectedRev: 'r1' },
            clock.now(),
          )
          .then(
            () => undefined,
            (err: unknown) => err,
          );
        expect(stale).toMatchObject({ code: 'SSF_ERR_STREAM_CONFLICT', errorClass: 'retryable' });
        expect(await store.streams.get('s1')).toMatchObject({ status: 'enabled', config: { aud: 'b' } });
        expect(
          await store.streams.update('nope', { status: 'paused', expectedRev: 'r1' }, clock.now()),
        ).toBeUndefined();
      });

      it('pages streams by key, oldest first, of one client or status', async () => {
        // s3 and s1 are created in the same millisecond: the stream id orders them.
        await create('s3');
        await create('s1', 'client-2');
        clock.advance(5);
        await create('s0', 'client-1', 'paused');
        clock.advance(5);
        await create('s2');
        const ids = (rows: StreamRecord[]) => rows.map((r) => r.streamId);
        expect(ids(await store.streams.list())).toEqual(['s1', 's3', 's0', 's2']);
        const first = await store.streams.list({ limit: 2 });
        expect(ids(first)).toEqual(['s1', 's3']);
        const last = first.at(-1)!;
        const after = { createdAt: last.createdAt, streamId: last.streamId };
        expect(ids(await store.streams.list({ after, limit: 2 }))).toEqual(['s0', 's2']);
        expect(
          ids(await store.streams.list({ after: { createdAt: last.createdAt, streamId: 's2' } })),
        ).toEqual(['s3', 's0', 's2']);
        expect(ids(await store.streams.list({ status: 'enabled' }))).toEqual(['s1', 's3', 's2']);
        expect(ids(await store.streams.list({ clientId: 'client-1', status: 'enabled', limit: 1 }))).toEqual([
          's3',
        ]);
        expect(
          ids(
            await store.streams.list({
              clientId: 'client-1',
              after: { createdAt: last.createdAt, streamId: 's3' },
            }),
          ),
        ).toEqual(['s0', 's2']);
      });

      it('rule: a subject is kept per stream by its key, added or removed, and put again replaces it', async () => {
        await create('s1');
        await create('s2');
        const alice = { format: 'email', email: 'alice@example.com' };
        const rows = async (streamId: string) =>
          (await store.streams.listSubjects(streamId)).map((r) => [r.subjectKey, r.included]);
        await store.streams.putSubject(
          's1',
          { subjectKey: 'k-alice', subject: alice, included: true },
          clock.now(),
        );
        await store.streams.putSubject(
          's2',
          { subjectKey: 'k-alice', subject: alice, included: false },
          clock.now(),
        );
        expect(await rows('s1')).toEqual([['k-alice', true]]);
        expect(await rows('s2')).toEqual([['k-alice', false]]);
        await store.streams.putSubject(
          's2',
          { subjectKey: 'k-alice', subject: alice, included: true },
          clock.now(),
        );
        expect(await rows('s2')).toEqual([['k-alice', true]]);
        expect(await store.streams.deleteSubject('s2', 'k-alice')).toBe(true);
        expect(await store.streams.deleteSubject('s2', 'k-alice')).toBe(false);
        expect(await rows('s2')).toEqual([]);
        expect(await rows('s1')).toEqual([['k-alice', true]]);
      });

      it('pages through subjects by key', async () => {
        await create('s1');
        for (const key of ['c', 'a', 'b']) {
          await store.streams.putSubject(
            's1',
            { subjectKey: key, subject: { format: 'opaque', id: key }, included: true },
            clock.now(),
          );
        }
        const first = await store.streams.listSubjects('s1', { limit: 2 });
        expect(first.map((s) => s.subjectKey)).toEqual(['a', 'b']);
        const next = await store.streams.listSubjects('s1', { afterKey: 'b', limit: 2 });
        expect(next).toEqual([
          { subjectKey: 'c', subject: { format: 'opaque', id: 'c' }, included: true, addedAt: clock.now() },
        ]);
      });

      it('rule: the poll queue returns each SET until acknowledged, redelivers unacked ones, and records setErrs', async () => {
        await create('s1');
        const items = ['j1', 'j2', 'j3'].map((jti) => ({ jti, eventId: 'e', setJwt: `set-${jti}` }));
        expect(await store.streams.enqueuePoll('s1', items, clock.now())).toBe(3);
        expect(await store.streams.enqueuePoll('s1', items.slice(0, 1), clock.now())).toBe(0);
        const req = { max: 2, now: clock.now(), redeliverAfterMs: 30_000 };
        const first = await store.streams.poll('s1', req);
        expect(first).toEqual({
          sets: [
            { jti: 'j1', setJwt: 'set-j1' },
            { jti: 'j2', setJwt: 'set-j2' },
          ],
          moreAvailable: true,
        });
        expect(await store.streams.poll('s1', req)).toEqual({
          sets: [{ jti: 'j3', setJwt: 'set-j3' }],
          moreAvailable: false,
        });
        expect(await store.streams.ack('s1', ['j1', 'unknown'])).toEqual(['j1']);
        expect(
          await store.streams.recordErrors(
            's1',
            { j2: { err: 'invalid_key', description: 'kid unknown' } },
            clock.now(),
          ),
        ).toBe(1);
        expect(await store.streams.listErrors('s1')).toEqual([
          { jti: 'j2', error: { err: 'invalid_key', description: 'kid unknown' }, at: clock.now() },
        ]);
        expect(await store.streams.poll('s1', { ...req, now: clock.now() })).toEqual({
          sets: [],
          moreAvailable: false,
        });
        clock.advance(30_000);
        expect(await store.streams.poll('s1', { ...req, now: clock.now() })).toEqual({
          sets: [{ jti: 'j3', setJwt: 'set-j3' }],
          moreAvailable: false,
        });
        expect(await store.streams.pollQueueDepth('s1')).toBe(1);
        expect((await store.stats()).pollQueues).toEqual({ s1: 1 });
      });

      it('rule: SETs reported in setErrs are listed newest last (at most the newest `limit`) and pruned with delivered rows', async () => {
        await create('s1');
        const items = ['j1', 'j2', 'j3'].map((jti) => ({ jti, eventId: 'e', setJwt: `set-${jti}` }));
        await store.streams.enqueuePoll('s1', items, clock.now());
        await store.streams.poll('s1', { max: 3, now: clock.now(), redeliverAfterMs: 0 });
        await store.streams.recordErrors('s1', { j1: { err: 'invalid_request' } }, clock.now());
        clock.advance(HOUR);
        await store.streams.recordErrors(
          's1',
          { j2: { err: 'invalid_key' }, j3: { err: 'invalid_issuer' } },
          clock.now(),
        );
        expect((await store.streams.listErrors('s1')).map((e) => e.jti)).toEqual(['j1', 'j2', 'j3']);
        expect((await store.streams.listErrors('s1', 2)).map((e) => e.jti)).toEqual(['j2', 'j3']);
        const result = await store.prune({
          now: clock.now(),
          deliveredBefore: new Date(clock.now().getTime() - HOUR / 2),
          limit: 100,
        });
        expect(result.setErrors).toBe(1);
        expect((await store.streams.listErrors('s1')).map((e) => e.jti)).toEqual(['j2', 'j3']);
      });

      it('rule: deleting a stream removes its subjects, poll queue and unfinished deliveries', async () => {
        await create('s1');
        await store.streams.putSubject(
          's1',
          { subjectKey: 'k', subject: { format: 'opaque', id: 'k' }, included: true },
          clock.now(),
        );
        await store.streams.enqueuePoll('s1', [{ jti: 'j', eventId: 'e', setJwt: 's' }], clock.now());
        await accept([newEvent({ destinations: [streamDestinationId('s1'), 'dest-a'] })]);
        expect(await store.streams.delete('s1')).toBe(true);
        expect(await store.streams.listSubjects('s1')).toEqual([]);
        expect(await store.streams.pollQueueDepth('s1')).toBe(0);
        expect((await store.stats()).backlog).toEqual({ 'dest-a': 1 });
      });
    });

    describe('operator queries', () => {
      const at = (minutes: number) => new Date(Date.parse('2026-01-01T00:00:00.000Z') + minutes * 60_000);

      it('lists events newest first with filters, subject mentions and a keyset cursor', async () => {
        const items = [0, 1, 2, 3].map((i) =>
          newEvent({
            event: {
              acceptedAt: at(i),
              occurredAt: at(i),
              instanceId: i === 3 ? 'mdm' : 'hr',
              subject:
                i % 2 === 0
                  ? { format: 'email', email: 'Ann_1%@example.com' }
                  : { format: 'opaque', id: `dev-${i}` },
            },
          }),
        );
        await accept(items);
        const ids = (events: Array<{ id: string }>) => events.map((e) => e.id);
        const all = await store.operator.listEvents({ limit: 10 });
        expect(ids(all)).toEqual(items.map((i) => i.event.id).reverse());
        const first = await store.operator.listEvents({ limit: 2 });
        const last = first.at(-1)!;
        const next = await store.operator.listEvents({
          limit: 2,
          before: { acceptedAt: last.acceptedAt, id: last.id },
        });
        expect([...ids(first), ...ids(next)]).toEqual(ids(all));
        expect(ids(await store.operator.listEvents({ limit: 10, instanceId: 'mdm' }))).toEqual([
          items[3]!.event.id,
        ]);
        expect(ids(await store.operator.listEvents({ limit: 10, since: at(1), until: at(3) }))).toEqual([
          items[2]!.event.id,
          items[1]!.event.id,
        ]);
        const mentions = await store.operator.listEvents({
          limit: 10,
          subjectMentions: ['ann_1%@EXAMPLE.com'],
        });
        expect(ids(mentions)).toEqual([items[2]!.event.id, items[0]!.event.id]);
        expect(await store.operator.listEvents({ limit: 10, subjectMentions: ['ann_1x'] })).toEqual([]);
        expect(await store.operator.listEvents({ limit: 10, subjectMentions: [] })).toEqual([]);
      });

      it('lists deliveries newest first by destination, state and event, and per event batch', async () => {
        const a = newEvent({ destinations: ['dest-a', 'dest-b'] });
        const b = newEvent({ destinations: ['dest-a'] });
        await accept([a, b]);
        const rows = await store.operator.listDeliveries({ limit: 10 });
        expect(rows.map((r) => r.jti)).toEqual([
          `${b.event.id}/dest-a`,
          `${a.event.id}/dest-b`,
          `${a.event.id}/dest-a`,
        ]);
        const page = await store.operator.listDeliveries({
          limit: 10,
          destinationId: 'dest-a',
          beforeId: rows[0]!.id,
        });
        expect(page.map((r) => r.jti)).toEqual([`${a.event.id}/dest-a`]);
        expect(await store.operator.listDeliveries({ limit: 10, state: 'delivered' })).toEqual([]);
        expect((await store.operator.listDeliveries({ limit: 10, eventId: a.event.id })).length).toBe(2);
        expect((await store.operator.deliveriesOf([a.event.id, b.event.id])).length).toBe(3);
        expect(await store.operator.deliveriesOf([])).toEqual([]);
      });

      it('reports destination health and activity buckets', async () => {
        const ok = newEvent({ event: { acceptedAt: clock.now() } });
        const bad = newEvent({ event: { acceptedAt: clock.now() }, orderingKey: 'other' });
        const waiting = newEvent({ destinations: ['dest-b'] });
        await accept([ok, bad, waiting]);
        const leased = await lease();
        clock.advance(2_000);
        const error = { class: 'permanent', code: 'HTTP_400', message: 'refused', status: 400 };
        await store.deliveries.complete(
          [
            { kind: 'delivered', id: leased[0]!.id, leaseToken: leased[0]!.leaseToken },
            { kind: 'dead', id: leased[1]!.id, leaseToken: leased[1]!.leaseToken, error },
          ],
          clock.now(),
        );
        const health = await store.operator.destinationHealth(new Date(clock.now().getTime() - HOUR));
        expect(health).toEqual([
          {
            destinationId: 'dest-a',
            delivered: 1,
            dead: 1,
            backlog: 0,
            retrying: 0,
            meanLatencyMs: 2_000,
            lastDeliveredAt: clock.now(),
          },
          {
            destinationId: 'dest-b',
            delivered: 0,
            dead: 0,
            backlog: 1,
            retrying: 0,
            meanLatencyMs: undefined,
            lastDeliveredAt: undefined,
          },
        ]);
        const start = new Date(clock.now().getTime() - 60_000);
        const buckets = await store.operator.activity(start, new Date(start.getTime() + 120_000), 60_000);
        expect(buckets.map((b) => [b.start.toISOString(), b.accepted, b.delivered, b.dead])).toEqual([
          [start.toISOString(), 3, 0, 0],
          [new Date(start.getTime() + 60_000).toISOString(), 0, 1, 1],
        ]);
      });

      it('keeps an audit log, newest first, filtered and paged', async () => {
        const first = await store.operator.recordAudit({
          at: at(1),
          actor: 'ops',
          role: 'write',
          action: 'dead_letters.replay',
          target: 'dest-a',
          detail: { count: 3, filter: { ids: [1, 2] } },
        });
        const second = await store.operator.recordAudit({
          at: at(2),
          actor: 'alice',
          role: 'write',
          action: 'keys.rotate',
          target: 'signing keys',
          detail: {},
        });
        expect(second.id).toBeGreaterThan(first.id);
        expect(await store.operator.listAudit({ limit: 10 })).toEqual([second, first]);
        expect(await store.operator.listAudit({ limit: 10, beforeId: second.id })).toEqual([first]);
        expect(
          await store.operator.listAudit({ limit: 10, actor: 'ops', action: 'dead_letters.replay' }),
        ).toEqual([first]);
        expect(await store.operator.listAudit({ limit: 10, since: at(2) })).toEqual([second]);
        expect(first.detail).toEqual({ count: 3, filter: { ids: [1, 2] } });
      });
    });

    describe('leader leases', () => {
      it('rule: one holder at a time; renewals keep it; expiry or release hands it over', async () => {
        expect(await store.leases.tryAcquire('scheduler', 'a', 10_000, clock.now())).toBe(true);
        expect(await store.leases.tryAcquire('scheduler', 'b', 10_000, clock.now())).toBe(false);
        clock.advance(9_000);
        expect(await store.leases.tryAcquire('scheduler', 'a', 10_000, clock.now())).toBe(true);
        clock.advance(9_000);
        expect(await store.leases.tryAcquire('scheduler', 'b', 10_000, clock.now())).toBe(false);
        expect(await store.leases.current('scheduler', clock.now())).toMatchObject({ holder: 'a' });
        clock.advance(1_000);
        expect(await store.leases.tryAcquire('scheduler', 'b', 10_000, clock.now())).toBe(true);
        expect(await store.leases.current('scheduler', clock.now())).toEqual({
          holder: 'b',
          expiresAt: new Date(clock.now().getTime() + 10_000),
        });
        await store.leases.release('scheduler', 'a');
        expect((await store.leases.current('scheduler', clock.now()))?.holder).toBe('b');
        await store.leases.release('scheduler', 'b');
        expect(await store.leases.tryAcquire('scheduler', 'a', 10_000, clock.now())).toBe(true);
      });
    });

    describe('one-time ids', () => {
      const until = (ms: number) => new Date(clock.now().getTime() + ms);

      it('rule: an id is claimed once until it expires, per scope, and by any store on the database', async () => {
        expect(await store.oneTimeIds.claim('dpop', 'jkt.1', until(60_000), clock.now())).toBe(true);
        expect(await store.oneTimeIds.claim('dpop', 'jkt.1', until(60_000), clock.now())).toBe(false);
        expect(await store.oneTimeIds.claim('other', 'jkt.1', until(60_000), clock.now())).toBe(true);
        expect(await store.oneTimeIds.claim('dpop', 'jkt.2', until(60_000), clock.now())).toBe(true);
        const second = await h.reopen();
        try {
          expect(await second.oneTimeIds.claim('dpop', 'jkt.1', until(60_000), clock.now())).toBe(false);
          clock.advance(59_999);
          expect(await second.oneTimeIds.claim('dpop', 'jkt.1', until(60_000), clock.now())).toBe(false);
          clock.advance(1);
          // Expired: claimed anew, and held for the new lifetime.
          expect(await second.oneTimeIds.claim('dpop', 'jkt.1', until(60_000), clock.now())).toBe(true);
        } finally {
          await second.close();
        }
        expect(await store.oneTimeIds.claim('dpop', 'jkt.1', until(60_000), clock.now())).toBe(false);
      });

      it('rule: an id is in use from its claim until it expires, per scope, seen by any store on the database', async () => {
        expect(await store.oneTimeIds.used('received:src', 'iss.jti-1', clock.now())).toBe(false);
        expect(await store.oneTimeIds.claim('received:src', 'iss.jti-1', until(60_000), clock.now())).toBe(
          true,
        );
        expect(await store.oneTimeIds.used('received:src', 'iss.jti-1', clock.now())).toBe(true);
        expect(await store.oneTimeIds.used('received:other', 'iss.jti-1', clock.now())).toBe(false);
        expect(await store.oneTimeIds.used('received:src', 'iss.jti-2', clock.now())).toBe(false);
        const second = await h.reopen();
        try {
          expect(await second.oneTimeIds.used('received:src', 'iss.jti-1', clock.now())).toBe(true);
          clock.advance(59_999);
          expect(await second.oneTimeIds.used('received:src', 'iss.jti-1', clock.now())).toBe(true);
          clock.advance(1);
          expect(await second.oneTimeIds.used('received:src', 'iss.jti-1', clock.now())).toBe(false);
        } finally {
          await second.close();
        }
      });

      it('rule: concurrent claims of one id: exactly one wins', async () => {
        const claims = await Promise.all(
          Array.from({ length: 8 }, () => store.oneTimeIds.claim('dpop', 'same', until(60_000), clock.now())),
        );
        expect(claims.filter(Boolean)).toHaveLength(1);
      });

      it('prune drops expired ids only', async () => {
        await store.oneTimeIds.claim('dpop', 'old', until(1_000), clock.now());
        await store.oneTimeIds.claim('dpop', 'live', until(HOUR), clock.now());
        clock.advance(2_000);
        const result = await store.prune({ now: clock.now(), deliveredBefore: clock.now(), limit: 100 });
        expect(result.oneTimeIds).toBe(1);
        expect(await store.oneTimeIds.claim('dpop', 'live', until(HOUR), clock.now())).toBe(false);
      });
    });

    describe('metrics and housekeeping', () => {
      it('reports backlog per destination and discards a destination’s unfinished rows', async () => {
        await accept([
          newEvent({ destinations: ['dest-a', 'dest-b'] }),
          newEvent({ destinations: ['dest-a'] }),
        ]);
        expect(await store.deliveries.backlog()).toEqual(
          new Map([
            ['dest-a', 2],
            ['dest-b', 1],
          ]),
        );
        expect(await store.deliveries.discardUnfinished('dest-b')).toBe(1);
        expect((await store.stats()).backlog).toEqual({ 'dest-a': 2 });
      });

      it('rule: prune drops old delivered rows, their events and expired dedupe keys, never unfinished work', async () => {
        const done = newEvent({ dedupeKey: 'k-done' });
        const waiting = newEvent({ event: { acceptedAt: clock.now() } });
        await accept([done, waiting]);
        const leased = await lease();
        const doneLease = leased.find((l) => l.event.id === done.event.id)!;
        await store.deliveries.complete(
          [{ kind: 'delivered', id: doneLease.id, leaseToken: doneLease.leaseToken }],
          clock.now(),
        );
        clock.advance(2 * HOUR);
        const result = await store.prune({
          now: clock.now(),
          deliveredBefore: new Date(clock.now().getTime() - HOUR),
          limit: 100,
        });
        expect(result).toEqual({ deliveries: 1, events: 1, dedupeKeys: 1, oneTimeIds: 0, setErrors: 0 });
        expect(await store.events.get(done.event.id)).toBeUndefined();
        expect(await store.events.get(waiting.event.id)).toBeDefined();
        expect((await store.stats()).backlog).toEqual({ 'dest-a': 1 });
      });

      it('keeps event fields intact, including optional severity', async () => {
        const event = storedEvent({ severity: 'high', claims: { nested: { a: [1, 'x', null] } } });
        await accept([{ event, deliveries: [] }]);
        expect(await store.events.get(event.id)).toEqual(event);
      });
    });
  });
}
