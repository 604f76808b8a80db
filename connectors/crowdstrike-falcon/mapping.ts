/**
 * CrowdStrike Falcon records → event drafts. Recognised shapes:
 *
 * - Event Streams envelopes `{metadata: {eventType, offset, eventCreationTime}, event}` of type
 *   `DetectionSummaryEvent` (legacy Detects: DetectId, ComputerName, SensorId, Severity 1–5),
 *   `EppDetectionSummaryEvent` / `EPPDetectionSummaryEvent` (CompositeId, Hostname, AgentId,
 *   Severity 0–100), `IdpDetectionSummaryEvent` (Identity Protection; FILETIME timestamps) and
 *   `IdentityProtectionEvent` (Identity Protection incidents). Either naming of the detection
 *   fields is read in both detection types. Other stream event types are ignored.
 * - Alerts API v2 entities (snake_case, `composite_id`), including Identity Protection alerts.
 */
import { z, type DeviceOwnerLookup, type MappingResult } from '../../core/plugin-api/index.ts';
import type { SubjectsConfig } from '../_shared/edr-config.ts';
import {
  decideEvents,
  isCriticalName,
  isRecord,
  levelFromName,
  levelFromScore,
  malformed,
  parseRecord,
  toDate,
  type AccountRef,
  type Detection,
  type ReadHistory,
} from '../_shared/edr-mapping.ts';
import type { FalconMappingConfig } from './config.ts';

export const PRODUCT = 'CrowdStrike Falcon';
const IDENTITY_PRODUCT = 'CrowdStrike Falcon Identity Protection';

/** What the mapping reads from the instance config. */
export interface FalconMappingInput {
  mapping: FalconMappingConfig;
  subjects: SubjectsConfig;
}

/** A number, also when the vendor sends it as a numeric string. */
const num = z.union([
  z.number(),
  z
    .string()
    .trim()
    .regex(/^-?\d+(?:\.\d+)?$/, 'must be a number')
    .transform(Number),
]);
const str = z.string().nullish();
const time = z.union([z.number(), z.string()]).nullish();

const dispositionFlags = z
  .looseObject({ QuarantineMachine: z.boolean().nullish() })
  .nullish()
  .meta({ description: 'PatternDispositionFlags; QuarantineMachine marks a contained host.' });

/** Detection fields under both namings (legacy Detects and EPP); at least one id is required. */
const streamDetectionSchema = z
  .looseObject({
    CompositeId: str,
    DetectId: str,
    Name: str,
    DetectName: str,
    Description: str,
    DetectDescription: str,
    Hostname: str,
    ComputerName: str,
    AgentId: str,
    SensorId: str,
    UserName: str,
    UserPrincipal: str,
    LogonDomain: str,
    MachineDomain: str,
    Severity: num.nullish(),
    SeverityName: str,
    Tactic: str,
    Technique: str,
    PatternDispositionFlags: dispositionFlags,
  })
  .refine((e) => Boolean(e.CompositeId || e.DetectId), {
    message: 'a detection needs CompositeId (EPP) or DetectId (legacy)',
    path: ['CompositeId'],
  })
  .refine((e) => e.SeverityName != null || e.Severity != null, {
    message: 'a detection needs Severity or SeverityName',
    path: ['Severity'],
  });

const idpDetectionSchema = z
  .looseObject({
    CompositeId: str,
    DetectId: str,
    DetectName: str,
    Name: str,
    DetectDescription: str,
    Severity: num.nullish(),
    SeverityName: str,
    Tactic: str,
    TacticId: str,
    Technique: str,
    SourceAccountName: str,
    SourceAccountDomain: str,
    SourceAccountUpn: str,
    SourceAccountUserPrincipalName: str,
    SourceEndpointHostName: str,
    SourceEndpointSensorId: str,
    StartTime: time,
    ContextTimeStamp: time,
  })
  .refine((e) => Boolean(e.CompositeId || e.DetectId), {
    message: 'an Identity Protection detection needs DetectId or CompositeId',
    path: ['DetectId'],
  })
  .refine((e) => e.SeverityName != null || e.Severity != null, {
    message: 'a detection needs Severity or SeverityName',
    path: ['Severity'],
  });

