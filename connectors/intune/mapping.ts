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
import type { IntuneConfig } from './config.ts';

export { DEVICE_COMPLIANCE_CHANGE, type ComplianceStatus } from '../_shared/mdm-mapping.ts';
export const RISK_LEVEL_CHANGE = 'https://schemas.openid.net/secevent/caep/event-type/risk-level-change';

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
  /** Last determined device risk: the Mobile Threat Defense level, raised to MEDIUM in a grace period. */
  risk: z.enum(['LOW', 'MEDIUM', 'HIGH']).optional(),
  /** grace_period medium-risk: a MEDIUM risk for the grace period stands until the device is compliant. */
  grace_risk: z.boolean().optional(),
  /** Intune's lastSyncDateTime when the current status was first reported. */
  since: z.string().optional(),
  /** E-mail of the assigned user, when there is one. */
  user: z.string().optional(),
  /**
   * The id used as the opaque device subject: the Entra device id, else the Intune id; kept once
   * an event has been sent about the device.
   */
  device_id: z.string(),
  aliases: z.object({
    intune_device_id: z.string(),
    entra_device_id: z.string().optional(),
    serial_number: z.string().optional(),
    hostname: z.string().optional(),
  }),
  /** Number of events sent for this device; part of every source record id. */
  seq: z.number().int().nonnegative(),
  /**
   * Set while the device is reported gone (kept as not-compliant): when the scan found it gone. A
   * device listed again has its current status sent, and its record ids go on from its `seq`.
   */
  gone: z.string().optional(),
  /**
   * When the device, missing from a listing, was last looked up on its own and found still there
   * (or not answered for): devices never looked up go first next time. Dropped once it is listed.
   */
  looked_up: z.string().optional(),
});
export type DeviceState = z.infer<typeof deviceStateSchema>;

/** What the connector keeps between scans: the last known state of every device. */
export const stateSchema = scanStateSchema(deviceStateSchema);
export type IntuneState = z.infer<typeof stateSchema>;

type Determined = { status: ComplianceStatus } | { status: undefined };

