import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import { FakeOkta } from '../../test/helpers/fake-okta.ts';
import { outboundHarness, type OutboundHarness } from '../../test/helpers/outbound.ts';
import { oktaRetryAfterMs } from './client.ts';
import { oktaUniversalLogout } from './index.ts';

const GTR = '/oauth2/v1/global-token-revocation';
const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
const PRIVATE_PEM = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
const CLIENT_ID = '0oa8f5j3ecb5w3dF35d7';

let n = 0;
function event(
  type: string,
  subject: Record<string, unknown>,
  claims: Record<string, unknown> = {},
): EventDraft {
  n += 1;
  return { type, subject: subject as EventDraft['subject'], claims, sourceRecordId: `hr-${n}` };
}
const byEmail = (email: string) => event('caep.session-revoked', { format: 'email', email });

const okta = new FakeOkta();
let harness: OutboundHarness | undefined;

beforeAll(() => okta.start());
afterAll(() => okta.close());
beforeEach(() => {
  okta.api.reset();
  okta.users.length = 0;
  okta.revocations.length = 0;
  okta.deactivations.length = 0;
  okta.clients.length = 0;
  okta.clients.push({
    clientId: CLIENT_ID,
    publicJwk: keys.publicKey.export({ format: 'jwk' }),
    scopes: ['okta.universalLogout.manage', 'okta.users.read'],
  });
});
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(config: Record<string, unknown> = {}) {
  harness = await outboundHarness(oktaUniversalLogout, {
    org_url: okta.orgUrl,
    client_id: CLIENT_ID,
    private_key: PRIVATE_PEM,
    request_timeout: '400ms',
    ...config,
  });
  return harness;
}

const calls = (path: string) => okta.api.requests.filter((r) => r.path === path);