const idpIncidentSchema = z.looseObject({
  IdentityProtectionIncidentId: z.string().min(1),
  IncidentType: str,
  IncidentDescription: str,
  Severity: num.nullish(),
  SeverityName: str,
  UserName: str,
  EndpointName: str,
  State: str,
  StartTime: time,
});

const envelopeSchema = z.looseObject({
  metadata: z.looseObject({
    eventType: z.string().min(1),
    offset: num.nullish(),
    eventCreationTime: time,
  }),
  event: z.looseObject({}),
});

const alertSchema = z.looseObject({
  composite_id: z.string().min(1),
  name: str,
  display_name: str,
  description: str,
  product: str,
  severity: num.nullish(),
  severity_name: str,
  status: str,
  tags: z.array(z.string()).nullish(),
  tactic: str,
  tactic_id: str,
  technique: str,
  user_name: str,
  user_principal: str,
  logon_domain: str,
  source_account_upn: str,
  source_account_name: str,
  source_account_sam_account_name: str,
  source_account_domain: str,
  source_endpoint_host_name: str,
  source_endpoint_sensor_id: str,
  agent_id: str,
  created_timestamp: time,
  updated_timestamp: time,
  timestamp: time,
  device: z.looseObject({ device_id: str, hostname: str, status: str, machine_domain: str }).nullish(),
  pattern_disposition_details: z.looseObject({ quarantine_machine: z.boolean().nullish() }).nullish(),
});

type Scale = 'score' | 'legacy';

function grade(
  severity: number | null | undefined,
  severityName: string | null | undefined,
  scale: Scale,
  mapping: FalconMappingConfig,
  id: string,
): Pick<Detection, 'level' | 'critical' | 'severityLabel'> {
  const byName = levelFromName(severityName);
  // A name without a score, blank or unknown, is graded by nothing: unknown_severity, not LOW.
  if (byName !== undefined || (severityName != null && severity == null)) {
    return {
      level: byName,
      critical: isCriticalName(severityName),
      severityLabel: severityName?.trim() ? String(severityName) : '(blank SeverityName)',
    };
  }
  const value = severity as number;
  if (scale === 'legacy') {
    if (!Number.isInteger(value) || value < 0 || value > 5) {
      throw malformed(
        `${id}: Severity ${value} is outside the legacy 1–5 scale and no SeverityName is given`,
      );
    }
    const t = mapping.legacy_severity_thresholds;
    const level = value >= t.high ? 'HIGH' : value >= t.medium ? 'MEDIUM' : 'LOW';
    return { level, critical: value >= t.critical, severityLabel: `${value} of 5` };
  }
  if (value < 0 || value > 100) {
    throw malformed(`${id}: Severity ${value} is outside the 0–100 scale and no SeverityName is given`);
  }
  const t = mapping.score_thresholds;
  return { level: levelFromScore(value, t), critical: value >= t.critical, severityLabel: `${value} of 100` };
}

function detail(...parts: Array<string | null | undefined>): string | undefined {
  const shown = parts.filter((p): p is string => typeof p === 'string' && p.trim().length > 0);
  return shown.length > 0 ? shown.join(' / ') : undefined;
}

function isCredentialAccess(tactic: string | null | undefined, tacticId: string | null | undefined): boolean {
  return tacticId?.toUpperCase() === 'TA0006' || /credential\s*access/i.test(tactic ?? '');
}

function containment(mapping: FalconMappingConfig, critical: boolean, contained: boolean): boolean {
  return mapping.revoke_sessions_on_containment && critical && contained;
}

function streamDetection(
  type: 'legacy' | 'epp',
  raw: unknown,
  occurredAt: Date | undefined,
  config: FalconMappingInput,
): Detection {
  const what = type === 'epp' ? 'EppDetectionSummaryEvent' : 'DetectionSummaryEvent';
  const e = parseRecord(streamDetectionSchema, raw, what, ['event']);
  const id = (e.CompositeId || e.DetectId) as string;
  const graded = grade(e.Severity, e.SeverityName, type === 'epp' ? 'score' : 'legacy', config.mapping, id);
  const contained = e.PatternDispositionFlags?.QuarantineMachine === true;
  const domain = e.LogonDomain ?? e.MachineDomain;
  return {
    id,
    product: PRODUCT,
    name: e.Name ?? e.DetectName ?? 'detection',
    ...graded,
    revokeSessions: containment(config.mapping, graded.critical, contained),
    credentialTheft: false,
    detail: detail(e.Tactic, e.Technique),
    host: e.Hostname ?? e.ComputerName ?? undefined,
    occurredAt,
    upns: [e.UserPrincipal],
    accounts: [{ name: e.UserName, domain }],
    deviceId: e.AgentId ?? e.SensorId ?? undefined,
  };
}

