import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../../plugin-api/index.ts';
import { ConfigError } from '../../plugin-api/index.ts';
import { ProfileRefusalError } from '../errors.ts';
import { CAEP_BASE, OKTA_BASE, RISC_BASE } from '../events/common.ts';
import { buildSet, type BuildSetInput } from '../set/build.ts';
import { signSet } from '../set/codec.ts';
import { deterministicJti } from '../set/jti.ts';
import {
  GOOGLE_WORKSPACE_AUDIENCE,
  PROFILE_NAMES,
  getProfile,
  listProfiles,
  refusedAudience,
} from './index.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const user = { format: 'email', email: 'dana.lee@example.com' };
const device = { format: 'opaque', id: 'A1B2C3D4' };
const reason = { en: 'EDR detection' };
/** What the HR connectors send by default: the HR system's id and the work email. */
const hrAliases = {
  format: 'aliases',
  identifiers: [{ format: 'iss_sub', iss: 'https://wd5.myworkday.com/acme', sub: '21001' }, user],
};
const aliasesWithoutEmail = { format: 'aliases', identifiers: [{ format: 'opaque', id: '21001' }, device] };

function build(
  profile: string,
  event: Partial<EventDraft>,
  destination: Partial<BuildSetInput['destination']> = {},
) {
  return buildSet({
    event: {
      type: 'caep.session-revoked',
      subject: user,
      claims: { reason_admin: reason },
      sourceRecordId: 'rec-1',
      ...event,
    },
    sourceInstanceId: 'edr',
    destination: { id: 'dest', audience: 'https://example.okta.com', profile, ...destination },
    issuer: 'https://tx.example',
    now: NOW,
  });
}

function refusal(fn: () => unknown): ProfileRefusalError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProfileRefusalError) return err;
    throw err;
  }
  throw new Error('expected a ProfileRefusalError');
}

describe('profile registry', () => {
  it('knows ssf-1.0 (default), okta-itp, google-workspace and the legacy SSE slot', () => {
    expect(PROFILE_NAMES).toEqual(['ssf-1.0', 'okta-itp', 'google-workspace', 'legacy-sse-caep']);
    expect(listProfiles().every((p) => p.description.length > 20)).toBe(true);
    expect(() => getProfile('apple')).toThrow(ConfigError);
    expect(() => build('ssf-1.0', {}, { profileOptions: { no_such_option: true } })).toThrow(
      /options of profile ssf-1.0/,
    );
  });
});

describe('ssf-1.0', () => {
  it('SSF 1.0 §3.1: top-level sub_id only, by default', () => {
    const built = build('ssf-1.0', {});
    expect(built.claims.sub_id).toEqual(user);
    expect(built.event).not.toHaveProperty('subject');
  });

  it('SSF 1.0 §3.1.1: event_subject also places it inside CAEP/RISC events, never inside new types', () => {
    const options = { event_subject: true };
    expect(build('ssf-1.0', {}, { profileOptions: options }).event.subject).toEqual(user);
    const verification = build(
      'ssf-1.0',
      { type: 'ssf.verification', subject: { format: 'opaque', id: 'stream-1' }, claims: { state: 'abc' } },
      { profileOptions: options },
    );
    expect(verification.event).toEqual({ state: 'abc' });
  });

  it('Okta-defined types carry their {user, device} subject even on the default profile', () => {
    const built = build('ssf-1.0', {
      type: 'okta.device-risk-change',
      subject: { format: 'complex', user, device },
      claims: { current_level: 'high', previous_level: 'low', reason_admin: reason },
    });
    expect(built.event.subject).toEqual({ user, device });
    expect(built.claims.sub_id).toEqual({ format: 'complex', user, device });
  });

  it('caep_interop (CAEP interoperability §2.5, §3): email or iss_sub subjects and a reason_admin', () => {
    const options = { profileOptions: { caep_interop: true } };
    expect(build('ssf-1.0', {}, options).claims.sub_id).toEqual(user);
    expect(refusal(() => build('ssf-1.0', { subject: device }, options)).reason).toMatch(/email or iss_sub/);
    expect(refusal(() => build('ssf-1.0', { claims: {} }, options)).reason).toMatch(/non-empty reason_admin/);
    const verification = build(
      'ssf-1.0',
      { type: 'ssf.verification', subject: { format: 'opaque', id: 's-1' }, claims: {} },
      options,
    );
    expect(verification.claims.sub_id).toEqual({ format: 'opaque', id: 's-1' });
    // SSF 1.0 §8.1.5 (SSF-53): a stream-updated event names the stream by an opaque id too.
    const updated = build(
      'ssf-1.0',
      { type: 'ssf.stream-updated', subject: { format: 'opaque', id: 's-1' }, claims: { status: 'paused' } },
      options,
    );
    expect(updated.claims.sub_id).toEqual({ format: 'opaque', id: 's-1' });
  });

  it('caep_interop (CAEP interoperability §2.6, IOP-04): an RS256 key signs, any other is refused', async () => {
    const key = (alg: 'RS256' | 'ES256') => ({
      kid: `k-${alg}`,
      alg,
      protectedHeader: Buffer.from(JSON.stringify({ alg, kid: `k-${alg}`, typ: 'secevent+jwt' })).toString(
        'base64url',
      ),
      sign: async () => Buffer.from('signature'),
    });
    const interop = build('ssf-1.0', {}, { profileOptions: { caep_interop: true } });
    expect((await signSet(interop, key('RS256'))).header.alg).toBe('RS256');
    const refused = await signSet(interop, key('ES256')).catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(ProfileRefusalError);
    expect((refused as ProfileRefusalError).reason).toBe(
      'the CAEP interoperability profile (§2.6) requires RS256 signatures; the signing key k-ES256 is ES256',
    );
    // Without the option any allowed algorithm signs.
    expect((await signSet(build('ssf-1.0', {}), key('ES256'))).header.alg).toBe('ES256');
  });
});

