import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, RetryableError } from '../plugin-api/errors.ts';
import { SqliteStore } from '../storage/sqlite/store.ts';
import { createDeviceDirectory, staticDeviceDirectory } from './owners.ts';

const INSTANCES = [
  { id: 'intune-corp', connector: 'intune', kind: 'inbound' as const },
  { id: 'jamf', connector: 'jamf-pro', kind: 'inbound' as const },
  { id: 'kandji', connector: 'kandji', kind: 'inbound' as const },
  { id: 'api', connector: 'events-api', kind: 'inbound' as const },
  { id: 'hook', connector: 'webhook', kind: 'outbound' as const },
];
const AT = new Date('2026-11-01T00:00:00Z');

function intuneDevice(id: string, hostname: string, user?: string, extra: Record<string, string> = {}) {
  return {
    status: 'compliant',
    since: '2026-11-01T00:00:00Z',
    ...(user ? { user } : {}),
    device_id: `entra-${id}`,
    aliases: { intune_device_id: id, entra_device_id: `entra-${id}`, hostname, ...extra },
    seq: 0,
  };
}

describe('device owners from MDM device records', () => {
  let store: SqliteStore;
  let now = 0;
  const directory = () =>
    createDeviceDirectory({ checkpoints: store.checkpoints, instances: INSTANCES, now: () => now });

  beforeEach(async () => {
    now = 1_000_000;
    store = SqliteStore.open({ path: ':memory:' });
    await store.checkpoints.set(
      'intune-corp',
      'default',
      {
        version: 1,
        devices: {
          'i-1': intuneDevice('i-1', 'LT-LIWEI-01', 'li.wei@example.com', { serial_number: 'PF3X9' }),
          'i-2': intuneDevice('i-2', 'KIOSK-07'),
          'i-3': intuneDevice('i-3', 'SHARED-01', 'ann@example.com'),
          'i-4': intuneDevice('i-4', 'BROKEN-01', 'not an address'),
        },
      },
      AT,
    );
    await store.checkpoints.set(
      'jamf',
      'computer:15',
      {
        status: 'compliant',
        groups: [],
        user: 'Bo@Example.com',
        device_id: 'UDID-15',
        aliases: { jamf_computer_id: '15', udid: 'UDID-15', hostname: 'shared-01.corp.example.com' },
        seq: 0,
      },
      AT,
    );
    await store.checkpoints.set(
      'jamf',
      'computer:16',
      {
        status: 'compliant',
        groups: [],
        user: 'li.wei@example.com',
        device_id: 'UDID-16',
        aliases: { jamf_computer_id: '16', hostname: 'lt-liwei-01' },
        seq: 0,
      },
      AT,
    );
    // Not a device record: the Jamf instance's other checkpoints are never read as devices.
    await store.checkpoints.set('jamf', 'inventory', { computers: ['15', '16'] }, AT);
  });
  afterEach(async () => {
    await store.close();
  });

  it('finds the assigned user by hostname, any alias or the vendor id, case-insensitively', async () => {
    const lookup = await directory().owners(['intune-corp']);
    const liWei = {
      found: 'owner',
      owner: { email: 'li.wei@example.com', instance: 'intune-corp', device: 'LT-LIWEI-01' },
    };
    expect(lookup(['lt-liwei-01'])).toEqual(liWei);
    expect(lookup(['pf3x9'])).toEqual(liWei);
    expect(lookup(['ENTRA-I-1'])).toEqual(liWei);
    expect(lookup([undefined, null, '', 'i-1'])).toEqual(liWei);
  });

  it('matches a fully qualified hostname by its first label, in both directions', async () => {
    const lookup = await directory().owners(['intune-corp']);
    expect(lookup(['LT-LIWEI-01.corp.example.com'])).toMatchObject({
      found: 'owner',
      owner: { email: 'li.wei@example.com' },
    });
    const jamf = await directory().owners(['jamf']);
    expect(jamf(['SHARED-01'])).toMatchObject({
      found: 'owner',
      owner: { email: 'Bo@Example.com', device: 'shared-01.corp.example.com' },
    });
    // An IPv4 address is not a hostname: its first octet names nothing.
    expect(lookup(['10.20.30.40'])).toEqual({ found: 'none' });
  });

  it('gives no user for a device without one, an unusable address, or a device nobody knows', async () => {
    const lookup = await directory().owners(['intune-corp', 'jamf']);
    expect(lookup(['KIOSK-07'])).toEqual({ found: 'none' });
    expect(lookup(['BROKEN-01'])).toEqual({ found: 'none' });
    expect(lookup(['NOPE-99', 'other-id'])).toEqual({ found: 'none' });
    expect(lookup([])).toEqual({ found: 'none' });
  });

  it('never guesses between sources that assign one device to different users', async () => {
    const lookup = await directory().owners(['intune-corp', 'jamf']);
    const answer = lookup(['SHARED-01']);
    expect(answer.found).toBe('ambiguous');
    expect(
      answer.found === 'ambiguous' && answer.owners.map((o) => `${o.email}@${o.instance}`).sort(),
    ).toEqual(['Bo@Example.com@jamf', 'ann@example.com@intune-corp']);
    // The same user in two sources is one answer, not an ambiguity.
    expect(lookup(['LT-LIWEI-01'])).toMatchObject({ found: 'owner', owner: { email: 'li.wei@example.com' } });
    // Only the sources asked for are consulted.
    expect((await directory().owners(['intune-corp']))(['SHARED-01'])).toMatchObject({ found: 'owner' });
  });

  it('takes no owner from a device the MDM no longer lists (kept, marked gone, for its compliance)', async () => {
    // LT-0042 was alice's; Intune no longer lists that record (retired, wiped), and the name now
    // belongs to a re-enrolled laptop assigned to bob. LT-0099 left Intune and was not re-enrolled.
    await store.checkpoints.set(
      'intune-corp',
      'default',
      {
        version: 1,
        devices: {
          'i-old': {
            ...intuneDevice('i-old', 'LT-0042', 'alice@example.com'),
            status: 'not-compliant',
            gone: '2026-10-20T00:00:00Z',
          },
          'i-new': intuneDevice('i-new', 'LT-0042', 'bob@example.com'),
          'i-99': {
            ...intuneDevice('i-99', 'LT-0099', 'carol@example.com'),
            status: 'not-compliant',
            gone: '2026-10-20T00:00:00Z',
          },
        },
      },
      AT,
    );
    await store.checkpoints.set(
      'jamf',
      'computer:17',
      {
        status: 'not-compliant',
        groups: [],
        user: 'dan@example.com',
        aliases: { jamf_computer_id: '17', hostname: 'mac-dan' },
        seq: 1,
        gone: '2026-10-20T00:00:00Z',
      },
      AT,
    );
    const lookup = await directory().owners(['intune-corp', 'jamf']);
    expect(lookup(['LT-0042'])).toMatchObject({ found: 'owner', owner: { email: 'bob@example.com' } });
    expect(lookup(['lt-0099'])).toEqual({ found: 'none' });
    expect(lookup(['entra-i-99'])).toEqual({ found: 'none' });
    expect(lookup(['MAC-DAN'])).toEqual({ found: 'none' });
  });

  it('reads the records again once the snapshot is older than 30 s, and once for concurrent callers', async () => {
    const dir = directory();
    let reads = 0;
    const get = store.checkpoints.get.bind(store.checkpoints);
    store.checkpoints.get = async (...args) => {
      reads += 1;
      return get(...args);
    };
    const [first] = await Promise.all([dir.owners(['intune-corp']), dir.owners(['intune-corp'])]);
    expect(reads).toBe(1);
    await store.checkpoints.set(
      'intune-corp',
      'default',
      { version: 1, devices: { 'i-2': intuneDevice('i-2', 'KIOSK-07', 'kim@example.com') } },
      AT,
    );
    now += 29_000;
    expect((await dir.owners(['intune-corp']))(['KIOSK-07'])).toEqual({ found: 'none' });
    expect(first(['KIOSK-07'])).toEqual({ found: 'none' });
    now += 2_000;
    expect((await dir.owners(['intune-corp']))(['KIOSK-07'])).toMatchObject({
      found: 'owner',
      owner: { email: 'kim@example.com' },
    });
    expect(reads).toBe(2);
  });

  it('refuses sources that keep no device records, naming them', async () => {
    const dir = directory();
    await expect(dir.owners(['api'])).rejects.toThrow(ConfigError);
    await expect(dir.owners(['api'])).rejects.toThrow(
      '"api" is an instance of events-api, which keeps no device records',
    );
    await expect(dir.owners(['hook'])).rejects.toThrow('"hook" is an instance of webhook');
    await expect(dir.owners(['intune-corp', 'gone'])).rejects.toThrow('"gone" is no instance of this bridge');
  });

  it('rejects with a retryable error when the store cannot be read, and reads again next time', async () => {
    const dir = directory();
    const get = store.checkpoints.get.bind(store.checkpoints);
    store.checkpoints.get = async () => {
      throw new Error('database is locked');
    };
    const failed = dir.owners(['intune-corp']);
    await expect(failed).rejects.toThrow(RetryableError);
    await expect(failed).rejects.toThrow(
      'the device records of "intune-corp" could not be read: database is locked',
    );
    store.checkpoints.get = get;
    expect((await dir.owners(['intune-corp']))(['KIOSK-07'])).toEqual({ found: 'none' });
  });

  it('answers alike from given records (tests and dry runs), with no devices for sources not given', async () => {
    const dir = staticDeviceDirectory({
      jamf: [{ key: '16', user: 'li.wei@example.com', aliases: { hostname: 'lt-liwei-01' } }],
    });
    expect((await dir.owners(['jamf']))(['LT-LIWEI-01.corp'])).toEqual({
      found: 'owner',
      owner: { email: 'li.wei@example.com', instance: 'jamf', device: 'lt-liwei-01' },
    });
    expect((await dir.owners(['other']))(['lt-liwei-01'])).toEqual({ found: 'none' });
  });
});
