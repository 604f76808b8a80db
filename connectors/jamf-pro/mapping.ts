import {
  PermanentError,
  z,
  type EventDraft,
  type MappingResult,
  type SubjectIdentifier,
} from '../../core/plugin-api/index.ts';
import {
  complianceEvent,
  deviceSubject,
  email,
  opposite,
  vanishHold,
  type ComplianceStatus,
  type TrackedDevice,
} from '../_shared/mdm-mapping.ts';
import type { JamfProConfig } from './config.ts';
import { parseJamfXml } from './xml.ts';

export { DEVICE_COMPLIANCE_CHANGE, type ComplianceStatus } from '../_shared/mdm-mapping.ts';

// ─── Vendor payloads ────────────────────────────────────────────────────────────────────────────

const webhookMetaSchema = z.looseObject({
  id: z.number().int(),
  name: z.string().nullish(),
  webhookEvent: z.string().min(1),
  // Seconds or milliseconds since the epoch; beyond 8.64e15 ms no date exists (ECMA-262 §21.4.1.1).
  eventTimestamp: z
    .number()
    .int()
    .nonnegative()
    .max(8_640_000_000_000_000, 'is past the last representable time'),
});

/** The computer object of computer webhooks (inline for ComputerInventoryCompleted, `event.computer` for ComputerCheckIn). */
const webhookComputerSchema = z.looseObject({
  jssID: z.number().int().positive(),
  udid: z.string().nullish(),
  serialNumber: z.string().nullish(),
  deviceName: z.string().nullish(),
  emailAddress: z.string().nullish(),
  username: z.string().nullish(),
  managementId: z.string().nullish(),
});
export type WebhookComputer = z.infer<typeof webhookComputerSchema>;

const mobileDeviceSchema = z.looseObject({
  jssID: z.number().int().positive(),
  udid: z.string().nullish(),
  serialNumber: z.string().nullish(),
  deviceName: z.string().nullish(),
  username: z.string().nullish(),
  managementId: z.string().nullish(),
});
export type WebhookMobileDevice = z.infer<typeof mobileDeviceSchema>;

const smartGroupEventSchema = z.looseObject({
  computer: z.boolean(),
  jssid: z.number().int(),
  name: z.string(),
  groupAddedDevicesIds: z.array(z.number().int().positive()),
  groupRemovedDevicesIds: z.array(z.number().int().positive()),
});

/** A Jamf Pro webhook: `{webhook, event}` (the XML variant is converted to the same shape). */
const envelopeSchema = z.looseObject({ webhook: webhookMetaSchema, event: z.unknown() });
export type JamfWebhook = z.infer<typeof envelopeSchema>;

const idSchema = z.union([z.string().min(1), z.number().int()]).transform(String);

/** A computer of the Jamf Pro API (`/api/v1/computers-inventory`, sections GENERAL, USER_AND_LOCATION, HARDWARE, GROUP_MEMBERSHIPS). */
export const inventorySchema = z.looseObject({
  id: idSchema,
  udid: z.string().nullish(),
  general: z
    .looseObject({
      name: z.string().nullish(),
      reportDate: z.string().nullish(),
      lastContactTime: z.string().nullish(),
      managementId: z.string().nullish(),
    })
    .nullish(),
  userAndLocation: z.looseObject({ email: z.string().nullish(), username: z.string().nullish() }).nullish(),
  hardware: z.looseObject({ serialNumber: z.string().nullish() }).nullish(),
  groupMemberships: z
    .array(
      z.looseObject({
        groupId: idSchema,
        groupName: z.string().nullish(),
        smartGroup: z.boolean().nullish(),
      }),
    )
    .nullish(),
});
export type Inventory = z.infer<typeof inventorySchema>;

/** One page of `/api/v1/computers-inventory`. */
export const inventoryPageSchema = z.looseObject({
  totalCount: z.number().int().nonnegative(),
  results: z.array(z.unknown()),
});

// ─── State ──────────────────────────────────────────────────────────────────────────────────────

