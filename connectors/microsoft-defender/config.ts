import { duration, secret, z } from '../../core/plugin-api/index.ts';
import {
  apiBaseUrl,
  downgradeField,
  downgradeResolvedField,
  minLevelField,
  subjectsSchema,
  webhookSchema,
} from '../_shared/edr-config.ts';
import {
  clientCertificateSchema,
  entraCredentialIssues,
  federatedTokenFileSchema,
} from '../_shared/entra-auth.ts';

const mappingSchema = z
  .strictObject({
    min_level: minLevelField,
    downgrade_on_false_positive: downgradeField,
    downgrade_on_resolved: downgradeResolvedField,
    revoke_sessions_on_compromised_account: z.boolean().default(true).meta({
      description:
        'A high-severity alert whose determination is a compromised account (compromisedAccount / compromisedUser) also produces `caep.session-revoked` for the user, in the same transaction.',
    }),
    credential_compromise_on_credential_access: z.boolean().default(true).meta({
      description:
        'A high-severity alert in the CredentialAccess category also produces `risc.credential-compromise` (credential_type password) for the user, in the same transaction.',
    }),
    device_risk_events: z.boolean().default(true).meta({
      description:
        "An alert with no resolvable user whose deviceEvidence carries a riskScore produces `caep.risk-level-change` with principal DEVICE at the device's risk level.",
    }),
    device_id: z.enum(['azure_ad', 'mde']).default('azure_ad').meta({
      description:
        'Which device id goes into the subject: the Entra (Azure AD) device id, or the Defender for Endpoint machine id. The other one is used when the preferred one is missing.',
    }),
  })
  .prefault({})
  .meta({ description: 'Which alerts produce which events.' });

export const configSchema = z
  .strictObject({
    mode: z.enum(['graph', 'mde', 'webhook']).default('graph').meta({
      description:
        '`graph`: poll Microsoft Graph security/alerts_v2 (recommended). `mde`: poll the legacy Defender for Endpoint alerts API. `webhook`: only accept alerts posted to POST /ingest/<instance-id> (the other modes accept them too when `webhook` is set).',
    }),
    tenant_id: z
      .string()
      .regex(/^[A-Za-z0-9.-]+$/, 'must be a tenant id (GUID) or a verified domain')
      .optional()
      .meta({ description: 'Microsoft Entra tenant id (GUID) or verified domain (modes graph and mde).' }),
    client_id: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'Application (client) id of the app registration (modes graph and mde).' }),
    client_secret: secret(
      'Client secret of the app registration (modes graph and mde); or give client_certificate or federated_token_file.',
    ).optional(),
    client_certificate: clientCertificateSchema.optional(),
    federated_token_file: federatedTokenFileSchema.optional(),
    login_url: apiBaseUrl(
      'Microsoft Entra authority; https://login.microsoftonline.us for US Government clouds.',
      'https://login.microsoftonline.com',
    ),
    graph_url: apiBaseUrl(
      'Microsoft Graph endpoint with its version; https://graph.microsoft.us/v1.0 for US Government L4.',
      'https://graph.microsoft.com/v1.0',
    ),
    mde_url: apiBaseUrl(
      'Defender for Endpoint API endpoint, e.g. a regional one such as https://eu.api.security.microsoft.com (mode mde).',
      'https://api.security.microsoft.com',
    ),
    mde_scope: z
      .string()
      .min(1)
      .default('https://api.securitycenter.microsoft.com/.default')
      .meta({ description: 'OAuth scope of the Defender for Endpoint API (mode mde).' }),
    request_timeout: duration('Deadline of one API request.', { min: 100, max: 600_000 }).default(30_000),
    poll_interval: duration('How often alerts are polled.', { min: 100 }).default(60_000),
    page_size: z
      .number()
      .int()
      .min(1)
      .max(2000)
      .default(200)
      .meta({ description: 'Alerts per request ($top).' }),
    overlap: duration(
      'How far behind the last lastUpdateDateTime each poll starts again, to catch late updates; repeats are skipped.',
    ).default(300_000),
    initial_lookback: duration('How far back the first poll of a new instance reads.').default(3_600_000),
    filter: z.string().min(1).optional().meta({
      description:
        "Extra OData filter ANDed to the time filter, e.g. serviceSource eq 'microsoftDefenderForEndpoint'.",
    }),
    webhook: webhookSchema.optional(),
    mapping: mappingSchema,
    subjects: subjectsSchema,
  })
  .superRefine((config, ctx) => {
    if (config.mode === 'webhook') {
      if (!config.webhook) {
        ctx.addIssue({ code: 'custom', path: ['webhook'], message: 'mode webhook needs webhook.secret' });
      }
      return;
    }
    for (const key of ['tenant_id', 'client_id'] as const) {
      if (config[key] === undefined) {
        ctx.addIssue({ code: 'custom', path: [key], message: `mode ${config.mode} needs ${key}` });
      }
    }
    for (const issue of entraCredentialIssues(config)) {
      ctx.addIssue({ code: 'custom', ...issue, message: `mode ${config.mode}: ${issue.message}` });
    }
  });

export type DefenderConfig = z.output<typeof configSchema>;
export type DefenderMappingConfig = DefenderConfig['mapping'];
