import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { capturingIo } from '../helpers/capture.ts';
import { main } from '../../core/cli/main.ts';
import { CRASH_TEST_TIMEOUT_MS, describeReport, runCrashScenario } from './crash.ts';

// Issue 4 acceptance: a real `ssf-bridge run` on SQLite (synchronous: full) is SIGKILLed at
// random moments while 2,000 events are ingested over HTTP and delivered to a loopback receiver.

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

// Both ways of running the connection: on the event loop (the default) and on a thread of its own
// (`storage.thread: true`, where a 202 waits for the thread's commit and sync).
const variants = [
  { name: 'SQLite', label: 'sqlite', storage: undefined },
  {
    name: 'SQLite on its own thread',
    label: 'sqlite-thread',
    storage: { driver: 'sqlite', thread: true },
  },
];

describe.each(variants)('crash safety on $name (real process, SIGKILL)', ({ name, label, storage }) => {
  it(
    'delivers every event that got a 202 at least once across 10+ SIGKILLs and restarts',
    async () => {
      const dir = mkdtempSync(join(tmpdir(), `ssf-crash-${label}-`));
      dirs.push(dir);
      const report = await runCrashScenario({
        label,
        dir,
        events: 2000,
        minKills: 10,
        batchSize: 20,
        paceMs: 60,
        ...(storage ? { storage } : {}),
      });
      console.info(describeReport(`crash safety, ${name}`, report));

      expect(report.kills).toBeGreaterThanOrEqual(10);
      // Ingestion is paced to outlast several of the bridge's lives.
      expect(report.killsWhileIngesting).toBeGreaterThanOrEqual(4);
      // First, so that an event given up shows here rather than as missing below.
      const io = capturingIo();
      expect(
        await main(['node', 'ssf-bridge', 'dlq', 'list', '--json', '--config', report.configFile], io),
      ).toBe(0);
      expect(JSON.parse(io.stdout.join(''))).toEqual({ dead_letters: [], next_after: null });
      expect(report.acknowledged).toBe(2000);
      expect(report.missing).toEqual([]);
      expect(report.unexpected).toEqual([]);
      expect(report.delivered).toBe(2000);
      // Redeliveries come only from deliveries in flight when a kill struck.
      expect(report.duplicates).toBeLessThanOrEqual(report.bound);
      expect(report.finalExit).toEqual({ code: 0, signal: null });
    },
    CRASH_TEST_TIMEOUT_MS,
  );
});
