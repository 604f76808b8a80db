/**
 * Microsoft Defender alerts → event drafts. Two generations of the alert:
 *
 * - Microsoft Graph `security/alerts_v2` (camelCase enums: `high`, `resolved`, `falsePositive`,
 *   `compromisedAccount`), with polymorphic `evidence[]` discriminated by `@odata.type`:
 *   userEvidence → `userAccount.userPrincipalName`; deviceEvidence → `azureAdDeviceId` /
 *   `mdeDeviceId`, `riskScore` and `loggedOnUsers`.
 * - The legacy Defender for Endpoint alerts API (PascalCase enums: `High`, `Resolved`,
 *   `FalsePositive`), with `machineId`, `relatedUser {userName, domainName}` and, with
 *   `$expand=evidence`, evidence entries typed by `entityType` (`User` carries the UPN).
 */
import { z, type DeviceOwnerLookup, type MappingResult } from '../../core/plugin-api/index.ts';
import type { RiskLevel, SubjectsConfig } from '../_shared/edr-config.ts';
import {
  decideEvents,
  isRecord,
  levelFromName,
  malformed,
  parseRecord,
  toDate,
  type AccountRef,
  type Detection,
  type ReadHistory,
} from '../_shared/edr-mapping.ts';
import type { DefenderMappingConfig } from './config.ts';

const GRAPH_PRODUCT = 'Microsoft Defender';
const MDE_PRODUCT = 'Microsoft Defender for Endpoint';

export interface DefenderMappingInput {
  mapping: DefenderMappingConfig;
  subjects: SubjectsConfig;
}

const str = z.string().nullish();

const userAccountSchema = z
  .looseObject({
    accountName: str,
    domainName: str,
    userPrincipalName: str,
    azureAdUserId: str,
    userSid: str,
    displayName: str,
  })
  .nullish();

const graphEvidenceSchema = z.looseObject({
  '@odata.type': z.string().min(1),
  roles: z.array(z.string()).nullish(),
  verdict: str,
  userAccount: userAccountSchema,
  mdeDeviceId: str,
  azureAdDeviceId: str,
  deviceDnsName: str,
  hostName: str,
  riskScore: str,
  loggedOnUsers: z.array(z.looseObject({ accountName: str, domainName: str })).nullish(),
});
type GraphEvidence = z.output<typeof graphEvidenceSchema>;

const graphAlertSchema = z.looseObject({
  id: z.string().min(1),
  title: str,
  severity: str,
  status: str,
  classification: str,
  determination: str,
  category: str,
  serviceSource: str,
  createdDateTime: str,
  firstActivityDateTime: str,
  lastUpdateDateTime: str,
  resolvedDateTime: str,
  evidence: z.array(graphEvidenceSchema).nullish(),
});

const mdeEvidenceSchema = z.looseObject({
  entityType: z.string().min(1),
  userPrincipalName: str,
  accountName: str,
  domainName: str,
  aadUserId: str,
});

const mdeAlertSchema = z.looseObject({
  id: z.string().min(1),
  title: str,
  severity: str,
  status: str,
  classification: str,
  determination: str,
  category: str,
  alertCreationTime: str,
  firstEventTime: str,
  lastUpdateTime: str,
  resolvedTime: str,
  machineId: str,
  computerDnsName: str,
  relatedUser: z.looseObject({ userName: str, domainName: str }).nullish(),
  evidence: z.array(mdeEvidenceSchema).nullish(),
});

const lower = (value: string | null | undefined) => (value ?? '').trim().toLowerCase();

const COMPROMISED_DETERMINATIONS = new Set(['compromisedaccount', 'compromiseduser']);
/** Evidence roles that point at the user the alert is about, most telling first. */
const ROLE_RANK = ['compromised', 'attacked', 'suspicious', 'source'];

function roleRank(roles: readonly string[] | null | undefined): number {
  const ranks = (roles ?? []).map((r) => ROLE_RANK.indexOf(lower(r))).filter((i) => i >= 0);
  return ranks.length > 0 ? Math.min(...ranks) : ROLE_RANK.length;
}

