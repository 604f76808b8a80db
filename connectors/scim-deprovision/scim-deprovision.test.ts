import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import { FakeApi, type FakeRequest, type FakeResponse } from '../../test/helpers/fake-api.ts';
import { outboundHarness, type OutboundHarness } from '../../test/helpers/outbound.ts';
import { scimDeprovision } from './index.ts';

const TOKEN = 'scim-bearer-token-9a8b7c6d';
const BASE = '/scim/v2';
const ERROR = 'urn:ietf:params:scim:api:messages:2.0:Error';

interface ScimUser {
  id: string;
  userName: string;
  emails: Array<{ value: string; primary: boolean }>;
  active: boolean;
}

/** A SCIM 2.0 service provider (RFC 7643/7644): Users search, PATCH and DELETE. */
class FakeScim {
  readonly users: ScimUser[] = [];
  bearer = TOKEN;
  /** Filters this server does not apply: it answers them with every user, as some servers do. */
  ignores: Array<'userName' | 'emails'> = [];
  /** Methods this server does not route on /Users/{id}: it answers them 404 "Endpoint not found". */
  unrouted: Array<'PATCH' | 'DELETE'> = [];
  /** Users someone else deletes just as our PATCH or DELETE arrives (a race with another admin). */
  deletedByOthers = new Set<string>();
  readonly api = new FakeApi((req) => this.#route(req));

  add(userName: string, email = userName, active = true): ScimUser {
    const user = { id: randomUUID(), userName, emails: [{ value: email, primary: true }], active };
    this.users.push(user);
    return user;
  }

  #resource(u: ScimUser) {
    return {
      schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
      ...u,
      meta: { resourceType: 'User', location: `${this.api.url}${BASE}/Users/${u.id}` },
    };
  }

  #error(status: number, detail: string, scimType?: string): FakeResponse {
    return {
      status,
      headers: { 'content-type': 'application/scim+json' },
      body: { schemas: [ERROR], status: String(status), ...(scimType ? { scimType } : {}), detail },
    };
  }

  #route(req: FakeRequest): FakeResponse {
    if (req.headers['authorization'] !== `Bearer ${this.bearer}`)
      return this.#error(401, 'Authorization failure');
    if (req.method === 'GET' && req.path === `${BASE}/Users`) {
      const filter = req.query.filter ?? '';
      const byName = /^userName eq "(.*)"$/.exec(filter);
      const byEmail = /^emails\[value eq "(.*)"\]$/.exec(filter);
      if (!byName && !byEmail) return this.#error(400, `Unsupported filter: ${filter}`, 'invalidFilter');
      const value = (byName ?? byEmail)?.[1]?.toLowerCase();
      const ignored = this.ignores.includes(byName ? 'userName' : 'emails');
      const found = this.users.filter(
        (u) =>
          ignored ||
          (byName
            ? u.userName.toLowerCase() === value
            : u.emails.some((e) => e.value.toLowerCase() === value)),
      );
      return {
        headers: { 'content-type': 'application/scim+json' },
        body: {
          schemas: ['urn:ietf:params:scim:api:messages:2.0:ListResponse'],
          totalResults: found.length,
          startIndex: 1,
          itemsPerPage: found.length,
          Resources: found.map((u) => this.#resource(u)),
        },
      };
    }
    const match = new RegExp(`^${BASE}/Users/([^/]+)$`).exec(req.path);
    if (match && this.unrouted.includes(req.method as 'PATCH' | 'DELETE')) {
      return this.#error(404, 'Endpoint not found');
    }
    const raced = this.users.findIndex((u) => u.id === match?.[1] && this.deletedByOthers.has(u.id));
    if (raced >= 0) this.users.splice(raced, 1);
    const user = this.users.find((u) => u.id === match?.[1]);
    if (!match) return this.#error(404, 'Endpoint not found');
    if (!user) return this.#error(404, `Resource ${match[1]} not found`);
    if (req.method === 'PATCH') {
      if (!/^application\/(scim\+)?json/.test(req.headers['content-type'] ?? ''))
        return this.#error(415, 'Unsupported media type');
      const body = req.json as {
        schemas?: string[];
        Operations?: Array<{ op: string; path: string; value: unknown }>;
      };
      if (!body?.schemas?.includes('urn:ietf:params:scim:api:messages:2.0:PatchOp')) {
        return this.#error(
          400,
          'Request is unparsable, syntactically incorrect, or violates schema.',
          'invalidSyntax',
        );
      }
      for (const op of body.Operations ?? []) {
        if (op.op.toLowerCase() === 'replace' && op.path === 'active') user.active = op.value === true;
      }
      return { headers: { 'content-type': 'application/scim+json' }, body: this.#resource(user) };
    }
    if (req.method === 'DELETE') {
      this.users.splice(this.users.indexOf(user), 1);
      return { status: 204 };
    }
    return this.#error(405, 'Method not allowed');
  }
}

