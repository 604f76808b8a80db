import { duration, secret, z } from '../../core/plugin-api/index.ts';
import { scanPolicyShape, vanishGuardShape } from '../_shared/mdm-mapping.ts';
import { maxRetryWaitField, vendorUrlField } from '../_shared/mdm-poller.ts';
import {
  clientCertificateSchema,
  entraCredentialIssues,
  federatedTokenFileSchema,
} from '../_shared/entra-auth.ts';

const httpsUrl = vendorUrlField;

/** The settings, before the check that exactly one Entra credential is given. */
const settings = z.strictObject({
  tenant_id: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9.-]*$/, 'must be a directory (tenant) id or a verified domain')
    .meta({ description: 'Microsoft Entra directory (tenant) id, or its primary domain.' }),
  client_id: z
    .string()
    .min(1)
    .meta({ description: 'Application (client) id of the app registration the bridge signs in as.' }),
  client_secret: secret(
    'Client secret of the app registration; or give client_certificate or federated_token_file.',
  ).optional(),
  client_certificate: clientCertificateSchema.optional(),
  federated_token_file: federatedTokenFileSchema.optional(),
  graph_url: httpsUrl('Microsoft Graph endpoint; change it for national clouds.').prefault(
    'https://graph.microsoft.com',
  ),
  login_url: httpsUrl('Microsoft Entra sign-in endpoint; change it for national clouds.').prefault(
    'https://login.microsoftonline.com',
  ),
  poll_interval: duration(undefined, { min: 100 })
    .prefault('15m')
    .meta({ description: 'Time between two scans of managedDevices.' }),
  page_size: z
    .number()
    .int()
    .min(1)
    .max(1000)
    .default(500)
    .meta({ description: 'Devices asked for per page ($top); Graph may return fewer.' }),
  grace_period: z.enum(['compliant', 'not-compliant', 'medium-risk']).default('compliant').meta({
    description:
      'How a device in its compliance grace period (inGracePeriod) counts: `compliant` (default; it still has access), `not-compliant`, or `medium-risk`: compliant, but its device risk is MEDIUM while the grace period lasts (risk-level-change, principal DEVICE) and LOW again once it is compliant.',
  }),
  ...scanPolicyShape,
  vanished_devices: scanPolicyShape.vanished_devices.meta({
    description:
      'A device missing from a complete scan, once its own lookup (GET managedDevices/{id}) answers 404: `not-compliant` (default) sends compliant → not-compliant for a device last known compliant and keeps it as not-compliant for 90 days, so that its status is sent if it is listed again; `forget` drops it silently; `keep` keeps its last state.',
  }),
  vanished_lookups_per_scan: z.number().int().min(1).max(1000).default(100).meta({
    description:
      'Devices missing from a scan that are looked up one by one (GET managedDevices/{id}) to confirm they are gone, per scan; the others stay as they are until a later scan looks them up.',
  }),
  ...vanishGuardShape,
  risk_events: z.boolean().default(true).meta({
    description:
      'Send risk-level-change (principal DEVICE) when the Mobile Threat Defense level (partnerReportedThreatState) changes.',
  }),
  max_retry_wait: maxRetryWaitField,
});

export const configSchema = settings.superRefine((config, ctx) => {
  for (const issue of entraCredentialIssues(config)) ctx.addIssue({ code: 'custom', ...issue });
});

export type IntuneConfig = z.output<typeof configSchema>;
