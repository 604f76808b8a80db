import { describe, expect, it } from 'vitest';
import { Secret } from '../plugin-api/secret.ts';
import { bodyExcerpt, isSensitiveHeaderName, redactHeaders, scrubUrl } from './redact.ts';

describe('scrubUrl', () => {
  it('removes user info and credential-like query values, keeps the rest', () => {
    const out = scrubUrl(
      'https://user:pw@api.example.com/v1/items?access_token=abc123&page=2&api_key=k1&api_key=k2',
    );
    expect(out).toBe(
      'https://api.example.com/v1/items?access_token=[redacted]&page=2&api_key=[redacted]&api_key=[redacted]',
    );
  });

  it.each([
    'X-Goog-Signature',
    'X-Goog-Credential',
    'subscription-key',
    'private_token',
    'client_assertion',
    'hapikey',
    'auth_token',
  ])('redacts the query parameter %s, as signed URLs and vendor APIs carry credentials in it', (name) => {
    const out = scrubUrl(`https://api.example.com/v1/items?page=2&${name}=cred-value-77`);
    expect(out).not.toContain('cred-value-77');
    expect(out).toContain(`${name}=[redacted]`);
    expect(out).toContain('page=2');
  });

  it('scrubs known secret values anywhere in the URL', () => {
    const secret = new Secret('path-secret-9f8e7d');
    expect(scrubUrl(`https://hooks.example.com/${secret.reveal()}/in`)).toBe(
      'https://hooks.example.com/[redacted]/in',
    );
  });

  it('scrubs unparseable input as text', () => {
    const secret = new Secret('loose-secret-5566');
    expect(scrubUrl(`not a url ${secret.reveal()}`)).toBe('not a url [redacted]');
  });
});

describe('redactHeaders', () => {
  it.each([
    'Authorization',
    'Proxy-Authorization',
    'Cookie',
    'X-Api-Key',
    'X-Functions-Key',
    'Private-Token',
    'X-Auth',
  ])('treats %s as sensitive', (name) => {
    expect(isSensitiveHeaderName(name)).toBe(true);
    expect(redactHeaders({ [name]: 'v' })).toEqual({ [name]: '[redacted]' });
  });

  it('keeps ordinary headers and redacts extra names given by the client', () => {
    expect(isSensitiveHeaderName('Content-Type')).toBe(false);
    expect(isSensitiveHeaderName('Keep-Alive')).toBe(false);
    expect(redactHeaders({ Accept: 'application/json', 'X-Tenant': 't1' }, new Set(['x-tenant']))).toEqual({
      Accept: 'application/json',
      'X-Tenant': '[redacted]',
    });
  });
});

describe('bodyExcerpt', () => {
  it('scrubs before truncating, so half a secret never shows', () => {
    const secret = new Secret('S'.repeat(20) + 'tail-of-secret');
    const body = 'x'.repeat(190) + secret.reveal() + ' more';
    const excerpt = bodyExcerpt(body);
    expect(excerpt).toBe('x'.repeat(190) + '[redacted]…');
    expect(excerpt).not.toContain('SSSS');
  });

  it('folds whitespace, cuts long bodies and drops empty ones', () => {
    expect(bodyExcerpt('  a\n\n b  ')).toBe('a b');
    expect(bodyExcerpt('y'.repeat(300))).toBe('y'.repeat(200) + '…');
    expect(bodyExcerpt('   ')).toBeUndefined();
  });
});