/** What the connector keeps per computer (checkpoint `computer:<jamf id>`). */
export const deviceStateSchema = z.object({
  status: z.enum(['compliant', 'not-compliant']),
  /** Configured non-compliant groups the computer is in (names, or #id when unnamed). */
  groups: z.array(z.string()),
  /** Source time of the current status (RFC 3339). */
  since: z.string().optional(),
  user: z.string().optional(),
  device_id: z.string(),
  aliases: z.object({
    jamf_computer_id: z.string(),
    udid: z.string().optional(),
    serial_number: z.string().optional(),
    hostname: z.string().optional(),
    management_id: z.string().optional(),
  }),
  seq: z.number().int().nonnegative(),
  /**
   * Set while the computer is reported gone (kept as not-compliant, so that its status is sent
   * when it comes back): when the reconciliation found it gone.
   */
  gone: z.string().optional(),
});
export type DeviceState = z.infer<typeof deviceStateSchema>;

/**
 * The computers known present (checkpoint `inventory`): those the last complete reconciliation
 * listed, and those missing from it that no lookup has confirmed gone yet (a lookup that failed or
 * was left for later, a scan the vanished-device guard held), so that they are looked up again.
 */
export const inventoryIndexSchema = z.object({
  ids: z.array(z.string()),
  completed_at: z.string().optional(),
  /**
   * Computers missing from the inventory pages that were looked up on their own and found still
   * there (or not answered for), with when: those never looked up go first next time. An id is
   * dropped once the pages list it again.
   */
  looked_up: z.record(z.string(), z.string()).optional(),
});
export type InventoryIndex = z.infer<typeof inventoryIndexSchema>;

/** What the connector keeps per mobile device (checkpoint `mobile-device:<jamf id>`): its managed status. */
export const mobileDeviceStateSchema = z.object({
  /** compliant while enrolled, not-compliant once unenrolled, as last reported by this connector. */
  status: z.enum(['compliant', 'not-compliant']),
  /** The webhook time of the current status (RFC 3339). */
  since: z.string().optional(),
  user: z.string().optional(),
  device_id: z.string(),
  aliases: z.object({
    jamf_mobile_device_id: z.string(),
    udid: z.string().optional(),
    serial_number: z.string().optional(),
    hostname: z.string().optional(),
    management_id: z.string().optional(),
  }),
  seq: z.number().int().nonnegative(),
});
export type MobileDeviceState = z.infer<typeof mobileDeviceStateSchema>;

/**
 * The state `ssf-bridge simulate` carries between payloads: every computer's state by key, and
 * every mobile device's (absent in state carried by earlier versions).
 */
export const simulationStateSchema = z.object({
  devices: z.record(z.string(), deviceStateSchema),
  mobile_devices: z.record(z.string(), mobileDeviceStateSchema).optional(),
});
export type SimulationState = z.infer<typeof simulationStateSchema>;

export function deviceKey(computerId: string | number): string {
  return `computer:${computerId}`;
}

export function mobileDeviceKey(mobileDeviceId: string | number): string {
  return `mobile-device:${mobileDeviceId}`;
}

// ─── Parsing ────────────────────────────────────────────────────────────────────────────────────

function problemText(error: z.ZodError, prefix = ''): string {
  return error.issues
    .map((i) => {
      const message = i.message.endsWith('received undefined') ? 'is required' : i.message;
      const path = [prefix, ...i.path.map(String)].filter(Boolean).join('.');
      return `${path || '(body)'}: ${message}`;
    })
    .join('; ');
}

function payloadError(message: string): PermanentError {
  return new PermanentError(message, { code: 'SSF_ERR_JAMF_PAYLOAD' });
}

/**
 * A webhook body as Jamf Pro sends it: JSON (`{webhook, event}`) or the XML variant
 * (`<JSSEvent>`), given as parsed JSON, a string or the raw bytes.
 */
export function parseWebhook(body: unknown): JamfWebhook {
  let value = body;
  if (Buffer.isBuffer(value)) value = value.toString('utf8');
  if (typeof value === 'string') {
    const text = value.replace(/^\uFEFF/, '').trim();
    if (text.startsWith('<')) value = parseJamfXml(text);
    else {
      try {
        value = JSON.parse(text) as unknown;
      } catch (err) {
        throw payloadError(`the body is neither JSON nor XML: ${(err as Error).message}`);
      }
    }
  }
  const parsed = envelopeSchema.safeParse(value);
  if (!parsed.success) {
    throw payloadError(
      `not a Jamf Pro webhook: ${problemText(parsed.error)} (expected {"webhook": {...}, "event": {...}})`,
    );
  }
  return parsed.data;
}

