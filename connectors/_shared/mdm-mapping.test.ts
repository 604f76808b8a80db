import { describe, expect, it } from 'vitest';
import {
  exceedsGuard,
  finishScan,
  vanishHold,
  type ScanState,
  type TrackedDevice,
  type VanishedRules,
} from './mdm-mapping.ts';

/** `n` devices known compliant, `d0` … `d<n-1>`. */
function known(n: number): ScanState<TrackedDevice> {
  const devices: Record<string, TrackedDevice> = {};
  for (let i = 0; i < n; i += 1) devices[`d${i}`] = { status: 'compliant', seq: 0 };
  return { version: 1, devices };
}

/** The first `n` ids of a state: the devices a scan listed. */
const listed = (n: number) => new Set(Array.from({ length: n }, (_, i) => `d${i}`));

function rules(overrides: Partial<VanishedRules<TrackedDevice>> = {}): VanishedRules<TrackedDevice> {
  return {
    policy: 'not-compliant',
    keepGone: true,
    emptyScan: (k) => `empty scan while ${k} are known`,
    vanished: (id, _last, next) => ({
      type: 'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change',
      subject: { format: 'opaque', id },
      claims: { previous_status: 'compliant', current_status: 'not-compliant' },
      sourceRecordId: `test:${id}:${next.seq}:vanished`,
    }),
    ...overrides,
  };
}

const guard = { share: 0.1, minDevices: 10, tooMany: (m: number, k: number) => `${m} of ${k} missing` };

describe('exceedsGuard: more missing than both the floor and the share', () => {
  it.each([
    [10, 500, false], // the floor always passes
    [11, 500, false], // 2.2 %
    [50, 500, false], // exactly 10 %
    [51, 500, true],
    [11, 20, true],
    [499, 500, true],
    [3, 3, false], // a small fleet may lose everything it has, up to the floor
  ])('%i missing of %i known → %s', (missing, knownCount, exceeds) => {
    expect(exceedsGuard(missing, knownCount, guard)).toBe(exceeds);
  });

  it('share 1 turns it off; floor 0 and share 0 hold any loss', () => {
    expect(exceedsGuard(500, 500, { share: 1, minDevices: 0 })).toBe(false);
    expect(exceedsGuard(1, 500, { share: 0, minDevices: 0 })).toBe(true);
  });
});

describe('finishScan with a vanished-device guard', () => {
  it('holds a scan from which more devices are missing than the guard allows: no event, nothing forgotten or marked gone', () => {
    const state = known(500);
    const end = finishScan(state, listed(1), rules({ guard }), '2026-02-01T00:00:00.000Z');
    expect(end.events).toEqual([]);
    expect(end.vanished).toEqual([]);
    expect(end.skipped).toBe('499 of 500 missing');
    expect(end.state.devices).toEqual(state.devices);
    expect(end.state.last_scan).toEqual({ completed_at: '2026-02-01T00:00:00.000Z', devices: 1 });
    expect(vanishHold(state, listed(1), rules({ guard }))).toBe('499 of 500 missing');
  });

  it('handles the missing devices by policy within the guard', () => {
    const end = finishScan(known(500), listed(450), rules({ guard }), '2026-02-01T00:00:00.000Z');
    expect(end.skipped).toBeUndefined();
    expect(end.events).toHaveLength(50);
    expect(end.vanished).toHaveLength(50);
    expect(end.state.devices['d499']).toMatchObject({
      status: 'not-compliant',
      gone: '2026-02-01T00:00:00.000Z',
    });
  });

  it('counts only the devices known present: devices already reported gone are not known any more', () => {
    const state = known(20);
    for (let i = 0; i < 10; i += 1) state.devices[`d${i}`] = { status: 'not-compliant', seq: 1, gone: 'x' };
    // d10 … d19 present; 9 of them missing: within the floor.
    const seen = new Set(['d10']);
    expect(vanishHold(state, seen, rules({ guard }))).toBeUndefined();
    expect(finishScan(state, seen, rules({ guard })).vanished).toHaveLength(9);
  });

  it('does not hold `keep` (nothing would be reported), but still distrusts an empty scan', () => {
    expect(vanishHold(known(500), listed(1), rules({ guard, policy: 'keep' }))).toBeUndefined();
    expect(vanishHold(known(500), listed(0), rules({ guard, policy: 'keep' }))).toBe(
      'empty scan while 500 are known',
    );
    expect(vanishHold(known(500), listed(0), rules({ guard }))).toBe('empty scan while 500 are known');
  });

  it('without a guard every missing device is handled, as before', () => {
    const end = finishScan(known(500), listed(1), rules(), '2026-02-01T00:00:00.000Z');
    expect(end.skipped).toBeUndefined();
    expect(end.events).toHaveLength(499);
  });
});
