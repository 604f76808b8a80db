import {
  PermanentError,
  z,
  type EventDraft,
  type MappingResult,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import type { IntuneConfig } from './config.ts';

export const DEVICE_COMPLIANCE_CHANGE =
  'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change';
export const RISK_LEVEL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/risk-level-change';

export type ComplianceStatus = 'compliant' | 'not-compliant';
export type RiskLevel = 'LOW' | 'MEDIUM' | 'HIGH';

/** A managedDevice as Graph returns it. The fields the mapping reads are required. */
export const managedDeviceSchema = z.looseObject({
  id: z.string().min(1),
  complianceState: z.string().min(1),
  lastSyncDateTime: z.string().min(1),
  deviceName: z.string().nullish(),
  userPrincipalName: z.string().nullish(),
  emailAddress: z.string().nullish(),
  azureADDeviceId: z.string().nullish(),
  serialNumber: z.string().nullish(),
  partnerReportedThreatState: z.string().nullish(),
});
export type ManagedDevice = z.infer<typeof managedDeviceSchema>;

/** One page of `GET /deviceManagement/managedDevices`. */
export const devicePageSchema = z.looseObject({
  value: z.array(z.unknown()),
  '@odata.nextLink': z.string().min(1).optional(),
});

const deviceStateSchema = z.object({
  /** Last determined status; absent while Intune has only reported conflict, error or unknown. */
  status: z.enum(['compliant', 'not-compliant']).optional(),
  /** The raw complianceState last seen. */
  compliance_state: z.string(),
  /** Last determined Mobile Threat Defense level. */
  risk: z.enum(['LOW', 'MEDIUM', 'HIGH']).optional(),
  /** Intune's lastSyncDateTime when the current status was first reported. */
  since: z.string().optional(),
  /** E-mail of the assigned user, when there is one. */
  user: z.string().optional(),
  /** The id used as the opaque device subject. */
  device_id: z.string(),
  aliases: z.object({
    intune_device_id: z.string(),
    entra_device_id: z.string().optional(),
    serial_number: z.string().optional(),
    hostname: z.string().optional(),
  }),
  /** Number of events sent for this device; part of every source record id. */
  seq: z.number().int().nonnegative(),
});
export type DeviceState = z.infer<typeof deviceStateSchema>;

/** What the connector keeps between scans: the last known state of every device. */
export const stateSchema = z.object({
  version: z.literal(1),
  devices: z.record(z.string(), deviceStateSchema),
  last_scan: z.object({ completed_at: z.string(), devices: z.number().int().nonnegative() }).optional(),
});
export type IntuneState = z.infer<typeof stateSchema>;

export function emptyState(): IntuneState {
  return { version: 1, devices: {} };
}

type Determined = { status: ComplianceStatus } | { status: undefined };

/** complianceState → CAEP status. conflict, error, unknown, configManager and new values are undetermined. */
export function complianceStatus(state: string, config: Pick<IntuneConfig, 'grace_period'>): Determined {
  switch (state.toLowerCase()) {
    case 'compliant':
      return { status: 'compliant' };
    case 'noncompliant':
      return { status: 'not-compliant' };
    case 'ingraceperiod':
      return { status: config.grace_period };
    default:
      return { status: undefined };
  }
}

const THREAT_LEVELS: Record<string, RiskLevel> = {
  highseverity: 'HIGH',
  compromised: 'HIGH',
  mediumseverity: 'MEDIUM',
  lowseverity: 'LOW',
  secured: 'LOW',
};

/** partnerReportedThreatState → risk level; unknown, activated, deactivated, unresponsive and misconfigured say nothing. */
export function threatLevel(state: string | null | undefined): RiskLevel | undefined {
  return state ? THREAT_LEVELS[state.toLowerCase()] : undefined;
}

// The address syntax the event catalog accepts (RFC 5322 addr-spec, UTF-8 allowed).
const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\u0080-\\uFFFF-]";
const LABEL = '[A-Za-z0-9\\u0080-\\uFFFF](?:[A-Za-z0-9\\u0080-\\uFFFF-]{0,61}[A-Za-z0-9\\u0080-\\uFFFF])?';
const EMAIL = new RegExp(`^${ATEXT}+(?:\\.${ATEXT}+)*@${LABEL}(?:\\.${LABEL})+$`);

