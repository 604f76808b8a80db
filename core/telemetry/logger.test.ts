import { describe, expect, it } from 'vitest';
import { Secret } from '../plugin-api/index.ts';
import { capturingLogger } from '../../test/helpers/capture.ts';
import { inspect } from 'node:util';

describe('logger secret hygiene', () => {
  it('scrubs the value of every Secret from messages, objects and errors', () => {
    const { logger, text } = capturingLogger();
    const token = new Secret('tok_live_5f2b9c1d8e');
    logger.info({ token }, 'configured');
    logger.info(`calling with ${token.reveal()} in the message`);
    logger.warn({ err: new Error(`upstream said: bad token ${token.reveal()}`) }, 'failed');
    logger.info({ nested: { deep: { value: token.reveal() } } }, 'nested');
    expect(text()).not.toContain('tok_live_5f2b9c1d8e');
    expect(text().match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(4);
  });

  it('redacts credential fields by name even when their values are not known secrets', () => {
    const { logger, records } = capturingLogger();
    logger.info(
      {
        headers: { authorization: 'Bearer abc.def.ghi', dpop: 'eyJ0eXAiOiJkcG9wK2p3dCJ9.e30.sig' },
        password: 'hunter22',
      },
      'request',
    );
    const [record] = records();
    expect(record?.headers).toEqual({ authorization: '[redacted]', dpop: '[redacted]' });
    expect(record?.password).toBe('[redacted]');
  });

  it('Secret never prints itself', () => {
    const s = new Secret('another-secret-1');
    expect(String(s)).toBe('[redacted]');
    expect(`${s}`).toBe('[redacted]');
    expect(JSON.stringify({ s })).toBe('{"s":"[redacted]"}');
    expect(inspect({ s })).not.toContain('another-secret-1');
    expect(s.reveal()).toBe('another-secret-1');
  });
});

describe('logger redaction beyond known secret values', () => {
  it('redacts credential fields at any depth, in arrays and whatever the case of the name', () => {
    const { logger, text, records } = capturingLogger();
    logger.info(
      {
        req: { headers: { Authorization: 'Bearer opaque-one', Cookie: 'sid=s3ss10n' } },
        request: { headers: { 'X-Api-Key': 'k-live-991', 'proxy-authorization': 'Basic cHJveHk6cHc=' } },
        instances: [{ config: { Client_Secret: 'cs-deep-4411' } }, { token: 'tok-in-array-7' }],
        stream: { delivery: { authorization_header: 'Token push-cred-31' } },
        secret: true,
      },
      'request',
    );
    const [record] = records();
    for (const value of [
      'opaque-one',
      's3ss10n',
      'k-live-991',
      'cHJveHk6cHc',
      'cs-deep-4411',
      'tok-in-array-7',
      'push-cred-31',
    ])
      expect(text()).not.toContain(value);
    expect(record?.req).toEqual({ headers: { Authorization: '[redacted]', Cookie: '[redacted]' } });
    // Flags and ordinary fields stay readable.
    expect(record?.secret).toBe(true);
  });

  it('redacts credential fields an error carries (the headers of the request that failed)', () => {
    const { logger, text } = capturingLogger();
    const err = Object.assign(new Error('upstream refused'), {
      request: { headers: { Authorization: 'Bearer err-attached-55' } },
    });
    logger.error({ err }, 'failed');
    expect(text()).not.toContain('err-attached-55');
    expect(text()).toContain('upstream refused');
  });

  it("redacts credential fields in a child logger's bindings", () => {
    const { logger, text } = capturingLogger();
    logger.child({ token: 'child-token-81', headers: { Authorization: 'opaque-child-82' } }).info('child');
    expect(text()).not.toMatch(/child-token-81|opaque-child-82/);
  });

  it('redacts the private members of a JWK, keeping its public ones', () => {
    const { logger, records } = capturingLogger();
    logger.warn({ key: { kty: 'EC', crv: 'P-256', x: 'pub-x', y: 'pub-y', d: 'private-d' } }, 'key');
    logger.warn({ jwks: { keys: [{ kty: 'oct', k: 'hmac-key-bytes' }] } }, 'set');
    const [ec, oct] = records();
    expect(ec?.key).toEqual({ kty: 'EC', crv: 'P-256', x: 'pub-x', y: 'pub-y', d: '[redacted]' });
    expect(oct?.jwks).toEqual({ keys: [{ kty: 'oct', k: '[redacted]' }] });
  });

  it('scrubs a known secret holding a quote or a backslash, which a JSON line escapes', () => {
    const { logger, text } = capturingLogger();
    const password = new Secret('pa"ss\\w0rd-quoted');
    logger.error(`connection to postgres://bridge@db failed: password ${password.reveal()} refused`);
    logger.error({ detail: { said: `bad credentials ${password.reveal()}` } }, 'failed');
    expect(text()).not.toContain('pa\\"ss\\\\w0rd-quoted');
    expect(text()).not.toContain('w0rd-quoted');
  });

  it('scrubs URL passwords and credentials after an auth scheme in any text', () => {
    const { logger, text } = capturingLogger();
    logger.error({ err: new Error('connect postgres://bridge:hunter2x@db:5432/ssf failed') }, 'storage');
    logger.warn('upstream said: token "Bearer eyJhbGciOi.eyJzdWIi.c2ln" is expired');
    logger.warn({ answer: 'WWW-Authenticate: DPoP 0f9e8d7c6b5a4 rejected' }, 'push');
    logger.info('send "Authorization: Bearer <token>"; Basic credentials and a Bearer challenge');
    const out = text();
    expect(out).not.toContain('hunter2x');
    expect(out).toContain('postgres://bridge:[redacted]@db:5432/ssf');
    expect(out).not.toContain('eyJhbGciOi');
    expect(out).not.toContain('0f9e8d7c6b5a4');
    // Prose that names a scheme is not mistaken for a credential.
    expect(out).toContain('Basic credentials and a Bearer challenge');
  });
});
