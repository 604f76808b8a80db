/**
 * classifyPushResponse's bounded invalid_key retry, end to end: the ssf-push connector (which
 * pushes through connectors/_shared/outbound-push.ts, like okta-itp and google-workspace) run by
 * the delivery engine against a receiver on 127.0.0.1. RFC 8935 §2.4: `invalid_key` may only
 * mean the receiver holds our JWKS from before a key rotation; it is retried
 * (DEFAULT_INVALID_KEY_RETRIES times, DEFAULT_INVALID_KEY_RETRY_AFTER_MS apart), then final.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ssfPush } from '../../connectors/ssf-push/index.ts';
import { outboundHarness, rfc8935, type OutboundHarness } from '../../test/helpers/outbound.ts';
import { deliveryConfigSchema } from '../delivery/config.ts';
import { DeliveryEngine } from '../delivery/engine.ts';
import { deliveryJti, orderingKey } from '../delivery/jti.ts';
import { testSigner } from '../delivery/testing.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import { ManualClock, storedEvent } from '../storage/testing/fixtures.ts';
import { MockServer } from './testing/index.ts';
import { DEFAULT_INVALID_KEY_RETRIES, DEFAULT_INVALID_KEY_RETRY_AFTER_MS } from './push.ts';

const PATH = '/ssf/events';
const DESTINATION = 'receiver';

const server = new MockServer();
beforeAll(() => server.start());
afterAll(() => server.close());

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  server.reset();
});

/** The ssf-push instance registered with a delivery engine on a fresh SQLite store. */
async function engineWithSsfPush() {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-push-delivery-'));
  const store = SqliteStore.open({ path: join(dir, 'bridge.db') });
  const connector: OutboundHarness = await outboundHarness(
    ssfPush,
    {
      endpoint_url: `${server.url}${PATH}`,
      audience: 'https://receiver.example.net/',
      request_timeout: '2s',
    },
    DESTINATION,
  );
  const clock = new ManualClock();
  const engine = new DeliveryEngine({
    store,
    signer: testSigner(),
    // Backoff far below the invalid_key wait, and room for more attempts than it takes.
    config: deliveryConfigSchema.parse({
      poll_interval: '10ms',
      retry: { initial_interval: '1s', max_interval: '1s', max_attempts: 10, max_age: '1h' },
    }),
    clock,
    owner: 'engine-1',
    random: () => 0.5,
  });
  engine.register({
    id: DESTINATION,
    kind: 'outbound',
    target: connector.connector.target,
    deliver: (set, signal) => connector.connector.deliver(set, signal),
  });
  cleanups.push(async () => {
    await engine.stop(0);
    await connector.stop();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const event = storedEvent({ acceptedAt: clock.now(), occurredAt: clock.now() });
  const jti = deliveryJti(event.instanceId, event.sourceRecordId, event.type, DESTINATION);
  await store.accept({
    now: clock.now(),
    events: [
      {
        event,
        deliveries: [
          { destinationId: DESTINATION, jti, orderingKey: orderingKey(DESTINATION, event.subjectKey) },
        ],
      },
    ],
    dedupeExpiresAt: clock.now(),
  });
  return {
    store,
    clock,
    jti,
    eventId: event.id,
    /** One leasing round, waiting for what it started. */
    async round() {
      const n = await engine.pump(DESTINATION);
      await engine.idle();
      return n;
    },
  };
}

/** The receiver answers invalid_key `refusals` times, then 202; records the jti of each push. */
function receiver(refusals: number): string[] {
  const jtis: string[] = [];
  server.on('POST', PATH, (req) => {
    jtis.push(JSON.parse(Buffer.from(req.body.split('.')[1]!, 'base64url').toString('utf8')).jti as string);
    return jtis.length <= refusals
      ? rfc8935('invalid_key', 'kid unknown to our cached JWKS')
      : { status: 202 };
  });
  return jtis;
}

describe('RFC 8935 §2.4 invalid_key through the delivery engine (connector push path)', () => {
  it('answered invalid_key twice, then 202: retried after the invalid_key wait and delivered', async () => {
    const pushes = receiver(2);
    const h = await engineWithSsfPush();
    for (let attempt = 1; attempt <= 2; attempt += 1) {
      expect(await h.round()).toBe(1);
      const [row] = await h.store.deliveries.forEvent(h.eventId);
      expect(row).toMatchObject({ state: 'pending', attempts: attempt, lastError: { class: 'retryable' } });
      // Not before the wait invalid_key asks for, though the backoff alone would allow it.
      h.clock.advance(DEFAULT_INVALID_KEY_RETRY_AFTER_MS - 1);
      expect(await h.round()).toBe(0);
      h.clock.advance(1);
    }
    expect(await h.round()).toBe(1);
    const [row] = await h.store.deliveries.forEvent(h.eventId);
    expect(row).toMatchObject({ state: 'delivered', attempts: 3 });
    expect(pushes).toEqual([h.jti, h.jti, h.jti]);
    expect(await h.store.deadLetters.count()).toBe(0);
  });

  it('answered invalid_key every time: a dead letter after the bounded retries, long before max_attempts', async () => {
    const pushes = receiver(Infinity);
    const h = await engineWithSsfPush();
    for (let i = 0; i < 10; i += 1) {
      if ((await h.round()) === 0) break;
      h.clock.advance(DEFAULT_INVALID_KEY_RETRY_AFTER_MS);
    }
    expect(pushes).toHaveLength(DEFAULT_INVALID_KEY_RETRIES + 1);
    const [letter, ...rest] = await h.store.deadLetters.list();
    expect(rest).toEqual([]);
    expect(letter).toMatchObject({
      destinationId: DESTINATION,
      jti: h.jti,
      attempts: DEFAULT_INVALID_KEY_RETRIES + 1,
      lastError: { class: 'permanent', code: 'SSF_ERR_PUSH_REFUSED' },
    });
    expect(letter?.lastError?.message).toContain('invalid_key');
  });
});