describe('okta-itp (vendor-formats §3.1)', () => {
  it('accepts only the six event types Okta lists, with a clear reason otherwise', () => {
    const error = refusal(() =>
      build('okta-itp', {
        type: 'caep.credential-change',
        claims: { credential_type: 'password', change_type: 'update' },
      }),
    );
    expect(error.code).toBe('SSF_ERR_PROFILE_REFUSED');
    expect(error.reason).toMatch(
      /Okta accepts only session-revoked, device-compliance-change, identifier-changed/,
    );
    expect(refusal(() => build('okta-itp', { type: 'risc.account-disabled', claims: {} })).profile).toBe(
      'okta-itp',
    );
  });

  it('places the subject inside the event as {user, device}; sub_id kept or dropped by option', () => {
    const built = build('okta-itp', {
      subject: { format: 'complex', user, device, tenant: { format: 'opaque', id: 't' } },
    });
    expect(built.event.subject).toEqual({ user });
    expect(built.claims.sub_id).toEqual({
      format: 'complex',
      user,
      device,
      tenant: { format: 'opaque', id: 't' },
    });
    const dropped = build('okta-itp', {}, { profileOptions: { top_level_sub_id: false } });
    expect(dropped.claims).not.toHaveProperty('sub_id');
    const withDevice = build(
      'okta-itp',
      { subject: { format: 'complex', user, device } },
      { profileOptions: { include_device: true } },
    );
    expect(withDevice.event.subject).toEqual({ user, device });
  });

  it('device-compliance-change keeps the device; every event gets an event_timestamp', () => {
    const built = build('okta-itp', {
      type: 'caep.device-compliance-change',
      subject: { format: 'complex', user, device },
      claims: { previous_status: 'compliant', current_status: 'not-compliant', reason_admin: reason },
    });
    expect(built.event).toEqual({
      subject: { user, device },
      previous_status: 'compliant',
      current_status: 'not-compliant',
      reason_admin: reason,
      event_timestamp: NOW.getTime() / 1000,
    });
    const identifier = build('okta-itp', {
      type: 'risc.identifier-changed',
      claims: { 'new-value': 'dana@example.org' },
    });
    expect(identifier.event.event_timestamp).toBe(NOW.getTime() / 1000);
  });

  it('device-compliance-change about a simple subject: an opaque id is the device, an address the user', () => {
    const compliance = (subject: { format: string; [member: string]: unknown }) =>
      build('okta-itp', {
        type: 'caep.device-compliance-change',
        subject,
        claims: { previous_status: 'compliant', current_status: 'not-compliant', reason_admin: reason },
      }).event.subject;
    expect(compliance(device)).toEqual({ device });
    expect(compliance(user)).toEqual({ user });
  });

  it('CAEP risk-level-change becomes user-risk-change with lowercase levels and a previous_level', () => {
    const built = build('okta-itp', {
      type: 'caep.risk-level-change',
      claims: {
        principal: 'USER',
        current_level: 'HIGH',
        risk_reason: 'EDR_DETECTION_HIGH',
        initiating_entity: 'system',
      },
    });
    expect(built.eventType).toBe(`${OKTA_BASE}user-risk-change`);
    expect(built.event).toEqual({
      subject: { user },
      initiating_entity: 'system',
      event_timestamp: NOW.getTime() / 1000,
      current_level: 'high',
      previous_level: 'none',
      reason_admin: { en: 'EDR_DETECTION_HIGH' },
    });
    // The jti stays that of the emitted event type, so the delivery engine can compute it beforehand.
    expect(built.jti).toBe(
      deterministicJti({
        sourceInstanceId: 'edr',
        sourceRecordId: 'rec-1',
        eventType: `${CAEP_BASE}risk-level-change`,
        destinationId: 'dest',
      }),
    );
  });

  it('CAEP risk-level-change for a DEVICE becomes device-risk-change; other principals are refused', () => {
    const built = build('okta-itp', {
      type: 'caep.risk-level-change',
      subject: device,
      claims: { principal: 'DEVICE', current_level: 'MEDIUM', previous_level: 'LOW', reason_admin: reason },
    });
    expect(built.eventType).toBe(`${OKTA_BASE}device-risk-change`);
    expect(built.event).toMatchObject({
      subject: { device },
      current_level: 'medium',
      previous_level: 'low',
    });
    expect(
      refusal(() =>
        build('okta-itp', {
          type: 'caep.risk-level-change',
          claims: { principal: 'SESSION', current_level: 'LOW' },
        }),
      ).reason,
    ).toMatch(/USER and DEVICE principals only, not SESSION/);
  });

  it('device-risk-change about a simple subject: only an opaque id is a device; a user identifier is refused, naming its format', () => {
    const deviceRisk = (subject: { format: string; [member: string]: unknown }) =>
      build('okta-itp', {
        type: 'caep.risk-level-change',
        subject,
        claims: { principal: 'DEVICE', current_level: 'HIGH', reason_admin: reason },
      });
    expect(deviceRisk(device).event.subject).toEqual({ device });
    expect(refusal(() => deviceRisk(user)).reason).toBe(
      'device-risk-change needs a device subject (an opaque id); a subject in the email format names a user',
    );
    expect(
      refusal(() => deviceRisk({ format: 'phone_number', phone_number: '+14155550100' })).reason,
    ).toMatch(/phone_number format names a user/);
    const oktaOwn = () =>
      build('okta-itp', {
        type: 'okta.device-risk-change',
        subject: { format: 'account', uri: 'acct:dana.lee@example.com' },
        claims: { current_level: 'high', previous_level: 'none', reason_admin: reason },
      });
    expect(refusal(oktaOwn).reason).toMatch(/account format names a user/);
  });

  it('refuses what Okta would refuse: no reason, a reason without "en", subjects it cannot place', () => {
    expect(refusal(() => build('okta-itp', { claims: {} })).reason).toMatch(/reason_admin or reason_user/);
    expect(refusal(() => build('okta-itp', { claims: { reason_admin: { de: 'x' } } })).reason).toMatch(
      /"en" entry/,
    );
    expect(refusal(() => build('okta-itp', { subject: aliasesWithoutEmail })).reason).toMatch(
      /aliases subject holds no email/,
    );
    expect(
      refusal(() =>
        build('okta-itp', { subject: { format: 'complex', session: { format: 'opaque', id: 's' } } }),
      ).reason,
    ).toMatch(/neither a user nor a device/);
    expect(
      refusal(() =>
        build('okta-itp', {
          type: 'caep.risk-level-change',
          subject: { format: 'complex', device },
          claims: { principal: 'USER', current_level: 'LOW', reason_admin: reason },
        }),
      ).reason,
    ).toMatch(/user-risk-change needs a user subject/);
  });

  it('keeps RISC identifier-changed (an accepted type) under its RISC URI', () => {
    expect(build('okta-itp', { type: 'risc.identifier-changed', claims: {} }).eventType).toBe(
      `${RISC_BASE}identifier-changed`,
    );
  });
});

