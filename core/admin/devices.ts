/**
 * Device compliance right now, across MDM sources: the device records the MDM connectors keep
 * (see devices/records.ts) and the device-compliance-change events in the store.
 * A device is found by its vendor id or any recorded alias (serial number, hostname, UDID, …).
 */
import { subjectStrings } from '../pipeline/subjects.ts';
import {
  aliasesOf,
  foldName as fold,
  namesOf,
  storedDevices,
  type DeviceState,
  type StoredDevice,
} from '../devices/records.ts';
import type { EventCursor, Store, StoredEvent } from '../storage/types.ts';

export const DEVICE_COMPLIANCE_CHANGE =
  'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change';
/** Events read per store query, and examined per request at most (newest first). */
const EVENTS_PAGE = 200;
export const DEVICE_EVENTS_SCAN_LIMIT = 5_000;

export interface ComplianceFinding {
  status: string;
  /** When the status began, as the source reported it (RFC 3339), when known. */
  since?: string | undefined;
  instance: string;
  connector: string;
  /** `checkpoint`: the connector's device state; `event`: the last event the bridge accepted. */
  from: 'checkpoint' | 'event';
  user?: string | undefined;
  aliases?: Record<string, string> | undefined;
  eventId?: string | undefined;
}

export interface DeviceCompliance {
  device: string;
  /** The most recent finding; the answer to "is this device compliant now?". */
  current: ComplianceFinding;
  findings: ComplianceFinding[];
}

/** Whether a stored device record is the device the operator named. */
export function isDevice(device: StoredDevice, id: string): boolean {
  return namesOf(device).some((n) => fold(n) === fold(id));
}

function fromState(instance: string, connector: string, state: DeviceState): ComplianceFinding | undefined {
  if (typeof state.status !== 'string') return undefined;
  return {
    status: state.status,
    since: typeof state.since === 'string' ? state.since : undefined,
    instance,
    connector,
    from: 'checkpoint',
    user: typeof state.user === 'string' ? state.user : undefined,
    aliases: aliasesOf(state),
  };
}

async function checkpointFindings(
  store: Store,
  instance: { id: string; connector: string },
  id: string,
): Promise<ComplianceFinding[]> {
  return (await storedDevices(store.checkpoints, instance))
    .filter((device) => isDevice(device, id))
    .map((device) => fromState(instance.id, instance.connector, device.state))
    .filter((finding): finding is ComplianceFinding => finding !== undefined);
}

function fromEvent(event: StoredEvent, connectorOf: (id: string) => string): ComplianceFinding | undefined {
  const status = event.claims.current_status;
  if (typeof status !== 'string') return undefined;
  const ts = event.claims.event_timestamp;
  return {
    status,
    since: typeof ts === 'number' ? new Date(ts * 1000).toISOString() : event.occurredAt.toISOString(),
    instance: event.instanceId,
    connector: connectorOf(event.instanceId),
    from: 'event',
    eventId: event.id,
  };
}

/**
 * The newest device-compliance-change event about the device from each source. The store's
 * subject search is a substring match (`mac-1` finds `mac-11` and `mac-1200` too), so rows are
 * read page by page, newest first, and matched exactly here, until every inbound instance has its
 * newest event, the events run out, or DEVICE_EVENTS_SCAN_LIMIT rows have been examined.
 */
async function latestEvents(
  store: Store,
  id: string,
  inbound: Array<{ id: string }>,
  connectorOf: (id: string) => string,
): Promise<Map<string, ComplianceFinding>> {
  const latest = new Map<string, ComplianceFinding>();
  let before: EventCursor | undefined;
  let scanned = 0;
  while (scanned < DEVICE_EVENTS_SCAN_LIMIT) {
    const batch = Math.min(EVENTS_PAGE, DEVICE_EVENTS_SCAN_LIMIT - scanned);
    const rows = await store.operator.listEvents({
      type: DEVICE_COMPLIANCE_CHANGE,
      subjectMentions: [id],
      limit: batch,
      ...(before ? { before } : {}),
    });
    for (const event of rows) {
      scanned += 1;
      before = { acceptedAt: event.acceptedAt, id: event.id };
      // Newest event per instance: an older one is history, not the current state.
      if (latest.has(event.instanceId)) continue;
      if (!subjectStrings(event.subject).some((s) => fold(s) === fold(id))) continue;
      const finding = fromEvent(event, connectorOf);
      if (finding) latest.set(event.instanceId, finding);
    }
    if (rows.length < batch || inbound.every((i) => latest.has(i.id))) break;
  }
  return latest;
}

const timeOf = (f: ComplianceFinding) => (f.since ? Date.parse(f.since) : 0) || 0;

/** The device's compliance across sources, or undefined when no source knows the device. */
export async function deviceCompliance(
  store: Store,
  instances: Array<{ id: string; connector: string; kind: string }>,
  id: string,
): Promise<DeviceCompliance | undefined> {
  const inbound = instances.filter((i) => i.kind === 'inbound');
  const fromCheckpoints = (await Promise.all(inbound.map((i) => checkpointFindings(store, i, id)))).flat();
  const connectorOf = (instanceId: string) =>
    inbound.find((i) => i.id === instanceId)?.connector ?? 'unknown';
  const latest = await latestEvents(store, id, inbound, connectorOf);
  const findings = [...fromCheckpoints, ...latest.values()].sort((a, b) => timeOf(b) - timeOf(a));
  const current = findings[0];
  return current ? { device: id, current, findings } : undefined;
}
