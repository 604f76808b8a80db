/**
 * How the Microsoft connectors (Graph, Intune, Defender) prove themselves to Microsoft Entra ID:
 * a client secret; a certificate uploaded to the app registration, whose private key signs a
 * client assertion (Microsoft identity platform certificate credentials), which Microsoft
 * recommends over secrets; or, with workload identity federation, a token another identity
 * provider issued to the bridge (a Kubernetes service-account token on AKS), read from a file.
 */
import { secret, z, type HttpAuth, type Secret } from '../../core/plugin-api/index.ts';

export const clientCertificateSchema = z
  .strictObject({
    certificate: z.string().min(1).meta({
      description:
        'The certificate uploaded to the app registration (Certificates & secrets), PEM: "-----BEGIN CERTIFICATE-----"; e.g. ${file:/run/secrets/app.crt}.',
    }),
    private_key: secret('The certificate’s private key, PKCS#8 PEM ("-----BEGIN PRIVATE KEY-----").'),
  })
  .meta({
    description:
      'Sign in with a certificate instead of a client secret (Microsoft identity platform certificate credentials).',
  });

export type ClientCertificate = z.output<typeof clientCertificateSchema>;

export const federatedTokenFileSchema = z.string().min(1).meta({
  description:
    'Workload identity federation: a file holding a token another identity provider issued to the bridge, read at every sign-in; on AKS, ${env:AZURE_FEDERATED_TOKEN_FILE}.',
});

export interface EntraCredentials {
  client_secret?: Secret | undefined;
  client_certificate?: ClientCertificate | undefined;
  federated_token_file?: string | undefined;
}

const CREDENTIALS = ['client_secret', 'client_certificate', 'federated_token_file'] as const;

/** Zod issues for a config that gives no credential, or more than one. */
export function entraCredentialIssues(config: EntraCredentials): Array<{ path: string[]; message: string }> {
  const given = CREDENTIALS.filter((key) => config[key] !== undefined);
  if (given.length > 1) {
    return [
      { path: [given[1]!], message: `give one of ${CREDENTIALS.join(', ')}, not ${given.join(' and ')}` },
    ];
  }
  if (given.length === 0) {
    return [{ path: ['client_secret'], message: `one of ${CREDENTIALS.join(', ')} is required` }];
  }
  return [];
}

/** The HTTP client auth for a token from Entra ID with the configured credential. */
export function entraAuth(options: {
  tokenUrl: string;
  clientId: string;
  scope: string;
  credentials: EntraCredentials;
}): HttpAuth {
  const { tokenUrl, clientId, scope, credentials } = options;
  if (credentials.federated_token_file !== undefined) {
    return {
      type: 'oauth2_client_assertion_file',
      tokenUrl,
      clientId,
      assertionFile: credentials.federated_token_file,
      scope,
    };
  }
  const certificate = credentials.client_certificate;
  if (certificate !== undefined) {
    return {
      type: 'oauth2_private_key_jwt',
      tokenUrl,
      clientId,
      privateKey: certificate.private_key,
      certificate: certificate.certificate,
      scope,
    };
  }
  if (credentials.client_secret === undefined) {
    throw new Error('entraAuth: the config gives no credential (checked by the schema)');
  }
  return {
    type: 'oauth2_client_credentials',
    tokenUrl,
    clientId,
    clientSecret: credentials.client_secret,
    // Entra takes the client credentials as form fields.
    clientAuth: 'body',
    scope,
  };
}
