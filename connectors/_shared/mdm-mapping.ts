/**
 * The device bookkeeping the MDM connectors share (intune and kandji; jamf-pro for subjects,
 * events and the vanished-device guard): the checkpoint holding the last known state of every device, the diff of a page of
 * device records against it, the vanished-device policy (and its guard) at the end of a complete
 * scan, and the CAEP device-compliance-change event. Pure: the same records and state always give the same
 * events and source record ids.
 */
import {
  PermanentError,
  usableEmail,
  z,
  type EventDraft,
  type MappingResult,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';

export const DEVICE_COMPLIANCE_CHANGE =
  'https://schemas.openid.net/secevent/caep/event-type/device-compliance-change';

export type ComplianceStatus = 'compliant' | 'not-compliant';

/** The first candidate that is an address the event catalog accepts, trimmed. */
export function email(...candidates: Array<string | null | undefined>): string | undefined {
  for (const candidate of candidates) {
    const value = usableEmail(candidate);
    if (value) return value;
  }
  return undefined;
}

/** Seconds since the epoch of an ISO time; undefined for Graph's "never" (0001-01-01) and junk. */
export function epochSeconds(iso: string | null | undefined): number | undefined {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) && ms > 0 ? Math.floor(ms / 1000) : undefined;
}

/** A vendor time cut to whole seconds, as ISO: the event time of a scanned change. */
export function wholeSeconds(iso: string | null | undefined): string | undefined {
  const seconds = epochSeconds(iso);
  return seconds === undefined ? undefined : new Date(seconds * 1000).toISOString();
}

/** zod issues as one line: `path: problem; …`, with "is required" for missing fields. */
export function problemText(error: z.ZodError): string {
  return error.issues
    .map((i) => {
      const message = i.message.endsWith('received undefined') ? 'is required' : i.message;
      return `${i.path.map(String).join('.') || '(record)'}: ${message}`;
    })
    .join('; ');
}

/** `{user, device}`, or a device-only complex subject when no user is assigned. */
export function deviceSubject(user: string | undefined, deviceId: string): SubjectIdentifier {
  return {
    format: 'complex',
    ...(user ? { user: { format: 'email', email: user } } : {}),
    device: { format: 'opaque', id: deviceId },
  };
}

/** CAEP device-compliance-change; `at` (ISO) is when the source saw the change, when known. */
export function complianceEvent(
  subject: SubjectIdentifier,
  previous: ComplianceStatus,
  current: ComplianceStatus,
  reason: string,
  at: string | undefined,
  sourceRecordId: string,
): EventDraft {
  const seconds = at === undefined ? undefined : Math.floor(Date.parse(at) / 1000);
  return {
    type: DEVICE_COMPLIANCE_CHANGE,
    subject,
    claims: {
      previous_status: previous,
      current_status: current,
      ...(seconds === undefined ? {} : { event_timestamp: seconds }),
      initiating_entity: 'policy',
      reason_admin: { en: reason },
    },
    sourceRecordId,
    ...(at === undefined ? {} : { occurredAt: at }),
    severity: current === 'not-compliant' ? 'high' : 'low',
  };
}

/** Config fields of the policies below, as intune and kandji word them (jamf-pro speaks of computers). */
export const scanPolicyShape = {
  first_sighting: z.enum(['baseline', 'emit']).default('baseline').meta({
    description:
      '`baseline` (default): the first status seen for a device is recorded without an event. `emit`: it is sent, with the opposite status as previous_status.',
  }),
  vanished_devices: z.enum(['not-compliant', 'forget', 'keep']).default('not-compliant').meta({
    description:
      'A device missing from a complete scan: `not-compliant` (default) sends compliant → not-compliant for a device last known compliant and keeps it as not-compliant for 90 days, so that its status is sent if it is listed again; `forget` drops it silently; `keep` keeps its last state.',
  }),
};

/**
 * Config fields of the vanished-device guard (intune, kandji, jamf-pro): how many of the known
 * devices one scan may report gone. Beyond that the listing itself is not trusted (a partial
 * answer, a paging problem looks like a mass departure), so the scan reports none gone.
 */
