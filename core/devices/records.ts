/**
 * The device records MDM connectors keep between polls, read by the core: Intune and Kandji keep
 * one device map in checkpoint `default`, Jamf Pro one checkpoint `computer:<id>` per computer.
 * Each record is `{status, since?, user?, device_id?, aliases}`; the admin API's device
 * compliance and the EDR connectors' device-owner lookup both read them through here.
 */
import type { CheckpointStore } from '../storage/types.ts';

/** A device's state as an MDM connector stored it (members unchecked: they are read defensively). */
export interface DeviceState {
  status?: unknown;
  since?: unknown;
  user?: unknown;
  device_id?: unknown;
  aliases?: unknown;
  /**
   * Set (to when it was found missing) on a device the MDM no longer lists, which the connector
   * keeps for a while as not compliant so that its status is sent if it comes back.
   */
  gone?: unknown;
}

/** One stored device record: the key it is stored under, and its state. */
export interface StoredDevice {
  key: string;
  state: DeviceState;
}

const MAP_CONNECTORS = new Set(['intune', 'kandji']);
const JAMF = 'jamf-pro';
const JAMF_PREFIX = 'computer:';

/** Whether instances of `connector` keep device records the core can read. */
export function keepsDeviceRecords(connector: string): boolean {
  return MAP_CONNECTORS.has(connector) || connector === JAMF;
}

/** Why instance `id` cannot be a source of device records, or undefined when it can. */
export function deviceSourceProblem(
  id: string,
  instance: { connector: string; kind: 'inbound' | 'outbound' },
): string | undefined {
  if (instance.kind === 'inbound' && keepsDeviceRecords(instance.connector)) return undefined;
  return `"${id}" is an instance of ${instance.connector}, which keeps no device records; ${NAME_A_SOURCE}`;
}

const NAME_A_SOURCE = 'name a jamf-pro, intune or kandji instance';

/** `id` names no instance at all. */
export function unknownDeviceSource(id: string): string {
  return `"${id}" is no instance of this bridge; ${NAME_A_SOURCE}`;
}

/** Every device record an MDM instance keeps; none for other connectors. */
export async function storedDevices(
  checkpoints: Pick<CheckpointStore, 'get' | 'list'>,
  instance: { id: string; connector: string },
): Promise<StoredDevice[]> {
  if (MAP_CONNECTORS.has(instance.connector)) {
    const value = (await checkpoints.get(instance.id)) as { devices?: unknown } | undefined;
    const devices = value?.devices;
    if (!devices || typeof devices !== 'object') return [];
    return Object.entries(devices as Record<string, unknown>)
      .filter(([, state]) => state !== null && typeof state === 'object')
      .map(([key, state]) => ({ key, state: state as DeviceState }));
  }
  if (instance.connector === JAMF) {
    return (await checkpoints.list(instance.id))
      .filter((entry) => entry.name.startsWith(JAMF_PREFIX) && entry.value && typeof entry.value === 'object')
      .map((entry) => ({ key: entry.name.slice(JAMF_PREFIX.length), state: entry.value as DeviceState }));
  }
  return [];
}

/** The string aliases of a record (serial number, hostname, UDID, Entra device id, …). */
export function aliasesOf(state: DeviceState): Record<string, string> {
  const out: Record<string, string> = {};
  if (state.aliases && typeof state.aliases === 'object') {
    for (const [k, v] of Object.entries(state.aliases)) if (typeof v === 'string') out[k] = v;
  }
  return out;
}

/** Every name a record answers to: its key, its device id and its aliases (non-empty). */
export function namesOf({ key, state }: StoredDevice): string[] {
  const names = [
    key,
    typeof state.device_id === 'string' ? state.device_id : '',
    ...Object.values(aliasesOf(state)),
  ];
  return names.filter((n) => n.trim() !== '');
}

/** Device names compare trimmed and case-insensitively. */
export const foldName = (v: string): string => v.trim().toLowerCase();
