import {
  PermanentError,
  z,
  type EventDraft,
  type MappingResult,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import {
  complianceEvent as deviceComplianceEvent,
  describeScan,
  deviceSubject,
  diffPage,
  email,
  epochSeconds,
  finishScan as endScan,
  opposite,
  parseScanState,
  problemText,
  scanStateSchema,
  snapshotResult,
  vanishHold,
  wholeSeconds,
  type ComplianceStatus,
  type PageDiff,
  type ScanEnd as SharedScanEnd,
  type VanishedRules,
} from '../_shared/mdm-mapping.ts';
import type { KandjiConfig } from './config.ts';

export { DEVICE_COMPLIANCE_CHANGE, type ComplianceStatus } from '../_shared/mdm-mapping.ts';

/** `user` is an object on most platforms and a bare string (or empty) on some. */
const kandjiUserSchema = z.union([
  z.looseObject({
    email: z.string().nullish(),
    name: z.string().nullish(),
    id: z.union([z.string(), z.number()]).nullish(),
    is_archived: z.boolean().nullish(),
  }),
  z.string(),
  z.null(),
]);

/** A device of `GET /api/v1/devices`. The fields the mapping reads are required. */
export const kandjiDeviceSchema = z.looseObject({
  device_id: z.string().min(1),
  device_name: z.string().nullish(),
  serial_number: z.string().nullish(),
  platform: z.string().nullish(),
  last_check_in: z.string().nullish(),
  blueprint_name: z.string().nullish(),
  mdm_enabled: z.boolean().nullish(),
  is_missing: z.boolean().nullish(),
  is_removed: z.boolean().nullish(),
  user: kandjiUserSchema.optional(),
});
export type KandjiDevice = z.infer<typeof kandjiDeviceSchema>;

const statusItemSchema = z.looseObject({
  status: z.string(),
  name: z.string().nullish(),
  item_id: z.string().nullish(),
});

/**
 * `GET /api/v1/devices/{device_id}/status`: blueprint parameters and library items with their
 * status. A status must carry at least one of the two lists (see hasCheckLists).
 */
export const deviceStatusSchema = z.looseObject({
  device_id: z.string().optional(),
  parameters: z.array(statusItemSchema).nullish(),
  library_items: z.array(statusItemSchema).nullish(),
});
export type DeviceStatus = z.infer<typeof deviceStatusSchema>;

/**
 * Whether a status answer lists checks at all. An answer with neither list (an error body such as
 * `{"detail": "Service temporarily unavailable"}` sent with 200, or both lists null) is not a
 * status: read as one it would hold no failing check and make the device compliant.
 */
export function hasCheckLists(status: DeviceStatus): boolean {
  return Array.isArray(status.parameters) || Array.isArray(status.library_items);
}

const deviceStateSchema = z.object({
  /** Last determined status; absent while every check is still pending. */
  status: z.enum(['compliant', 'not-compliant']).optional(),
  /** last_check_in of the device when its status was last evaluated. */
  checked_in: z.string().optional(),
  /** last_check_in when the current status was first seen. */
  since: z.string().optional(),
  /** Names of the failing checks behind a not-compliant status. */
  failing: z.array(z.string()).optional(),
  user: z.string().optional(),
  aliases: z.object({
    kandji_device_id: z.string(),
    serial_number: z.string().optional(),
    hostname: z.string().optional(),
  }),
  seq: z.number().int().nonnegative(),
  /** Set while the device is reported gone (kept as not-compliant): when the scan found it gone. */
  gone: z.string().optional(),
  /**
   * True while the not-compliant status comes from a flag of the device record (is_removed,
   * is_missing, mdm_enabled false) rather than from failing checks: once the flag is gone the
   * status is read again, check-in or not. Absent in state written before it existed (see
   * fromFlag).
   */
  flagged: z.boolean().optional(),
  /**
   * When the last read of the device's status failed (after the in-scan retries): such devices
   * are read after the others, so that one the API keeps failing for does not hold them back.
   * Dropped once a status is read.
   */
  read_failed: z.string().optional(),
  /**
   * When the device, missing from a listing, was last looked up on its own and found still there
   * (or not answered for): devices never looked up go first next time. Dropped once it is listed.
   */
  looked_up: z.string().optional(),
});
export type DeviceState = z.infer<typeof deviceStateSchema>;

/** What the connector keeps between scans: the last known state of every device. */
export const stateSchema = scanStateSchema(deviceStateSchema);
export type KandjiState = z.infer<typeof stateSchema>;

export type Evaluation =
  | { kind: 'status'; status: ComplianceStatus; reason: string; failing: string[]; flag?: true }
  | { kind: 'undetermined'; reason: string }
  | { kind: 'needs_status' };

const PARAMETER_PASS = new Set(['PASS', 'REMEDIATED']);
const LIBRARY_PASS = new Set(['PASS', 'SUCCESS']);
const FAIL = new Set(['ERROR', 'FAILED']);
const IN_FLIGHT = new Set(['PENDING', 'CHANGE_PENDING', 'DOWNLOADING', 'INSTALLING']);

function label(device: Pick<KandjiDevice, 'device_name' | 'device_id'>): string {
  return device.device_name?.trim() ? `"${device.device_name.trim()}"` : `device ${device.device_id}`;
}

function itemName(item: z.infer<typeof statusItemSchema>): string {
  return item.name?.trim() || item.item_id || 'unnamed item';
}

/** What a device record alone says: removed, missing or unmanaged devices are not compliant. */
function flagged(device: KandjiDevice): string | undefined {
  if (device.is_removed) return `${label(device)} was removed from Kandji`;
  if (device.is_missing) return `${label(device)} is marked missing in Kandji`;
  if (device.mdm_enabled === false) return `MDM is not enabled on ${label(device)}`;
  return undefined;
}

/**
 * Compliance of a device: any blueprint parameter (and, by default, library item) in ERROR makes
 * it not compliant; all checks passing (PASS, REMEDIATED) make it compliant; WARNING (muted),
 * INCOMPATIBLE, EXCLUDED and other informational statuses count for neither. Checks still
 * pending leave the status undetermined, and so does a status in which no check passes or fails
 * (empty lists, or informational statuses only): zero checks prove nothing.
 */
export function evaluate(
  device: KandjiDevice,
  status: DeviceStatus | undefined,
  config: Pick<KandjiConfig, 'include_library_items'>,
): Evaluation {
  const flag = flagged(device);
  if (flag) return { kind: 'status', status: 'not-compliant', reason: flag, failing: [], flag: true };
  if (!status) return { kind: 'needs_status' };
  const parameters = status.parameters ?? [];
  const library = config.include_library_items ? (status.library_items ?? []) : [];
  const all = [...parameters, ...library];
  const failing = all.filter((i) => FAIL.has(i.status.toUpperCase())).map(itemName);
  if (failing.length > 0) {
    const shown =
      failing.slice(0, 5).join(', ') + (failing.length > 5 ? ` and ${failing.length - 5} more` : '');
    return {
      kind: 'status',
      status: 'not-compliant',
      reason: `${failing.length} Kandji check${failing.length === 1 ? '' : 's'} failing on ${label(device)}: ${shown}`,
      failing,
    };
  }
  const pending = all.filter((i) => IN_FLIGHT.has(i.status.toUpperCase()));
  if (pending.length > 0) {
    return { kind: 'undetermined', reason: `${pending.length} check(s) pending on ${label(device)}` };
  }
  const passing =
    parameters.filter((i) => PARAMETER_PASS.has(i.status.toUpperCase())).length +
    library.filter((i) => LIBRARY_PASS.has(i.status.toUpperCase())).length;
  if (passing === 0) {
    return { kind: 'undetermined', reason: `no Kandji check passes or fails on ${label(device)}` };
  }
  return {
    kind: 'status',
    status: 'compliant',
    reason: `every Kandji check passes on ${label(device)} (${passing} passing)`,
    failing: [],
  };
}

function identity(d: KandjiDevice): Pick<DeviceState, 'user' | 'aliases'> {
  const user = email(typeof d.user === 'string' ? d.user : d.user?.email);
  const serial = d.serial_number?.trim();
  const hostname = d.device_name?.trim();
  return {
    ...(user ? { user } : {}),
    aliases: {
      kandji_device_id: d.device_id,
      ...(serial ? { serial_number: serial } : {}),
      ...(hostname ? { hostname } : {}),
    },
  };
}

/** `{user, device}`, or a device-only complex subject when no user is assigned. */
export function subjectOf(state: Pick<DeviceState, 'user' | 'aliases'>): SubjectIdentifier {
  return deviceSubject(state.user, state.aliases.kandji_device_id);
}

/** `at` is when the change happened (see changedAt); the record id never holds the scan time. */
function complianceEvent(
  state: DeviceState,
  previous: ComplianceStatus,
  current: ComplianceStatus,
  reason: string,
  at: string | undefined,
  recordSuffix: string,
): EventDraft {
  return deviceComplianceEvent(
    subjectOf(state),
    previous,
    current,
    reason,
    at,
    `kandji:${state.aliases.kandji_device_id}:${state.seq}:${previous}>${current}:${recordSuffix}`,
  );
}

/**
 * When a device's change happened (CAEP 1.0 §2: event_timestamp is when the event occurred):
 * its check-in, when it checked in since its last evaluation (the status read is what it
 * reported then); otherwise the change is not the check-in's — a flag Kandji set or cleared
 * (is_missing, mdm_enabled false), a device listed again — and the scan that saw it tells it
 * best: `scannedAt`, undefined when not known (a simulated snapshot without `scanned_at`).
 */
export function changedAt(
  device: KandjiDevice,
  previous: DeviceState | undefined,
  scannedAt: string | undefined,
): string | undefined {
  const checkIn = epochSeconds(device.last_check_in);
  const evaluated = epochSeconds(previous?.checked_in);
  if (checkIn !== undefined && (evaluated === undefined || checkIn > evaluated)) {
    return wholeSeconds(device.last_check_in);
  }
  return wholeSeconds(scannedAt);
}

/**
 * Whether the device's last status came from a flag of its record. State written before
 * `flagged` existed tells it too: a not-compliant status from checks always names the failing
 * ones, one from a flag names none.
 */
export function fromFlag(previous: DeviceState): boolean {
  return (
    previous.flagged ??
    (previous.status === 'not-compliant' && previous.gone === undefined && !previous.failing?.length)
  );
}

/**
 * Whether a device's status must be read (again): it checked in since its last evaluation, has
 * none yet, is back after it was reported gone, or lost the flag its status came from (Kandji
 * can clear is_missing or re-enable MDM without a new check-in).
 */
export function needsStatus(device: KandjiDevice, previous: DeviceState | undefined): boolean {
  if (flagged(device)) return false;
  return (
    previous?.status === undefined ||
    previous.gone !== undefined ||
    fromFlag(previous) ||
    previous.checked_in !== (device.last_check_in ?? undefined)
  );
}

export type DeviceOutcome = 'transition' | 'baseline' | 'unchanged' | 'undetermined' | 'deferred';
const OUTCOMES: readonly DeviceOutcome[] = [
  'transition',
  'baseline',
  'unchanged',
  'undetermined',
  'deferred',
];

export type DiffResult = PageDiff<KandjiState, DeviceOutcome>;

/**
 * Compares devices (with the statuses read for them) against their last known state.
 * A device whose status is needed but not given keeps its state and is counted as deferred:
 * the next scan reads it; so does one whose status lists no checks at all (rejected, with the
 * reason). `scannedAt` is the time of a change the device's check-in does not date (see
 * changedAt). Pure: the same input, state and scan time give the same events.
 */
export function diffDevices(
  records: readonly unknown[],
  statuses: Readonly<Record<string, unknown>>,
  config: KandjiConfig,
  state: KandjiState,
  scannedAt?: string,
): DiffResult {
  return diffPage(
    records,
    state,
    { schema: kandjiDeviceSchema, idKey: 'device_id', outcomes: OUTCOMES },
    (d, previous) => {
      const rawStatus = statuses[d.device_id];
      let status: DeviceStatus | undefined;
      if (rawStatus !== undefined) {
        const s = deviceStatusSchema.safeParse(rawStatus);
        if (!s.success) return { problem: `status: ${problemText(s.error)}` };
        if (!hasCheckLists(s.data)) {
          return {
            problem:
              'status: neither parameters nor library_items is a list of checks (an error answer, not a device status)',
          };
        }
        status = s.data;
      }
      const evaluation = evaluate(d, status, config);
      const events: EventDraft[] = [];
      const next: DeviceState = {
        ...(previous?.status ? { status: previous.status } : {}),
        ...(previous?.checked_in ? { checked_in: previous.checked_in } : {}),
        ...(previous?.since ? { since: previous.since } : {}),
        ...(previous?.failing ? { failing: previous.failing } : {}),
        ...identity(d),
        seq: previous?.seq ?? 0,
      };
      let outcome: DeviceOutcome;

      const at = changedAt(d, previous, scannedAt);
      if (evaluation.kind === 'needs_status') {
        // Either unchanged since the last evaluation, or its status could not be read this time.
        outcome = needsStatus(d, previous) ? 'deferred' : 'unchanged';
        // Until its status is read: a device back after it was reported gone keeps the mark, one
        // whose status came from a flag keeps saying so, one whose read failed stays behind.
        if (previous?.gone !== undefined) next.gone = previous.gone;
        if (previous !== undefined && fromFlag(previous)) next.flagged = true;
        if (previous?.read_failed !== undefined) next.read_failed = previous.read_failed;
      } else {
        if (d.last_check_in) next.checked_in = d.last_check_in;
        else delete next.checked_in;
        if (evaluation.kind === 'undetermined') {
          outcome = 'undetermined';
          // Pending checks say nothing of the flag that is gone: read again until a status decides.
          if (previous !== undefined && fromFlag(previous)) next.flagged = true;
        } else if (previous?.status === undefined) {
          outcome = 'baseline';
          next.status = evaluation.status;
          next.since = d.last_check_in ?? next.since;
          setFailing(next, evaluation);
          if (config.first_sighting === 'emit') {
            next.seq += 1;
            events.push(
              complianceEvent(
                next,
                opposite(evaluation.status),
                evaluation.status,
                `${evaluation.reason} (first seen)`,
                at,
                d.last_check_in ?? 'first-seen',
              ),
            );
          }
        } else if (previous.status === evaluation.status) {
          outcome = 'unchanged';
          setFailing(next, evaluation);
        } else {
          outcome = 'transition';
          next.status = evaluation.status;
          next.since = d.last_check_in ?? next.since;
          setFailing(next, evaluation);
          next.seq += 1;
          events.push(
            complianceEvent(
              next,
              previous.status,
              evaluation.status,
              evaluation.reason,
              at,
              // Not the scan time: a retried scan must give the same record id.
              d.last_check_in ?? 'unknown',
            ),
          );
        }
      }
      return { outcome, next, events };
    },
  );
}

/** Records what the status came from: the failing checks, or a flag of the device record. */
function setFailing(state: DeviceState, evaluation: { failing: string[]; flag?: true }): void {
  if (evaluation.failing.length > 0) state.failing = evaluation.failing;
  else delete state.failing;
  if (evaluation.flag) state.flagged = true;
  else delete state.flagged;
}

export type ScanEnd = SharedScanEnd<KandjiState>;

type KandjiVanishConfig = Pick<
  KandjiConfig,
  'vanished_devices' | 'vanished_guard_share' | 'vanished_guard_min_devices'
>;

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}

