import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError } from '../../plugin-api/index.ts';
import { SetVerificationError } from '../errors.ts';
import { CAEP_BASE } from '../events/common.ts';
import { defaultKeysConfig } from '../keys/config.ts';
import { generateKeyMaterial, type KeyMaterial } from '../keys/material.ts';
import { KeyStore, type SigningKey } from '../keys/store.ts';
import { SetCodec, type CodecBuildInput } from './codec.ts';
import { localJwks, remoteJwks } from './jwks.ts';
import { MemoryReplayCache } from './replay.ts';
import { verifySet, type VerifySetOptions } from './verify.ts';

const ISS = 'https://tx.example';
const AUD = 'https://rx.example';
const NOW = new Date('2026-03-01T12:00:00Z');
const clock = { now: () => NOW };
const SESSION_REVOKED = `${CAEP_BASE}session-revoked`;

async function storeFor(material: KeyMaterial): Promise<KeyStore> {
  return KeyStore.open({
    dataDir: '(keys come from the config)',
    config: defaultKeysConfig({
      algorithm: material.alg,
      secrets: [JSON.stringify({ ...material.privateJwk, kid: material.kid })],
    }),
    clock,
  });
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Signs any header and payload with a key: for SETs the codec would never produce. */
async function craft(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: SigningKey,
): Promise<string> {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${(await key.sign(Buffer.from(input))).toString('base64url')}`;
}

const validPayload = () => ({
  iss: ISS,
  iat: NOW.getTime() / 1000,
  jti: 'jti-1',
  aud: AUD,
  txn: 'txn-1',
  sub_id: { format: 'email', email: 'dana@example.com' },
  events: { [SESSION_REVOKED]: { reason_admin: { en: 'x' } } },
});

let es256: KeyMaterial;
let store: KeyStore;
let key: SigningKey;
let codec: SetCodec;

function options(extra: Partial<VerifySetOptions> = {}): VerifySetOptions {
  return { keys: store.verificationKeys(), issuer: ISS, audience: AUD, clock, ...extra };
}

async function refusal(token: string, extra: Partial<VerifySetOptions> = {}): Promise<SetVerificationError> {
  try {
    await verifySet(token, options(extra));
  } catch (err) {
    if (err instanceof SetVerificationError) return err;
    throw err;
  }
  throw new Error('the SET was accepted');
}

beforeAll(async () => {
  es256 = await generateKeyMaterial('ES256');
  store = await storeFor(es256);
  key = await store.signingKey();
  codec = new SetCodec({ issuer: ISS, keys: store, clock });
});

const draft: CodecBuildInput = {
  event: {
    type: 'caep.session-revoked',
    subject: { format: 'email', email: 'dana@example.com' },
    claims: { reason_admin: { en: 'x' } },
    sourceRecordId: 'rec-1',
  },
  sourceInstanceId: 'edr',
  destination: { id: 'rx', audience: AUD },
};

describe('verifySet accepts', () => {
  it('a SET the codec signed, returning its event, subject and jti', async () => {
    const minted = await codec.mint(draft);
    const verified = await verifySet(minted.jwt, options());
    expect(verified).toMatchObject({
      jti: minted.jti,
      eventType: SESSION_REVOKED,
      event: minted.event,
      subject: minted.subject,
      knownEventType: true,
      warnings: [],
    });
    expect(verified.header).toEqual({ alg: 'ES256', kid: es256.kid, typ: 'secevent+jwt' });
  });

  it('an aud array that includes this receiver, and any of several accepted issuers', async () => {
    const token = await craft(
      { alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' },
      { ...validPayload(), aud: ['https://other', AUD] },
      key,
    );
    await expect(verifySet(token, options({ issuer: ['https://old.example', ISS] }))).resolves.toBeDefined();
  });

  it('checklist §10.14: application/secevent+jwt as typ, with a warning', async () => {
    const token = await craft(
      { alg: 'ES256', kid: key.kid, typ: 'application/secevent+jwt' },
      validPayload(),
      key,
    );
    const verified = await verifySet(token, options());
    expect(verified.warnings.map((w) => w.code)).toEqual(['SSF_ERR_SET_TYP']);
  });

  it('CAEP 1.0 §3.3 (checklist CAEP-02): a credential_type outside the list is taken, with a warning naming it', async () => {
    const credentialChange = 'https://schemas.openid.net/secevent/caep/event-type/credential-change';
    const token = (credential_type: string) =>
      craft(
        { alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' },
        { ...validPayload(), events: { [credentialChange]: { credential_type, change_type: 'update' } } },
        key,
      );
    const agreed = await verifySet(await token('fido2-u2f'), options());
    expect(agreed.warnings).toEqual([
      expect.objectContaining({
        code: 'SSF_ERR_EVENT_CREDENTIAL_TYPE',
        description: expect.stringMatching(
          /^caep\.credential-change: credential_type "fido2-u2f" is none of CAEP 1\.0's/,
        ),
      }),
    ]);
    expect((await verifySet(await token('fido-u2f'), options())).warnings).toEqual([]);
  });

  it('SSF 1.0 §4.2.3 (checklist SET-15): unknown event types, unchecked, unless told to refuse them', async () => {
    const token = await craft(
      { alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' },
      { ...validPayload(), events: { 'https://vendor.example/event/x': { anything: 1 } } },
      key,
    );
    const verified = await verifySet(token, options());
    expect(verified.knownEventType).toBe(false);
    expect((await refusal(token, { rejectUnknownEventTypes: true })).code).toBe('SSF_ERR_SET_EVENT_UNKNOWN');
  });

  it('RFC 8417 §2.2 (checklist §1.1): an events member named by a catalog short name is an unknown event type, not the catalog one', async () => {
    const token = await craft(
      { alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' },
      { ...validPayload(), events: { 'caep.session-revoked': { reason_admin: { en: 'x' } } } },
      key,
    );
    const verified = await verifySet(token, options());
    expect(verified.knownEventType).toBe(false);
    expect(verified.eventType).toBe('caep.session-revoked');
    expect(verified.warnings).toContainEqual(
      expect.objectContaining({
        severity: 'warning',
        code: 'SSF_ERR_SET_EVENT_UNKNOWN',
        description: expect.stringContaining(`the catalog's caep.session-revoked is ${SESSION_REVOKED}`),
      }),
    );
    const refused = await refusal(token, { rejectUnknownEventTypes: true });
    expect([refused.err, refused.code]).toEqual(['invalid_request', 'SSF_ERR_SET_EVENT_UNKNOWN']);
    // Its contents are not checked against the catalog entry either: a short-named
    // credential-change missing its required claims is taken as an unknown event.
    const credential = await craft(
      { alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' },
      { ...validPayload(), events: { 'caep.credential-change': {} } },
      key,
    );
    expect((await verifySet(credential, options())).knownEventType).toBe(false);
  });

  it('checklist SSF-02: a pre-SSF 1.0 SET with the subject inside the event, when legacySubject is on', async () => {
    const { sub_id: subId, ...rest } = validPayload();
    const token = await craft(
      { alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' },
      { ...rest, events: { [SESSION_REVOKED]: { subject: subId } } },
      key,
    );
    expect((await refusal(token)).code).toBe('SSF_ERR_SET_SUB_ID');
    const verified = await verifySet(token, options({ legacySubject: true }));
    expect(verified.subject).toEqual(subId);
  });
});

