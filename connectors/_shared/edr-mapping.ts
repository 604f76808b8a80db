/**
 * The default EDR mapping the three EDR connectors share. Each connector reads its vendor's
 * record into a `Detection`; `decideEvents` turns a detection into CAEP/RISC event drafts (or an
 * ignored reason) by the same rules everywhere:
 *
 * - risk level by severity; below `min_level` → ignored;
 * - user resolved from explicit UPN fields, then the static alias map (the user of the detection;
 *   who is logged on now only after both), then (when
 *   `subjects.device_owners` names MDM instances) the device's assigned user in their records;
 *   never guessed;
 * - unresolved user → device-only event when allowed, else ignored as `subject_unresolved`;
 * - critical + contained host → also `caep.session-revoked`; credential theft → also
 *   `risc.credential-compromise`; all of one detection share one `txn`;
 * - closed as false positive → `caep.risk-level-change` LOW, only for a detection this instance
 *   raised the level for (its memory of raised detections, or for detections older than that
 *   memory the poller's history; see ReadHistory), about the subject the raise was sent for and
 *   with the level it raised as previous_level when the memory names them (the closed record's
 *   own grade — often lower once the threat is mitigated — does not decide); sent once: a closed
 *   detection whose downgrade this instance already sent, and that it has not raised again since,
 *   sends nothing however often the vendor updates it (the memory records the downgrade too);
 * - the record id of a risk-level change names the vendor's update time of the record, so a
 *   detection raised, closed and reopened raises the level again; a state older than the closure
 *   already sent (a late redelivery) raises nothing;
 * - `event_timestamp` (the draft's occurrence time) of a risk-level change is the time of the level
 *   change (CAEP §3.8): the detection time for the first raise, the vendor's update time of the
 *   record for a later change of a detection this instance sent a level for (a new level, a
 *   reopened detection), the closure time for a downgrade.
 */
import {
  PermanentError,
  type DeviceOwner,
  type DeviceOwnerLookup,
  type EventDraft,
  type MappingResult,
  type Severity,
  type SubjectIdentifier,
  type z,
} from '../../core/plugin-api/index.ts';
import {
  aliasKey,
  looksLikeEmail,
  type MappingConfig,
  type RiskLevel,
  type SubjectsConfig,
} from './edr-config.ts';

export interface AccountRef {
  /** `user`, `DOMAIN\user` or `user@domain` as the vendor reports it. */
  name?: string | null | undefined;
  domain?: string | null | undefined;
}

/** One vendor detection, alert or threat, read into the terms the default mapping uses. */
export interface Detection {
  /** Stable id of the vendor record (CompositeId, alert id, threat id). */
  id: string;
  /** Product name used in messages, e.g. `CrowdStrike Falcon`. */
  product: string;
  /** What the vendor calls the record in messages: `detection` (default), `alert`, `threat`. */
  noun?: 'detection' | 'alert' | 'threat' | 'incident';
  /** Detection name, e.g. `Known Malware`. */
  name: string;
  /** Severity as the vendor names it, for messages (e.g. `High`, `70 of 100`). */
  severityLabel: string;
  /** What `severityLabel` is, in messages: `severity` (default) or e.g. `confidence`. */
  gradeWord?: string;
  /** Risk level by severity; undefined when the vendor gives no usable severity. */
  level: RiskLevel | undefined;
  /** Critical severity (HIGH and above the critical band). */
  critical: boolean;
  /** Also send `caep.session-revoked` for the user (e.g. critical on a contained host). */
  revokeSessions: boolean;
  /** Identity-based credential theft: also send `risc.credential-compromise`, at HIGH. */
  credentialTheft: boolean;
  /** Tactic, technique or classification, for messages. */
  detail?: string | undefined;
  host?: string | undefined;
  occurredAt?: Date | undefined;
  /** Set when the vendor closed the record. */
  closure?: 'false_positive' | 'resolved' | undefined;
  /** When it was closed (or last updated); the downgrade's occurrence time. */
  closedAt?: Date | undefined;
  /**
   * When the vendor created the record (or an earlier time of it): never later than the time it
   * could first be read. Decides, with a ReadHistory, whether a closed record was ever read open.
   */
  createdAt?: Date | undefined;
  /**
   * The vendor's update time of this state of the record (`updated_timestamp`,
   * `lastUpdateDateTime`, `updatedAt`). Part of the record id of the risk-level change, so a
   * later change — a detection reopened after it was closed — is a new record the core does not
   * drop as a duplicate, while the same state delivered again keeps its id. Absent for records
   * that are never updated (stream detection summaries).
   */
  version?: Date | undefined;
  /** Explicit user principal names / e-mail addresses, best first. */
  upns: Array<string | null | undefined>;
  /** Account names to resolve through the alias map, best first. */
  accounts: AccountRef[];
  /**
   * Who is logged on to the device now rather than when the detection was made (SentinelOne's
   * `agentRealtimeInfo`): tried only when neither `upns` nor `accounts` resolve a user, since on
   * a shared host it may be someone else.
   */
  currentUser?: { upns: Array<string | null | undefined>; accounts: AccountRef[] };
  /** The vendor's opaque device id (AID, Entra/MDE device id, agent UUID). */
  deviceId?: string | undefined;
  /** The device's own risk, when the vendor grades it (Graph deviceEvidence.riskScore). */
  deviceRisk?: RiskLevel | undefined;
  /** More names of the device an MDM may know it by (an Entra device id, a DNS name). */
  deviceNames?: Array<string | null | undefined>;
}

