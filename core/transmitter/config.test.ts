import { describe, expect, it } from 'vitest';
import { isSecret } from '../plugin-api/index.ts';
import { eventCatalog } from '../ssf/events/catalog.ts';
import { quickstartTransmitterConfig, transmitterConfigSchema } from './config.ts';
import { supportedEventTypes } from './context.ts';
import { rootConfigSchema } from '../config/root.ts';

describe('transmitter config', () => {
  it('has defaults for everything and turns tokens into secrets', () => {
    const config = transmitterConfigSchema.parse({
      receivers: [{ client_id: 'rx', token: 'tok-1234567890abcdef' }],
    });
    expect(config.streams).toMatchObject({
      per_receiver: 'one',
      default_subjects: 'ALL',
      paused_hold_limit: 10_000,
    });
    expect(config.poll).toMatchObject({ max_events: 1000, long_poll_max_wait: 20_000, redeliver_after: 0 });
    expect(config.receivers[0]?.scopes).toEqual(['ssf.read', 'ssf.manage']);
    expect(isSecret(config.receivers[0]?.token)).toBe(true);
    expect(JSON.stringify(config)).not.toContain('tok-1234567890abcdef');
    expect(config.ssrf).toMatchObject({ allowHttpHosts: [], allowCidrs: [] });
  });

  it('refuses a receiver token shorter than 16 characters, as admin tokens are', () => {
    const short = transmitterConfigSchema.safeParse({
      receivers: [{ client_id: 'rx', token: 'fifteen-chars-x' }],
    });
    expect(short.success).toBe(false);
    expect(short.error?.issues).toEqual([
      expect.objectContaining({ path: ['receivers', 0, 'token'], message: 'must be at least 16 characters' }),
    ]);
    expect(JSON.stringify(short.error?.issues)).not.toContain('fifteen-chars-x');
    const enough = transmitterConfigSchema.safeParse({
      receivers: [{ client_id: 'rx', token: 'sixteen-chars-xx' }],
    });
    expect(enough.success).toBe(true);
  });

  it('is strict and reports duplicates', () => {
    expect(transmitterConfigSchema.safeParse({ recievers: [] }).success).toBe(false);
    const dup = transmitterConfigSchema.safeParse({
      receivers: [
        { client_id: 'rx', token: 'aaaa1-0001-0001-01' },
        { client_id: 'rx', token: 'bbbb2-0001-0001-01' },
      ],
      provisioned_streams: [
        { stream_id: 's1', client_id: 'rx' },
        { stream_id: 's1', client_id: 'rx' },
      ],
      poll: { max_events: 10, default_max_events: 20 },
    });
    expect(dup.success).toBe(false);
    const paths = dup.error?.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining([
        'receivers.1.client_id',
        'provisioned_streams.1.stream_id',
        'poll.default_max_events',
      ]),
    );
    expect(
      transmitterConfigSchema.safeParse({
        provisioned_streams: [{ stream_id: 'has:colon', client_id: 'rx' }],
      }).success,
    ).toBe(false);
  });

  it('resolves the event types of a provisioned stream to URIs, once each, and names an unknown one', () => {
    const streams = (events_requested: string[]) =>
      transmitterConfigSchema.safeParse({
        receivers: [{ client_id: 'rx', token: 'tok-1234567890abcdef' }],
        provisioned_streams: [{ stream_id: 's1', client_id: 'rx', events_requested }],
      });
    const uri = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
    expect(streams(['caep.session-revoked', uri]).data?.provisioned_streams[0]?.events_requested).toEqual([
      uri,
    ]);
    expect(streams(['caep.session-revokd']).error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['provisioned_streams.0.events_requested.0', 'unknown event type "caep.session-revokd"'],
    ]);
  });

  it('refuses one static token for two receivers: each could act as the other', () => {
    const shared = transmitterConfigSchema.safeParse({
      receivers: [
        { client_id: 'alice', token: 'shared-token-123456' },
        { client_id: 'bob', token: 'shared-token-123456' },
        { client_id: 'carol' },
        { client_id: 'dave' },
      ],
    });
    expect(shared.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
      ['receivers.1.token', 'the same token as client alice: every receiver needs a token of its own'],
    ]);
    expect(JSON.stringify(shared.error?.issues)).not.toContain('shared-token-123456');
  });

  it('TX-06: supported event types are CAEP and RISC by default, never the SSF control events', () => {
    const all = supportedEventTypes(transmitterConfigSchema.parse({}), eventCatalog);
    expect(all).toContain('https://schemas.openid.net/secevent/caep/event-type/session-revoked');
    expect(all).toContain('https://schemas.openid.net/secevent/risc/event-type/account-disabled');
    expect(all.some((u) => u.includes('/ssf/event-type/'))).toBe(false);
    expect(all).not.toContain('https://schemas.openid.net/secevent/risc/event-type/sessions-revoked');
    const chosen = supportedEventTypes(
      transmitterConfigSchema.parse({
        streams: { events_supported: ['caep.session-revoked', 'caep.session-revoked'] },
      }),
      eventCatalog,
    );
    expect(chosen).toEqual(['https://schemas.openid.net/secevent/caep/event-type/session-revoked']);
    expect(() =>
      supportedEventTypes(
        transmitterConfigSchema.parse({ streams: { events_supported: ['caep.nope'] } }),
        eventCatalog,
      ),
    ).toThrow(/unknown event type/);
    expect(() =>
      supportedEventTypes(
        transmitterConfigSchema.parse({ streams: { events_supported: ['ssf.verification'] } }),
        eventCatalog,
      ),
    ).toThrow(/always delivered/);
  });

  it("google-workspace profile (Google takes SETs with aud https://sharedsignals.googleapis.com only): a receiver's other audience, or its client id when it has none, is a config problem at its audience", () => {
    const GOOGLE = 'https://sharedsignals.googleapis.com';
    const onlyGoogle = (requested: string) =>
      `the google-workspace profile takes only the audience ${GOOGLE}, not ${requested}: every SET would be refused; set audience to ${GOOGLE}`;
    const problems = (receiver: Record<string, unknown>) =>
      transmitterConfigSchema
        .safeParse({ receivers: [{ client_id: 'rx', profile: 'google-workspace', ...receiver }] })
        .error?.issues.map((i) => [i.path.join('.'), i.message]);
    expect(problems({ audience: 'https://rx.example.net' })).toEqual([
      ['receivers.0.audience', onlyGoogle('https://rx.example.net')],
    ]);
    expect(problems({ audience: [GOOGLE, 'https://rx.example.net'] })).toEqual([
      ['receivers.0.audience', onlyGoogle(`${GOOGLE}, https://rx.example.net`)],
    ]);
    // Without an audience the client's streams carry its client id.
    expect(problems({})).toEqual([['receivers.0.audience', onlyGoogle('rx')]]);
    expect(problems({ audience: GOOGLE })).toBeUndefined();
    expect(problems({ client_id: GOOGLE })).toBeUndefined();
    expect(
      transmitterConfigSchema.safeParse({
        receivers: [{ client_id: 'rx', audience: 'https://rx.example.net', profile: 'legacy-sse-caep' }],
      }).success,
    ).toBe(true);
  });

  it('the quickstart block validates', () => {
    expect(transmitterConfigSchema.safeParse(quickstartTransmitterConfig()).success).toBe(true);
  });
});

