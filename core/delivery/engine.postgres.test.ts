import { expect, it } from 'vitest';
import {
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../storage/testing/postgres.ts';
import { storedEvent } from '../storage/testing/fixtures.ts';
import { deliveryConfigSchema } from './config.ts';
import { DeliveryEngine } from './engine.ts';
import { deliveryJti, orderingKey } from './jti.ts';
import { ScriptedDestination, testSigner } from './testing.ts';

describePostgres('delivery engine on PostgreSQL', () => {
  it('rule: two instances never deliver the same row at the same time, and every row is delivered', async () => {
    const schema = uniqueSchema();
    const stores = [await openTestPostgresStore(schema, 6), await openTestPostgresStore(schema, 6)];
    const engines: DeliveryEngine[] = [];
    try {
      const now = new Date();
      const events = Array.from({ length: 200 }, (_, i) => {
        const event = storedEvent({ acceptedAt: now, occurredAt: now, subjectKey: `k${i % 50}` });
        const jti = deliveryJti(event.instanceId, event.sourceRecordId, event.type, 'okta');
        return {
          event,
          deliveries: [{ destinationId: 'okta', jti, orderingKey: orderingKey('okta', event.subjectKey) }],
        };
      });
      await stores[0]!.accept({ now, events, dedupeExpiresAt: now });

      const active = new Set<string>();
      const overlaps: string[] = [];
      const perInstance = [0, 0];
      const config = deliveryConfigSchema.parse({ poll_interval: '5ms', max_in_flight: 8, batch_size: 8 });
      stores.forEach((store, i) => {
        const dest = new ScriptedDestination('okta', [], async (set) => {
          if (active.has(set.jti)) overlaps.push(set.jti);
          active.add(set.jti);
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          active.delete(set.jti);
          perInstance[i]! += 1;
          return { status: 202 };
        });
        const engine = new DeliveryEngine({ store, signer: testSigner(), config, owner: `instance-${i}` });
        engine.register(dest);
        engines.push(engine);
      });
      engines.forEach((e) => e.start());
      await expect
        .poll(async () => (await stores[0]!.stats()).backlog.okta ?? 0, { timeout: 20_000, interval: 50 })
        .toBe(0);
      expect(overlaps).toEqual([]);
      expect(perInstance[0]! + perInstance[1]!).toBe(200);
      expect(perInstance[0]).toBeGreaterThan(0);
      expect(perInstance[1]).toBeGreaterThan(0);
    } finally {
      for (const e of engines) await e.stop(1000);
      for (const s of stores) await s.close();
      await dropSchema(schema);
    }
  });
});
