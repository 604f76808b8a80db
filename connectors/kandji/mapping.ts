import {
  PermanentError,
  z,
  type EventDraft,
  type MappingResult,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import type { KandjiConfig } from './config.ts';

export const DEVICE_COMPLIANCE_CHANGE =
  'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change';

export type ComplianceStatus = 'compliant' | 'not-compliant';

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

/** `GET /api/v1/devices/{device_id}/status`: blueprint parameters and library items with their status. */
export const deviceStatusSchema = z.looseObject({
  device_id: z.string().optional(),
  parameters: z.array(statusItemSchema).nullish(),
  library_items: z.array(statusItemSchema).nullish(),
});
export type DeviceStatus = z.infer<typeof deviceStatusSchema>;

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
});
export type DeviceState = z.infer<typeof deviceStateSchema>;

/** What the connector keeps between scans: the last known state of every device. */
export const stateSchema = z.object({
  version: z.literal(1),
  devices: z.record(z.string(), deviceStateSchema),
  last_scan: z.object({ completed_at: z.string(), devices: z.number().int().nonnegative() }).optional(),
});
export type KandjiState = z.infer<typeof stateSchema>;

export function emptyState(): KandjiState {
  return { version: 1, devices: {} };
}

export type Evaluation =
  | { kind: 'status'; status: ComplianceStatus; reason: string; failing: string[] }
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
 * pending leave the status undetermined.
 */
export function evaluate(
  device: KandjiDevice,
  status: DeviceStatus | undefined,
  config: Pick<KandjiConfig, 'include_library_items'>,
): Evaluation {
  const flag = flagged(device);
  if (flag) return { kind: 'status', status: 'not-compliant', reason: flag, failing: [] };
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
  return {
    kind: 'status',
    status: 'compliant',
    reason: `every Kandji check passes on ${label(device)} (${passing} passing)`,
    failing: [],
  };
}

// The address syntax the event catalog accepts (RFC 5322 addr-spec, UTF-8 allowed).
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\u0080-\\uFFFF-]";
const LABEL = '[A-Za-z0-9\\u0080-\\uFFFF](?:[A-Za-z0-9\\u0080-\\uFFFF-]{0,61}[A-Za-z0-9\\u0080-\\uFFFF])?';
const EMAIL = new RegExp(`^${ATEXT}+(?:\\.${ATEXT}+)*@${LABEL}(?:\\.${LABEL})+$`);

function userEmail(user: KandjiDevice['user']): string | undefined {
  const raw = typeof user === 'string' ? user : user?.email;
  const value = raw?.trim();
  return value && EMAIL.test(value) ? value : undefined;
}

function identity(d: KandjiDevice): Pick<DeviceState, 'user' | 'aliases'> {
  const user = userEmail(d.user);
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
  return {
    format: 'complex',
    ...(state.user ? { user: { format: 'email', email: state.user } } : {}),
    device: { format: 'opaque', id: state.aliases.kandji_device_id },
  };
}

function epochSeconds(iso: string | null | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : undefined;
}

function complianceEvent(
  state: DeviceState,
  previous: ComplianceStatus,
  current: ComplianceStatus,
  reason: string,
  checkedIn: string | null | undefined,
  recordSuffix: string,
): EventDraft {
  const seconds = epochSeconds(checkedIn);
  return {
    type: DEVICE_COMPLIANCE_CHANGE,
    subject: subjectOf(state),
    claims: {
      previous_status: previous,
      current_status: current,
      ...(seconds === undefined ? {} : { event_timestamp: seconds }),
      initiating_entity: 'policy',
      reason_admin: { en: reason },
    },
    sourceRecordId: `kandji:${state.aliases.kandji_device_id}:${state.seq}:${previous}>${current}:${recordSuffix}`,
    ...(seconds === undefined ? {} : { occurredAt: new Date(seconds * 1000).toISOString() }),
    severity: current === 'not-compliant' ? 'high' : 'low',
  };
}

/** Whether a device's status must be read (again): it checked in since its last evaluation. */
export function needsStatus(device: KandjiDevice, previous: DeviceState | undefined): boolean {
  if (flagged(device)) return false;
  return previous?.status === undefined || previous.checked_in !== (device.last_check_in ?? undefined);
}

