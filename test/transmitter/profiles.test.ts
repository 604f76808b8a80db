/**
 * A receiver's target profile: Apple Business Manager creates its stream at the transmitter but
 * reads the pre-SSF 1.0 CAEP shape (legacy-sse-caep). Its streams offer only the event types that
 * profile takes, and its SETs carry the subject inside the event, with no sub_id and no txn.
 * Other receivers keep SSF 1.0 as written.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { transmitterConfigSchema } from '../../core/transmitter/config.ts';
import {
  ALICE,
  CAEP,
  CREDENTIAL_CHANGE,
  POLL,
  SESSION_REVOKED,
  call,
  decodeJwt,
  eventually,
  sessionRevoked,
  startBridge,
  type Bridge,
} from './harness.ts';

const APPLE = {
  client_id: 'apple-business-manager',
  token: 'abm-token-0001-0001',
  profile: 'legacy-sse-caep',
};
const ACCOUNT_DISABLED = 'https://schemas.openid.net/secevent/risc/event-type/account-disabled';

let bridge: Bridge;

beforeAll(async () => {
  bridge = await startBridge({
    transmitter: { receivers: [ALICE, APPLE], streams: { per_receiver: 'many', default_subjects: 'ALL' } },
  });
});

afterAll(async () => {
  await bridge?.close();
});

const as = (token: string) => (method: string, path: string, body?: unknown) =>
  call(bridge.issuer, method, path, { token, body });

async function pollAll(token: string, streamId: string): Promise<Array<Record<string, unknown>>> {
  const answer = await as(token)('POST', `ssf/poll/${streamId}`, { returnImmediately: true, maxEvents: 50 });
  return Object.values(answer.json.sets as Record<string, string>).map((jwt) => decodeJwt(jwt).payload);
}

describe('a receiver with the legacy-sse-caep profile (Apple Business Manager)', () => {
  it('is offered only session-revoked and credential-change; other receivers every type (SSF 1.0 §8.1.1)', async () => {
    const requested = [SESSION_REVOKED, CREDENTIAL_CHANGE, ACCOUNT_DISABLED];
    const apple = await as(APPLE.token)('POST', 'ssf/streams', {
      events_requested: requested,
      delivery: { method: POLL },
    });
    expect(apple.status).toBe(201);
    expect([...apple.json.events_supported].sort()).toEqual([CREDENTIAL_CHANGE, SESSION_REVOKED].sort());
    expect([...apple.json.events_delivered].sort()).toEqual([CREDENTIAL_CHANGE, SESSION_REVOKED].sort());
    const alice = await as(ALICE.token)('POST', 'ssf/streams', {
      events_requested: requested,
      delivery: { method: POLL },
    });
    expect(alice.json.events_supported).toContain(ACCOUNT_DISABLED);
    expect([...alice.json.events_delivered].sort()).toEqual([...requested].sort());
  });

  it('gets its SETs in the legacy shape, and no event its profile would refuse', async () => {
    const stream = (await as(APPLE.token)('POST', 'ssf/streams', {
      events_requested: [SESSION_REVOKED, ACCOUNT_DISABLED],
      delivery: { method: POLL },
    })) as { json: { stream_id: string } };
    const other = (await as(ALICE.token)('POST', 'ssf/streams', {
      events_requested: [SESSION_REVOKED, ACCOUNT_DISABLED],
      delivery: { method: POLL },
    })) as { json: { stream_id: string } };
    const email = 'kim.park@example.com';
    await bridge.ingest([
      sessionRevoked(email),
      { type: ACCOUNT_DISABLED, subject: { format: 'email', email }, claims: {}, sourceRecordId: 'ad-1' },
    ]);
    await eventually(async () => (await bridge.store.streams.pollQueueDepth(other.json.stream_id)) === 2);
    await eventually(async () => (await bridge.store.streams.pollQueueDepth(stream.json.stream_id)) === 1);
    const [legacy, ...more] = (await pollAll(APPLE.token, stream.json.stream_id)).filter(
      (set) => !JSON.stringify(set.events).includes('/ssf/event-type/'),
    );
    expect(more).toEqual([]);
    expect(legacy).not.toHaveProperty('sub_id');
    expect(legacy).not.toHaveProperty('txn');
    expect(legacy?.aud).toBe(APPLE.client_id);
    expect(legacy?.events).toEqual({
      [`${CAEP}session-revoked`]: expect.objectContaining({ subject: { user: { format: 'email', email } } }),
    });
    // The SSF 1.0 receiver got both, with a top-level sub_id.
    const standard = await pollAll(ALICE.token, other.json.stream_id);
    expect(standard.filter((set) => set.sub_id !== undefined)).toHaveLength(2);
    // Nothing waits or died for the Apple stream: the refused type was never queued for it.
    const letters = await bridge.store.deadLetters.list({ destinationId: `stream:${stream.json.stream_id}` });
    expect(letters).toEqual([]);
  });

  it('profile_options are checked against the profile when the configuration is read', () => {
    const parsed = transmitterConfigSchema.safeParse({
      receivers: [
        {
          client_id: 'okta',
          token: 'okta-token-0001-0001',
          profile: 'okta-itp',
          profile_options: { include_device: 'yes' },
        },
      ],
    });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('profile_options');
    expect(
      transmitterConfigSchema.safeParse({
        receivers: [
          {
            client_id: 'okta',
            token: 'okta-token-0001-0001',
            profile: 'okta-itp',
            profile_options: { include_device: true },
          },
        ],
      }).success,
    ).toBe(true);
    expect(
      transmitterConfigSchema.safeParse({
        receivers: [{ client_id: 'x', token: 'x-token-0001-0001-01', profile: 'no-such-profile' }],
      }).success,
    ).toBe(false);
  });
});
