import { secret, z } from '../../core/plugin-api/index.ts';
import { baseUrl, oauthClientSchema, requestTimeout } from '../_shared/outbound-config.ts';

export const configSchema = z
  .strictObject({
    base_url: baseUrl(
      'The app’s SCIM 2.0 base URL, e.g. https://app.example.com/scim/v2 (Users is appended).',
      { credentials: true },
    ),
    token: secret('Bearer token for the SCIM API.').optional(),
    oauth: oauthClientSchema.optional().meta({
      description: 'Obtain the bearer token with OAuth 2.0 client credentials instead of a static token.',
    }),
    delete_on_purge: z.boolean().default(false).meta({
      description:
        'On risc.account-purged, DELETE the user; off, purges are refused (the account stays deactivated).',
    }),
    request_timeout: requestTimeout(15_000),
  })
  .refine((c) => (c.token === undefined) !== (c.oauth === undefined), {
    message: 'give exactly one of token or oauth',
    path: ['token'],
  });

export type ScimConfig = z.output<typeof configSchema>;
