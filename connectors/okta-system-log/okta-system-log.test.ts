import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  PermanentError,
  RetryableError,
  z,
  type EmitOptions,
  type EventDraft,
  type HttpClient,
  type HttpClientOptions,
  type HttpRequest,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import { MockServer, memoryReceivedIds, staticDeviceDirectory } from '../../core/plugin-api/testing/index.ts';
import { FAKE_TOKEN, systemLogApi, usersApi, type FakeSystemLog } from './fake-api.ts';
import { nextLink } from './connector.ts';
import { salvageState, stateSchema } from './config.ts';
import { oktaSystemLog } from './index.ts';

/** A user suspension (one event each), as Okta logs it, numbered so tests can follow the order. */
function suspension(n: number): Record<string, unknown> {
  return {
    uuid: `uuid-${String(n).padStart(4, '0')}`,
    published: new Date(Date.UTC(2026, 0, 15, 17, 0, n)).toISOString(),
    eventType: 'user.lifecycle.suspend',
    actor: { id: '00uadmin', type: 'User', alternateId: 'it.admin@example.com' },
    target: [{ id: `00uuser${n}`, type: 'User', alternateId: `user${n}@example.com` }],
    outcome: { result: 'SUCCESS' },
  };
}

/** The plugin API's HTTP client contract, over fetch: header auth, accepted statuses, deadlines. */
function fetchClient(options: HttpClientOptions): HttpClient {
  const request = async <T>(req: HttpRequest) => {
    const headers: Record<string, string> = { ...options.headers, ...req.headers };
    if (options.auth?.type === 'header') headers[options.auth.name] = options.auth.value.reveal();
    const res = await fetch(req.url, {
      method: req.method ?? 'GET',
      headers,
      signal: AbortSignal.timeout(5_000),
    });
    const text = await res.text();
    const out = {
      status: res.status,
      headers: Object.fromEntries(res.headers),
      data: (text ? JSON.parse(text) : undefined) as T,
    };
    if ((res.status >= 200 && res.status < 300) || req.acceptStatuses?.includes(res.status)) return out;
    if (res.status === 429 || res.status >= 500) throw new RetryableError(`answered ${res.status}`);
    throw new PermanentError(`answered ${res.status}`, { authFailure: res.status === 401 });
  };
  return {
    request,
    get: (url, req) => request({ ...req, url, method: 'GET' }),
    post: (url, body, req) => request({ ...req, url, body, method: 'POST' }),
  };
}

function harness(server: MockServer, now: () => number) {
  const checkpoints = new Map<string, unknown>();
  const emitted: Array<{ events: EventDraft[]; checkpoint: EmitOptions['checkpoint'] }> = [];
  const counters = new Map<string, number>();
  /** What the instance reported: its states (`success` for a success) and error log lines. */
  const statuses: string[] = [];
  const errors: string[] = [];
  let failEmits = 0;
  let task: ((signal: AbortSignal) => Promise<void>) | undefined;
  const ctx: InboundContext = {
    instanceId: 'okta-log',
    devices: staticDeviceDirectory(),
    receivedIds: memoryReceivedIds(),
    connectorId: 'okta-system-log',
    logger: {
      trace() {},
      debug() {},
      info() {},
      warn() {},
      error: (_fields: unknown, message?: string) => void errors.push(String(message)),
      child: () => ctx.logger,
    },
    http: { create: fetchClient },
    checkpoints: { get: async (name = 'default') => checkpoints.get(name), set: async () => undefined },
    scheduler: { schedule: (_name, _options, run) => ((task = run), { stop: () => undefined }) },
    clock: { now: () => new Date(now()) },
    metrics: {
      counter: (name) => ({
        inc: (labels, value = 1) => {
          const key = `${name}${JSON.stringify(labels ?? {})}`;
          counters.set(key, (counters.get(key) ?? 0) + value);
        },
      }),
      gauge: () => ({ set: () => undefined }),
      histogram: () => ({ observe: () => undefined }),
    },
    status: {
      set: (state, reason) => void statuses.push(`${state}: ${reason}`),
      success: () => void statuses.push('success'),
    },
    signal: new AbortController().signal,
    async emit(events, options) {
      if (failEmits > 0) {
        failEmits -= 1;
        throw new RetryableError('the outbox is full');
      }
      emitted.push({ events, checkpoint: options?.checkpoint });
      if (options?.checkpoint)
        checkpoints.set(options.checkpoint.name ?? 'default', options.checkpoint.value);
      return { accepted: events.map((e) => e.sourceRecordId), duplicates: 0 };
    },
  };
  return {
    ctx,
    emitted,
    checkpoints,
    statuses,
    errors,
    ids: () => emitted.flatMap((e) => e.events.map((ev) => ev.sourceRecordId)),
    counter: (name: string, labels: Record<string, string> = {}) =>
      counters.get(`${name}${JSON.stringify(labels)}`) ?? 0,
    failNextEmit: () => void (failEmits = 1),
    run: () => task!(new AbortController().signal),
  };
}

const server = new MockServer();
let api: FakeSystemLog;
let clock = Date.UTC(2026, 0, 15, 18, 0, 0);
beforeAll(() => server.start());
afterAll(() => server.close());
beforeEach(() => {
  server.reset();
  api = systemLogApi(
    server,
    Array.from({ length: 25 }, (_, i) => suspension(i + 1)),
  );
  clock = Date.UTC(2026, 0, 15, 18, 0, 0);
});

