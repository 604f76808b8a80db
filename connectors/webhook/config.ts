import { checkProfileOptions, profileFields, secret, z } from '../../core/plugin-api/index.ts';
import {
  CLEAR_TEXT,
  audience,
  endpointUrl,
  keepsCredentials,
  requestTimeout,
} from '../_shared/outbound-config.ts';

export const configSchema = z
  .strictObject({
    url: endpointUrl('Where each event is POSTed as JSON.'),
    signing_secret: secret(
      'Key of the HMAC-SHA256 signature in X-Signature; share it with the receiver. Use at least 32 random bytes.',
    ),
    include_set: z.boolean().default(false).meta({
      description:
        'Also send the signed SET (compact JWS) in the `set` field, for receivers that verify it themselves.',
    }),
    audience: audience('The SET audience (aud), visible to receivers that take the SET.').default(
      'urn:ssf-bridge:webhook',
    ),
    ...profileFields(
      'Target profile the SETs are shaped with: ssf-1.0, okta-itp, google-workspace, legacy-sse-caep.',
    ),
    authorization_header: secret(
      'Sent as the Authorization header, for receivers that also want a token.',
    ).optional(),
    request_timeout: requestTimeout(10_000),
  })
  .refine((c) => !c.authorization_header || keepsCredentials(c.url), {
    message: `${CLEAR_TEXT} (authorization_header is set)`,
    path: ['url'],
  })
  .superRefine(checkProfileOptions);

export type WebhookConfig = z.output<typeof configSchema>;
