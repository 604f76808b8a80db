import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { PermanentError, RetryableError, type EventDraft } from '../../core/plugin-api/index.ts';
import { forbidden } from './client.ts';
import { FakeApi, type FakeRequest, type FakeResponse } from '../../test/helpers/fake-api.ts';
import { outboundHarness, ssfReceiver, type OutboundHarness } from '../../test/helpers/outbound.ts';
import {
  EXPIRED_SECRET_MARGIN_MS,
  MockServer,
  registeredSecretValues,
} from '../../core/plugin-api/testing/index.ts';
import { googleWorkspace } from './index.ts';

const SA = 'ssf-bridge@example-project.iam.gserviceaccount.com';
const ADMIN = 'it-automation@example.com';
const SECURITY = 'https://www.googleapis.com/auth/admin.directory.user.security';
const USER = 'https://www.googleapis.com/auth/admin.directory.user';
const saKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SA_PEM = saKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
// Pasted from the JSON key file, with its escaped newlines.
const SA_PEM_FROM_JSON = SA_PEM.replace(/\n/g, '\\n');
/** The key Google holds for the service account, which IAM's signJwt signs with. */
const googleManagedKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const GOOGLE_KEY_ID = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const POOL_PROVIDER =
  '//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/ssf-bridge/providers/eks';
/** The ID token the bridge's platform issued it (what a projected service-account token holds). */
const PLATFORM_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c3NmOmJyaWRnZSJ9.c2ln';