/** The vanished-device policy of `config`, with its guard against short listings (as intune's). */
function vanishedRules(config: KandjiVanishConfig): VanishedRules<DeviceState> {
  return {
    policy: config.vanished_devices,
    keepGone: true,
    emptyScan: (known) =>
      `the device list was empty while ${known} devices are known; check the API token's permissions`,
    guard: {
      share: config.vanished_guard_share,
      minDevices: config.vanished_guard_min_devices,
      tooMany: (missing, known) =>
        `${missing} of ${known} known devices are missing from the Kandji device list, more than vanished_guard_share (${percent(config.vanished_guard_share)}) allows: none is reported gone this scan, since a partial answer, a paging problem or a proxy answering 404 looks like that; if they really left Kandji, raise vanished_guard_share until the scans have confirmed them gone`,
    },
    vanished: (id, last, next) => {
      const name = last.aliases.hostname ? `"${last.aliases.hostname}"` : `device ${id}`;
      return complianceEvent(
        next,
        'compliant',
        'not-compliant',
        `${name} is no longer in the Kandji device list (deleted or unenrolled)`,
        undefined,
        'vanished',
      );
    },
  };
}

/**
 * Why the devices missing from a complete scan are not handled at all this scan (no device
 * listed, or more missing than the guard lets vanish), or undefined: asked before any lookup,
 * so that a short listing costs no requests.
 */