async function started(config: Record<string, unknown> = {}) {
  return restarted(
    harness(server, () => clock),
    config,
  );
}

/** A new instance on the same checkpoints (a restart, possibly with a changed config). */
async function restarted<T extends ReturnType<typeof harness>>(t: T, config: Record<string, unknown> = {}) {
  const connector = oktaSystemLog.create(
    t.ctx,
    oktaSystemLog.configSchema.parse({
      org_url: server.url,
      auth: { type: 'ssws', token: FAKE_TOKEN },
      page_size: 10,
      ...config,
    }),
  );
  await connector.start(new AbortController().signal);
  return t;
}

const logRequests = () => server.requests.filter((r) => r.path === '/api/v1/logs');

describe('okta-system-log against a fake System Log API', () => {
  it('reads every page by following the Link cursor, committing the cursor with each page', async () => {
    const t = await started();
    await t.run();
    expect(t.ids()).toEqual(Array.from({ length: 25 }, (_, i) => `uuid-${String(i + 1).padStart(4, '0')}`));
    expect(t.emitted.map((e) => (e.checkpoint?.value as { next?: string }).next)).toEqual([
      expect.stringContaining('after=10&'),
      expect.stringContaining('after=20&'),
      expect.stringContaining('after=25&'),
    ]);
    const first = server.requests[0]!;
    expect(first.query).toMatchObject({
      sortOrder: 'ASCENDING',
      limit: '10',
      since: '2026-01-15T17:00:00.000Z',
    });
    expect(first.headers.authorization).toBe(`SSWS ${FAKE_TOKEN}`);
    // Nothing new: one request at the cursor, no events. New events: read from the cursor.
    await t.run();
    expect(t.ids()).toHaveLength(25);
    api.append(suspension(26));
    await t.run();
    expect(t.ids().at(-1)).toBe('uuid-0026');
    expect(t.counter('okta_system_log_events_read_total', { outcome: 'mapped' })).toBe(26);
  });

  it('reads the same page again after a failed emit, and never moves the cursor past it', async () => {
    const t = await started();
    t.failNextEmit();
    await expect(t.run()).rejects.toThrow('the outbox is full');
    expect(t.checkpoints.size).toBe(0);
    await t.run();
    expect(t.ids()[0]).toBe('uuid-0001');
    expect(t.ids()).toHaveLength(25);
  });

  it('stops at max_pages_per_run and continues from the cursor on the next run', async () => {
    const t = await started({ max_pages_per_run: 2 });
    await t.run();
    expect(t.ids()).toHaveLength(20);
    await t.run();
    expect(t.ids()).toHaveLength(25);
  });

  it('pauses when the rate-limit window is nearly spent and resumes after X-Rate-Limit-Reset', async () => {
    api.remaining = 3;
    api.resetAt = Math.floor(clock / 1000) + 30;
    const t = await started({ rate_limit_reserve: 2 });
    await t.run();
    // The first answer leaves 2 requests: the run stops after one page.
    expect(t.ids()).toHaveLength(10);
    expect(t.counter('okta_system_log_rate_limited_total')).toBe(1);
    const requests = server.requests.length;
    await t.run();
    expect(server.requests.length).toBe(requests);
    clock += 31_000;
    api.remaining = 100;
    await t.run();
    expect(t.ids()).toHaveLength(25);
  });

  it('answers a 429 by waiting for the reset instead of retrying, then carries on', async () => {
    api.remaining = 0;
    api.resetAt = Math.floor(clock / 1000) + 10;
    const t = await started();
    await t.run();
    expect(t.ids()).toHaveLength(0);
    expect(t.counter('okta_system_log_rate_limited_total')).toBe(1);
    clock += 11_000;
    api.remaining = undefined;
    await t.run();
    expect(t.ids()).toHaveLength(25);
  });

  it("keeps the first run's starting point when Okta answers its first request 429, across a restart", async () => {
    api.remaining = 0;
    api.resetAt = Math.floor(clock / 1000) + 600;
    const t = await started();
    await t.run();
    expect(t.checkpoints.get('cursor')).toEqual({ since: '2026-01-15T17:00:00.000Z' });
    clock += 601_000;
    api.remaining = undefined;
    await restarted(t);
    await t.run();
    expect(logRequests()[1]?.query.since).toBe('2026-01-15T17:00:00.000Z');
    expect(t.ids()).toHaveLength(25);
  });

  it("keeps the first run's starting point when its first emit fails, so a later run reads the same events", async () => {
    const t = await started();
    t.failNextEmit();
    await expect(t.run()).rejects.toThrow('the outbox is full');
    clock += 300_000;
    await t.run();
    expect(logRequests().map((r) => r.query.since)).toEqual([
      '2026-01-15T17:00:00.000Z',
      '2026-01-15T17:00:00.000Z',
      undefined,
      undefined,
    ]);
    expect(t.ids()).toHaveLength(25);
  });

  it('reads on from the last event read with the new limit after page_size is raised', async () => {
    const t = await started();
    await t.run();
    api.append(...Array.from({ length: 30 }, (_, i) => suspension(26 + i)));
    await restarted(t, { page_size: 1000 });
    const before = logRequests().length;
    await t.run();
    // One run, one page of the new size: the saved cursor would have asked for 10.
    expect(
      logRequests()
        .slice(before)
        .map((r) => r.query),
    ).toEqual([
      {
        since: suspension(25).published,
        sortOrder: 'ASCENDING',
        limit: '1000',
      },
    ]);
    // uuid-0025 is read again (since is inclusive) but not emitted again.
    expect(t.ids().slice(25)).toEqual(
      Array.from({ length: 30 }, (_, i) => `uuid-${String(26 + i).padStart(4, '0')}`),
    );
    expect(t.checkpoints.get('cursor')).toMatchObject({
      next: expect.stringContaining('limit=1000') as string,
      query: { limit: 1000 },
      since: suspension(55).published,
      seen: ['uuid-0055'],
    });
  });

  it('follows a cursor saved without its query by the limit its link asks for, reading every page', async () => {
    const t = harness(server, () => clock);
    // A cursor saved by an earlier version: the link alone, built with page_size 10.
    t.checkpoints.set('cursor', { next: `${server.url}/api/v1/logs?after=0&limit=10&sortOrder=ASCENDING` });
    await restarted(t, { page_size: 1000 });
    await t.run();
    expect(logRequests().map((r) => r.query.after)).toEqual(['0', '10', '20']);
    expect(t.ids()).toHaveLength(25);
  });

  it('applies a changed filter from the last event read on, instead of the filter in the saved cursor', async () => {
    server.reset();
    const deactivation = (n: number) => ({ ...suspension(n), eventType: 'user.lifecycle.deactivate' });
    const log = systemLogApi(server, [suspension(1), suspension(2), deactivation(3), suspension(4)]);
    const t = await started({ filter: 'eventType eq "user.lifecycle.suspend"' });
    await t.run();
    expect(t.ids()).toEqual(['uuid-0001', 'uuid-0002', 'uuid-0004']);
    log.append(deactivation(5), suspension(6));
    await restarted(t, { filter: 'eventType sw "user.lifecycle."' });
    const before = logRequests().length;
    await t.run();
    expect(logRequests()[before]?.query).toMatchObject({
      since: suspension(4).published,
      filter: 'eventType sw "user.lifecycle."',
    });
    // Events after the last one read that the old filter left out are read now; none before it.
    expect(t.emitted.slice(-1)[0]?.events.map((e) => [e.sourceRecordId, e.type])).toEqual([
      ['uuid-0005', 'risc.account-disabled'],
      ['uuid-0005', 'caep.session-revoked'],
      ['uuid-0006', 'risc.account-disabled'],
    ]);
  });

  it('refuses to follow a next link to another origin with the API token', async () => {
    server.reset();
    server.on('GET', '/api/v1/logs', () => ({
      status: 200,
      headers: { link: '<https://attacker.example/api/v1/logs?after=1>; rel="next"' },
      body: Array.from({ length: 10 }, (_, i) => suspension(i + 1)),
    }));
    const t = await started();
    await expect(t.run()).rejects.toThrow('next link to another origin (https://attacker.example)');
    expect(server.requests).toHaveLength(1);
    expect(t.emitted).toHaveLength(0);
  });

  it('never sends the API token to a cursor saved for another org: after org_url changes it starts over', async () => {
    const previousOrg = new MockServer();
    await previousOrg.start();
    try {
      systemLogApi(previousOrg, [suspension(99)]);
      const t = harness(server, () => clock);
      // The cursor the instance saved while org_url was the previous org.
      t.checkpoints.set('cursor', {
        next: `${previousOrg.url}/api/v1/logs?after=0&limit=10&sortOrder=ASCENDING`,
      });
      const connector = oktaSystemLog.create(
        t.ctx,
        oktaSystemLog.configSchema.parse({
          org_url: server.url,
          auth: { type: 'ssws', token: FAKE_TOKEN },
          page_size: 10,
        }),
      );
      await connector.start(new AbortController().signal);
      await t.run();
      expect(previousOrg.requests).toHaveLength(0);
      expect(server.requests[0]?.query).toMatchObject({ since: '2026-01-15T17:00:00.000Z' });
      expect(t.ids()).toHaveLength(25);
      expect(t.checkpoints.get('cursor')).toMatchObject({
        next: expect.stringContaining(server.url) as string,
      });
    } finally {
      await previousOrg.close();
    }
  });

  it('refuses a protocol-relative or broken next link for good, naming it', async () => {
    for (const [link, message] of [
      // Resolved against the org's scheme (the mock org is plain HTTP on loopback).
      ['//attacker.example/api/v1/logs?after=1', 'next link to another origin (http://attacker.example)'],
      ['http://[attacker', 'next link that is not a URL ("http://[attacker")'],
    ] as const) {
      server.reset();
      server.on('GET', '/api/v1/logs', () => ({
        status: 200,
        headers: { link: `<${link}>; rel="next"` },
        body: Array.from({ length: 10 }, (_, i) => suspension(i + 1)),
      }));
      const t = await started();
      const error = await t.run().then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).code).toBe('SSF_ERR_OKTA_SYSTEM_LOG_LINK');
      expect((error as Error).message).toContain(message);
      expect(server.requests).toHaveLength(1);
      expect(t.emitted).toHaveLength(0);
    }
  });

  it('a record without a uuid or with a published that is no ISO 8601 instant is counted malformed and never becomes the position: the saved cursor stays readable and is followed', async () => {
    const t = await started();
    await t.run();
    expect(t.ids()).toHaveLength(25);
    api.append(
      { ...suspension(40), uuid: '' },
      // Date.parse reads it; the checkpoint's ISO 8601 instants do not.
      { ...suspension(41), uuid: 'uuid-rfc1123', published: 'Thu, 15 Jan 2026 17:00:41 GMT' },
    );
    await t.run();
    expect(t.counter('okta_system_log_events_read_total', { outcome: 'malformed' })).toBe(2);
    const saved = t.checkpoints.get('cursor');
    expect(stateSchema.safeParse(saved).success).toBe(true);
    expect(saved).toMatchObject({ since: suspension(25).published, seen: ['uuid-0025'] });
    // The bridge is down three hours: the next run follows the saved link, not initial_lookback.
    api.append(suspension(26));
    clock += 3 * 3_600_000;
    const before = logRequests().length;
    await t.run();
    expect(logRequests()[before]?.query).toMatchObject({ after: '27' });
    expect(logRequests()[before]?.query.since).toBeUndefined();
    expect(t.ids().at(-1)).toBe('uuid-0026');
    expect(t.errors).toEqual([]);
  });

  it('a saved cursor that does not parse is salvaged: reading goes on from its next link or its last event read, with an error logged and reported', async () => {
    const t = harness(server, () => clock);
    // Written by a version whose cursor took a record with uuid "" as its position.
    t.checkpoints.set('cursor', {
      next: `${server.url}/api/v1/logs?after=20&limit=10&sortOrder=ASCENDING`,
      query: { limit: 10 },
      since: suspension(20).published,
      seen: ['', 'uuid-0020'],
      extra: true,
    });
    await restarted(t);
    await t.run();
    expect(logRequests()[0]?.query).toEqual({ after: '20', limit: '10', sortOrder: 'ASCENDING' });
    expect(t.ids()).toEqual(['uuid-0021', 'uuid-0022', 'uuid-0023', 'uuid-0024', 'uuid-0025']);
    const salvaged =
      'the saved System Log cursor was partly unreadable (seen[0], extra, left out); reading on from its next link';
    expect(t.errors).toEqual([salvaged]);
    expect(t.statuses).toEqual([`recoverable_error: ${salvaged}`]);
    expect(stateSchema.safeParse(t.checkpoints.get('cursor')).success).toBe(true);
    // The next run reads the cursor it saved, and clears the report.
    await t.run();
    expect(t.statuses.at(-1)).toBe('success');

    // Only the position parses: a new query from the last event read (since is inclusive).
    server.reset();
    api = systemLogApi(
      server,
      Array.from({ length: 25 }, (_, i) => suspension(i + 1)),
    );
    const u = harness(server, () => clock);
    u.checkpoints.set('cursor', { next: '', since: suspension(20).published, seen: ['uuid-0020'] });
    await restarted(u);
    await u.run();
    expect(logRequests()[0]?.query).toMatchObject({ since: suspension(20).published, limit: '10' });
    expect(u.ids()).toEqual(['uuid-0021', 'uuid-0022', 'uuid-0023', 'uuid-0024', 'uuid-0025']);
    expect(u.statuses[0]).toBe(
      `recoverable_error: the saved System Log cursor was partly unreadable (next, left out); reading on from its last event read (${suspension(20).published})`,
    );
  });

  it('a saved cursor with no point to read on from stops the poll with a permanent status, never restarting from initial_lookback', async () => {
    const t = harness(server, () => clock);
    t.checkpoints.set('cursor', { next: 42, since: 'yesterday', seen: ['uuid-0020'] });
    await restarted(t);
    const error = await t.run().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).code).toBe('SSF_ERR_OKTA_SYSTEM_LOG_STATE');
    const message =
      'the saved System Log cursor is not readable (next, since) and holds no point to read on from; reading from initial_lookback would skip what Okta logged since it was saved. Start the instance over with `ssf-bridge checkpoints reset okta-log` to read from initial_lookback';
    expect((error as Error).message).toBe(message);
    expect(t.statuses).toEqual([`permanent_error: ${message}`]);
    expect(t.errors).toEqual([message]);
    expect(server.requests).toHaveLength(0);
    expect(t.emitted).toHaveLength(0);
  });

  it('salvages the identifier memory entry by entry', () => {
    const at = '2026-01-15T17:00:00.000Z';
    expect(
      salvageState({
        since: at,
        users: { '00u1dana': { login: 'dana@example.com', at }, '00u2lee': { login: '', at: 'yesterday' } },
        awaiting: { '00u1dana': { uuid: 'uuid-0001', published: at }, '00u3sam': { uuid: '' } },
        seen: 'uuid-0001',
      }),
    ).toEqual({
      state: {
        since: at,
        users: { '00u1dana': { login: 'dana@example.com', at } },
        awaiting: { '00u1dana': { uuid: 'uuid-0001', published: at } },
      },
      dropped: ['users.00u2lee', 'awaiting.00u3sam', 'seen'],
    });
    expect(salvageState(['not', 'a', 'cursor'])).toEqual({ state: {}, dropped: ['cursor'] });
    expect(salvageState(JSON.parse('{"since": "2026-01-15T17:00:00.000Z", "constructor": 1}'))).toEqual({
      state: { since: '2026-01-15T17:00:00.000Z' },
      dropped: ['constructor'],
    });
  });

  it('parses Link headers with several relations', () => {
    expect(
      nextLink('<https://a.okta.com/x?after=1>; rel="self", <https://a.okta.com/x?after=2>; rel="next"'),
    ).toBe('https://a.okta.com/x?after=2');
    expect(nextLink('<https://a.okta.com/x>; rel="self"')).toBeUndefined();
    expect(nextLink(undefined)).toBeUndefined();
  });
});