const scim = new FakeScim();
let harness: OutboundHarness | undefined;
beforeAll(() => scim.api.start());
afterAll(() => scim.api.close());
beforeEach(() => {
  scim.api.reset();
  scim.users.length = 0;
  scim.bearer = TOKEN;
  scim.ignores = [];
  scim.unrouted = [];
  scim.deletedByOthers.clear();
});
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(config: Record<string, unknown> = {}) {
  harness = await outboundHarness(scimDeprovision, {
    base_url: `${scim.api.url}${BASE}`,
    token: TOKEN,
    request_timeout: '400ms',
    ...config,
  });
  return harness;
}

let n = 0;
function draft(type: string, email = 'dana.lee@example.com'): EventDraft {
  n += 1;
  return { type, subject: { format: 'email', email }, sourceRecordId: `hr-${n}` };
}
const patches = () => scim.api.requests.filter((r) => r.method === 'PATCH');
const tokenRequest = (r: FakeRequest) => r.path === '/oauth/token';

/** The next token request gets an access token the fake SCIM server accepts. */
function grantAccessToken(): void {
  scim.bearer = 'scim-oauth-access-1234';
  scim.api.inject(
    { body: { access_token: 'scim-oauth-access-1234', token_type: 'Bearer', expires_in: 600 } },
    tokenRequest,
  );
}

/** Settings with OAuth client credentials against the fake's token endpoint, instead of a token. */
function withOauth(extra: Record<string, unknown> = {}) {
  return {
    token: undefined,
    oauth: {
      token_url: `${scim.api.url}/oauth/token`,
      client_id: 'ssf-bridge',
      client_secret: 'scim-client-secret-55',
      ...extra,
    },
  };
}