describe('aliases subjects (RFC 9493 §3.2.7) at targets that match one identifier', () => {
  it('okta-itp, google-workspace and legacy-sse-caep send the email among the aliases', () => {
    const okta = build('okta-itp', { subject: hrAliases });
    expect(okta.event.subject).toEqual({ user });
    expect(okta.claims.sub_id).toEqual(user);
    const google = build('google-workspace', { subject: hrAliases }, { audience: undefined });
    expect(google.event.subject).toEqual(user);
    expect(google.claims.sub_id).toEqual(user);
    expect(build('legacy-sse-caep', { subject: hrAliases }).event.subject).toEqual({ user });
  });

  it('the generic ssf-1.0 profile keeps the aliases as they are', () => {
    expect(build('ssf-1.0', { subject: hrAliases }).claims.sub_id).toEqual({
      format: 'aliases',
      identifiers: expect.arrayContaining(hrAliases.identifiers) as unknown,
    });
  });

  it('aliases without an email are refused with the reason', () => {
    expect(
      refusal(() => build('google-workspace', { subject: aliasesWithoutEmail }, { audience: undefined }))
        .reason,
    ).toMatch(/by email; the subject is aliases/);
    expect(refusal(() => build('legacy-sse-caep', { subject: aliasesWithoutEmail })).reason).toMatch(
      /The SSE draft takes one identifier, and the aliases subject holds no email/,
    );
  });
});

