import { secret, z } from '../../core/plugin-api/index.ts';

/**
 * A bearer token of at least 16 characters, as the SSF transmitter requires of its receivers'
 * tokens: a short one is guessed, and this one lets its holder deactivate any user.
 */
const bearerToken = (description: string) =>
  secret(description).refine((value) => value.reveal().length >= 16, 'must be at least 16 characters');

export const configSchema = z.strictObject({
  token: bearerToken('Bearer token the provisioning client (HR system or IdP) sends.'),
  previous_token: bearerToken('A second accepted token, for rotating `token` without downtime.').optional(),
  public_url: z
    .url({ protocol: /^https?$/ })
    .optional()
    .meta({
      description:
        'Base URL clients use, e.g. https://bridge.example.com/scim/v2/hr-scim; used in meta.location. Defaults to one built from the Host header.',
    }),
  max_results: z.number().int().min(1).max(1000).default(200).meta({
    description: 'Largest page a list or filter query answers (ServiceProviderConfig filter.maxResults).',
  }),
  subject_format: z.enum(['aliases', 'email']).default('aliases').meta({
    description:
      '`aliases`: the primary email plus the user id (iss_sub) as an alias; `email`: the primary email only (use it for Okta ITP).',
  }),
  id_issuer: z
    .url()
    .default('urn:ssf-bridge:scim')
    .meta({ description: 'The `iss` of the user-id alias; its `sub` is the externalId, or the SCIM id.' }),
  reason_admin: z
    .string()
    .min(1)
    .default('HR termination')
    .meta({ description: 'Message sent as `reason_admin.en` with CAEP session-revoked.' }),
});

export type ScimServiceConfig = z.output<typeof configSchema>;
