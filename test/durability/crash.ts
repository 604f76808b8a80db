/**
 * The crash-safety scenario, shared by the SQLite and PostgreSQL suites: events are ingested
 * over HTTP while the bridge delivers them to a loopback receiver, and the bridge is SIGKILLed
 * at random moments — while serving, and sometimes while still starting — and restarted each
 * time. Every event that got a 202 must reach the receiver at least once (counted by jti).
 */
import type { BridgeProcess } from '../helpers/bridge-process.ts';
import {
  Receiver,
  chunk,
  eventsFor,
  expectedJti,
  ingestUntilAccepted,
  killHard,
  listening,
  sleep,
  startBridge,
  waitFor,
  writeBridgeConfig,
} from './harness.ts';

/**
 * Concurrent deliveries per bridge. A kill can catch at most twice this many delivered but not
 * yet recorded — attempts running, plus finished ones whose outcome awaits the next commit —
 * and only those are delivered again.
 */
export const CRASH_MAX_IN_FLIGHT = 8;

/**
 * A crash scenario restarts the bridge at least ten times, and each restart is a process start:
 * 1–2 s on most machines, 13–15 s on the slowest machine seen, where one scenario took 220–240 s.
 */
export const CRASH_TEST_TIMEOUT_MS = 900_000;

export const CRASH_DELIVERY = {
  max_in_flight: CRASH_MAX_IN_FLIGHT,
  batch_size: 16,
  attempt_timeout: '1s',
  // Short leases: rows a killed bridge held are taken over soon after the restart.
  lease_duration: '2s',
  poll_interval: '100ms',
  retry: { initial_interval: '100ms', max_interval: '1s' },
};

export interface CrashScenario {
  label: string;
  dir: string;
  storage?: Record<string, unknown>;
  /** The config's `keys:` block (default: keys generated in the data directory). */
  keys?: Record<string, unknown>;
  events: number;
  minKills: number;
  batchSize: number;
  /** Pause between batches, so ingestion spans many of the bridge's lives. */
  paceMs: number;
}

export interface CrashReport {
  kills: number;
  startupKills: number;
  /** Kills that struck while events were still being ingested. */
  killsWhileIngesting: number;
  acknowledged: number;
  delivered: number;
  deliveries: number;
  duplicates: number;
  /** The most duplicates the kills can explain (see CRASH_MAX_IN_FLIGHT). */
  bound: number;
  missing: string[];
  unexpected: string[];
  seconds: number;
  finalExit: { code: number | null; signal: NodeJS.Signals | null };
  configFile: string;
}

const between = (min: number, max: number) => min + Math.random() * (max - min);

export async function runCrashScenario(s: CrashScenario): Promise<CrashReport> {
  const started = Date.now();
  const receiver = await new Receiver(() => ({
    status: 202,
    delayMs: Math.floor(Math.random() * 4),
  })).start();
  const configFile = writeBridgeConfig({
    dir: s.dir,
    ...(s.storage ? { storage: s.storage } : {}),
    ...(s.keys ? { keys: s.keys } : {}),
    destinations: { receiver: receiver.url('/r') },
    // The kills here come every 0.2–1.5 s of a bridge's life. Where a bridge takes long to start
    // and its first pushes are slow, a row in flight at three kills in a row is what an event
    // that brings the bridge down looks like, and the default (3) gives it up unsent, as it
    // should (test/durability/poison.test.ts). This test is about the kills, not about such
    // an event: no row is given up for them here.
    delivery: { ...CRASH_DELIVERY, retry: { ...CRASH_DELIVERY.retry, max_interrupted_attempts: 1000 } },
  });
  const ids = Array.from({ length: s.events }, (_, i) => `${s.label}-${i}`);
  const acknowledged = new Set<string>();
  let bridge: BridgeProcess = startBridge(s.dir, configFile);
  let url: string | undefined;
  let kills = 0;
  let startupKills = 0;
  let killsWhileIngesting = 0;
  let ingesting = true;
  let ingestError: unknown;
  try {
    url = await listening(bridge);
    const ingest = (async () => {
      for (const batch of chunk(ids, s.batchSize)) {
        await ingestUntilAccepted(() => url, eventsFor(batch));
        for (const id of batch) acknowledged.add(id);
        await sleep(s.paceMs);
      }
    })()
      .catch((err: unknown) => (ingestError = err))
      .finally(() => (ingesting = false));

    // Kills stop at minKills, even if ingestion goes on: the bridge accepts only between kills,
    // so where it takes long to start, killing until ingestion ended meant dozens of lives.
    while (kills < s.minKills && ingestError === undefined) {
      await sleep(between(200, 1500));
      url = undefined;
      if (ingesting) killsWhileIngesting += 1;
      await killHard(bridge);
      kills += 1;
      bridge = startBridge(s.dir, configFile);
      if (Math.random() < 0.15) {
        // Now and then the restarted bridge is killed again before or just as it listens.
        const up = await Promise.race([
          listening(bridge).then(
            () => true,
            () => false,
          ),
          sleep(between(300, 2500)).then(() => false),
        ]);
        if (!up) {
          await killHard(bridge);
          kills += 1;
          startupKills += 1;
          bridge = startBridge(s.dir, configFile);
        }
      }
      url = await listening(bridge);
    }
    await ingest;
    if (ingestError !== undefined) throw ingestError;

    const expected = new Set([...acknowledged].map((id) => expectedJti(id, 'receiver')));
    await waitFor(() => [...expected].every((jti) => receiver.deliveredJtis('/r').has(jti)), 120_000, 200);
    bridge.kill('SIGTERM');
    const finalExit = await bridge.exited;
    const delivered = receiver.deliveredJtis('/r');
    const deliveries = receiver.delivered('/r').length;
    return {
      kills,
      startupKills,
      killsWhileIngesting,
      acknowledged: acknowledged.size,
      delivered: delivered.size,
      deliveries,
      duplicates: deliveries - delivered.size,
      bound: kills * 2 * CRASH_MAX_IN_FLIGHT,
      missing: [...expected].filter((jti) => !delivered.has(jti)),
      unexpected: [...delivered].filter((jti) => !expected.has(jti)),
      seconds: (Date.now() - started) / 1000,
      finalExit,
      configFile,
    };
  } finally {
    bridge.kill('SIGKILL');
    await receiver.close();
  }
}

export function describeReport(label: string, r: CrashReport): string {
  return (
    `[durability] ${label}: ${r.kills} SIGKILLs (${r.killsWhileIngesting} while ingesting, ${r.startupKills} during start-up) ` +
    `in ${r.seconds.toFixed(1)} s; ` +
    `${r.acknowledged} events acknowledged (202), ${r.delivered} delivered, ${r.deliveries} deliveries, ` +
    `${r.duplicates} duplicates (bound ${r.bound})`
  );
}
