import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../../core/cli/main.ts';
import { backoffCeiling } from '../../core/delivery/backoff.ts';
import { capturingIo } from '../helpers/capture.ts';
import type { BridgeProcess } from '../helpers/bridge-process.ts';
import {
  Receiver,
  eventsFor,
  expectedJti,
  ingestUntilAccepted,
  startListening,
  waitFor,
  writeBridgeConfig,
  type Answer,
  type Offer,
} from './harness.ts';

// Issue 4 acceptance: a destination that answers 503 with Retry-After, then 503 without it, then
// drops connections, then recovers, gets every event, with retries spaced as the policy says and
// nothing dead-lettered. A second destination that stays down past its max_age dead-letters
// every event — only then — and `ssf-bridge dlq replay` delivers them with their original jti.

const RETRY = {
  initialMs: 200,
  maxMs: 800,
  multiplier: 2,
  maxAttempts: 1000,
  maxAgeMs: 3_600_000,
  maxInterruptedAttempts: 3,
};
const GONE_MAX_AGE_MS = 2000;
/** Scheduling noise allowed on top of a computed delay (timers, a loaded 2-core CI machine). */
const SLACK_MS = 500;
const EVENTS = 40;

/** The flaky receiver's phases, by time since its first request. */
function flakyPhase(sinceFirstMs: number): Answer {
  if (sinceFirstMs < 1500) return { status: 503, retryAfter: '1' };
  if (sinceFirstMs < 3000) return { status: 503 };
  if (sinceFirstMs < 4500) return { drop: true };
  return { status: 202 };
}

const isRetryAfter = (o: Offer) => o.answer !== undefined && 'retryAfter' in o.answer;

