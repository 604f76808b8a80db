import { describe, expect, it } from 'vitest';
import { CHECKPOINT_CONFLICT, z } from '../../core/plugin-api/index.ts';
import { hrCheckpoint } from './hr-checkpoint.ts';
import { emptyHrState, hrStateShape, type HrState } from './hr-leaver.ts';
import { createTestContext } from './hr-test-support.ts';

const options = {
  metricPrefix: 'hr',
  source: 'HR',
  code: 'SSF_ERR_HR_STATE',
  schema: z.object(hrStateShape) as unknown as z.ZodType<HrState>,
  empty: emptyHrState,
};

/** Two instances of one connector on one database: their contexts share the checkpoints. */
function twoInstances() {
  const a = createTestContext<HrState>({ instanceId: 'hr' });
  const b = createTestContext<HrState>({ instanceId: 'hr', checkpoints: a.checkpoints });
  return { a, b, cpA: hrCheckpoint(a.ctx, options), cpB: hrCheckpoint(b.ctx, options) };
}

const active = (email: string) => ({ email, status: 'active' as const });

describe('HR state shared by instances on one database', () => {
  it('never commits a state made from one another instance has replaced meanwhile', async () => {
    const { a, cpA, cpB } = twoInstances();
    const stale = await cpA.load();
    const fresh = await cpB.load();
    fresh.workers['2'] = active('bo@example.com');
    await cpB.commit(fresh, []);
    stale.workers['1'] = active('ana@example.com');
    await expect(cpA.commit(stale, [])).rejects.toMatchObject({ code: CHECKPOINT_CONFLICT });
    expect(a.checkpoints.get('default')).toEqual({ workers: { '2': active('bo@example.com') }, pending: {} });
    // A state committed once may be committed again: it replaces what it stored itself.
    fresh.workers['3'] = active('cy@example.com');
    await cpB.commit(fresh, []);
    expect(Object.keys((a.checkpoints.get('default') as HrState).workers)).toEqual(['2', '3']);
  });

  it('runs a piece of work again from the state that won, so neither instance loses the other’s change', async () => {
    const { a, cpA, cpB } = twoInstances();
    let runs = 0;
    await cpA.serial(async () => {
      runs += 1;
      const state = await cpA.load();
      if (runs === 1) {
        // Another instance answers a webhook between this read and this commit.
        await cpB.serial(async () => {
          const other = await cpB.load();
          other.pending['2:terminate'] = {
            kind: 'terminate',
            employeeId: '2',
            date: '2026-12-31',
            dueAt: '2026-12-30T23:00:00.000Z',
            events: [],
          };
          await cpB.commit(other, []);
        });
      }
      state.workers['1'] = active('ana@example.com');
      await cpA.commit(state, []);
    });
    expect(runs).toBe(2);
    const stored = a.checkpoints.get('default') as HrState;
    expect(Object.keys(stored.workers)).toEqual(['1']);
    expect(Object.keys(stored.pending)).toEqual(['2:terminate']);
  });

  it('gives up after a few runs that all lost, with the retryable conflict', async () => {
    const { cpA, cpB } = twoInstances();
    let runs = 0;
    const work = cpA.serial(async () => {
      runs += 1;
      const state = await cpA.load();
      const other = await cpB.load();
      other.workers[`b${runs}`] = active(`b${runs}@example.com`);
      await cpB.commit(other, []);
      await cpA.commit(state, []);
    });
    await expect(work).rejects.toMatchObject({ code: CHECKPOINT_CONFLICT, errorClass: 'retryable' });
    expect(runs).toBe(4);
  });
});