export function vanishedHold(
  state: KandjiState,
  seen: ReadonlySet<string>,
  config: KandjiVanishConfig,
): string | undefined {
  return vanishHold(state, seen, vanishedRules(config));
}

/**
 * After a complete scan: devices Kandji no longer lists are handled by the `vanished_devices`
 * policy (the connector has already looked each one up and counts as not listed only those
 * Kandji answered 404 for). A scan that listed no device while devices are known is not trusted,
 * nor one from which more devices are missing than `vanished_guard_share` allows: nothing is
 * forgotten, and `skipped` says why. A device reported gone is kept as not-compliant, so that its
 * status is read and sent when it is listed again.
 */
export function finishScan(
  state: KandjiState,
  seen: ReadonlySet<string>,
  config: KandjiVanishConfig,
  completedAt?: string,
): ScanEnd {
  return endScan(state, seen, vanishedRules(config), completedAt);
}

/**
 * A simulation record: the device list, the status of each device that needs one, and when the
 * scan ran (the time of a change a flag shows without a new check-in; none without it).
 */
export const snapshotSchema = z.looseObject({
  devices: z.array(z.unknown()),
  statuses: z.record(z.string(), z.unknown()).default({}),
  scanned_at: z.iso.datetime({ offset: true }).optional(),
});

