/**
 * max_age and replay_window together decide whether a redelivered SET is refused: the replay
 * window refuses the jtis it remembers, the age check every SET older than max_age. Between them
 * they must leave no time in which a redelivery is taken as new.
 */
import { CompactSign, exportJWK, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { SetVerificationError, createSetVerifier } from '../../core/plugin-api/index.ts';
import { REPLAY_MARGIN_MS } from './config.ts';
import { ssfReceiver } from './index.ts';

const ISSUER = 'https://transmitter.example.com';
const AUDIENCE = 'https://bridge.example.com/ingest/upstream';
const BASE = {
  issuer: ISSUER,
  auth: { type: 'bearer', token: 'management-token-5c1e' },
  delivery: {
    method: 'push',
    endpoint_url: AUDIENCE,
    authorization_header: 'Bearer push-authorization-7d2a',
  },
  bridge_issuer: 'https://bridge.example.com',
};

function problems(settings: Record<string, unknown>): string[] {
  const parsed = ssfReceiver.configSchema.safeParse({ ...BASE, ...settings });
  return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
}

function parsed(settings: Record<string, unknown>): { max_age: number; replay_window: number } {
  return ssfReceiver.configSchema.parse({ ...BASE, ...settings }) as {
    max_age: number;
    replay_window: number;
  };
}

describe('ssf-receiver config: max_age and replay_window', () => {
  it('the defaults are valid: a day of age, two days of replay window', () => {
    expect(problems({})).toEqual([]);
    expect(parsed({})).toMatchObject({ max_age: 86_400_000, replay_window: 172_800_000 });
  });

  it('replay_window 0 (replay protection off) is refused', () => {
    expect(problems({ replay_window: 0 })).toEqual([
      'replay_window: must be more than 0: 0 turns replay protection off, and a redelivered SET would be acted on again',
    ]);
    expect(problems({ replay_window: '0s' })).toHaveLength(1);
  });

  it('max_age 0 (any age) is refused: replay protection needs a bounded age', () => {
    const [problem, ...rest] = problems({ max_age: 0 });
    expect(rest).toEqual([]);
    expect(problem).toMatch(/^max_age: must be more than 0: with no age limit a SET redelivered after/);
    expect(problem).toContain('replay_window covering it');
  });

  it('replay_window must cover max_age plus the clock skew the verifier allows on either side of iat', () => {
    expect(problems({ max_age: '7d', replay_window: '1h' })).toEqual([
      'replay_window: must cover max_age (7d) plus 5m for clock skew, i.e. be at least 7d5m: a SET redelivered after its jti is forgotten but still young enough for max_age would be taken as new and its action run again',
    ]);
    expect(problems({ max_age: '7d', replay_window: '7d' })).toHaveLength(1);
    expect(problems({ max_age: '7d', replay_window: '7d4m59s' })).toHaveLength(1);
    expect(problems({ max_age: '7d', replay_window: '7d5m' })).toEqual([]);
    expect(problems({ max_age: '7d', replay_window: '8d' })).toEqual([]);
    // Raising max_age alone past the default window is refused until the window follows.
    expect(problems({ max_age: '3d' })).toHaveLength(1);
    expect(problems({ max_age: '3d', replay_window: '4d' })).toEqual([]);
    expect(problems({ max_age: '1h', replay_window: '1h5m' })).toEqual([]);
  });
});

describe('ssf-receiver config: the rule leaves no redelivery unrefused', () => {
  async function fixture() {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' }] };
    const sign = (iat: number) =>
      new CompactSign(
        new TextEncoder().encode(
          JSON.stringify({
            iss: ISSUER,
            aud: AUDIENCE,
            iat,
            jti: 'upstream-set-0001',
            sub_id: { format: 'email', email: 'jane.doe@example.com' },
            events: {
              'https://schemas.openid.net/secevent/caep/event-type/session-revoked': { event_timestamp: iat },
            },
          }),
        ),
      )
        .setProtectedHeader({ alg: 'ES256', kid: 'k1', typ: 'secevent+jwt' })
        .sign(privateKey);
    return { jwks, sign };
  }

  /**
   * The worst case: a SET whose iat is as far ahead of this clock as the verifier allows is taken
   * and recorded at once, then redelivered as late as its age still passes max_age. Whether the
   * redelivery is taken as new with the connector's settings max_age and replay_window.
   */
  async function redeliveryTaken(maxAgeMs: number, replayWindowMs: number): Promise<boolean> {
    const { jwks, sign } = await fixture();
    let now = Date.UTC(2026, 10, 18, 9, 30);
    // The clock skew createSetVerifier allows on either side of iat (its default, as the connector uses it).
    const skewMs = 60_000;
    const verifier = createSetVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      jwksUri: `${ISSUER}/jwks`,
      fetchJwks: async () => jwks,
      maxAgeMs,
      replayTtlMs: replayWindowMs,
      clock: { now: () => new Date(now) },
    });
    const iat = (now + skewMs) / 1000;
    const token = await sign(iat);
    await verifier.record(await verifier.verify(token));
    now = iat * 1000 + maxAgeMs + skewMs;
    try {
      await verifier.verify(token);
      return true;
    } catch (err) {
      if (err instanceof SetVerificationError) return false;
      throw err;
    }
  }

  it('at the smallest window the config accepts, the redelivery is refused; with a window of max_age alone, it was taken as new', async () => {
    for (const maxAge of ['1h', '1d', '7d']) {
      const { max_age } = parsed({ max_age: maxAge, replay_window: '30d' });
      const smallest = max_age + REPLAY_MARGIN_MS;
      expect(problems({ max_age: maxAge, replay_window: smallest })).toEqual([]);
      expect(await redeliveryTaken(max_age, smallest), maxAge).toBe(false);
      expect(problems({ max_age: maxAge, replay_window: max_age })).toHaveLength(1);
      expect(await redeliveryTaken(max_age, max_age), maxAge).toBe(true);
    }
  });
});
