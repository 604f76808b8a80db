import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  EXPIRED_SECRET_MARGIN_MS,
  MAX_SHORT_LIVED_SECRETS,
  Secret,
  containsSecretValue,
  registerSecretValue,
  registeredSecretValues,
  registeredSecretsVersion,
  scrubSecrets,
} from './secret.ts';

const START = Date.UTC(2026, 2, 1);
const HOUR = 60 * 60 * 1000;

beforeEach(() => {
  // Only the clock is faked: the registry reads Date.now().
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(START);
});
afterEach(() => {
  vi.useRealTimers();
});

describe('the secret registry', () => {
  it('scrubs a short-lived value (an access token) until its expiry plus a margin, then forgets it', () => {
    registerSecretValue('at-expiring-41f0c2', { lifetimeMs: HOUR });
    const line = '{"msg":"http response","token":"at-expiring-41f0c2"}';
    expect(scrubSecrets(line)).not.toContain('at-expiring-41f0c2');
    vi.setSystemTime(START + HOUR + EXPIRED_SECRET_MARGIN_MS - 1);
    expect(scrubSecrets(line)).not.toContain('at-expiring-41f0c2');
    expect(registeredSecretValues().has('at-expiring-41f0c2')).toBe(true);
    vi.setSystemTime(START + HOUR + EXPIRED_SECRET_MARGIN_MS);
    expect(scrubSecrets(line)).toBe(line);
    expect(registeredSecretValues().has('at-expiring-41f0c2')).toBe(false);
    expect(containsSecretValue(line)).toBe(false);
  });

  it('keeps configured secrets, and values registered without a lifetime, for good', () => {
    const configured = new Secret('configured-client-secret-9d2e');
    registerSecretValue('derived-basic-credential-7a1b');
    // Also registered as short-lived later (the same value): it stays for good.
    registerSecretValue('configured-client-secret-9d2e', { lifetimeMs: 1_000 });
    vi.setSystemTime(START + 365 * 24 * HOUR);
    registerSecretValue('a-later-token-00aa', { lifetimeMs: HOUR });
    expect(scrubSecrets(`${configured.reveal()} derived-basic-credential-7a1b`)).toBe(
      '[redacted] [redacted]',
    );
  });

  it('does not grow with every token refresh: tokens of a client refreshing for a year leave a few entries', () => {
    const before = registeredSecretValues().size;
    for (let i = 0; i < 24 * 365; i += 1) {
      vi.setSystemTime(START + i * HOUR);
      registerSecretValue(`eyJ.hourly-token-${i}.sig`, { lifetimeMs: HOUR });
    }
    const left = [...registeredSecretValues()].filter((v) => v.includes('hourly-token-'));
    // The live token and the ones still within the margin after expiry.
    expect(left.length).toBeLessThanOrEqual(2);
    expect(left).toContain(`eyJ.hourly-token-${24 * 365 - 1}.sig`);
    expect(registeredSecretValues().size).toBeLessThanOrEqual(before + 2);
  });

  it(`holds at most ${MAX_SHORT_LIVED_SECRETS} short-lived values, forgetting the oldest registered first`, () => {
    for (let i = 0; i < MAX_SHORT_LIVED_SECRETS + 10; i += 1) {
      registerSecretValue(`burst-token-${i}-x`, { lifetimeMs: 24 * HOUR });
    }
    const burst = [...registeredSecretValues()].filter((v) => v.startsWith('burst-token-'));
    expect(burst).toHaveLength(MAX_SHORT_LIVED_SECRETS);
    expect(burst).not.toContain('burst-token-9-x');
    expect(burst).toContain('burst-token-10-x');
    expect(burst).toContain(`burst-token-${MAX_SHORT_LIVED_SECRETS + 9}-x`);
  });

  it('a value registered again lives until its latest expiry', () => {
    registerSecretValue('re-registered-assertion-1', { lifetimeMs: HOUR });
    vi.setSystemTime(START + HOUR);
    registerSecretValue('re-registered-assertion-1', { lifetimeMs: HOUR });
    vi.setSystemTime(START + 2 * HOUR + EXPIRED_SECRET_MARGIN_MS - 1);
    expect(scrubSecrets('re-registered-assertion-1')).toBe('[redacted]');
  });

  it('tells caches of scrubbed text when a value is added or forgotten', () => {
    const v0 = registeredSecretsVersion();
    registerSecretValue('version-token-5c', { lifetimeMs: 1_000 });
    const v1 = registeredSecretsVersion();
    expect(v1).not.toBe(v0);
    vi.setSystemTime(START + 1_000 + EXPIRED_SECRET_MARGIN_MS);
    scrubSecrets('anything');
    expect(registeredSecretsVersion()).not.toBe(v1);
  });

  it('finds a credential in a request body as it is, percent- or form-encoded, or escaped in JSON', () => {
    const value = new Secret('pw "quoted" +/=&~').reveal();
    expect(containsSecretValue(`u:${value}`)).toBe(true);
    expect(containsSecretValue(new URLSearchParams({ password: value }).toString())).toBe(true);
    expect(containsSecretValue(`password=${encodeURIComponent(value)}`)).toBe(true);
    expect(containsSecretValue(JSON.stringify({ password: value }))).toBe(true);
    expect(containsSecretValue('{"password":"something else"}')).toBe(false);
  });
});

describe('scrubbing a credential as other software spells it', () => {
  it('as Go (<, >, & escaped), Python (non-ASCII escaped) and lower-case percent-encoding write it', () => {
    const secret = new Secret('Tr0ub&dor<3>p\u00e4ss/\u00f6rd');
    const echoes = [
      // Go's encoding/json
      '{"error":"invalid credential Tr0ub\\u0026dor\\u003c3\\u003ep\u00e4ss/\u00f6rd"}',
      // Python's json.dumps (ensure_ascii)
      '{"detail": "bad password Tr0ub&dor<3>p\\u00e4ss/\\u00f6rd"}',
      // percent-encoding with lower-case hex
      `bad token ${encodeURIComponent(secret.reveal()).replace(/%[0-9A-F]{2}/g, (h) => h.toLowerCase())}`,
      // and as JSON.stringify writes it
      JSON.stringify({ error: secret.reveal() }),
    ];
    for (const echo of echoes) {
      const scrubbed = scrubSecrets(echo);
      expect(scrubbed).toContain('[redacted]');
      expect(scrubbed).not.toContain('Tr0ub');
    }
  });
});
