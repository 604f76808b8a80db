import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { EventTypeConflictError, EventValidationError, UnknownEventTypeError } from '../errors.ts';
import { EventCatalog, eventCatalog, getEventType, listEventTypes, resolveEventType } from './catalog.ts';
import { CAEP_BASE, OKTA_BASE, RISC_BASE, SSF_BASE } from './common.ts';

const reason = { en: 'Policy violation' };

interface Case {
  shortName: string;
  spec: string;
  valid: Record<string, unknown>;
  /** Claims that break the type's definition, with the path of the first problem. */
  invalid?: { claims: Record<string, unknown>; path: string };
}

const CASES: Case[] = [
  // CAEP 1.0 §3
  {
    shortName: 'caep.session-revoked',
    spec: 'CAEP 1.0 §3.1',
    valid: { initiating_entity: 'admin', reason_admin: reason },
  },
  {
    shortName: 'caep.token-claims-change',
    spec: 'CAEP 1.0 §3.2',
    valid: { claims: { role: 'ro-admin' }, event_timestamp: 1600975810 },
    invalid: { claims: { claims: {} }, path: 'claims' },
  },
  {
    shortName: 'caep.credential-change',
    spec: 'CAEP 1.0 §3.3',
    valid: { credential_type: 'fido2-roaming', change_type: 'create', fido2_aaguid: 'accced6a' },
    invalid: { claims: { credential_type: 'password', change_type: 'revoked' }, path: 'change_type' },
  },
  {
    shortName: 'caep.assurance-level-change',
    spec: 'CAEP 1.0 §3.4',
    valid: {
      namespace: 'NIST-AAL',
      current_level: 'nist-aal2',
      previous_level: 'nist-aal1',
      change_direction: 'increase',
    },
    invalid: {
      claims: { namespace: 'NIST-AAL', current_level: 'x', change_direction: 'up' },
      path: 'change_direction',
    },
  },
  {
    shortName: 'caep.device-compliance-change',
    spec: 'CAEP 1.0 §3.5',
    valid: { previous_status: 'compliant', current_status: 'not-compliant' },
    invalid: {
      claims: { previous_status: 'compliant', current_status: 'non-compliant' },
      path: 'current_status',
    },
  },
  {
    shortName: 'caep.session-established',
    spec: 'CAEP 1.0 §3.6',
    valid: { fp_ua: 'abb0b6e7', acr: 'AAL2', amr: ['otp'], ext_id: '12345' },
    invalid: { claims: { amr: 'otp' }, path: 'amr' },
  },
  {
    shortName: 'caep.session-presented',
    spec: 'CAEP 1.0 §3.7',
    valid: { fp_ua: 'abb0b6e7', ext_id: '12345' },
    invalid: { claims: { ext_id: 12345 }, path: 'ext_id' },
  },
  {
    shortName: 'caep.risk-level-change',
    spec: 'CAEP 1.0 §3.8',
    valid: {
      principal: 'USER',
      current_level: 'HIGH',
      previous_level: 'LOW',
      risk_reason: 'PASSWORD_FOUND_IN_DATA_BREACH',
    },
    invalid: { claims: { principal: 'USER', current_level: 'high' }, path: 'current_level' },
  },
  // RISC 1.0 §2
  { shortName: 'risc.account-credential-change-required', spec: 'RISC 1.0 §2.1', valid: {} },
  { shortName: 'risc.account-purged', spec: 'RISC 1.0 §2.2', valid: {} },
  {
    shortName: 'risc.account-disabled',
    spec: 'RISC 1.0 §2.3',
    valid: { reason: 'hijacking' },
    invalid: { claims: { reason: 'terminated' }, path: 'reason' },
  },
  { shortName: 'risc.account-enabled', spec: 'RISC 1.0 §2.4', valid: {} },
  {
    shortName: 'risc.identifier-changed',
    spec: 'RISC 1.0 §2.5',
    valid: { 'new-value': 'john.roe@example.com' },
    invalid: { claims: { 'new-value': '' }, path: 'new-value' },
  },
  { shortName: 'risc.identifier-recycled', spec: 'RISC 1.0 §2.6', valid: {} },
  {
    shortName: 'risc.credential-compromise',
    spec: 'RISC 1.0 §2.7',
    valid: { credential_type: 'password', event_timestamp: 1615304991, reason_admin: reason },
    invalid: { claims: { event_timestamp: 1615304991 }, path: 'credential_type' },
  },
  { shortName: 'risc.opt-in', spec: 'RISC 1.0 §2.8.1', valid: {} },
  { shortName: 'risc.opt-out-initiated', spec: 'RISC 1.0 §2.8.2', valid: {} },
  { shortName: 'risc.opt-out-cancelled', spec: 'RISC 1.0 §2.8.3', valid: {} },
  { shortName: 'risc.opt-out-effective', spec: 'RISC 1.0 §2.8.4', valid: {} },
  { shortName: 'risc.recovery-activated', spec: 'RISC 1.0 §2.9', valid: {} },
  { shortName: 'risc.recovery-information-changed', spec: 'RISC 1.0 §2.10', valid: {} },
  { shortName: 'risc.sessions-revoked', spec: 'RISC 1.0 §2.11', valid: {} },
  // SSF 1.0 §8.1.4–8.1.5
  {
    shortName: 'ssf.verification',
    spec: 'SSF 1.0 §8.1.4',
    valid: { state: 'VGhpcyBpcyBhbiBleGFtcGxl' },
    invalid: { claims: { state: 42 }, path: 'state' },
  },
  {
    shortName: 'ssf.stream-updated',
    spec: 'SSF 1.0 §8.1.5',
    valid: { status: 'paused', reason: 'maintenance' },
    invalid: { claims: { status: 'stopped' }, path: 'status' },
  },
  // Okta ITP receiver schema
  {
    shortName: 'okta.user-risk-change',
    spec: 'Okta ITP SecurityEventTokenRequestJwtEvents',
    valid: {
      event_timestamp: 1767225540,
      current_level: 'high',
      previous_level: 'low',
      reason_admin: reason,
    },
    invalid: {
      claims: { event_timestamp: 1, current_level: 'HIGH', previous_level: 'low', reason_admin: reason },
      path: 'current_level',
    },
  },
  {
    shortName: 'okta.device-risk-change',
    spec: 'Okta ITP SecurityEventTokenRequestJwtEvents',
    valid: {
      event_timestamp: 1767225540,
      current_level: 'medium',
      previous_level: 'none',
      reason_user: reason,
    },
    invalid: {
      claims: { event_timestamp: 1, current_level: 'low', previous_level: 'none' },
      path: 'reason_admin',
    },
  },
  {
    shortName: 'okta.ip-change',
    spec: 'Okta ITP SecurityEventTokenRequestJwtEvents',
    valid: {
      event_timestamp: 1767225540,
      current_ip_address: '198.51.100.7',
      previous_ip_address: '203.0.113.9',
      reason_admin: reason,
    },
    invalid: {
      claims: { event_timestamp: 1, current_ip_address: '198.51.100.7', reason_admin: reason },
      path: 'previous_ip_address',
    },
  },
];

