/**
 * The subject timeline and device compliance ignore case beyond ASCII on every store: SQLite's
 * LIKE folds ASCII only, so its store folds subjects with a function of its own (on the
 * connection the store opens, also on its own thread); PostgreSQL's ILIKE folds every letter.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEVICE_COMPLIANCE_CHANGE, deviceCompliance } from '../../core/admin/devices.ts';
import { subjectTimeline, timelineTerms } from '../../core/admin/timeline.ts';
import { SqliteStore } from '../../core/storage/sqlite/store.ts';
import { ThreadedSqliteStore } from '../../core/storage/sqlite/threaded-store.ts';
import { newEvent } from '../../core/storage/testing/fixtures.ts';
import {
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../../core/storage/testing/postgres.ts';
import type { Store } from '../../core/storage/types.ts';

const AT = new Date('2026-02-01T00:00:00Z');
const INSTANCES = [{ id: 'events', connector: 'events-api', kind: 'inbound' }];

function caseContract(open: () => Promise<{ store: Store; close(): Promise<void> }>) {
  let store: Store;
  let close: () => Promise<void>;
  const ids: Record<string, string> = {};

  beforeAll(async () => {
    ({ store, close } = await open());
    const events = {
      anne: newEvent({ event: { subject: { format: 'opaque', id: 'ÄNNE-7' } } }),
      zoe: newEvent({ event: { subject: { format: 'email', email: 'Zoë.Ünal@Example.com' } } }),
      // Shares only its ASCII letters with the others: must never be found by them.
      other: newEvent({ event: { subject: { format: 'opaque', id: 'ANNE-7' } } }),
      device: newEvent({
        event: {
          instanceId: 'events',
          type: DEVICE_COMPLIANCE_CHANGE,
          subject: { format: 'complex', device: { format: 'opaque', id: 'MÄC-ÖL-1' } },
          claims: { current_status: 'not-compliant', event_timestamp: AT.getTime() / 1000 },
        },
      }),
    };
    await store.accept({ now: AT, events: Object.values(events), dedupeExpiresAt: AT });
    for (const [name, e] of Object.entries(events)) ids[name] = e.event.id;
  });
  afterAll(async () => {
    await close();
  });

  const timeline = async (subject: string) =>
    (await subjectTimeline(store, { terms: timelineTerms(subject, []), limit: 10 })).entries.map(
      (e) => e.event.id,
    );

  it('finds a subject with capitals beyond ASCII on the timeline, in any case', async () => {
    for (const subject of ['ÄNNE-7', 'änne-7', 'Änne-7', 'äNNE-7']) {
      expect([subject, await timeline(subject)]).toEqual([subject, [ids.anne]]);
    }
    for (const subject of ['Zoë.Ünal@Example.com', 'zoë.ünal@example.com', 'ZOË.ÜNAL@EXAMPLE.COM']) {
      expect([subject, await timeline(subject)]).toEqual([subject, [ids.zoe]]);
    }
    expect(await timeline('anne-7')).toEqual([ids.other]);
    expect(await timeline('zoe.unal@example.com')).toEqual([]);
  });

  it("finds a device's compliance by an id with capitals beyond ASCII, in any case", async () => {
    for (const id of ['MÄC-ÖL-1', 'mäc-öl-1', 'Mäc-Öl-1']) {
      const result = await deviceCompliance(store, INSTANCES, id);
      expect([id, result?.current]).toEqual([
        id,
        expect.objectContaining({ status: 'not-compliant', from: 'event', eventId: ids.device }),
      ]);
    }
    expect(await deviceCompliance(store, INSTANCES, 'mac-ol-1')).toBeUndefined();
  });
}

describe('subject search beyond ASCII: SQLite', () => {
  caseContract(async () => {
    const store = SqliteStore.open({ path: ':memory:' });
    return { store, close: () => store.close() };
  });
});

describe('subject search beyond ASCII: SQLite on its own thread', () => {
  caseContract(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-case-'));
    const store = await ThreadedSqliteStore.open({ path: join(dir, 'bridge.db') });
    return {
      store,
      async close() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
});

describePostgres('subject search beyond ASCII: PostgreSQL', () => {
  caseContract(async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore(schema, 2);
    return {
      store,
      async close() {
        await store.close();
        await dropSchema(schema);
      },
    };
  });
});