function googleError(
  code: number,
  message: string,
  reason: string,
  status: string,
  info?: { reason: string; domain: string },
): FakeResponse {
  const details = info ? [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', ...info }] : undefined;
  return {
    status: code,
    body: {
      error: {
        code,
        message,
        errors: [{ message, domain: 'global', reason }],
        status,
        ...(details ? { details } : {}),
      },
    },
  };
}

/** Google's answer to a token that lacks a scope the call needs. */
const SCOPE_INSUFFICIENT = googleError(
  403,
  'Request had insufficient authentication scopes.',
  'insufficientPermissions',
  'PERMISSION_DENIED',
  { reason: 'ACCESS_TOKEN_SCOPE_INSUFFICIENT', domain: 'googleapis.com' },
);

/** Google's answer to acting on a user the delegated admin may not manage (an admin, another domain). */
const NOT_AUTHORIZED = googleError(
  403,
  'Not Authorized to access this resource/api',
  'forbidden',
  'PERMISSION_DENIED',
);

/** Google's token endpoint (JWT bearer grant) and the Admin SDK Directory API users resource. */
class FakeGoogle {
  readonly users = new Map<
    string,
    { id: string; primaryEmail: string; suspended: boolean; signedOut: number }
  >();
  readonly #tokens = new Map<string, string[]>();
  delegatedAdmins = new Set([ADMIN]);
  /** Super admins: the delegated admin may not sign them out or suspend them. */
  superAdmins = new Set<string>();
  /** Google Cloud access tokens, by the identity they stand for. */
  readonly #cloudTokens = new Map<string, string>();
  /** Identities with the Service Account Token Creator role on SA. */
  tokenCreators = new Set([
    'vm-identity@example-project.iam.gserviceaccount.com',
    `federated:${POOL_PROVIDER}`,
  ]);
  /** The subject token the workload identity pool provider accepts. */
  platformToken = PLATFORM_TOKEN;
  /** Lifetime of the Google Cloud tokens the metadata server and the STS hand out. */
  cloudTokenLifetimeS = 3599;
  readonly api = new FakeApi((req) => this.#route(req));

  add(email: string) {
    const user = {
      id: String(100_000_000_000_000 + this.users.size),
      primaryEmail: email,
      suspended: false,
      signedOut: 0,
    };
    this.users.set(email, user);
    return user;
  }

  async #token(req: FakeRequest): Promise<FakeResponse> {
    const form = req.json as Record<string, string>;
    if (form.grant_type !== 'urn:ietf:params:oauth:grant-type:jwt-bearer') {
      return {
        status: 400,
        body: { error: 'unsupported_grant_type', error_description: 'Invalid grant_type: ' },
      };
    }
    let payload: Record<string, unknown>;
    try {
      // The service account's keys: the one in its JSON key file, and the one Google holds.
      const header = decodeProtectedHeader(form.assertion ?? '');
      const key = header.kid === GOOGLE_KEY_ID ? googleManagedKey.publicKey : saKey.publicKey;
      ({ payload } = await jwtVerify(form.assertion ?? '', key, {
        audience: `${this.api.url}/token`,
        issuer: SA,
      }));
    } catch {
      return { status: 400, body: { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } };
    }
    if ((payload.exp as number) - (payload.iat as number) > 3600) {
      return {
        status: 400,
        body: {
          error: 'invalid_grant',
          error_description: 'Invalid JWT: Token must be a short-lived token (60 minutes)',
        },
      };
    }
    if (!this.delegatedAdmins.has(String(payload.sub))) {
      return {
        status: 401,
        body: {
          error: 'unauthorized_client',
          error_description:
            'Client is unauthorized to retrieve access tokens using this method, or client not authorized for any of the scopes requested.',
        },
      };
    }
    const token = `ya29.c.${randomUUID()}`;
    this.#tokens.set(token, String(payload.scope).split(' '));
    return { body: { access_token: token, expires_in: 3599, token_type: 'Bearer' } };
  }

  #cloudToken(identity: string) {
    const token = `ya29.cloud.${randomUUID()}`;
    this.#cloudTokens.set(token, identity);
    return { access_token: token, expires_in: this.cloudTokenLifetimeS, token_type: 'Bearer' };
  }

  /** Compute Engine's metadata server: only for requests that say Metadata-Flavor: Google. */
  #metadata(req: FakeRequest): FakeResponse {
    if (req.headers['metadata-flavor'] !== 'Google') {
      return {
        status: 403,
        headers: { 'metadata-flavor': 'Google' },
        body: 'Missing Metadata-Flavor:Google header.',
      };
    }
    return {
      headers: { 'metadata-flavor': 'Google' },
      body: this.#cloudToken('vm-identity@example-project.iam.gserviceaccount.com'),
    };
  }

  /** The Security Token Service (RFC 8693 token exchange for workload identity federation). */
  #sts(req: FakeRequest): FakeResponse {
    const form = req.json as Record<string, string>;
    const invalid = (description: string) => ({
      status: 400,
      body: { error: 'invalid_grant', error_description: description },
    });
    if (form.grant_type !== 'urn:ietf:params:oauth:grant-type:token-exchange') {
      return {
        status: 400,
        body: { error: 'unsupported_grant_type', error_description: 'Unsupported grant type' },
      };
    }
    if (form.audience !== POOL_PROVIDER) return invalid('The audience in the request is not a provider');
    if (form.subject_token !== this.platformToken) return invalid('The ID token could not be verified.');
    if (
      form.subject_token_type !== 'urn:ietf:params:oauth:token-type:jwt' ||
      form.requested_token_type !== 'urn:ietf:params:oauth:token-type:access_token' ||
      form.scope !== 'https://www.googleapis.com/auth/cloud-platform'
    ) {
      return { status: 400, body: { error: 'invalid_request', error_description: 'Invalid token exchange' } };
    }
    return {
      body: {
        ...this.#cloudToken(`federated:${POOL_PROVIDER}`),
        issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      },
    };
  }

  /** IAM Service Account Credentials signJwt: signs the payload with the key Google holds. */
  async #signJwt(req: FakeRequest, account: string): Promise<FakeResponse> {
    const identity = this.#cloudTokens.get((req.headers['authorization'] ?? '').replace(/^Bearer /, ''));
    if (identity === undefined) {
      return googleError(
        401,
        'Request had invalid authentication credentials.',
        'authError',
        'UNAUTHENTICATED',
      );
    }
    if (account !== SA)
      return googleError(404, `Not found; Gaia id not found for email ${account}`, 'notFound', 'NOT_FOUND');
    if (!this.tokenCreators.has(identity)) {
      return googleError(
        403,
        "Permission 'iam.serviceAccounts.signJwt' denied on resource (or it may not exist).",
        'forbidden',
        'PERMISSION_DENIED',
      );
    }
    const claims = JSON.parse((req.json as { payload: string }).payload) as Record<string, unknown>;
    if (typeof claims.exp === 'number' && claims.exp > Date.now() / 1000 + 12 * 3600) {
      return googleError(400, 'Exp claim is too far in the future', 'badRequest', 'INVALID_ARGUMENT');
    }
    const signedJwt = await new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid: GOOGLE_KEY_ID, typ: 'JWT' })
      .sign(googleManagedKey.privateKey);
    return { body: { keyId: GOOGLE_KEY_ID, signedJwt } };
  }

  async #route(req: FakeRequest): Promise<FakeResponse> {
    if (req.method === 'POST' && req.path === '/token') return this.#token(req);
    if (req.method === 'GET' && req.path === '/computeMetadata/v1/instance/service-accounts/default/token') {
      return this.#metadata(req);
    }
    if (req.method === 'POST' && req.path === '/v1/token') return this.#sts(req);
    const signJwt = /^\/v1\/projects\/-\/serviceAccounts\/([^/:]+):signJwt$/.exec(req.path);
    if (req.method === 'POST' && signJwt) return this.#signJwt(req, decodeURIComponent(signJwt[1]!));
    const scopes = this.#tokens.get((req.headers['authorization'] ?? '').replace(/^Bearer /, ''));
    if (!scopes)
      return googleError(
        401,
        'Request had invalid authentication credentials.',
        'authError',
        'UNAUTHENTICATED',
      );
    const match = /^\/admin\/directory\/v1\/users\/([^/]+)(\/signOut)?$/.exec(req.path);
    if (!match) return googleError(404, 'Not Found', 'notFound', 'NOT_FOUND');
    const key = decodeURIComponent(match[1] as string);
    const user = [...this.users.values()].find((u) => u.primaryEmail === key || u.id === key);
    const needed = match[2] ? SECURITY : USER;
    if (!scopes.includes(needed)) return SCOPE_INSUFFICIENT;
    // A userKey in a domain this customer does not own, or a super admin: not the admin's to manage.
    if (!key.endsWith('@example.com') && !/^\d+$/.test(key)) return NOT_AUTHORIZED;
    if (user && this.superAdmins.has(user.primaryEmail)) return NOT_AUTHORIZED;
    if (!user) return googleError(404, 'Resource Not Found: userKey', 'notFound', 'NOT_FOUND');
    if (req.method === 'POST' && match[2]) {
      user.signedOut += 1;
      return { status: 204 };
    }
    if (req.method === 'PATCH') {
      user.suspended = (req.json as { suspended?: boolean }).suspended === true;
      return {
        body: {
          kind: 'admin#directory#user',
          id: user.id,
          primaryEmail: user.primaryEmail,
          suspended: user.suspended,
        },
      };
    }
    return googleError(400, 'Invalid Input', 'invalid', 'INVALID_ARGUMENT');
  }
}