describe('event catalog: one schema per event type', () => {
  it('holds the 8 CAEP, 14 RISC, 2 SSF and 3 Okta event types, each under its full URI', () => {
    const all = listEventTypes();
    expect(all.filter((t) => t.uri.startsWith(CAEP_BASE))).toHaveLength(8);
    expect(all.filter((t) => t.uri.startsWith(RISC_BASE))).toHaveLength(14);
    expect(all.filter((t) => t.uri.startsWith(SSF_BASE))).toHaveLength(2);
    expect(all.filter((t) => t.uri.startsWith(OKTA_BASE))).toHaveLength(3);
    expect(CASES.map((c) => c.shortName).sort()).toEqual(all.map((t) => t.shortName).sort());
  });

  for (const c of CASES) {
    it(`${c.spec}: ${c.shortName} accepts a valid event${c.invalid ? ` and refuses a bad ${c.invalid.path}` : ''}`, () => {
      const definition = getEventType(c.shortName);
      expect(definition.spec).toBe(c.spec);
      expect(resolveEventType(c.shortName)).toBe(definition.uri);
      expect(resolveEventType(definition.uri)).toBe(definition.uri);
      expect(eventCatalog.parseClaims(c.shortName, c.valid)).toEqual(c.valid);
      if (c.invalid) {
        const error = (() => {
          try {
            eventCatalog.parseClaims(c.shortName, c.invalid.claims);
          } catch (err) {
            return err;
          }
          return undefined;
        })();
        expect(error).toBeInstanceOf(EventValidationError);
        expect((error as EventValidationError).problems[0]?.path).toBe(`claims.${c.invalid.path}`);
      }
    });
  }
});

