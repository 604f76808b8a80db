import { secret, z } from '../../core/plugin-api/index.ts';
import { httpUrl, requestTimeout } from '../_shared/outbound-config.ts';

const directorySchema = z.strictObject({
  service_account_email: z.email().meta({
    description: 'The service account (client_email of its JSON key), with domain-wide delegation.',
  }),
  private_key: secret('The service account’s private key (private_key of its JSON key), a PKCS#8 PEM.'),
  private_key_id: z
    .string()
    .min(1)
    .optional()
    .meta({ description: 'private_key_id of the JSON key, sent as the assertion’s kid.' }),
  admin_email: z.email().meta({
    description: 'A Workspace admin the service account acts for (domain-wide delegation subject).',
  }),
  suspend_on_account_disabled: z.boolean().default(true).meta({
    description:
      'On risc.account-disabled, suspend the user after signing them out; off, only sign them out.',
  }),
  token_url: httpUrl('Google’s OAuth 2.0 token endpoint.').default('https://oauth2.googleapis.com/token'),
  api_url: httpUrl('Admin SDK base URL.').default('https://admin.googleapis.com'),
});

const ssfPushSchema = z.strictObject({
  endpoint_url: httpUrl(
    'The push endpoint Google gave your org when it enrolled in the Shared Signals receiver programme.',
  ),
  authorization_header: secret('Authorization header value Google issued for pushes, if any.').optional(),
});

export const configSchema = z
  .strictObject({
    directory: directorySchema
      .optional()
      .meta({ description: 'Act through the Admin SDK Directory API: sign users out, suspend leavers.' }),
    ssf_push: ssfPushSchema.optional().meta({
      description:
        'Push caep.session-revoked SETs to Google’s Shared Signals receiver (google-workspace profile).',
    }),
    request_timeout: requestTimeout(15_000),
  })
  .refine((c) => (c.directory === undefined) !== (c.ssf_push === undefined), {
    message: 'configure exactly one of directory or ssf_push',
    path: ['directory'],
  });

export type GoogleWorkspaceConfig = z.output<typeof configSchema>;
export type DirectoryConfig = z.output<typeof directorySchema>;