describe('okta-system-log: org_url', () => {
  const parse = (org_url: string) =>
    oktaSystemLog.configSchema.safeParse({ org_url, auth: { type: 'ssws', token: FAKE_TOKEN } });
  const problem = (org_url: string) => parse(org_url).error?.issues.map((i) => `${i.path}: ${i.message}`);

  it('is the org’s origin over https: plain http to a remote host, the -admin console domain and a path are refused', () => {
    expect(problem('http://acme.okta.com')).toEqual([
      'org_url: must be an https URL (the credentials would travel in clear text over http); plain http only for the local machine',
    ]);
    expect(problem('https://acme-admin.okta.com')).toEqual([
      'org_url: is the admin console’s domain; use the org’s domain without -admin, e.g. https://example.okta.com',
    ]);
    expect(problem('https://acme.okta.com/oauth2/default')).toEqual([
      'org_url: must be the origin alone, e.g. https://example.okta.com, with no path, query or fragment',
    ]);
    expect(parse('https://acme.okta.com/').data?.org_url).toBe('https://acme.okta.com');
    expect(parse('http://127.0.0.1:8080').data?.org_url).toBe('http://127.0.0.1:8080');
  });
});

describe('okta-system-log sign-outs', () => {
  const config = (extra: Record<string, unknown> = {}) =>
    oktaSystemLog.configSchema.parse({
      org_url: 'https://acme.okta.com',
      auth: { type: 'ssws', token: FAKE_TOKEN },
      ...extra,
    });
  const signOut = {
    uuid: 'uuid-signout',
    published: '2026-01-16T18:30:00.000Z',
    eventType: 'user.session.end',
    actor: { id: '00uli', type: 'User', alternateId: 'li.wei@example.com' },
    outcome: { result: 'SUCCESS' },
  };

  it('are session-revoked by default, and ignored with sign_outs: false', () => {
    expect(oktaSystemLog.map?.(signOut, config())).toMatchObject({
      events: [{ type: 'caep.session-revoked', claims: { initiating_entity: 'user' } }],
    });
    expect(oktaSystemLog.map?.(signOut, config({ sign_outs: false }))).toEqual({
      events: [],
      ignored: 'user.session.end: sign-outs are not emitted (sign_outs: false)',
    });
    // A deactivation still revokes the user's sessions: it is not a sign-out.
    const deactivated = oktaSystemLog.map?.(
      { ...signOut, eventType: 'user.lifecycle.deactivate' },
      config({ sign_outs: false }),
    );
    expect(deactivated?.events.map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
  });

  it('name the user by Okta id when the login is no address the event catalog takes (john.smith.@)', () => {
    for (const login of ['john.smith.@example.com', 'john..smith@example.com', 'john@-corp.example.com']) {
      const mapped = oktaSystemLog.map?.(
        { ...signOut, actor: { ...signOut.actor, alternateId: login } },
        config(),
      );
      expect(
        mapped?.events.map((e) => e.subject),
        login,
      ).toEqual([{ format: 'iss_sub', iss: 'https://acme.okta.com', sub: '00uli' }]);
    }
    expect(oktaSystemLog.map?.(signOut, config())?.events[0]?.subject).toEqual({
      format: 'email',
      email: 'li.wei@example.com',
    });
  });
});

describe('okta-system-log mapping', () => {
  const config = (extra: Record<string, unknown> = {}) =>
    oktaSystemLog.configSchema.parse({
      org_url: 'https://acme.okta.com',
      auth: { type: 'ssws', token: FAKE_TOKEN },
      ...extra,
    });
  const dana = { id: '00u9dleeABCDEF123456', type: 'User', alternateId: 'dana.lee@example.com' };
  /** ThreatInsight's detection of a suspicious request, as Okta logs it. */
  const threat = (actor: Record<string, unknown>, result: string) => ({
    uuid: 'uuid-threat',
    published: '2026-01-16T10:40:00.000Z',
    eventType: 'security.threat.detected',
    displayMessage: 'Request from suspicious actor',
    actor,
    target: null,
    outcome: { result, reason: null },
    debugContext: { debugData: { requestUri: '/api/v1/authn', threatSuspected: 'true' } },
  });

  it('ignores a ThreatInsight detection whose user Okta could not identify (actor id "unknown")', () => {
    const unknown = { id: 'unknown', type: 'User', alternateId: 'unknown', displayName: 'unknown' };
    for (const result of ['ALLOW', 'DENY']) {
      const mapped = oktaSystemLog.map?.(threat(unknown, result), config());
      expect(mapped?.events, result).toEqual([]);
      expect(mapped?.ignored, result).toContain('names a user Okta could not identify');
    }
  });

  it('emits a detection Okta blocked (outcome DENY) as a risk change, while a denied action still changes nothing', () => {
    expect(oktaSystemLog.map?.(threat(dana, 'DENY'), config())?.events).toEqual([
      {
        type: 'caep.risk-level-change',
        subject: { format: 'email', email: 'dana.lee@example.com' },
        claims: { principal: 'USER', current_level: 'HIGH', risk_reason: 'Request from suspicious actor' },
        sourceRecordId: 'uuid-threat',
        occurredAt: '2026-01-16T10:40:00.000Z',
        severity: 'high',
      },
    ]);
    const deniedSuspension = { ...suspension(1), outcome: { result: 'DENY' } };
    expect(oktaSystemLog.map?.(deniedSuspension, config())).toEqual({
      events: [],
      ignored: 'user.lifecycle.suspend with outcome DENY: nothing changed',
    });
  });

  it('emits one account-purged per deletion: on delete.completed, none on delete.initiated', () => {
    const deletion = (step: string) => ({
      ...suspension(1),
      eventType: `user.lifecycle.delete.${step}`,
      target: [dana],
    });
    expect(oktaSystemLog.map?.(deletion('initiated'), config())).toEqual({
      events: [],
      ignored:
        'user.lifecycle.delete.initiated: a deletion is emitted once, as account-purged, when Okta logs user.lifecycle.delete.completed',
    });
    expect(
      oktaSystemLog.map?.(deletion('completed'), config())?.events.map((e) => [e.type, e.subject]),
    ).toEqual([['risc.account-purged', { format: 'email', email: 'dana.lee@example.com' }]]);
  });

  it('documents the defaults of poll_interval and initial_lookback in the config JSON Schema (60s, 1h)', () => {
    const schema = z.toJSONSchema(oktaSystemLog.configSchema, { io: 'input' }) as {
      properties: Record<string, { default?: unknown }>;
    };
    expect(schema.properties.poll_interval?.default).toBe('60s');
    expect(schema.properties.initial_lookback?.default).toBe('1h');
    expect(config()).toMatchObject({ poll_interval: 60_000, initial_lookback: 3_600_000 });
  });
});

const DANA = '00u9dleeABCDEF123456';

/** A System Log event as Okta writes it, for the identifier-changed cases. */
function logEvent(
  uuid: string,
  second: number,
  eventType: string,
  parts: { actor?: Record<string, unknown>; target?: unknown[]; debugData?: Record<string, unknown> },
): Record<string, unknown> {
  return {
    uuid,
    published: new Date(Date.UTC(2026, 0, 15, 17, 10, second)).toISOString(),
    eventType,
    legacyEventType: null,
    displayMessage:
      eventType === 'user.account.update_profile' ? 'Update user profile for Okta' : 'User login to Okta',
    severity: 'INFO',
    version: '0',
    actor: parts.actor ?? {
      id: '00u1adminXYZ123456789',
      type: 'User',
      alternateId: 'it.admin@example.com',
      displayName: 'IT Admin',
      detailEntry: null,
    },
    client: { ipAddress: '198.51.100.7', device: 'Computer', zone: 'null' },
    outcome: { result: 'SUCCESS', reason: null },
    target: parts.target ?? null,
    transaction: { id: 'Z2xvYmFsLXRyYW5zYWN0aW9u', type: 'WEB', detail: {} },
    debugContext: { debugData: { requestId: 'Z2xvYmFsLXRyYW5zYWN0aW9u', ...parts.debugData } },
  };
}

const signIn = (uuid: string, second: number, login: string, id = DANA) =>
  logEvent(uuid, second, 'user.session.start', {
    actor: { id, type: 'User', alternateId: login, displayName: 'Dana Lee', detailEntry: null },
  });

/** Okta names the changed attributes, not their values; the target's alternateId is not relied on. */
const profileUpdate = (uuid: string, second: number, changed: string, id = DANA) =>
  logEvent(uuid, second, 'user.account.update_profile', {
    target: [
      {
        id,
        type: 'User',
        alternateId: 'dana.kim@example.com',
        displayName: 'Dana Kim',
        detailEntry: null,
      },
    ],
    debugData: { requestUri: `/api/v1/users/${id}`, changedAttributes: changed },
  });

describe('okta-system-log: RISC identifier-changed from user.account.update_profile (RISC 1.0 §2.5)', () => {
  const identifierEvents = (t: { emitted: Array<{ events: EventDraft[] }> }) =>
    t.emitted.flatMap((e) => e.events).filter((e) => e.type === 'risc.identifier-changed');
  const userReads = () => server.requests.filter((r) => r.path.startsWith('/api/v1/users/'));

  it('reads the user after a login change and names the old login as subject, the new one as new-value', async () => {
    server.reset();
    systemLogApi(server, [
      signIn('uuid-in', 1, 'Dana.Lee@example.com'),
      profileUpdate('uuid-upd', 5, 'lastName, login, email'),
    ]);
    const users = usersApi(server);
    users.put({ id: DANA, login: 'dana.kim@example.com' });
    const t = await started({ identifier_changes: true });
    await t.run();
    expect(identifierEvents(t)).toEqual([
      {
        type: 'risc.identifier-changed',
        subject: { format: 'email', email: 'dana.lee@example.com' },
        claims: { 'new-value': 'dana.kim@example.com' },
        sourceRecordId: 'uuid-upd:login',
        occurredAt: '2026-01-15T17:10:05.000Z',
      },
    ]);
    expect(userReads().map((r) => [r.path, r.headers.authorization])).toEqual([
      [`/api/v1/users/${DANA}`, `SSWS ${FAKE_TOKEN}`],
    ]);
    // What was read is saved with the cursor, for the next change.
    expect(t.checkpoints.get('cursor')).toMatchObject({
      users: { [DANA]: { login: 'dana.kim@example.com', email: 'dana.kim@example.com' } },
    });
    expect(t.counter('okta_system_log_user_reads_total', { outcome: 'changed' })).toBe(1);
  });

  it('emits nothing for a change whose old value it never saw, and the next change from what it read', async () => {
    server.reset();
    const log = systemLogApi(server, [profileUpdate('uuid-upd1', 5, 'login,email')]);
    const users = usersApi(server);
    users.put({ id: DANA, login: 'dana.kim@example.com' });
    const t = await started({ identifier_changes: true });
    await t.run();
    expect(identifierEvents(t)).toEqual([]);
    // Later (a restarted instance, same saved state): changed again, the old value is the one read.
    log.append(profileUpdate('uuid-upd2', 50, 'email, login'));
    users.put({ id: DANA, login: 'dana.park@example.com', email: 'dana.park@example.com' });
    const connector = oktaSystemLog.create(
      t.ctx,
      oktaSystemLog.configSchema.parse({
        org_url: server.url,
        auth: { type: 'ssws', token: FAKE_TOKEN },
        page_size: 10,
        identifier_changes: true,
      }),
    );
    await connector.start(new AbortController().signal);
    await t.run();
    expect(identifierEvents(t).map((e) => [e.subject, e.claims, e.sourceRecordId])).toEqual([
      [
        { format: 'email', email: 'dana.kim@example.com' },
        { 'new-value': 'dana.park@example.com' },
        'uuid-upd2:login',
      ],
    ]);
  });

  it('reads the user after a self-service change too (the user is the actor, with no target)', async () => {
    server.reset();
    const own = {
      ...profileUpdate('uuid-own', 5, 'login'),
      actor: { id: DANA, type: 'User', alternateId: 'dana.kim@example.com', displayName: 'Dana Kim' },
      target: null,
    };
    systemLogApi(server, [signIn('uuid-in', 1, 'dana.lee@example.com'), own]);
    usersApi(server).put({ id: DANA, login: 'dana.kim@example.com' });
    const t = await started({ identifier_changes: true });
    await t.run();
    expect(identifierEvents(t).map((e) => [e.subject, e.claims])).toEqual([
      [{ format: 'email', email: 'dana.lee@example.com' }, { 'new-value': 'dana.kim@example.com' }],
    ]);
  });

  it('emits the email change alone when the login stays, and reads nobody for other attributes', async () => {
    server.reset();
    systemLogApi(server, [
      signIn('uuid-in', 1, 'dana.lee@example.com'),
      profileUpdate('uuid-name', 2, 'firstName, lastName'),
      profileUpdate('uuid-upd', 5, 'email'),
    ]);
    const users = usersApi(server);
    users.put({ id: DANA, login: 'dana.lee@example.com', email: 'dana.lee@example.com' });
    const t = await started({ identifier_changes: true });
    await t.run();
    // The first read is the baseline of the email (the sign-in named only the login).
    expect(identifierEvents(t)).toEqual([]);
    expect(userReads()).toHaveLength(1);
  });

  it('takes a deleted user (404 E0000007) as gone and carries on with the page', async () => {
    server.reset();
    systemLogApi(server, [
      signIn('uuid-in', 1, 'dana.lee@example.com'),
      profileUpdate('uuid-upd', 5, 'login'),
      suspension(7),
    ]);
    usersApi(server).remove(DANA);
    const t = await started({ identifier_changes: true });
    await t.run();
    expect(identifierEvents(t)).toEqual([]);
    expect(t.ids()).toEqual(['uuid-0007']);
    expect(t.counter('okta_system_log_user_reads_total', { outcome: 'gone' })).toBe(1);
  });

  it('commits the events before a user read Okta answers 429 to, and reads that user after the reset', async () => {
    server.reset();
    systemLogApi(server, [
      suspension(1),
      signIn('uuid-in', 1, 'dana.lee@example.com'),
      profileUpdate('uuid-upd', 5, 'login'),
      logEvent('uuid-after', 9, 'user.lifecycle.suspend', {
        target: [{ id: DANA, type: 'User', alternateId: 'dana.kim@example.com' }],
      }),
    ]);
    const users = usersApi(server);
    users.put({ id: DANA, login: 'dana.kim@example.com' });
    users.remaining = 0;
    users.resetAt = Math.floor(clock / 1000) + 20;
    const t = await started({ identifier_changes: true });
    await t.run();
    // The suspension before the update is committed; the update waits for its user, saved.
    expect(t.ids()).toEqual(['uuid-0001']);
    expect(t.checkpoints.get('cursor')).toMatchObject({
      since: '2026-01-15T17:10:05.000Z',
      seen: ['uuid-upd'],
      awaiting: { [DANA]: { uuid: 'uuid-upd' } },
    });
    expect(t.counter('okta_system_log_rate_limited_total')).toBe(1);
    clock += 21_000;
    users.remaining = undefined;
    await t.run();
    // The change is compared before the event after it in the log, as if never paused.
    expect(t.ids()).toEqual(['uuid-0001', 'uuid-upd:login', 'uuid-after']);
    expect((t.checkpoints.get('cursor') as Record<string, unknown>).awaiting).toBeUndefined();
  });

  it('gets through a page holding more profile updates than one rate-limit window allows reads', async () => {
    server.reset();
    const [ana, ben] = ['00uana0000000000000A', '00uben0000000000000B'];
    systemLogApi(server, [
      signIn('uuid-in-ana', 1, 'ana@example.com', ana),
      signIn('uuid-in-ben', 2, 'ben@example.com', ben),
      profileUpdate('uuid-upd-ana', 5, 'login', ana),
      profileUpdate('uuid-upd-ben', 6, 'login', ben),
      logEvent('uuid-deactivate', 8, 'user.lifecycle.deactivate', {
        target: [{ id: '00ucarl', type: 'User', alternateId: 'carl@example.com' }],
      }),
    ]);
    const users = usersApi(server);
    users.put({ id: ana, login: 'ana.new@example.com' });
    users.put({ id: ben, login: 'ben.new@example.com' });
    const t = await started({ identifier_changes: true, rate_limit_reserve: 0 });
    // Each window allows one user read.
    for (let window = 0; window < 3; window += 1) {
      users.remaining = 1;
      users.resetAt = Math.floor(clock / 1000) + 60;
      await t.run();
      clock += 61_000;
    }
    expect(t.ids()).toEqual([
      'uuid-upd-ana:login',
      'uuid-upd-ben:login',
      'uuid-deactivate',
      'uuid-deactivate',
    ]);
    // No user is read twice: each window resumes where the last one stopped.
    expect(userReads().map((r) => r.path)).toEqual([`/api/v1/users/${ana}`, `/api/v1/users/${ben}`]);
  });

  it('stops reading users once a read leaves rate_limit_reserve requests, and reads the rest after the reset', async () => {
    server.reset();
    const ids = ['00uuser1', '00uuser2', '00uuser3'];
    systemLogApi(server, [
      ...ids.map((id, i) => signIn(`uuid-in-${i}`, i, `user${i}@example.com`, id)),
      ...ids.map((id, i) => profileUpdate(`uuid-upd-${i}`, 10 + i, 'login', id)),
    ]);
    const users = usersApi(server);
    ids.forEach((id, i) => users.put({ id, login: `new${i}@example.com` }));
    users.remaining = 10;
    users.resetAt = Math.floor(clock / 1000) + 60;
    const t = await started({ identifier_changes: true, rate_limit_reserve: 8 });
    await t.run();
    // The second read leaves 8: the third waits, and the reserve is left to other clients.
    expect(userReads()).toHaveLength(2);
    expect(t.counter('okta_system_log_rate_limited_total')).toBe(1);
    await t.run();
    expect(userReads()).toHaveLength(2);
    clock += 61_000;
    users.remaining = 10;
    await t.run();
    expect(userReads()).toHaveLength(3);
    expect(identifierEvents(t).map((e) => e.sourceRecordId)).toEqual([
      'uuid-upd-0:login',
      'uuid-upd-1:login',
      'uuid-upd-2:login',
    ]);
  });

  it('does not read users with identifier_changes off (the default)', async () => {
    server.reset();
    systemLogApi(server, [
      signIn('uuid-in', 1, 'dana.lee@example.com'),
      profileUpdate('uuid-upd', 5, 'login'),
    ]);
    usersApi(server).put({ id: DANA, login: 'dana.kim@example.com' });
    const t = await started();
    await t.run();
    expect(userReads()).toHaveLength(0);
    expect(identifierEvents(t)).toEqual([]);
    expect((t.checkpoints.get('cursor') as Record<string, unknown>).users).toBeUndefined();
  });

  it('remembers at most identifier_memory users, forgetting the least recently seen', async () => {
    server.reset();
    systemLogApi(
      server,
      Array.from({ length: 4 }, (_, i) =>
        logEvent(`uuid-in-${i}`, i, 'user.session.start', {
          actor: { id: `00uuser${i}`, type: 'User', alternateId: `user${i}@example.com` },
        }),
      ),
    );
    const t = await started({ identifier_changes: true, identifier_memory: 2 });
    await t.run();
    const remembered = (t.checkpoints.get('cursor') as { users: Record<string, unknown> }).users;
    expect(Object.keys(remembered).length).toBeLessThanOrEqual(2);
    expect(remembered['00uuser3']).toEqual({ login: 'user3@example.com', at: '2026-01-15T17:10:03.000Z' });
  });
});