export const vanishGuardShape = {
  vanished_guard_share: z.number().min(0).max(1).default(0.1).meta({
    description:
      'Largest share (0–1) of the known devices one scan may report vanished. When more are missing from a complete scan (and more than `vanished_guard_min_devices`), none is handled that scan: the instance status becomes `recoverable_error` saying why, until a scan lists them again or the share is raised. `1` turns the guard off.',
  }),
  vanished_guard_min_devices: z.number().int().min(0).default(10).meta({
    description:
      'Number of missing devices the guard always lets through, whatever their share of the known devices, so that a small fleet can lose a few devices at once.',
  }),
};

/**
 * Config field of how many devices missing from a scan are looked up one by one per scan, as
 * intune words it; `request` names the lookup (e.g. "GET /api/v1/devices/{id}").
 */
export function vanishedLookupsField(request: string, what = 'Devices') {
  return z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(100)
    .meta({
      description: `${what} missing from a scan that are looked up one by one (${request}) to confirm they are gone, per scan; the others stay as they are until a later scan looks them up.`,
    });
}

/**
 * The order to look missing devices up in: those never looked up (no `lookedUp` time) first, in
 * the order given, then those looked up longest ago, so that one whose lookup keeps failing (or
 * that the vendor still has although it is not listed) does not hold the others back.
 */
export function lookupOrder(ids: readonly string[], lookedUp: (id: string) => string | undefined): string[] {
  return ids
    .map((id, index) => ({ id, index, after: lookedUp(id) ?? '' }))
    .sort((a, b) => (a.after < b.after ? -1 : a.after > b.after ? 1 : a.index - b.index))
    .map((m) => m.id);
}

/** The status a first sighting is reported as coming from (`first_sighting: emit`). */
export function opposite(status: ComplianceStatus): ComplianceStatus {
  return status === 'compliant' ? 'not-compliant' : 'compliant';
}

// ─── Scan state ─────────────────────────────────────────────────────────────────────────────────

/** What the diff and the vanished-device policy read of a device's state. */
export interface TrackedDevice {
  /** Last determined status; absent while the source has decided none. */
  status?: ComplianceStatus | undefined;
  /** Number of events sent for this device; part of every source record id. */
  seq: number;
  /**
   * Set on a device reported gone (`vanished_devices: not-compliant`) and kept as not-compliant:
   * when it appears again its current status is sent. The time the scan found it gone, when known.
   */
  gone?: string | undefined;
}

export interface ScanState<D> {
  version: 1;
  devices: Record<string, D>;
  last_scan?: { completed_at: string; devices: number } | undefined;
}

const lastScanSchema = z.object({ completed_at: z.string(), devices: z.number().int().nonnegative() });

/** What a scanning connector keeps between scans: the last known state of every device. */
export function scanStateSchema<D extends z.ZodType>(device: D) {
  return z.object({
    version: z.literal(1),
    devices: z.record(z.string(), device),
    last_scan: lastScanSchema.optional(),
  });
}

export function emptyScanState<D>(): ScanState<D> {
  return { version: 1, devices: {} };
}

/** The state `simulate` carries between snapshots; none is the empty state, junk is refused. */
export function parseScanState<S extends ScanState<unknown>>(
  schema: z.ZodType<S>,
  value: unknown,
  what: string,
  code: string,
): S {
  if (value === undefined || value === null) return emptyScanState() as S;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new PermanentError(`not ${what}: ${problemText(parsed.error)}`, { code });
  return parsed.data;
}

// ─── Diff of a page ─────────────────────────────────────────────────────────────────────────────

export interface Rejected {
  index: number;
  id?: string;
  message: string;
}

/** What one device record means: its next state and events, or why it cannot be read. */
export type Verdict<D, O extends string> =
  { outcome: O; next: D; events: EventDraft[] } | { problem: string };

export interface PageDiff<S, O extends string> {
  events: EventDraft[];
  state: S;
  /** True when the state differs from the input (it needs committing). */
  changed: boolean;
  /** Ids of every device in the input, valid or not. */
  seen: string[];
  outcomes: Record<O, number>;
  /** Records that are not devices, with the reason. */
  rejected: Rejected[];
}

/**
 * Compares a page of device records with their last known state. A record the schema refuses is
 * rejected, but its id (when it has one) still counts as seen, so a device with one bad record
 * does not vanish. `decide` turns each valid device into its outcome, next state and events.
 */