/**
 * What this instance knows of a record it hands to the mapping.
 *
 * `readUpTo` is given only by a watermark poller that is the instance's only source of records
 * (no webhook block): this instance has not processed the record before, and every record it
 * processed was created at or before `readUpTo` (the committed watermark: the highest vendor
 * update time read; on the first poll, where the poll starts reading). A record created after
 * `readUpTo` was therefore never read in any state — closed now, it was closed before this
 * instance saw it raise the level.
 *
 * `raised` is the instance's memory of the detections it raised the level for (RaisedMemory), on
 * every path (poll, webhook, stream): a closed detection it does not name sends no downgrade, nor
 * one whose downgrade it sent last; a raise of a detection it names is a later level change.
 */
export interface ReadHistory {
  readUpTo?: Date;
  raised?: RaisedLookup;
}

/** What a raise was sent with: its level, and the principal and subject it was about. */
export interface RaisedTarget {
  level: 'MEDIUM' | 'HIGH';
  principal: 'USER' | 'DEVICE';
  subject: SubjectIdentifier;
}

/** What the mapping asks of the memory of raised detections. */
export interface RaisedLookup {
  /** Whether this instance raised the level for the detection (within the memory's bounds). */
  has(id: string): boolean;
  /**
   * What the last raise this instance sent for a detection `has` names was sent with; undefined
   * when the memory does not say (a raise remembered before the memory kept it).
   */
  target?(id: string): RaisedTarget | undefined;
  /**
   * Set when the last event this instance sent for a detection `has` names was its downgrade:
   * with the vendor's update time of the closed record it was sent for (`version`, undefined when
   * that record had none). Undefined when the last was a raise, or the memory does not say.
   */
  cleared?(id: string): ClearedMark | undefined;
  /**
   * Set when the memory began on an instance that had already processed records (an upgrade):
   * a detection created before it may have raised the level before anything was remembered, and
   * is decided as it was before the memory existed.
   */
  predates?: Date | undefined;
  /** How long a raise is remembered, for messages (e.g. `180 days`). */
  keeps: string;
}

/** The suffix of the `txn` of a downgrade: `<detection id>#cleared`. */
const CLEARED_TXN = '#cleared';

/**
 * The detection id a raise event was sent for (a `caep.risk-level-change` above LOW, whose `txn`
 * decideEvents sets to the detection id), else undefined. What RaisedMemory records.
 */