function email(...candidates: Array<string | null | undefined>): string | undefined {
  for (const candidate of candidates) {
    const value = candidate?.trim();
    if (value && EMAIL.test(value)) return value;
  }
  return undefined;
}

const NIL_GUID = /^0{8}-0{4}-0{4}-0{4}-0{12}$/;

function nonEmpty(value: string | null | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
}

/** Seconds since the epoch of an ISO time; undefined for Graph's "never" (0001-01-01) and junk. */
function epochSeconds(iso: string | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : undefined;
}

function identity(d: ManagedDevice): Pick<DeviceState, 'user' | 'device_id' | 'aliases'> {
  const entra = nonEmpty(d.azureADDeviceId);
  const entraId = entra && !NIL_GUID.test(entra) ? entra : undefined;
  const user = email(d.userPrincipalName, d.emailAddress);
  const serial = nonEmpty(d.serialNumber);
  const hostname = nonEmpty(d.deviceName);
  return {
    ...(user ? { user } : {}),
    device_id: entraId ?? d.id,
    aliases: {
      intune_device_id: d.id,
      ...(entraId ? { entra_device_id: entraId } : {}),
      ...(serial ? { serial_number: serial } : {}),
      ...(hostname ? { hostname } : {}),
    },
  };
}

/** `{user, device}`, or a device-only complex subject when no user is assigned. */
export function subjectOf(state: Pick<DeviceState, 'user' | 'device_id'>): SubjectIdentifier {
  return {
    format: 'complex',
    ...(state.user ? { user: { format: 'email', email: state.user } } : {}),
    device: { format: 'opaque', id: state.device_id },
  };
}

function label(state: Pick<DeviceState, 'aliases'>): string {
  return state.aliases.hostname ? `"${state.aliases.hostname}"` : `device ${state.aliases.intune_device_id}`;
}

function complianceEvent(
  d: ManagedDevice | undefined,
  state: DeviceState,
  previous: ComplianceStatus,
  current: ComplianceStatus,
  reason: string,
  recordSuffix: string,
): EventDraft {
  const seconds = epochSeconds(d?.lastSyncDateTime);
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
    sourceRecordId: `intune:${state.aliases.intune_device_id}:${state.seq}:${previous}>${current}:${recordSuffix}`,
    ...(seconds === undefined ? {} : { occurredAt: new Date(seconds * 1000).toISOString() }),
    severity: current === 'not-compliant' ? 'high' : 'low',
  };
}

function riskEvent(
  d: ManagedDevice,
  state: DeviceState,
  previous: RiskLevel | undefined,
  current: RiskLevel,
): EventDraft {
  const seconds = epochSeconds(d.lastSyncDateTime);
  const threat = d.partnerReportedThreatState ?? 'unknown';
  return {
    type: RISK_LEVEL_CHANGE,
    subject: subjectOf(state),
    claims: {
      principal: 'DEVICE',
      current_level: current,
      ...(previous ? { previous_level: previous } : {}),
      risk_reason: `INTUNE_MTD_${threat.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`,
      ...(seconds === undefined ? {} : { event_timestamp: seconds }),
      initiating_entity: 'system',
      reason_admin: { en: `Mobile Threat Defense reports ${label(state)} as ${threat}` },
    },
    sourceRecordId: `intune:${d.id}:${state.seq}:risk:${previous ?? 'none'}>${current}:${d.lastSyncDateTime}`,
    ...(seconds === undefined ? {} : { occurredAt: new Date(seconds * 1000).toISOString() }),
    severity: current === 'HIGH' ? 'high' : current === 'MEDIUM' ? 'medium' : 'low',
  };
}

/** "was noncompliant", or "was conflict; last known status compliant" when the last value decided nothing. */
function wasText(previous: DeviceState, config: IntuneConfig): string {
  const decided = complianceStatus(previous.compliance_state, config).status === previous.status;
  return decided
    ? `was ${previous.compliance_state}`
    : `was ${previous.compliance_state}; last known status ${previous.status ?? 'none'}`;
}

