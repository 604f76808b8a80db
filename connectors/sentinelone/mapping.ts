/**
 * SentinelOne threats (`/web/api/v2.1/threats`) → event drafts.
 *
 * - Level by `threatInfo.confidenceLevel` × mitigation state. The mitigation state comes from
 *   `threatInfo.mitigationStatus` (a string such as `not_mitigated` or `mitigated`), or, in
 *   payloads without it, from a top-level `mitigationStatus` that is either the same string or
 *   an array of mitigation actions (`{action, status}`).
 * - User as of the detection: `agentDetectionInfo` (UPN or mail of the last logged-in user at
 *   detection time), then the alias map for `threatInfo.processUser` (`DOMAIN\user`) and that
 *   last logged-in user name; only when none of those resolves, who is logged in now
 *   (`agentRealtimeInfo`: on a shared host, possibly someone else). Device =
 *   `agentRealtimeInfo.agentUuid`.
 * - A malicious, unmitigated threat on a network-quarantined host (`agentNetworkStatus`
 *   disconnected, or a successful `network_quarantine` action) also revokes the user's sessions.
 * - `analystVerdict` false_positive (or `marked_as_benign`) → downgrade; `incidentStatus`
 *   resolved → no event.
 */
import { z, type DeviceOwnerLookup, type MappingResult } from '../../core/plugin-api/index.ts';
import type { RiskLevel, SubjectsConfig } from '../_shared/edr-config.ts';
import {
  decideEvents,
  isRecord,
  malformed,
  parseRecord,
  toDate,
  type Detection,
  type ReadHistory,
} from '../_shared/edr-mapping.ts';
import type { SentinelOneMappingConfig } from './config.ts';

const PRODUCT = 'SentinelOne';

export interface SentinelOneMappingInput {
  mapping: SentinelOneMappingConfig;
  subjects: SubjectsConfig;
}

const str = z.string().nullish();

const agentInfoSchema = z
  .looseObject({
    agentUuid: str,
    agentId: str,
    agentComputerName: str,
    agentDomain: str,
    agentNetworkStatus: str,
    agentInfected: z.boolean().nullish(),
    agentLastLoggedInUpn: str,
    agentLastLoggedInUserMail: str,
    agentLastLoggedInUserName: str,
  })
  .nullish();

const actionSchema = z.looseObject({ action: z.string().min(1), status: str });

const threatSchema = z.looseObject({
  id: str,
  threatInfo: z.looseObject({
    threatId: str,
    threatName: str,
    classification: str,
    confidenceLevel: str,
    analystVerdict: str,
    incidentStatus: str,
    mitigationStatus: str,
    processUser: str,
    createdAt: str,
    identifiedAt: str,
    updatedAt: str,
  }),
  agentDetectionInfo: agentInfoSchema,
  agentRealtimeInfo: agentInfoSchema,
  mitigationStatus: z.union([z.string(), z.array(actionSchema)]).nullish(),
  createdAt: str,
  updatedAt: str,
});
type Threat = z.output<typeof threatSchema>;

const lower = (value: string | null | undefined) => (value ?? '').trim().toLowerCase();

/** Statuses of a threat the agent has dealt with. */
const MITIGATED = new Set(['mitigated', 'blocked', 'marked_as_benign', 'suspicious_resolved']);
/** Statuses of a threat still present. */
const ACTIVE = new Set([
  'active',
  'not_mitigated',
  'suspicious',
  'pending',
  'mitigation_failed',
  'partially_mitigated',
]);
/** Mitigation actions that remove the threat when they succeed. */
const REMOVING_ACTIONS = new Set(['kill', 'quarantine', 'remediate', 'rollback']);

interface Mitigation {
  mitigated: boolean;
  label: string;
  networkQuarantined: boolean;
}

function mitigation(t: Threat): Mitigation {
  const text =
    t.threatInfo.mitigationStatus ??
    (typeof t.mitigationStatus === 'string' ? t.mitigationStatus : undefined);
  const actions = Array.isArray(t.mitigationStatus) ? t.mitigationStatus : [];
  const succeeded = actions.filter((a) => lower(a.status) === 'success').map((a) => lower(a.action));
  const networkQuarantined = succeeded.includes('network_quarantine');
  if (text !== undefined && text !== null) {
    const status = lower(text);
    // An unknown status is treated as active: a threat is never assumed dealt with.
    return {
      mitigated: MITIGATED.has(status) && !ACTIVE.has(status),
      label: status.replace(/_/g, ' '),
      networkQuarantined,
    };
  }
  const removed = succeeded.some((a) => REMOVING_ACTIONS.has(a));
  return {
    mitigated: removed,
    label: removed ? `mitigated (${succeeded.join(', ')})` : 'not mitigated',
    networkQuarantined,
  };
}

