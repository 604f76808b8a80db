import { describe, expect, it } from 'vitest';
import { validateDraft } from './ssf-adapters.ts';

describe('event validation at acceptance (same rules as the SET builder)', () => {
  it('resolves short names to URIs and normalises the subject', () => {
    const result = validateDraft({
      type: 'caep.session-revoked',
      subject: { format: 'email', email: 'Jane@EXAMPLE.com' },
      sourceRecordId: 'r1',
    });
    expect(result).toMatchObject({
      ok: true,
      event: {
        type: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
        subject: { format: 'email', email: 'Jane@example.com' },
      },
    });
  });

  it('reports an unknown type with a suggestion, and a malformed subject, together', () => {
    const result = validateDraft({
      type: 'caep.session-revokd',
      subject: { format: 'email' },
      sourceRecordId: 'r2',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => p.path)).toEqual(['type', 'subject.email']);
    expect(result.problems[0]?.message).toMatch(/caep\.session-revoked/);
  });

  it('CAEP 1.0 §3.5: device-compliance-change needs current_status and previous_status', () => {
    const result = validateDraft({
      type: 'caep.device-compliance-change',
      subject: { format: 'opaque', id: 'dev-1' },
      claims: { current_status: 'not-compliant' },
      sourceRecordId: 'r3',
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([
      expect.objectContaining({ path: expect.stringMatching(/previous_status$/) }),
    ]);
  });

  it('accepts an Okta risk event without event_timestamp: it is filled in from the occurrence time', () => {
    const result = validateDraft({
      type: 'okta.user-risk-change',
      subject: { format: 'complex', user: { format: 'email', email: 'a@example.com' } },
      claims: { current_level: 'high', previous_level: 'low', reason_admin: { en: 'EDR detection' } },
      occurredAt: '2026-11-29T10:00:00Z',
      sourceRecordId: 'r4',
    });
    expect(result.ok).toBe(true);
  });
});