describe('CAEP 1.0 §2 common claims', () => {
  it('initiating_entity is one of admin, user, policy, system', () => {
    expect(() => eventCatalog.parseClaims('caep.session-revoked', { initiating_entity: 'robot' })).toThrow(
      /initiating_entity/,
    );
  });

  it('reason_admin and reason_user map language tags to messages, at least one', () => {
    expect(() =>
      eventCatalog.parseClaims('caep.session-revoked', { reason_admin: 'Policy violation' }),
    ).toThrow(EventValidationError);
    expect(() => eventCatalog.parseClaims('caep.session-revoked', { reason_admin: {} })).toThrow(
      /at least one language tag/,
    );
    expect(() => eventCatalog.parseClaims('caep.session-revoked', { reason_user: { 'en US': 'x' } })).toThrow(
      /BCP 47/,
    );
    expect(
      eventCatalog.parseClaims('caep.session-revoked', { reason_user: { 'en-US': 'x', de: 'y' } }),
    ).toBeDefined();
  });

  it('event_timestamp is in seconds: a millisecond value is refused with a hint', () => {
    expect(() =>
      eventCatalog.parseClaims('caep.session-revoked', { event_timestamp: 1_767_225_600_000 }),
    ).toThrow(/looks like milliseconds/);
  });

  it('SSF 1.0 §4.2.3: unknown members pass through', () => {
    expect(eventCatalog.parseClaims('caep.session-revoked', { 'https://example.com/x': 1 })).toEqual({
      'https://example.com/x': 1,
    });
  });
});

describe('event-level subject (SSF 1.0 §3.1.1–3.1.2)', () => {
  const user = { format: 'email', email: 'dana@example.com' };

  it('claims given by a connector never carry the subject', () => {
    expect(() => eventCatalog.parseClaims('caep.session-revoked', { subject: user })).toThrow(
      /beside the claims/,
    );
  });

  it('CAEP and RISC types may carry a subject inside the event; it must be valid', () => {
    expect(eventCatalog.checkEvent('caep.session-revoked', { subject: user }).ok).toBe(true);
    expect(eventCatalog.checkEvent('risc.account-enabled', { subject: { user } }).ok).toBe(true);
    const bad = eventCatalog.checkEvent('caep.session-revoked', { subject: { format: 'email' } });
    expect(bad.ok).toBe(false);
  });

  it('SSF 1.0 §3.1.2: new event types must not carry one', () => {
    const result = eventCatalog.checkEvent('ssf.verification', { subject: user });
    expect(result).toEqual({
      ok: false,
      problems: [expect.objectContaining({ message: expect.stringMatching(/SSF 1.0 §3.1.2/) })],
    });
  });

  it('SSF 1.0 §4.2.3 (checklist SET-15): receiving, such a subject is ignored, not refused; the event keeps its other members', () => {
    const stream = { format: 'opaque', id: 's-1' };
    const result = eventCatalog.checkEvent(
      'ssf.stream-updated',
      { status: 'paused', extra: 1, subject: stream },
      'events[ssf.stream-updated]',
      { receiving: true },
    );
    expect(result).toEqual({
      ok: true,
      event: { status: 'paused', extra: 1 },
      ignored: [expect.objectContaining({ path: 'events[ssf.stream-updated].subject' })],
    });
    // What the event defines is still checked.
    const bad = eventCatalog.checkEvent('ssf.stream-updated', { status: 'gone', subject: stream }, 'e', {
      receiving: true,
    });
    expect(bad.ok).toBe(false);
    // A subject a CAEP event may carry is kept, not ignored.
    expect(
      eventCatalog.checkEvent('caep.session-revoked', { subject: user }, 'e', { receiving: true }),
    ).toEqual({ ok: true, event: { subject: user } });
  });

  it('Okta types require {user, device} inside the event', () => {
    const claims = { event_timestamp: 1, current_level: 'low', previous_level: 'none', reason_admin: reason };
    expect(eventCatalog.checkEvent('okta.user-risk-change', claims).ok).toBe(false);
    expect(eventCatalog.checkEvent('okta.user-risk-change', { ...claims, subject: { user } }).ok).toBe(true);
    expect(eventCatalog.checkEvent('okta.user-risk-change', { ...claims, subject: user }).ok).toBe(false);
  });

  it('RISC 1.0 §2.5: identifier events need an email or phone_number subject', () => {
    expect(eventCatalog.checkSubjectFor('risc.identifier-changed', user)).toEqual([]);
    expect(eventCatalog.checkSubjectFor('risc.identifier-changed', { format: 'opaque', id: 'u' })).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/email or phone_number \(RISC 1.0 §2.5\)/) }),
    ]);
  });

  it('SSF 1.0 §8.1.4.1: verification events name the stream with an opaque subject', () => {
    expect(eventCatalog.checkSubjectFor('ssf.verification', user)).toHaveLength(1);
    expect(eventCatalog.checkSubjectFor('ssf.verification', { format: 'opaque', id: 's-1' })).toEqual([]);
  });
});