const google = new FakeGoogle();
let harness: OutboundHarness | undefined;
beforeAll(() => google.api.start());
afterAll(() => google.api.close());
beforeEach(() => {
  google.api.reset();
  google.users.clear();
  google.delegatedAdmins = new Set([ADMIN]);
  google.superAdmins.clear();
  google.tokenCreators = new Set([
    'vm-identity@example-project.iam.gserviceaccount.com',
    `federated:${POOL_PROVIDER}`,
  ]);
  google.platformToken = PLATFORM_TOKEN;
  google.cloudTokenLifetimeS = 3599;
});
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(directory: Record<string, unknown> = {}) {
  harness = await outboundHarness(googleWorkspace, {
    directory: {
      service_account_email: SA,
      private_key: SA_PEM_FROM_JSON,
      private_key_id: 'sa-key-4d2c',
      admin_email: ADMIN,
      token_url: `${google.api.url}/token`,
      api_url: google.api.url,
      ...directory,
    },
    request_timeout: '400ms',
  });
  return harness;
}

let n = 0;
function draft(
  type: string,
  email = 'dana.lee@example.com',
  claims: Record<string, unknown> = {},
): EventDraft {
  n += 1;
  return { type, subject: { format: 'email', email }, claims, sourceRecordId: `rec-${n}` };
}

describe('google-workspace: Admin SDK Directory API', () => {
  it('session-revoked: a JWT-bearer token for the delegated admin, then users.signOut', async () => {
    const dana = google.add('dana.lee@example.com');
    const h = await start();
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({
      ok: true,
      receipt: { status: 204, detail: 'dana.lee@example.com signed out' },
    });
    const [token, signOut] = google.api.requests;
    expect(token?.json).toMatchObject({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer' });
    const { payload, protectedHeader } = await jwtVerify(
      (token?.json as { assertion: string }).assertion,
      saKey.publicKey,
    );
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: 'sa-key-4d2c' });
    expect(payload).toMatchObject({
      iss: SA,
      sub: ADMIN,
      aud: `${google.api.url}/token`,
      scope: `${SECURITY} ${USER}`,
    });
    expect(signOut).toMatchObject({
      method: 'POST',
      path: '/admin/directory/v1/users/dana.lee%40example.com/signOut',
      body: '',
    });
    expect(signOut?.headers['authorization']).toMatch(/^Bearer ya29\.c\./);
    expect(dana.signedOut).toBe(1);
  });

  it('account-disabled: signOut, then PATCH suspended true; only signOut when suspension is off', async () => {
    const dana = google.add('dana.lee@example.com');
    const h = await start();
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({
      ok: true,
      receipt: { detail: 'dana.lee@example.com signed out and suspended' },
    });
    const patch = google.api.requests.find((r) => r.method === 'PATCH');
    expect(patch).toMatchObject({
      path: '/admin/directory/v1/users/dana.lee%40example.com',
      json: { suspended: true },
    });
    expect(patch?.headers['content-type']).toBe('application/json');
    expect(dana).toMatchObject({ signedOut: 1, suspended: true });
    await h.stop();
    dana.suspended = false;
    const signOutOnly = await start({ suspend_on_account_disabled: false });
    expect((await signOutOnly.attempt(draft('risc.account-disabled'))).ok).toBe(true);
    expect(dana).toMatchObject({ signedOut: 2, suspended: false });
    const scope = (
      await jwtVerify(
        (google.api.requests.filter((r) => r.path === '/token').at(-1)?.json as { assertion: string })
          .assertion,
        saKey.publicKey,
      )
    ).payload.scope;
    expect(scope).toBe(SECURITY);
  });

  it('a Google account id (iss_sub from accounts.google.com) is used as the userKey', async () => {
    const dana = google.add('dana.lee@example.com');
    const h = await start();
    const subject = { format: 'iss_sub', iss: 'https://accounts.google.com/', sub: dana.id };
    expect((await h.attempt({ type: 'caep.session-revoked', subject, sourceRecordId: 'g-1' })).ok).toBe(true);
    expect(google.api.requests.at(-1)?.path).toBe(`/admin/directory/v1/users/${dana.id}/signOut`);
  });

  it('refuses other events, unknown users and subjects without an email, with reasons', async () => {
    const h = await start();
    const other = await h.attempt(
      draft('caep.credential-change', 'dana.lee@example.com', {
        credential_type: 'password',
        change_type: 'update',
      }),
    );
    if (!other.ok)
      expect(other.error.message).toMatch(
        /acts on session-revoked and account-disabled, not caep.credential-change/,
      );
    const unknown = await h.attempt(draft('caep.session-revoked', 'ghost@example.com'));
    expect(unknown).toMatchObject({ ok: false, class: 'permanent' });
    if (!unknown.ok)
      expect(unknown.error.message).toBe(
        'google-workspace refuses this event: Google Workspace has no user ghost@example.com',
      );
    const device = await h.attempt({
      type: 'caep.session-revoked',
      subject: { format: 'opaque', id: 'd-1' },
      sourceRecordId: 'd',
    });
    expect(device.ok).toBe(false);
  });
});

