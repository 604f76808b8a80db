import { X509Certificate, createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import { selfSignedCertificate, type TestCertificate } from '../../test/helpers/certificates.ts';
import { FakeApi, type FakeRequest, type FakeResponse } from '../../test/helpers/fake-api.ts';
import { outboundHarness, type OutboundHarness } from '../../test/helpers/outbound.ts';
import { microsoftGraph } from './index.ts';

const TENANT = 'contoso.onmicrosoft.com';
const CLIENT_ID = '6731de76-14a6-49ae-97bc-6eba6914391e';
const CLIENT_SECRET = 'graph-client-secret~Q8w.4f';

interface EntraUser {
  id: string;
  userPrincipalName: string;
  mail: string;
  accountEnabled: boolean;
}

/** Microsoft Graph and the Entra token endpoint, from the Graph v1.0 reference. */
class FakeGraph {
  readonly users: EntraUser[] = [];
  readonly tokens = new Set<string>();
  readonly revoked: string[] = [];
  readonly compromised: Array<{ id: string; at: number }> = [];
  /** Certificates uploaded to the app registration, by the base64url SHA-256 of their DER. */
  readonly certificates = new Map<string, KeyObject>();
  /** The app's federated identity credential: whose tokens it trusts (issuer, subject) and their key. */
  federated: { issuer: string; subject: string; key: KeyObject } | undefined;
  lastIdentityProtection = 0;
  readonly api = new FakeApi((req) => this.#route(req));

  add(upn: string, mail = upn): EntraUser {
    const user = { id: randomUUID(), userPrincipalName: upn, mail, accountEnabled: true };
    this.users.push(user);
    return user;
  }

  #error(status: number, code: string, message: string): FakeResponse {
    const date = new Date().toISOString();
    return {
      status,
      body: {
        error: {
          code,
          message,
          innerError: { date, 'request-id': randomUUID(), 'client-request-id': randomUUID() },
        },
      },
    };
  }

  #route(req: FakeRequest): FakeResponse | Promise<FakeResponse> {
    if (req.method === 'POST' && req.path === `/${TENANT}/oauth2/v2.0/token`) return this.#token(req);
    if (!this.tokens.has((req.headers['authorization'] ?? '').replace(/^Bearer /, ''))) {
      return this.#error(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    }
    const userPath = /^\/v1\.0\/users\/([^/]+)(\/revokeSignInSessions)?$/.exec(req.path);
    const byKey = /^\/v1\.0\/users\('((?:[^']|'')*)'\)$/.exec(decodeURIComponent(req.path));
    if (userPath && decodeURIComponent(userPath[1] as string).startsWith('$')) {
      // OData reserves `$` segments for the system (Graph user-get: a UPN starting with `$`
      // takes the /users('…') form).
      return this.#error(
        400,
        'BadRequest',
        `Resource not found for the segment '${decodeURIComponent(userPath[1] as string)}'.`,
      );
    }
    if (req.method === 'GET' && byKey) {
      const upn = (byKey[1] as string).replace(/''/g, "'");
      const user = this.users.find((u) => u.userPrincipalName.toLowerCase() === upn.toLowerCase());
      if (!user) {
        return this.#error(404, 'Request_ResourceNotFound', `Resource '${upn}' does not exist.`);
      }
      return { body: { id: user.id, userPrincipalName: user.userPrincipalName } };
    }
    if (req.method === 'GET' && req.path === '/v1.0/users') {
      const mail = /^mail eq '(.*)'$/.exec(req.query.$filter ?? '')?.[1]?.replace(/''/g, "'");
      return {
        body: {
          '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName)',
          value: this.users
            .filter((u) => u.mail.toLowerCase() === mail?.toLowerCase())
            .map(({ id, userPrincipalName }) => ({ id, userPrincipalName })),
        },
      };
    }
    if (userPath) {
      const key = decodeURIComponent(userPath[1] as string);
      const user = this.users.find(
        (u) => u.id === key || u.userPrincipalName.toLowerCase() === key.toLowerCase(),
      );
      if (!user) {
        return this.#error(
          404,
          'Request_ResourceNotFound',
          `Resource '${key}' does not exist or one of its queried reference-property objects are not present.`,
        );
      }
      if (req.method === 'GET') {
        return {
          body: {
            '@odata.context':
              'https://graph.microsoft.com/v1.0/$metadata#users(id,userPrincipalName)/$entity',
            id: user.id,
            userPrincipalName: user.userPrincipalName,
          },
        };
      }
      if (req.method === 'PATCH') {
        const body = req.json as { accountEnabled?: unknown };
        if (typeof body?.accountEnabled !== 'boolean')
          return this.#error(400, 'Request_BadRequest', 'Invalid property.');
        user.accountEnabled = body.accountEnabled;
        return { status: 204 };
      }
      if (req.method === 'POST' && userPath[2]) {
        this.revoked.push(user.id);
        return {
          body: { '@odata.context': 'https://graph.microsoft.com/v1.0/$metadata#Edm.Boolean', value: true },
        };
      }
    }
    if (req.method === 'POST' && req.path === '/v1.0/identityProtection/riskyUsers/confirmCompromised') {
      // Identity Protection: one request per second per tenant, and a 429 without Retry-After.
      const now = Date.now();
      if (now - this.lastIdentityProtection < 1_000)
        return this.#error(429, 'TooManyRequests', 'Too many requests.');
      this.lastIdentityProtection = now;
      for (const id of (req.json as { userIds: string[] }).userIds) this.compromised.push({ id, at: now });
      return { status: 204 };
    }
    return this.#error(400, 'BadRequest', `Unsupported request ${req.method} ${req.path}`);
  }

  async #token(req: FakeRequest): Promise<FakeResponse> {
    const form = req.json as Record<string, string>;
    const invalidClient = (code: number, description: string): FakeResponse => ({
      status: 401,
      body: {
        error: 'invalid_client',
        error_description: `AADSTS${code}: ${description}`,
        error_codes: [code],
      },
    });
    if (form.client_assertion_type === 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer') {
      // Certificate credentials: the key is found by the certificate's thumbprint in the header.
      const assertion = form.client_assertion ?? '';
      const header = decodeProtectedHeader(assertion);
      if (header['x5t#S256'] === undefined && this.federated) {
        // Workload identity federation: a token of the trusted issuer, for this subject.
        try {
          await jwtVerify(assertion, this.federated.key, {
            issuer: this.federated.issuer,
            subject: this.federated.subject,
            audience: 'api://AzureADTokenExchange',
          });
        } catch {
          return invalidClient(70021, 'No matching federated identity record found for presented assertion.');
        }
        return this.#issue();
      }
      const key = this.certificates.get(String(header['x5t#S256']));
      if (!key)
        return invalidClient(
          700027,
          'The certificate with identifier used to sign the client assertion is not registered on application.',
        );
      try {
        await jwtVerify(assertion, key, {
          algorithms: ['PS256', 'RS256'],
          audience: `${this.api.url}/${TENANT}/oauth2/v2.0/token`,
          issuer: form.client_id ?? CLIENT_ID,
          subject: CLIENT_ID,
          requiredClaims: ['jti', 'exp', 'nbf'],
        });
      } catch (err) {
        return invalidClient(
          700027,
          `Client assertion failed signature validation. (${(err as Error).message})`,
        );
      }
    } else if (form.client_secret !== CLIENT_SECRET) {
      return {
        status: 401,
        body: {
          error: 'invalid_client',
          error_description:
            'AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.',
          error_codes: [7000215],
        },
      };
    }
    return this.#issue();
  }

  #issue(): FakeResponse {
    const token = `eyJ0eXAiOiJKV1Qi.graph-${randomUUID()}`;
    this.tokens.add(token);
    return { body: { token_type: 'Bearer', expires_in: 3599, ext_expires_in: 3599, access_token: token } };
  }
}