describe('verifySet ignores what a receiver does not understand (SSF 1.0 §4.2.1, §4.2.3)', () => {
  const header = () => ({ alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' });
  const STREAM_UPDATED = 'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';
  const VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';
  const SESSIONS_REVOKED = 'https://schemas.openid.net/secevent/risc/event-type/sessions-revoked';

  it('SSF 1.0 §4.2.3 (checklist SET-15, SSF-12): a stream-updated or verification event carrying a pre-Final subject member is taken, the member ignored with a warning', async () => {
    const stream = { format: 'opaque', id: 'stream-1' };
    for (const [type, event] of [
      [STREAM_UPDATED, { status: 'paused', reason: 'maintenance' }],
      [VERIFICATION, { state: 's-1' }],
    ] as const) {
      const token = await craft(
        header(),
        { ...validPayload(), sub_id: stream, events: { [type]: { ...event, subject: stream } } },
        key,
      );
      const verified = await verifySet(token, options());
      expect(verified.eventType).toBe(type);
      expect(verified.event).toEqual(event);
      expect(verified.warnings).toContainEqual(
        expect.objectContaining({
          code: 'SSF_ERR_SET_EVENT_MEMBER_IGNORED',
          description: expect.stringContaining('.subject: ignored'),
        }),
      );
    }
  });

  it('SSF 1.0 §4.2.1 (checklist SET-13, SSF-12): RISC sessions-revoked and CAEP session-revoked, alternative names of one event, are taken once as session-revoked; exactlyOneEvent (CAEP interoperability §2.8.1) refuses them', async () => {
    const token = await craft(
      header(),
      {
        ...validPayload(),
        events: { [SESSIONS_REVOKED]: {}, [SESSION_REVOKED]: { reason_admin: { en: 'x' } } },
      },
      key,
    );
    const verified = await verifySet(token, options());
    expect(verified.eventType).toBe(SESSION_REVOKED);
    expect(verified.event).toEqual({ reason_admin: { en: 'x' } });
    expect(verified.warnings).toContainEqual(
      expect.objectContaining({ code: 'SSF_ERR_SET_EVENTS', severity: 'warning' }),
    );
    const strict = await refusal(token, { exactlyOneEvent: true });
    expect([strict.err, strict.code]).toEqual(['invalid_request', 'SSF_ERR_SET_EVENTS']);
    expect(strict.description).toContain('CAEP interoperability §2.8.1');
  });

  it('SSF 1.0 §4.2.1: alternative names whose event is not an object, or names of an event the catalog does not know, are still refused', async () => {
    const notObject = await craft(
      header(),
      { ...validPayload(), events: { [SESSIONS_REVOKED]: true, [SESSION_REVOKED]: {} } },
      key,
    );
    expect((await refusal(notObject)).code).toBe('SSF_ERR_SET_EVENTS');
    const unknown = await craft(
      header(),
      { ...validPayload(), events: { 'https://vendor.example/x': {}, [SESSION_REVOKED]: {} } },
      key,
    );
    expect((await refusal(unknown)).code).toBe('SSF_ERR_SET_EVENTS');
  });
});

describe('verifySet refuses, with the RFC 8935 §2.4 error code', () => {
  const header = () => ({ alg: 'ES256', kid: key.kid, typ: 'secevent+jwt' });

  const cases: Array<{
    name: string;
    make: () => Promise<string>;
    err: string;
    code: string;
    extra?: Partial<VerifySetOptions>;
  }> = [
    {
      name: 'checklist SET-07: a body that is not a compact JWS',
      make: async () => 'not-a-jwt',
      err: 'invalid_request',
      code: 'SSF_ERR_SET_MALFORMED',
    },
    {
      name: 'an encrypted JWT (five parts)',
      make: async () => 'a.b.c.d.e',
      err: 'invalid_request',
      code: 'SSF_ERR_SET_MALFORMED',
    },
    {
      name: 'a header that is not JSON',
      make: async () => 'bm90IGpzb24.e30.c2ln',
      err: 'invalid_request',
      code: 'SSF_ERR_SET_MALFORMED',
    },
    {
      name: 'RFC 8417 §2.3 (SET-01): a missing typ',
      make: () => craft({ alg: 'ES256', kid: key.kid }, validPayload(), key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_TYP',
    },
    {
      name: 'RFC 8417 §2.3 (SET-06): typ JWT, i.e. an ID or access token',
      make: () => craft({ ...header(), typ: 'JWT' }, validPayload(), key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_TYP',
    },
    {
      name: 'checklist SET-04: alg none',
      make: async () => `${b64({ alg: 'none', typ: 'secevent+jwt' })}.${b64(validPayload())}.`,
      err: 'authentication_failed',
      code: 'SSF_ERR_SET_UNSIGNED',
    },
    {
      name: 'checklist SET-04: an algorithm outside the allow-list',
      make: () => craft(header(), validPayload(), key),
      err: 'invalid_key',
      code: 'SSF_ERR_SET_ALG',
      extra: { algorithms: ['RS256'] },
    },
    {
      name: 'checklist SET-08: an unknown kid',
      make: () => craft({ ...header(), kid: 'someone-else' }, validPayload(), key),
      err: 'invalid_key',
      code: 'SSF_ERR_SET_UNKNOWN_KEY',
    },
    {
      name: 'unsupported critical header parameters',
      make: () => craft({ ...header(), crit: ['exp'] }, validPayload(), key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_CRIT',
    },
    {
      name: 'SSF 1.0 §4.1.6 (SET-09): another issuer',
      make: () => craft(header(), { ...validPayload(), iss: 'https://evil.example' }, key),
      err: 'invalid_issuer',
      code: 'SSF_ERR_SET_ISSUER',
    },
    {
      name: 'RFC 8417 §2.2: no iss',
      make: () => craft(header(), { ...validPayload(), iss: undefined }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_CLAIM',
    },
    {
      name: 'SSF 1.0 §4.1.8 (SET-10): another audience',
      make: () => craft(header(), { ...validPayload(), aud: 'https://someone-else' }, key),
      err: 'invalid_audience',
      code: 'SSF_ERR_SET_AUDIENCE',
    },
    {
      name: 'SET-10: no aud at all',
      make: () => craft(header(), { ...validPayload(), aud: undefined }, key),
      err: 'invalid_audience',
      code: 'SSF_ERR_SET_AUDIENCE',
    },
    {
      name: 'SET-11: no iat',
      make: () => craft(header(), { ...validPayload(), iat: undefined }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_CLAIM',
    },
    {
      name: 'RFC 8417 §2.2: a toe that is not a NumericDate',
      make: () => craft(header(), { ...validPayload(), toe: 'yesterday' }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_CLAIM',
    },
    {
      name: 'SET-11: an iat in the future beyond the clock skew',
      make: () => craft(header(), { ...validPayload(), iat: NOW.getTime() / 1000 + 120 }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_IAT_FUTURE',
    },
    {
      name: 'a SET older than the maximum age',
      make: () => craft(header(), { ...validPayload(), iat: NOW.getTime() / 1000 - 3600 }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_TOO_OLD',
      extra: { maxAgeMs: 300_000 },
    },
    {
      name: 'SET-11: no jti',
      make: () => craft(header(), { ...validPayload(), jti: '' }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_CLAIM',
    },
    {
      name: 'SSF 1.0 §4.1.2 (SET-12): a sub claim',
      make: () => craft(header(), { ...validPayload(), sub: 'u-42' }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_SUB',
    },
    {
      name: 'SSF 1.0 §4.1.7 (SET-12): an exp claim',
      make: () => craft(header(), { ...validPayload(), exp: NOW.getTime() / 1000 + 60 }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_EXP',
    },
    {
      name: 'RFC 8417 §4.6 (SET-06): a nonce, which marks an ID token',
      make: () => craft(header(), { ...validPayload(), nonce: 'n' }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_NONCE',
    },
    {
      name: 'SSF 1.0 §4.1.9: a txn that is not a string',
      make: () => craft(header(), { ...validPayload(), txn: 991 }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_TXN',
    },
    {
      name: 'SET-13: no events claim',
      make: () => craft(header(), { ...validPayload(), events: undefined }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_EVENTS',
    },
    {
      name: 'SET-13 (SSF 1.0 §4.2.1): two different events',
      make: () =>
        craft(
          header(),
          { ...validPayload(), events: { [SESSION_REVOKED]: {}, [`${CAEP_BASE}session-presented`]: {} } },
          key,
        ),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_EVENTS',
    },
    {
      name: 'RFC 8417 §2.2: an event that is not an object',
      make: () => craft(header(), { ...validPayload(), events: { [SESSION_REVOKED]: true } }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_EVENTS',
    },
    {
      name: 'SSF 1.0 §3.1 (SET-14): no sub_id',
      make: () => craft(header(), { ...validPayload(), sub_id: undefined }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_SUB_ID',
    },
    {
      name: 'SET-14: a sub_id that is not a subject identifier',
      make: () => craft(header(), { ...validPayload(), sub_id: { format: 'email', email: 'nope' } }, key),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_SUB_ID',
    },
    {
      name: 'RFC 8935 §2.4 invalid_request: an event that breaks its definition',
      make: () =>
        craft(
          header(),
          {
            ...validPayload(),
            events: {
              [`${CAEP_BASE}credential-change`]: { credential_type: 'password', change_type: 'revoked' },
            },
          },
          key,
        ),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_EVENT_INVALID',
    },
    {
      name: 'SSF 1.0 §8.1.4 (SSF-49): a verification event about something other than a stream',
      make: () =>
        craft(
          header(),
          {
            ...validPayload(),
            events: { 'https://schemas.openid.net/secevent/ssf/event-type/verification': {} },
          },
          key,
        ),
      err: 'invalid_request',
      code: 'SSF_ERR_SET_SUB_ID',
    },
  ];

  for (const c of cases) {
    it(`${c.name} → ${c.err}`, async () => {
      const error = await refusal(await c.make(), c.extra);
      expect({ err: error.err, code: error.code }).toEqual({ err: c.err, code: c.code });
      expect(error.description.length).toBeGreaterThan(10);
      expect(error.toResponseBody()).toEqual({ err: c.err, description: error.description });
    });
  }

  it('a signature made by another key under the same kid → invalid_key', async () => {
    const impostor = await storeFor({ ...(await generateKeyMaterial('ES256')), kid: es256.kid });
    const token = await craft(header(), validPayload(), await impostor.signingKey());
    const error = await refusal(token);
    expect([error.err, error.code]).toEqual(['invalid_key', 'SSF_ERR_SET_SIGNATURE']);
  });

  it('HS256 keyed with the public key (algorithm confusion) → invalid_key', async () => {
    const { createHmac } = await import('node:crypto');
    const publicJwk = JSON.stringify(store.jwks().keys[0]);
    const input = `${b64({ alg: 'HS256', kid: key.kid, typ: 'secevent+jwt' })}.${b64(validPayload())}`;
    const token = `${input}.${createHmac('sha256', publicJwk).update(input).digest('base64url')}`;
    const error = await refusal(token);
    expect([error.err, error.code]).toEqual(['invalid_key', 'SSF_ERR_SET_ALG']);
    expect(error.description).toMatch(/HMAC would let a public key act as a shared secret/);
  });

  it('RFC 8935 access_denied: a transmitter not allowed to send this SET', async () => {
    const minted = await codec.mint(draft);
    const error = await refusal(minted.jwt, {
      authorize: (set) => (set.eventType === SESSION_REVOKED ? 'not subscribed' : undefined),
    });
    expect([error.err, error.code, error.description]).toEqual([
      'access_denied',
      'SSF_ERR_SET_ACCESS_DENIED',
      'not subscribed',
    ]);
  });

  it('a replayed jti while remembered; the same jti again once the cache forgot it', async () => {
    const minted = await codec.mint(draft);
    let now = NOW.getTime();
    const movingClock = { now: () => new Date(now) };
    const replayCache = new MemoryReplayCache({ ttlMs: 600_000 });
    await verifySet(minted.jwt, options({ replayCache, clock: movingClock }));
    const error = await refusal(minted.jwt, { replayCache, clock: movingClock });
    expect([error.err, error.code]).toEqual(['invalid_request', 'SSF_ERR_SET_REPLAYED']);
    now += 600_001;
    await expect(verifySet(minted.jwt, options({ replayCache, clock: movingClock }))).resolves.toBeDefined();
  });

  it('the replay cache only remembers SETs that passed every other check', async () => {
    const replayCache = new MemoryReplayCache({ ttlMs: 600_000 });
    const token = await craft(header(), { ...validPayload(), aud: 'https://someone-else' }, key);
    await expect(verifySet(token, options({ replayCache }))).rejects.toThrow(SetVerificationError);
    expect(replayCache.size).toBe(0);
  });
});

describe('properties', () => {
  const subjects = fc.constantFrom(
    { format: 'email', email: 'dana@example.com' },
    { format: 'iss_sub', iss: 'https://idp.example', sub: 'u-42' },
    {
      format: 'complex',
      user: { format: 'email', email: 'a@b.example' },
      device: { format: 'opaque', id: 'd-9' },
    },
    { format: 'phone_number', phone_number: '+12065550100' },
  );
  const events = fc.oneof(
    fc.record({
      type: fc.constant('caep.session-revoked'),
      claims: fc.record({ reason_admin: fc.record({ en: fc.string({ minLength: 1 }) }) }),
    }),
    fc.record({
      type: fc.constant('caep.credential-change'),
      claims: fc.record({
        credential_type: fc.constantFrom('password', 'fido2-platform', 'x509'),
        change_type: fc.constantFrom('create', 'revoke', 'update', 'delete'),
        friendly_name: fc.string(),
      }),
    }),
    fc.record({
      type: fc.constant('caep.risk-level-change'),
      claims: fc.record({
        principal: fc.constantFrom('USER', 'DEVICE'),
        current_level: fc.constantFrom('LOW', 'MEDIUM', 'HIGH'),
      }),
    }),
    fc.record({ type: fc.constant('risc.account-disabled'), claims: fc.record({}, { requiredKeys: [] }) }),
  );

  it('build → sign → verify returns the same event, subject and jti (round trip)', async () => {
    await fc.assert(
      fc.asyncProperty(
        events,
        subjects,
        fc.string({ minLength: 1, maxLength: 40 }),
        async (event, subject, record) => {
          const minted = await codec.mint({ ...draft, event: { ...event, subject, sourceRecordId: record } });
          const verified = await verifySet(minted.jwt, options());
          expect(verified.jti).toBe(minted.jti);
          expect(verified.event).toEqual(minted.event);
          expect(verified.subject).toEqual(minted.subject);
          expect(verified.claims).toEqual(minted.claims);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('changing any bit of the header, payload or signature makes verification fail (tamper detection)', async () => {
    const minted = await codec.mint(draft);
    const parts = minted.jwt.split('.').map((p) => Buffer.from(p, 'base64url'));
    await fc.assert(
      fc.asyncProperty(fc.nat(2), fc.nat(), fc.integer({ min: 0, max: 7 }), async (part, at, bit) => {
        const bytes = parts.map((p) => Buffer.from(p));
        const target = bytes[part] as Buffer;
        const index = at % target.length;
        target[index] = (target[index] as number) ^ (1 << bit);
        const token = bytes.map((b) => b.toString('base64url')).join('.');
        await expect(verifySet(token, options())).rejects.toBeInstanceOf(SetVerificationError);
      }),
      { numRuns: 200 },
    );
  });
});

describe('remote JWKS (checklist SET-08: refresh on unknown kid, bounded)', () => {
  let server: Server;
  let url: string;
  let fetches = 0;
  let served: unknown;
  let stall = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      fetches++;
      if (stall) return;
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' }).end(JSON.stringify(served));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('fetches once, caches, and fetches again once for a kid it does not know', async () => {
    fetches = 0;
    served = store.jwks();
    let now = NOW.getTime();
    const keys = remoteJwks(url, { clock: { now: () => new Date(now) }, cooldownMs: 30_000 });
    const first = await codec.mint(draft);
    await verifySet(first.jwt, options({ keys }));
    await verifySet(first.jwt, options({ keys }));
    expect(fetches).toBe(1);

    // The transmitter rotates: a SET signed with the new key names a kid the cache lacks.
    const next = await generateKeyMaterial('ES256');
    const nextStore = await storeFor(next);
    served = { keys: [...store.jwks().keys, ...nextStore.jwks().keys] };
    const rotated = await new SetCodec({ issuer: ISS, keys: nextStore, clock }).mint(draft);
    now += 31_000;
    await verifySet(rotated.jwt, options({ keys }));
    expect(fetches).toBe(2);

    // Unknown kids within the cooldown trigger no fetch; they are retried, not refused.
    const junk = await craft({ alg: 'ES256', kid: 'junk', typ: 'secevent+jwt' }, validPayload(), key);
    const early = await verifySet(junk, options({ keys })).catch((err: unknown) => err);
    expect(early).toBeInstanceOf(RetryableError);
    expect(early).toMatchObject({ code: 'SSF_ERR_JWKS_COOLDOWN', retryAfterMs: 30_000 });
    expect(fetches).toBe(2);
    // Once the JWKS may be fetched again, a kid it still lacks is refused for good.
    now += 30_000;
    const error = await refusal(junk, { keys });
    expect(error.code).toBe('SSF_ERR_SET_UNKNOWN_KEY');
    expect(fetches).toBe(3);
  });

  it('checklist SET-08 / RFC 8935 §2.3: a SET signed with a key published within the cooldown is retried (Retry-After the rest of it), not refused', async () => {
    let now = NOW.getTime();
    let jwks = store.jwks();
    let calls = 0;
    const keys = remoteJwks('https://tx.example/jwks', {
      clock: { now: () => new Date(now) },
      cooldownMs: 30_000,
      fetcher: async () => {
        calls++;
        return jwks;
      },
    });
    await verifySet((await codec.mint(draft)).jwt, options({ keys }));
    // The transmitter rotates 5 s after the receiver fetched its JWKS and signs with the new key.
    const next = await storeFor(await generateKeyMaterial('ES256'));
    jwks = { keys: [...store.jwks().keys, ...next.jwks().keys] };
    const rotated = await new SetCodec({ issuer: ISS, keys: next, clock }).mint(draft);
    now += 5_000;
    const error = await verifySet(rotated.jwt, options({ keys })).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RetryableError);
    expect(error).toMatchObject({ code: 'SSF_ERR_JWKS_COOLDOWN', retryAfterMs: 25_000 });
    expect(calls).toBe(1);
    // The transmitter retries after the Retry-After: the JWKS is fetched again and the SET verifies.
    now += 25_000;
    await expect(verifySet(rotated.jwt, options({ keys }))).resolves.toBeDefined();
    expect(calls).toBe(2);
  });

  it('checklist SET-08: a JWKS endpoint that is down is asked again after a backoff, not for every SET', async () => {
    let now = NOW.getTime();
    let down = false;
    let calls = 0;
    const keys = remoteJwks('https://tx.example/jwks', {
      clock: { now: () => new Date(now) },
      cacheMaxAgeMs: 60_000,
      cooldownMs: 30_000,
      fetcher: async () => {
        calls++;
        if (down) throw new Error('connection refused');
        return store.jwks();
      },
    });
    const minted = await codec.mint(draft);
    await verifySet(minted.jwt, options({ keys }));
    down = true;
    now += 120_000;
    // The cache is stale: one re-fetch fails, then the stale keys verify without asking again.
    for (let i = 0; i < 5; i++) await expect(verifySet(minted.jwt, options({ keys }))).resolves.toBeDefined();
    expect(calls).toBe(2);
    now += 30_000;
    await verifySet(minted.jwt, options({ keys }));
    expect(calls).toBe(3);
    // The backoff doubles: 60 s after the second failure.
    now += 30_000;
    await verifySet(minted.jwt, options({ keys }));
    expect(calls).toBe(3);
    now += 30_000;
    await verifySet(minted.jwt, options({ keys }));
    expect(calls).toBe(4);

    // Without any cached JWKS, a SET arriving during the backoff is retryable and fetches nothing.
    let attempts = 0;
    const none = remoteJwks('https://tx.example/jwks', {
      clock: { now: () => new Date(now) },
      cooldownMs: 30_000,
      fetcher: async () => {
        attempts++;
        throw new Error('connection refused');
      },
    });
    const first = await verifySet(minted.jwt, options({ keys: none })).catch((err: unknown) => err);
    expect(first).toMatchObject({ code: 'SSF_ERR_JWKS_UNAVAILABLE', retryAfterMs: 30_000 });
    now += 10_000;
    const second = await verifySet(minted.jwt, options({ keys: none })).catch((err: unknown) => err);
    expect(second).toBeInstanceOf(RetryableError);
    expect(second).toMatchObject({ code: 'SSF_ERR_JWKS_UNAVAILABLE', retryAfterMs: 20_000 });
    expect(attempts).toBe(1);
  });

  it('a JWKS that cannot be fetched is a retryable failure, not a refusal of the SET', async () => {
    const minted = await codec.mint(draft);
    stall = true;
    try {
      const keys = remoteJwks(url, { timeoutMs: 200 });
      const error = await verifySet(minted.jwt, options({ keys })).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(RetryableError);
      expect((error as RetryableError).code).toBe('SSF_ERR_JWKS_UNAVAILABLE');
    } finally {
      stall = false;
    }
    const broken = remoteJwks(url, { fetcher: async () => ({ not: 'a jwks' }) });
    await expect(verifySet(minted.jwt, options({ keys: broken }))).rejects.toMatchObject({
      code: 'SSF_ERR_JWKS_INVALID',
    });
  });

  it('reads a JWKS only up to its size limit: an endless body is cut off, not held in memory', async () => {
    const endless = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json' });
      res.write('{"keys":[');
      const chunk = `${JSON.stringify({ kty: 'oct', k: 'x'.repeat(16 * 1024) })},`;
      // Writes as long as the client reads; stops when it hangs up.
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    await new Promise<void>((resolve) => endless.listen(0, '127.0.0.1', resolve));
    try {
      const where = `http://127.0.0.1:${(endless.address() as AddressInfo).port}/jwks`;
      const started = Date.now();
      const keys = remoteJwks(where, { timeoutMs: 10_000 });
      const minted = await codec.mint(draft);
      const error = await verifySet(minted.jwt, options({ keys })).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(RetryableError);
      expect((error as RetryableError).code).toBe('SSF_ERR_JWKS_UNAVAILABLE');
      expect((error as Error).message).toMatch(/larger than|limit/i);
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      endless.closeAllConnections();
      await new Promise((resolve) => endless.close(resolve));
    }
  });

  it('accepts a fetcher function instead of Node fetch', async () => {
    const seen: string[] = [];
    const keys = remoteJwks('https://tx.example/jwks', {
      fetcher: async (where) => {
        seen.push(where);
        return store.jwks();
      },
    });
    await verifySet((await codec.mint(draft)).jwt, options({ keys }));
    expect(seen).toEqual(['https://tx.example/jwks']);
  });

  it('keeps verifying with the cached JWKS when a scheduled re-fetch fails', async () => {
    let now = NOW.getTime();
    let down = false;
    let calls = 0;
    const keys = remoteJwks('https://tx.example/jwks', {
      clock: { now: () => new Date(now) },
      cacheMaxAgeMs: 60_000,
      fetcher: async () => {
        calls++;
        if (down) throw new Error('connection refused');
        return store.jwks();
      },
    });
    const minted = await codec.mint(draft);
    await verifySet(minted.jwt, options({ keys }));
    down = true;
    now += 120_000;
    await expect(verifySet(minted.jwt, options({ keys }))).resolves.toBeDefined();
    expect(calls).toBe(2);
    const junk = await craft({ alg: 'ES256', kid: 'junk', typ: 'secevent+jwt' }, validPayload(), key);
    now += 120_000;
    const error = await verifySet(junk, options({ keys })).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RetryableError);
  });

  it('localJwks selects the key by kid and alg', async () => {
    const minted = await codec.mint(draft);
    await expect(verifySet(minted.jwt, options({ keys: localJwks(store.jwks()) }))).resolves.toBeDefined();
    const wrongAlg = { keys: store.jwks().keys.map((k) => ({ ...k, alg: 'ES384' })) };
    expect((await refusal(minted.jwt, { keys: localJwks(wrongAlg) })).code).toBe('SSF_ERR_SET_UNKNOWN_KEY');
  });
});
