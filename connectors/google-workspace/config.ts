import { secret, z } from '../../core/plugin-api/index.ts';
import {
  CLEAR_TEXT,
  baseUrl,
  endpointUrl,
  keepsCredentials,
  pushEndpointUrl,
  requestTimeout,
} from '../_shared/outbound-config.ts';

/** Where a service account without keys gets the Google Cloud token that lets it call signJwt. */
const keylessSchema = z
  .discriminatedUnion('source', [
    z.strictObject({
      source: z.literal('metadata_server').meta({
        description:
          'On Google Cloud (Compute Engine, GKE with Workload Identity, Cloud Run): the service account the workload runs as.',
      }),
      metadata_url: baseUrl('The metadata server.').default('http://metadata.google.internal'),
      iam_credentials_url: baseUrl('The IAM Service Account Credentials API.', {
        credentials: true,
      }).default('https://iamcredentials.googleapis.com'),
    }),
    z.strictObject({
      source: z.literal('workload_identity_federation').meta({
        description:
          'Elsewhere (AWS, Azure, Kubernetes, CI): a token your platform issues to the bridge, exchanged at Google’s Security Token Service.',
      }),
      audience: z
        .string()
        .regex(
          /^\/\/iam\.googleapis\.com\/projects\/\d+\/locations\/global\/workloadIdentityPools\/[^/]+\/providers\/[^/]+$/,
          'expected //iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER',
        )
        .meta({ description: 'The workload identity pool provider, by its full resource name.' }),
      subject_token_file: z.string().min(1).meta({
        description:
          'A file holding the token your platform issued to the bridge (an OIDC ID token), read at every exchange; e.g. a projected Kubernetes service-account token.',
      }),
      subject_token_type: z
        .enum(['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token'])
        .default('urn:ietf:params:oauth:token-type:jwt')
        .meta({ description: 'The type of the token in the file, as the provider expects it.' }),
      sts_url: baseUrl('Google’s Security Token Service.', { credentials: true }).default(
        'https://sts.googleapis.com',
      ),
      iam_credentials_url: baseUrl('The IAM Service Account Credentials API.', {
        credentials: true,
      }).default('https://iamcredentials.googleapis.com'),
    }),
  ])
  .meta({
    description:
      'Use the service account without a key (new Google Cloud organisations block key creation): IAM signs each delegation assertion (signJwt). The identity the bridge runs as needs the Service Account Token Creator role on the service account.',
  });

const directorySchema = z
  .strictObject({
    service_account_email: z.email().meta({
      description: 'The service account (client_email of its JSON key), with domain-wide delegation.',
    }),
    private_key: secret(
      'The service account’s private key (private_key of its JSON key), a PKCS#8 PEM; or use keyless.',
    ).optional(),
    private_key_id: z
      .string()
      .min(1)
      .optional()
      .meta({ description: 'private_key_id of the JSON key, sent as the assertion’s kid.' }),
    keyless: keylessSchema.optional(),
    admin_email: z.email().meta({
      description: 'A Workspace admin the service account acts for (domain-wide delegation subject).',
    }),
    suspend_on_account_disabled: z.boolean().default(true).meta({
      description:
        'On risc.account-disabled, suspend the user after signing them out; off, only sign them out.',
    }),
    // The signed assertion goes to the token endpoint, the access token to the Admin SDK.
    token_url: endpointUrl('Google’s OAuth 2.0 token endpoint.')
      .refine(keepsCredentials, { error: CLEAR_TEXT })
      .default('https://oauth2.googleapis.com/token'),
    api_url: baseUrl('Admin SDK base URL.', { credentials: true }).default('https://admin.googleapis.com'),
  })
  .superRefine((c, issues) => {
    if ((c.private_key === undefined) === (c.keyless === undefined)) {
      issues.addIssue({
        code: 'custom',
        path: [c.private_key === undefined ? 'private_key' : 'keyless'],
        message: 'give one of private_key (a JSON key) and keyless',
      });
    }
    if (c.keyless !== undefined && c.private_key_id !== undefined) {
      issues.addIssue({
        code: 'custom',
        path: ['private_key_id'],
        message: 'private_key_id belongs to a JSON key; keyless assertions name Google’s own key',
      });
    }
  });

export type KeylessConfig = z.output<typeof keylessSchema>;

const ssfPushSchema = z.strictObject({
  endpoint_url: pushEndpointUrl(
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
