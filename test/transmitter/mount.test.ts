/**
 * Where the transmitter is mounted when its issuer is only known once the server listens (the
 * default issuer http://HOST:PORT with a port picked at start).
 */
import { describe, expect, it } from 'vitest';
import { SqliteStore } from '../../core/storage/sqlite/store.ts';
import { SetCodec } from '../../core/ssf/index.ts';
import { MetricsRegistry } from '../../core/telemetry/metrics.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import { createTransmitter, transmitterConfigSchema } from '../../core/transmitter/index.ts';
import { ALICE, call, checkSet, startBridge, testKeys } from './harness.ts';

describe('issuer known after listen', () => {
  it('serves the metadata at the root well-known path and signs with the same issuer (SSF-09, SSF-14)', async () => {
    const bridge = await startBridge({ lazyIssuer: true });
    try {
      expect(bridge.tx.mount).toEqual({ basePath: '', wellKnownPath: '/.well-known/ssf-configuration' });
      const metadata = await call(bridge.origin, 'GET', '/.well-known/ssf-configuration');
      expect(metadata.json.issuer).toBe(bridge.issuer);
      const created = await call(bridge.issuer, 'POST', 'ssf/streams', { token: ALICE.token, body: {} });
      expect(created.json.iss).toBe(bridge.issuer);
      await call(bridge.issuer, 'POST', 'ssf/verify', {
        token: ALICE.token,
        body: { stream_id: created.json.stream_id },
      });
      const polled = await call(bridge.issuer, 'POST', `ssf/poll/${created.json.stream_id}`, {
        token: ALICE.token,
        body: { returnImmediately: true },
      });
      for (const jwt of Object.values(polled.json.sets as Record<string, string>)) {
        expect((await checkSet(bridge, jwt, ALICE.client_id)).iss).toBe(bridge.issuer);
      }
    } finally {
      await bridge.close();
    }
  });

  it('refuses a late issuer with a path: its routes could not have been mounted there', async () => {
    const store = SqliteStore.open({ path: ':memory:' });
    const { keys } = await testKeys();
    const issuer = () => 'https://signals.example.com/tenant';
    const tx = createTransmitter({
      config: transmitterConfigSchema.parse({}),
      issuer,
      store,
      minter: new SetCodec({ issuer: issuer(), keys }),
      keys,
      clock: { now: () => new Date() },
      logger: silentLogger(),
      metrics: new MetricsRegistry({ collectDefault: false }),
    });
    try {
      expect(tx.mount.basePath).toBe('');
      expect(() => tx.urls).toThrow(/has a path/);
    } finally {
      await store.close();
    }
  });
});