const graph = new FakeGraph();
let harness: OutboundHarness | undefined;
beforeAll(() => graph.api.start());
afterAll(() => graph.api.close());
beforeEach(() => {
  graph.api.reset();
  graph.users.length = 0;
  graph.revoked.length = 0;
  graph.compromised.length = 0;
  graph.lastIdentityProtection = 0;
});
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(config: Record<string, unknown> = {}) {
  harness = await outboundHarness(microsoftGraph, {
    tenant_id: TENANT,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    token_url: `${graph.api.url}/${TENANT}/oauth2/v2.0/token`,
    graph_url: graph.api.url,
    request_timeout: '400ms',
    ...config,
  });
  return harness;
}

let n = 0;
function draft(type: string, email: string, claims: Record<string, unknown> = {}): EventDraft {
  n += 1;
  return { type, subject: { format: 'email', email }, claims, sourceRecordId: `rec-${n}` };
}
/** Graph's error body, as the v1.0 reference shows it. */
function graphError(status: number, code: string, message: string): FakeResponse {
  return {
    status,
    body: {
      error: {
        code,
        message,
        innerError: {
          date: new Date().toISOString(),
          'request-id': randomUUID(),
          'client-request-id': randomUUID(),
        },
      },
    },
  };
}
const calls = (method: string, prefix: string) =>
  graph.api.requests.filter((r) => r.method === method && r.path.startsWith(prefix));