describe('scim-deprovision: deactivation', () => {
  it('finds the user by userName and PATCHes active=false with a SCIM PatchOp', async () => {
    const dana = scim.add('dana.lee@example.com');
    const h = await start();
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({
      ok: true,
      receipt: { status: 200, detail: 'dana.lee@example.com deactivated' },
    });
    const [search, patch] = scim.api.requests;
    expect(search).toMatchObject({
      method: 'GET',
      path: `${BASE}/Users`,
      query: { filter: 'userName eq "dana.lee@example.com"' },
    });
    expect(search?.headers['accept']).toBe('application/scim+json, application/json');
    expect(search?.headers['authorization']).toBe(`Bearer ${TOKEN}`);
    expect(patch).toMatchObject({ method: 'PATCH', path: `${BASE}/Users/${dana.id}` });
    expect(patch?.headers['content-type']).toBe('application/scim+json');
    expect(patch?.json).toEqual({
      schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'],
      Operations: [{ op: 'replace', path: 'active', value: false }],
    });
    expect(dana.active).toBe(false);
    expect(h.logText()).not.toContain(TOKEN);
  });

  it('falls back to emails[value eq …]; a user nowhere to be found is nothing to do', async () => {
    const lee = scim.add('lpark', 'lee.park@example.com');
    const h = await start();
    expect((await h.attempt(draft('risc.account-disabled', 'lee.park@example.com'))).ok).toBe(true);
    expect(scim.api.requests[1]?.query).toEqual({ filter: 'emails[value eq "lee.park@example.com"]' });
    expect(lee.active).toBe(false);
    expect(await h.attempt(draft('risc.account-disabled', 'nobody@example.com'))).toMatchObject({
      ok: true,
      receipt: { detail: 'no SCIM user has the userName or email nobody@example.com; nothing to do' },
    });
    expect(patches()).toHaveLength(1);
  });

  it('RFC 7644 §3.4.2: an answer that is no ListResponse is a permanent error, never "nobody, nothing to do"', async () => {
    scim.add('dana.lee@example.com');
    const h = await start();
    const search = (r: FakeRequest) => r.method === 'GET';
    for (const body of [
      '',
      '{"message":"welcome to the portal"}',
      '{"totalResults":1,"Resources":{"id":"x"}}',
      '{"totalResults":1,"Resources":[null]}',
    ]) {
      scim.api.inject({ status: 200, headers: { 'content-type': 'application/json' }, body }, search);
      const result = await h.attempt(draft('risc.account-disabled'));
      expect(result, body).toMatchObject({ ok: false, class: 'permanent' });
      if (!result.ok)
        expect(result.error.message).toContain('the SCIM search answered without a ListResponse of users');
    }
    expect(patches()).toHaveLength(0);
  });

  it('RFC 7644 §3.4.2.2: a server that refuses the emails filter (400 invalidFilter) has not said there is nobody: dead-lettered with the reason', async () => {
    // A user whose userName is not their email: only the email search would find them.
    scim.add('dlee', 'dana.lee@example.com');
    const h = await start();
    scim.api.inject(
      {
        status: 400,
        body: { schemas: [ERROR], status: '400', scimType: 'invalidFilter', detail: 'Unsupported filter' },
      },
      (r) => r.method === 'GET' && (r.query.filter ?? '').startsWith('emails['),
    );
    const outcome = await h.attempt(draft('risc.account-disabled', 'dana.lee@example.com'));
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (!outcome.ok) {
      expect(outcome.error.code).toBe('SSF_ERR_SCIM_EMAIL_SEARCH_UNSUPPORTED');
      expect(outcome.error.message).toContain(
        'the SCIM server cannot search by email: no user has the userName dana.lee@example.com',
      );
    }
    expect(patches()).toHaveLength(0);
    expect(await h.counter('scim_deprovision_actions_total', { outcome: 'permanent' })).toBe(1);
    // Both searches answered and found nobody: nothing to do.
    expect(await h.attempt(draft('risc.account-disabled', 'gone@example.com'))).toMatchObject({
      ok: true,
      receipt: { detail: 'no SCIM user has the userName or email gone@example.com; nothing to do' },
    });
  });

  it('RFC 7644 §3.4.2.2: a server that ignores the filter and answers with other users gets nobody deprovisioned, never the wrong user', async () => {
    const bob = scim.add('bob.stone@example.com');
    const h = await start({ delete_on_purge: true });
    scim.ignores = ['userName'];
    const byName = await h.attempt(draft('risc.account-disabled'));
    expect(byName).toMatchObject({ ok: false, class: 'permanent' });
    if (!byName.ok) {
      expect(byName.error.code).toBe('SSF_ERR_SCIM_FILTER_IGNORED');
      expect(byName.error.message).toContain('does not apply the filter');
    }
    // The userName filter works, the emails filter is ignored: the fallback finds bob, not dana.
    scim.ignores = ['emails'];
    const byEmail = await h.attempt(draft('risc.account-disabled'));
    expect(byEmail).toMatchObject({ ok: false, class: 'permanent' });
    scim.api.reset();
    scim.ignores = ['userName', 'emails'];
    expect(await h.attempt(draft('risc.account-purged'))).toMatchObject({ ok: false, class: 'permanent' });
    expect(scim.api.requests.filter((r) => r.method === 'GET')).toHaveLength(1);
    expect(patches()).toHaveLength(0);
    expect(scim.api.requests.filter((r) => r.method === 'DELETE')).toHaveLength(0);
    expect(bob.active).toBe(true);
    expect(scim.users).toContain(bob);
    // Once the server applies its filters, the leaver is found and deactivated.
    scim.ignores = [];
    const dana = scim.add('dana.lee@example.com');
    expect((await h.attempt(draft('risc.account-disabled'))).ok).toBe(true);
    expect(dana.active).toBe(false);
  });

  it('RFC 3986 §5.2.4: a user id that is a dot-segment is refused, never sent as /Users/.. (the collection) whose 404 would read as "already gone"', async () => {
    const h = await start({ delete_on_purge: true });
    for (const [id, type] of [
      ['..', 'risc.account-disabled'],
      ['.', 'risc.account-purged'],
    ] as const) {
      scim.users.length = 0;
      scim.add('dana.lee@example.com').id = id;
      const outcome = await h.attempt(draft(type));
      expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
      if (!outcome.ok) expect(outcome.error.code).toBe('SSF_ERR_OUTBOUND_SUBJECT');
    }
    expect(scim.api.requests.filter((r) => r.method !== 'GET')).toEqual([]);
  });

  it('skips users already inactive; a 404 on the PATCH of a user the search then no longer finds means already gone; two matches are refused', async () => {
    scim.add('dana.lee@example.com', 'dana.lee@example.com', false);
    const h = await start();
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({
      ok: true,
      receipt: { detail: 'dana.lee@example.com is already inactive' },
    });
    expect(patches()).toHaveLength(0);
    const sam = scim.add('sam@example.com');
    scim.deletedByOthers.add(sam.id);
    expect(await h.attempt(draft('risc.account-disabled', 'sam@example.com'))).toMatchObject({
      ok: true,
      receipt: { status: 404, detail: 'sam@example.com was already gone' },
    });
    // The search was asked again, with the filter that found sam, before counting it done.
    expect(scim.api.requests.slice(-2).map((r) => `${r.method} ${r.query.filter ?? r.path}`)).toEqual([
      `PATCH ${BASE}/Users/${sam.id}`,
      'GET userName eq "sam@example.com"',
    ]);
    scim.add('twin', 'twin@example.com');
    scim.add('twin2', 'twin@example.com');
    const twins = await h.attempt(draft('risc.account-disabled', 'twin@example.com'));
    expect(twins).toMatchObject({ ok: false, class: 'permanent' });
  });

  it('RFC 7644 §3.5.2: a PATCH answered 404 (route not served) while the search still finds the user active is dead-lettered, never "already gone"', async () => {
    const dana = scim.add('dana.lee@example.com');
    scim.unrouted = ['PATCH'];
    const h = await start();
    const outcome = await h.attempt(draft('risc.account-disabled'));
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (!outcome.ok) {
      expect(outcome.error.code).toBe('SSF_ERR_SCIM_USER_NOT_WRITTEN');
      expect(outcome.error.message).toBe(
        `PATCH /Users/${dana.id} answered 404 (Endpoint not found), yet the search still finds dana.lee@example.com (id ${dana.id}, active): the server does not serve that PATCH for this token, or hides the user from it, so dana.lee@example.com was not deactivated; check the token's scope and the app's SCIM support, or deprovision the user in the app`,
      );
    }
    expect(dana.active).toBe(true);
    expect(h.status()?.state).not.toBe('permanent_error');
  });

  it('a PATCH answered 404 for a user found by email is checked with the email search again', async () => {
    const lee = scim.add('lpark', 'lee.park@example.com');
    scim.unrouted = ['PATCH'];
    const h = await start();
    expect(await h.attempt(draft('risc.account-disabled', 'lee.park@example.com'))).toMatchObject({
      ok: false,
      class: 'permanent',
    });
    expect(scim.api.requests.at(-1)?.query).toEqual({ filter: 'emails[value eq "lee.park@example.com"]' });
    expect(lee.active).toBe(true);
    scim.unrouted = [];
    scim.deletedByOthers.add(lee.id);
    expect(await h.attempt(draft('risc.account-disabled', 'lee.park@example.com'))).toMatchObject({
      ok: true,
      receipt: { status: 404, detail: 'lee.park@example.com was already gone' },
    });
  });

  it('RFC 7644 §3.12: a PATCH answered 501 Not Implemented is dead-lettered, not retried', async () => {
    const dana = scim.add('dana.lee@example.com');
    const h = await start();
    scim.api.inject(
      {
        status: 501,
        headers: { 'content-type': 'application/scim+json' },
        body: { schemas: [ERROR], status: '501', detail: 'PATCH is not supported' },
      },
      (r) => r.method === 'PATCH',
    );
    const outcome = await h.attempt(draft('risc.account-disabled'));
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (!outcome.ok) {
      expect(outcome.error.code).toBe('SSF_ERR_HTTP_NOT_SUPPORTED');
      expect(outcome.error.message).toContain('PATCH is not supported');
    }
    expect(dana.active).toBe(true);
  });

  it('uses OAuth client credentials when configured', async () => {
    scim.add('dana.lee@example.com');
    grantAccessToken();
    const h = await start(withOauth({ scope: 'scim.write' }));
    expect((await h.attempt(draft('risc.account-disabled'))).ok).toBe(true);
    expect(h.logText()).not.toContain('scim-client-secret-55');
    expect(h.logText()).not.toContain('scim-oauth-access-1234');
  });

  it('a 404 from the token endpoint is a failure, never a user "already gone"', async () => {
    const dana = scim.add('dana.lee@example.com');
    grantAccessToken();
    // The server refuses the token on the PATCH (rotated); the one refresh meets a 404.
    scim.api.inject(
      { status: 401, body: { schemas: [ERROR], status: '401', detail: 'token revoked' } },
      (r) => r.method === 'PATCH',
    );
    scim.api.inject({ status: 404, body: { error: 'Not Found' } }, tokenRequest);
    const h = await start(withOauth());
    const outcome = await h.attempt(draft('risc.account-disabled'));
    expect(outcome.ok).toBe(false);
    expect(scim.api.requests.filter(tokenRequest)).toHaveLength(2);
    expect(dana.active).toBe(true);
  });
});

