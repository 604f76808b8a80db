import { describe, expect, it } from 'vitest';
import { bearerChallenge } from './auth.ts';
import { QueueSignal, readPollRequest } from './poll.ts';

describe('poll requests (RFC 8936 §2.1)', () => {
  it('reads every member, with defaults', () => {
    expect(readPollRequest(undefined)).toEqual({ returnImmediately: false, ack: [], setErrs: {} });
    expect(
      readPollRequest({
        maxEvents: 0,
        returnImmediately: true,
        ack: ['a', 'a', 'b'],
        setErrs: { c: { err: 'invalid_state' } },
      }),
    ).toEqual({
      maxEvents: 0,
      returnImmediately: true,
      ack: ['a', 'b'],
      setErrs: { c: { err: 'invalid_state' } },
    });
  });

  it('POLL-08: refuses malformed members', () => {
    for (const body of [
      [],
      { maxEvents: '1' },
      { ack: {} },
      { setErrs: [] },
      { setErrs: { x: { description: 'no err' } } },
    ]) {
      expect(() => readPollRequest(body)).toThrow();
    }
  });
});

describe('long-poll signal', () => {
  it('wakes a waiter when its stream is notified, and only then', async () => {
    const signal = new QueueSignal();
    let woke = false;
    const waiting = signal.wait('s1', 5_000).then(() => (woke = true));
    signal.notify('s2');
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(woke).toBe(false);
    expect(signal.waiting()).toBe(1);
    signal.notify('s1');
    await waiting;
    expect(signal.waiting()).toBe(0);
  });

  it('ends waits on abort, timeout and close', async () => {
    const signal = new QueueSignal();
    const abort = new AbortController();
    const aborted = signal.wait('s', 5_000, abort.signal);
    abort.abort();
    await aborted;
    const started = Date.now();
    await signal.wait('s', 30);
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    const pending = signal.wait('s', 5_000);
    signal.close();
    await pending;
    await signal.wait('s', 5_000);
  });
});

describe('Bearer challenges (RFC 6750 §3)', () => {
  it('quote safely and name error and scope', () => {
    expect(bearerChallenge()).toBe('Bearer realm="ssf-bridge"');
    expect(bearerChallenge({ error: 'invalid_token', description: 'bad "sig" \\ é' })).toBe(
      `Bearer realm="ssf-bridge", error="invalid_token", error_description="bad 'sig' '  "`,
    );
    expect(bearerChallenge({ error: 'insufficient_scope', scope: 'ssf.manage' })).toMatch(
      /scope="ssf.manage"$/,
    );
  });
});