describe('google-workspace: failures', () => {
  it('an admin without domain-wide delegation is a credential failure (unauthorized_client)', async () => {
    google.delegatedAdmins.clear();
    const h = await start();
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({ ok: false, class: 'credentials' });
    expect(h.status()?.state).toBe('permanent_error');
  });

  it('403 forbidden refuses that user only; 403 userRateLimitExceeded and 429 retry', async () => {
    google.add('dana.lee@example.com');
    const h = await start();
    const signOut = (r: FakeRequest) => r.path.endsWith('/signOut');
    google.api.inject(
      googleError(403, 'User Rate Limit Exceeded', 'userRateLimitExceeded', 'PERMISSION_DENIED'),
      signOut,
    );
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({ ok: false, class: 'retryable' });
    google.api.inject(
      {
        ...googleError(429, 'Quota exceeded', 'rateLimitExceeded', 'RESOURCE_EXHAUSTED'),
        headers: { 'retry-after': '11' },
      },
      signOut,
    );
    const limited = await h.attempt(draft('caep.session-revoked'));
    if (!limited.ok) expect(limited.error.retryAfterMs).toBe(11_000);
    expect(limited.ok).toBe(false);
    google.api.inject(googleError(429, 'Quota exceeded', 'rateLimitExceeded', 'RESOURCE_EXHAUSTED'), signOut);
    const bare = await h.attempt(draft('caep.session-revoked'));
    if (!bare.ok) expect(bare.error.retryAfterMs).toBeUndefined();
    google.api.inject(NOT_AUTHORIZED, signOut);
    const denied = await h.attempt(draft('caep.session-revoked'));
    expect(denied).toMatchObject({ ok: false, class: 'permanent' });
    if (!denied.ok) {
      expect(denied.error.message).toMatch(
        /^Google refused signing out dana\.lee@example\.com \(403 Not Authorized to access this resource\/api, reason forbidden\): the admin the service account acts for may not manage dana\.lee@example\.com/,
      );
    }
  });

  it('a super admin or a user of a domain not owned (403 forbidden) is dead-lettered alone: the next user is signed out, the credentials are not flagged', async () => {
    google.add('root@example.com');
    google.superAdmins.add('root@example.com');
    const dana = google.add('dana.lee@example.com');
    const h = await start();
    for (const email of ['root@example.com', 'someone@other-company.example']) {
      const refused = await h.attempt(draft('risc.account-disabled', email));
      expect(refused, email).toMatchObject({ ok: false, class: 'permanent' });
      if (!refused.ok) {
        expect(refused.error.code).toBe('SSF_ERR_GOOGLE_USER_FORBIDDEN');
        expect(refused.error.message).toContain(`Google refused signing out ${email}`);
        expect(refused.error.message).toContain('reason forbidden');
        expect(refused.error.message).toContain(`may not manage ${email}`);
      }
    }
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({
      ok: true,
      receipt: { detail: 'dana.lee@example.com signed out and suspended' },
    });
    expect(dana).toMatchObject({ signedOut: 1, suspended: true });
    expect(
      await h.counter('google_workspace_actions_total', { action: 'sign_out', outcome: 'permanent' }),
    ).toBe(2);
  });

  it('403s about the caller (a scope missing, the Admin SDK API not enabled) flag the credentials', async () => {
    google.add('dana.lee@example.com');
    const h = await start();
    const signOut = (r: FakeRequest) => r.path.endsWith('/signOut');
    google.api.inject(SCOPE_INSUFFICIENT, signOut);
    const scope = await h.attempt(draft('caep.session-revoked'));
    expect(scope).toMatchObject({ ok: false, class: 'credentials' });
    if (!scope.ok) {
      expect(scope.error.message).toContain(
        'reason insufficientPermissions, ACCESS_TOKEN_SCOPE_INSUFFICIENT',
      );
      expect(scope.error.message).toMatch(/domain-wide delegation/);
    }
    google.api.inject(
      googleError(
        403,
        'Admin SDK API has not been used in project 123456789012 before or it is disabled.',
        'accessNotConfigured',
        'PERMISSION_DENIED',
        { reason: 'SERVICE_DISABLED', domain: 'googleapis.com' },
      ),
      signOut,
    );
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({ ok: false, class: 'credentials' });
    // Without the user scope, the suspension after the sign-out is refused as the caller's problem.
    await h.stop();
    const noUserScope = await start();
    google.api.inject(SCOPE_INSUFFICIENT, (r) => r.method === 'PATCH');
    expect(await noUserScope.attempt(draft('risc.account-disabled'))).toMatchObject({
      ok: false,
      class: 'credentials',
    });
  });

  it('5xx, slow answers and a broken 401 are classified; the key and tokens never reach the logs', async () => {
    google.add('dana.lee@example.com');
    const h = await start();
    const signOut = (r: FakeRequest) => r.path.endsWith('/signOut');
    google.api.inject(
      googleError(503, 'The service is currently unavailable.', 'backendError', 'UNAVAILABLE'),
      signOut,
    );
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({ ok: false, class: 'retryable' });
    google.api.inject({ status: 204, delayMs: 1_000 }, signOut);
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({ ok: false, class: 'retryable' });
    google.api.inject({ status: 401, body: '<html>' }, signOut, 2);
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({ ok: false, class: 'credentials' });
    const logged = h.logText();
    expect(logged).not.toContain(SA_PEM.split('\n')[1]);
    expect(logged).not.toContain('ya29.c.');
    expect(
      await h.counter('google_workspace_actions_total', { action: 'sign_out', outcome: 'retryable' }),
    ).toBe(2);
  });
});