export type DeviceOutcome = 'transition' | 'baseline' | 'unchanged' | 'undetermined';

export interface DiffResult {
  events: EventDraft[];
  state: IntuneState;
  /** True when the state differs from the input (it needs committing). */
  changed: boolean;
  /** Ids of every device in the input, valid or not. */
  seen: string[];
  outcomes: Record<DeviceOutcome, number>;
  /** complianceState values that decide nothing (conflict, error, unknown, …), with their counts. */
  undetermined: Record<string, number>;
  /** Records that are not managedDevices, with the reason. */
  rejected: Array<{ index: number; id?: string; message: string }>;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function problemText(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const message = i.message.endsWith('received undefined') ? 'is required' : i.message;
      return `${i.path.map(String).join('.') || '(record)'}: ${message}`;
    })
    .join('; ');
}

/**
 * Compares devices with their last known state. Compliance transitions (compliant ↔
 * not-compliant) and threat-level changes become events; everything else only updates the state.
 * Pure: the same input and state always give the same events and source record ids.
 */
export function diffDevices(
  records: readonly unknown[],
  config: IntuneConfig,
  state: IntuneState,
): DiffResult {
  const devices = { ...state.devices };
  const events: EventDraft[] = [];
  const seen: string[] = [];
  const outcomes: Record<DeviceOutcome, number> = {
    transition: 0,
    baseline: 0,
    unchanged: 0,
    undetermined: 0,
  };
  const undetermined: Record<string, number> = {};
  const rejected: DiffResult['rejected'] = [];
  let changed = false;

  records.forEach((record, index) => {
    const rawId = (record as { id?: unknown } | null)?.id;
    const parsed = managedDeviceSchema.safeParse(record);
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
    seen.push(d.id);
    const previous = devices[d.id];
    const who = identity(d);
    const determined = complianceStatus(d.complianceState, config);
    const level = threatLevel(d.partnerReportedThreatState);
    const next: DeviceState = {
      ...(previous?.status ? { status: previous.status } : {}),
      compliance_state: d.complianceState,
      ...(previous?.risk ? { risk: previous.risk } : {}),
      ...(previous?.since ? { since: previous.since } : {}),
      ...who,
      seq: previous?.seq ?? 0,
    };
    let outcome: DeviceOutcome;

    if (determined.status === undefined) {
      outcome = 'undetermined';
      undetermined[d.complianceState] = (undetermined[d.complianceState] ?? 0) + 1;
    } else if (previous?.status === undefined) {
      outcome = 'baseline';
      next.status = determined.status;
      next.since = d.lastSyncDateTime;
      if (config.first_sighting === 'emit') {
        const prior: ComplianceStatus = determined.status === 'compliant' ? 'not-compliant' : 'compliant';
        next.seq += 1;
        events.push(
          complianceEvent(
            d,
            next,
            prior,
            determined.status,
            `Intune reports ${label(next)} as ${d.complianceState} (first seen)`,
            d.lastSyncDateTime,
          ),
        );
      }
    } else if (previous.status === determined.status) {
      outcome = 'unchanged';
    } else {
      outcome = 'transition';
      next.status = determined.status;
      next.since = d.lastSyncDateTime;
      next.seq += 1;
      events.push(
        complianceEvent(
          d,
          next,
          previous.status,
          determined.status,
          `Intune reports ${label(next)} as ${d.complianceState} (${wasText(previous, config)})`,
          d.lastSyncDateTime,
        ),
      );
    }

    if (config.risk_events && level !== undefined && level !== previous?.risk) {
      // A level after none known is news unless it is LOW (an MTD partner that just started
      // reporting "secured"); a new device follows the first-sighting rule.
      const emit =
        previous === undefined
          ? config.first_sighting === 'emit' && level !== 'LOW'
          : previous.risk !== undefined || level !== 'LOW';
      if (emit) {
        next.seq += 1;
        events.push(riskEvent(d, next, previous?.risk, level));
      }
    }
    if (level !== undefined) next.risk = level;

    outcomes[outcome] += 1;
    if (!previous || !sameJson(previous, next)) changed = true;
    devices[d.id] = next;
  });

  return {
    events,
    state: changed ? { ...state, devices } : state,
    changed,
    seen,
    outcomes,
    undetermined,
    rejected,
  };
}

