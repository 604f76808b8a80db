import { describe, expect, it } from 'vitest';
import { inspectSet } from './inspect.ts';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

describe('inspectSet (ssf-bridge decode)', () => {
  it('lists every problem, errors before warnings, without a key', () => {
    const token = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({
      iss: 'https://tx.example',
      iat: 1767225600,
      sub: 'u-42',
      exp: 1767229200,
      sub_id: { format: 'phone', phone_number: '+12065550100' },
      events: {
        'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change': {
          current_status: 'bad',
        },
      },
    })}.c2ln`;
    const { header, claims, findings } = inspectSet(token, { now: new Date('2026-01-01T00:00:00Z') });
    expect(header).toEqual({ alg: 'HS256', typ: 'JWT' });
    expect(claims).toMatchObject({ iss: 'https://tx.example' });
    expect(findings.map((f) => `${f.severity} ${f.code}`)).toEqual([
      'error SSF_ERR_SET_TYP',
      'error SSF_ERR_SET_ALG',
      'error SSF_ERR_SET_CLAIM',
      'error SSF_ERR_SET_SUB',
      'error SSF_ERR_SET_EXP',
      'error SSF_ERR_SET_EVENT_INVALID',
      'warning SSF_ERR_SET_KID',
      'warning SSF_ERR_SET_AUDIENCE',
      'warning SSF_ERR_SET_TXN',
      'warning SSF_ERR_SET_SUB_ID',
    ]);
    const invalid = findings.find((f) => f.code === 'SSF_ERR_SET_EVENT_INVALID');
    expect(invalid?.description).toMatch(/previous_status: is required/);
    expect(invalid?.description).toMatch(/current_status/);
  });

  it('RFC 8417 §2.2 (checklist §1.1): reports an events member named by a short name as an unknown event type', () => {
    const token = `${b64({ alg: 'ES256', kid: 'k1', typ: 'secevent+jwt' })}.${b64({
      iss: 'https://tx.example',
      iat: 1767225600,
      jti: 'j-1',
      aud: 'https://rx.example',
      txn: 't-1',
      sub_id: { format: 'email', email: 'dana@example.com' },
      events: { 'caep.session-revoked': {} },
    })}.c2ln`;
    const { findings } = inspectSet(token, { now: new Date('2026-01-01T00:00:00Z') });
    expect(findings).toEqual([
      expect.objectContaining({
        severity: 'warning',
        code: 'SSF_ERR_SET_EVENT_UNKNOWN',
        description: expect.stringMatching(
          /^event type caep\.session-revoked is not in the catalog; .*event-type URIs, RFC 8417 §2\.2; the catalog's caep\.session-revoked is https:\/\/schemas\.openid\.net\/secevent\/caep\/event-type\/session-revoked\)$/,
        ),
      }),
    ]);
  });

  it('reports an unparsable token as one error', () => {
    expect(inspectSet('abc').findings).toEqual([
      expect.objectContaining({ severity: 'error', err: 'invalid_request', code: 'SSF_ERR_SET_MALFORMED' }),
    ]);
  });
});