describe('google-workspace: a service account without keys (IAM signJwt)', () => {
  let dir: string;
  let tokenFile: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-google-wif-'));
    tokenFile = join(dir, 'token');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => writeFileSync(tokenFile, `${PLATFORM_TOKEN}\n`));

  const keyless = (source: Record<string, unknown>) =>
    start({
      private_key: undefined,
      private_key_id: undefined,
      keyless: { iam_credentials_url: google.api.url, ...source },
    });
  const onMetadataServer = () => keyless({ source: 'metadata_server', metadata_url: google.api.url });
  const federated = () =>
    keyless({
      source: 'workload_identity_federation',
      audience: POOL_PROVIDER,
      subject_token_file: tokenFile,
      sts_url: google.api.url,
    });
  const paths = () => google.api.requests.map((r) => `${r.method} ${r.path}`);
  const SIGN_JWT = `POST /v1/projects/-/serviceAccounts/${encodeURIComponent(SA)}:signJwt`;

  it('on Google Cloud: the metadata server’s token signs the delegation assertion with IAM; Google’s key signs it', async () => {
    const dana = google.add('dana.lee@example.com');
    const h = await onMetadataServer();
    expect((await h.attempt(draft('caep.session-revoked'))).ok).toBe(true);
    expect(paths()).toEqual([
      'GET /computeMetadata/v1/instance/service-accounts/default/token',
      SIGN_JWT,
      'POST /token',
      'POST /admin/directory/v1/users/dana.lee%40example.com/signOut',
    ]);
    const [metadata, sign, token] = google.api.requests;
    expect(metadata?.headers['metadata-flavor']).toBe('Google');
    expect(metadata?.query.scopes).toBe('https://www.googleapis.com/auth/cloud-platform');
    expect(sign?.headers['authorization']).toMatch(/^Bearer ya29\.cloud\./);
    const claims = JSON.parse((sign?.json as { payload: string }).payload) as Record<string, number | string>;
    expect(claims).toMatchObject({
      iss: SA,
      sub: ADMIN,
      aud: `${google.api.url}/token`,
      scope: `${SECURITY} ${USER}`,
    });
    expect(Number(claims.exp) - Number(claims.iat)).toBe(3600);
    const assertion = (token?.json as { assertion: string }).assertion;
    expect(decodeProtectedHeader(assertion).kid).toBe(GOOGLE_KEY_ID);
    await jwtVerify(assertion, googleManagedKey.publicKey, {
      issuer: SA,
      audience: `${google.api.url}/token`,
    });
    expect(dana.signedOut).toBe(1);
    // The admin token is kept: the next event goes straight to the Directory API.
    google.add('lee@example.com');
    expect((await h.attempt(draft('caep.session-revoked', 'lee@example.com'))).ok).toBe(true);
    expect(paths()).toHaveLength(5);
  });

  it('elsewhere: the platform’s token from the file is exchanged at the STS (RFC 8693), and the file is read again for the next exchange', async () => {
    google.add('dana.lee@example.com');
    google.cloudTokenLifetimeS = 60; // inside the refresh margin: every assertion needs a new exchange
    const h = await federated();
    expect((await h.attempt(draft('caep.session-revoked'))).ok).toBe(true);
    expect(paths().slice(0, 3)).toEqual(['POST /v1/token', SIGN_JWT, 'POST /token']);
    expect(google.api.requests[0]?.json).toEqual({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      audience: POOL_PROVIDER,
      scope: 'https://www.googleapis.com/auth/cloud-platform',
      requested_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      subject_token: PLATFORM_TOKEN,
      subject_token_type: 'urn:ietf:params:oauth:token-type:jwt',
    });
    // The platform rotates its token; a revoked admin token forces a new assertion.
    google.platformToken = `${PLATFORM_TOKEN}.rotated`;
    writeFileSync(tokenFile, google.platformToken);
    google.api.reset();
    google.api.inject({ status: 401, body: { error: { code: 401, message: 'Invalid Credentials' } } }, (r) =>
      r.path.endsWith('/signOut'),
    );
    expect((await h.attempt(draft('caep.session-revoked'))).ok).toBe(true);
    const exchange = google.api.requests.find((r) => r.path === '/v1/token');
    expect((exchange?.json as { subject_token: string }).subject_token).toBe(`${PLATFORM_TOKEN}.rotated`);
    const logged = h.logText();
    expect(logged).not.toContain(PLATFORM_TOKEN);
    expect(logged).not.toContain('ya29.');
  });

  it('keeps the platform’s token out of logs until its exp (a day when it names none), then forgets it', async () => {
    google.add('dana.lee@example.com');
    google.cloudTokenLifetimeS = 60; // every assertion needs a new exchange, so the file is read again
    const part = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
    const expMs = (Math.floor(Date.now() / 1000) + 600) * 1000;
    const expiring = `${part({ alg: 'RS256' })}.${part({ sub: randomUUID(), exp: expMs / 1000 })}.c2ln`;
    google.platformToken = expiring;
    writeFileSync(tokenFile, expiring);
    const h = await federated();
    expect((await h.attempt(draft('caep.session-revoked'))).ok).toBe(true);
    await h.stop();
    // The platform's next token names no exp.
    const undated = `${part({ alg: 'RS256' })}.${part({ sub: randomUUID() })}.c2ln`;
    google.platformToken = undated;
    writeFileSync(tokenFile, undated);
    expect((await (await federated()).attempt(draft('caep.session-revoked'))).ok).toBe(true);
    const after = Date.now();
    expect(google.api.requests.filter((r) => r.path === '/v1/token')).toHaveLength(2);
    const kept = (value: string) => registeredSecretValues().has(value);
    expect(kept(expiring) && kept(undated)).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(expMs + EXPIRED_SECRET_MARGIN_MS - 1);
      expect(kept(expiring)).toBe(true);
      vi.setSystemTime(expMs + EXPIRED_SECRET_MARGIN_MS + 1_000);
      expect(kept(expiring)).toBe(false);
      expect(kept(undated)).toBe(true);
      vi.setSystemTime(after + 24 * 3_600_000 + EXPIRED_SECRET_MARGIN_MS);
      expect(kept(undated)).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('an identity without the Token Creator role is a credential failure that names the role', async () => {
    google.add('dana.lee@example.com');
    google.tokenCreators.clear();
    const h = await onMetadataServer();
    const outcome = await h.attempt(draft('caep.session-revoked'));
    expect(outcome).toMatchObject({ ok: false, class: 'credentials' });
    if (!outcome.ok) expect(outcome.error.message).toMatch(/roles\/iam\.serviceAccountTokenCreator/);
    expect(h.status()?.state).toBe('permanent_error');
    expect(paths()).not.toContain('POST /token');
  });

  it('a service account IAM does not know (404) is a credential failure, not a missing user', async () => {
    google.add('dana.lee@example.com');
    const other = await start({
      service_account_email: 'gone@example-project.iam.gserviceaccount.com',
      private_key: undefined,
      private_key_id: undefined,
      keyless: {
        source: 'metadata_server',
        metadata_url: google.api.url,
        iam_credentials_url: google.api.url,
      },
    });
    const outcome = await other.attempt(draft('caep.session-revoked'));
    expect(outcome).toMatchObject({ ok: false, class: 'credentials' });
    if (!outcome.ok) expect(outcome.error.message).toMatch(/IAM would not sign for gone@example-project/);
  });

  it('a token the pool provider refuses is a credential failure; an unreadable file is retried', async () => {
    const h = await federated();
    google.platformToken = 'another-token';
    const refused = await h.attempt(draft('caep.session-revoked'));
    expect(refused).toMatchObject({ ok: false, class: 'credentials' });
    if (!refused.ok)
      expect(refused.error.message).toMatch(/Security Token Service refused .*could not be verified/);
    rmSync(tokenFile);
    expect(await h.attempt(draft('caep.session-revoked'))).toMatchObject({ ok: false, class: 'retryable' });
  });

  it('a metadata server that is not Google’s (off Google Cloud) is a credential failure', async () => {
    const elsewhere = new FakeApi(() => ({ status: 404, body: 'Not Found' }));
    await elsewhere.start();
    try {
      const h = await keyless({ source: 'metadata_server', metadata_url: elsewhere.url });
      const outcome = await h.attempt(draft('caep.session-revoked'));
      expect(outcome).toMatchObject({ ok: false, class: 'credentials' });
      if (!outcome.ok) expect(outcome.error.message).toMatch(/needs the bridge to run on Google Cloud/);
    } finally {
      await elsewhere.close();
    }
  });

  it('an expired Google Cloud token is fetched again once when IAM refuses it', async () => {
    google.add('dana.lee@example.com');
    const h = await onMetadataServer();
    google.api.inject(
      googleError(401, 'Request had invalid authentication credentials.', 'authError', 'UNAUTHENTICATED'),
      (r) => r.path.endsWith(':signJwt'),
    );
    expect((await h.attempt(draft('caep.session-revoked'))).ok).toBe(true);
    expect(paths().slice(0, 4)).toEqual([
      'GET /computeMetadata/v1/instance/service-accounts/default/token',
      SIGN_JWT,
      'GET /computeMetadata/v1/instance/service-accounts/default/token',
      SIGN_JWT,
    ]);
    // Refused again with a fresh token: a credential failure, not a loop.
    await h.stop();
    google.api.reset();
    const again = await onMetadataServer();
    google.api.inject(
      googleError(401, 'Request had invalid authentication credentials.', 'authError', 'UNAUTHENTICATED'),
      (r) => r.path.endsWith(':signJwt'),
      2,
    );
    const outcome = await again.attempt(draft('caep.session-revoked'));
    expect(outcome).toMatchObject({ ok: false, class: 'credentials' });
    if (!outcome.ok) expect(outcome.error.message).toMatch(/refused a freshly fetched Google Cloud token/);
    expect(paths().filter((p) => p === SIGN_JWT)).toHaveLength(2);
  });

  it('config: one of private_key and keyless; no private_key_id with keyless; a provider by its full name', () => {
    const parse = (directory: Record<string, unknown>) =>
      googleWorkspace.configSchema.safeParse({
        directory: { service_account_email: SA, admin_email: ADMIN, ...directory },
      });
    const onGcp = { source: 'metadata_server' };
    expect(parse({ keyless: onGcp }).success).toBe(true);
    expect(parse({}).success).toBe(false);
    expect(parse({ keyless: onGcp, private_key: SA_PEM }).success).toBe(false);
    expect(parse({ keyless: onGcp, private_key_id: 'k' }).success).toBe(false);
    const wif = { source: 'workload_identity_federation', subject_token_file: '/var/run/token' };
    expect(parse({ keyless: { ...wif, audience: POOL_PROVIDER } }).success).toBe(true);
    expect(parse({ keyless: { ...wif, audience: 'projects/123/pools/p' } }).success).toBe(false);
  });
});

describe('google-workspace: config URLs that credentials go to', () => {
  const problems = (directory: Record<string, unknown>) => {
    const parsed = googleWorkspace.configSchema.safeParse({
      directory: { service_account_email: SA, private_key: SA_PEM, admin_email: ADMIN, ...directory },
    });
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };
  const clear = (field: string) =>
    `${field}: must be an https URL (the credentials would travel in clear text over http); plain http only for the local machine`;

  it('token_url (the signed assertion) and api_url (the access token) must be https, except to this machine', () => {
    expect(problems({ token_url: 'http://oauth2.example.com/token' })).toEqual([
      clear('directory.token_url'),
    ]);
    expect(problems({ api_url: 'http://admin.example.com' })).toEqual([clear('directory.api_url')]);
    expect(
      problems({ token_url: 'https://oauth2.example.com/token', api_url: 'https://admin.example.com' }),
    ).toEqual([]);
    expect(problems({ token_url: 'http://127.0.0.1:9000/token', api_url: 'http://localhost:9000' })).toEqual(
      [],
    );
    expect(problems({})).toEqual([]);
  });

  it('keyless: sts_url (the platform’s token) and iam_credentials_url (a Google Cloud token) must be https; the metadata server stays http', () => {
    const keyless = (fields: Record<string, unknown>) =>
      googleWorkspace.configSchema.safeParse({
        directory: { service_account_email: SA, admin_email: ADMIN, keyless: fields },
      });
    const issues = (fields: Record<string, unknown>) => {
      const parsed = keyless(fields);
      return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    };
    const wif = {
      source: 'workload_identity_federation',
      audience: POOL_PROVIDER,
      subject_token_file: '/var/run/token',
    };
    expect(issues({ ...wif, sts_url: 'http://sts.example.com' })).toEqual([
      clear('directory.keyless.sts_url'),
    ]);
    expect(issues({ ...wif, iam_credentials_url: 'http://iam.example.com' })).toEqual([
      clear('directory.keyless.iam_credentials_url'),
    ]);
    expect(issues({ source: 'metadata_server', iam_credentials_url: 'http://iam.example.com' })).toEqual([
      clear('directory.keyless.iam_credentials_url'),
    ]);
    expect(issues({ source: 'metadata_server' })).toEqual([]);
    expect(issues({ source: 'metadata_server', metadata_url: 'http://169.254.169.254' })).toEqual([]);
  });
});

describe('google-workspace: SSF push to Google’s receiver', () => {
  const receiver = new MockServer();
  beforeAll(() => receiver.start());
  afterAll(() => receiver.close());

  it('sends session-revoked with aud https://sharedsignals.googleapis.com and the email in sub_id and in the event', async () => {
    const received = ssfReceiver(receiver, {
      path: '/push',
      audience: 'https://sharedsignals.googleapis.com',
    });
    harness = await outboundHarness(googleWorkspace, { ssf_push: { endpoint_url: `${receiver.url}/push` } });
    const outcome = await harness.attempt(
      draft('caep.session-revoked', 'dana.lee@example.com', { reason_admin: { en: 'Leaver' } }),
    );
    expect(outcome.ok).toBe(true);
    expect(received[0]?.set.claims).toMatchObject({
      aud: 'https://sharedsignals.googleapis.com',
      sub_id: { format: 'email', email: 'dana.lee@example.com' },
      events: {
        'https://schemas.openid.net/secevent/caep/event-type/session-revoked': {
          subject: { format: 'email', email: 'dana.lee@example.com' },
          reason_admin: { en: 'Leaver' },
        },
      },
    });
    const refused = await harness.attempt(draft('risc.account-disabled'));
    expect(refused).toMatchObject({ ok: false, class: 'permanent', set: undefined });
  });

  it('needs exactly one of directory and ssf_push', () => {
    expect(googleWorkspace.configSchema.safeParse({}).success).toBe(false);
    expect(
      googleWorkspace.configSchema.safeParse({
        ssf_push: { endpoint_url: 'https://r.example.com' },
        directory: { service_account_email: SA, private_key: 'k', admin_email: ADMIN },
      }).success,
    ).toBe(false);
  });

  it('RFC 8935 §1: refuses an ssf_push endpoint over plain http, with or without a credential, except to this machine (as ssf-push does)', () => {
    const push = (endpoint_url: string, authorization_header?: string) =>
      googleWorkspace.configSchema.safeParse({
        ssf_push: { endpoint_url, ...(authorization_header ? { authorization_header } : {}) },
      });
    for (const refused of [
      push('http://push.example.com/events'),
      push('http://push.example.com/events', 'Bearer g-push-1'),
    ]) {
      expect(refused.success).toBe(false);
      expect(refused.error?.issues.map((i) => [i.path.join('.'), i.message])).toEqual([
        [
          'ssf_push.endpoint_url',
          'must be an https URL (RFC 8935 delivers SETs over TLS); plain http only for the local machine',
        ],
      ]);
    }
    expect(push('https://push.example.com/events', 'Bearer g-push-1').success).toBe(true);
    expect(push('https://push.example.com/events').success).toBe(true);
    expect(push('http://127.0.0.1:8443/events', 'Bearer g-push-1').success).toBe(true);
    expect(push('http://localhost:8443/events').success).toBe(true);
  });
});

describe('Google 403 answers of any shape', () => {
  it('a 403 whose errors are not a list of objects is a plain permission refusal, never a TypeError', () => {
    for (const data of [
      { error: { errors: { reason: 'rateLimitExceeded' } } },
      { error: { errors: [null, 7], message: 42 } },
      '<html>Forbidden</html>',
      null,
    ]) {
      const err = forbidden(
        { status: 403, headers: {}, data },
        'signing out dana@example.com',
        'dana@example.com',
      );
      expect(err, JSON.stringify(data)).toBeInstanceOf(PermanentError);
      expect(err.message).toContain('Google refused signing out dana@example.com (403 forbidden)');
      expect((err as PermanentError).authFailure).toBe(false);
    }
    const limited = forbidden(
      {
        status: 403,
        headers: {},
        data: { error: { errors: [{ reason: 'userRateLimitExceeded' }], message: 'slow down' } },
      },
      'x',
      'dana@example.com',
    );
    expect(limited).toBeInstanceOf(RetryableError);
    const caller = forbidden(
      { status: 403, headers: {}, data: { error: { details: [{ reason: 'SERVICE_DISABLED' }, 7] } } },
      'x',
      'dana@example.com',
    );
    expect((caller as PermanentError).authFailure).toBe(true);
  });
});
