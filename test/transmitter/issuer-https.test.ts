/**
 * SSF 1.0 §7.1 (checklist SSF-18): every endpoint the transmitter's metadata lists, and its
 * jwks_uri, MUST be https; they all derive from the issuer. A plain-http issuer is refused by
 * receivers, but the quickstart runs on http://127.0.0.1, so it is not refused: the transmitter
 * warns once at start when its issuer is plain http on a host other than loopback.
 */
import { describe, expect, it } from 'vitest';
import { isLoopbackHost } from '../../core/transmitter/transmitter.ts';
import { recordingLogger, startBridge, type LogEntry } from './harness.ts';

const warnings = (entries: LogEntry[]) =>
  entries.filter((e) => e.level === 'warn' && /is not an https URL/.test(e.msg));

describe('SSF-18: a transmitter whose issuer is not https', () => {
  it('SSF-18: warns once at start for http://public-host, naming the issuer', async () => {
    const entries: LogEntry[] = [];
    const bridge = await startBridge({
      publicOrigin: 'http://public-host.example',
      noEngine: true,
      logger: recordingLogger(entries),
    });
    try {
      expect(warnings(entries)).toHaveLength(1);
      expect(warnings(entries)[0]?.fields).toMatchObject({ issuer: 'http://public-host.example' });
      // Starting again (already running) does not warn again.
      await bridge.tx.start();
      expect(warnings(entries)).toHaveLength(1);
    } finally {
      await bridge.close();
    }
  });

  it.each([
    ['an https issuer', { publicOrigin: 'https://public-host.example' }],
    ['the default issuer on loopback (http://127.0.0.1:PORT)', {}],
    ['the default issuer known only once listening', { lazyIssuer: true }],
  ])('SSF-18: does not warn for %s', async (_name, options) => {
    const entries: LogEntry[] = [];
    const bridge = await startBridge({ ...options, noEngine: true, logger: recordingLogger(entries) });
    try {
      expect(entries.some((e) => e.msg === 'SSF transmitter started')).toBe(true);
      expect(warnings(entries)).toHaveLength(0);
    } finally {
      await bridge.close();
    }
  });

  it('SSF-18: tells loopback hosts from others', () => {
    for (const url of [
      'http://127.0.0.1:8080',
      'http://127.1.2.3',
      'http://localhost:3000',
      'http://a.localhost',
      'http://[::1]:80',
      'http://[::ffff:127.0.0.1]/',
    ])
      expect(isLoopbackHost(new URL(url).hostname), url).toBe(true);
    for (const url of [
      'http://0.0.0.0:8080',
      'http://[::]:80',
      'http://10.0.0.1',
      'http://public-host.example',
      'http://127.example.com',
      'http://[::ffff:10.0.0.1]/',
    ])
      expect(isLoopbackHost(new URL(url).hostname), url).toBe(false);
  });
});
