import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError, RetryableError, type InboundConnector } from '../../core/plugin-api/index.ts';
import { MockServer, loadFixtures, staticDeviceDirectory } from '../../core/plugin-api/testing/index.ts';
import { createTestContext, type TestContext } from '../_shared/edr-test-support.ts';
import { microsoftDefenderConnector as defender } from './index.ts';
import { alertsApi, CLIENT_ID, CLIENT_SECRET, FIXTURE_ALIASES, TENANT } from './mock-api.ts';

const fixtureDir = new URL('./fixtures/', import.meta.url);
const fixtureInput = (name: string): Record<string, any> =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtureDir), 'utf8')).input;

function config(overrides: Record<string, unknown> = {}) {
  return defender.configSchema.parse({
    tenant_id: TENANT,
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    subjects: { user_aliases: FIXTURE_ALIASES },
    ...overrides,
  });
}

const running: Array<{ connector: InboundConnector; t: TestContext }> = [];
const servers: MockServer[] = [];

afterEach(async () => {
  for (const { connector, t } of running.splice(0)) {
    t.abort.abort();
    await connector.stop(1000);
  }
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function mock(): Promise<MockServer> {
  const server = await new MockServer().start();
  servers.push(server);
  return server;
}

async function startInstance(cfg: ReturnType<typeof config>, t = createTestContext()) {
  const connector = defender.create(t.ctx, cfg);
  running.push({ connector, t });
  await connector.start(t.abort.signal);
  return { connector, t };
}

const apiConfig = (server: MockServer, overrides: Record<string, unknown> = {}) =>
  config({
    login_url: server.url,
    graph_url: `${server.url}/v1.0`,
    mde_url: server.url,
    initial_lookback: '3650d',
    ...overrides,
  });

describe('microsoft-defender mapping fixtures', () => {
  const cfg = config();
  const { fixtures, problems } = loadFixtures(fixtureDir.pathname);
  it('reads every fixture file', () => {
    expect(problems).toEqual([]);
    expect(fixtures.length).toBe(readdirSync(fixtureDir).filter((f) => f.endsWith('.json')).length);
  });
  for (const fixture of fixtures) {
    it(`${fixture.name}: ${fixture.description}`, () => {
      const expectation = fixture.expect;
      if ('rejected' in expectation) {
        expect(() => defender.map!(fixture.input, cfg)).toThrow(PermanentError);
        expect(() => defender.map!(fixture.input, cfg)).toThrow(expectation.rejected);
      } else if ('ignored' in expectation) {
        const result = defender.map!(fixture.input, cfg);
        expect(result.events).toEqual([]);
        expect(result.ignored).toContain(expectation.ignored);
      } else {
        expect(JSON.parse(JSON.stringify(defender.map!(fixture.input, cfg).events))).toEqual(
          expectation.events,
        );
      }
    });
  }
});

describe('microsoft-defender mapping rules', () => {
  const map = (name: string, overrides: Record<string, unknown> = {}) =>
    defender.map!(fixtureInput(name), config(overrides));

  it('raises the level again when a resolved alert is reopened, and keeps a redelivered state a duplicate', () => {
    for (const name of ['graph-high-credential-access', 'mde-high-pascalcase']) {
      const alert = fixtureInput(name);
      const graph = 'lastUpdateDateTime' in alert;
      const state = (status: string, updated: string, classification?: string) =>
        graph
          ? { ...alert, status, classification: classification ?? null, lastUpdateDateTime: updated }
          : { ...alert, status, classification: classification ?? null, lastUpdateTime: updated };
      const events = [
        state(graph ? 'new' : 'New', '2026-01-01T00:10:00Z'),
        state(
          graph ? 'resolved' : 'Resolved',
          '2026-01-01T01:00:00Z',
          graph ? 'falsePositive' : 'FalsePositive',
        ),
        state(graph ? 'inProgress' : 'InProgress', '2026-01-01T02:00:00Z'),
        state(graph ? 'inProgress' : 'InProgress', '2026-01-01T02:00:00Z'),
      ].map((a) => defender.map!(a, config()).events.find((e) => e.type === 'caep.risk-level-change')!);
      expect(
        events.map((e) => e.claims?.['current_level']),
        name,
      ).toEqual(['HIGH', 'LOW', 'HIGH', 'HIGH']);
      const ids = events.map((e) => e.sourceRecordId);
      expect(new Set(ids.slice(0, 3)).size, name).toBe(3);
      expect(ids[3], name).toBe(ids[2]);
    }
  });

  it('reads an alert classified as a false positive as closed while it is still in progress, in both generations', () => {
    for (const name of ['graph-high-credential-access', 'mde-high-pascalcase']) {
      const alert = fixtureInput(name);
      const input =
        'lastUpdateDateTime' in alert
          ? {
              ...alert,
              status: 'inProgress',
              classification: 'falsePositive',
              lastUpdateDateTime: '2026-01-01T02:00:00Z',
            }
          : {
              ...alert,
              status: 'InProgress',
              classification: 'FalsePositive',
              lastUpdateTime: '2026-01-01T02:00:00Z',
            };
      // No raise, no credential compromise: only the downgrade it sends once it raised the level.
      expect(
        defender.map!(input, config()).events.map((e) => [e.type, e.claims?.['current_level'], e.occurredAt]),
        name,
      ).toEqual([['caep.risk-level-change', 'LOW', '2026-01-01T02:00:00.000Z']]);
    }
  });

  it('uses the Defender for Endpoint machine id when device_id is mde', () => {
    const result = map('graph-high-credential-access', { mapping: { device_id: 'mde' } });
    expect(result.events[0]?.subject).toMatchObject({
      device: { format: 'opaque', id: '4b2c6e8f0a1c3e5a7c9e1b3d5f7a9c1e3b5d7f90' },
    });
  });

  it('falls back to the other device id when the preferred one is missing', () => {
    const input = fixtureInput('graph-high-credential-access');
    input['evidence'][1]['azureAdDeviceId'] = null;
    expect(defender.map!(input, config()).events[0]?.subject).toMatchObject({
      device: { id: '4b2c6e8f0a1c3e5a7c9e1b3d5f7a9c1e3b5d7f90' },
    });
  });

  it('sends no device event when device_risk_events is off', () => {
    expect(map('graph-device-only-high-risk', { mapping: { device_risk_events: false } }).ignored).toMatch(
      /^subject_unresolved: account "LT-KIOSK-01\\kiosk01"/,
    );
  });

  it('resolves the logged-on user of the device through the alias map', () => {
    const result = map('graph-device-only-high-risk', {
      subjects: { user_aliases: { 'LT-KIOSK-01\\kiosk01': 'kiosk.owner@example.com' } },
    });
    expect(result.events[0]?.claims?.['principal']).toBe('USER');
    expect(result.events[0]?.subject).toMatchObject({ user: { email: 'kiosk.owner@example.com' } });
  });

  it('keeps the extra events to what the mapping block allows', () => {
    expect(
      map('graph-compromised-account-session-revoked', {
        mapping: { revoke_sessions_on_compromised_account: false },
      }).events.map((e) => e.type),
    ).toEqual(['caep.risk-level-change']);
    expect(
      map('graph-high-credential-access', {
        mapping: { credential_compromise_on_credential_access: false },
      }).events.map((e) => e.type),
    ).toEqual(['caep.risk-level-change']);
  });

  it('does not revoke sessions or report a compromised credential for a medium alert', () => {
    const input = {
      ...fixtureInput('graph-compromised-account-session-revoked'),
      severity: 'medium',
      category: 'CredentialAccess',
    };
    expect(defender.map!(input, config()).events.map((e) => [e.type, e.claims?.['current_level']])).toEqual([
      ['caep.risk-level-change', 'MEDIUM'],
    ]);
  });

  it('raises min_level on request', () => {
    expect(map('graph-medium-alias-user', { mapping: { min_level: 'high' } }).ignored).toMatch(
      /^below_min_level/,
    );
  });

  it('prefers the compromised user over other user evidence', () => {
    const input = fixtureInput('graph-high-credential-access');
    input['evidence'].unshift({
      '@odata.type': '#microsoft.graph.security.userEvidence',
      roles: ['contextual'],
      verdict: 'unknown',
      userAccount: { accountName: 'helpdesk', domainName: 'CORP', userPrincipalName: 'helpdesk@example.com' },
    });
    expect(defender.map!(input, config()).events[0]?.subject).toMatchObject({
      user: { email: 'dana.lee@example.com' },
    });
  });
});

// ---------------------------------------------------------------------------------------------

function graphAlert(n: number, updated: string, extra: Record<string, unknown> = {}) {
  const base = fixtureInput('graph-high-credential-access');
  return {
    ...base,
    id: `da6387000000000000${String(n).padStart(2, '0')}_-9${n}`,
    lastUpdateDateTime: updated,
    ...extra,
  };
}

const graphRequests = (server: MockServer) =>
  server.requests.filter((r) => r.path === '/v1.0/security/alerts_v2');

/** A malformed alert of the API's answer: a rejected fixture, moved to its own id and update time. */
function malformedAlert(fixture: string, n: number, updated: string) {
  const { id, ...base } = fixtureInput(fixture);
  return {
    ...base,
    ...(id === undefined ? {} : { id: graphAlert(n, updated)['id'] }),
    lastUpdateDateTime: updated,
  };
}

describe('microsoft-defender graph mode', () => {
  const graphApi = (server: MockServer, alerts: unknown[], options: Parameters<typeof alertsApi>[2] = {}) =>
    alertsApi(server, alerts, { graphPrefix: '/v1.0', ...options });

  it('authenticates against Entra, filters on lastUpdateDateTime, follows @odata.nextLink and moves the watermark after the last page', async () => {
    const server = await mock();
    const alerts = [1, 2, 3, 4, 5].map((n) => graphAlert(n, `2026-01-01T00:0${n}:00Z`));
    const ledger = graphApi(server, alerts);
    const { t } = await startInstance(
      apiConfig(server, { page_size: 2 }),
      createTestContext({ now: () => Date.parse('2026-01-02T00:00:00Z') }),
    );
    await t.runTask('alerts');

    const token = server.requests.filter((r) => r.path === `/${TENANT}/oauth2/v2.0/token`);
    expect(token).toHaveLength(1);
    const form = new URLSearchParams(token[0]!.body);
    expect([form.get('grant_type'), form.get('client_id'), form.get('scope')]).toEqual([
      'client_credentials',
      CLIENT_ID,
      `${server.url}/.default`,
    ]);
    const pages = graphRequests(server);
    expect(pages).toHaveLength(3);
    expect(pages[0]!.query).toMatchObject({
      $filter: 'lastUpdateDateTime ge 2016-01-05T00:00:00.000Z',
      $top: '2',
    });
    expect(pages.every((p) => p.headers['prefer'] === 'include-unknown-enum-members')).toBe(true);
    expect(pages.every((p) => p.headers['authorization'] === `Bearer ${ledger.issued[0]!.token}`)).toBe(true);
    expect(pages[1]!.query['$skip']).toBe('2');
    // Graph pages are not sorted: the watermark moves only once every page was read.
    expect(t.commits('alerts_v2').map((c) => (c.value as { watermark?: string }).watermark)).toEqual([
      undefined,
      undefined,
      '2026-01-01T00:05:00.000Z',
    ]);
    expect(t.events().filter((e) => e.type === 'caep.risk-level-change')).toHaveLength(5);
  });

  it('sends no downgrade for an alert resolved as a false positive before the instance first read it', async () => {
    const server = await mock();
    const fp = { status: 'resolved', classification: 'falsePositive' };
    const alerts = [
      graphAlert(1, '2026-01-01T01:00:00Z', { ...fp, createdDateTime: '2026-01-01T00:30:00Z' }),
      graphAlert(2, '2026-01-01T01:10:00Z', { createdDateTime: '2026-01-01T01:05:00Z' }),
    ];
    graphApi(server, alerts);
    const { t } = await startInstance(apiConfig(server));
    await t.runTask('alerts');
    const levels = () =>
      t
        .events()
        .filter((e) => e.type === 'caep.risk-level-change')
        .map((e) => [e.txn?.split('_')[0]!.slice(-2), e.claims?.['current_level']]);
    expect(levels()).toEqual([['02', 'HIGH']]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);

    // Alert 2 was read raised: its resolution as a false positive lowers the level again.
    alerts[1] = graphAlert(2, '2026-01-01T02:00:00Z', { ...fp, createdDateTime: '2026-01-01T01:05:00Z' });
    await t.runTask('alerts');
    expect(levels()).toEqual([
      ['02', 'HIGH'],
      ['02', 'LOW'],
    ]);
  });

  it('after a failure on a later page, goes on at that page without reading the first page again', async () => {
    const server = await mock();
    const alerts = [1, 2, 3, 4].map((n) => graphAlert(n, `2026-01-01T00:0${n}:00Z`));
    graphApi(server, alerts);
    const { t } = await startInstance(
      apiConfig(server, { page_size: 2 }),
      createTestContext({ now: () => Date.parse('2026-01-02T00:00:00Z') }),
    );
    await t.runTask('alerts');
    expect(t.events()).toHaveLength(8);
    // A second instance from the first page's checkpoint only, as if the process died after it.
    const firstPage = t.commits('alerts_v2')[0]!.value;
    expect(firstPage).toMatchObject({
      window: { since: '2016-01-05T00:00:00.000Z', next: expect.stringContaining('%24skip=2') },
    });
    server.requests.length = 0;
    const again = await startInstance(
      apiConfig(server, { page_size: 2 }),
      createTestContext({ checkpoints: new Map([['alerts_v2', firstPage]]) }),
    );
    await again.t.runTask('alerts');
    expect(graphRequests(server).map((r) => r.query['$skip'])).toEqual(['2']);
    const firstIds = new Set(t.commits('alerts_v2')[0]!.events.map((e) => e.sourceRecordId));
    const resent = again.t.events().filter((e) => firstIds.has(e.sourceRecordId));
    expect(resent).toEqual([]);
    expect(again.t.events()).toHaveLength(4);
    expect(again.t.checkpoints.get('alerts_v2')).toMatchObject({ watermark: '2026-01-01T00:04:00.000Z' });
    expect(again.t.checkpoints.get('alerts_v2')).not.toHaveProperty('window');
  });

  it('reads a window larger than one rate-limit budget over several polls, each going on at the page a 429 stopped the one before', async () => {
    const server = await mock();
    let nowMs = Date.parse('2026-01-01T12:00:00Z');
    // 10 alerts, 2 a page: 5 pages; 3 requests a minute stand in for Graph's 150.
    const alerts = Array.from({ length: 10 }, (_, i) =>
      graphAlert(i + 1, `2026-01-01T11:${String(10 + i).padStart(2, '0')}:00Z`),
    );
    graphApi(server, alerts, { rateLimit: { requests: 3, now: () => nowMs } });
    const { t } = await startInstance(
      apiConfig(server, { page_size: 2, initial_lookback: '2h' }),
      createTestContext({ now: () => nowMs }),
    );
    await expect(t.runTask('alerts')).rejects.toMatchObject({
      errorClass: 'retryable',
      retryAfterMs: 60_000,
    });
    expect(t.checkpoints.get('alerts_v2')).not.toHaveProperty('watermark');
    nowMs += 61_000;
    await t.runTask('alerts');

    const pages = graphRequests(server);
    expect(pages.map((p) => [p.query['$skip'] ?? '0', p.query['$filter']])).toEqual(
      ['0', '2', '4', '6', '6', '8'].map((skip) => [skip, 'lastUpdateDateTime ge 2026-01-01T10:00:00.000Z']),
    );
    const raised = t.events().filter((e) => e.type === 'caep.risk-level-change');
    expect(new Set(raised.map((e) => e.txn)).size).toBe(10);
    expect(raised).toHaveLength(10);
    expect(t.checkpoints.get('alerts_v2')).toMatchObject({ watermark: '2026-01-01T11:19:00.000Z' });
    expect(t.checkpoints.get('alerts_v2')).not.toHaveProperty('window');
  });

  it('reads the window again from its first page when the stored next link leads to another host, and never sends the token there', async () => {
    const server = await mock();
    const elsewhere = await mock();
    elsewhere.on('GET', '/v1.0/security/alerts_v2', () => ({ body: { value: [] } }));
    graphApi(server, [graphAlert(1, '2026-01-01T00:01:00Z')]);
    const checkpoints = new Map<string, unknown>([
      [
        'alerts_v2',
        {
          recent: {},
          window: {
            since: '2026-01-01T00:00:00.000Z',
            next: `${elsewhere.url}/v1.0/security/alerts_v2?$skip=200`,
          },
        },
      ],
    ]);
    const { t } = await startInstance(apiConfig(server), createTestContext({ checkpoints }));
    await t.runTask('alerts');
    expect(elsewhere.requests).toEqual([]);
    expect(graphRequests(server).map((r) => r.query['$filter'])).toEqual([
      'lastUpdateDateTime ge 2026-01-01T00:00:00.000Z',
    ]);
    expect(t.events().filter((e) => e.type === 'caep.risk-level-change')).toHaveLength(1);
    expect(t.checkpoints.get('alerts_v2')).toMatchObject({ watermark: '2026-01-01T00:01:00.000Z' });
    expect(t.statuses.at(-1)).toEqual({ state: 'ok' });
  });

  it('sends the downgrade of an alert resolved as a false positive once, however often it is updated after, leaving a newer raise for the user standing', async () => {
    const server = await mock();
    const fp = { status: 'resolved', classification: 'falsePositive' };
    const alerts = [graphAlert(1, '2026-01-01T00:10:00Z')];
    graphApi(server, alerts);
    const { t } = await startInstance(apiConfig(server));
    await t.runTask('alerts');
    alerts[0] = graphAlert(1, '2026-01-01T01:00:00Z', fp);
    await t.runTask('alerts');
    alerts.push(graphAlert(2, '2026-01-01T02:00:00Z'));
    await t.runTask('alerts');
    // An analyst comments on the resolved alert, twice: only lastUpdateDateTime changes.
    alerts[0] = graphAlert(1, '2026-01-01T03:00:00Z', fp);
    await t.runTask('alerts');
    alerts[0] = graphAlert(1, '2026-01-01T04:00:00Z', fp);
    await t.runTask('alerts');
    expect(
      t
        .events()
        .filter((e) => e.type === 'caep.risk-level-change')
        .map((e) => [e.txn, e.claims?.['current_level']]),
    ).toEqual([
      [alerts[0]['id'], 'HIGH'],
      [`${alerts[0]['id']}#cleared`, 'LOW'],
      [alerts[1]!['id'], 'HIGH'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(2);
  });

  it('sends nothing for an alert first read in progress but classified a false positive, and lowers the level once an alert it raised is classified so', async () => {
    const server = await mock();
    const fp = { status: 'inProgress', classification: 'falsePositive', resolvedDateTime: null };
    const alerts = [
      graphAlert(1, '2026-01-01T01:00:00Z', fp),
      graphAlert(2, '2026-01-01T01:10:00Z', { status: 'inProgress' }),
    ];
    graphApi(server, alerts);
    const { t } = await startInstance(apiConfig(server));
    await t.runTask('alerts');
    const sent = () => t.events().map((e) => [e.type, e.txn, e.claims?.['current_level'] ?? null]);
    expect(sent()).toEqual([
      ['caep.risk-level-change', alerts[1]!['id'], 'HIGH'],
      ['risc.credential-compromise', alerts[1]!['id'], null],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);

    alerts[1] = graphAlert(2, '2026-01-01T02:00:00Z', fp);
    await t.runTask('alerts');
    expect(sent().slice(2)).toEqual([['caep.risk-level-change', `${alerts[1]['id']}#cleared`, 'LOW']]);
    expect(t.events().at(-1)?.occurredAt).toBe('2026-01-01T02:00:00.000Z');
  });

  it('resumes after a restart from the watermark minus the overlap', async () => {
    const server = await mock();
    const alerts = [graphAlert(1, '2026-01-01T00:00:00Z'), graphAlert(2, '2026-01-01T00:10:00Z')];
    graphApi(server, alerts);
    const first = await startInstance(apiConfig(server, { overlap: '2m' }));
    await first.t.runTask('alerts');
    server.requests.length = 0;
    alerts.push(graphAlert(3, '2026-01-01T00:11:00Z'));
    const second = await startInstance(
      apiConfig(server, { overlap: '2m' }),
      createTestContext({ checkpoints: first.t.checkpoints }),
    );
    await second.t.runTask('alerts');
    expect(graphRequests(server)[0]!.query['$filter']).toBe('lastUpdateDateTime ge 2026-01-01T00:08:00.000Z');
    expect(second.t.events().map((e) => e.txn)).toEqual([alerts[2]!['id'], alerts[2]!['id']]);
  });

  // Graph answers newest first here: a malformed alert before good ones on the same page, on the
  // next pages, and at the end of a page.
  const withMalformed = () => [
    malformedAlert('graph-evidence-not-array-rejected', 7, '2026-01-01T00:07:00Z'),
    graphAlert(6, '2026-01-01T00:06:00Z'),
    graphAlert(5, '2026-01-01T00:05:00Z'),
    malformedAlert('graph-missing-id-rejected', 4, '2026-01-01T00:04:00Z'),
    graphAlert(3, '2026-01-01T00:03:00Z'),
    malformedAlert('graph-evidence-without-type-rejected', 2, '2026-01-01T00:02:00Z'),
    graphAlert(1, '2026-01-01T00:01:00Z'),
  ];

  it.each([
    ['on one page', 100],
    ['across pages', 2],
  ])('skips malformed alerts %s and hands over every good alert around them', async (_, pageSize) => {
    const server = await mock();
    graphApi(server, withMalformed());
    const { t } = await startInstance(apiConfig(server, { page_size: pageSize }));
    await t.runTask('alerts');
    const sent = (type: string) => t.events().filter((e) => e.type === type);
    const good = [6, 5, 3, 1].map((n) => graphAlert(n, '')['id']);
    expect(sent('caep.risk-level-change').map((e) => e.txn)).toEqual(good);
    expect(sent('risc.credential-compromise').map((e) => e.txn)).toEqual(good);
    expect(t.counter('edr_records_total', { outcome: 'rejected', reason: 'malformed' })).toBe(3);
    expect(t.logs.filter((l) => l.msg === 'malformed vendor record skipped')).toHaveLength(3);
    expect((t.checkpoints.get('alerts_v2') as { watermark: string }).watermark).toBe(
      '2026-01-01T00:07:00.000Z',
    );
    expect(t.statuses.at(-1)).toEqual({ state: 'ok' });
    const emittedBefore = t.events().length;
    await t.runTask('alerts');
    expect(t.events()).toHaveLength(emittedBefore);
  });

  it('hands over an alert read malformed once Defender updates it', async () => {
    const server = await mock();
    const alerts: unknown[] = [
      malformedAlert('graph-evidence-not-array-rejected', 1, '2026-01-01T00:01:00Z'),
      graphAlert(2, '2026-01-01T00:02:00Z'),
    ];
    graphApi(server, alerts);
    const { t } = await startInstance(apiConfig(server));
    await t.runTask('alerts');
    alerts[0] = graphAlert(1, '2026-01-01T00:03:00Z');
    await t.runTask('alerts');
    expect(
      t
        .events()
        .filter((e) => e.type === 'caep.risk-level-change')
        .map((e) => e.txn),
    ).toEqual([2, 1].map((n) => graphAlert(n, '')['id']));
  });

  it('refreshes an access token the API no longer accepts', async () => {
    const server = await mock();
    const ledger = graphApi(server, [graphAlert(1, '2026-01-01T00:00:00Z')]);
    const { t } = await startInstance(apiConfig(server));
    await t.runTask('alerts');
    ledger.revoked.add(ledger.issued[0]!.token);
    await t.runTask('alerts');
    expect(ledger.issued).toHaveLength(2);
    expect(graphRequests(server).at(-1)!.headers['authorization']).toBe(`Bearer ${ledger.issued[1]!.token}`);
  });

  it('flags the instance when Entra refuses the client secret', async () => {
    const server = await mock();
    graphApi(server, []);
    const { t } = await startInstance(apiConfig(server, { client_secret: 'expired-secret' }));
    await expect(t.runTask('alerts')).rejects.toMatchObject({ authFailure: true });
    expect(t.statuses.at(-1)).toMatchObject({
      state: 'permanent_error',
      reason: expect.stringMatching(/refused the credentials/),
    });
  });

  it('honours Retry-After on a 429 (150 requests per minute per app and tenant)', async () => {
    const server = await mock();
    let nowMs = Date.parse('2026-01-01T01:00:00Z');
    graphApi(server, [graphAlert(1, '2026-01-01T00:59:00Z')], {
      interject: [
        {
          status: 429,
          headers: { 'retry-after': '7' },
          body: { error: { code: 'TooManyRequests', message: 'Too many requests' } },
        },
      ],
    });
    const { t } = await startInstance(apiConfig(server), createTestContext({ now: () => nowMs }));
    await expect(t.runTask('alerts')).rejects.toMatchObject({ errorClass: 'retryable', retryAfterMs: 7000 });
    nowMs += 5_000;
    await t.runTask('alerts');
    expect(graphRequests(server)).toHaveLength(1);
    nowMs += 3_000;
    await t.runTask('alerts');
    expect(graphRequests(server)).toHaveLength(2);
    expect(t.events().length).toBeGreaterThan(0);
  });

  it('never follows an @odata.nextLink to another host, so the token stays with Graph', async () => {
    const server = await mock();
    const elsewhere = await mock();
    elsewhere.on('GET', '/v1.0/security/alerts_v2', () => ({ body: { value: [] } }));
    const ledger = graphApi(server, [], {
      interject: [
        {
          status: 200,
          body: {
            '@odata.context': `${server.url}/v1.0/$metadata#security/alerts_v2`,
            value: [graphAlert(1, '2026-01-01T00:01:00Z')],
            '@odata.nextLink': `${elsewhere.url}/v1.0/security/alerts_v2?$top=10&$skip=10`,
          },
        },
      ],
    });
    const { t } = await startInstance(apiConfig(server));
    await expect(t.runTask('alerts')).rejects.toMatchObject({
      errorClass: 'permanent',
      code: 'SSF_ERR_DEFENDER_PAGING',
      message: expect.stringContaining(new URL(elsewhere.url).origin),
    });
    expect(elsewhere.requests).toEqual([]);
    expect(ledger.issued.length).toBeGreaterThan(0);
    expect(t.statuses.at(-1)).toMatchObject({ state: 'permanent_error' });
    // The first page was read; the watermark waits until every page of the window is.
    expect(t.checkpoints.get('alerts_v2')).not.toHaveProperty('watermark');
  });

  it('treats a 503 as retryable and commits nothing', async () => {
    const server = await mock();
    graphApi(server, [graphAlert(1, '2026-01-01T00:00:00Z')], {
      interject: [{ status: 503, body: { error: { code: 'ServiceUnavailable' } } }],
    });
    const { t } = await startInstance(apiConfig(server));
    const error = await t.runTask('alerts').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RetryableError);
    expect(t.emitted).toEqual([]);
    await t.runTask('alerts');
    expect(t.checkpoints.get('alerts_v2')).toMatchObject({ watermark: '2026-01-01T00:00:00.000Z' });
  });
});

describe('microsoft-defender mde mode', () => {
  function mdeAlert(n: number, updated: string) {
    return {
      ...fixtureInput('mde-high-pascalcase'),
      id: `da6379000000000000${n}_-1${n}`,
      lastUpdateTime: updated,
    };
  }

  it('reads the legacy alerts API with its own scope, $expand=evidence and $skip paging', async () => {
    const server = await mock();
    const ledger = alertsApi(
      server,
      [1, 2, 3].map((n) => mdeAlert(n, `2026-01-01T00:0${n}:00.1234567Z`)),
    );
    const { t } = await startInstance(
      apiConfig(server, { mode: 'mde', page_size: 2, initial_lookback: '1d' }),
      createTestContext({ now: () => Date.parse('2026-01-01T12:00:00Z') }),
    );
    await t.runTask('alerts');
    const pages = server.requests.filter((r) => r.path === '/api/alerts');
    expect(pages.map((p) => [p.query['$skip'], p.query['$expand'], p.query['$top']])).toEqual([
      [undefined, 'evidence', '2'],
      ['2', 'evidence', '2'],
    ]);
    expect(pages[0]!.query['$filter']).toBe('lastUpdateTime ge 2025-12-31T12:00:00.000Z');
    expect(ledger.issued[0]!.scope).toBe('https://api.securitycenter.microsoft.com/.default');
    expect(t.checkpoints.get('mde_alerts')).toMatchObject({ watermark: '2026-01-01T00:03:00.123Z' });
    expect(
      t
        .events()
        .filter((e) => e.type === 'caep.risk-level-change')
        .map((e) => e.subject),
    ).toEqual(
      Array(3).fill({
        format: 'complex',
        user: { format: 'email', email: 'dana.lee@example.com' },
        device: { format: 'opaque', id: '4b2c6e8f0a1c3e5a7c9e1b3d5f7a9c1e3b5d7f90' },
      }),
    );
  });
});

describe('microsoft-defender users from MDM device records (subjects.device_owners)', () => {
  const secret = 'logic-app-shared-secret-42';
  const post = (connector: InboundConnector, body: unknown) =>
    connector.handleWebhook!({
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
      query: {},
      rawBody: Buffer.from(JSON.stringify(body)),
      body,
      remoteAddress: '127.0.0.1',
    });
  // The kiosk of graph-device-only-high-risk, as Intune knows it: by its Entra device id.
  const kiosk = {
    key: 'i-kiosk',
    user: 'kiosk.owner@example.com',
    aliases: { entra_device_id: 'aaaa0000-1111-2222-3333-444455556666', hostname: 'LT-KIOSK-01' },
  };
  const withOwners = (
    devices: Parameters<typeof staticDeviceDirectory>[0],
    overrides: Record<string, unknown> = {},
  ) =>
    startInstance(
      config({
        mode: 'webhook',
        webhook: { secret },
        subjects: { user_aliases: FIXTURE_ALIASES, device_owners: ['intune'] },
        ...overrides,
      }),
      createTestContext({ devices: staticDeviceDirectory(devices) }),
    );

  it('sends a device-only alert about the user Intune assigns the device to, keeping the device', async () => {
    const { connector, t } = await withOwners({ intune: [kiosk] });
    const response = await post(connector, fixtureInput('graph-device-only-high-risk'));
    expect(response).toMatchObject({ status: 202, body: { records: 1, events: 1 } });
    const [event] = t.events();
    expect(event?.subject).toEqual({
      format: 'complex',
      user: { format: 'email', email: 'kiosk.owner@example.com' },
      device: { format: 'opaque', id: 'aaaa0000-1111-2222-3333-444455556666' },
    });
    expect(event?.claims).toMatchObject({ principal: 'USER', current_level: 'HIGH' });
    expect((event?.claims?.['reason_admin'] as { en: string }).en).toMatch(
      /; user assigned to LT-KIOSK-01 in intune$/,
    );
  });

  it('finds the device by its host name when the record has no Entra id', async () => {
    const { connector, t } = await withOwners({
      intune: [{ key: 'i-9', user: 'ana@example.com', aliases: { hostname: 'lt-kiosk-01' } }],
    });
    await post(connector, fixtureInput('graph-device-only-high-risk'));
    expect(t.events()[0]?.subject).toMatchObject({ user: { email: 'ana@example.com' } });
  });

  it('never overrides a user the alert names: the UPN wins over the device record', async () => {
    const input = fixtureInput('graph-high-credential-access');
    const device = input['evidence'].find((e: any) => e['azureAdDeviceId'])!;
    const { connector, t } = await withOwners({
      intune: [
        {
          key: 'x',
          user: 'someone.else@example.com',
          aliases: { entra_device_id: device['azureAdDeviceId'] },
        },
      ],
    });
    await post(connector, input);
    const emails = t.events().map((e) => (e.subject as any).user?.email ?? (e.subject as any).email);
    expect(emails.length).toBeGreaterThan(0);
    expect(emails).not.toContain('someone.else@example.com');
  });

  it('gives no user when the records disagree, and says so in the ignored reason', async () => {
    const { connector, t } = await withOwners(
      {
        intune: [
          kiosk,
          { key: 'i-other', user: 'bo@example.com', aliases: { hostname: 'lt-kiosk-01.corp.example.com' } },
        ],
      },
      { mapping: { device_risk_events: false } },
    );
    const response = await post(connector, fixtureInput('graph-device-only-high-risk'));
    expect(response).toMatchObject({ status: 202, body: { events: 0, ignored: 1 } });
    expect(t.events()).toEqual([]);
    expect(JSON.stringify(t.logs)).toContain(
      'the device records name different users (bo@example.com in intune, kiosk.owner@example.com in intune)',
    );
  });

  it('answers 503-class (retryable) and keeps nothing when the device records cannot be read', async () => {
    const t = createTestContext({
      devices: {
        owners: async () => {
          throw new RetryableError('the device records of "intune" could not be read: database is locked');
        },
      },
    });
    const { connector } = await startInstance(
      config({ mode: 'webhook', webhook: { secret }, subjects: { device_owners: ['intune'] } }),
      t,
    );
    await expect(post(connector, fixtureInput('graph-device-only-high-risk'))).rejects.toThrow(
      RetryableError,
    );
    expect(t.emitted).toEqual([]);
  });

  it('reads no device records when device_owners is empty', async () => {
    let asked = 0;
    const t = createTestContext({
      devices: {
        owners: async () => {
          asked += 1;
          return () => ({ found: 'none' });
        },
      },
    });
    const { connector } = await startInstance(config({ mode: 'webhook', webhook: { secret } }), t);
    await post(connector, fixtureInput('graph-device-only-high-risk'));
    expect(asked).toBe(0);
    expect(t.events()[0]?.claims?.['principal']).toBe('DEVICE');
  });
});

describe('microsoft-defender webhook', () => {
  const secret = 'logic-app-shared-secret-42';
  const request = (body: unknown) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${secret}` },
    query: {},
    rawBody: Buffer.from(body === undefined ? 'not json' : JSON.stringify(body)),
    body,
    remoteAddress: '127.0.0.1',
  });

  it('maps alerts of both generations posted in an OData {value: [...]} envelope', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const response = await connector.handleWebhook!(
      request({
        value: [
          fixtureInput('graph-compromised-account-session-revoked'),
          fixtureInput('mde-medium-related-user'),
        ],
      }),
    );
    expect(response).toMatchObject({ status: 202, body: { records: 2, events: 3, ignored: 0 } });
    expect(t.events().map((e) => [e.type, e.claims?.['current_level'] ?? null])).toEqual([
      ['caep.risk-level-change', 'HIGH'],
      ['caep.session-revoked', null],
      ['caep.risk-level-change', 'MEDIUM'],
    ]);
  });

  describe('lowers the level it raised by device risk when the alert is resolved as a false positive', () => {
    const cases = [
      // A low-severity alert: the device's own risk raised the level.
      { name: 'a low alert on a high-risk device', severity: 'low', riskOpen: 'high', riskClosed: 'high' },
      // The device risk dropped once the device was remediated, before the alert was closed.
      {
        name: 'a high alert whose device risk fell to low',
        severity: 'high',
        riskOpen: 'high',
        riskClosed: 'low',
      },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
        const open = fixtureInput('graph-device-only-high-risk');
        open['severity'] = c.severity;
        open['evidence'][0]['riskScore'] = c.riskOpen;
        expect(await connector.handleWebhook!(request(open))).toMatchObject({
          status: 202,
          body: { events: 1 },
        });
        const closed = structuredClone(open);
        closed['status'] = 'resolved';
        closed['classification'] = 'falsePositive';
        closed['lastUpdateDateTime'] = '2026-01-02T00:00:00Z';
        closed['resolvedDateTime'] = '2026-01-02T00:00:00Z';
        closed['evidence'][0]['riskScore'] = c.riskClosed;
        expect(await connector.handleWebhook!(request(closed))).toMatchObject({
          status: 202,
          body: { events: 1 },
        });
        const [raised, lowered] = t.events();
        expect(lowered).toMatchObject({
          subject: raised!.subject,
          claims: { principal: 'DEVICE', current_level: 'LOW', previous_level: 'HIGH' },
          txn: `${open['id']}#cleared`,
        });
        expect(raised!.claims).toMatchObject({ principal: 'DEVICE', current_level: 'HIGH' });
      });
    }
  });

  it("dates each level change when it happened: the first raise at the first activity, later ones at the alert's update", async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const open = fixtureInput('graph-high-credential-access');
    const states = [
      open,
      { ...open, severity: 'medium', lastUpdateDateTime: '2026-01-01T00:30:00Z' },
      {
        ...open,
        status: 'resolved',
        classification: 'falsePositive',
        lastUpdateDateTime: '2026-01-01T01:00:05Z',
        resolvedDateTime: '2026-01-01T01:00:00Z',
      },
      {
        ...open,
        status: 'inProgress',
        classification: 'truePositive',
        lastUpdateDateTime: '2026-01-01T02:00:00Z',
      },
    ];
    for (const state of states) {
      expect(await connector.handleWebhook!(request(state))).toMatchObject({ status: 202 });
    }
    expect(
      t
        .events()
        .filter((e) => e.type === 'caep.risk-level-change')
        .map((e) => [e.claims?.['current_level'], e.occurredAt]),
    ).toEqual([
      ['HIGH', '2026-01-01T00:00:01.000Z'],
      ['MEDIUM', '2026-01-01T00:30:00.000Z'],
      ['LOW', '2026-01-01T01:00:00.000Z'],
      ['HIGH', '2026-01-01T02:00:00.000Z'],
    ]);
  });

  it('leaves the refused credentials of the poll flagged when it accepts a request in mode graph', async () => {
    const server = await mock();
    alertsApi(server, [], { graphPrefix: '/v1.0' });
    const { connector, t } = await startInstance(
      apiConfig(server, { client_secret: 'not-the-secret', webhook: { secret } }),
    );
    await expect(t.runTask('alerts')).rejects.toMatchObject({ authFailure: true });
    expect(t.statuses.at(-1)?.state).toBe('permanent_error');
    const response = await connector.handleWebhook!(request(fixtureInput('graph-high-credential-access')));
    expect(response).toMatchObject({ status: 202 });
    expect(t.statuses.at(-1)?.state).toBe('permanent_error');
  });

  it('refuses a body that is not JSON', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const response = await connector.handleWebhook!(request(undefined));
    expect(response).toMatchObject({
      status: 400,
      body: { message: expect.stringMatching(/JSON body is required/) },
    });
    expect(t.emitted).toEqual([]);
  });
});
