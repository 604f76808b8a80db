import { describe, expect, it } from 'vitest';
import { EventValidationError, SubjectValidationError, UnknownEventTypeError } from '../errors.ts';
import { OKTA_BASE } from './common.ts';
import { checkEventDraft, validateEventDraft } from './draft.ts';

const NOW = new Date('2026-03-01T12:00:00Z');
const user = { format: 'email', email: 'dana@EXAMPLE.com' };

describe('validateEventDraft (what the pipeline accepts is what the codec signs)', () => {
  it('returns the canonical event: type definition, normalised subject, claims with event_timestamp', () => {
    const result = validateEventDraft(
      {
        type: 'okta.user-risk-change',
        subject: { format: 'complex', user },
        claims: { current_level: 'high', previous_level: 'low', reason_admin: { en: 'x' } },
        sourceRecordId: 'r',
        occurredAt: '2026-03-01T11:59:00Z',
      },
      { now: NOW },
    );
    expect(result).toEqual({
      ok: true,
      event: {
        definition: expect.objectContaining({ uri: `${OKTA_BASE}user-risk-change` }),
        subject: { format: 'complex', user: { format: 'email', email: 'dana@example.com' } },
        claims: {
          current_level: 'high',
          previous_level: 'low',
          reason_admin: { en: 'x' },
          event_timestamp: Date.parse('2026-03-01T11:59:00Z') / 1000,
        },
        occurredAt: Date.parse('2026-03-01T11:59:00Z') / 1000,
      },
    });
  });

  it('reports every problem at once, with paths', () => {
    const result = validateEventDraft({
      type: 'caep.credential-change',
      subject: { format: 'email', email: 'nope' },
      claims: { change_type: 'revoked' },
      sourceRecordId: 'r',
      occurredAt: 'yesterday',
    });
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems.map((p) => p.path)).toEqual([
      'subject.email',
      'occurredAt',
      'claims.credential_type',
      'claims.change_type',
    ]);
    const unknown = validateEventDraft({ type: 'caep.nope', subject: user, sourceRecordId: 'r' });
    expect(unknown).toEqual({
      ok: false,
      problems: [{ path: 'type', message: expect.stringMatching(/unknown event type/) }],
    });
    const deprecated = validateEventDraft({
      type: 'risc.sessions-revoked',
      subject: user,
      sourceRecordId: 'r',
    });
    expect(deprecated.ok ? '' : deprecated.problems[0]?.message).toMatch(/caep.session-revoked/);
  });
});

describe('drafts from untyped code', () => {
  it('a type that is not a string, or an occurredAt given as a number, is a problem with its path, never a TypeError', () => {
    for (const type of [5, null, undefined, '']) {
      const result = validateEventDraft({ type, subject: user, sourceRecordId: 'r' } as never);
      expect(result, String(type)).toEqual({
        ok: false,
        problems: [{ path: 'type', message: 'must be an event type URI or short name (a non-empty string)' }],
      });
      expect(() => checkEventDraft({ type, subject: user, sourceRecordId: 'r' } as never)).toThrow(
        type === '' ? UnknownEventTypeError : EventValidationError,
      );
    }
    const seconds = validateEventDraft({
      type: 'caep.session-revoked',
      subject: user,
      sourceRecordId: 'r',
      occurredAt: 1_767_225_590,
    } as never);
    expect(seconds).toEqual({
      ok: false,
      problems: [
        {
          path: 'occurredAt',
          message:
            'must be a Date or an RFC 3339 date string, not a number (1767225590: seconds or milliseconds?)',
        },
      ],
    });
  });
});

describe('checkEventDraft', () => {
  it('throws the typed error of the first problem', () => {
    expect(() => checkEventDraft({ type: 'caep.nope', subject: user, sourceRecordId: 'r' })).toThrow(
      UnknownEventTypeError,
    );
    expect(() =>
      checkEventDraft({ type: 'caep.session-revoked', subject: { format: '' }, sourceRecordId: 'r' }),
    ).toThrow(SubjectValidationError);
    expect(() =>
      checkEventDraft({
        type: 'caep.session-revoked',
        subject: user,
        claims: { reason_admin: 'x' },
        sourceRecordId: 'r',
      }),
    ).toThrow(EventValidationError);
  });
});