export function raisedDetectionId(event: EventDraft): string | undefined {
  if (event.type !== 'caep.risk-level-change') return undefined;
  const level = event.claims?.['current_level'];
  if (level !== 'MEDIUM' && level !== 'HIGH') return undefined;
  return typeof event.txn === 'string' && !event.txn.endsWith(CLEARED_TXN) ? event.txn : undefined;
}

/** What the memory of raised detections keeps of a downgrade sent (see RaisedLookup.cleared). */
export interface ClearedMark {
  version: Date | undefined;
}

/**
 * The detection id and the vendor's update time of the closed record a downgrade event was sent
 * for (a `caep.risk-level-change` at LOW whose `txn` decideEvents sets to `<detection id>#cleared`,
 * its record id ending in `:cleared@<update time>` when the record has one), else undefined. What
 * RaisedMemory records as cleared.
 */
export function clearedDetectionOf(event: EventDraft): { id: string; version: Date | undefined } | undefined {
  if (event.type !== 'caep.risk-level-change' || event.claims?.['current_level'] !== 'LOW') return undefined;
  const txn = event.txn;
  if (typeof txn !== 'string' || !txn.endsWith(CLEARED_TXN) || txn.length === CLEARED_TXN.length) {
    return undefined;
  }
  const at = /:cleared@([^@#]+)$/.exec(event.sourceRecordId)?.[1];
  const ms = at === undefined ? Number.NaN : Date.parse(at);
  return { id: txn.slice(0, -CLEARED_TXN.length), version: Number.isNaN(ms) ? undefined : new Date(ms) };
}

/** The level, principal and subject of a raise event (see raisedDetectionId), else undefined. */
export function raisedTargetOf(event: EventDraft): RaisedTarget | undefined {
  if (raisedDetectionId(event) === undefined) return undefined;
  const level = event.claims?.['current_level'];
  const principal = event.claims?.['principal'];
  if ((level !== 'MEDIUM' && level !== 'HIGH') || (principal !== 'USER' && principal !== 'DEVICE')) {
    return undefined;
  }
  return { level, principal, subject: event.subject };
}

const RANK: Record<RiskLevel, number> = { LOW: 0, MEDIUM: 1, HIGH: 2 };

export function atLeast(level: RiskLevel, min: RiskLevel): boolean {
  return RANK[level] >= RANK[min];
}

export function minLevel(mapping: MappingConfig): RiskLevel {
  return mapping.min_level.toUpperCase() as RiskLevel;
}

/** Severity bands of the 0–100 scales (CrowdStrike EPP and alerts). */
export function levelFromScore(score: number, t: { medium: number; high: number }): RiskLevel {
  return score >= t.high ? 'HIGH' : score >= t.medium ? 'MEDIUM' : 'LOW';
}

/** Severity names used across vendors (Informational … Critical), case-insensitive. */
export function levelFromName(name: string | null | undefined): RiskLevel | undefined {
  switch (
    String(name ?? '')
      .trim()
      .toLowerCase()
  ) {
    case 'informational':
    case 'info':
    case 'low':
      return 'LOW';
    case 'medium':
      return 'MEDIUM';
    case 'high':
    case 'critical':
      return 'HIGH';
    default:
      return undefined;
  }
}

export function isCriticalName(name: string | null | undefined): boolean {
  return (
    String(name ?? '')
      .trim()
      .toLowerCase() === 'critical'
  );
}

export function ignored(code: string, message: string): MappingResult {
  return { events: [], ignored: `${code}: ${message}` };
}

/** The reason code of an ignored result (`below_min_level`, `subject_unresolved`, …). */
export function ignoredCode(reason: string): string {
  const colon = reason.indexOf(':');
  return colon > 0 ? reason.slice(0, colon) : 'other';
}

const NO_USER_NAMES = new Set(['', 'n/a', 'na', '-', '--', 'null', 'none', 'unknown', '(null)']);

function clean(value: string | null | undefined): string | undefined {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return NO_USER_NAMES.has(trimmed.toLowerCase()) ? undefined : trimmed;
}

/**
 * The user's e-mail address: the first explicit UPN, else the first account the alias map
 * knows. An account name that is itself an address counts as explicit, after the alias map had
 * its say. Undefined when nothing resolves; nothing is ever derived from a bare account name.
 */
export function resolveUser(
  upns: Detection['upns'],
  accounts: AccountRef[],
  subjects: SubjectsConfig,
): string | undefined {
  for (const upn of upns) {
    const value = clean(upn);
    if (value && looksLikeEmail(value)) return subjects.user_aliases[aliasKey(value)] ?? value;
  }
  for (const account of accounts) {
    const name = clean(account.name);
    if (!name) continue;
    if (looksLikeEmail(name)) return subjects.user_aliases[aliasKey(name)] ?? name;
    let user = name;
    let domain = clean(account.domain);
    const slash = name.lastIndexOf('\\');
    if (slash >= 0) {
      domain = clean(name.slice(0, slash)) ?? domain;
      user = name.slice(slash + 1).trim();
      if (!user) continue;
    }
    const keys = domain ? [`${domain}\\${user}`, `${user}@${domain}`, user] : [user];
    for (const key of keys) {
      const alias = subjects.user_aliases[aliasKey(key)];
      if (alias) return alias;
    }
  }
  return undefined;
}

/** The account names of a detection, as shown in logs and ignored reasons. */
function accountNames(d: Detection): string[] {
  return [...d.accounts, ...(d.currentUser?.accounts ?? [])]
    .map((a) => {
      const name = clean(a.name);
      if (!name) return undefined;
      const domain = clean(a.domain);
      return domain && !name.includes('\\') && !name.includes('@') ? `${domain}\\${name}` : name;
    })
    .filter((n): n is string => n !== undefined);
}

function draftSeverity(level: RiskLevel, critical: boolean): Severity {
  if (level === 'HIGH') return critical ? 'critical' : 'high';
  return level === 'MEDIUM' ? 'medium' : 'low';
}

function deviceSubject(id: string): SubjectIdentifier {
  return { format: 'complex', device: { format: 'opaque', id } };
}

function userSubject(
  email: string,
  deviceId: string | undefined,
  subjects: SubjectsConfig,
): SubjectIdentifier {
  if (subjects.include_device && deviceId) {
    return {
      format: 'complex',
      user: { format: 'email', email },
      device: { format: 'opaque', id: deviceId },
    };
  }
  return { format: 'email', email };
}

interface Target {
  principal: 'USER' | 'DEVICE';
  subject: SubjectIdentifier;
  level: RiskLevel;
  /** Set when the device's own risk, not the detection's severity, chose the level. */
  deviceRisk?: RiskLevel;
  /** Set when the user is the device's assigned user in an MDM's records. */
  owner?: DeviceOwner;
}

/** The device's assigned user by the MDM records, or why there is none (for messages). */
function deviceOwner(
  d: Detection,
  owners: DeviceOwnerLookup | undefined,
): { owner?: DeviceOwner; why?: string } {
  if (!owners) return {};
  const names = [d.host, d.deviceId, ...(d.deviceNames ?? [])];
  if (!names.some((n) => typeof n === 'string' && n.trim() !== '')) return {};
  const answer = owners(names);
  if (answer.found === 'owner') return { owner: answer.owner };
  if (answer.found === 'ambiguous') {
    const who = answer.owners.map((o) => `${o.email} in ${o.instance}`).join(', ');
    return { why: `the device records name different users (${who})` };
  }
  return { why: 'no device record in subjects.device_owners names its user' };
}

type TargetResult = { ok: true; target: Target } | { ok: false; result: MappingResult };

function chooseTarget(
  d: Detection,
  level: RiskLevel,
  subjects: SubjectsConfig,
  min: RiskLevel,
  owners: DeviceOwnerLookup | undefined,
): TargetResult {
  const email =
    resolveUser(d.upns, d.accounts, subjects) ??
    (d.currentUser ? resolveUser(d.currentUser.upns, d.currentUser.accounts, subjects) : undefined);
  const assigned = email ? {} : deviceOwner(d, owners);
  let target: Target;
  if (email) {
    target = { principal: 'USER', subject: userSubject(email, d.deviceId, subjects), level };
  } else if (assigned.owner) {
    const subject = userSubject(assigned.owner.email, d.deviceId, subjects);
    target = { principal: 'USER', subject, level, owner: assigned.owner };
  } else if (d.deviceId && d.deviceRisk) {
    target = {
      principal: 'DEVICE',
      subject: deviceSubject(d.deviceId),
      level: d.deviceRisk,
      deviceRisk: d.deviceRisk,
    };
  } else if (d.deviceId && subjects.unresolved_user === 'device') {
    target = { principal: 'DEVICE', subject: deviceSubject(d.deviceId), level };
  } else if (!atLeast(level, min)) {
    return { ok: false, result: belowMin(d, level, min) };
  } else {
    const names = accountNames(d);
    const who =
      names.length > 0
        ? `account ${names.map((n) => `"${n}"`).join(', ')} of ${d.id} has no user principal name and no entry in subjects.user_aliases`
        : `${d.id} names no user (no user principal name, no account name)`;
    const where = d.deviceId ? '' : ', and no device';
    const records = assigned.why ? `; ${assigned.why}` : '';
    return { ok: false, result: ignored('subject_unresolved', `${who}${where}${records}`) };
  }
  if (!atLeast(target.level, min))
    return { ok: false, result: belowMin(d, target.level, min, target.deviceRisk) };
  return { ok: true, target };
}

function belowMin(d: Detection, level: RiskLevel, min: RiskLevel, deviceRisk?: RiskLevel): MappingResult {
  const what = deviceRisk
    ? `device risk ${deviceRisk}`
    : `${d.gradeWord ?? 'severity'} ${d.severityLabel} (${level})`;
  return ignored('below_min_level', `${d.id}: ${what} is below min_level ${min}`);
}

function reasonText(d: Detection, target: Target): string {
  const on = d.host ? ` on ${d.host}` : '';
  const detail = d.detail ? `: ${d.detail}` : '';
  const device = target.deviceRisk ? `; device risk ${target.deviceRisk.toLowerCase()}` : '';
  const owner = target.owner ? `; user assigned to ${target.owner.device} in ${target.owner.instance}` : '';
  return `${d.product} ${d.noun ?? 'detection'} "${d.name}" (${d.gradeWord ?? 'severity'} ${d.severityLabel})${on}${detail}${device}${owner}`;
}

/**
 * `@<update time>` of a record the vendor updates, else nothing. Only risk-level changes carry
 * it: credential compromise and session revocation are sent once per detection, not again on
 * every update an analyst makes to it.
 */
function versionSuffix(d: Detection): string {
  return d.version ? `@${d.version.toISOString()}` : '';
}

/** The downgrade (current_level LOW) of a closed detection raised to `target.level` for `target`. */
function downgrade(d: Detection, target: Target, falsePositive: boolean): MappingResult {
  const how = falsePositive ? 'closed as a false positive' : 'resolved';
  const occurredAt = d.closedAt ?? d.occurredAt;
  return {
    events: [
      {
        type: 'caep.risk-level-change',
        subject: target.subject,
        claims: {
          principal: target.principal,
          current_level: 'LOW',
          previous_level: target.level,
          risk_reason: `${d.product} ${d.noun ?? 'detection'} ${falsePositive ? 'closed as false positive' : 'resolved'}: ${d.name}`,
          initiating_entity: 'admin',
          reason_admin: { en: `${reasonText(d, target)} was ${how}` },
        },
        sourceRecordId: `${d.id}#risk-level-change:${target.principal}:cleared${versionSuffix(d)}`,
        txn: `${d.id}${CLEARED_TXN}`,
        severity: 'low',
        ...(occurredAt ? { occurredAt: occurredAt.toISOString() } : {}),
      },
    ],
  };
}

/**
 * What a raise of `d` is to this instance: its `first` level change, a `later` one (this instance
 * sent a level for the detection before, and `d` is a state the vendor updated since), or `stale`
 * (a state not newer than the closure whose downgrade this instance sent last: a redelivery of an
 * older state, which must not undo the closure). Records that are never updated (no `version`)
 * are always `first`.
 */
function levelChange(d: Detection, raised: RaisedLookup | undefined): 'first' | 'later' | 'stale' {
  if (!d.version || !raised?.has(d.id)) return 'first';
  const closedAt = raised.cleared?.(d.id)?.version;
  return closedAt && d.version.getTime() <= closedAt.getTime() ? 'stale' : 'later';
}

/**
 * The events of one detection under the default mapping, or the reason it produces none.
 * `owners` looks a device's assigned user up in MDM records (when the instance names any);
 * `history` is what this instance knows of the record (see ReadHistory).
 */
export function decideEvents(
  d: Detection,
  mapping: MappingConfig,
  subjects: SubjectsConfig,
  owners?: DeviceOwnerLookup,
  history?: ReadHistory,
): MappingResult {
  const min = minLevel(mapping);
  const detectedLevel = d.credentialTheft ? 'HIGH' : d.level;

  if (d.closure !== undefined) {
    const falsePositive = d.closure === 'false_positive';
    const how = falsePositive ? 'closed as a false positive' : 'resolved';
    const setting = falsePositive ? 'downgrade_on_false_positive' : 'downgrade_on_resolved';
    if (!(falsePositive ? mapping.downgrade_on_false_positive : mapping.downgrade_on_resolved)) {
      return ignored('closed', `${d.id} was ${how} and ${setting} is off`);
    }
    const raised = history?.raised;
    const raisedHere = raised?.has(d.id);
    // Sent once: a closed detection the vendor touches again (a comment, a tag) would otherwise
    // lower the level again, and undo a newer raise for the same user.
    const cleared = raisedHere ? raised?.cleared?.(d.id) : undefined;
    if (cleared) {
      return ignored(
        'closed',
        `${d.id} was ${how}; this instance already sent its downgrade and has not raised the risk level for it since`,
      );
    }
    // The memory names the level this instance raised and whom for: the closed record's own
    // grade (lower once the threat is mitigated, or a device risk since remediated) and the
    // subject it would resolve to now do not decide.
    const remembered = raisedHere ? raised?.target?.(d.id) : undefined;
    if (remembered) return downgrade(d, { ...remembered }, falsePositive);
    if (detectedLevel === undefined || detectedLevel === 'LOW') {
      return ignored('closed', `${d.id} was ${how} but never raised the risk level`);
    }
    if (raised && !raisedHere) {
      const created = d.createdAt ?? d.occurredAt;
      const predates = raised.predates && created && created.getTime() < raised.predates.getTime();
      if (!predates) {
        return ignored(
          'not_raised_here',
          `${d.id} was ${how}, but this instance did not raise the risk level for it (it remembers the detections it raised for ${raised.keeps})`,
        );
      }
    }
    const readUpTo = history?.readUpTo;
    if (readUpTo && d.createdAt && d.createdAt.getTime() > readUpTo.getTime()) {
      return ignored(
        'closed',
        `${d.id} was ${how} before this instance first read it, so it never raised the risk level here`,
      );
    }
    const chosen = chooseTarget(d, detectedLevel, subjects, min, owners);
    if (!chosen.ok) return chosen.result;
    return downgrade(d, chosen.target, falsePositive);
  }

  if (detectedLevel === undefined) {
    return ignored(
      'unknown_severity',
      `${d.id} has ${d.gradeWord ?? 'severity'} ${JSON.stringify(d.severityLabel)}, which grades no risk`,
    );
  }
  const chosen = chooseTarget(d, detectedLevel, subjects, min, owners);
  if (!chosen.ok) return chosen.result;
  const { target } = chosen;
  const changed = levelChange(d, history?.raised);
  if (changed === 'stale') {
    const closedAt = history?.raised?.cleared?.(d.id)?.version?.toISOString();
    return ignored(
      'superseded',
      `${d.id}: this state (updated ${d.version?.toISOString()}) is not newer than its closure (updated ${closedAt}), whose downgrade this instance already sent`,
    );
  }
  const severity = draftSeverity(target.level, d.critical);
  const reason = reasonText(d, target);
  const common = {
    txn: d.id,
    severity,
    ...(d.occurredAt ? { occurredAt: d.occurredAt.toISOString() } : {}),
  };
  // CAEP §3.8: the time of the level change. The first raise changes it at the detection; a
  // later state of a detection this instance sent a level for (mitigated, reopened) at its update.
  const changedAt = changed === 'later' ? d.version : d.occurredAt;
  const events: EventDraft[] = [
    {
      type: 'caep.risk-level-change',
      subject: target.subject,
      claims: {
        principal: target.principal,
        current_level: target.level,
        risk_reason: `${d.product} ${d.noun ?? 'detection'}: ${d.name}`,
        initiating_entity: 'system',
        reason_admin: { en: reason },
      },
      sourceRecordId: `${d.id}#risk-level-change:${target.principal}:${target.level}${versionSuffix(d)}`,
      ...common,
      ...(changedAt ? { occurredAt: changedAt.toISOString() } : {}),
    },
  ];
  if (target.principal === 'USER' && d.credentialTheft) {
    events.push({
      type: 'risc.credential-compromise',
      subject: target.subject,
      claims: { credential_type: 'password', reason_admin: { en: reason } },
      sourceRecordId: `${d.id}#credential-compromise`,
      ...common,
    });
  }
  if (target.principal === 'USER' && d.revokeSessions) {
    events.push({
      type: 'caep.session-revoked',
      subject: target.subject,
      claims: { initiating_entity: 'system', reason_admin: { en: reason } },
      sourceRecordId: `${d.id}#session-revoked`,
      ...common,
    });
  }
  return { events };
}

// ---------------------------------------------------------------------------------------------
// Reading vendor payloads

/**
 * A vendor time as a Date: RFC 3339 strings, epoch seconds, epoch milliseconds, or Windows
 * FILETIME (100 ns ticks since 1601, as CrowdStrike Identity Protection sends). Undefined for
 * anything else.
 */
export function toDate(value: unknown): Date | undefined {
  let n: number | undefined;
  if (typeof value === 'number') n = value;
  else if (typeof value === 'string' && /^\d+(?:\.\d+)?$/.test(value.trim())) n = Number(value);
  else if (typeof value === 'string' && value.trim().length > 0) {
    const ms = Date.parse(value);
    // Before 1970 is a vendor's "never" (Graph's 0001-01-01), not a time an event happened.
    return Number.isNaN(ms) || ms <= 0 ? undefined : new Date(ms);
  }
  if (n === undefined || !Number.isFinite(n) || n <= 0) return undefined;
  const ms = n > 1e16 ? n / 10_000 - 11_644_473_600_000 : n > 1e11 ? n : n * 1000;
  const date = new Date(Math.round(ms));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path)
    out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out || '(record)';
}

/** Every problem of a failed parse as `path: message`, at most five. */
export function describeIssues(error: z.ZodError, at: readonly PropertyKey[] = []): string {
  const shown = error.issues.slice(0, 5).map((i) => `${formatPath([...at, ...i.path])}: ${i.message}`);
  const more = error.issues.length > 5 ? ` (and ${error.issues.length - 5} more)` : '';
  return shown.join('; ') + more;
}

/** Parses a vendor record, or throws a PermanentError that says what is wrong with it. */
export function parseRecord<T extends z.ZodType>(
  schema: T,
  value: unknown,
  what: string,
  at: readonly PropertyKey[] = [],
): z.output<T> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new PermanentError(`${what}: ${describeIssues(result.error, at)}`, {
      code: 'SSF_ERR_CONNECTOR_MALFORMED_RECORD',
    });
  }
  return result.data;
}

export function malformed(message: string): PermanentError {
  return new PermanentError(message, { code: 'SSF_ERR_CONNECTOR_MALFORMED_RECORD' });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
