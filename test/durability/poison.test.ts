import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../core/cli/main.ts';
import type { BridgeProcess } from '../helpers/bridge-process.ts';
import { capturingIo } from '../helpers/capture.ts';
import { CRASH_DELIVERY } from './crash.ts';
import {
  Receiver,
  eventsFor,
  expectedJti,
  ingestUntilAccepted,
  listening,
  sleep,
  startBridge,
  waitFor,
  writeBridgeConfig,
} from './harness.ts';

// An event that brings the bridge down whenever it is sent (a connector bug it sets off) must not
// bring it down at every restart until max_age: after max_interrupted_attempts (3) attempts in a
// row that ended with the process, it becomes a dead letter, unsent, and the rest flows.

const dirs: string[] = [];
const running: BridgeProcess[] = [];
afterEach(() => {
  for (const bridge of running.splice(0)) bridge.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

describe('an event that crashes the bridge every time (real process)', () => {
  it('rule: is dead-lettered unsent after 3 interrupted attempts in a row, while the other events are delivered', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-poison-'));
    dirs.push(dir);
    const receiver = await new Receiver().start();
    try {
      const configFile = writeBridgeConfig({
        dir,
        destinations: { receiver: receiver.url('/r') },
        delivery: CRASH_DELIVERY,
      });
      const config = JSON.parse(readFileSync(configFile, 'utf8')) as {
        outbound: Array<{ config: Record<string, unknown> }>;
      };
      config.outbound[0]!.config.crash_on_subject = 'poison@';
      writeFileSync(configFile, JSON.stringify(config));

      const normal = Array.from({ length: 10 }, (_, i) => `ok-${i}`);
      const poison = {
        id: 'poison-1',
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'poison@example.com' },
        claims: { initiating_entity: 'policy' },
      };
      let bridge = startBridge(dir, configFile);
      running.push(bridge);
      let url: string | undefined = await listening(bridge);
      await ingestUntilAccepted(() => url, [poison, ...eventsFor(normal)]);

      // A supervisor: every time the bridge goes down it is started again, as systemd would.
      const crashes: Array<{ code: number | null; signal: string | null; stdout: string; stderr: string }> =
        [];
      const gaveUp = (b: BridgeProcess) =>
        b.stdout.some((line) => line.includes('"reason":"max_interrupted_attempts"'));
      const deadline = Date.now() + 90_000;
      while (!gaveUp(bridge) && Date.now() < deadline) {
        const exit = await Promise.race([bridge.exited, sleep(100).then(() => undefined)]);
        if (exit === undefined) continue;
        crashes.push({ ...exit, stdout: bridge.stdout.join('\n'), stderr: bridge.stderr.join('') });
        url = undefined;
        bridge = startBridge(dir, configFile);
        running.push(bridge);
        url = await listening(bridge);
      }
      expect(gaveUp(bridge)).toBe(true);
      // Each of the first three bridges died sending it; the fourth gave it up instead.
      expect(crashes).toHaveLength(3);
      for (const crash of crashes) {
        expect(crash).toMatchObject({ code: 1, signal: null });
        // Logged as a fatal line (the log scrubs secrets), not printed raw by Node on stderr.
        expect(crash.stdout).toContain('test-http-push: crash_on_subject');
        expect(crash.stderr).toContain('stopped after an unexpected error');
      }
      const poisonJti = expectedJti('poison-1', 'receiver');
      const expected = normal.map((id) => expectedJti(id, 'receiver'));
      // The others flow once the poison is set aside; on a slow machine some are still on their
      // way when the bridge reports giving up.
      await waitFor(() => {
        const arrived = receiver.deliveredJtis('/r');
        return expected.every((jti) => arrived.has(jti));
      }, 30_000);
      const delivered = receiver.deliveredJtis('/r');
      expect(expected.filter((jti) => !delivered.has(jti))).toEqual([]);
      expect(delivered.has(poisonJti)).toBe(false);
      // Events in flight beside it when it crashed the bridge were suspects too: each was then
      // attempted alone, delivered, and not blamed.
      const aloneJtis = new Set(
        running
          .flatMap((b) => b.records())
          .filter((r) => String(r.msg).includes('attempting it alone'))
          .map((r) => String(r.jti)),
      );
      expect(aloneJtis.has(poisonJti)).toBe(true);
      expect(expected.filter((jti) => aloneJtis.has(jti)).length).toBeGreaterThan(0);

      // The bridge that gave up keeps running, and stops cleanly.
      expect(bridge.child.exitCode).toBeNull();
      bridge.kill('SIGTERM');
      expect(await bridge.exited).toEqual({ code: 0, signal: null });

      const io = capturingIo();
      expect(await main(['node', 'ssf-bridge', 'dlq', 'list', '--json', '--config', configFile], io)).toBe(0);
      const { dead_letters: letters } = JSON.parse(io.stdout.join('')) as {
        dead_letters: Array<Record<string, unknown>>;
      };
      expect(letters).toEqual([
        expect.objectContaining({
          jti: poisonJti,
          destination: 'receiver',
          attempts: 3,
          last_error: expect.objectContaining({
            class: 'retryable',
            code: 'SSF_ERR_DELIVERY_ATTEMPTS_INTERRUPTED',
          }),
        }),
      ]);
    } finally {
      await receiver.close();
    }
  }, 180_000);
});