export function parseInventory(record: unknown, where = 'inventory'): Inventory {
  const parsed = inventorySchema.safeParse(record);
  if (!parsed.success) throw payloadError(`malformed Jamf Pro computer: ${problemText(parsed.error, where)}`);
  return parsed.data;
}

// ─── Interpretation ─────────────────────────────────────────────────────────────────────────────

export interface WebhookSource {
  via: 'webhook';
  event: string;
  webhookId: number;
  /** eventTimestamp in milliseconds. */
  atMs: number;
}
export interface ReconcileSource {
  via: 'reconcile';
}
export type Source = WebhookSource | ReconcileSource;

export interface GroupRef {
  id: string;
  name: string;
}

/** What a webhook says about one computer. */
export type ComputerChange =
  | { kind: 'added'; computerId: string; group: GroupRef }
  | { kind: 'removed'; computerId: string; group: GroupRef }
  | { kind: 'inventory'; computerId: string; computer?: WebhookComputer };

export type Plan =
  | { kind: 'ignored'; reason: string }
  | { kind: 'computers'; source: WebhookSource; changes: ComputerChange[]; lookups: string[] }
  | { kind: 'mobile'; source: WebhookSource; device: WebhookMobileDevice; enrolled: boolean };

function matchesGroup(
  config: Pick<JamfProConfig, 'non_compliant_groups'>,
  id: string,
  name: string | null | undefined,
) {
  const wanted = name?.trim().toLowerCase();
  return config.non_compliant_groups.some((g) =>
    typeof g === 'number' ? String(g) === id : wanted !== undefined && g.trim().toLowerCase() === wanted,
  );
}

function groupLabel(id: string, name: string | null | undefined): string {
  return name?.trim() ? name.trim() : `#${id}`;
}

/** Which computers a webhook concerns, what it says about each, and which need an API lookup. */
export function planWebhook(
  webhook: JamfWebhook,
  config: Pick<JamfProConfig, 'non_compliant_groups' | 'check_in_lookup'>,
): Plan {
  const meta = webhook.webhook;
  const atMs = meta.eventTimestamp < 100_000_000_000 ? meta.eventTimestamp * 1000 : meta.eventTimestamp;
  const source: WebhookSource = { via: 'webhook', event: meta.webhookEvent, webhookId: meta.id, atMs };
  switch (meta.webhookEvent) {
    case 'SmartGroupComputerMembershipChange': {
      const parsed = smartGroupEventSchema.safeParse(webhook.event);
      if (!parsed.success)
        throw payloadError(`malformed ${meta.webhookEvent}: ${problemText(parsed.error, 'event')}`);
      const e = parsed.data;
      if (!e.computer) {
        return {
          kind: 'ignored',
          reason: 'mobile device smart groups are not tracked; only computer groups are',
        };
      }
      const group: GroupRef = { id: String(e.jssid), name: e.name };
      if (!matchesGroup(config, group.id, group.name)) {
        return {
          kind: 'ignored',
          reason: `smart group "${groupLabel(group.id, group.name)}" (id ${group.id}) is not a configured non-compliant group`,
        };
      }
      const changes: ComputerChange[] = [
        ...e.groupAddedDevicesIds.map((id): ComputerChange => ({
          kind: 'added',
          computerId: String(id),
          group,
        })),
        ...e.groupRemovedDevicesIds.map((id): ComputerChange => ({
          kind: 'removed',
          computerId: String(id),
          group,
        })),
      ];
      if (changes.length === 0) return { kind: 'ignored', reason: 'the membership change names no computer' };
      return { kind: 'computers', source, changes, lookups: [...new Set(changes.map((c) => c.computerId))] };
    }
    case 'ComputerInventoryCompleted':
    case 'ComputerCheckIn': {
      const raw =
        meta.webhookEvent === 'ComputerCheckIn'
          ? (webhook.event as { computer?: unknown } | null | undefined)?.computer
          : webhook.event;
      const where = meta.webhookEvent === 'ComputerCheckIn' ? 'event.computer' : 'event';
      const parsed = webhookComputerSchema.safeParse(raw);
      if (!parsed.success)
        throw payloadError(`malformed ${meta.webhookEvent}: ${problemText(parsed.error, where)}`);
      if (meta.webhookEvent === 'ComputerCheckIn' && !config.check_in_lookup) {
        return { kind: 'ignored', reason: 'check-in lookups are off (check_in_lookup: false)' };
      }
      const computerId = String(parsed.data.jssID);
      return {
        kind: 'computers',
        source,
        changes: [{ kind: 'inventory', computerId, computer: parsed.data }],
        lookups: [computerId],
      };
    }
    case 'SmartGroupMobileDeviceMembershipChange':
      return {
        kind: 'ignored',
        reason: 'mobile device smart groups are not tracked; only computer groups are',
      };
    case 'MobileDeviceEnrolled':
    case 'MobileDeviceUnEnrolled': {
      const parsed = mobileDeviceSchema.safeParse(webhook.event);
      if (!parsed.success)
        throw payloadError(`malformed ${meta.webhookEvent}: ${problemText(parsed.error, 'event')}`);
      return {
        kind: 'mobile',
        source,
        device: parsed.data,
        enrolled: meta.webhookEvent === 'MobileDeviceEnrolled',
      };
    }
    default:
      return { kind: 'ignored', reason: `webhook event ${meta.webhookEvent} does not affect compliance` };
  }
}

