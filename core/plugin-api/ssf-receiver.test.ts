import { describe, expect, it } from 'vitest';
import { createSetVerifier, receivableEventTypes, type SetVerifierOptions } from './ssf-receiver.ts';

describe('createSetVerifier', () => {
  it('needs a JWKS fetcher: the jwks_uri is the transmitter’s choice, so no fetch without an SSRF policy is made for it', () => {
    const options = {
      issuer: 'https://tx.example.com',
      audience: 'rx',
      jwksUri: 'https://tx.example.com/jwks',
    };
    expect(() => createSetVerifier(options as SetVerifierOptions)).toThrow(
      /needs fetchJwks.*guardedHttpClient/,
    );
    expect(() => createSetVerifier({ ...options, fetchJwks: async () => ({ keys: [] }) })).not.toThrow();
  });
});

describe('receivableEventTypes', () => {
  it('lists the CAEP and RISC types and never SSF’s own, which transmitters send unasked (SSF 1.0 §8.1.4–5)', () => {
    const types = receivableEventTypes();
    expect(types).toContain('https://schemas.openid.net/secevent/caep/event-type/session-revoked');
    expect(types).toContain('https://schemas.openid.net/secevent/risc/event-type/account-disabled');
    expect(types.filter((t) => t.includes('/secevent/ssf/'))).toEqual([]);
  });
});