function idpDetection(raw: unknown, fallbackTime: Date | undefined, config: FalconMappingInput): Detection {
  const e = parseRecord(idpDetectionSchema, raw, 'IdpDetectionSummaryEvent', ['event']);
  const id = (e.CompositeId || e.DetectId) as string;
  const scale: Scale = typeof e.Severity === 'number' && e.Severity > 5 ? 'score' : 'legacy';
  const graded = grade(e.Severity, e.SeverityName, scale, config.mapping, id);
  return {
    id,
    product: IDENTITY_PRODUCT,
    name: e.DetectName ?? e.Name ?? 'identity detection',
    ...graded,
    revokeSessions: false,
    credentialTheft: config.mapping.credential_theft && isCredentialAccess(e.Tactic, e.TacticId),
    detail: detail(e.Tactic, e.Technique),
    host: e.SourceEndpointHostName ?? undefined,
    occurredAt: toDate(e.StartTime) ?? toDate(e.ContextTimeStamp) ?? fallbackTime,
    upns: [e.SourceAccountUpn, e.SourceAccountUserPrincipalName],
    accounts: [{ name: e.SourceAccountName, domain: e.SourceAccountDomain }],
    deviceId: e.SourceEndpointSensorId ?? undefined,
  };
}

function idpIncident(raw: unknown, fallbackTime: Date | undefined, config: FalconMappingInput): Detection {
  const e = parseRecord(idpIncidentSchema, raw, 'IdentityProtectionEvent', ['event']);
  const id = e.IdentityProtectionIncidentId;
  const scale: Scale = typeof e.Severity === 'number' && e.Severity > 5 ? 'score' : 'legacy';
  if (e.Severity == null && e.SeverityName == null)
    throw malformed(`${id}: an incident needs Severity or SeverityName`);
  const graded = grade(e.Severity, e.SeverityName, scale, config.mapping, id);
  const state = (e.State ?? '').toUpperCase();
  return {
    id,
    product: IDENTITY_PRODUCT,
    noun: 'incident',
    name: e.IncidentType ?? 'identity incident',
    ...graded,
    revokeSessions: false,
    credentialTheft: false,
    detail: e.IncidentDescription ?? undefined,
    host: e.EndpointName ?? undefined,
    occurredAt: toDate(e.StartTime) ?? fallbackTime,
    closure: state === 'RESOLVED' || state === 'CLOSED' ? 'resolved' : undefined,
    // Each event of an incident is a state of it (opened, resolved, reopened).
    version: fallbackTime,
    upns: [],
    accounts: [{ name: e.UserName }],
  };
}

function alertClosure(
  status: string | null | undefined,
  tags: readonly string[] | null | undefined,
  mapping: FalconMappingConfig,
): Detection['closure'] {
  const s = (status ?? '').toLowerCase();
  if (s === 'false_positive') return 'false_positive';
  if (s !== 'closed' && s !== 'true_positive' && s !== 'ignored') return undefined;
  const normalise = (tag: string) =>
    tag
      .trim()
      .toLowerCase()
      .replace(/[\s-]+/g, '_');
  const fpTags = new Set(mapping.false_positive_tags.map(normalise));
  return s === 'closed' && (tags ?? []).some((t) => fpTags.has(normalise(t))) ? 'false_positive' : 'resolved';
}