// ─── Decisions ──────────────────────────────────────────────────────────────────────────────────

function text(...candidates: Array<string | null | undefined>): string | undefined {
  for (const candidate of candidates) {
    const value = candidate?.trim();
    if (value) return value;
  }
  return undefined;
}

/** Identity of a computer from the freshest source: the API inventory, then the webhook, then what was known. */
function identity(
  computerId: string,
  inventory: Inventory | undefined,
  computer: WebhookComputer | undefined,
  previous: DeviceState | undefined,
): Pick<DeviceState, 'user' | 'device_id' | 'aliases'> {
  const udid = text(inventory?.udid, computer?.udid, previous?.aliases.udid);
  const user = inventory
    ? email(inventory.userAndLocation?.email, computer?.emailAddress)
    : computer
      ? email(computer.emailAddress)
      : previous?.user;
  const serial = text(
    inventory?.hardware?.serialNumber,
    computer?.serialNumber,
    previous?.aliases.serial_number,
  );
  const hostname = text(inventory?.general?.name, computer?.deviceName, previous?.aliases.hostname);
  const managementId = text(
    inventory?.general?.managementId,
    computer?.managementId,
    previous?.aliases.management_id,
  );
  return {
    ...(user ? { user } : {}),
    device_id: udid ?? `jamf-pro:computer:${computerId}`,
    aliases: {
      jamf_computer_id: computerId,
      ...(udid ? { udid } : {}),
      ...(serial ? { serial_number: serial } : {}),
      ...(hostname ? { hostname } : {}),
      ...(managementId ? { management_id: managementId } : {}),
    },
  };
}

/** Configured non-compliant groups in an inventory's memberships; undefined when memberships were not read. */
export function configuredGroups(
  inventory: Inventory | undefined,
  config: Pick<JamfProConfig, 'non_compliant_groups'>,
) {
  if (!inventory?.groupMemberships) return undefined;
  return inventory.groupMemberships
    .filter((g) => matchesGroup(config, g.groupId, g.groupName))
    .map((g) => groupLabel(g.groupId, g.groupName));
}

/** `{user, device}`, or a device-only complex subject when no user is assigned. */
export function subjectOf(state: Pick<DeviceState, 'user' | 'device_id'>): SubjectIdentifier {
  return deviceSubject(state.user, state.device_id);
}

function label(state: Pick<DeviceState, 'aliases'>): string {
  return state.aliases.hostname
    ? `"${state.aliases.hostname}"`
    : `computer ${state.aliases.jamf_computer_id}`;
}

function quoteList(groups: string[]): string {
  return groups.map((g) => `"${g}"`).join(', ');
}

function sourceTime(source: Source, inventory: Inventory | undefined): string | undefined {
  if (source.via === 'webhook') return new Date(source.atMs).toISOString();
  const t = text(inventory?.general?.lastContactTime, inventory?.general?.reportDate);
  return t && Number.isFinite(Date.parse(t)) ? new Date(Date.parse(t)).toISOString() : undefined;
}

function recordId(
  source: Source,
  state: DeviceState,
  previous: ComplianceStatus,
  current: ComplianceStatus,
  at?: string,
) {
  const change = `${previous}>${current}`;
  return source.via === 'webhook'
    ? `jamf-pro:webhook:${source.webhookId}:${source.atMs}:computer:${state.aliases.jamf_computer_id}:${change}`
    : `jamf-pro:reconcile:computer:${state.aliases.jamf_computer_id}:${state.seq}:${change}:${at ?? 'unknown'}`;
}

