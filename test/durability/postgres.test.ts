import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { generateKeyMaterial } from '../../core/ssf/index.ts';
import {
  POSTGRES_TEST_URL,
  describePostgres,
  dropSchema,
  uniqueSchema,
} from '../../core/storage/testing/postgres.ts';
import type { BridgeProcess } from '../helpers/bridge-process.ts';
import { CRASH_TEST_TIMEOUT_MS, describeReport, runCrashScenario } from './crash.ts';
import {
  Receiver,
  chunk,
  eventsFor,
  expectedJti,
  ingestUntilAccepted,
  nowMs,
  sleep,
  startListening,
  waitFor,
  writeBridgeConfig,
} from './harness.ts';

// Issue 4 acceptance on PostgreSQL: the crash test (smaller), and three bridge processes sharing
// one database — every delivery made, none made by two instances at once, scheduled work run by
// one leader only, and a killed leader replaced within a bounded time.

const LEADER_LEASE_MS = 2000;
const PROBE_EVERY_MS = 150;
/** A killed leader's lease expires, a follower's next renewal round takes it, its next probe runs. */
const TAKEOVER_BOUND_MS = LEADER_LEASE_MS + Math.ceil(LEADER_LEASE_MS / 3) + PROBE_EVERY_MS + 1500;

const running: BridgeProcess[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  const bridges = running.splice(0);
  for (const bridge of bridges) bridge.kill('SIGKILL');
  await Promise.all(bridges.map((b) => b.exited));
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function scratch(prefix: string): { dir: string; schema: string } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const schema = uniqueSchema();
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  cleanups.push(() => dropSchema(schema));
  return { dir, schema };
}

describePostgres('durability on PostgreSQL (real processes)', () => {
  it(
    'crash safety: every event that got a 202 is delivered at least once across SIGKILLs',
    async () => {
      const { dir, schema } = scratch('ssf-crash-pg-');
      const report = await runCrashScenario({
        label: 'pg',
        dir,
        storage: { driver: 'postgres', url: POSTGRES_TEST_URL, schema, pool_size: 4 },
        // One bridge at a time on the database, restarted: its keys may stay in its data directory.
        keys: { single_instance: true },
        // The same scenario as on SQLite (crash.test.ts): 2,000 events, at least 10 kills.
        events: 2000,
        minKills: 10,
        batchSize: 20,
        paceMs: 60,
      });
      console.info(describeReport('crash safety, PostgreSQL', report));
      expect(report.kills).toBeGreaterThanOrEqual(10);
      expect(report.killsWhileIngesting).toBeGreaterThanOrEqual(4);
      expect(report.acknowledged).toBe(2000);
      expect(report.missing).toEqual([]);
      expect(report.unexpected).toEqual([]);
      expect(report.delivered).toBe(2000);
      expect(report.duplicates).toBeLessThanOrEqual(report.bound);
      expect(report.finalExit).toEqual({ code: 0, signal: null });
    },
    CRASH_TEST_TIMEOUT_MS,
  );

  it('three instances on one database: every delivery once at a time, one scheduler leader, a killed leader replaced', async () => {
    const { dir, schema } = scratch('ssf-scale-pg-');
    const receiver = await new Receiver(() => ({
      status: 202,
      delayMs: 15 + Math.floor(Math.random() * 15),
    })).start();
    cleanups.push(() => receiver.close());
    // Identical instances sign with one key, as a deployment shares it through keys.files.
    const key = await generateKeyMaterial('ES256');
    const keyFile = join(dir, 'signing-key.jwk.json');
    writeFileSync(keyFile, JSON.stringify(key.privateJwk), { mode: 0o600 });
    const config = writeBridgeConfig({
      dir,
      storage: {
        driver: 'postgres',
        url: POSTGRES_TEST_URL,
        schema,
        pool_size: 4,
        leader_lease: `${LEADER_LEASE_MS}ms`,
      },
      keys: { algorithm: 'ES256', files: [keyFile] },
      destinations: { receiver: receiver.url('/r') },
      inbound: [
        {
          id: 'probe',
          connector: 'test-leader-probe',
          config: { url: receiver.url('/leader'), every: `${PROBE_EVERY_MS}ms` },
        },
      ],
      delivery: {
        max_in_flight: 3,
        batch_size: 6,
        attempt_timeout: '2s',
        lease_duration: '3s',
        poll_interval: '100ms',
      },
    });
    const instances = await Promise.all([0, 1, 2].map(() => startListening(dir, config)));
    running.push(...instances.map((i) => i.bridge));

    const ids = Array.from({ length: 600 }, (_, i) => `scale-${i}`);
    const expected = ids.map((id) => expectedJti(id, 'receiver'));
    for (const [i, batch] of chunk(ids, 20).entries()) {
      await ingestUntilAccepted(() => instances[i % 3]!.url, eventsFor(batch, 1000));
    }

    // Mid-delivery, the scheduler leader is killed.
    expect(await waitFor(() => receiver.deliveredJtis('/r').size >= 150, 30_000)).toBe(true);
    expect(receiver.probes.length).toBeGreaterThan(0);
    const leaderPid = receiver.probes.at(-1)!.pid;
    expect(new Set(receiver.probes.map((p) => p.pid))).toEqual(new Set([leaderPid]));
    const leader = instances.find((i) => i.bridge.child.pid === leaderPid)!;
    const killedAt = nowMs();
    // The probe reports its run time from Date.now(): the same clock marks the kill.
    const killedAtWall = Date.now();
    leader.bridge.kill('SIGKILL');
    await leader.bridge.exited;

    const successor = () => receiver.probes.find((p) => p.at > killedAt && p.pid !== leaderPid);
    expect(await waitFor(() => successor() !== undefined, 15_000, 20)).toBe(true);
    const takeover = successor()!;
    const takeoverMs = takeover.at - killedAt;

    expect(await waitFor(() => expected.every((j) => receiver.deliveredJtis('/r').has(j)), 30_000)).toBe(
      true,
    );
    await sleep(1000);
    console.info(
      `[durability] three instances on PostgreSQL: ${receiver.delivered('/r').length} deliveries of ` +
        `${expected.length} events by ${new Set(receiver.delivered('/r').map((o) => o.pid)).size} processes; ` +
        `${receiver.overlaps.length} overlapping; leader killed, successor's first run after ${Math.round(takeoverMs)} ms ` +
        `(bound ${TAKEOVER_BOUND_MS} ms)`,
    );

    // None delivered by two instances at once; the work was shared.
    expect(receiver.overlaps).toEqual([]);
    expect(new Set(receiver.delivered('/r').map((o) => o.pid)).size).toBeGreaterThanOrEqual(2);
    // After the takeover, only the successor runs the scheduled task.
    expect(takeoverMs).toBeLessThanOrEqual(TAKEOVER_BOUND_MS);
    const after = receiver.probes.filter((p) => p.at >= takeover.at);
    expect(after.length).toBeGreaterThan(3);
    expect(new Set(after.map((p) => p.pid))).toEqual(new Set([takeover.pid]));
    // Nobody ran the task between the kill and the takeover. (A report the leader sent just
    // before the kill may arrive after it: what counts is when the task ran.)
    expect(receiver.probes.filter((p) => p.ranAt > killedAtWall && p.ranAt < takeover.ranAt)).toEqual([]);

    for (const { bridge } of instances.filter((i) => i !== leader)) {
      bridge.kill('SIGTERM');
      expect(await bridge.exited).toEqual({ code: 0, signal: null });
    }
  }, 120_000);
});
