import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EventDraft } from '../../core/plugin-api/index.ts';
import { FakeApi, type FakeRequest, type FakeResponse } from '../../test/helpers/fake-api.ts';
import { outboundHarness, type OutboundHarness } from '../../test/helpers/outbound.ts';
import { slack } from './index.ts';

const TOKEN = 'xoxp-1234567890-0987654321-abcdefABCDEF';

/** The Slack Web API methods involved: errors come back as HTTP 200 `{ok: false, error}`. */
class FakeSlack {
  readonly users = new Map<string, string>();
  readonly resets: Array<Record<string, unknown>> = [];
  scopes = ['admin.users:write', 'users:read.email'];
  readonly api = new FakeApi((req) => this.#route(req));

  #answer(body: Record<string, unknown>): FakeResponse {
    return {
      headers: { 'content-type': 'application/json; charset=utf-8', 'x-slack-req-id': 'req-1' },
      body,
    };
  }

  #route(req: FakeRequest): FakeResponse {
    if (req.headers['authorization'] !== `Bearer ${TOKEN}`)
      return this.#answer({ ok: false, error: 'invalid_auth' });
    const need = (scope: string) =>
      this.scopes.includes(scope)
        ? undefined
        : this.#answer({ ok: false, error: 'missing_scope', needed: scope, provided: this.scopes.join(',') });
    if (req.method === 'GET' && req.path === '/api/users.lookupByEmail') {
      const missing = need('users:read.email');
      if (missing) return missing;
      const id = this.users.get((req.query.email ?? '').toLowerCase());
      return this.#answer(
        id
          ? { ok: true, user: { id, team_id: 'T0EXAMPLE', profile: { email: req.query.email } } }
          : { ok: false, error: 'users_not_found' },
      );
    }
    if (req.method === 'POST' && req.path === '/api/admin.users.session.reset') {
      const missing = need('admin.users:write');
      if (missing) return missing;
      const body = req.json as Record<string, unknown>;
      if (![...this.users.values()].includes(String(body?.user_id)))
        return this.#answer({ ok: false, error: 'user_not_found' });
      this.resets.push(body);
      return this.#answer({ ok: true });
    }
    return this.#answer({ ok: false, error: 'unknown_method' });
  }
}

const fake = new FakeSlack();
let harness: OutboundHarness | undefined;
beforeAll(() => fake.api.start());
afterAll(() => fake.api.close());
beforeEach(() => {
  fake.api.reset();
  fake.users.clear();
  fake.resets.length = 0;
  fake.scopes = ['admin.users:write', 'users:read.email'];
  fake.users.set('dana.lee@example.com', 'W012A3CDE');
});
afterEach(async () => {
  await harness?.stop();
  harness = undefined;
});

async function start(config: Record<string, unknown> = {}) {
  harness = await outboundHarness(slack, {
    token: TOKEN,
    api_url: `${fake.api.url}/api`,
    request_timeout: '400ms',
    ...config,
  });
  return harness;
}

let n = 0;
function draft(type = 'caep.session-revoked', email = 'dana.lee@example.com'): EventDraft {
  n += 1;
  return { type, subject: { format: 'email', email }, sourceRecordId: `rec-${n}` };
}

