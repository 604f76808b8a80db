import { checkProfileOptions, profileFields, secret, z } from '../../core/plugin-api/index.ts';
import { audience, oauthClientSchema, pushEndpointUrl, requestTimeout } from '../_shared/outbound-config.ts';

export const configSchema = z
  .strictObject({
    endpoint_url: pushEndpointUrl(
      "The receiver's RFC 8935 push endpoint (its stream's delivery endpoint_url); https, plain http only for the local machine.",
    ),
    audience: audience('The SET audience (aud) the receiver expects, e.g. its stream audience or client id.'),
    ...profileFields(
      'Target profile the SETs are shaped with: ssf-1.0, okta-itp, google-workspace, legacy-sse-caep.',
    ),
    authorization_header: secret(
      'Sent verbatim as the Authorization header of every push (SSF 1.0 §6.1.1), e.g. "Bearer …".',
    ).optional(),
    oauth: oauthClientSchema
      .optional()
      .meta({ description: 'Obtain a bearer token with OAuth 2.0 client credentials for every push.' }),
    request_timeout: requestTimeout(10_000),
  })
  .refine((c) => !(c.authorization_header && c.oauth), {
    message: 'give either authorization_header or oauth, not both',
    path: ['oauth'],
  })
  .superRefine(checkProfileOptions);

export type SsfPushConfig = z.output<typeof configSchema>;
