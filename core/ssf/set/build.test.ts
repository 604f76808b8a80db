import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../../plugin-api/index.ts';
import { ConfigError } from '../../plugin-api/index.ts';
import { EventValidationError, SubjectValidationError, UnknownEventTypeError } from '../errors.ts';
import { CAEP_BASE } from '../events/common.ts';
import { buildSet, type BuildSetInput } from './build.ts';
import { defaultTxn, deterministicJti } from './jti.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const SESSION_REVOKED = `${CAEP_BASE}session-revoked`;

function input(event: Partial<EventDraft> = {}, overrides: Partial<BuildSetInput> = {}): BuildSetInput {
  return {
    event: {
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'dana@EXAMPLE.com' },
      claims: { initiating_entity: 'policy', reason_admin: { en: 'Landspeed violation' } },
      sourceRecordId: 'rec-1',
      ...event,
    },
    sourceInstanceId: 'edr-prod',
    destination: { id: 'rx-1', audience: 'https://rx.example' },
    issuer: 'https://tx.example',
    now: NOW,
    ...overrides,
  };
}

describe('SET claims (RFC 8417 §2.2, SSF 1.0 §4)', () => {
  it('carries iss, iat, jti, aud, txn, top-level sub_id and exactly one event, in that order', () => {
    const built = buildSet(input());
    expect(Object.keys(built.claims)).toEqual(['iss', 'iat', 'jti', 'aud', 'txn', 'sub_id', 'events']);
    expect(built.claims).toMatchObject({
      iss: 'https://tx.example',
      iat: NOW.getTime() / 1000,
      aud: 'https://rx.example',
      sub_id: { format: 'email', email: 'dana@example.com' },
    });
    expect(Object.keys(built.claims.events)).toEqual([SESSION_REVOKED]);
    expect(built.eventType).toBe(SESSION_REVOKED);
    expect(built.subject).toEqual({ format: 'email', email: 'dana@example.com' });
  });

  it('SSF 1.0 §4.1.2 and §4.1.7 (checklist SET-05): never sub, never exp', () => {
    const claims = buildSet(input()).claims as Record<string, unknown>;
    expect(claims).not.toHaveProperty('sub');
    expect(claims).not.toHaveProperty('exp');
  });

  it('the jti is deterministic from source instance, record, event type and destination', () => {
    const built = buildSet(input());
    expect(built.jti).toBe(
      deterministicJti({
        sourceInstanceId: 'edr-prod',
        sourceRecordId: 'rec-1',
        eventType: SESSION_REVOKED,
        destinationId: 'rx-1',
      }),
    );
    expect(buildSet(input({}, { now: new Date(NOW.getTime() + 60_000) })).jti).toBe(built.jti);
    expect(buildSet(input({}, { destination: { id: 'rx-2', audience: 'https://rx.example' } })).jti).not.toBe(
      built.jti,
    );
    expect(buildSet(input({}, { jti: 'given' })).jti).toBe('given');
  });

  it('SSF 1.0 §4.1.9: txn is a string, the source txn when given, else shared by SETs of one record', () => {
    expect(buildSet(input()).claims.txn).toBe(defaultTxn('edr-prod', 'rec-1'));
    expect(buildSet(input({ txn: 'upstream-txn-7' })).claims.txn).toBe('upstream-txn-7');
    const other = buildSet(input({ type: 'risc.account-disabled', claims: {} }));
    expect(other.claims.txn).toBe(buildSet(input()).claims.txn);
  });

  it('CAEP 1.0 §2: event_timestamp comes from occurredAt (seconds), else from now; a given one is kept', () => {
    const event = (draft: Partial<EventDraft>) => buildSet(input(draft)).event;
    expect(event({ occurredAt: '2026-02-28T23:59:59.900Z' }).event_timestamp).toBe(
      Date.parse('2026-02-28T23:59:59Z') / 1000,
    );
    expect(event({}).event_timestamp).toBe(NOW.getTime() / 1000);
    expect(event({ claims: { event_timestamp: 1600975810 } }).event_timestamp).toBe(1600975810);
    // RISC account-disabled defines no event_timestamp, so none is added.
    expect(event({ type: 'risc.account-disabled', claims: {} })).toEqual({});
  });

  it('SSF 1.0 §4.1.8: aud is a string for one receiver, an array for several, and required', () => {
    expect(buildSet(input({}, { destination: { id: 'd', audience: ['https://a'] } })).claims.aud).toBe(
      'https://a',
    );
    expect(
      buildSet(input({}, { destination: { id: 'd', audience: ['https://a', 'https://b'] } })).claims.aud,
    ).toEqual(['https://a', 'https://b']);
    expect(() => buildSet(input({}, { destination: { id: 'd' } }))).toThrow(ConfigError);
    expect(() => buildSet(input({}, { destination: { id: 'd', audience: [] } }))).toThrow(
      /has no SET audience/,
    );
    expect(() => buildSet(input({}, { issuer: '' }))).toThrow(/issuer must be a non-empty string/);
  });
});

describe('what the builder refuses', () => {
  it('unknown event types, with the nearest known name', () => {
    expect(() => buildSet(input({ type: 'caep.session-revokd' }))).toThrow(UnknownEventTypeError);
  });

  it('RISC 1.0 §2.11: the deprecated sessions-revoked (new implementations use caep.session-revoked)', () => {
    let error: unknown;
    try {
      buildSet(input({ type: 'risc.sessions-revoked', claims: {} }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(EventValidationError);
    expect((error as EventValidationError).code).toBe('SSF_ERR_EVENT_DEPRECATED');
  });

  it('invalid subjects and subjects of the wrong format for the type', () => {
    expect(() => buildSet(input({ subject: { format: 'email', email: 'nope' } }))).toThrow(
      SubjectValidationError,
    );
    expect(() =>
      buildSet(
        input({ type: 'risc.identifier-changed', claims: {}, subject: { format: 'opaque', id: 'u-1' } }),
      ),
    ).toThrow(/requires a subject of format email or phone_number/);
  });

  it('claims that break the event definition, and bad occurrence times', () => {
    expect(() =>
      buildSet(input({ type: 'caep.credential-change', claims: { credential_type: 'password' } })),
    ).toThrow(/claims\.change_type: is required/);
    expect(() => buildSet(input({ occurredAt: 'yesterday' }))).toThrow(/is not a date/);
    expect(() => buildSet(input({ sourceRecordId: '' }))).toThrow(
      /sourceRecordId must be a non-empty string/,
    );
  });

  it('legacy subject spellings are accepted from connectors and emitted in the registered form', () => {
    const built = buildSet(input({ subject: { format: 'phone', phone: '+1 206 555 0100' } }));
    expect(built.claims.sub_id).toEqual({ format: 'phone_number', phone_number: '+12065550100' });
  });
});