describe('names', () => {
  it('resolves short names and URIs, and suggests the nearest name for a typo', () => {
    expect(resolveEventType('risc.account-disabled')).toBe(`${RISC_BASE}account-disabled`);
    expect(() => resolveEventType('caep.sesion-revoked')).toThrow(/did you mean "caep.session-revoked"/);
    expect(() => resolveEventType('session-revoked')).toThrow(UnknownEventTypeError);
    expect(() => resolveEventType('session-revoked')).toThrow(/did you mean "caep.session-revoked"/);
  });

  it('RISC 1.0 §2.11: sessions-revoked is marked deprecated in favour of caep.session-revoked', () => {
    expect(getEventType('risc.sessions-revoked').deprecated).toMatch(/caep.session-revoked/);
    expect(getEventType('risc.account-disabled').deprecated).toBeUndefined();
    expect(getEventType('risc.sessions-revoked').replacedBy).toBe('caep.session-revoked');
  });

  it('SSF 1.0 §4.2.1: sameEventType finds the event alternative URIs name (a deprecated type and its replacement), nothing for different or unknown types', () => {
    const revoked = `${CAEP_BASE}session-revoked`;
    const legacy = `${RISC_BASE}sessions-revoked`;
    expect(eventCatalog.sameEventType([legacy, revoked])).toBe(revoked);
    expect(eventCatalog.sameEventType([revoked, legacy])).toBe(revoked);
    expect(eventCatalog.sameEventType([legacy])).toBe(revoked);
    expect(eventCatalog.sameEventType([revoked, `${CAEP_BASE}session-presented`])).toBeUndefined();
    expect(eventCatalog.sameEventType([revoked, 'https://vendor.example/x'])).toBeUndefined();
    // Short names name no event type in a SET (RFC 8417 §2.2).
    expect(eventCatalog.sameEventType(['risc.sessions-revoked', revoked])).toBeUndefined();
  });

  it('every deprecated type names a replacement that may be emitted', () => {
    for (const definition of listEventTypes().filter((d) => d.deprecated)) {
      const replacement = getEventType(definition.replacedBy ?? '');
      expect(replacement.deprecated, definition.shortName).toBeUndefined();
    }
  });
});

describe('registerEventType', () => {
  const claims = z.looseObject({ severity: z.enum(['low', 'high']) });
  const registration = {
    uri: 'https://schemas.acme.example/secevent/acme/event-type/malware-detected',
    shortName: 'acme.malware-detected',
    description: 'Acme EDR found malware on a device.',
    claims,
    vendor: 'acme-edr',
  };

  it('adds a vendor type that resolves and validates like the built-in ones', () => {
    const catalog = new EventCatalog();
    const definition = catalog.register(registration);
    expect(definition.eventSubject).toBe('none');
    expect(catalog.resolve('acme.malware-detected')).toBe(registration.uri);
    expect(catalog.parseClaims('acme.malware-detected', { severity: 'high' })).toEqual({ severity: 'high' });
    expect(() => catalog.parseClaims('acme.malware-detected', { severity: 'huge' })).toThrow(
      EventValidationError,
    );
    expect(catalog.register(registration)).toBe(definition);
  });

  it('refuses conflicting or malformed definitions', () => {
    const catalog = new EventCatalog();
    catalog.register(registration);
    expect(() => catalog.register({ ...registration, claims: z.looseObject({}) })).toThrow(
      EventTypeConflictError,
    );
    expect(() => catalog.register({ ...registration, uri: `${registration.uri}-2` })).toThrow(
      /already names/,
    );
    expect(() =>
      catalog.register({ ...registration, uri: `${CAEP_BASE}session-revoked`, shortName: 'acme.x' }),
    ).toThrow(/already defined/);
    expect(() => catalog.register({ ...registration, shortName: 'Acme Malware' })).toThrow(/short name/);
    expect(() => catalog.register({ ...registration, uri: 'not a uri' })).toThrow(/absolute URI/);
  });

  it('does not touch other catalogs', () => {
    const catalog = new EventCatalog();
    catalog.register(registration);
    expect(eventCatalog.find('acme.malware-detected')).toBeUndefined();
  });
});
