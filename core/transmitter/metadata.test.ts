import { describe, expect, it } from 'vitest';
import { transmitterMetadata, transmitterUrls } from './metadata.ts';

describe('transmitter URLs and metadata', () => {
  it('SSF-14: inserts the well-known path before the issuer path, without its trailing slash', () => {
    expect(transmitterUrls('https://tr.example.com/issuer1').wellKnownPath).toBe(
      '/.well-known/ssf-configuration/issuer1',
    );
    expect(transmitterUrls('https://tr.example.com/issuer1/').wellKnownPath).toBe(
      '/.well-known/ssf-configuration/issuer1',
    );
    expect(transmitterUrls('https://tr.example.com').wellKnownPath).toBe('/.well-known/ssf-configuration');
    expect(transmitterUrls('https://tr.example.com/').wellKnownPath).toBe('/.well-known/ssf-configuration');
  });

  it('§10.23: keeps the issuer byte-identical and puts every endpoint under it', () => {
    const urls = transmitterUrls('https://tr.example.com/t1/');
    const doc = transmitterMetadata(urls, 'NONE');
    expect(doc.issuer).toBe('https://tr.example.com/t1/');
    expect(doc.configuration_endpoint).toBe('https://tr.example.com/t1/ssf/streams');
    expect(urls.pollEndpoint('s 1')).toBe('https://tr.example.com/t1/ssf/poll/s%201');
    expect(doc).toMatchObject({ spec_version: '1_0', default_subjects: 'NONE' });
    for (const value of Object.values(doc)) if (Array.isArray(value)) expect(value.length).toBeGreaterThan(0);
  });

  it('SSF 1.0 §7.1: refuses an issuer with a query or fragment', () => {
    expect(() => transmitterUrls('https://tr.example.com/?x=1')).toThrow(/query or fragment/);
    expect(() => transmitterUrls('https://tr.example.com/#f')).toThrow(/query or fragment/);
    expect(() => transmitterUrls('not a url')).toThrow(/absolute URL/);
  });
});
