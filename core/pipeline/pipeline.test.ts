import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { EventDraft, Logger } from '../plugin-api/types.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import { deliveryConfigSchema, type DeliveryConfigInput } from '../delivery/config.ts';
import { deliveryJti } from '../delivery/jti.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import type { StoredEvent } from '../storage/types.ts';
import { ManualClock } from '../storage/testing/fixtures.ts';
import { routesConfigSchema, subjectsConfigSchema, type RoutesConfigInput } from './config.ts';
import { EventValidationError, OutboxFullError, Pipeline, type ValidateEvent } from './pipeline.ts';
import { stableSubjectKey } from './subjects.ts';

const REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
const RISK = 'https://schemas.openid.net/secevent/caep/event-type/risk-level-change';
const TYPES: Record<string, string> = { 'caep.session-revoked': REVOKED, 'caep.risk-level-change': RISK };

/** A small catalog: known types only, and a subject with a format. */
const validateEvent: ValidateEvent = (draft) => {
  const type = TYPES[draft.type] ?? (Object.values(TYPES).includes(draft.type) ? draft.type : undefined);
  const problems = [];
  if (type === undefined) problems.push({ path: 'type', message: `unknown event type ${draft.type}` });
  if (typeof draft.subject?.format !== 'string')
    problems.push({ path: 'subject.format', message: 'is required' });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, event: { ...draft, type: type! } };
};

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

interface Setup {
  routes?: RoutesConfigInput;
  delivery?: DeliveryConfigInput;
  aliases?: Array<{ from: Record<string, unknown>; to: Record<string, unknown> }>;
  streamRoutes?: (event: StoredEvent) => string[];
  disabled?: string[];
  metrics?: MetricsRegistry;
  logger?: Logger;
}