export type DeviceOutcome = 'transition' | 'baseline' | 'unchanged' | 'undetermined' | 'deferred';

export interface DiffResult {
  events: EventDraft[];
  state: KandjiState;
  changed: boolean;
  /** Ids of every device in the input, valid or not. */
  seen: string[];
  outcomes: Record<DeviceOutcome, number>;
  rejected: Array<{ index: number; id?: string; message: string }>;
}

function problemText(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const message = i.message.endsWith('received undefined') ? 'is required' : i.message;
      return `${i.path.map(String).join('.') || '(record)'}: ${message}`;
    })
    .join('; ');
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * Compares devices (with the statuses read for them) against their last known state.
 * A device whose status is needed but not given keeps its state and is counted as deferred:
 * the next scan reads it. Pure: the same input and state give the same events.
 */
export function diffDevices(
  records: readonly unknown[],
  statuses: Readonly<Record<string, unknown>>,
  config: KandjiConfig,
  state: KandjiState,
): DiffResult {
  const devices = { ...state.devices };
  const events: EventDraft[] = [];
  const seen: string[] = [];
  const outcomes: Record<DeviceOutcome, number> = {
    transition: 0,
    baseline: 0,
    unchanged: 0,
    undetermined: 0,
    deferred: 0,
  };
  const rejected: DiffResult['rejected'] = [];
  let changed = false;

  records.forEach((record, index) => {
    const rawId = (record as { device_id?: unknown } | null)?.device_id;
    const parsed = kandjiDeviceSchema.safeParse(record);
    if (!parsed.success) {
      if (typeof rawId === 'string' && rawId.length > 0) seen.push(rawId);
      rejected.push({
        index,
        ...(typeof rawId === 'string' ? { id: rawId } : {}),
        message: problemText(parsed.error),
      });
      return;
    }
    const d = parsed.data;
    seen.push(d.device_id);
    const previous = devices[d.device_id];
    const rawStatus = statuses[d.device_id];
    let status: DeviceStatus | undefined;
    if (rawStatus !== undefined) {
      const s = deviceStatusSchema.safeParse(rawStatus);
      if (!s.success) {
        rejected.push({ index, id: d.device_id, message: `status: ${problemText(s.error)}` });
        return;
      }
      status = s.data;
    }
    const evaluation = evaluate(d, status, config);
    const base: DeviceState = {
      ...(previous?.status ? { status: previous.status } : {}),
      ...(previous?.checked_in ? { checked_in: previous.checked_in } : {}),
      ...(previous?.since ? { since: previous.since } : {}),
      ...(previous?.failing ? { failing: previous.failing } : {}),
      ...identity(d),
      seq: previous?.seq ?? 0,
    };
    let outcome: DeviceOutcome;
    const next: DeviceState = { ...base };

    if (evaluation.kind === 'needs_status') {
      // Either unchanged since the last evaluation, or its status could not be read this time.
      outcome = needsStatus(d, previous) ? 'deferred' : 'unchanged';
    } else {
      if (d.last_check_in) next.checked_in = d.last_check_in;
      else delete next.checked_in;
      if (evaluation.kind === 'undetermined') {
        outcome = 'undetermined';
      } else if (previous?.status === undefined) {
        outcome = 'baseline';
        next.status = evaluation.status;
        next.since = d.last_check_in ?? next.since;
        setFailing(next, evaluation.failing);
        if (config.first_sighting === 'emit') {
          next.seq += 1;
          const prior: ComplianceStatus = evaluation.status === 'compliant' ? 'not-compliant' : 'compliant';
          events.push(
            complianceEvent(
              next,
              prior,
              evaluation.status,
              `${evaluation.reason} (first seen)`,
              d.last_check_in,
              d.last_check_in ?? 'first-seen',
            ),
          );
        }
      } else if (previous.status === evaluation.status) {
        outcome = 'unchanged';
        setFailing(next, evaluation.failing);
      } else {
        outcome = 'transition';
        next.status = evaluation.status;
        next.since = d.last_check_in ?? next.since;
        setFailing(next, evaluation.failing);
        next.seq += 1;
        events.push(
          complianceEvent(
            next,
            previous.status,
            evaluation.status,
            evaluation.reason,
            d.last_check_in,
            d.last_check_in ?? 'unknown',
          ),
        );
      }
    }
    outcomes[outcome] += 1;
    if (!previous || !sameJson(previous, next)) changed = true;
    devices[d.device_id] = next;
  });

  return { events, state: changed ? { ...state, devices } : state, changed, seen, outcomes, rejected };
}