export type Outcome = 'transition' | 'baseline' | 'unchanged' | 'undetermined';

export interface Decision {
  events: EventDraft[];
  /** The computer's new state, or undefined when it does not change. */
  next: DeviceState | undefined;
  outcome: Outcome;
  note?: string;
}

function settle(
  previous: DeviceState | undefined,
  next: DeviceState,
  events: EventDraft[],
  outcome: Outcome,
  note?: string,
): Decision {
  const unchanged = previous !== undefined && JSON.stringify(previous) === JSON.stringify(next);
  return { events, next: unchanged ? undefined : next, outcome, ...(note ? { note } : {}) };
}

/**
 * What one observation of a computer means for its compliance. Smart-group webhooks are change
 * notifications: joining a configured group makes a computer not compliant, leaving it makes it
 * compliant unless it is still in another configured group. Inventory observations (check-in,
 * inventory report, reconciliation) compare the computer's current groups with its last state.
 */
export function decideComputer(
  change: ComputerChange,
  source: Source,
  inventory: Inventory | undefined,
  previous: DeviceState | undefined,
  config: Pick<JamfProConfig, 'non_compliant_groups' | 'first_sighting'>,
): Decision {
  const computer = change.kind === 'inventory' ? change.computer : undefined;
  const who = identity(change.computerId, inventory, computer, previous);
  const at = sourceTime(source, inventory);

  if (change.kind === 'added' || change.kind === 'removed') {
    const groupName = groupLabel(change.group.id, change.group.name);
    // The inventory just read is the computer's membership now; the webhook may be late, retried
    // or overtaken by a later one. Its claim counts only when the inventory has no memberships.
    const listed = configuredGroups(inventory, config)?.sort();
    const others = (previous?.groups ?? []).filter((g) => g !== groupName);
    const groups = listed ?? (change.kind === 'added' ? [...others, groupName].sort() : others);
    const inGroup = groups.includes(groupName);
    const stale = change.kind === 'added' ? !inGroup : inGroup;
    const current: ComplianceStatus = groups.length > 0 ? 'not-compliant' : 'compliant';
    // The webhook reports a change, so without history the computer was on the other side of this group.
    const prior: ComplianceStatus =
      previous?.status ?? (change.kind === 'added' ? 'compliant' : 'not-compliant');
    const next: DeviceState = {
      status: current,
      groups,
      ...(previous?.since ? { since: previous.since } : {}),
      ...who,
      seq: previous?.seq ?? 0,
    };
    const staleNote = stale
      ? `the Jamf Pro inventory ${inGroup ? 'still lists' : 'does not list'} computer ${change.computerId} in "${groupName}"; the webhook is out of date`
      : undefined;
    if (prior === current) {
      const note =
        staleNote ??
        (change.kind === 'removed' && current === 'not-compliant'
          ? `still in non-compliant group(s) ${quoteList(groups)}`
          : undefined);
      return settle(previous, next, [], previous ? 'unchanged' : 'baseline', note);
    }
    if (at) next.since = at;
    next.seq += 1;
    const reason =
      current === 'not-compliant'
        ? change.kind === 'added' && inGroup
          ? `${label(next)} joined the non-compliant smart group "${groupName}" in Jamf Pro`
          : `Jamf Pro lists ${label(next)} in the non-compliant smart group(s) ${quoteList(groups)}`
        : change.kind === 'removed'
          ? `${label(next)} left the non-compliant smart group "${groupName}" in Jamf Pro and is in no other`
          : `Jamf Pro lists ${label(next)} in no non-compliant smart group`;
    return settle(
      previous,
      next,
      [
        complianceEvent(
          subjectOf(next),
          prior,
          current,
          reason,
          at,
          recordId(source, next, prior, current, at),
        ),
      ],
      'transition',
      staleNote,
    );
  }

  const groups = configuredGroups(inventory, config);
  if (groups === undefined) {
    return {
      events: [],
      next: undefined,
      outcome: 'undetermined',
      note: `no group memberships for computer ${change.computerId}`,
    };
  }
  const current: ComplianceStatus = groups.length > 0 ? 'not-compliant' : 'compliant';
  const next: DeviceState = {
    status: current,
    groups,
    ...(previous?.since ? { since: previous.since } : {}),
    ...who,
    seq: previous?.seq ?? 0,
  };
  const reason =
    current === 'not-compliant'
      ? `Jamf Pro lists ${label(next)} in the non-compliant smart group(s) ${quoteList(groups)}`
      : `Jamf Pro lists ${label(next)} in no non-compliant smart group`;
  if (previous === undefined) {
    if (at) next.since = at;
    if (config.first_sighting !== 'emit') return settle(previous, next, [], 'baseline');
    const prior = opposite(current);
    next.seq += 1;
    return settle(
      previous,
      next,
      [
        complianceEvent(
          subjectOf(next),
          prior,
          current,
          `${reason} (first seen)`,
          at,
          recordId(source, next, prior, current, at),
        ),
      ],
      'baseline',
    );
  }
  if (previous.status === current) return settle(previous, next, [], 'unchanged');
  if (at) next.since = at;
  next.seq += 1;
  return settle(
    previous,
    next,
    [
      complianceEvent(
        subjectOf(next),
        previous.status,
        current,
        reason,
        at,
        recordId(source, next, previous.status, current, at),
      ),
    ],
    'transition',
  );
}