describe('okta-universal-logout: Global Token Revocation', () => {
  it('resolves an email through the Users API, then POSTs sub_id opaque with an OAuth token (private_key_jwt)', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    const h = await start();
    const outcome = await h.attempt(byEmail('dana.lee@example.com'));
    expect(outcome).toMatchObject({ ok: true, receipt: { status: 204 } });
    const [token] = calls('/oauth2/v1/token');
    expect(token?.json).toMatchObject({
      grant_type: 'client_credentials',
      scope: 'okta.universalLogout.manage okta.users.read',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    });
    const [lookup] = calls('/api/v1/users/dana.lee@example.com');
    expect(lookup?.method).toBe('GET');
    const [revoke] = calls(GTR);
    expect(revoke?.method).toBe('POST');
    expect(revoke?.headers['content-type']).toBe('application/json');
    expect(revoke?.headers['authorization']).toMatch(/^Bearer okta-at-1-/);
    expect(revoke?.json).toEqual({ sub_id: { format: 'opaque', id: dana.id } });
    expect(okta.revocations).toEqual([{ format: 'opaque', id: dana.id }]);
  });

  it('caches the email → user id lookup and the access token', async () => {
    okta.addUser('dana.lee@example.com');
    const h = await start();
    expect((await h.attempt(byEmail('dana.lee@example.com'))).ok).toBe(true);
    expect((await h.attempt(byEmail('Dana.Lee@example.com'))).ok).toBe(true);
    expect(calls('/oauth2/v1/token')).toHaveLength(1);
    expect(okta.api.requests.filter((r) => r.path.startsWith('/api/v1/users'))).toHaveLength(1);
    expect(calls(GTR)).toHaveLength(2);
  });

  it('falls back to the primary email when the email is not a login; refuses none or several matches', async () => {
    const lee = okta.addUser('lpark', 'lee.park@example.com');
    const h = await start();
    expect((await h.attempt(byEmail('lee.park@example.com'))).ok).toBe(true);
    expect(calls('/api/v1/users')[0]?.query).toEqual({ search: 'profile.email eq "lee.park@example.com"' });
    expect(okta.revocations.at(-1)).toEqual({ format: 'opaque', id: lee.id });
    // A quoted local part is searched as itself, its quotes and backslashes escaped (the path
    // would escape them, so it is searched as a login too).
    const quoted = String.raw`"dana\\"@example.com`;
    const escaped = String.raw`"\"dana\\\\\"@example.com"`;
    await h.attempt(byEmail(quoted));
    expect(calls('/api/v1/users').at(-1)?.query).toEqual({
      search: `profile.login eq ${escaped} or profile.email eq ${escaped}`,
    });
    const nobody = await h.attempt(byEmail('nobody@example.com'));
    expect(nobody).toMatchObject({ ok: false, class: 'permanent' });
    if (!nobody.ok)
      expect(nobody.error.message).toContain('no Okta user has the login or email nobody@example.com');
    okta.addUser('shared1', 'shared@example.com');
    okta.addUser('shared2', 'shared@example.com');
    const twice = await h.attempt(byEmail('shared@example.com'));
    expect(twice).toMatchObject({ ok: false, class: 'permanent' });
    if (!twice.ok) expect(twice.error.message).toMatch(/2 Okta users have the email/);
  });

  it('sends Okta user ids as they are, iss_sub from an external IdP as iss_sub, with no lookup', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    const h = await start();
    expect((await h.attempt(event('risc.account-disabled', { format: 'opaque', id: dana.id }))).ok).toBe(
      true,
    );
    const external = { format: 'iss_sub', iss: 'https://idp.example.org', sub: 'u-4411' };
    expect(
      (await h.attempt(event('risc.credential-compromise', external, { credential_type: 'password' }))).ok,
    ).toBe(true);
    const own = { format: 'iss_sub', iss: `${okta.orgUrl}/`, sub: dana.id };
    expect((await h.attempt(event('caep.session-revoked', { format: 'complex', user: own }))).ok).toBe(true);
    expect(okta.revocations).toEqual([
      { format: 'opaque', id: dana.id },
      { format: 'iss_sub', iss: 'https://idp.example.org', sub: 'u-4411' },
      { format: 'opaque', id: dana.id },
    ]);
    expect(okta.api.requests.filter((r) => r.path.startsWith('/api/v1/users'))).toHaveLength(0);
  });

  it('refuses events outside trigger_on and subjects it cannot name, with a reason', async () => {
    const h = await start({ trigger_on: ['account-disabled'] });
    const notTrigger = await h.attempt(byEmail('dana.lee@example.com'));
    expect(notTrigger).toMatchObject({ ok: false, class: 'permanent' });
    if (!notTrigger.ok) {
      expect(notTrigger.error.message).toBe(
        'okta-universal-logout refuses this event: caep.session-revoked does not trigger Universal Logout (trigger_on: account-disabled)',
      );
    }
    const device = await h.attempt(event('risc.account-disabled', { format: 'opaque', id: 'device-77' }));
    if (!device.ok) {
      expect(device.error.message).toBe(
        'okta-universal-logout refuses this event: cannot find an Okta user from a subject of format opaque; send an email, an Okta user id or iss_sub',
      );
    }
    expect(device.ok).toBe(false);
    expect(calls(GTR)).toHaveLength(0);
  });

  it('RFC 9493 §3.2.8 aliases: the alias naming the Okta user most directly is used (Okta user id, this org’s iss_sub, then email); an HR iss_sub is not', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    const lee = okta.addUser('lee.park@example.com');
    const h = await start();
    const hr = { format: 'iss_sub', iss: 'https://wd5.myworkday.com/acme', sub: '21001' };
    const aliases = (...identifiers: Array<Record<string, unknown>>) =>
      event('caep.session-revoked', { format: 'aliases', identifiers });
    // The Okta user id wins over an email listed before it: no lookup, no other user.
    const withId = aliases(
      hr,
      { format: 'email', email: lee.profile.email },
      { format: 'opaque', id: dana.id },
    );
    expect((await h.attempt(withId)).ok).toBe(true);
    const ownIssSub = aliases(hr, { format: 'iss_sub', iss: okta.orgUrl, sub: dana.id });
    expect((await h.attempt(ownIssSub)).ok).toBe(true);
    expect(okta.api.requests.filter((r) => r.path.startsWith('/api/v1/users'))).toHaveLength(0);
    // Otherwise the email is looked up; the HR system's iss_sub never goes to Okta.
    expect((await h.attempt(aliases(hr, { format: 'email', email: lee.profile.email }))).ok).toBe(true);
    expect(okta.revocations).toEqual([
      { format: 'opaque', id: dana.id },
      { format: 'opaque', id: dana.id },
      { format: 'opaque', id: lee.id },
    ]);
    const unusable = await h.attempt(aliases(hr, { format: 'opaque', id: '21001' }));
    expect(unusable).toMatchObject({ ok: false, class: 'permanent' });
    if (!unusable.ok) {
      expect(unusable.error.message).toBe(
        'okta-universal-logout refuses this event: cannot find an Okta user from a subject of format aliases; send an email, an Okta user id or iss_sub',
      );
    }
    expect(calls(GTR)).toHaveLength(3);
  });

  it('vendor-formats §3.2 (opaque for Okta user ids, iss_sub for SAML/OIDC IdP users): an iss_sub of this org’s authorization servers names an Okta user', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    const h = await start();
    const byDefaultServer = { format: 'iss_sub', iss: `${okta.orgUrl}/oauth2/default`, sub: dana.id };
    expect((await h.attempt(event('caep.session-revoked', byDefaultServer))).ok).toBe(true);
    expect(okta.revocations).toEqual([{ format: 'opaque', id: dana.id }]);
    expect(okta.api.requests.filter((r) => r.path.startsWith('/api/v1/users'))).toHaveLength(0);
    // A custom authorization server may issue the login as sub: it is looked up like an email.
    const byLogin = {
      format: 'iss_sub',
      iss: `${okta.orgUrl}/oauth2/aus4f9k2XyZ7/`,
      sub: 'dana.lee@example.com',
    };
    expect((await h.attempt(event('caep.session-revoked', byLogin))).ok).toBe(true);
    expect(calls('/api/v1/users/dana.lee@example.com')).toHaveLength(1);
    // The same path on another origin is a third-party IdP.
    const elsewhere = { format: 'iss_sub', iss: 'https://idp.example.org/oauth2/default', sub: dana.id };
    expect((await h.attempt(event('caep.session-revoked', elsewhere))).ok).toBe(true);
    expect(okta.revocations).toEqual([
      { format: 'opaque', id: dana.id },
      { format: 'opaque', id: dana.id },
      elsewhere,
    ]);
  });
});