describe('scim-deprovision: purge', () => {
  it('refuses purges unless delete_on_purge; then DELETEs, and 404 counts as done', async () => {
    const dana = scim.add('dana.lee@example.com');
    const off = await start();
    const refused = await off.attempt(draft('risc.account-purged'));
    expect(refused).toMatchObject({ ok: false, class: 'permanent' });
    if (!refused.ok)
      expect(refused.error.message).toBe(
        'scim-deprovision refuses this event: delete_on_purge is off, so purged accounts are not deleted',
      );
    await off.stop();
    const on = await start({ delete_on_purge: true });
    expect(await on.attempt(draft('risc.account-purged'))).toMatchObject({
      ok: true,
      receipt: { status: 204, detail: 'dana.lee@example.com deleted' },
    });
    expect(scim.api.requests.find((r) => r.method === 'DELETE')?.path).toBe(`${BASE}/Users/${dana.id}`);
    const sam = scim.add('sam@example.com');
    scim.deletedByOthers.add(sam.id);
    expect(await on.attempt(draft('risc.account-purged', 'sam@example.com'))).toMatchObject({
      ok: true,
      receipt: { status: 404, detail: 'sam@example.com was already gone' },
    });
  });

  it('RFC 7644 §3.6: a DELETE answered 404 while the search still finds the user is dead-lettered, never "already gone"', async () => {
    const dana = scim.add('dana.lee@example.com');
    scim.unrouted = ['DELETE'];
    const h = await start({ delete_on_purge: true });
    const outcome = await h.attempt(draft('risc.account-purged'));
    expect(outcome).toMatchObject({ ok: false, class: 'permanent' });
    if (!outcome.ok) {
      expect(outcome.error.code).toBe('SSF_ERR_SCIM_USER_NOT_WRITTEN');
      expect(outcome.error.message).toContain(
        `DELETE /Users/${dana.id} answered 404 (Endpoint not found), yet the search still finds dana.lee@example.com (id ${dana.id}, active)`,
      );
      expect(outcome.error.message).toContain('so dana.lee@example.com was not deleted');
    }
    expect(scim.users).toContain(dana);
    expect(
      await h.counter('scim_deprovision_actions_total', { action: 'delete', outcome: 'permanent' }),
    ).toBe(1);
  });

  it('refuses other events and non-user subjects', async () => {
    const h = await start();
    const other = await h.attempt(draft('caep.session-revoked'));
    if (!other.ok)
      expect(other.error.message).toMatch(
        /acts on account-disabled and account-purged, not caep.session-revoked/,
      );
    expect(other.ok).toBe(false);
    const device = await h.attempt({
      type: 'risc.account-disabled',
      subject: { format: 'opaque', id: 'x' },
      sourceRecordId: 'x',
    });
    expect(device).toMatchObject({ ok: false, class: 'permanent' });
  });
});