function evidenceType(e: GraphEvidence): string {
  return lower(e['@odata.type']).replace(/^#?microsoft\.graph\.security\./, '');
}

/** Informational and low both grade LOW; unknown and unknownFutureValue grade nothing. */
function severityLevel(severity: string | null | undefined): RiskLevel | undefined {
  return levelFromName(severity);
}

/** deviceEvidence.riskScore: none, informational and low grade LOW. */
function riskScoreLevel(score: string | null | undefined): RiskLevel | undefined {
  return lower(score) === 'none' ? 'LOW' : levelFromName(score);
}

/**
 * An alert classified as a false positive is one, whatever its status: analysts classify an
 * alert while it is still in progress, and it must not raise the level again meanwhile (as
 * SentinelOne's analystVerdict). Otherwise only a resolved alert is closed.
 */
function closure(
  status: string | null | undefined,
  classification: string | null | undefined,
): Detection['closure'] {
  if (lower(classification) === 'falsepositive') return 'false_positive';
  return lower(status) === 'resolved' ? 'resolved' : undefined;
}

function extras(
  mapping: DefenderMappingConfig,
  level: RiskLevel | undefined,
  determination: string | null | undefined,
  category: string | null | undefined,
) {
  const high = level === 'HIGH';
  return {
    revokeSessions:
      high &&
      mapping.revoke_sessions_on_compromised_account &&
      COMPROMISED_DETERMINATIONS.has(lower(determination)),
    credentialTheft:
      high && mapping.credential_compromise_on_credential_access && lower(category) === 'credentialaccess',
  };
}

function pickDevice(
  mapping: DefenderMappingConfig,
  azureAd: string | null | undefined,
  mde: string | null | undefined,
): string | undefined {
  const ids = mapping.device_id === 'mde' ? [mde, azureAd] : [azureAd, mde];
  return ids.find((id): id is string => typeof id === 'string' && id.trim().length > 0)?.trim();
}

function graphDetection(record: unknown, config: DefenderMappingInput): Detection {
  const a = parseRecord(graphAlertSchema, record, 'Graph security alert');
  const evidence = a.evidence ?? [];
  const users = evidence
    .filter((e) => evidenceType(e) === 'userevidence' && e.userAccount)
    .sort((x, y) => roleRank(x.roles) - roleRank(y.roles));
  const others = evidence.filter((e) => evidenceType(e) !== 'userevidence' && e.userAccount);
  const device = evidence.find((e) => evidenceType(e) === 'deviceevidence');
  const accountsOf = (list: GraphEvidence[]): AccountRef[] =>
    list.map((e) => ({ name: e.userAccount?.accountName, domain: e.userAccount?.domainName }));
  const level = severityLevel(a.severity);
  const deviceRisk = config.mapping.device_risk_events ? riskScoreLevel(device?.riskScore) : undefined;
  return {
    id: a.id,
    product: GRAPH_PRODUCT,
    noun: 'alert',
    name: a.title ?? 'alert',
    severityLabel: a.severity ?? 'unknown',
    level,
    critical: false,
    ...extras(config.mapping, level, a.determination, a.category),
    detail:
      [a.category, a.determination && lower(a.determination) !== 'unknown' ? a.determination : undefined]
        .filter(Boolean)
        .join(' / ') || undefined,
    host: device?.deviceDnsName ?? device?.hostName ?? undefined,
    occurredAt: toDate(a.firstActivityDateTime) ?? toDate(a.createdDateTime),
    closure: closure(a.status, a.classification),
    closedAt: toDate(a.resolvedDateTime) ?? toDate(a.lastUpdateDateTime),
    createdAt: toDate(a.createdDateTime),
    version: toDate(a.lastUpdateDateTime),
    upns: [...users, ...others].map((e) => e.userAccount?.userPrincipalName),
    accounts: [
      ...accountsOf(users),
      ...accountsOf(others),
      ...(device?.loggedOnUsers ?? []).map((u) => ({ name: u.accountName, domain: u.domainName })),
    ],
    deviceId: device ? pickDevice(config.mapping, device.azureAdDeviceId, device.mdeDeviceId) : undefined,
    // Intune knows a device by its Entra id and its name, whichever id the subject carries.
    deviceNames: [device?.azureAdDeviceId, device?.hostName],
    ...(deviceRisk ? { deviceRisk } : {}),
  };
}

function mdeDetection(record: unknown, config: DefenderMappingInput): Detection {
  const a = parseRecord(mdeAlertSchema, record, 'Defender for Endpoint alert');
  const users = (a.evidence ?? []).filter((e) => lower(e.entityType) === 'user');
  const level = lower(a.severity) === 'unspecified' ? undefined : severityLevel(a.severity);
  return {
    id: a.id,
    product: MDE_PRODUCT,
    noun: 'alert',
    name: a.title ?? 'alert',
    severityLabel: a.severity ?? 'UnSpecified',
    level,
    critical: false,
    ...extras(config.mapping, level, a.determination, a.category),
    detail: a.category ?? undefined,
    host: a.computerDnsName ?? undefined,
    occurredAt: toDate(a.firstEventTime) ?? toDate(a.alertCreationTime),
    closure: closure(a.status, a.classification),
    closedAt: toDate(a.resolvedTime) ?? toDate(a.lastUpdateTime),
    createdAt: toDate(a.alertCreationTime),
    version: toDate(a.lastUpdateTime),
    upns: users.map((u) => u.userPrincipalName),
    accounts: [
      ...users.map((u) => ({ name: u.accountName, domain: u.domainName })),
      { name: a.relatedUser?.userName, domain: a.relatedUser?.domainName },
    ],
    deviceId: a.machineId?.trim() || undefined,
  };
}

/** Which generation an alert is, by the fields only that generation has. */
export function alertGeneration(record: Record<string, unknown>): 'graph' | 'mde' | undefined {
  if ('alertCreationTime' in record || 'machineId' in record || 'lastUpdateTime' in record) return 'mde';
  if ('createdDateTime' in record || 'lastUpdateDateTime' in record || 'serviceSource' in record)
    return 'graph';
  return undefined;
}

/** Maps one Defender alert of either generation; throws PermanentError when malformed. */
export function mapDefenderAlert(
  record: unknown,
  config: DefenderMappingInput,
  owners?: DeviceOwnerLookup,
  history?: ReadHistory,
): MappingResult {
  if (!isRecord(record)) throw malformed('a Defender alert must be a JSON object');
  const generation = alertGeneration(record);
  if (generation === undefined) {
    throw malformed(
      'not a Defender alert: expected a Graph alerts_v2 alert (createdDateTime, lastUpdateDateTime) or a Defender for Endpoint alert (alertCreationTime, machineId)',
    );
  }
  const detection = generation === 'graph' ? graphDetection(record, config) : mdeDetection(record, config);
  return decideEvents(detection, config.mapping, config.subjects, owners, history);
}

/** The id and update time of an alert of either generation, for the poll watermark. */
export function alertVersion(record: unknown): { id: string; updatedMs: number } | undefined {
  if (!isRecord(record) || typeof record['id'] !== 'string') return undefined;
  const updated = toDate(record['lastUpdateDateTime'] ?? record['lastUpdateTime']);
  return updated ? { id: record['id'], updatedMs: updated.getTime() } : undefined;
}

export function describeDefenderAlert(record: unknown): string | undefined {
  return isRecord(record) && typeof record['id'] === 'string' ? record['id'] : undefined;
}