describe('okta-universal-logout: deactivating leavers (deactivate_on_account_disabled)', () => {
  const leaver = (email: string) => event('risc.account-disabled', { format: 'email', email });
  const grantManage = () => okta.clients[0]!.scopes.push('okta.users.manage');

  it('off by default: a leaver is logged out and stays active', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    const h = await start();
    expect(await h.attempt(leaver('dana.lee@example.com'))).toMatchObject({ ok: true });
    expect(okta.revocations).toEqual([{ format: 'opaque', id: dana.id }]);
    expect(okta.deactivations).toEqual([]);
    expect(dana.status).toBe('ACTIVE');
  });

  it('on: revokes, then deactivates without an email to the user; a redelivery finds them deactivated', async () => {
    grantManage();
    const dana = okta.addUser('dana.lee@example.com');
    const h = await start({ deactivate_on_account_disabled: true });
    const first = await h.attempt(leaver('dana.lee@example.com'));
    expect(first).toMatchObject({
      ok: true,
      receipt: { detail: `Okta revoked the sessions and tokens of ${dana.id}, and deactivated them` },
    });
    expect(calls('/oauth2/v1/token')[0]?.json).toMatchObject({
      scope: 'okta.universalLogout.manage okta.users.read okta.users.manage',
    });
    const order = okta.api.requests.map((r) => `${r.method} ${r.path}`).filter((r) => !r.includes('/token'));
    expect(order.slice(-3)).toEqual([
      'POST /oauth2/v1/global-token-revocation',
      `GET /api/v1/users/${dana.id}`,
      `POST /api/v1/users/${dana.id}/lifecycle/deactivate`,
    ]);
    expect(okta.deactivations).toEqual([{ id: dana.id, sendEmail: 'false' }]);
    expect(dana.status).toBe('DEPROVISIONED');
    // Delivered again (same jti after a crash): logged out again, no second deactivation.
    const again = await h.attempt(leaver('dana.lee@example.com'));
    expect(again).toMatchObject({
      ok: true,
      receipt: { detail: expect.stringMatching(/deactivated already$/) },
    });
    expect(okta.deactivations).toHaveLength(1);
    // A session revocation never deactivates.
    const lee = okta.addUser('lee@example.com');
    expect((await h.attempt(byEmail('lee@example.com'))).ok).toBe(true);
    expect(lee.status).toBe('ACTIVE');
  });

  it('a deactivation that lost the race to another one (Okta: 403 E0000038 for a deprovisioned user) is done, and flags nothing', async () => {
    grantManage();
    const dana = okta.addUser('dana.lee@example.com');
    dana.status = 'DEPROVISIONED';
    const h = await start({ deactivate_on_account_disabled: true });
    // The status read before the deactivation still says ACTIVE: someone deactivated Dana since.
    okta.api.inject(
      {
        body: {
          id: dana.id,
          status: 'ACTIVE',
          profile: { login: dana.profile.login, email: dana.profile.email },
        },
      },
      (r) => r.method === 'GET' && r.path === `/api/v1/users/${dana.id}`,
    );
    const outcome = await h.attempt(leaver('dana.lee@example.com'));
    expect(outcome).toMatchObject({
      ok: true,
      receipt: { detail: expect.stringMatching(/found them deactivated already$/) },
    });
    expect(calls(`/api/v1/users/${dana.id}/lifecycle/deactivate`)).toHaveLength(1);
    expect(okta.deactivations).toEqual([]);
    expect(h.status()?.state).not.toBe('permanent_error');
    // Being deactivated (an asynchronous deactivation under way): not deactivated a second time.
    const lee = okta.addUser('lee@example.com');
    okta.api.inject(
      { body: { id: lee.id, status: 'ACTIVE', transitioningToStatus: 'DEPROVISIONED' } },
      (r) => r.method === 'GET' && r.path === `/api/v1/users/${lee.id}`,
    );
    expect(await h.attempt(leaver('lee@example.com'))).toMatchObject({ ok: true });
    expect(calls(`/api/v1/users/${lee.id}/lifecycle/deactivate`)).toHaveLength(0);
    // Any other refusal of the deactivation is still a credential problem (an admin role missing).
    okta.api.inject(
      {
        status: 403,
        body: {
          errorCode: 'E0000006',
          errorSummary: 'You do not have permission to perform the requested action',
        },
      },
      (r) => r.method === 'POST' && r.path === `/api/v1/users/${lee.id}/lifecycle/deactivate`,
    );
    const denied = await h.attempt(leaver('lee@example.com'));
    expect(denied).toMatchObject({ ok: false, class: 'credentials' });
    if (!denied.ok) expect(denied.error.message).toContain('403 E0000006');
    expect(lee.status).toBe('ACTIVE');
  });

  it('on without the okta.users.manage grant: a credential problem, flagged', async () => {
    okta.addUser('dana.lee@example.com');
    const h = await start({ deactivate_on_account_disabled: true });
    expect(await h.attempt(leaver('dana.lee@example.com'))).toMatchObject({
      ok: false,
      class: 'credentials',
    });
    expect(h.status()?.state).toBe('permanent_error');
  });

  it('a user of another IdP (iss_sub) is logged out but cannot be deactivated: refused with the reason', async () => {
    grantManage();
    const h = await start({ deactivate_on_account_disabled: true });
    const outcome = await h.attempt(
      event('risc.account-disabled', { format: 'iss_sub', iss: 'https://idp.example.com', sub: 'u-7' }),
    );
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (!outcome.ok)
      expect(outcome.error.message).toMatch(/cannot deactivate a user named by another issuer/);
    expect(okta.revocations).toHaveLength(1);
  });
});