function setup(options: Setup = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-pipeline-'));
  const store = SqliteStore.open({ path: join(dir, 'bridge.db') });
  cleanups.push(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const clock = new ManualClock();
  const notified: string[][] = [];
  const pipeline = new Pipeline({
    store,
    delivery: deliveryConfigSchema.parse({ dedupe_window: '1h', ...options.delivery }),
    routes: routesConfigSchema.parse(options.routes ?? [{ to: ['okta', 'google'] }]),
    subjects: subjectsConfigSchema.parse({ aliases: options.aliases ?? [] }),
    validateEvent,
    subjectKey: stableSubjectKey,
    resolveEventType: (t) => TYPES[t] ?? t,
    clock,
    notify: (ids) => notified.push(ids),
    backlogRefreshMs: 0,
    ...(options.streamRoutes ? { streamRoutes: options.streamRoutes } : {}),
    ...(options.disabled ? { disabledDestinations: options.disabled } : {}),
    ...(options.metrics ? { metrics: options.metrics } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
  });
  return { store, clock, pipeline, notified };
}

let n = 0;
const draft = (over: Partial<EventDraft> = {}): EventDraft => ({
  type: 'caep.session-revoked',
  subject: { format: 'email', email: 'alice@example.com' },
  sourceRecordId: `rec-${++n}`,
  claims: { event_timestamp: 1767225600 },
  ...over,
});

describe('pipeline', () => {
  it('accepts valid events durably with one delivery per routed destination and a deterministic jti', async () => {
    const { store, pipeline, notified } = setup();
    const d = draft();
    const result = await pipeline.accept('workday', [d]);
    expect(result).toMatchObject({ duplicates: 0, scheduled: 0, unrouted: 0, rejected: [] });
    const [id] = result.accepted;
    const event = await store.events.get(id!);
    expect(event).toMatchObject({ instanceId: 'workday', type: REVOKED, sourceRecordId: d.sourceRecordId });
    const rows = await store.deliveries.forEvent(id!);
    expect(rows.map((r) => [r.destinationId, r.jti])).toEqual([
      ['okta', deliveryJti('workday', d.sourceRecordId, REVOKED, 'okta')],
      ['google', deliveryJti('workday', d.sourceRecordId, REVOKED, 'google')],
    ]);
    expect(notified).toEqual([['okta', 'google']]);
  });

  it('rule: a batch with an invalid event is refused whole, reporting every problem with its path', async () => {
    const { store, pipeline } = setup();
    const bad = [
      draft(),
      draft({ type: 'caep.nope' }),
      draft({ sourceRecordId: '', occurredAt: 'yesterday' }),
      // From any connector: nesting that would exhaust the stack in hashing or serialisation.
      draft({ claims: { x: JSON.parse('['.repeat(3000) + ']'.repeat(3000)) as unknown } }),
    ];
    const err = await pipeline
      .accept('workday', bad, { checkpoint: { value: 'p2' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventValidationError);
    expect((err as EventValidationError).problems).toEqual([
      { index: 1, path: 'type', message: 'unknown event type caep.nope' },
      { index: 2, path: 'sourceRecordId', message: 'must be a non-empty string' },
      { index: 2, path: 'occurredAt', message: 'must be a date' },
      { index: 3, path: 'claims', message: 'nests more than 32 levels deep' },
    ]);
    expect((await store.stats()).backlog).toEqual({});
    expect(await store.checkpoints.get('workday')).toBeUndefined();
  });

  it('with onInvalid: skip, accepts the valid events and reports the rejected ones', async () => {
    const { pipeline } = setup();
    const result = await pipeline.accept('workday', [draft({ type: 'nope' }), draft()], {
      onInvalid: 'skip',
    });
    expect(result.accepted).toHaveLength(1);
    expect(result.rejected).toEqual([
      { index: 0, problems: [{ path: 'type', message: 'unknown event type nope' }] },
    ]);
  });

  it('rule: the same (instance, source record, event type) within the dedupe window is a duplicate', async () => {
    const { store, clock, pipeline } = setup();
    const d = draft();
    const first = await pipeline.accept('workday', [d]);
    const again = await pipeline.accept('workday', [d, { ...d, type: 'caep.risk-level-change' }]);
    expect(again.duplicates).toBe(1);
    expect(again.accepted[0]).toBe(first.accepted[0]);
    expect(again.accepted[1]).not.toBe(first.accepted[0]);
    const other = await pipeline.accept('crowdstrike', [d]);
    expect(other.duplicates).toBe(0);
    clock.advance(3_600_000);
    const later = await pipeline.accept('workday', [d]);
    expect(later.duplicates).toBe(0);
    expect(later.accepted[0]).not.toBe(first.accepted[0]);
    expect((await store.stats()).backlog).toEqual({ okta: 4, google: 4 });
  });

  it('rule: repeats inside one batch are duplicates of the first', async () => {
    const { pipeline } = setup();
    const d = draft();
    const result = await pipeline.accept('workday', [d, d]);
    expect(result.duplicates).toBe(1);
    expect(result.accepted[0]).toBe(result.accepted[1]);
  });

  it('rule: events and checkpoint are written in one transaction; a failure mid-write leaves nothing', async () => {
    const { store, pipeline } = setup();
    await pipeline.accept('workday', [draft()], { checkpoint: { value: { page: 1 } } });
    expect(await store.checkpoints.get('workday')).toEqual({ page: 1 });
    // Claims that cannot be serialised make the second insert fail inside the transaction.
    const poison = draft({ claims: { n: 1n as unknown as number } });
    await expect(
      pipeline.accept('workday', [draft({ subject: { format: 'email', email: 'z@example.com' } }), poison], {
        checkpoint: { value: { page: 2 } },
      }),
    ).rejects.toThrow();
    expect(await store.checkpoints.get('workday')).toEqual({ page: 1 });
    expect((await store.stats()).backlog).toEqual({ okta: 1, google: 1 });
  });

  it('commits the checkpoint of an empty page', async () => {
    const { store, pipeline } = setup();
    const result = await pipeline.accept('workday', [], { checkpoint: { value: 'c9', name: 'users' } });
    expect(result.accepted).toEqual([]);
    expect(await store.checkpoints.get('workday', 'users')).toBe('c9');
  });

  it('rule: subjects are rewritten by the alias map, then by resolvers, before routing and ordering', async () => {
    const { store, pipeline } = setup({
      routes: [{ subjects: ['*@corp.example'], to: ['okta'] }],
      aliases: [
        {
          from: { format: 'email', email: 'Alice@Old.example' },
          to: { format: 'email', email: 'alice@new.example' },
        },
      ],
    });
    const seen: unknown[] = [];
    pipeline.addResolver((subject) => {
      seen.push(subject);
      return subject.email === 'alice@new.example'
        ? { format: 'email', email: 'alice@corp.example' }
        : undefined;
    });
    const result = await pipeline.accept('workday', [
      draft({ subject: { format: 'email', email: 'alice@old.example' } }),
    ]);
    expect(seen).toEqual([{ format: 'email', email: 'alice@new.example' }]);
    const event = await store.events.get(result.accepted[0]!);
    expect(event?.subject).toEqual({ format: 'email', email: 'alice@corp.example' });
    expect(event?.subjectKey).toBe(stableSubjectKey({ format: 'email', email: 'alice@corp.example' }));
    expect((await store.deliveries.forEvent(event!.id)).map((d) => d.destinationId)).toEqual(['okta']);
  });

  it('refuses a severity outside low–critical, naming the allowed values', async () => {
    const { store, pipeline } = setup({ routes: [{ min_severity: 'high', to: ['okta'] }] });
    const err = await pipeline
      .accept('workday', [draft({ severity: 'HIGH' as 'high' }), draft({ severity: 'urgent' as 'high' })])
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EventValidationError);
    expect((err as EventValidationError).problems).toEqual([
      { index: 0, path: 'severity', message: expect.stringContaining('low, medium, high, critical') },
      { index: 1, path: 'severity', message: expect.stringContaining('"urgent"') },
    ]);
    expect((await store.stats()).backlog).toEqual({});
  });

  it('counts unrouted events in ssf_bridge_events_unrouted_total, on acceptance and on release', async () => {
    const metrics = new MetricsRegistry({ collectDefault: false });
    const { clock, pipeline } = setup({ routes: [{ min_severity: 'high', to: ['okta'] }], metrics });
    const later = new Date(clock.now().getTime() + 3_600_000).toISOString();
    await pipeline.accept('workday', [draft(), draft(), draft({ severity: 'high' })]);
    await pipeline.accept('workday', [draft({ occurredAt: later })]);
    const count = async () =>
      /ssf_bridge_events_unrouted_total\{instance_id="workday"\} (\d+)/.exec(
        (await metrics.render()).body,
      )?.[1];
    expect(await count()).toBe('2');
    clock.advance(3_600_000);
    expect(await pipeline.releaseDue()).toBe(1);
    expect(await count()).toBe('3');
  });

  it('rule: routes naming a disabled outbound instance queue nothing for it, and say so once at start', async () => {
    const warnings: unknown[] = [];
    const logger = { warn: (o: unknown) => warnings.push(o), info: () => {} } as unknown as Logger;
    const { store, pipeline, notified } = setup({
      routes: [
        { id: 'leavers', to: ['okta', 'google'] },
        { id: 'risk', min_severity: 'high', to: ['okta'] },
      ],
      disabled: ['okta'],
      logger,
    });
    expect(warnings).toEqual([
      expect.objectContaining({ route: 'leavers', instance: 'okta' }),
      expect.objectContaining({ route: 'risk', instance: 'okta' }),
    ]);
    const result = await pipeline.accept('workday', [draft({ severity: 'critical' })]);
    expect(result.unrouted).toBe(0);
    expect((await store.deliveries.forEvent(result.accepted[0]!)).map((d) => d.destinationId)).toEqual([
      'google',
    ]);
    expect(notified).toEqual([['google']]);

    const onlyDisabled = setup({ routes: [{ to: ['okta'] }], disabled: ['okta'] });
    const alone = await onlyDisabled.pipeline.accept('workday', [draft()]);
    expect(alone.unrouted).toBe(1);
    expect((await onlyDisabled.store.stats()).backlog).toEqual({});
  });

  it('counts events that no route sends anywhere', async () => {
    const { store, pipeline } = setup({ routes: [{ min_severity: 'high', to: ['okta'] }] });
    const result = await pipeline.accept('workday', [draft(), draft({ severity: 'critical' })]);
    expect(result.unrouted).toBe(1);
    expect((await store.stats()).backlog).toEqual({ okta: 1 });
  });

  it('rule: routes to streams reach the streams the transmitter routes the event to', async () => {
    const seen: StoredEvent[] = [];
    const { store, pipeline } = setup({
      routes: [{ to: ['okta'], streams: true }],
      streamRoutes: (event) => {
        seen.push(event);
        return event.subject.email === 'alice@example.com' ? ['stream:s1', 'stream:s2'] : [];
      },
    });
    const alice = { format: 'email', email: 'alice@example.com' };
    const result = await pipeline.accept('workday', [
      draft({ subject: alice }),
      draft({ subject: { format: 'email', email: 'bob@example.com' } }),
    ]);
    expect(seen.map((e) => e.subject.email)).toEqual(['alice@example.com', 'bob@example.com']);
    const [forAlice, forBob] = await Promise.all(result.accepted.map((id) => store.deliveries.forEvent(id)));
    expect(forAlice!.map((r) => r.destinationId).sort()).toEqual(['okta', 'stream:s1', 'stream:s2']);
    expect(forBob!.map((r) => r.destinationId)).toEqual(['okta']);
  });

  it('rule: a route naming streams reaches only those of them the transmitter routes the event to', async () => {
    const { store, pipeline } = setup({
      routes: [{ streams: ['s1', 's2'] }],
      streamRoutes: () => ['stream:s1', 'stream:s3'],
    });
    const result = await pipeline.accept('workday', [draft()]);
    expect((await store.deliveries.forEvent(result.accepted[0]!)).map((r) => r.destinationId)).toEqual([
      'stream:s1',
    ]);
  });

  it('rule: without a transmitter, routes to streams reach no stream and the event counts as unrouted', async () => {
    const { store, pipeline } = setup({ routes: [{ streams: true }] });
    await store.streams.create(
      { streamId: 's1', clientId: 'c', config: {}, status: 'enabled' },
      new Date('2026-01-01T00:00:00Z'),
    );
    const result = await pipeline.accept('workday', [draft()]);
    expect(result.unrouted).toBe(1);
    expect((await store.stats()).backlog).toEqual({});
  });

  it('rule: routes whose filters refuse an event do not ask the transmitter about it', async () => {
    const asked: string[] = [];
    const { pipeline } = setup({
      routes: [{ event_types: ['caep.credential-change'], streams: true }],
      streamRoutes: (event) => {
        asked.push(event.type);
        return ['stream:s1'];
      },
    });
    const result = await pipeline.accept('workday', [draft()]);
    expect(asked).toEqual([]);
    expect(result.unrouted).toBe(1);
  });

  it('rule: when a destination outbox is full, accept refuses with Retry-After and writes nothing', async () => {
    const { store, clock, pipeline } = setup({
      routes: [{ to: ['okta', 'google'] }],
      delivery: { destinations: { okta: { queue_size: 2 } }, backpressure_retry_after: '7s' },
    });
    await pipeline.accept('workday', [draft(), draft()]);
    const err = await pipeline
      .accept('workday', [draft()], { checkpoint: { value: 'next' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutboxFullError);
    expect(err).toMatchObject({
      retryAfterMs: 7000,
      destinations: ['okta'],
      code: 'SSF_ERR_DELIVERY_QUEUE_FULL',
    });
    expect((await store.stats()).backlog).toEqual({ okta: 2, google: 2 });
    expect(await store.checkpoints.get('workday')).toBeUndefined();
    // Once the destination drains, sources are let in again.
    const [due] = await store.deliveries.lease({
      destinationId: 'okta',
      owner: 'w',
      limit: 1,
      now: clock.now(),
      leaseMs: 1000,
    });
    await store.deliveries.complete(
      [{ kind: 'delivered', id: due!.id, leaseToken: due!.leaseToken }],
      clock.now(),
    );
    expect((await pipeline.accept('workday', [draft()])).accepted).toHaveLength(1);
  });

  it('rule: a batch larger than queue_size is let into an outbox below its bound, once; the next waits for it to drain', async () => {
    // One batch may overshoot the bound: counting it against the bound would refuse a batch
    // larger than queue_size for ever, however empty the outbox (a poller's page never passes).
    const { store, clock, pipeline } = setup({
      routes: [{ to: ['okta'] }],
      delivery: { destinations: { okta: { queue_size: 3 } } },
    });
    // Each about its own subject, so that any of them can be leased.
    let people = 0;
    const drafts = (count: number) =>
      Array.from({ length: count }, () =>
        draft({ subject: { format: 'email', email: `person${++people}@example.com` } }),
      );
    expect((await pipeline.accept('workday', drafts(5))).accepted).toHaveLength(5);
    expect((await store.stats()).backlog).toEqual({ okta: 5 });
    await expect(pipeline.accept('workday', [draft()])).rejects.toBeInstanceOf(OutboxFullError);
    // Drained to 2 of 3: a batch of 4 goes in whole.
    const due = await store.deliveries.lease({
      destinationId: 'okta',
      owner: 'w',
      limit: 3,
      now: clock.now(),
      leaseMs: 1000,
    });
    await store.deliveries.complete(
      due.map((d) => ({ kind: 'delivered' as const, id: d.id, leaseToken: d.leaseToken })),
      clock.now(),
    );
    expect((await pipeline.accept('workday', drafts(4))).accepted).toHaveLength(4);
    expect((await store.stats()).backlog).toEqual({ okta: 6 });
    await expect(pipeline.accept('workday', [draft()])).rejects.toBeInstanceOf(OutboxFullError);
  });

  it('rule: duplicates are answered even while the outbox is full', async () => {
    const { pipeline } = setup({ delivery: { queue_size: 1 }, routes: [{ to: ['okta'] }] });
    const d = draft();
    const first = await pipeline.accept('workday', [d]);
    expect((await pipeline.accept('workday', [d])).accepted).toEqual(first.accepted);
    await expect(pipeline.accept('workday', [draft()])).rejects.toBeInstanceOf(OutboxFullError);
  });

  it('rule: a future-dated event is held and routed only when its time comes', async () => {
    const { store, clock, pipeline, notified } = setup({ routes: [{ to: ['okta'] }] });
    const when = new Date(clock.now().getTime() + 3_600_000);
    const soon = new Date(clock.now().getTime() + 60_000);
    const result = await pipeline.accept('workday', [
      draft({ occurredAt: when }),
      draft({ occurredAt: soon }),
    ]);
    expect(result.scheduled).toBe(1);
    const [heldId, skewedId] = result.accepted;
    expect(await store.deliveries.forEvent(heldId!)).toEqual([]);
    expect(await store.deliveries.forEvent(skewedId!)).toHaveLength(1);
    expect(await pipeline.releaseDue()).toBe(0);
    clock.advance(3_600_000);
    notified.length = 0;
    expect(await pipeline.releaseDue()).toBe(1);
    expect((await store.deliveries.forEvent(heldId!)).map((d) => d.destinationId)).toEqual(['okta']);
    expect(notified).toEqual([['okta']]);
    expect(await pipeline.releaseDue()).toBe(0);
  });
});