/**
 * A computer Jamf Pro no longer has: the `vanished_devices` policy. `next: null` forgets it.
 * With `not-compliant` it is kept, marked gone, as not compliant, so that it is compared with its
 * current groups (and a compliant status sent) if it comes back.
 */
export function decideVanished(
  previous: DeviceState,
  config: Pick<JamfProConfig, 'vanished_devices'>,
  at: string,
): { events: EventDraft[]; next: DeviceState | null | undefined } {
  if (config.vanished_devices === 'keep') return { events: [], next: undefined };
  if (config.vanished_devices === 'forget') return { events: [], next: null };
  if (previous.status !== 'compliant') return { events: [], next: { ...previous, gone: at } };
  const next: DeviceState = { ...previous, status: 'not-compliant', seq: previous.seq + 1, gone: at };
  const id = `jamf-pro:reconcile:computer:${previous.aliases.jamf_computer_id}:${next.seq}:compliant>not-compliant:vanished`;
  return {
    events: [
      complianceEvent(
        subjectOf(next),
        'compliant',
        'not-compliant',
        `${label(previous)} is no longer in the Jamf Pro inventory (deleted or unmanaged)`,
        undefined,
        id,
      ),
    ],
    next,
  };
}

/** Identity of a mobile device from its webhook, then what was known. */
function mobileIdentity(
  device: WebhookMobileDevice,
  previous: MobileDeviceState | undefined,
): Pick<MobileDeviceState, 'user' | 'device_id' | 'aliases'> {
  const jamfId = String(device.jssID);
  const udid = text(device.udid, previous?.aliases.udid);
  const user = email(device.username) ?? previous?.user;
  const serial = text(device.serialNumber, previous?.aliases.serial_number);
  const hostname = text(device.deviceName, previous?.aliases.hostname);
  const managementId = text(device.managementId, previous?.aliases.management_id);
  return {
    ...(user ? { user } : {}),
    // Once an event has been sent about the device, receivers know it by that event's device id.
    device_id:
      previous !== undefined && previous.seq > 0
        ? previous.device_id
        : (udid ?? `jamf-pro:mobile-device:${jamfId}`),
    aliases: {
      jamf_mobile_device_id: jamfId,
      ...(udid ? { udid } : {}),
      ...(serial ? { serial_number: serial } : {}),
      ...(hostname ? { hostname } : {}),
      ...(managementId ? { management_id: managementId } : {}),
    },
  };
}

function mobileLabel(state: Pick<MobileDeviceState, 'aliases'>): string {
  return state.aliases.hostname
    ? `"${state.aliases.hostname}"`
    : `mobile device ${state.aliases.jamf_mobile_device_id}`;
}

/** What a mobile device webhook means: its next state and event, or why it sends none. */
export interface MobileDecision {
  events: EventDraft[];
  /** The device's new state, or undefined when it does not change. */
  next: MobileDeviceState | undefined;
  note?: string;
}