describe('okta-universal-logout: an app that requires DPoP (Okta’s default for API Services apps)', () => {
  it('gets a DPoP-bound token after Okta’s nonce round and proves the key on the lookup and the revocation', async () => {
    okta.clients[0]!.requireDpop = true;
    const dana = okta.addUser('dana.lee+ops@example.com');
    const h = await start();
    const outcome = await h.attempt(byEmail('dana.lee+ops@example.com'));
    expect(outcome).toMatchObject({ ok: true, receipt: { status: 204 } });
    // No proof → invalid_dpop_proof; a proof → use_dpop_nonce; a proof with the nonce → the token.
    expect(calls('/oauth2/v1/token').map((r) => typeof r.headers['dpop'])).toEqual([
      'undefined',
      'string',
      'string',
    ]);
    // Okta checks htu against the decoded path: the login goes unescaped, "@" and "+" as they are.
    const [lookup] = calls('/api/v1/users/dana.lee+ops@example.com');
    expect(lookup?.headers['authorization']).toMatch(/^DPoP okta-at-/);
    expect(calls(GTR)[0]?.headers['authorization']).toMatch(/^DPoP okta-at-/);
    expect(okta.revocations).toEqual([{ format: 'opaque', id: dana.id }]);
    expect(h.status()?.state).not.toBe('permanent_error');
  });
});