describe('slack: session reset', () => {
  it('looks the user up by email, then calls admin.users.session.reset with a JSON body', async () => {
    const h = await start();
    expect(await h.attempt(draft())).toMatchObject({
      ok: true,
      receipt: { status: 200, detail: 'Slack sessions of W012A3CDE reset (all)' },
    });
    const [lookup, reset] = fake.api.requests;
    expect(lookup).toMatchObject({
      method: 'GET',
      path: '/api/users.lookupByEmail',
      query: { email: 'dana.lee@example.com' },
    });
    expect(lookup?.headers['authorization']).toBe(`Bearer ${TOKEN}`);
    expect(reset).toMatchObject({
      method: 'POST',
      path: '/api/admin.users.session.reset',
      json: { user_id: 'W012A3CDE' },
    });
    expect(reset?.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(h.logText()).not.toContain(TOKEN);
  });

  it('a cached id Slack no longer knows (user_not_found: the account was deleted, the email is another’s now) is looked up again in the same attempt', async () => {
    const h = await start();
    expect((await h.attempt(draft())).ok).toBe(true);
    fake.users.set('dana.lee@example.com', 'W0NEWDANA1');
    expect(await h.attempt(draft())).toMatchObject({
      ok: true,
      receipt: { detail: 'Slack sessions of W0NEWDANA1 reset (all)' },
    });
    expect(fake.resets).toEqual([{ user_id: 'W012A3CDE' }, { user_id: 'W0NEWDANA1' }]);
    const lookups = () => fake.api.requests.filter((r) => r.path === '/api/users.lookupByEmail');
    expect(lookups()).toHaveLength(2);
    // The new id is cached: the next event needs no lookup.
    expect((await h.attempt(draft())).ok).toBe(true);
    expect(lookups()).toHaveLength(2);
    expect(fake.resets.at(-1)).toEqual({ user_id: 'W0NEWDANA1' });
  });

  it('a cached id whose account is gone, with no account for the email now, is refused as unknown', async () => {
    const h = await start();
    expect((await h.attempt(draft())).ok).toBe(true);
    fake.users.clear();
    const gone = await h.attempt(draft());
    expect(gone).toMatchObject({ ok: false, class: 'permanent' });
    if (!gone.ok) expect(gone.error.message).toContain('no Slack user has the email dana.lee@example.com');
  });

  it('user_cache_ttl counts from the lookup: using the cached id does not keep it alive', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t0 = Date.now();
      const h = await start({ user_cache_ttl: '1h' });
      const lookups = () => fake.api.requests.filter((r) => r.path === '/api/users.lookupByEmail').length;
      expect((await h.attempt(draft())).ok).toBe(true);
      vi.setSystemTime(t0 + 40 * 60_000);
      expect((await h.attempt(draft())).ok).toBe(true);
      expect(lookups()).toBe(1);
      // 70 minutes after the lookup (30 after the last use), the entry has expired.
      vi.setSystemTime(t0 + 70 * 60_000);
      expect((await h.attempt(draft())).ok).toBe(true);
      expect(lookups()).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('reuses the user lookup, and resets web or mobile sessions only when asked', async () => {
    const h = await start({ sessions: 'web' });
    expect((await h.attempt(draft())).ok).toBe(true);
    expect((await h.attempt(draft('risc.account-disabled', 'DANA.LEE@example.com'))).ok).toBe(true);
    expect(fake.api.requests.filter((r) => r.path === '/api/users.lookupByEmail')).toHaveLength(1);
    expect(fake.resets).toEqual([
      { user_id: 'W012A3CDE', web_only: true },
      { user_id: 'W012A3CDE', web_only: true },
    ]);
    await h.stop();
    const mobile = await start({ sessions: 'mobile' });
    expect((await mobile.attempt(draft())).ok).toBe(true);
    expect(fake.resets.at(-1)).toEqual({ user_id: 'W012A3CDE', mobile_only: true });
  });

  it('refuses unknown users, events outside trigger_on and subjects without an email', async () => {
    const h = await start({ trigger_on: ['account-disabled'] });
    const notTrigger = await h.attempt(draft());
    if (!notTrigger.ok)
      expect(notTrigger.error.message).toMatch(/caep.session-revoked does not reset Slack sessions/);
    const nobody = await h.attempt(draft('risc.account-disabled', 'nobody@example.com'));
    expect(nobody).toMatchObject({ ok: false, class: 'permanent' });
    if (!nobody.ok) expect(nobody.error.message).toContain('no Slack user has the email nobody@example.com');
    const device = await h.attempt({
      type: 'risc.account-disabled',
      subject: { format: 'opaque', id: 'd' },
      sourceRecordId: 'd',
    });
    expect(device).toMatchObject({ ok: false, class: 'permanent' });
    expect(fake.resets).toHaveLength(0);
  });
});

describe('slack: errors', () => {
  it('invalid_auth and missing_scope (HTTP 200, ok: false) are credential failures', async () => {
    const wrong = await start({ token: 'xoxp-wrong-token-000000' });
    expect(await wrong.attempt(draft())).toMatchObject({ ok: false, class: 'credentials' });
    await wrong.stop();
    fake.scopes = ['users:read.email'];
    const h = await start();
    const missing = await h.attempt(draft());
    expect(missing).toMatchObject({ ok: false, class: 'credentials' });
    if (!missing.ok) expect(missing.error.message).toContain('missing_scope (needs admin.users:write)');
  });

  it('ratelimited and fatal_error retry; HTTP 429 keeps Retry-After; 5xx and slow answers retry; malformed answers are permanent', async () => {
    const h = await start();
    const reset = (r: FakeRequest) => r.path === '/api/admin.users.session.reset';
    fake.api.inject(
      { status: 429, headers: { 'retry-after': '30' }, body: { ok: false, error: 'ratelimited' } },
      reset,
    );
    const limited = await h.attempt(draft());
    expect(limited).toMatchObject({ ok: false, class: 'retryable' });
    if (!limited.ok) expect(limited.error.retryAfterMs).toBe(30_000);
    fake.api.inject({ status: 429 }, reset);
    const bare = await h.attempt(draft());
    if (!bare.ok) expect(bare.error.retryAfterMs).toBeUndefined();
    fake.api.inject({ body: { ok: false, error: 'fatal_error' } }, reset);
    expect(await h.attempt(draft())).toMatchObject({ ok: false, class: 'retryable' });
    fake.api.inject({ status: 503, body: 'upstream connect error' }, reset);
    expect(await h.attempt(draft())).toMatchObject({ ok: false, class: 'retryable' });
    fake.api.inject({ delayMs: 1_000, body: { ok: true } }, reset);
    expect(await h.attempt(draft())).toMatchObject({ ok: false, class: 'retryable' });
    fake.api.inject({ body: { ok: false, error: 'invalid_arguments' } }, reset);
    expect(await h.attempt(draft())).toMatchObject({ ok: false, class: 'permanent' });
    fake.api.inject({ headers: { 'content-type': 'text/html' }, body: '<html>' }, reset);
    expect(await h.attempt(draft())).toMatchObject({ ok: false, class: 'permanent' });
    fake.api.inject({ body: { ok: true } }, (r) => r.path === '/api/users.lookupByEmail');
    expect(await h.attempt(draft('caep.session-revoked', 'new.person@example.com'))).toMatchObject({
      ok: false,
      class: 'permanent',
    });
    expect(await h.counter('slack_session_resets_total', { outcome: 'retryable' })).toBe(5);
  });
});