describe('scim-deprovision: failures', () => {
  it('401 and 403 flag the credentials; 429, 5xx and slow answers retry; bad filters and bodies are permanent', async () => {
    scim.add('dana.lee@example.com');
    scim.bearer = 'another-token';
    const h = await start();
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({
      ok: false,
      class: 'credentials',
    });
    scim.bearer = TOKEN;
    const search = (r: FakeRequest) => r.method === 'GET';
    scim.api.inject(
      { status: 403, body: { schemas: [ERROR], status: '403', detail: 'Insufficient scope' } },
      search,
    );
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({
      ok: false,
      class: 'credentials',
    });
    scim.api.inject(
      {
        status: 429,
        headers: { 'retry-after': '9' },
        body: { schemas: [ERROR], status: '429', detail: 'Too many requests' },
      },
      search,
    );
    const limited = await h.attempt(draft('risc.account-disabled'));
    if (!limited.ok) expect(limited.error.retryAfterMs).toBe(9_000);
    expect(limited.ok).toBe(false);
    scim.api.inject({ status: 429 }, search);
    const bare = await h.attempt(draft('risc.account-disabled'));
    if (!bare.ok) expect(bare.error.retryAfterMs).toBeUndefined();
    scim.api.inject(
      { status: 500, body: { schemas: [ERROR], status: '500', detail: 'Internal error' } },
      (r) => r.method === 'PATCH',
    );
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({ ok: false, class: 'retryable' });
    scim.api.inject({ delayMs: 1_000, body: {} }, search);
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({ ok: false, class: 'retryable' });
    scim.api.inject(
      {
        status: 400,
        body: { schemas: [ERROR], status: '400', scimType: 'invalidFilter', detail: 'Bad filter' },
      },
      search,
    );
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({ ok: false, class: 'permanent' });
    scim.api.inject(
      { status: 200, headers: { 'content-type': 'application/scim+json' }, body: '{"Resources": [' },
      search,
    );
    expect(await h.attempt(draft('risc.account-disabled'))).toMatchObject({ ok: false, class: 'permanent' });
    expect(
      await h.counter('scim_deprovision_actions_total', { action: 'deactivate', outcome: 'retryable' }),
    ).toBe(4);
  });

  it('needs exactly one of token and oauth', () => {
    expect(
      scimDeprovision.configSchema.safeParse({ base_url: 'https://a.example.com/scim/v2' }).success,
    ).toBe(false);
  });
});