const running: BridgeProcess[] = [];
const dirs: string[] = [];
afterEach(() => {
  for (const bridge of running.splice(0)) bridge.kill('SIGKILL');
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

async function cli(...args: string[]) {
  const io = capturingIo();
  const code = await main(['node', 'ssf-bridge', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

describe('receiver down, then back (real process)', () => {
  it('delivers everything once the receiver recovers, retrying as the policy says, and dead-letters only past max_age', async () => {
    let flakyStart: number | undefined;
    let goneUp = false;
    const receiver = await new Receiver((offer) => {
      if (offer.path === '/gone') return goneUp ? { status: 202 } : { status: 503 };
      flakyStart ??= offer.arrivedAt;
      return flakyPhase(offer.arrivedAt - flakyStart);
    }).start();
    const dir = mkdtempSync(join(tmpdir(), 'ssf-receiver-down-'));
    dirs.push(dir);
    const config = writeBridgeConfig({
      dir,
      destinations: { flaky: receiver.url('/flaky'), gone: receiver.url('/gone') },
      delivery: {
        retry: {
          initial_interval: '200ms',
          max_interval: '800ms',
          multiplier: 2,
          max_attempts: 1000,
          max_age: '1h',
        },
        // The breaker's pauses would stretch the gaps measured here; engine tests cover it.
        circuit_breaker: { enabled: false },
        poll_interval: '100ms',
        attempt_timeout: '2s',
        lease_duration: '10s',
        destinations: { gone: { retry: { max_age: `${GONE_MAX_AGE_MS}ms` } } },
      },
    });
    try {
      const { bridge, url } = await startListening(dir, config);
      running.push(bridge);
      const ids = Array.from({ length: EVENTS }, (_, i) => `down-${i}`);
      // One person per event: no delivery waits behind another about the same person.
      await ingestUntilAccepted(() => url, eventsFor(ids, 'unique'));
      const flakyJtis = ids.map((id) => expectedJti(id, 'flaky'));
      const goneJtis = ids.map((id) => expectedJti(id, 'gone'));

      // Every event reaches the flaky receiver once it recovers.
      expect(
        await waitFor(() => flakyJtis.every((j) => receiver.deliveredJtis('/flaky').has(j)), 30_000),
      ).toBe(true);
      const flaky = receiver.offers.filter((o) => o.path === '/flaky');
      expect(new Set(flaky.map((o) => o.answer && ('drop' in o.answer ? 'drop' : o.answer.status)))).toEqual(
        new Set([503, 'drop', 202]),
      );

      // Retry timing, per delivery: after Retry-After the next attempt waits at least that long;
      // after a plain failure it comes within the full-jitter bound for that attempt.
      const lastRetryAfter = Math.max(...flaky.filter(isRetryAfter).map((o) => o.answeredAt!));
      let afterRetryAfter = 0;
      let withinBackoff = 0;
      for (const jti of flakyJtis) {
        const attempts = flaky.filter((o) => o.jti === jti).sort((a, b) => a.arrivedAt - b.arrivedAt);
        expect(attempts.at(-1)?.answer).toEqual({ status: 202 });
        attempts.slice(0, -1).forEach((prev, i) => {
          const gap = attempts[i + 1]!.arrivedAt - prev.answeredAt!;
          if (isRetryAfter(prev)) {
            expect(gap).toBeGreaterThanOrEqual(1000 - 15);
            afterRetryAfter += 1;
          } else if (prev.answeredAt! > lastRetryAfter + 1000 + SLACK_MS) {
            // Past any Retry-After hold of the destination: the backoff alone decides.
            expect(gap).toBeLessThanOrEqual(backoffCeiling(i + 1, RETRY) + SLACK_MS);
            withinBackoff += 1;
          }
        });
      }
      // Every Retry-After answer was followed by a retry, each checked above.
      expect(afterRetryAfter).toBe(flaky.filter(isRetryAfter).length);
      expect(afterRetryAfter).toBeGreaterThanOrEqual(16);
      expect(withinBackoff).toBeGreaterThanOrEqual(EVENTS);

      // Nothing for the flaky destination was dead-lettered; every delivery to the one that stayed
      // down was, with its last error, and only once max_age had passed.
      const flakyLetters = await cli('dlq', 'list', '--json', '--destination', 'flaky', '--config', config);
      expect(JSON.parse(flakyLetters.out)).toEqual({ dead_letters: [], next_after: null });
      let letters: Array<Record<string, unknown>> = [];
      expect(
        await waitFor(async () => {
          const listed = await cli('dlq', 'list', '--json', '--destination', 'gone', '--config', config);
          letters = (JSON.parse(listed.out) as { dead_letters: Array<Record<string, unknown>> }).dead_letters;
          return letters.length === EVENTS;
        }, 20_000),
      ).toBe(true);
      for (const letter of letters) {
        const age = Date.parse(letter.dead_at as string) - Date.parse(letter.enqueued_at as string);
        expect(age).toBeGreaterThanOrEqual(GONE_MAX_AGE_MS);
        expect(letter.attempts).toBeGreaterThanOrEqual(3);
        expect(letter.last_error).toMatchObject({ class: 'retryable', status: 503 });
      }
      expect(new Set(letters.map((l) => l.jti))).toEqual(new Set(goneJtis));

      // Replayed once the receiver is back: delivered with the jti each letter had.
      goneUp = true;
      const replay = await cli('dlq', 'replay', '--destination', 'gone', '--config', config);
      expect(replay).toMatchObject({
        code: 0,
        out: `replayed ${EVENTS} dead letters: back in the outbox with their original jti`,
      });
      expect(await waitFor(() => goneJtis.every((j) => receiver.deliveredJtis('/gone').has(j)), 20_000)).toBe(
        true,
      );
      expect(JSON.parse((await cli('dlq', 'list', '--json', '--config', config)).out)).toMatchObject({
        dead_letters: [],
      });

      bridge.kill('SIGTERM');
      expect(await bridge.exited).toEqual({ code: 0, signal: null });
    } finally {
      await receiver.close();
    }
  }, 90_000);
});