export function diffPage<D, K extends string, R extends Record<K, string>, O extends string>(
  records: readonly unknown[],
  state: ScanState<D>,
  read: { schema: z.ZodType<R>; idKey: K; outcomes: readonly O[] },
  decide: (device: R, previous: D | undefined, index: number) => Verdict<D, O>,
): PageDiff<ScanState<D>, O> {
  const devices = { ...state.devices };
  const events: EventDraft[] = [];
  const seen: string[] = [];
  const outcomes = Object.fromEntries(read.outcomes.map((o) => [o, 0])) as Record<O, number>;
  const rejected: Rejected[] = [];
  let changed = false;

  records.forEach((record, index) => {
    const parsed = read.schema.safeParse(record);
    if (!parsed.success) {
      const rawId = (record as Record<string, unknown> | null)?.[read.idKey];
      if (typeof rawId === 'string' && rawId.length > 0) seen.push(rawId);
      rejected.push({
        index,
        ...(typeof rawId === 'string' ? { id: rawId } : {}),
        message: problemText(parsed.error),
      });
      return;
    }
    const id = parsed.data[read.idKey];
    seen.push(id);
    const previous = devices[id];
    const verdict = decide(parsed.data, previous, index);
    if ('problem' in verdict) {
      rejected.push({ index, id, message: verdict.problem });
      return;
    }
    events.push(...verdict.events);
    outcomes[verdict.outcome] += 1;
    if (!previous || JSON.stringify(previous) !== JSON.stringify(verdict.next)) changed = true;
    devices[id] = verdict.next;
  });

  return { events, state: changed ? { ...state, devices } : state, changed, seen, outcomes, rejected };
}

// ─── End of a scan ──────────────────────────────────────────────────────────────────────────────

export interface ScanEnd<S> {
  events: EventDraft[];
  state: S;
  vanished: string[];
  /** Why vanished devices were not handled, when they were not. */
  skipped?: string;
}

/** The most devices one scan may report gone: see vanishGuardShape. */
export interface VanishGuard {
  /** Largest share (0–1) of the devices known present that may vanish in one scan. */
  share: number;
  /** Missing devices let through whatever their share. */
  minDevices: number;
  /** Why a scan from which `missing` of the `known` devices are missing is not trusted. */
  tooMany(missing: number, known: number): string;
}

/** Whether `missing` of `known` devices is more than the guard lets vanish in one scan. */
export function exceedsGuard(
  missing: number,
  known: number,
  guard: Pick<VanishGuard, 'share' | 'minDevices'>,
) {
  return missing > guard.minDevices && missing > guard.share * known;
}

export interface VanishedRules<D> {
  policy: 'not-compliant' | 'forget' | 'keep';
  /** Why a scan that returned nothing while `known` devices are known is not trusted. */
  emptyScan(known: number): string;
  /** When given, a scan from which more devices are missing than it allows handles none of them. */
  guard?: VanishGuard | undefined;
  /** The compliant → not-compliant event of a device that is gone; `next` has its new seq. */
  vanished(id: string, last: D, next: D): EventDraft;
  /**
   * Keep a device reported gone as not-compliant (marked `gone`) instead of forgetting it, so that
   * a device that appears again has its current status sent rather than recorded as a first
   * sighting; such marks are dropped after GONE_KEPT_MS.
   */
  keepGone?: boolean;
}

/** How long a device reported gone is remembered (rules.keepGone): 90 days. */
export const GONE_KEPT_MS = 90 * 86_400_000;

/** Devices the state tracks as present: the ones not marked gone. */
export function presentDevices<D extends TrackedDevice>(state: ScanState<D>): string[] {
  return Object.keys(state.devices).filter((id) => state.devices[id]!.gone === undefined);
}

/**
 * Why the devices missing from a complete scan are not to be handled at all this scan, or
 * undefined: the scan returned no device while devices are known (the credentials may have lost
 * a permission), or (`rules.guard`, unless the policy is `keep`) more of the known devices are
 * missing than the guard lets vanish at once (a short listing looks like that). A connector that
 * confirms missing devices one by one asks this first, so that a short listing costs no lookups.
 */