describe('microsoft-graph: actions', () => {
  it('session-revoked: client-credentials token, user by UPN, POST revokeSignInSessions', async () => {
    const dana = graph.add('dana.lee@contoso.com');
    const h = await start();
    const outcome = await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'));
    expect(outcome).toMatchObject({ ok: true, receipt: { status: 200, detail: 'sign-in sessions revoked' } });
    const [token] = calls('POST', `/${TENANT}/oauth2/v2.0/token`);
    expect(token?.json).toEqual({
      grant_type: 'client_credentials',
      scope: `${graph.api.url}/.default`,
      client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
      client_secret: CLIENT_SECRET,
    });
    const [lookup] = calls('GET', '/v1.0/users/');
    expect(lookup?.path).toBe('/v1.0/users/dana.lee%40contoso.com');
    expect(lookup?.query).toEqual({ $select: 'id,userPrincipalName' });
    const [revoke] = calls('POST', '/v1.0/users/');
    expect(revoke?.path).toBe(`/v1.0/users/${dana.id}/revokeSignInSessions`);
    expect(revoke?.headers['authorization']).toMatch(/^Bearer eyJ0eXAiOiJKV1Qi\.graph-/);
    expect(revoke?.body).toBe('');
    expect(graph.revoked).toEqual([dana.id]);
    const logged = h.logText();
    expect(logged).not.toContain(CLIENT_SECRET);
    expect(logged).not.toContain('graph-');
  });

  it('account-disabled: PATCH accountEnabled false, then revoke; with disable_account off, revoke only', async () => {
    const dana = graph.add('dana.lee@contoso.com');
    const h = await start();
    expect(await h.attempt(draft('risc.account-disabled', 'dana.lee@contoso.com'))).toMatchObject({
      ok: true,
      receipt: { detail: 'account disabled, sessions revoked' },
    });
    const [patch] = calls('PATCH', '/v1.0/users/');
    expect(patch?.path).toBe(`/v1.0/users/${dana.id}`);
    expect(patch?.headers['content-type']).toBe('application/json');
    expect(patch?.json).toEqual({ accountEnabled: false });
    expect(dana.accountEnabled).toBe(false);
    expect(graph.revoked).toEqual([dana.id]);
    expect(
      await h.counter('microsoft_graph_actions_total', { action: 'disable_account', outcome: 'ok' }),
    ).toBe(1);
    await h.stop();
    const onlyRevoke = await start({ disable_account: false });
    expect((await onlyRevoke.attempt(draft('risc.account-disabled', 'dana.lee@contoso.com'))).ok).toBe(true);
    expect(calls('PATCH', '/v1.0/users/')).toHaveLength(1);
  });

  it('risk-level-change HIGH confirms the user compromised only when opted in', async () => {
    graph.add('dana.lee@contoso.com');
    const h = await start();
    const high = { principal: 'USER', current_level: 'HIGH' };
    const off = await h.attempt(draft('caep.risk-level-change', 'dana.lee@contoso.com', high));
    expect(off).toMatchObject({ ok: false, class: 'permanent' });
    if (!off.ok)
      expect(off.error.message).toMatch(/confirm_compromised is off: confirming a compromise is sticky/);
    await h.stop();
    const on = await start({ confirm_compromised: true });
    const medium = await on.attempt(
      draft('caep.risk-level-change', 'dana.lee@contoso.com', { ...high, current_level: 'MEDIUM' }),
    );
    if (!medium.ok) expect(medium.error.message).toMatch(/only a user's risk rising to HIGH/);
    expect(medium.ok).toBe(false);
    expect(await on.attempt(draft('caep.risk-level-change', 'dana.lee@contoso.com', high))).toMatchObject({
      ok: true,
      receipt: { status: 204 },
    });
    expect(calls('POST', '/v1.0/identityProtection/')[0]?.json).toEqual({ userIds: [graph.users[0]?.id] });
  });

  it('confirmCompromised requests are serialised to Identity Protection’s one request per second', async () => {
    graph.add('dana.lee@contoso.com');
    graph.add('lee.park@contoso.com');
    graph.add('sam.roy@contoso.com');
    const h = await start({ confirm_compromised: true });
    const high = { principal: 'USER', current_level: 'HIGH' };
    const outcomes = await Promise.all(
      ['dana.lee@contoso.com', 'lee.park@contoso.com', 'sam.roy@contoso.com'].map((e) =>
        h.attempt(draft('caep.risk-level-change', e, high)),
      ),
    );
    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true]);
    const times = graph.compromised.map((c) => c.at);
    expect(times).toHaveLength(3);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(1_000);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(1_000);
  });

  it("Graph user-get: a UPN starting with $ is looked up as /users('$…') with quotes doubled, not /users/$…", async () => {
    const adele = graph.add('$AdeleVance@contoso.com');
    const obrien = graph.add("$o'brien@contoso.com");
    const h = await start();
    expect((await h.attempt(draft('caep.session-revoked', '$AdeleVance@contoso.com'))).ok).toBe(true);
    expect((await h.attempt(draft('caep.session-revoked', "$o'brien@contoso.com"))).ok).toBe(true);
    expect(graph.revoked).toEqual([adele.id, obrien.id]);
    const lookups = calls('GET', '/v1.0/users(').map((r) => decodeURIComponent(r.path));
    expect(lookups).toEqual([
      "/v1.0/users('$AdeleVance@contoso.com')",
      "/v1.0/users('$o''brien@contoso.com')",
    ]);
    expect(calls('GET', '/v1.0/users/')).toEqual([]);
    // Not a UPN but a mail: the mail filter still runs after the 404.
    const mailOnly = graph.add('dlee@contoso.onmicrosoft.com', '$dana@contoso.com');
    expect((await h.attempt(draft('caep.session-revoked', '$dana@contoso.com'))).ok).toBe(true);
    expect(graph.revoked.at(-1)).toBe(mailOnly.id);
  });

  it('falls back to the mail attribute, caches lookups, refuses unknown users and non-user subjects', async () => {
    const lee = graph.add('lpark@contoso.onmicrosoft.com', 'lee.park@contoso.com');
    const h = await start();
    expect((await h.attempt(draft('caep.session-revoked', 'lee.park@contoso.com'))).ok).toBe(true);
    expect(calls('GET', '/v1.0/users').find((r) => r.path === '/v1.0/users')?.query).toEqual({
      $filter: "mail eq 'lee.park@contoso.com'",
      $select: 'id,userPrincipalName',
    });
    expect((await h.attempt(draft('caep.session-revoked', 'Lee.Park@contoso.com'))).ok).toBe(true);
    expect(calls('GET', '/v1.0/users')).toHaveLength(2);
    expect(graph.revoked).toEqual([lee.id, lee.id]);
    const nobody = await h.attempt(draft('caep.session-revoked', "o'brien@contoso.com"));
    expect(nobody).toMatchObject({ ok: false, class: 'permanent' });
    if (!nobody.ok)
      expect(nobody.error.message).toContain("no Entra user has the UPN or mail o'brien@contoso.com");
    const device = await h.attempt({
      type: 'caep.session-revoked',
      subject: { format: 'opaque', id: 'dev-1' },
      sourceRecordId: 'd',
    });
    if (!device.ok) expect(device.error.message).toMatch(/from a opaque subject/);
    expect(device.ok).toBe(false);
    const other = await h.attempt(
      draft('caep.credential-change', 'lee.park@contoso.com', {
        credential_type: 'password',
        change_type: 'update',
      }),
    );
    if (!other.ok) expect(other.error.message).toMatch(/not caep.credential-change/);
  });
});

