import { describe, expect, it } from 'vitest';
import type { EmitOptions, EventDraft } from '../../core/plugin-api/index.ts';
import { createIntake } from './edr-intake.ts';
import { RAISED_META_CHECKPOINT, RaisedMemory, raisedBucketName, raisedKey } from './edr-raised.ts';
import { createTestContext } from './edr-test-support.ts';

const NOW = Date.parse('2026-03-01T00:00:00Z');
const NOW_S = NOW / 1000;

/** Detection ids whose raises fall in `bucket` of `memory`. */
function idsIn(memory: RaisedMemory, bucket: number, count: number, prefix = 'det'): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < count; i++)
    if (memory.bucketOf(`${prefix}-${i}`) === bucket) out.push(`${prefix}-${i}`);
  return out;
}

function raise(id: string): EventDraft {
  return {
    type: 'caep.risk-level-change',
    subject: { format: 'opaque', id: `user-of-${id}` },
    txn: id,
    sourceRecordId: `${id}#risk`,
    claims: { current_level: 'HIGH', risk_reason: 'malware', principal: 'USER' },
  } as unknown as EventDraft;
}

const emitWith =
  (t: ReturnType<typeof createTestContext>, events: EventDraft[]) =>
  (checkpoint: NonNullable<EmitOptions['checkpoint']>) =>
    t.ctx.emit(events, { checkpoint });

async function remembers(memory: RaisedMemory, id: string): Promise<boolean> {
  const view = await memory.view();
  if (view.has(id)) return true;
  await view.refresh();
  return view.has(id);
}

