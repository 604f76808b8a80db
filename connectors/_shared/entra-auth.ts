/**
 * How the Microsoft connectors (Graph, Intune, Defender) prove themselves to Microsoft Entra ID:
 * a client secret, or a certificate uploaded to the app registration, whose private key signs a
 * client assertion (Microsoft identity platform certificate credentials). Many tenants allow
 * certificates only; Microsoft recommends them over secrets.
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

export interface EntraCredentials {
  client_secret?: Secret | undefined;
  client_certificate?: ClientCertificate | undefined;
}

/** Zod issues for a config that gives neither or both credentials; `mode` names the need in messages. */
export function entraCredentialIssues(config: EntraCredentials): Array<{ path: string[]; message: string }> {
  if (config.client_secret !== undefined && config.client_certificate !== undefined) {
    return [
      { path: ['client_certificate'], message: 'give either client_secret or client_certificate, not both' },
    ];
  }
  if (config.client_secret === undefined && config.client_certificate === undefined) {
    return [{ path: ['client_secret'], message: 'client_secret or client_certificate is required' }];
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
