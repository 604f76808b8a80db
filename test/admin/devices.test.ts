import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { deviceCompliance, DEVICE_COMPLIANCE_CHANGE } from '../../core/admin/devices.ts';
import { SqliteStore } from '../../core/storage/sqlite/store.ts';
import { newEvent } from '../../core/storage/testing/fixtures.ts';

const INSTANCES = [
  { id: 'intune-prod', connector: 'intune', kind: 'inbound' },
  { id: 'kandji-mac', connector: 'kandji', kind: 'inbound' },
  { id: 'jamf', connector: 'jamf-pro', kind: 'inbound' },
  { id: 'events', connector: 'events-api', kind: 'inbound' },
];
const AT = new Date('2026-02-01T00:00:00Z');

describe('device compliance across MDM sources', () => {
  let store: SqliteStore;
  beforeEach(async () => {
    store = SqliteStore.open({ path: ':memory:' });
    await store.checkpoints.set(
      'intune-prod',
      'default',
      {
        version: 1,
        devices: {
          'a1b2-intune': {
            status: 'not-compliant',
            compliance_state: 'noncompliant',
            since: '2026-01-10T08:00:00Z',
            user: 'ann@example.com',
            device_id: 'a1b2-intune',
            aliases: { intune_device_id: 'a1b2-intune', serial_number: 'C02XYZ', entra_device_id: 'entra-9' },
            seq: 3,
          },
        },
      },
      AT,
    );
    await store.checkpoints.set(
      'kandji-mac',
      'default',
      {
        version: 1,
        devices: {
          'k-77': {
            status: 'compliant',
            since: '2026-01-12T08:00:00Z',
            aliases: { kandji_device_id: 'k-77', serial_number: 'C02XYZ' },
            seq: 1,
          },
        },
      },
      AT,
    );
    await store.checkpoints.set(
      'jamf',
      'computer:15',
      {
        status: 'not-compliant',
        groups: ['FileVault off'],
        since: '2026-01-05T08:00:00Z',
        device_id: 'UDID-15',
        aliases: { jamf_computer_id: '15', udid: 'UDID-15', hostname: 'mac-15' },
        seq: 2,
      },
      AT,
    );
  });
  afterEach(async () => {
    await store.close();
  });

  it('finds a device by vendor id, alias or checkpoint key, newest status first', async () => {
    const bySerial = await deviceCompliance(store, INSTANCES, 'c02xyz');
    expect(bySerial?.current).toEqual(
      expect.objectContaining({
        status: 'compliant',
        instance: 'kandji-mac',
        connector: 'kandji',
        from: 'checkpoint',
      }),
    );
    expect(bySerial?.findings.map((f) => f.instance)).toEqual(['kandji-mac', 'intune-prod']);
    const byEntra = await deviceCompliance(store, INSTANCES, 'entra-9');
    expect(byEntra?.current).toEqual(
      expect.objectContaining({
        status: 'not-compliant',
        since: '2026-01-10T08:00:00Z',
        user: 'ann@example.com',
      }),
    );
    expect((await deviceCompliance(store, INSTANCES, '15'))?.current.instance).toBe('jamf');
    expect((await deviceCompliance(store, INSTANCES, 'mac-15'))?.current.status).toBe('not-compliant');
    expect(await deviceCompliance(store, INSTANCES, 'nothing-like-it')).toBeUndefined();
  });

  it('takes the latest device-compliance-change event of each source into account', async () => {
    const event = newEvent({
      event: {
        instanceId: 'events',
        type: DEVICE_COMPLIANCE_CHANGE,
        subject: { format: 'complex', device: { format: 'opaque', id: 'mac-15' } },
        claims: { current_status: 'compliant', event_timestamp: Date.parse('2026-01-20T00:00:00Z') / 1000 },
      },
    });
    await store.accept({ now: AT, events: [event], dedupeExpiresAt: AT });
    const result = await deviceCompliance(store, INSTANCES, 'mac-15');
    expect(result?.current).toEqual(
      expect.objectContaining({
        status: 'compliant',
        from: 'event',
        eventId: event.event.id,
        connector: 'events-api',
      }),
    );
    expect(result?.findings[1]?.instance).toBe('jamf');
  });
  it("finds a device's own event behind hundreds of newer ones about devices whose ids contain its id", async () => {
    const compliance = (device: string, status: string) =>
      newEvent({
        event: {
          instanceId: 'events',
          type: DEVICE_COMPLIANCE_CHANGE,
          subject: { format: 'complex', device: { format: 'opaque', id: device } },
          claims: { current_status: status, event_timestamp: Date.parse('2026-01-20T00:00:00Z') / 1000 },
        },
      });
    const own = compliance('mac-1', 'not-compliant');
    await store.accept({ now: AT, events: [own], dedupeExpiresAt: AT });
    const later = new Date(AT.getTime() + 60_000);
    const others = Array.from({ length: 450 }, (_, i) => compliance(`mac-1${i}`, 'compliant'));
    await store.accept({ now: later, events: others, dedupeExpiresAt: later });
    const result = await deviceCompliance(store, INSTANCES, 'mac-1');
    expect(result?.current).toEqual(
      expect.objectContaining({ status: 'not-compliant', from: 'event', eventId: own.event.id }),
    );
    expect(result?.findings).toHaveLength(1);
  });
});