describe('okta-universal-logout: logins a URL path would escape', () => {
  // Okta compares a DPoP proof's htu with the request's path decoded; the proof names the path as
  // sent, so a login escaped in it (%23, %C3%A9 …) fails with invalid_dpop_proof. The search
  // query is no part of htu (RFC 9449 §4.2).
  const logins = [
    'dana#ops@example.com',
    'jos\u00e9@example.com',
    'dana%ops@example.com',
    'dana/ops@example.com',
    'dana?ops@example.com',
  ];

  it('RFC 9449 §4.2: with DPoP, such a login is found with the search query, never the path, and logged out', async () => {
    okta.clients[0]!.requireDpop = true;
    const users = logins.map((login) => okta.addUser(login));
    const h = await start();
    for (const [i, login] of logins.entries()) {
      const outcome = await h.attempt(byEmail(login));
      expect(outcome, login).toMatchObject({ ok: true, receipt: { status: 204 } });
      expect(calls('/api/v1/users').at(-1)?.query, login).toEqual({
        search: `profile.login eq "${login}" or profile.email eq "${login}"`,
      });
      expect(okta.revocations.at(-1)).toEqual({ format: 'opaque', id: users[i]!.id });
    }
    // No lookup went by path.
    expect(okta.api.requests.filter((r) => r.path.startsWith('/api/v1/users/'))).toEqual([]);
    expect(calls(GTR).every((r) => r.headers['authorization']?.startsWith('DPoP '))).toBe(true);
  });

  it('the search finds a user by primary email too; a login match wins; two email matches are refused', async () => {
    const byMail = okta.addUser('dlee', 'dana#ops@example.com');
    const h = await start();
    expect((await h.attempt(byEmail('dana#ops@example.com'))).ok).toBe(true);
    expect(okta.revocations.at(-1)).toEqual({ format: 'opaque', id: byMail.id });
    // Another user has that login: the login is unique, and names the user.
    const byLogin = okta.addUser('sam#it@example.com', 'sam@example.com');
    okta.addUser('sam2', 'sam#it@example.com');
    expect((await h.attempt(byEmail('sam#it@example.com'))).ok).toBe(true);
    expect(okta.revocations.at(-1)).toEqual({ format: 'opaque', id: byLogin.id });
    okta.addUser('twin1', 'twin#x@example.com');
    okta.addUser('twin2', 'twin#x@example.com');
    const twice = await h.attempt(byEmail('twin#x@example.com'));
    expect(twice).toMatchObject({ ok: false, class: 'permanent' });
    if (!twice.ok) expect(twice.error.message).toMatch(/2 Okta users have the email twin#x@example.com/);
    const nobody = await h.attempt(byEmail('nobody#x@example.com'));
    expect(nobody).toMatchObject({ ok: false, class: 'permanent' });
    if (!nobody.ok) expect(nobody.error.message).toContain('no Okta user has the login or email');
  });
});

describe('okta-universal-logout: failures', () => {
  it('a missing scope is a credential problem: the token request is refused and the instance is flagged', async () => {
    okta.clients[0]!.scopes = ['okta.users.read'];
    okta.addUser('dana.lee@example.com');
    const h = await start();
    const outcome = await h.attempt(byEmail('dana.lee@example.com'));
    expect(outcome).toMatchObject({ ok: false, class: 'credentials' });
    expect(h.status()?.state).toBe('permanent_error');
  });

  it('403 from Global Token Revocation flags the instance', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    okta.api.inject(
      {
        status: 403,
        body: {
          errorCode: 'E0000006',
          errorSummary: 'You do not have permission to perform the requested action',
        },
      },
      (r) => r.path === GTR,
    );
    const h = await start();
    const outcome = await h.attempt(event('caep.session-revoked', { format: 'opaque', id: dana.id }));
    expect(outcome).toMatchObject({ ok: false, class: 'credentials' });
    expect(h.status()).toMatchObject({ state: 'permanent_error' });
  });

  it('429 waits for X-Rate-Limit-Reset; without it the core backoff applies; 5xx and slow answers retry', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    const h = await start();
    const draft = () => event('caep.session-revoked', { format: 'opaque', id: dana.id });
    const reset = String(Math.floor(Date.now() / 1000) + 30);
    okta.api.inject(
      { status: 429, headers: { 'x-rate-limit-remaining': '0', 'x-rate-limit-reset': reset } },
      (r) => r.path === GTR,
    );
    const limited = await h.attempt(draft());
    expect(limited).toMatchObject({ ok: false, class: 'retryable' });
    if (!limited.ok) expect(limited.error.retryAfterMs).toBeGreaterThan(25_000);
    // RFC 9110 §10.2.3: Retry-After as an HTTP date is honoured like seconds.
    okta.api.inject(
      { status: 429, headers: { 'retry-after': new Date(Date.now() + 90_000).toUTCString() } },
      (r) => r.path === GTR,
    );
    const dated = await h.attempt(draft());
    if (!dated.ok) expect(dated.error.retryAfterMs).toBeGreaterThan(80_000);
    expect(dated.ok).toBe(false);
    okta.api.inject({ status: 429 }, (r) => r.path === GTR);
    const bare = await h.attempt(draft());
    if (!bare.ok) expect(bare.error.retryAfterMs).toBeUndefined();
    expect(bare.ok).toBe(false);
    okta.api.inject({ status: 502, body: '<html>Bad gateway</html>' }, (r) => r.path === GTR);
    expect(await h.attempt(draft())).toMatchObject({ ok: false, class: 'retryable' });
    okta.api.inject({ status: 204, delayMs: 1_000 }, (r) => r.path === GTR);
    expect(await h.attempt(draft())).toMatchObject({ ok: false, class: 'retryable' });
    expect(await h.counter('okta_universal_logout_revocations_total', { outcome: 'retryable' })).toBe(5);
  });

  it('Okta rate limits: a 429 from the org authorization server’s token endpoint also waits for X-Rate-Limit-Reset', async () => {
    okta.addUser('dana.lee@example.com');
    const h = await start();
    const reset = Math.floor(Date.now() / 1000) + 45;
    okta.api.inject(
      {
        status: 429,
        headers: {
          'x-rate-limit-limit': '600',
          'x-rate-limit-remaining': '0',
          'x-rate-limit-reset': String(reset),
        },
        body: {
          errorCode: 'E0000047',
          errorSummary: 'API call exceeded rate limit due to too many requests.',
        },
      },
      (r) => r.path === '/oauth2/v1/token',
    );
    const limited = await h.attempt(byEmail('dana.lee@example.com'));
    expect(limited).toMatchObject({ ok: false, class: 'retryable' });
    if (!limited.ok) {
      expect(limited.error.code).toBe('SSF_ERR_HTTP_RATE_LIMITED');
      expect(limited.error.retryAfterMs).toBeGreaterThan(40_000);
      expect(limited.error.retryAfterMs).toBeLessThanOrEqual(45_000);
    }
    expect(calls(GTR)).toHaveLength(0);
    // Once the window has passed, the next attempt gets its token and logs the user out.
    expect(await h.attempt(byEmail('dana.lee@example.com'))).toMatchObject({ ok: true });
  });

  it('user_cache_ttl counts from the lookup: using the cached id does not keep it alive', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t0 = Date.now();
      okta.addUser('dana.lee@example.com');
      const h = await start({ user_cache_ttl: '1h' });
      const lookups = () => okta.api.requests.filter((r) => r.path.startsWith('/api/v1/users')).length;
      expect((await h.attempt(byEmail('dana.lee@example.com'))).ok).toBe(true);
      vi.setSystemTime(t0 + 40 * 60_000);
      expect((await h.attempt(byEmail('dana.lee@example.com'))).ok).toBe(true);
      expect(lookups()).toBe(1);
      // 70 minutes after the lookup (30 after the last use), the entry has expired.
      vi.setSystemTime(t0 + 70 * 60_000);
      expect((await h.attempt(byEmail('dana.lee@example.com'))).ok).toBe(true);
      expect(lookups()).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('a user deleted and created again after lookup: the 404 on the cached id looks the login up again at once', async () => {
    const dana = okta.addUser('dana.lee@example.com');
    const h = await start();
    expect((await h.attempt(byEmail('dana.lee@example.com'))).ok).toBe(true);
    okta.users.splice(okta.users.indexOf(dana), 1);
    const again = okta.addUser('dana.lee@example.com');
    expect((await h.attempt(byEmail('dana.lee@example.com'))).ok).toBe(true);
    expect(okta.revocations.at(-1)).toEqual({ format: 'opaque', id: again.id });
    expect(okta.api.requests.filter((r) => r.path.startsWith('/api/v1/users'))).toHaveLength(2);
    // Deleted for good: the fresh lookup finds nobody, a permanent refusal.
    okta.users.splice(okta.users.indexOf(again), 1);
    const gone = await h.attempt(byEmail('dana.lee@example.com'));
    expect(gone).toMatchObject({ ok: false, class: 'permanent' });
    if (!gone.ok)
      expect(gone.error.message).toContain('no Okta user has the login or email dana.lee@example.com');
  });

  it('a malformed Users API answer is permanent; no secret reaches the logs', async () => {
    okta.api.inject({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"id": ' }, (r) =>
      r.path.startsWith('/api/v1/users'),
    );
    const h = await start();
    expect(await h.attempt(byEmail('dana.lee@example.com'))).toMatchObject({ ok: false, class: 'permanent' });
    const logged = h.logText();
    expect(logged).not.toContain(PRIVATE_PEM.split('\n')[1]);
    expect(logged).not.toMatch(/okta-at-\d+-/);
  });

  it('a malformed private key fails at start, naming the field', async () => {
    expect(() =>
      oktaUniversalLogout.configSchema.parse({ org_url: okta.orgUrl, client_id: 'c', private_key: 'x' }),
    ).not.toThrow();
    await expect(start({ private_key: 'not-a-key' })).rejects.toThrow(
      /auth.privateKey: is not a private key/,
    );
  });
});

describe('okta-universal-logout: the wait a 429 names', () => {
  const now = Date.UTC(2026, 0, 1, 12, 0, 0);
  const at = (ms: number) => String(Math.floor(ms / 1000));

  it('reads X-Rate-Limit-Reset as the core HTTP client does: bounded, never guessed at', () => {
    expect(oktaRetryAfterMs({ 'x-rate-limit-reset': at(now + 30_000) }, now)).toBe(30_000);
    // Retry-After wins when both are sent.
    expect(oktaRetryAfterMs({ 'retry-after': '5', 'x-rate-limit-reset': at(now + 30_000) }, now)).toBe(5_000);
    // A window already past asks for no wait of its own: the delivery's backoff is the floor.
    expect(oktaRetryAfterMs({ 'x-rate-limit-reset': at(now - 60_000) }, now)).toBe(0);
    // Absurdly far ahead: at most an hour.
    expect(oktaRetryAfterMs({ 'x-rate-limit-reset': at(now + 30 * 86_400_000) }, now)).toBe(3_600_000);
    // A count of seconds (no epoch time) or no number at all: the core backoff applies.
    for (const reset of ['60', '0', '-5', '', 'soon', '1e10']) {
      expect(oktaRetryAfterMs({ 'x-rate-limit-reset': reset }, now), reset).toBeUndefined();
    }
    expect(oktaRetryAfterMs({}, now)).toBeUndefined();
  });
});