export interface ScanEnd {
  events: EventDraft[];
  state: IntuneState;
  vanished: string[];
  /** Why vanished devices were not handled, when they were not. */
  skipped?: string;
}

/**
 * After a complete scan: devices that were not returned are handled by the `vanished_devices`
 * policy. A scan that returned no device at all while devices are known is not trusted (the
 * app may have lost its permission): nothing is forgotten.
 */
export function finishScan(
  state: IntuneState,
  seen: ReadonlySet<string>,
  config: IntuneConfig,
  completedAt?: string,
): ScanEnd {
  const missing = Object.keys(state.devices).filter((id) => !seen.has(id));
  const stamp = (s: IntuneState): IntuneState =>
    completedAt ? { ...s, last_scan: { completed_at: completedAt, devices: seen.size } } : s;
  if (seen.size === 0 && missing.length > 0) {
    return {
      events: [],
      state: stamp(state),
      vanished: [],
      skipped: `the scan returned no device while ${missing.length} are known; check the app's DeviceManagementManagedDevices.Read.All permission`,
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
      events.push(
        complianceEvent(
          undefined,
          next,
          'compliant',
          'not-compliant',
          `${label(last)} is no longer managed by Intune (missing from managedDevices: retired, wiped or deleted)`,
          'vanished',
        ),
      );
    }
    delete devices[id];
  }
  return { events, state: stamp({ ...state, devices }), vanished: missing };
}

/** Devices of a snapshot: a Graph page (`{value: [...]}`) or a plain array of managedDevices. */
export function snapshotDevices(record: unknown): unknown[] {
  if (Array.isArray(record)) return record;
  const page = devicePageSchema.safeParse(record);
  if (!page.success) {
    throw new PermanentError(
      `not a managedDevices page: ${problemText(page.error)} (expected {"value": [managedDevice, …]})`,
      { code: 'SSF_ERR_INTUNE_PAYLOAD' },
    );
  }
  return page.data.value;
}

export function parseState(value: unknown): IntuneState {
  if (value === undefined || value === null) return emptyState();
  const parsed = stateSchema.safeParse(value);
  if (!parsed.success) {
    throw new PermanentError(`not an intune device state: ${problemText(parsed.error)}`, {
      code: 'SSF_ERR_INTUNE_STATE',
    });
  }
  return parsed.data;
}

export function describeOutcomes(diff: Pick<DiffResult, 'outcomes' | 'undetermined'>, end?: ScanEnd): string {
  const parts: string[] = [];
  const { baseline, unchanged, undetermined } = diff.outcomes;
  if (baseline) parts.push(`${baseline} first seen (baseline recorded)`);
  if (unchanged) parts.push(`${unchanged} unchanged`);
  if (undetermined) {
    const values = Object.entries(diff.undetermined)
      .map(([v, n]) => `${v} ×${n}`)
      .join(', ');
    parts.push(`${undetermined} undetermined (${values})`);
  }
  if (end?.vanished.length) parts.push(`${end.vanished.length} vanished`);
  if (end?.skipped) parts.push(end.skipped);
  return `no compliance change: ${parts.join('; ') || 'no devices'}`;
}

/**
 * The pure mapping behind `ssf-bridge simulate`: one complete managedDevices snapshot against the
 * state of the previous one. Returns the events and the state to carry into the next snapshot.
 */
export function mapSnapshot(
  record: unknown,
  config: IntuneConfig,
  state?: unknown,
): MappingResult<IntuneState> {
  const records = snapshotDevices(record);
  const diff = diffDevices(records, config, parseState(state));
  if (diff.rejected.length > 0) {
    const shown = diff.rejected.map((r) => `value[${r.index}] ${r.message}`).join('; ');
    throw new PermanentError(`malformed managedDevice: ${shown}`, { code: 'SSF_ERR_INTUNE_PAYLOAD' });
  }
  const end = finishScan(diff.state, new Set(diff.seen), config);
  const events = [...diff.events, ...end.events];
  if (events.length === 0) return { events: [], ignored: describeOutcomes(diff, end), state: end.state };
  return { events, state: end.state };
}