describe('microsoft-graph: certificate credentials', () => {
  let dir: string;
  let cert: TestCertificate;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-graph-cert-'));
    cert = selfSignedCertificate(dir, 'ssf-bridge');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('signs in with the app’s certificate instead of a secret, and acts as usual', async () => {
    const x509 = new X509Certificate(cert.cert);
    graph.certificates.set(createHash('sha256').update(x509.raw).digest('base64url'), x509.publicKey);
    const user = graph.add('dana.lee@contoso.com');
    const h = await start({
      client_secret: undefined,
      client_certificate: { certificate: cert.cert, private_key: cert.key },
    });
    expect(await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).toMatchObject({
      ok: true,
    });
    expect(graph.revoked).toEqual([user.id]);
    const [token] = calls('POST', `/${TENANT}/oauth2/v2.0/token`);
    const form = token!.json as Record<string, string>;
    expect(form.client_secret).toBeUndefined();
    expect(decodeProtectedHeader(form.client_assertion!)).toMatchObject({ alg: 'PS256', typ: 'JWT' });
    expect(h.logText()).not.toContain('PRIVATE KEY');
  });

  it('a certificate Entra does not know is a credential failure flagged on the instance', async () => {
    graph.certificates.clear();
    graph.add('dana.lee@contoso.com');
    const h = await start({
      client_secret: undefined,
      client_certificate: { certificate: cert.cert, private_key: cert.key },
    });
    expect(await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).toMatchObject({
      ok: false,
      class: 'credentials',
    });
    expect(h.status()?.state).toBe('permanent_error');
  });
});