export function parseState(value: unknown): KandjiState {
  return parseScanState(stateSchema, value, 'a kandji device state', 'SSF_ERR_KANDJI_STATE');
}

export function describeOutcomes(diff: Pick<DiffResult, 'outcomes'>, end?: ScanEnd): string {
  const { undetermined, deferred } = diff.outcomes;
  const more: string[] = [];
  if (undetermined) more.push(`${undetermined} undetermined (checks pending, or none passing or failing)`);
  if (deferred) more.push(`${deferred} without a status yet`);
  return describeScan(diff.outcomes, more, end);
}

/**
 * The pure mapping behind `ssf-bridge simulate`: one complete device list (with the statuses read
 * for it) against the state of the previous scan.
 */
export function mapSnapshot(
  record: unknown,
  config: KandjiConfig,
  state?: unknown,
): MappingResult<KandjiState> {
  const snapshot = snapshotSchema.safeParse(Array.isArray(record) ? { devices: record } : record);
  if (!snapshot.success) {
    throw new PermanentError(
      `not a Kandji snapshot: ${problemText(snapshot.error)} (expected {"devices": [...], "statuses": {"<device_id>": {...}}})`,
      { code: 'SSF_ERR_KANDJI_PAYLOAD' },
    );
  }
  const { devices, statuses, scanned_at: scannedAt } = snapshot.data;
  const diff = diffDevices(devices, statuses, config, parseState(state), scannedAt);
  return snapshotResult(
    diff,
    (s, seen) => finishScan(s, seen, config),
    (end) => describeOutcomes(diff, end),
    { what: 'Kandji device', list: 'devices', code: 'SSF_ERR_KANDJI_PAYLOAD' },
  );
}