/**
 * MobileDeviceUnEnrolled and MobileDeviceEnrolled: a mobile device is compliant while Jamf Pro
 * manages it (its smart groups are not tracked). Unenrolled sends compliant → not-compliant,
 * also for a device never seen (it was managed until the webhook, which is the change itself);
 * Enrolled sends not-compliant → compliant for a device last reported not-compliant, and for a
 * device never seen follows `first_sighting` (baseline: recorded without an event). A webhook
 * older than the status it would change (a late delivery) changes nothing.
 */
export function decideMobileDevice(
  device: WebhookMobileDevice,
  source: WebhookSource,
  enrolled: boolean,
  previous: MobileDeviceState | undefined,
  config: Pick<JamfProConfig, 'first_sighting'>,
): MobileDecision {
  const current: ComplianceStatus = enrolled ? 'compliant' : 'not-compliant';
  const at = new Date(source.atMs).toISOString();
  const next: MobileDeviceState = {
    status: current,
    ...(previous?.since ? { since: previous.since } : {}),
    ...mobileIdentity(device, previous),
    seq: previous?.seq ?? 0,
  };
  const what = enrolled ? 'enrolled' : 'unenrolled';
  if (previous?.since !== undefined && source.atMs < Date.parse(previous.since)) {
    return {
      events: [],
      next: undefined,
      note: `${mobileLabel(next)} changed after this ${what} webhook; it is out of date`,
    };
  }
  const unchanged = (note: string): MobileDecision => ({
    events: [],
    next: previous !== undefined && JSON.stringify(previous) === JSON.stringify(next) ? undefined : next,
    note,
  });
  if (previous?.status === current) return unchanged(`${mobileLabel(next)} is already ${what}`);
  let prior: ComplianceStatus | undefined = previous?.status;
  let reason: string;
  if (enrolled) {
    reason = `${mobileLabel(next)} was enrolled in Jamf Pro and is managed again`;
    if (prior === undefined) {
      next.since = at;
      if (config.first_sighting !== 'emit') {
        return unchanged(`${mobileLabel(next)} first seen enrolled (baseline recorded)`);
      }
      prior = opposite(current);
      reason = `${mobileLabel(next)} was enrolled in Jamf Pro (first seen)`;
    }
  } else {
    prior ??= 'compliant';
    reason = `${mobileLabel(next)} was unenrolled from Jamf Pro and is no longer managed`;
  }
  next.since = at;
  next.seq += 1;
  return {
    events: [
      complianceEvent(
        subjectOf(next),
        prior,
        current,
        reason,
        at,
        `jamf-pro:webhook:${source.webhookId}:${source.atMs}:mobile-device:${device.jssID}:${what}`,
      ),
    ],
    next,
  };
}

// ─── Vanished computers ─────────────────────────────────────────────────────────────────────────

type JamfVanishConfig = Pick<
  JamfProConfig,
  'vanished_devices' | 'vanished_guard_share' | 'vanished_guard_min_devices'
>;

function percent(share: number): string {
  return `${Math.round(share * 1000) / 10}%`;
}

/**
 * Why the computers of the index missing from a complete reconciliation are not to be looked up
 * or handled at all this time, or undefined: the inventory listed none while computers are known
 * (the API client may have lost its privilege), or more of the known computers are missing than
 * `vanished_guard_share` lets vanish at once (a short listing, or a proxy answering 404 for the
 * lookups, looks like a mass deletion). The same rule as intune's and kandji's (vanishHold).
 */
export function vanishedHold(
  index: Pick<InventoryIndex, 'ids'>,
  listed: ReadonlySet<string>,
  config: JamfVanishConfig,
): string | undefined {
  const devices: Record<string, TrackedDevice> = {};
  for (const id of index.ids) devices[id] = { seq: 0 };
  return vanishHold({ version: 1, devices }, listed, {
    policy: config.vanished_devices,
    emptyScan: (known) =>
      `the inventory was empty while ${known} computers are known; check the API client's Read Computers privilege`,
    guard: {
      share: config.vanished_guard_share,
      minDevices: config.vanished_guard_min_devices,
      tooMany: (missing, known) =>
        `${missing} of ${known} known computers are missing from the Jamf Pro inventory, more than vanished_guard_share (${percent(config.vanished_guard_share)}) allows: none is reported gone this reconciliation, since a partial answer, a paging problem or a proxy answering 404 looks like that; if they really left Jamf Pro, raise vanished_guard_share until the reconciliations have confirmed them gone`,
    },
  });
}

