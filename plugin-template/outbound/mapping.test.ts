import { describe, expect, it } from 'vitest';
import { PermanentError, type SignedSet } from '../../core/plugin-api/index.ts';
import { toVendorAction } from './mapping.ts';

const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

function set(subject: SignedSet['subject'], eventType = SESSION_REVOKED): SignedSet {
  return { jwt: 'h.p.s', jti: 'jti-1', claims: {}, eventType, event: {}, subject, attempt: 0 };
}

describe('toVendorAction', () => {
  it('revokes the sessions of an email subject, referencing the jti', () => {
    expect(toVendorAction(set({ format: 'email', email: 'ann@example.com' }))).toEqual({
      action: 'revoke_sessions',
      user: 'ann@example.com',
      reference: 'jti-1',
    });
  });

  it('takes the user of a complex subject', () => {
    const subject = {
      format: 'complex',
      user: { format: 'email', email: 'bo@example.com' },
      device: { format: 'opaque', id: 'd-1' },
    };
    expect(toVendorAction(set(subject)).user).toBe('bo@example.com');
  });

  it('refuses, permanently, subjects without an email and event types it does not act on', () => {
    expect(() => toVendorAction(set({ format: 'opaque', id: 'u-1' }))).toThrow(PermanentError);
    expect(() =>
      toVendorAction(set({ format: 'email', email: 'a@example.com' }, 'https://example.com/other')),
    ).toThrow(/does not act on/);
  });
});
