/**
 * The device directory inbound connectors reach as `ctx.devices`: who a device is assigned to,
 * by the device records of the bridge's MDM instances. An EDR alert often names a laptop but no
 * usable user (a local account, SYSTEM); the MDM that manages the laptop knows its user.
 *
 * Lookups run on a snapshot per source, read at most every `maxAgeMs` and shared by every
 * connector: an EDR poll maps hundreds of alerts against one read of the records.
 */
import { ConfigError, RetryableError } from '../plugin-api/errors.ts';
import type {
  DeviceDirectory,
  DeviceOwner,
  DeviceOwnerAnswer,
  DeviceOwnerLookup,
} from '../plugin-api/types.ts';
import type { CheckpointStore } from '../storage/types.ts';
import { usableEmail } from '../ssf/subjects.ts';
import {
  aliasesOf,
  foldName,
  deviceSourceProblem,
  namesOf,
  storedDevices,
  unknownDeviceSource,
  type StoredDevice,
} from './records.ts';

export const DEVICE_SNAPSHOT_MAX_AGE_MS = 30_000;

interface Snapshot {
  readAt: number;
  /** Folded device name → the owners of the records answering to it (undefined: no user). */
  byName: Map<string, Array<DeviceOwner | undefined>>;
}

export interface DeviceDirectoryDeps {
  checkpoints: Pick<CheckpointStore, 'get' | 'list'>;
  /** The bridge's instances: ids, connectors and kinds. */
  instances: ReadonlyArray<{ id: string; connector: string; kind: 'inbound' | 'outbound' }>;
  now?: () => number;
  maxAgeMs?: number;
}

/** A hostname's first label, when it is fully qualified (`lt-01.corp.example` → `lt-01`). */
function shortHost(name: string): string | undefined {
  const dot = name.indexOf('.');
  return dot > 0 && !/^\d+(\.\d+){3}$/.test(name) ? name.slice(0, dot) : undefined;
}

function ownerOf(instance: string, device: StoredDevice): DeviceOwner | undefined {
  const email = typeof device.state.user === 'string' ? usableEmail(device.state.user) : undefined;
  if (!email) return undefined;
  return { email, instance, device: aliasesOf(device.state).hostname ?? device.key };
}

/** The names a record is found by: every name, and a qualified hostname's first label too. */
function keysOf(device: StoredDevice): string[] {
  const keys = new Set(namesOf(device).map(foldName));
  const host = aliasesOf(device.state).hostname;
  const short = host ? shortHost(foldName(host)) : undefined;
  if (short) keys.add(short);
  return [...keys];
}

function buildSnapshot(instance: string, devices: StoredDevice[], readAt: number): Snapshot {
  const byName = new Map<string, Array<DeviceOwner | undefined>>();
  for (const device of devices) {
    // A device the MDM no longer lists (retired, wiped, re-enrolled under a new id) assigns its
    // name to nobody: its name may since belong to another machine, or its user may have moved on.
    if (device.state.gone !== undefined && device.state.gone !== null) continue;
    const owner = ownerOf(instance, device);
    for (const key of keysOf(device)) {
      const list = byName.get(key);
      if (list) list.push(owner);
      else byName.set(key, [owner]);
    }
  }
  return { readAt, byName };
}

/** The answer for `names` over the sources' snapshots; pure. */
export function answerFor(
  snapshots: readonly Snapshot[],
  names: ReadonlyArray<string | null | undefined>,
): DeviceOwnerAnswer {
  const keys = new Set<string>();
  for (const name of names) {
    if (typeof name !== 'string' || name.trim() === '') continue;
    const folded = foldName(name);
    keys.add(folded);
    const short = shortHost(folded);
    if (short) keys.add(short);
  }
  const owners = new Map<string, DeviceOwner>();
  for (const snapshot of snapshots) {
    for (const key of keys) {
      for (const owner of snapshot.byName.get(key) ?? []) {
        if (owner && !owners.has(owner.email.toLowerCase())) owners.set(owner.email.toLowerCase(), owner);
      }
    }
  }
  const found = [...owners.values()].sort((a, b) => (a.email < b.email ? -1 : a.email > b.email ? 1 : 0));
  if (found.length === 0) return { found: 'none' };
  if (found.length === 1) return { found: 'owner', owner: found[0]! };
  return { found: 'ambiguous', owners: found };
}

export function createDeviceDirectory(deps: DeviceDirectoryDeps): DeviceDirectory {
  const now = deps.now ?? Date.now;
  const maxAgeMs = deps.maxAgeMs ?? DEVICE_SNAPSHOT_MAX_AGE_MS;
  const snapshots = new Map<string, Snapshot>();
  const reading = new Map<string, Promise<Snapshot>>();

  const sourceOf = (id: string) => {
    const instance = deps.instances.find((i) => i.id === id);
    if (!instance) throw new ConfigError(unknownDeviceSource(id));
    const problem = deviceSourceProblem(id, instance);
    if (problem) throw new ConfigError(problem);
    return instance;
  };

  const snapshotOf = async (id: string): Promise<Snapshot> => {
    const fresh = snapshots.get(id);
    if (fresh && now() - fresh.readAt < maxAgeMs) return fresh;
    let pending = reading.get(id);
    if (!pending) {
      const instance = sourceOf(id);
      pending = storedDevices(deps.checkpoints, instance)
        .then((devices) => {
          const snapshot = buildSnapshot(id, devices, now());
          snapshots.set(id, snapshot);
          return snapshot;
        })
        .catch((err: unknown) => {
          throw new RetryableError(
            `the device records of "${id}" could not be read: ${(err as Error).message}`,
            {
              cause: err,
            },
          );
        })
        .finally(() => reading.delete(id));
      reading.set(id, pending);
    }
    return pending;
  };

  return {
    async owners(sources) {
      for (const id of sources) sourceOf(id);
      const taken = await Promise.all(sources.map(snapshotOf));
      const lookup: DeviceOwnerLookup = (names) => answerFor(taken, names);
      return lookup;
    },
  };
}

/** A device record as tests and dry runs give it: the key it is kept under, its user and aliases. */
export interface GivenDevice {
  key: string;
  user?: string;
  device_id?: string;
  aliases?: Record<string, string>;
}

/**
 * A directory over device records given per source, answering as the bridge's does. Any source
 * not given has no devices (the conformance kit and `simulate` run without MDM instances).
 */
export function staticDeviceDirectory(sources: Record<string, GivenDevice[]> = {}): DeviceDirectory {
  const snapshots = new Map(
    Object.entries(sources).map(([id, devices]) => [
      id,
      buildSnapshot(
        id,
        devices.map(({ key, ...state }) => ({ key, state })),
        0,
      ),
    ]),
  );
  return {
    async owners(ids) {
      const taken = ids.map((id) => snapshots.get(id)).filter((s): s is Snapshot => s !== undefined);
      return (names) => answerFor(taken, names);
    },
  };
}