describe('google-workspace', () => {
  it('session-revoked only, aud https://sharedsignals.googleapis.com, email subject in both places', () => {
    const built = build('google-workspace', {}, { audience: undefined });
    expect(built.claims.aud).toBe(GOOGLE_WORKSPACE_AUDIENCE);
    expect(built.claims.sub_id).toEqual(user);
    expect(built.event.subject).toEqual(user);
    const fromComplex = build(
      'google-workspace',
      { subject: { format: 'complex', user, device } },
      { audience: undefined },
    );
    expect(fromComplex.claims.sub_id).toEqual(user);
  });

  it('refuses other events, other audiences and non-email subjects', () => {
    expect(
      refusal(() =>
        build('google-workspace', { type: 'risc.account-disabled', claims: {} }, { audience: undefined }),
      ).reason,
    ).toMatch(/only caep.session-revoked/);
    expect(refusal(() => build('google-workspace', {})).reason).toMatch(
      /requires aud https:\/\/sharedsignals.googleapis.com/,
    );
    expect(
      refusal(() => build('google-workspace', { subject: device }, { audience: undefined })).reason,
    ).toMatch(/by email/);
    expect(build('google-workspace', {}, { audience: GOOGLE_WORKSPACE_AUDIENCE }).claims.aud).toBe(
      GOOGLE_WORKSPACE_AUDIENCE,
    );
  });
});

describe('audience rule checked when a config loads', () => {
  const audiences = [
    undefined,
    GOOGLE_WORKSPACE_AUDIENCE,
    [GOOGLE_WORKSPACE_AUDIENCE],
    'https://receiver.example.net/',
    'urn:ssf-bridge:log',
    [GOOGLE_WORKSPACE_AUDIENCE, 'https://receiver.example.net/'],
  ];

  it('refusedAudience says exactly when apply refuses every SET for an audience, with the reason apply gives', () => {
    expect(refusedAudience(getProfile('google-workspace'), 'https://receiver.example.net/')).toEqual({
      only: GOOGLE_WORKSPACE_AUDIENCE,
      requested: ['https://receiver.example.net/'],
    });
    for (const name of PROFILE_NAMES) {
      for (const audience of audiences) {
        const refused = refusedAudience(getProfile(name), audience);
        // caep.session-revoked about an email subject: every profile takes it but for its audience.
        let refusedBy: ProfileRefusalError | undefined;
        try {
          build(name, {}, { audience });
        } catch (err) {
          // No audience at all is the destination's problem (ConfigError), not the profile's.
          if (err instanceof ProfileRefusalError) refusedBy = err;
          else expect(err, `${name} ${String(audience)}`).toBeInstanceOf(ConfigError);
        }
        expect(refusedBy?.reason, `${name} ${String(audience)}`).toBe(
          refused && `Google requires aud ${refused.only}, not ${refused.requested.join(', ')}`,
        );
        if (refused !== undefined) expect(name).toBe('google-workspace');
      }
    }
    expect(PROFILE_NAMES.filter((n) => getProfile(n).onlyAudience !== undefined)).toEqual([
      'google-workspace',
    ]);
  });
});

describe('legacy-sse-caep (SSE draft 1 shape for Apple)', () => {
  it('puts the subject inside the event, flattening complex members; no sub_id, no txn', () => {
    const built = build('legacy-sse-caep', { subject: { format: 'complex', user, device } });
    expect(built.claims).not.toHaveProperty('sub_id');
    expect(built.claims).not.toHaveProperty('txn');
    expect(built.event.subject).toEqual({ user, device });
    expect(build('legacy-sse-caep', {}).event.subject).toEqual({ user });
  });

  it('accepts session-revoked and credential-change only', () => {
    const credential = build('legacy-sse-caep', {
      type: 'caep.credential-change',
      claims: { credential_type: 'password', change_type: 'update' },
    });
    expect(credential.eventType).toBe(`${CAEP_BASE}credential-change`);
    expect(
      refusal(() => build('legacy-sse-caep', { type: 'risc.account-purged', claims: {} })).reason,
    ).toMatch(/legacy SSE draft/);
  });
});