export function vanishHold<D extends TrackedDevice>(
  state: ScanState<D>,
  seen: ReadonlySet<string>,
  rules: Pick<VanishedRules<D>, 'policy' | 'emptyScan' | 'guard'>,
): string | undefined {
  const present = presentDevices(state);
  const missing = present.filter((id) => !seen.has(id)).length;
  if (missing === 0) return undefined;
  if (seen.size === 0) return rules.emptyScan(missing);
  if (rules.policy !== 'keep' && rules.guard && exceedsGuard(missing, present.length, rules.guard)) {
    return rules.guard.tooMany(missing, present.length);
  }
  return undefined;
}

/**
 * After a complete scan: devices that were not returned are handled by the `vanished_devices`
 * policy, unless vanishHold says the scan is not to be trusted for that: then nothing is
 * reported gone or forgotten, and `skipped` says why.
 */
export function finishScan<D extends TrackedDevice>(
  state: ScanState<D>,
  seen: ReadonlySet<string>,
  rules: VanishedRules<D>,
  completedAt?: string,
): ScanEnd<ScanState<D>> {
  const missing = presentDevices(state).filter((id) => !seen.has(id));
  const stamp = (s: ScanState<D>): ScanState<D> =>
    completedAt ? { ...s, last_scan: { completed_at: completedAt, devices: seen.size } } : s;
  const hold = vanishHold(state, seen, rules);
  if (hold !== undefined) return { events: [], state: stamp(state), vanished: [], skipped: hold };
  const devices = { ...state.devices };
  let pruned = false;
  if (rules.keepGone && completedAt) {
    const cutoff = Date.parse(completedAt) - GONE_KEPT_MS;
    for (const [id, device] of Object.entries(devices)) {
      if (device.gone !== undefined && Date.parse(device.gone) < cutoff) {
        delete devices[id];
        pruned = true;
      }
    }
  }
  if (missing.length === 0 || rules.policy === 'keep') {
    return {
      events: [],
      state: stamp(pruned ? { ...state, devices } : state),
      vanished: rules.policy === 'keep' ? [] : missing,
    };
  }
  const events: EventDraft[] = [];
  for (const id of missing) {
    const last = devices[id]!;
    let next: D = last;
    if (rules.policy === 'not-compliant' && last.status === 'compliant') {
      next = { ...last, seq: last.seq + 1 };
      events.push(rules.vanished(id, last, next));
    }
    if (rules.policy === 'not-compliant' && rules.keepGone && last.status !== undefined) {
      devices[id] = { ...next, status: 'not-compliant', gone: completedAt ?? 'unknown' };
    } else {
      delete devices[id];
    }
  }
  return { events, state: stamp({ ...state, devices }), vanished: missing };
}

/** "no compliance change: …" from the outcome counts, with what the end of the scan did. */
export function describeScan(
  outcomes: { baseline: number; unchanged: number },
  more: readonly string[],
  end?: ScanEnd<unknown>,
): string {
  const parts: string[] = [];
  if (outcomes.baseline) parts.push(`${outcomes.baseline} first seen (baseline recorded)`);
  if (outcomes.unchanged) parts.push(`${outcomes.unchanged} unchanged`);
  parts.push(...more);
  if (end?.vanished.length) parts.push(`${end.vanished.length} vanished`);
  if (end?.skipped) parts.push(end.skipped);
  return `no compliance change: ${parts.join('; ') || 'no devices'}`;
}

/**
 * One simulated scan of a complete snapshot: refuses it when a device is malformed (`list[i]`
 * names it), otherwise ends the scan and returns its events, or why there are none.
 */
export function snapshotResult<S>(
  diff: Pick<PageDiff<S, string>, 'events' | 'state' | 'seen' | 'rejected'>,
  finish: (state: S, seen: ReadonlySet<string>) => ScanEnd<S>,
  describe: (end: ScanEnd<S>) => string,
  malformed: { what: string; list: string; code: string },
): MappingResult<S> {
  if (diff.rejected.length > 0) {
    const shown = diff.rejected.map((r) => `${malformed.list}[${r.index}] ${r.message}`).join('; ');
    throw new PermanentError(`malformed ${malformed.what}: ${shown}`, { code: malformed.code });
  }
  const end = finish(diff.state, new Set(diff.seen));
  const events = [...diff.events, ...end.events];
  if (events.length === 0) return { events: [], ignored: describe(end), state: end.state };
  return { events, state: end.state };
}
