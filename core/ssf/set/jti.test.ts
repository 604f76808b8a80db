import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { defaultTxn, deterministicJti } from './jti.ts';

const base = {
  sourceInstanceId: 'crowdstrike-prod',
  sourceRecordId: 'ldt:7e1b:88112233445',
  eventType: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
  destinationId: 'okta-prod',
};

const UUID_V8 = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('deterministic jti: redeliveries carry the same jti', () => {
  it('is a UUID-shaped SHA-256 of the JSON array of the four parts', () => {
    const digest = createHash('sha256')
      .update(
        JSON.stringify([base.sourceInstanceId, base.sourceRecordId, base.eventType, base.destinationId]),
      )
      .digest('hex');
    const jti = deterministicJti(base);
    expect(jti).toMatch(UUID_V8);
    // Apart from the version and variant bits, the digest shows through unchanged.
    expect(jti.replaceAll('-', '').slice(0, 12)).toBe(digest.slice(0, 12));
    expect(jti.replaceAll('-', '').slice(20)).toBe(digest.slice(20, 32));
  });

  it('is the same for the same inputs and differs when any part differs', () => {
    expect(deterministicJti({ ...base })).toBe(deterministicJti(base));
    for (const key of Object.keys(base) as Array<keyof typeof base>) {
      expect(deterministicJti({ ...base, [key]: `${base[key]}x` }), key).not.toBe(deterministicJti(base));
    }
  });

  it('cannot be confused by separators inside the parts (property)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string({ minLength: 1 }), fc.string(), (a, b, c) => {
        const left = deterministicJti({ ...base, sourceInstanceId: a, sourceRecordId: b + c });
        const right = deterministicJti({ ...base, sourceInstanceId: a + b, sourceRecordId: c });
        return left !== right;
      }),
    );
  });
});

describe('default txn (SSF 1.0 §4.1.9)', () => {
  it('is shared by every SET of one source record and differs across records and sources', () => {
    const txn = defaultTxn('crowdstrike-prod', 'rec-1');
    expect(txn).toMatch(UUID_V8);
    expect(defaultTxn('crowdstrike-prod', 'rec-1')).toBe(txn);
    expect(defaultTxn('crowdstrike-prod', 'rec-2')).not.toBe(txn);
    expect(defaultTxn('jamf', 'rec-1')).not.toBe(txn);
    expect(txn).not.toBe(deterministicJti(base));
  });
});