function alertDetection(raw: unknown, config: FalconMappingInput): Detection {
  const a = parseRecord(alertSchema, raw, 'Alerts API entity');
  const id = a.composite_id;
  if (a.severity == null && a.severity_name == null)
    throw malformed(`${id}: an alert needs severity or severity_name`);
  const graded = grade(a.severity, a.severity_name, 'score', config.mapping, id);
  const identity = (a.product ?? '').toLowerCase() === 'idp';
  const contained =
    (a.device?.status ?? '').toLowerCase() === 'contained' ||
    a.pattern_disposition_details?.quarantine_machine === true;
  const accounts: AccountRef[] = [
    { name: a.source_account_name ?? a.source_account_sam_account_name, domain: a.source_account_domain },
    { name: a.user_name, domain: a.logon_domain ?? a.device?.machine_domain },
  ];
  return {
    id,
    product: identity ? IDENTITY_PRODUCT : PRODUCT,
    name: a.display_name ?? a.name ?? 'alert',
    ...graded,
    revokeSessions: containment(config.mapping, graded.critical, contained),
    credentialTheft: identity && config.mapping.credential_theft && isCredentialAccess(a.tactic, a.tactic_id),
    detail: detail(a.tactic, a.technique),
    host: a.device?.hostname ?? a.source_endpoint_host_name ?? undefined,
    occurredAt: toDate(a.created_timestamp) ?? toDate(a.timestamp),
    closure: alertClosure(a.status, a.tags, config.mapping),
    closedAt: toDate(a.updated_timestamp),
    createdAt: toDate(a.created_timestamp),
    version: toDate(a.updated_timestamp),
    upns: [a.source_account_upn, a.user_principal],
    accounts,
    deviceId: a.device?.device_id ?? a.agent_id ?? a.source_endpoint_sensor_id ?? undefined,
  };
}

/** Maps one Falcon record (stream envelope or alert entity); throws PermanentError when malformed. */
export function mapFalconRecord(
  record: unknown,
  config: FalconMappingInput,
  owners?: DeviceOwnerLookup,
  history?: ReadHistory,
): MappingResult {
  if (!isRecord(record)) throw malformed('a CrowdStrike Falcon record must be a JSON object');
  if ('metadata' in record || 'event' in record) {
    const envelope = parseRecord(envelopeSchema, record, 'Event Streams record');
    const eventType = envelope.metadata.eventType;
    const created = toDate(envelope.metadata.eventCreationTime);
    switch (eventType.toLowerCase()) {
      case 'detectionsummaryevent':
        return decideEvents(
          streamDetection('legacy', envelope.event, created, config),
          config.mapping,
          config.subjects,
          owners,
          history,
        );
      case 'eppdetectionsummaryevent':
        return decideEvents(
          streamDetection('epp', envelope.event, created, config),
          config.mapping,
          config.subjects,
          owners,
          history,
        );
      case 'idpdetectionsummaryevent':
        return decideEvents(
          idpDetection(envelope.event, created, config),
          config.mapping,
          config.subjects,
          owners,
          history,
        );
      case 'identityprotectionevent':
        return decideEvents(
          idpIncident(envelope.event, created, config),
          config.mapping,
          config.subjects,
          owners,
          history,
        );
      default:
        return {
          events: [],
          ignored: `not_a_detection: stream event type ${eventType} carries no detection`,
        };
    }
  }
  if ('composite_id' in record) {
    return decideEvents(alertDetection(record, config), config.mapping, config.subjects, owners, history);
  }
  throw malformed(
    'not a CrowdStrike Falcon record: expected an Event Streams record {metadata: {eventType}, event} or an Alerts API entity with composite_id',
  );
}

/** The id and update time of an Alerts API entity, for the poll watermark. */
export function alertVersion(record: unknown): { id: string; updatedMs: number } | undefined {
  if (!isRecord(record) || typeof record['composite_id'] !== 'string') return undefined;
  const updated = toDate(record['updated_timestamp']);
  return updated ? { id: record['composite_id'], updatedMs: updated.getTime() } : undefined;
}

/** A short name of a record for logs. */
export function describeFalconRecord(record: unknown): string | undefined {
  if (!isRecord(record)) return undefined;
  if (typeof record['composite_id'] === 'string') return record['composite_id'];
  const meta = isRecord(record['metadata']) ? record['metadata'] : undefined;
  const event = isRecord(record['event']) ? record['event'] : undefined;
  const id = event?.['CompositeId'] ?? event?.['DetectId'] ?? event?.['IdentityProtectionIncidentId'];
  const type = meta?.['eventType'];
  return [type, id, meta?.['offset']].filter((p) => p !== undefined).join(' ') || undefined;
}
