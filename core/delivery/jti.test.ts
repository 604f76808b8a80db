import { describe, expect, it } from 'vitest';
import { dedupeKey, defaultTxn, deliveryJti, orderingKey } from './jti.ts';

const TYPE = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

describe('deterministic identifiers', () => {
  it('rule: the jti is the same for the same (instance, record, type, destination)', () => {
    expect(deliveryJti('hr', 'rec-1', TYPE, 'okta')).toBe(deliveryJti('hr', 'rec-1', TYPE, 'okta'));
  });

  it('rule: the jti differs when any one of the four parts differs', () => {
    const base = deliveryJti('hr', 'rec-1', TYPE, 'okta');
    expect(deliveryJti('hr2', 'rec-1', TYPE, 'okta')).not.toBe(base);
    expect(deliveryJti('hr', 'rec-2', TYPE, 'okta')).not.toBe(base);
    expect(deliveryJti('hr', 'rec-1', `${TYPE}x`, 'okta')).not.toBe(base);
    expect(deliveryJti('hr', 'rec-1', TYPE, 'google')).not.toBe(base);
  });

  it('rule: parts cannot bleed into each other through a separator', () => {
    expect(deliveryJti('a|b', 'c', TYPE, 'd')).not.toBe(deliveryJti('a', 'b|c', TYPE, 'd'));
    expect(deliveryJti('a\u001fb', 'c', TYPE, 'd')).not.toBe(deliveryJti('a', 'b\u001fc', TYPE, 'd'));
  });

  it('is shaped as an RFC 9562 version 8 UUID and pinned to its recipe', () => {
    const jti = deliveryJti('hr', 'rec-1', TYPE, 'okta');
    expect(jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    // Pinned: changing the recipe would make every queued redelivery look new to receivers.
    expect(deliveryJti('i', 'r', 't', 'd')).toBe('9aeaa969-b1c3-8d00-bedb-95ef680a20bc');
  });

  it('derives txn, ordering and dedupe keys that separate their inputs', () => {
    expect(defaultTxn('hr', 'rec-1')).toBe(defaultTxn('hr', 'rec-1'));
    expect(defaultTxn('hr', 'rec-1')).not.toBe(defaultTxn('hr', 'rec-2'));
    expect(orderingKey('okta', 'email:a@x')).not.toBe(orderingKey('google', 'email:a@x'));
    expect(orderingKey('okta', 'email:a@x')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(dedupeKey('hr', 'rec-1', TYPE)).not.toBe(dedupeKey('hr', 'rec-1', `${TYPE}2`));
  });
});