describe('microsoft-graph: workload identity federation', () => {
  it('signs in with the token AKS projects into a file, trusted by the app’s federated credential', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ssf-graph-federated-'));
    try {
      const aks = generateKeyPairSync('rsa', { modulusLength: 2048 });
      const issuer = 'https://oidc.prod-aks.azure.com/00000000-0000-0000-0000-000000000000/';
      const subject = 'system:serviceaccount:ssf:ssf-bridge';
      graph.federated = { issuer, subject, key: aks.publicKey };
      const file = join(dir, 'azure-identity-token');
      writeFileSync(
        file,
        await new SignJWT({})
          .setProtectedHeader({ alg: 'RS256', kid: 'aks-1' })
          .setIssuer(issuer)
          .setSubject(subject)
          .setAudience('api://AzureADTokenExchange')
          .setIssuedAt()
          .setExpirationTime('1h')
          .sign(aks.privateKey),
      );
      const user = graph.add('dana.lee@contoso.com');
      const h = await start({ client_secret: undefined, federated_token_file: file });
      expect(await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).toMatchObject({
        ok: true,
      });
      expect(graph.revoked).toEqual([user.id]);
      const form = calls('POST', `/${TENANT}/oauth2/v2.0/token`)[0]!.json as Record<string, string>;
      expect(form).toMatchObject({ client_id: CLIENT_ID, grant_type: 'client_credentials' });
      expect(form.client_secret).toBeUndefined();
    } finally {
      graph.federated = undefined;
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('microsoft-graph: failures', () => {
  it('a wrong client secret is a credential failure flagged on the instance', async () => {
    const h = await start({ client_secret: 'wrong-secret-value-0000' });
    expect(await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).toMatchObject({
      ok: false,
      class: 'credentials',
    });
    expect(h.status()?.state).toBe('permanent_error');
    expect(h.logText()).not.toContain('wrong-secret-value-0000');
  });

  it('a user deleted and made again under the same UPN: the 404 on the cached id drops it, and the same attempt acts on the new user', async () => {
    const first = graph.add('rehired@contoso.com');
    const h = await start();
    expect((await h.attempt(draft('caep.session-revoked', 'rehired@contoso.com'))).ok).toBe(true);
    graph.users.splice(graph.users.indexOf(first), 1);
    const again = graph.add('rehired@contoso.com');
    expect(await h.attempt(draft('caep.session-revoked', 'rehired@contoso.com'))).toMatchObject({
      ok: true,
      receipt: { detail: 'sign-in sessions revoked' },
    });
    expect(graph.revoked).toEqual([first.id, again.id]);
    const lookups = () => calls('GET', '/v1.0/users/rehired');
    expect(lookups()).toHaveLength(2);
    // account-disabled too: the PATCH's 404 on the stale id leads to the new account, disabled and revoked.
    graph.users.splice(graph.users.indexOf(again), 1);
    const third = graph.add('rehired@contoso.com');
    expect(await h.attempt(draft('risc.account-disabled', 'rehired@contoso.com'))).toMatchObject({
      ok: true,
      receipt: { detail: 'account disabled, sessions revoked' },
    });
    expect(third.accountEnabled).toBe(false);
    expect(graph.revoked).toEqual([first.id, again.id, third.id]);
    expect(lookups()).toHaveLength(3);
    // A deleted user with nobody under the UPN now is refused as unknown, in one attempt.
    graph.users.splice(graph.users.indexOf(third), 1);
    const gone = await h.attempt(draft('caep.session-revoked', 'rehired@contoso.com'));
    expect(gone).toMatchObject({ ok: false, class: 'permanent' });
    if (!gone.ok)
      expect(gone.error.message).toContain('no Entra user has the UPN or mail rehired@contoso.com');
  });

  it('user_cache_ttl counts from the lookup: using the cached id does not keep it alive', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t0 = Date.now();
      graph.add('dana.lee@contoso.com');
      const h = await start({ user_cache_ttl: '1h' });
      const lookups = () => calls('GET', '/v1.0/users/dana.lee').length;
      expect((await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).ok).toBe(true);
      vi.setSystemTime(t0 + 40 * 60_000);
      expect((await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).ok).toBe(true);
      expect(lookups()).toBe(1);
      // 70 minutes after the lookup (30 after the last use), the entry has expired.
      vi.setSystemTime(t0 + 70 * 60_000);
      expect((await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).ok).toBe(true);
      expect(lookups()).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a user search answered without a value list is a permanent error, not a TypeError retried for days', async () => {
    const h = await start();
    const search = (r: FakeRequest) => r.method === 'GET' && r.path === '/v1.0/users';
    for (const body of [{ value: { id: 'x' } }, { message: 'welcome' }]) {
      graph.api.inject({ status: 200, body }, search);
      const result = await h.attempt(draft('caep.session-revoked', 'odd.answer@contoso.com'));
      expect(result, JSON.stringify(body)).toMatchObject({ ok: false, class: 'permanent' });
      if (!result.ok) expect(result.error.message).toContain('without a value list');
    }
    graph.api.inject({ status: 200, body: { value: [null, { id: 42 }] } }, search);
    const nobody = await h.attempt(draft('caep.session-revoked', 'odd.answer@contoso.com'));
    expect(nobody).toMatchObject({ ok: false, class: 'permanent' });
    if (!nobody.ok)
      expect(nobody.error.message).toContain('no Entra user has the UPN or mail odd.answer@contoso.com');
  });

  it('account-disabled of a user synchronised from on-premises AD (400 on the PATCH): sessions are revoked, then the event is dead-lettered saying so', async () => {
    const dana = graph.add('dana.lee@contoso.com');
    graph.api.inject(
      graphError(
        400,
        'Request_BadRequest',
        'Unable to update the specified properties for on-premises mastered Directory Sync objects or objects currently undergoing migration.',
      ),
      (r) => r.method === 'PATCH',
    );
    const h = await start();
    const outcome = await h.attempt(draft('risc.account-disabled', 'dana.lee@contoso.com'));
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    expect(graph.revoked).toEqual([dana.id]);
    expect(dana.accountEnabled).toBe(true);
    if (!outcome.ok) {
      expect(outcome.error.message).toContain(
        `sign-in sessions of ${dana.id} revoked, but the account could not be disabled: PATCH /v1.0/users/${dana.id} answered 400: Request_BadRequest: Unable to update the specified properties for on-premises mastered Directory Sync objects`,
      );
      expect(outcome.error.message).toContain('disable the account there');
      expect(outcome.error.code).toBe('SSF_ERR_GRAPH_DISABLE_FAILED');
    }
    expect(h.status()?.state).not.toBe('permanent_error');
    expect(
      await h.counter('microsoft_graph_actions_total', { action: 'disable_account', outcome: 'permanent' }),
    ).toBe(1);
    expect(
      await h.counter('microsoft_graph_actions_total', { action: 'revoke_sessions', outcome: 'ok' }),
    ).toBe(1);
  });

  it('403 Authorization_RequestDenied on the disable alone (no User.EnableDisableAccount.All, or a privileged user): sessions revoked, dead-lettered, the instance not flagged', async () => {
    const dana = graph.add('dana.lee@contoso.com');
    graph.api.inject(
      graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'),
      (r) => r.method === 'PATCH',
    );
    const h = await start();
    const outcome = await h.attempt(draft('risc.account-disabled', 'dana.lee@contoso.com'));
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    expect(graph.revoked).toEqual([dana.id]);
    if (!outcome.ok) {
      expect(outcome.error.message).toContain(
        `sign-in sessions of ${dana.id} revoked, but the account could not be disabled: PATCH /v1.0/users/${dana.id} answered 403: Authorization_RequestDenied: Insufficient privileges to complete the operation.`,
      );
      expect(outcome.error.message).toContain('User.EnableDisableAccount.All');
      expect(outcome.error.message).toContain('disable_account: false');
    }
    expect(h.status()?.state).not.toBe('permanent_error');
  });

  it('a transient failure of the disable (503): sessions revoked, the delivery retried, and the retry disables the account', async () => {
    const dana = graph.add('dana.lee@contoso.com');
    graph.api.inject(
      {
        ...graphError(503, 'serviceNotAvailable', 'Service unavailable'),
        headers: { 'retry-after': '5' },
      },
      (r) => r.method === 'PATCH',
    );
    const h = await start();
    const first = await h.attempt(draft('risc.account-disabled', 'dana.lee@contoso.com'));
    expect(first).toMatchObject({ ok: false, class: 'retryable' });
    if (!first.ok) {
      expect(first.error.message).toContain(
        `sign-in sessions of ${dana.id} revoked, but the account could not be disabled`,
      );
      expect(first.error.retryAfterMs).toBe(5_000);
    }
    expect(graph.revoked).toEqual([dana.id]);
    expect(dana.accountEnabled).toBe(true);
    expect(await h.attempt(draft('risc.account-disabled', 'dana.lee@contoso.com'))).toMatchObject({
      ok: true,
      receipt: { detail: 'account disabled, sessions revoked' },
    });
    expect(dana.accountEnabled).toBe(false);
    expect(graph.revoked).toEqual([dana.id, dana.id]);
  });

  it('403 Authorization_RequestDenied on the revocation (missing permission) is a credential failure', async () => {
    graph.add('dana.lee@contoso.com');
    graph.api.inject(
      graphError(403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.'),
      (r) => r.path.endsWith('/revokeSignInSessions'),
    );
    const h = await start();
    expect(await h.attempt(draft('risc.account-disabled', 'dana.lee@contoso.com'))).toMatchObject({
      ok: false,
      class: 'credentials',
    });
    expect(graph.revoked).toEqual([]);
    expect(h.status()?.state).toBe('permanent_error');
  });

  it('429 with and without Retry-After, 5xx and slow answers are retryable; a malformed body is permanent', async () => {
    graph.add('dana.lee@contoso.com');
    const h = await start();
    const revokeCall = (r: FakeRequest) => r.path.endsWith('/revokeSignInSessions');
    graph.api.inject(
      {
        status: 429,
        headers: { 'retry-after': '7' },
        body: { error: { code: 'TooManyRequests', message: 'Too many requests' } },
      },
      revokeCall,
    );
    const limited = await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'));
    expect(limited).toMatchObject({ ok: false, class: 'retryable' });
    if (!limited.ok) expect(limited.error.retryAfterMs).toBe(7_000);
    graph.api.inject({ status: 429 }, revokeCall);
    const bare = await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'));
    if (!bare.ok) expect(bare.error.retryAfterMs).toBeUndefined();
    expect(bare.ok).toBe(false);
    graph.api.inject(
      { status: 503, body: { error: { code: 'serviceNotAvailable', message: 'Service unavailable' } } },
      revokeCall,
    );
    expect(await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).toMatchObject({
      ok: false,
      class: 'retryable',
    });
    graph.api.inject({ delayMs: 1_000, body: { value: true } }, revokeCall);
    expect(await h.attempt(draft('caep.session-revoked', 'dana.lee@contoso.com'))).toMatchObject({
      ok: false,
      class: 'retryable',
    });
    graph.api.inject(
      { status: 200, headers: { 'content-type': 'application/json' }, body: '<html>' },
      (r) => r.path === '/v1.0/users/sam%40contoso.com',
    );
    expect(await h.attempt(draft('caep.session-revoked', 'sam@contoso.com'))).toMatchObject({
      ok: false,
      class: 'permanent',
    });
    expect(
      await h.counter('microsoft_graph_actions_total', { action: 'revoke_sessions', outcome: 'retryable' }),
    ).toBe(4);
  });
});

describe('microsoft-graph: config', () => {
  const problems = (config: Record<string, unknown>) => {
    const parsed = microsoftGraph.configSchema.safeParse({
      tenant_id: TENANT,
      client_id: CLIENT_ID,
      client_secret: CLIENT_SECRET,
      ...config,
    });
    return parsed.success ? [] : parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
  };

  it('token_url over plain http is refused (the client secret goes in the form body), except to this machine', () => {
    expect(problems({ token_url: `http://login.microsoftonline.us/${TENANT}/oauth2/v2.0/token` })).toEqual([
      'token_url: must be an https URL (the credentials would travel in clear text over http); plain http only for the local machine',
    ]);
    expect(problems({ token_url: `https://login.microsoftonline.us/${TENANT}/oauth2/v2.0/token` })).toEqual(
      [],
    );
    expect(problems({ token_url: 'http://127.0.0.1:8080/token' })).toEqual([]);
    expect(problems({ token_url: 'http://localhost:8080/token' })).toEqual([]);
    expect(problems({ token_url: 'http://[::1]:8080/token' })).toEqual([]);
    expect(problems({})).toEqual([]);
  });
});