describe('the memory of raised detections, in buckets', () => {
  it('writes only the bucket a raise falls in, and keeps each bucket within its share of maxEntries and the age bound', async () => {
    let now = NOW;
    const t = createTestContext({ now: () => now });
    const memory = new RaisedMemory(t.ctx, {
      priorCheckpoints: [],
      buckets: 4,
      maxEntries: 8,
      maxAgeMs: 86_400_000,
    });
    const [a, b, c] = idsIn(memory, 1, 3);
    await memory.store();
    for (const [i, id] of [a!, b!, c!].entries()) {
      now = NOW + i * 1000;
      await memory.record([id], emitWith(t, [raise(id)]));
    }
    const raisedWrites = t.emitted.filter((e) => e.checkpoint?.name !== RAISED_META_CHECKPOINT);
    expect(raisedWrites.map((e) => e.checkpoint?.name)).toEqual(Array(3).fill(raisedBucketName(1)));
    // 8 entries over 4 buckets: 2 a bucket, the oldest raise goes.
    expect(t.checkpoints.get(raisedBucketName(1))).toEqual({
      raised: { [raisedKey(b!)]: NOW_S + 1, [raisedKey(c!)]: NOW_S + 2 },
    });
    expect([0, 2, 3].map((n) => t.checkpoints.has(raisedBucketName(n)))).toEqual([false, false, false]);
    expect(await remembers(memory, a!)).toBe(false);
    expect(await remembers(memory, c!)).toBe(true);

    // A day later the raises of the bucket have aged out: the next write drops them.
    now = NOW + 86_400_000 + 10_000;
    const [d] = idsIn(memory, 1, 1, 'later');
    await memory.record([d!], emitWith(t, [raise(d!)]));
    expect(t.checkpoints.get(raisedBucketName(1))).toEqual({
      raised: { [raisedKey(d!)]: Math.floor(now / 1000) },
    });
    expect(await remembers(memory, c!)).toBe(false);
  });

  it('keeps with each raise the level, principal and subject it was sent with, the last raise winning, and reads buckets without them', async () => {
    const t = createTestContext({ now: () => NOW });
    const memory = new RaisedMemory(t.ctx, { priorCheckpoints: [], buckets: 4 });
    const [a, b, old] = idsIn(memory, 2, 3);
    // A bucket written before targets were kept: `old` is remembered without one; a target that
    // cannot be read is left out.
    t.checkpoints.set(raisedBucketName(2), {
      raised: { [raisedKey(old!)]: NOW_S - 60, [raisedKey(b!)]: NOW_S - 60 },
      targets: { [raisedKey(b!)]: { level: 'EXTREME', principal: 'USER', subject: {} } },
    });
    await memory.store();
    const medium = { ...raise(a!), claims: { ...raise(a!).claims, current_level: 'MEDIUM' } } as EventDraft;
    const device = {
      ...raise(b!),
      subject: { format: 'complex', device: { format: 'opaque', id: 'dev-1' } },
      claims: { ...raise(b!).claims, principal: 'DEVICE' },
    } as EventDraft;
    for (const events of [[raise(a!), medium], [device]]) {
      const [part] = memory.parts(events);
      await memory.record(part!.raises, emitWith(t, part!.events), part!.targets);
    }
    expect(t.checkpoints.get(raisedBucketName(2))).toEqual({
      raised: { [raisedKey(old!)]: NOW_S - 60, [raisedKey(a!)]: NOW_S, [raisedKey(b!)]: NOW_S },
      targets: {
        [raisedKey(a!)]: { level: 'MEDIUM', principal: 'USER', subject: raise(a!).subject },
        [raisedKey(b!)]: { level: 'HIGH', principal: 'DEVICE', subject: device.subject },
      },
    });
    // Read as stored, by another process.
    const view = await new RaisedMemory(t.ctx, { priorCheckpoints: [], buckets: 4 }).view();
    expect(view.has(a!)).toBe(false);
    await view.refresh();
    expect([a!, b!, old!].map((id) => [view.has(id), view.target(id)?.level])).toEqual([
      [true, 'MEDIUM'],
      [true, 'HIGH'],
      [true, undefined],
    ]);
  });

  it("records a downgrade as the last event sent for its detection, with the closed record's update time, until a raise is sent again", async () => {
    let now = NOW;
    const t = createTestContext({ now: () => now });
    const memory = new RaisedMemory(t.ctx, { priorCheckpoints: [], buckets: 4 });
    const [a, b] = idsIn(memory, 3, 2);
    const lower = (id: string, version?: string): EventDraft => ({
      type: 'caep.risk-level-change',
      subject: raise(id).subject,
      txn: `${id}#cleared`,
      sourceRecordId: `${id}#risk-level-change:USER:cleared${version ? `@${version}` : ''}`,
      claims: { current_level: 'LOW', previous_level: 'HIGH', principal: 'USER' },
    });
    await memory.store();
    const hand = async (events: EventDraft[]) => {
      for (const part of memory.parts(events)) {
        const ids = [...new Set([...part.raises, ...part.cleared.keys()])];
        await memory.record(ids, emitWith(t, part.events), part.targets, part.cleared);
      }
    };
    // a: raised and lowered in one part; b: raised, then lowered (closed without an update time).
    await hand([raise(a!), raise(b!), lower(a!, '2026-02-28T10:00:00.000Z')]);
    now += 1000;
    await hand([lower(b!)]);
    const target = { level: 'HIGH', principal: 'USER' };
    expect(t.checkpoints.get(raisedBucketName(3))).toEqual({
      raised: { [raisedKey(a!)]: NOW_S, [raisedKey(b!)]: NOW_S + 1 },
      targets: {
        [raisedKey(a!)]: { ...target, subject: raise(a!).subject },
        [raisedKey(b!)]: { ...target, subject: raise(b!).subject },
      },
      cleared: { [raisedKey(a!)]: Date.parse('2026-02-28T10:00:00Z'), [raisedKey(b!)]: 0 },
    });
    const other = await new RaisedMemory(t.ctx, { priorCheckpoints: [], buckets: 4 }).view();
    other.has(a!);
    await other.refresh();
    expect([a!, b!].map((id) => [other.has(id), other.cleared(id), other.target(id)?.level])).toEqual([
      [true, { version: new Date('2026-02-28T10:00:00Z') }, 'HIGH'],
      [true, { version: undefined }, 'HIGH'],
    ]);

    // Lowered, then raised again in one part (reopened): the raise is what the receiver holds.
    await hand([lower(b!), raise(b!)]);
    const view = await memory.view();
    expect([view.cleared(a!), view.cleared(b!)]).toEqual([
      { version: new Date('2026-02-28T10:00:00Z') },
      undefined,
    ]);
    expect((t.checkpoints.get(raisedBucketName(3)) as { cleared: object }).cleared).toEqual({
      [raisedKey(a!)]: Date.parse('2026-02-28T10:00:00Z'),
    });
  });

  it('hands over events raising detections of several buckets in consecutive parts, one bucket each, in their order', async () => {
    const t = createTestContext({ now: () => NOW });
    const intake = createIntake(
      t.ctx,
      () => ({ events: [] }),
      () => undefined,
      { priorCheckpoints: [] },
    );
    const probe = new RaisedMemory(t.ctx, { priorCheckpoints: [] });
    const [x1, x2] = idsIn(probe, 5, 2);
    const [y] = idsIn(probe, 9, 1);
    const cleared = {
      ...raise(x1!),
      txn: `${x1}#cleared`,
      sourceRecordId: `${x1}#cleared`,
      claims: { current_level: 'LOW' },
    };
    const records = [x1!, y!, x2!].map((id) => ({ record: id, events: [raise(id)], raises: [id] }));
    records.splice(1, 0, { record: `${x1}-closed`, events: [cleared as EventDraft], raises: [] });
    const result = await intake.emitAll(records);
    expect(result.accepted).toEqual([`${x1}#risk`, `${x1}#cleared`, `${y}#risk`, `${x2}#risk`]);
    expect(
      t.emitted
        .filter((e) => e.events.length > 0)
        .map((e) => [e.checkpoint?.name, e.events.map((v) => v.txn)]),
    ).toEqual([
      [raisedBucketName(5), [x1, `${x1}#cleared`]],
      [raisedBucketName(9), [y]],
      [raisedBucketName(5), [x2]],
    ]);
    // One bucket: one emit, all or nothing.
    t.emitted.length = 0;
    const [x3, x4] = idsIn(probe, 5, 2, 'one');
    await intake.emitAll([x3!, x4!].map((id) => ({ record: id, events: [raise(id)], raises: [id] })));
    expect(t.emitted.map((e) => e.checkpoint?.name)).toEqual([raisedBucketName(5)]);
  });

  it('lets two processes sharing one store raise detections of different buckets at once without a conflict, and merges one bucket written by both (compare-and-set)', async () => {
    const store = new Map<string, unknown>();
    const one = createTestContext({ checkpoints: store, now: () => NOW });
    const two = createTestContext({ checkpoints: store, now: () => NOW });
    const first = new RaisedMemory(one.ctx, { priorCheckpoints: [] });
    const second = new RaisedMemory(two.ctx, { priorCheckpoints: [] });
    await first.store();
    await second.store();
    const [a] = idsIn(first, 3, 1);
    const [b] = idsIn(first, 40, 1);
    await Promise.all([
      first.record([a!], emitWith(one, [raise(a!)])),
      second.record([b!], emitWith(two, [raise(b!)])),
    ]);
    const refused = () => [...one.emitted, ...two.emitted].filter((e) => !e.ok).length;
    expect(refused()).toBe(0);
    expect(await remembers(second, a!)).toBe(true);
    expect(await remembers(first, b!)).toBe(true);

    // The same bucket at once: one write is refused, merged again, and both raises are kept.
    const [c, d] = idsIn(first, 3, 2, 'same');
    await Promise.all([
      first.record([c!], emitWith(one, [raise(c!)])),
      second.record([d!], emitWith(two, [raise(d!)])),
    ]);
    expect(refused()).toBe(1);
    expect(Object.keys((store.get(raisedBucketName(3)) as { raised: object }).raised).sort()).toEqual(
      [a!, c!, d!].map(raisedKey).sort(),
    );
  });
});
