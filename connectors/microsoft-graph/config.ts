import { duration, secret, z } from '../../core/plugin-api/index.ts';
import {
  clientCertificateSchema,
  entraCredentialIssues,
  federatedTokenFileSchema,
} from '../_shared/entra-auth.ts';
import {
  CLEAR_TEXT,
  endpointUrl,
  keepsCredentials,
  originUrl,
  requestTimeout,
} from '../_shared/outbound-config.ts';

/** The settings, before the check that exactly one Entra credential is given. */
const settings = z.strictObject({
  tenant_id: z
    .string()
    .min(1)
    .meta({ description: 'Directory (tenant) id or primary domain of your Microsoft Entra tenant.' }),
  client_id: z.string().min(1).meta({ description: 'Application (client) id of the app registration.' }),
  client_secret: secret(
    'A client secret of the app registration; or give client_certificate or federated_token_file.',
  ).optional(),
  client_certificate: clientCertificateSchema.optional(),
  federated_token_file: federatedTokenFileSchema.optional(),
  // The client secret or assertion goes in the token request's body.
  token_url: endpointUrl(
    'Token endpoint; defaults to https://login.microsoftonline.com/<tenant_id>/oauth2/v2.0/token (set it for national clouds).',
  )
    .refine(keepsCredentials, { error: CLEAR_TEXT })
    .optional(),
  graph_url: originUrl(
    'Microsoft Graph base URL (https://graph.microsoft.us, … for national clouds).',
    'https://graph.microsoft.com',
  ).default('https://graph.microsoft.com'),
  disable_account: z.boolean().default(true).meta({
    description:
      'On risc.account-disabled, set accountEnabled to false, then revoke the sessions (revoked even when the disable is refused); off, only revoke the sessions.',
  }),
  confirm_compromised: z
    .boolean()
    .default(false)
    .meta({
      description:
        'On caep.risk-level-change to HIGH for a user, confirm the user compromised in Identity Protection. ' +
        'Off by default: the user stays high risk until an admin dismisses it.',
    }),
  identity_protection_interval: duration(
    'Least time between two Identity Protection requests; Microsoft allows one per second per tenant.',
  ).default(1_000),
  user_cache_ttl: duration('How long an email → object id lookup is reused; 0 turns the cache off.').default(
    3_600_000,
  ),
  request_timeout: requestTimeout(15_000),
});

export const configSchema = settings.superRefine((config, ctx) => {
  for (const issue of entraCredentialIssues(config)) ctx.addIssue({ code: 'custom', ...issue });
});

export type GraphConfig = z.output<typeof configSchema>;
