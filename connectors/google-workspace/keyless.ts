/**
 * A service account without keys. New Google Cloud organisations block the creation of
 * service-account keys, so the domain-wide delegation assertion cannot be signed here: IAM's
 * `signJwt` signs it with a key Google holds, and the call is made with a Google Cloud access
 * token of the identity the bridge runs as. That token comes from the metadata server on Google
 * Cloud, or, elsewhere, from Google's Security Token Service in exchange for a token the
 * platform issued to the bridge (workload identity federation).
 */
import { readFile } from 'node:fs/promises';
import {
  assertionLifetimeMs,
  PermanentError,
  RetryableError,
  registerSecretValue,
  type AssertionSigner,
  type HttpClient,
  type HttpResponse,
} from '../../core/plugin-api/index.ts';
import type { KeylessConfig } from './config.ts';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** A cached token is replaced this long before it expires. */
const EXPIRY_MARGIN_MS = 300_000;

interface CloudToken {
  value: string;
  expiresAt: number;
}

interface GoogleApiError {
  error?: { code?: number; message?: string; status?: string } | string;
  error_description?: string;
}

function describe(res: HttpResponse<unknown>): string {
  const body = (res.data ?? {}) as GoogleApiError;
  if (typeof body.error === 'string') return `${body.error}: ${body.error_description ?? ''}`.trim();
  return body.error?.message ?? `HTTP ${res.status}`;
}

function credentialFailure(message: string, status: number): PermanentError {
  return new PermanentError(message, {
    code: 'SSF_ERR_HTTP_AUTH',
    authFailure: true,
    detail: { status },
  });
}

/** Reads `{access_token, expires_in}` as the metadata server and the STS answer it. */
function cloudTokenOf(res: HttpResponse<unknown>, now: number, from: string): CloudToken {
  const body = (res.data ?? {}) as { access_token?: unknown; expires_in?: unknown };
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    throw new PermanentError(`${from} answered without an access token`, {
      code: 'SSF_ERR_HTTP_OAUTH_RESPONSE',
    });
  }
  const lifetimeS = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 300;
  registerSecretValue(body.access_token, { lifetimeMs: lifetimeS * 1000 });
  return { value: body.access_token, expiresAt: now + lifetimeS * 1000 };
}

/** The workload's own token from the metadata server of the VM, pod or service it runs on. */
async function fromMetadataServer(
  http: HttpClient,
  config: Extract<KeylessConfig, { source: 'metadata_server' }>,
  now: () => number,
): Promise<CloudToken> {
  const url = `${config.metadata_url}/computeMetadata/v1/instance/service-accounts/default/token`;
  const res = await http.request({
    method: 'GET',
    url,
    params: { scopes: CLOUD_PLATFORM },
    headers: { 'metadata-flavor': 'Google' },
    acceptStatuses: [403, 404],
  });
  // Anything but Google's metadata server (a proxy, another cloud's) does not say it is one.
  if (res.headers['metadata-flavor'] !== 'Google' || res.status !== 200) {
    throw credentialFailure(
      `the metadata server at ${config.metadata_url} gave no service-account token (HTTP ${res.status}); keyless.source metadata_server needs the bridge to run on Google Cloud with a service account attached`,
      res.status,
    );
  }
  return cloudTokenOf(res, now(), 'the metadata server');
}

/** A federated token: the platform's token for the bridge, exchanged at Google's STS. */
async function fromFederation(
  http: HttpClient,
  config: Extract<KeylessConfig, { source: 'workload_identity_federation' }>,
  now: () => number,
): Promise<CloudToken> {
  let subjectToken: string;
  try {
    subjectToken = (await readFile(config.subject_token_file, 'utf8')).trim();
  } catch (err) {
    throw new RetryableError(
      `cannot read the subject token file ${config.subject_token_file}: ${(err as Error).message}`,
      { code: 'SSF_ERR_HTTP_ASSERTION_FILE' },
    );
  }
  if (subjectToken === '') {
    throw new RetryableError(`the subject token file ${config.subject_token_file} is empty`, {
      code: 'SSF_ERR_HTTP_ASSERTION_FILE',
    });
  }
  // An OIDC ID token: kept out of logs until its exp (a day when it names none), then forgotten.
  registerSecretValue(subjectToken, { lifetimeMs: assertionLifetimeMs(subjectToken) });
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE,
    audience: config.audience,
    scope: CLOUD_PLATFORM,
    requested_token_type: ACCESS_TOKEN_TYPE,
    subject_token: subjectToken,
    subject_token_type: config.subject_token_type,
  });
  const res = await http.request({
    method: 'POST',
    url: `${config.sts_url}/v1/token`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: form.toString(),
    acceptStatuses: [400, 401, 403],
  });
  if (res.status !== 200) {
    throw credentialFailure(
      `Google's Security Token Service refused the token from ${config.subject_token_file} (${describe(res)}); check the workload identity pool provider ${config.audience} and its attribute conditions`,
      res.status,
    );
  }
  return cloudTokenOf(res, now(), 'the Security Token Service');
}

/**
 * Signs delegation assertions with IAM's `signJwt` for `serviceAccount`. The Google Cloud token
 * it calls with is kept until shortly before it expires, and fetched again once when IAM says
 * it is no longer valid.
 */
export function iamSigner(
  http: HttpClient,
  config: KeylessConfig,
  serviceAccount: string,
  now: () => number,
): AssertionSigner {
  let cached: CloudToken | undefined;
  let fetching: Promise<CloudToken> | undefined;
  const cloudToken = async (): Promise<string> => {
    if (cached !== undefined && cached.expiresAt - EXPIRY_MARGIN_MS > now()) return cached.value;
    fetching ??= (
      config.source === 'metadata_server'
        ? fromMetadataServer(http, config, now)
        : fromFederation(http, config, now)
    ).finally(() => (fetching = undefined));
    cached = await fetching;
    return cached.value;
  };
  const url = `${config.iam_credentials_url}/v1/projects/-/serviceAccounts/${encodeURIComponent(serviceAccount)}:signJwt`;

  return async (claims) => {
    for (let attempt = 0; ; attempt++) {
      const token = await cloudToken();
      const res = await http.request<{ signedJwt?: unknown }>({
        method: 'POST',
        url,
        headers: { authorization: `Bearer ${token}` },
        body: { payload: JSON.stringify(claims) },
        acceptStatuses: [401, 403, 404],
      });
      if (res.status === 401 && attempt === 0) {
        cached = undefined;
        continue;
      }
      if (res.status === 401) {
        throw credentialFailure(
          `IAM refused a freshly fetched Google Cloud token for ${serviceAccount} (${describe(res)})`,
          401,
        );
      }
      if (res.status === 403 || res.status === 404) {
        throw credentialFailure(
          `IAM would not sign for ${serviceAccount} (${describe(res)}); the identity the bridge runs as needs the Service Account Token Creator role (roles/iam.serviceAccountTokenCreator) on it`,
          res.status,
        );
      }
      const signed = res.data?.signedJwt;
      if (typeof signed !== 'string' || signed.split('.').length !== 3) {
        throw new PermanentError('IAM signJwt answered without a signed JWT', {
          code: 'SSF_ERR_HTTP_BAD_BODY',
        });
      }
      return signed;
    }
  };
}