function setFailing(state: DeviceState, failing: string[]): void {
  if (failing.length > 0) state.failing = failing;
  else delete state.failing;
}

export interface ScanEnd {
  events: EventDraft[];
  state: KandjiState;
  vanished: string[];
  skipped?: string;
}

/**
 * After a complete scan: devices Kandji no longer lists are handled by the `vanished_devices`
 * policy. A scan that listed no device while devices are known is not trusted.
 */
export function finishScan(
  state: KandjiState,
  seen: ReadonlySet<string>,
  config: KandjiConfig,
  completedAt?: string,
): ScanEnd {
  const missing = Object.keys(state.devices).filter((id) => !seen.has(id));
  const stamp = (s: KandjiState): KandjiState =>
    completedAt ? { ...s, last_scan: { completed_at: completedAt, devices: seen.size } } : s;
  if (seen.size === 0 && missing.length > 0) {
    return {
      events: [],
      state: stamp(state),
      vanished: [],
      skipped: `the device list was empty while ${missing.length} devices are known; check the API token's permissions`,
    };
  }
  if (missing.length === 0 || config.vanished_devices === 'keep') {
    return { events: [], state: stamp(state), vanished: config.vanished_devices === 'keep' ? [] : missing };
  }
  const devices = { ...state.devices };
  const events: EventDraft[] = [];
  for (const id of missing) {
    const last = devices[id]!;
    if (config.vanished_devices === 'not-compliant' && last.status === 'compliant') {
      const next: DeviceState = { ...last, seq: last.seq + 1 };
      const name = last.aliases.hostname ? `"${last.aliases.hostname}"` : `device ${id}`;
      events.push(
        complianceEvent(
          next,
          'compliant',
          'not-compliant',
          `${name} is no longer in the Kandji device list (deleted or unenrolled)`,
          undefined,
          'vanished',
        ),
      );
    }
    delete devices[id];
  }
  return { events, state: stamp({ ...state, devices }), vanished: missing };
}

/** A simulation record: the device list and the status of each device that needs one. */
export const snapshotSchema = z.looseObject({
  devices: z.array(z.unknown()),
  statuses: z.record(z.string(), z.unknown()).default({}),
});

export function parseState(value: unknown): KandjiState {
  if (value === undefined || value === null) return emptyState();
  const parsed = stateSchema.safeParse(value);
  if (!parsed.success) {
    throw new PermanentError(`not a kandji device state: ${problemText(parsed.error)}`, {
      code: 'SSF_ERR_KANDJI_STATE',
    });
  }
  return parsed.data;
}

export function describeOutcomes(diff: Pick<DiffResult, 'outcomes'>, end?: ScanEnd): string {
  const { baseline, unchanged, undetermined, deferred } = diff.outcomes;
  const parts: string[] = [];
  if (baseline) parts.push(`${baseline} first seen (baseline recorded)`);
  if (unchanged) parts.push(`${unchanged} unchanged`);
  if (undetermined) parts.push(`${undetermined} undetermined (checks pending)`);
  if (deferred) parts.push(`${deferred} without a status yet`);
  if (end?.vanished.length) parts.push(`${end.vanished.length} vanished`);
  if (end?.skipped) parts.push(end.skipped);
  return `no compliance change: ${parts.join('; ') || 'no devices'}`;
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
  const diff = diffDevices(snapshot.data.devices, snapshot.data.statuses, config, parseState(state));
  if (diff.rejected.length > 0) {
    const shown = diff.rejected.map((r) => `devices[${r.index}] ${r.message}`).join('; ');
    throw new PermanentError(`malformed Kandji device: ${shown}`, { code: 'SSF_ERR_KANDJI_PAYLOAD' });
  }
  const end = finishScan(diff.state, new Set(diff.seen), config);
  const events = [...diff.events, ...end.events];
  if (events.length === 0) return { events: [], ignored: describeOutcomes(diff, end), state: end.state };
  return { events, state: end.state };
}
