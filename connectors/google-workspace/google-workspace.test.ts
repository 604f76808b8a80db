import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import { FakeApi, type FakeRequest, type FakeResponse } from '../../test/helpers/fake-api.ts';
import { outboundHarness, ssfReceiver, type OutboundHarness } from '../../test/helpers/outbound.ts';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import { googleWorkspace } from './index.ts';

const SA = 'ssf-bridge@example-project.iam.gserviceaccount.com';
const ADMIN = 'it-automation@example.com';
const SECURITY = 'https://www.googleapis.com/auth/admin.directory.user.security';
const USER = 'https://www.googleapis.com/auth/admin.directory.user';
const saKey = generateKeyPairSync('rsa', { modulusLength: 2048 });
const SA_PEM = saKey.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
// Pasted from the JSON key file, with its escaped newlines.
const SA_PEM_FROM_JSON = SA_PEM.replace(/\n/g, '\\n');

function googleError(code: number, message: string, reason: string, status: string): FakeResponse {
  return {
    status: code,
    body: { error: { code, message, errors: [{ message, domain: 'global', reason }], status } },
  };
}

/** Google's token endpoint (JWT bearer grant) and the Admin SDK Directory API users resource. */
class FakeGoogle {
  readonly users = new Map<
    string,
    { id: string; primaryEmail: string; suspended: boolean; signedOut: number }
  >();
  readonly #tokens = new Map<string, string[]>();
  delegatedAdmins = new Set([ADMIN]);
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
      ({ payload } = await jwtVerify(form.assertion ?? '', saKey.publicKey, {
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

  async #route(req: FakeRequest): Promise<FakeResponse> {
    if (req.method === 'POST' && req.path === '/token') return this.#token(req);
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
    if (!scopes.includes(needed))
      return googleError(403, 'Not Authorized to access this resource/api', 'forbidden', 'PERMISSION_DENIED');
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

  it('403 forbidden is a permission problem; 403 userRateLimitExceeded and 429 retry', async () => {
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
    google.api.inject(
      googleError(403, 'Not Authorized to access this resource/api', 'forbidden', 'PERMISSION_DENIED'),
      signOut,
    );
    const denied = await h.attempt(draft('caep.session-revoked'));
    expect(denied).toMatchObject({ ok: false, class: 'credentials' });
    if (!denied.ok) expect(denied.error.message).toMatch(/domain-wide delegation/);
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
});