/**
 * The index to store after a reconciliation: the computers it listed, and the ones missing from
 * it that were not confirmed gone (`gone`: the lookups that answered 404, handled by the policy);
 * `lookedUp` are those looked up this time and found there or not answered for, at `at`.
 */
export function nextIndex(
  previous: InventoryIndex,
  listed: ReadonlySet<string>,
  gone: readonly string[],
  lookedUp: readonly string[],
  at: string,
): InventoryIndex {
  const dropped = new Set(gone);
  const ids = [...new Set([...listed, ...previous.ids.filter((id) => !dropped.has(id))])].sort();
  const looked: Record<string, string> = {};
  for (const id of ids) {
    const when = previous.looked_up?.[id];
    if (when !== undefined && !listed.has(id)) looked[id] = when;
  }
  for (const id of lookedUp) if (!dropped.has(id)) looked[id] = at;
  return {
    ids,
    completed_at: at,
    ...(Object.keys(looked).length > 0 ? { looked_up: looked } : {}),
  };
}

// ─── Simulation ─────────────────────────────────────────────────────────────────────────────────

/**
 * A simulation record: a webhook body (JSON object, or the XML text), optionally wrapped as
 * `{payload, inventory: [computers]}` with the Jamf Pro API answers the connector would look up.
 */
const wrappedSchema = z.looseObject({ payload: z.unknown(), inventory: z.array(z.unknown()).default([]) });

/**
 * The pure mapping behind `ssf-bridge simulate`: one webhook against the computers' last states.
 * Computers whose API inventory the record does not carry are reported, not guessed.
 */
export function mapWebhookRecord(
  record: unknown,
  config: JamfProConfig,
  state?: unknown,
): MappingResult<SimulationState> {
  let wrapped: { payload: unknown; inventory: unknown[] } = { payload: record, inventory: [] };
  if (record !== null && typeof record === 'object' && !Array.isArray(record) && 'payload' in record) {
    const parsed = wrappedSchema.safeParse(record);
    if (!parsed.success) {
      throw payloadError(
        `not a simulation record: ${problemText(parsed.error)} (expected {"payload", "inventory": [...]})`,
      );
    }
    wrapped = parsed.data;
  }
  const webhook = parseWebhook(wrapped.payload);
  const inventories = new Map<string, Inventory>();
  wrapped.inventory.forEach((item, i) => {
    const inv = parseInventory(item, `inventory[${i}]`);
    inventories.set(inv.id, inv);
  });
  const parsedState = simulationStateSchema.safeParse(state ?? { devices: {} });
  if (!parsedState.success) {
    throw new PermanentError(`not a jamf-pro simulation state: ${problemText(parsedState.error)}`, {
      code: 'SSF_ERR_JAMF_STATE',
    });
  }
  const devices = { ...parsedState.data.devices };
  const mobile = { ...parsedState.data.mobile_devices };
  const carried = (): SimulationState => ({
    devices,
    ...(Object.keys(mobile).length > 0 ? { mobile_devices: mobile } : {}),
  });
  const plan = planWebhook(webhook, config);
  if (plan.kind === 'ignored') return { events: [], ignored: plan.reason, state: carried() };
  if (plan.kind === 'mobile') {
    const key = mobileDeviceKey(plan.device.jssID);
    const decision = decideMobileDevice(plan.device, plan.source, plan.enrolled, mobile[key], config);
    if (decision.next) mobile[key] = decision.next;
    if (decision.events.length === 0)
      return { events: [], ignored: `no compliance change: ${decision.note ?? ''}`, state: carried() };
    return { events: decision.events, state: carried() };
  }

  const events: EventDraft[] = [];
  const notes: string[] = [];
  for (const change of plan.changes) {
    const key = deviceKey(change.computerId);
    const inventory = inventories.get(change.computerId);
    if (!inventory && (change.kind === 'inventory' || devices[key] === undefined)) {
      notes.push(`computer ${change.computerId} needs its Jamf Pro inventory (add it under "inventory")`);
      continue;
    }
    const decision = decideComputer(change, plan.source, inventory, devices[key], config);
    events.push(...decision.events);
    if (decision.next) devices[key] = decision.next;
    notes.push(decision.note ?? `computer ${change.computerId}: ${decision.outcome}`);
  }
  if (events.length === 0)
    return { events: [], ignored: `no compliance change: ${notes.join('; ')}`, state: carried() };
  return { events, state: carried() };
}