function gradeThreat(
  confidence: string,
  mitigated: boolean,
  mapping: SentinelOneMappingConfig,
): RiskLevel | undefined {
  const levels = mapping.levels;
  const choice =
    confidence === 'malicious'
      ? mitigated
        ? levels.malicious_mitigated
        : levels.malicious_active
      : confidence === 'suspicious'
        ? mitigated
          ? levels.suspicious_mitigated
          : levels.suspicious_active
        : undefined;
  return choice === undefined ? undefined : (choice.toUpperCase() as RiskLevel);
}

function threatDetection(record: unknown, config: SentinelOneMappingInput): Detection {
  const t = parseRecord(threatSchema, record, 'SentinelOne threat');
  const info = t.threatInfo;
  const id = info.threatId ?? t.id;
  if (!id) throw malformed('SentinelOne threat: threatInfo.threatId (or id) is required');
  const confidence = lower(info.confidenceLevel);
  const m = mitigation(t);
  const level = gradeThreat(confidence, m.mitigated, config.mapping);
  const active = confidence === 'malicious' && !m.mitigated;
  const detection = t.agentDetectionInfo;
  const realtime = t.agentRealtimeInfo;
  const networkStatus = lower(realtime?.agentNetworkStatus);
  const contained =
    m.networkQuarantined || networkStatus === 'disconnected' || networkStatus === 'disconnecting';
  const verdict = lower(info.analystVerdict);
  const closure: Detection['closure'] =
    verdict === 'false_positive' || lower(info.mitigationStatus) === 'marked_as_benign'
      ? 'false_positive'
      : lower(info.incidentStatus) === 'resolved'
        ? 'resolved'
        : undefined;
  return {
    id,
    product: PRODUCT,
    noun: 'threat',
    name: info.threatName ?? 'threat',
    severityLabel: `${confidence || 'unknown'}, ${m.label}`,
    gradeWord: 'confidence',
    level,
    critical: false,
    revokeSessions: config.mapping.revoke_sessions_on_containment && active && contained,
    credentialTheft: false,
    detail: info.classification ?? undefined,
    host: realtime?.agentComputerName ?? detection?.agentComputerName ?? undefined,
    occurredAt: toDate(info.identifiedAt) ?? toDate(info.createdAt) ?? toDate(t.createdAt),
    closure,
    closedAt: toDate(info.updatedAt) ?? toDate(t.updatedAt),
    createdAt: toDate(info.createdAt) ?? toDate(t.createdAt),
    version: toDate(info.updatedAt) ?? toDate(t.updatedAt),
    upns: [detection?.agentLastLoggedInUpn, detection?.agentLastLoggedInUserMail],
    accounts: [
      { name: info.processUser },
      { name: detection?.agentLastLoggedInUserName, domain: detection?.agentDomain },
    ],
    currentUser: {
      upns: [realtime?.agentLastLoggedInUpn, realtime?.agentLastLoggedInUserMail],
      accounts: [{ name: realtime?.agentLastLoggedInUserName, domain: realtime?.agentDomain }],
    },
    deviceId: realtime?.agentUuid ?? detection?.agentUuid ?? realtime?.agentId ?? undefined,
  };
}

/** Maps one SentinelOne threat; throws PermanentError when malformed. */
export function mapThreat(
  record: unknown,
  config: SentinelOneMappingInput,
  owners?: DeviceOwnerLookup,
  history?: ReadHistory,
): MappingResult {
  if (!isRecord(record)) throw malformed('a SentinelOne threat must be a JSON object');
  return decideEvents(threatDetection(record, config), config.mapping, config.subjects, owners, history);
}

/** The id and update time of a threat, for the poll watermark. */
export function threatVersion(record: unknown): { id: string; updatedMs: number } | undefined {
  if (!isRecord(record)) return undefined;
  const info = isRecord(record['threatInfo']) ? record['threatInfo'] : {};
  const id = info['threatId'] ?? record['id'];
  const updated = toDate(info['updatedAt'] ?? record['updatedAt']);
  return typeof id === 'string' && updated ? { id, updatedMs: updated.getTime() } : undefined;
}

export function describeThreat(record: unknown): string | undefined {
  return (
    threatVersion(record)?.id ??
    (isRecord(record) && typeof record['id'] === 'string' ? record['id'] : undefined)
  );
}