describe('transmitter config: DPoP nonces (oauth.dpop_nonce)', () => {
  const oauth = {
    issuer: 'https://as.example',
    audience: 'https://bridge.example',
    jwks_uri: 'https://as.example/jwks',
  };
  const SECRET = 'a-dpop-nonce-secret-of-at-least-32-chars';

  it('takes a secret of at least 32 characters, only where nonces are asked for, and never echoes it', () => {
    const short = transmitterConfigSchema.safeParse({
      oauth: { ...oauth, dpop_nonce: true, dpop_nonce_secret: 'thirty-one-characters-secret-xx' },
    });
    expect(short.error?.issues).toEqual([
      expect.objectContaining({
        path: ['oauth', 'dpop_nonce_secret'],
        message: 'must be at least 32 characters',
      }),
    ]);
    expect(JSON.stringify(short.error?.issues)).not.toContain('thirty-one-characters-secret-xx');
    const unused = transmitterConfigSchema.safeParse({ oauth: { ...oauth, dpop_nonce_secret: SECRET } });
    expect(unused.error?.issues).toEqual([
      expect.objectContaining({
        path: ['oauth', 'dpop_nonce_secret'],
        message: expect.stringMatching(/dpop_nonce is false/),
      }),
    ]);
    const taken = transmitterConfigSchema.parse({
      oauth: { ...oauth, dpop_nonce: true, dpop_nonce_secret: SECRET },
    });
    expect(taken.oauth?.dpop_nonce).toBe(true);
    expect(isSecret(taken.oauth?.dpop_nonce_secret)).toBe(true);
    expect(transmitterConfigSchema.parse({ oauth }).oauth?.dpop_nonce).toBe(false);
  });

  it("requires the secret on PostgreSQL storage, where instances must take each other's nonces", () => {
    const postgres = { driver: 'postgres', url: 'postgres://127.0.0.1/test' };
    // Instances sharing the database share their signing keys too (core/config/root-keys.test.ts).
    const keys = { files: ['/etc/ssf-bridge/signing.pem'] };
    const withoutSecret = rootConfigSchema.safeParse({
      storage: postgres,
      keys,
      transmitter: { oauth: { ...oauth, dpop_nonce: true } },
    });
    expect(withoutSecret.error?.issues).toEqual([
      expect.objectContaining({
        path: ['transmitter', 'oauth', 'dpop_nonce_secret'],
        message: expect.stringMatching(/required with dpop_nonce on PostgreSQL storage/),
      }),
    ]);
    const withSecret = rootConfigSchema.safeParse({
      storage: postgres,
      keys,
      transmitter: { oauth: { ...oauth, dpop_nonce: true, dpop_nonce_secret: SECRET } },
    });
    expect(withSecret.success).toBe(true);
    // One instance on SQLite makes its own.
    expect(
      rootConfigSchema.safeParse({ transmitter: { oauth: { ...oauth, dpop_nonce: true } } }).success,
    ).toBe(true);
  });
});