/** complianceState → CAEP status. conflict, error, unknown, configManager and new values are undetermined. */
export function complianceStatus(state: string, config: Pick<IntuneConfig, 'grace_period'>): Determined {
  switch (state.toLowerCase()) {
    case 'compliant':
      return { status: 'compliant' };
    case 'noncompliant':
      return { status: 'not-compliant' };
    case 'ingraceperiod':
      return { status: config.grace_period === 'not-compliant' ? 'not-compliant' : 'compliant' };
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

const NIL_GUID = /^0{8}-0{4}-0{4}-0{4}-0{12}$/;

function nonEmpty(value: string | null | undefined): string | undefined {
  const v = value?.trim();
  return v ? v : undefined;
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
  return deviceSubject(state.user, state.device_id);
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
  return deviceComplianceEvent(
    subjectOf(state),
    previous,
    current,
    reason,
    wholeSeconds(d?.lastSyncDateTime),
    `intune:${state.aliases.intune_device_id}:${state.seq}:${previous}>${current}:${recordSuffix}`,
  );
}

/** What set a device's risk level: its Mobile Threat Defense partner, or its compliance grace period. */
type RiskCause = 'mtd' | 'grace' | 'grace-ended';

const RISK_RANK: Record<RiskLevel, number> = { LOW: 0, MEDIUM: 1, HIGH: 2 };

function riskReason(d: ManagedDevice, state: DeviceState, cause: RiskCause): { code: string; text: string } {
  if (cause === 'grace') {
    return {
      code: 'INTUNE_COMPLIANCE_GRACE_PERIOD',
      text: `Intune reports ${label(state)} in its compliance grace period`,
    };
  }
  if (cause === 'grace-ended') {
    return {
      code: 'INTUNE_COMPLIANCE_GRACE_PERIOD_ENDED',
      text: `Intune reports ${label(state)} compliant again after its grace period`,
    };
  }
  const threat = d.partnerReportedThreatState ?? 'unknown';
  return {
    code: `INTUNE_MTD_${threat.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`,
    text: `Mobile Threat Defense reports ${label(state)} as ${threat}`,
  };
}

function riskEvent(
  d: ManagedDevice,
  state: DeviceState,
  previous: RiskLevel | undefined,
  current: RiskLevel,
  cause: RiskCause,
): EventDraft {
  const seconds = epochSeconds(d.lastSyncDateTime);
  const reason = riskReason(d, state, cause);
  return {
    type: RISK_LEVEL_CHANGE,
    subject: subjectOf(state),
    claims: {
      principal: 'DEVICE',
      current_level: current,
      ...(previous ? { previous_level: previous } : {}),
      risk_reason: reason.code,
      ...(seconds === undefined ? {} : { event_timestamp: seconds }),
      initiating_entity: 'system',
      reason_admin: { en: reason.text },
    },
    sourceRecordId: `intune:${d.id}:${state.seq}:risk:${previous ?? 'none'}>${current}:${d.lastSyncDateTime}`,
    ...(seconds === undefined ? {} : { occurredAt: new Date(seconds * 1000).toISOString() }),
    severity: current === 'HIGH' ? 'high' : current === 'MEDIUM' ? 'medium' : 'low',
  };
}

/**
 * The device's risk now, and what set it: the Mobile Threat Defense level, raised to MEDIUM while
 * the device is in its grace period (grace_period medium-risk). That MEDIUM stands, through
 * non-compliance, until the device is compliant; then the risk is LOW again unless its partner
 * says otherwise. Records in `next` whether a grace-period MEDIUM stands.
 */
function deviceRisk(
  d: ManagedDevice,
  previous: DeviceState | undefined,
  status: ComplianceStatus | undefined,
  mtd: RiskLevel | undefined,
  config: IntuneConfig,
  next: DeviceState,
): { current: RiskLevel | undefined; cause: RiskCause } {
  if (config.grace_period !== 'medium-risk') return { current: mtd, cause: 'mtd' };
  // With risk_events off, the partner's level is not sent, so only the grace period counts.
  const partner = config.risk_events ? mtd : undefined;
  if (d.complianceState.toLowerCase() === 'ingraceperiod') {
    next.grace_risk = true;
    return partner !== undefined && RISK_RANK[partner] >= RISK_RANK.MEDIUM
      ? { current: partner, cause: 'mtd' }
      : { current: 'MEDIUM', cause: 'grace' };
  }
  if (!previous?.grace_risk) return { current: partner, cause: 'mtd' };
  if (status !== 'compliant') {
    next.grace_risk = true;
    const higher = partner !== undefined && RISK_RANK[partner] > RISK_RANK.MEDIUM;
    return { current: higher ? partner : previous.risk, cause: 'mtd' };
  }
  return partner !== undefined
    ? { current: partner, cause: 'mtd' }
    : { current: 'LOW', cause: 'grace-ended' };
}

/** "was noncompliant", or "was conflict; last known status compliant" when the last value decided nothing. */
function wasText(previous: DeviceState, config: IntuneConfig): string {
  if (previous.gone !== undefined) return 'listed again after it was reported gone';
  const decided = complianceStatus(previous.compliance_state, config).status === previous.status;
  return decided
    ? `was ${previous.compliance_state}`
    : `was ${previous.compliance_state}; last known status ${previous.status ?? 'none'}`;
}

export type DeviceOutcome = 'transition' | 'baseline' | 'unchanged' | 'undetermined';
const OUTCOMES: readonly DeviceOutcome[] = ['transition', 'baseline', 'unchanged', 'undetermined'];

export interface DiffResult extends PageDiff<IntuneState, DeviceOutcome> {
  /** complianceState values that decide nothing (conflict, error, unknown, …), with their counts. */
  undetermined: Record<string, number>;
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
  const undetermined: Record<string, number> = {};
  const diff = diffPage(
    records,
    state,
    { schema: managedDeviceSchema, idKey: 'id', outcomes: OUTCOMES },
    (d, previous) => {
      const events: EventDraft[] = [];
      const determined = complianceStatus(d.complianceState, config);
      const level = threatLevel(d.partnerReportedThreatState);
      const next: DeviceState = {
        ...(previous?.status ? { status: previous.status } : {}),
        compliance_state: d.complianceState,
        ...(previous?.risk ? { risk: previous.risk } : {}),
        ...(previous?.since ? { since: previous.since } : {}),
        ...identity(d),
        seq: previous?.seq ?? 0,
      };
      // Once an event has been sent about a device, receivers know it by that event's device id:
      // it stays, even when Intune later reports an Entra device id (the other id is an alias).
      if (previous !== undefined && previous.seq > 0) next.device_id = previous.device_id;
      let outcome: DeviceOutcome;

      if (determined.status === undefined) {
        outcome = 'undetermined';
        undetermined[d.complianceState] = (undetermined[d.complianceState] ?? 0) + 1;
      } else if (previous?.status === undefined) {
        outcome = 'baseline';
        next.status = determined.status;
        next.since = d.lastSyncDateTime;
        if (config.first_sighting === 'emit') {
          next.seq += 1;
          events.push(
            complianceEvent(
              d,
              next,
              opposite(determined.status),
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

      const { current, cause } = deviceRisk(d, previous, determined.status, level, config, next);
      if ((config.risk_events || cause !== 'mtd') && current !== undefined && current !== previous?.risk) {
        // A level after none known is news unless it is LOW (an MTD partner that just started
        // reporting "secured"); a new device follows the first-sighting rule.
        const emit =
          previous === undefined
            ? config.first_sighting === 'emit' && current !== 'LOW'
            : previous.risk !== undefined || current !== 'LOW';
        if (emit) {
          next.seq += 1;
          events.push(riskEvent(d, next, previous?.risk, current, cause));
        }
      }
      if (current !== undefined) next.risk = current;
      return { outcome, next, events };
    },
  );
  return { ...diff, undetermined };
}

export type ScanEnd = SharedScanEnd<IntuneState>;

type IntuneVanishConfig = Pick<
  IntuneConfig,
  'vanished_devices' | 'vanished_guard_share' | 'vanished_guard_min_devices'
>;

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}

/** The vanished-device policy of `config`, with its guard against short listings. */
function vanishedRules(config: IntuneVanishConfig): VanishedRules<DeviceState> {
  return {
    policy: config.vanished_devices,
    keepGone: true,
    emptyScan: (known) =>
      `the scan returned no device while ${known} are known; check the app's DeviceManagementManagedDevices.Read.All permission`,
    guard: {
      share: config.vanished_guard_share,
      minDevices: config.vanished_guard_min_devices,
      tooMany: (missing, known) =>
        `${missing} of ${known} known devices are missing from the managedDevices listing, more than vanished_guard_share (${percent(config.vanished_guard_share)}) allows: none is reported gone this scan, since a partial Graph answer or a paging problem looks like that; if they really left Intune, raise vanished_guard_share until the scans have confirmed them gone`,
    },
    vanished: (_id, last, next) =>
      complianceEvent(
        undefined,
        next,
        'compliant',
        'not-compliant',
        `${label(last)} is no longer managed by Intune (missing from managedDevices: retired, wiped or deleted)`,
        'vanished',
      ),
  };
}

/**
 * Why the devices missing from a complete scan are not handled at all this scan (no device
 * returned, or more missing than the guard lets vanish), or undefined.
 */
export function vanishedHold(
  state: IntuneState,
  seen: ReadonlySet<string>,
  config: IntuneVanishConfig,
): string | undefined {
  return vanishHold(state, seen, vanishedRules(config));
}

/**
 * After a complete scan: devices that were not returned are handled by the `vanished_devices`
 * policy (the connector has already looked each one up and counts as not returned only those
 * Graph answered 404 for). A scan that returned no device at all while devices are known is not
 * trusted (the app may have lost its permission), nor one from which more devices are missing
 * than `vanished_guard_share` allows (a short listing): nothing is forgotten, and `skipped` says
 * why. A device reported gone is kept as not-compliant (for 90 days), so that when Intune lists
 * it again its current status is sent rather than recorded as a silent first sighting, and its
 * record ids go on from its `seq`.
 */
export function finishScan(
  state: IntuneState,
  seen: ReadonlySet<string>,
  config: IntuneVanishConfig,
  completedAt?: string,
): ScanEnd {
  return endScan(state, seen, vanishedRules(config), completedAt);
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
  return parseScanState(stateSchema, value, 'an intune device state', 'SSF_ERR_INTUNE_STATE');
}

export function describeOutcomes(diff: Pick<DiffResult, 'outcomes' | 'undetermined'>, end?: ScanEnd): string {
  const { undetermined } = diff.outcomes;
  const values = Object.entries(diff.undetermined)
    .map(([v, n]) => `${v} ×${n}`)
    .join(', ');
  return describeScan(diff.outcomes, undetermined ? [`${undetermined} undetermined (${values})`] : [], end);
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
  const diff = diffDevices(snapshotDevices(record), config, parseState(state));
  return snapshotResult(
    diff,
    (s, seen) => finishScan(s, seen, config),
    (end) => describeOutcomes(diff, end),
    { what: 'managedDevice', list: 'value', code: 'SSF_ERR_INTUNE_PAYLOAD' },
  );
}
