import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError, type InboundConnector } from '../../core/plugin-api/index.ts';
import { MockServer, loadFixtures } from '../../core/plugin-api/testing/index.ts';
import { RAISED_META_CHECKPOINT, RaisedMemory, raisedBucketName, raisedKey } from '../_shared/edr-raised.ts';
import { createTestContext, type TestContext } from '../_shared/edr-test-support.ts';
import { sentineloneConnector as s1 } from './index.ts';
import { API_TOKEN, FIXTURE_ALIASES, threatsApi } from './mock-api.ts';

const fixtureDir = new URL('./fixtures/', import.meta.url);
const fixtureInput = (name: string): Record<string, any> =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtureDir), 'utf8')).input;

function config(overrides: Record<string, unknown> = {}) {
  return s1.configSchema.parse({
    console_url: 'https://usea1-acme.sentinelone.net',
    api_token: API_TOKEN,
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
  const connector = s1.create(t.ctx, cfg);
  running.push({ connector, t });
  await connector.start(t.abort.signal);
  return { connector, t };
}

describe('sentinelone mapping fixtures', () => {
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
        expect(() => s1.map!(fixture.input, cfg)).toThrow(PermanentError);
        expect(() => s1.map!(fixture.input, cfg)).toThrow(expectation.rejected);
      } else if ('ignored' in expectation) {
        const result = s1.map!(fixture.input, cfg);
        expect(result.events).toEqual([]);
        expect(result.ignored).toContain(expectation.ignored);
      } else {
        expect(JSON.parse(JSON.stringify(s1.map!(fixture.input, cfg).events))).toEqual(expectation.events);
      }
    });
  }
});

describe('sentinelone mapping rules', () => {
  const map = (name: string, overrides: Record<string, unknown> = {}) =>
    s1.map!(fixtureInput(name), config(overrides));
  const level = (result: ReturnType<typeof map>) => result.events[0]?.claims?.['current_level'];

  it('follows the configured confidence × mitigation levels', () => {
    expect(
      level(map('suspicious-mitigated-ignored', { mapping: { levels: { suspicious_mitigated: 'medium' } } })),
    ).toBe('MEDIUM');
    expect(
      level(map('malicious-mitigated-medium', { mapping: { levels: { malicious_mitigated: 'high' } } })),
    ).toBe('HIGH');
    expect(
      level(
        map('suspicious-active-medium', {
          mapping: { levels: { suspicious_active: 'low' }, min_level: 'low' },
        }),
      ),
    ).toBe('LOW');
  });

  it('does not revoke sessions when the host is contained but the threat was mitigated', () => {
    const input = fixtureInput('malicious-mitigated-medium');
    input['agentRealtimeInfo']['agentNetworkStatus'] = 'disconnected';
    expect(s1.map!(input, config()).events.map((e) => e.type)).toEqual(['caep.risk-level-change']);
  });

  it('does not revoke sessions when revoke_sessions_on_containment is off', () => {
    expect(
      map('malicious-active-network-quarantined', {
        mapping: { revoke_sessions_on_containment: false },
      }).events.map((e) => e.type),
    ).toEqual(['caep.risk-level-change']);
  });

  it('treats an unknown mitigation status as not mitigated', () => {
    const input = fixtureInput('malicious-mitigated-medium');
    input['threatInfo']['mitigationStatus'] = 'quarantine_in_progress';
    expect(level({ events: s1.map!(input, config()).events })).toBe('HIGH');
  });

  it('sends a device-only event for an unresolved user when allowed', () => {
    const result = map('user-unresolved', {
      subjects: { user_aliases: FIXTURE_ALIASES, unresolved_user: 'device' },
    });
    expect(result.events[0]).toMatchObject({
      subject: { format: 'complex', device: { format: 'opaque', id: 'd1e2f3a4b5c6478899aabbccddeeff00' } },
      claims: { principal: 'DEVICE', current_level: 'HIGH' },
    });
  });

  it('names the user of the detection, not whoever is logged in now on a shared host', () => {
    const input = fixtureInput('malicious-not-mitigated-high');
    input['agentDetectionInfo']['agentLastLoggedInUpn'] = null;
    input['agentDetectionInfo']['agentLastLoggedInUserMail'] = null;
    input['threatInfo']['processUser'] = 'CORP\\dlee';
    input['agentRealtimeInfo']['agentLastLoggedInUpn'] = 'kiosk.night.shift@example.com';
    const subject = () => s1.map!(input, config()).events[0]?.subject;
    expect(subject()).toMatchObject({ user: { format: 'email', email: 'dana.lee@example.com' } });
    // Who is logged in now names the user only when nothing of the detection resolves.
    input['threatInfo']['processUser'] = 'NT AUTHORITY\\SYSTEM';
    input['agentDetectionInfo']['agentLastLoggedInUserName'] = null;
    expect(subject()).toMatchObject({ user: { format: 'email', email: 'kiosk.night.shift@example.com' } });
  });

  it('gives each state of a threat its own source record id and one txn per state', () => {
    const ids = ['malicious-not-mitigated-high', 'false-positive-downgrade'].map((n) => map(n).events[0]!);
    expect(ids.map((e) => e.sourceRecordId)).toEqual([
      '1850123456789012345#risk-level-change:USER:HIGH@2026-01-01T00:00:15.000Z',
      '1850123456789012345#risk-level-change:USER:cleared@2026-01-01T06:00:00.000Z',
    ]);
    expect(ids.map((e) => e.txn)).toEqual(['1850123456789012345', '1850123456789012345#cleared']);
  });
});

// ---------------------------------------------------------------------------------------------

function threat(n: number, updated: string, info: Record<string, unknown> = {}) {
  const base = fixtureInput('malicious-not-mitigated-high');
  const id = `18501234567890${String(n).padStart(5, '0')}`;
  return { ...base, id, threatInfo: { ...base['threatInfo'], threatId: id, updatedAt: updated, ...info } };
}

const threatRequests = (server: MockServer) =>
  server.requests.filter((r) => r.path === '/web/api/v2.1/threats');

/** A malformed threat of the API's answer: a rejected fixture, moved to its own id and update time. */
function malformedThreat(fixture: string, n: number | undefined, updated: string) {
  const base = fixtureInput(fixture);
  const id = n === undefined ? null : `18501234567890${String(n).padStart(5, '0')}`;
  if (base['threatInfo'] === undefined) return { ...base, id, updatedAt: updated };
  const info = { ...base['threatInfo'], updatedAt: updated, ...(id === null ? {} : { threatId: id }) };
  return { ...base, id, threatInfo: info };
}

describe('sentinelone polling', () => {
  it('sends the ApiToken, sorts by updatedAt, pages by nextCursor and commits each page', async () => {
    const server = await mock();
    threatsApi(
      server,
      [1, 2, 3, 4, 5].map((n) => threat(n, `2026-01-01T00:0${n}:00.000000Z`)),
    );
    const { t } = await startInstance(
      config({
        console_url: server.url,
        page_size: 2,
        site_ids: ['1234567890123456789'],
        initial_lookback: '1d',
      }),
      createTestContext({ now: () => Date.parse('2026-01-01T12:00:00Z') }),
    );
    expect(t.tasks.map((task) => task.name)).toEqual(['threats']);
    await t.runTask('threats');

    const pages = threatRequests(server);
    expect(pages).toHaveLength(3);
    expect(pages[0]!.headers['authorization']).toBe(`ApiToken ${API_TOKEN}`);
    expect(pages[0]!.query).toEqual({
      updatedAt__gte: '2025-12-31T12:00:00.000Z',
      sortBy: 'updatedAt',
      sortOrder: 'asc',
      limit: '2',
      siteIds: '1234567890123456789',
    });
    expect(pages.slice(1).every((p) => typeof p.query['cursor'] === 'string')).toBe(true);
    expect(
      t.commits('threats').map((c) => [c.events.length, (c.value as { watermark: string }).watermark]),
    ).toEqual([
      [2, '2026-01-01T00:02:00.000Z'],
      [2, '2026-01-01T00:04:00.000Z'],
      [1, '2026-01-01T00:05:00.000Z'],
    ]);
  });

  it('stops a run whose API hands back a cursor it gave before (retryable), keeping what it committed', async () => {
    const server = await mock();
    // A console that answers every page with the same record and the same cursor.
    server.on('GET', '/web/api/v2.1/threats', () => ({
      status: 200,
      body: { data: [threat(1, '2026-01-01T00:01:00Z')], pagination: { nextCursor: 'SAME', totalItems: 1 } },
    }));
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    const run = t.runTask('threats');
    await expect(run).rejects.toMatchObject({ code: 'SSF_ERR_PAGING_REPEATED', errorClass: 'retryable' });
    // The first page gives the cursor, the page read with it gives it again: the run ends there.
    expect(threatRequests(server)).toHaveLength(2);
    expect(t.events()).toHaveLength(1);
  });

  it('leaves a large backlog to the next poll after max_pages_per_run, and loses nothing', async () => {
    const server = await mock();
    threatsApi(
      server,
      [1, 2, 3, 4, 5].map((n) => threat(n, `2026-01-01T00:0${n}:00Z`)),
    );
    const { t } = await startInstance(
      config({ console_url: server.url, page_size: 2, max_pages_per_run: 1, initial_lookback: '3650d' }),
    );
    await t.runTask('threats');
    expect(t.events()).toHaveLength(2);
    await t.runTask('threats');
    await t.runTask('threats');
    expect(t.events().map((e) => e.txn)).toEqual(
      [1, 2, 3, 4, 5].map((n) => `18501234567890${String(n).padStart(5, '0')}`),
    );
  });

  it('follows a threat through its updates: active, then mitigated, then marked a false positive', async () => {
    const server = await mock();
    const threats = [threat(1, '2026-01-01T00:00:00Z')];
    threatsApi(server, threats);
    const cfg = config({ console_url: server.url, initial_lookback: '3650d' });
    const { t } = await startInstance(cfg);
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T00:05:00Z', { mitigationStatus: 'mitigated' });
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T01:00:00Z', {
      mitigationStatus: 'mitigated',
      analystVerdict: 'false_positive',
    });
    await t.runTask('threats');
    await t.runTask('threats');
    expect(
      t.events().map((e) => [e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
    ).toEqual([
      ['HIGH', null],
      ['MEDIUM', null],
      ['LOW', 'MEDIUM'],
    ]);
  });

  it('lowers the level it raised when a threat is marked a false positive, whatever the benign threat grades', async () => {
    const server = await mock();
    // Threat 1 is suspicious and active (MEDIUM), threat 2 malicious and active (HIGH).
    const threats = [
      threat(1, '2026-01-01T00:00:00Z', { confidenceLevel: 'suspicious' }),
      threat(2, '2026-01-01T00:01:00Z'),
    ];
    threatsApi(server, threats);
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    await t.runTask('threats');
    // An analyst marks both false positives; the console marks them benign, which the mapping
    // grades as mitigated: LOW for the suspicious one, MEDIUM for the malicious one.
    const fp = { analystVerdict: 'false_positive', mitigationStatus: 'marked_as_benign' };
    threats[0] = threat(1, '2026-01-01T06:00:00Z', { confidenceLevel: 'suspicious', ...fp });
    threats[1] = threat(2, '2026-01-01T06:01:00Z', fp);
    await t.runTask('threats');
    expect(
      t.events().map((e) => [e.txn, e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
    ).toEqual([
      ['1850123456789000001', 'MEDIUM', null],
      ['1850123456789000002', 'HIGH', null],
      ['1850123456789000001#cleared', 'LOW', 'MEDIUM'],
      ['1850123456789000002#cleared', 'LOW', 'HIGH'],
    ]);
    const [, , first, second] = t.events();
    expect([first!.subject, second!.subject]).toEqual([t.events()[0]!.subject, t.events()[1]!.subject]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(0);
  });

  it('decides the closure of a threat remembered without its level (by an earlier version) by the closed threat, as before', async () => {
    const server = await mock();
    const ids = ['1850123456789000001', '1850123456789000002'];
    const probe = new RaisedMemory(createTestContext().ctx, { priorCheckpoints: [] });
    // Both raised by an earlier version of the bridge: remembered, with no level.
    const checkpoints = new Map<string, unknown>([
      [RAISED_META_CHECKPOINT, { since: '2025-12-01T00:00:00.000Z' }],
      ['threats', { watermark: '2026-01-01T00:01:00.000Z', seen: {} }],
    ]);
    for (const id of ids) {
      const name = raisedBucketName(probe.bucketOf(id));
      const bucket = (checkpoints.get(name) ?? { raised: {} }) as { raised: Record<string, number> };
      bucket.raised[raisedKey(id)] = Math.floor(Date.now() / 1000);
      checkpoints.set(name, bucket);
    }
    const fp = { analystVerdict: 'false_positive', mitigationStatus: 'marked_as_benign' };
    threatsApi(server, [
      threat(1, '2026-01-01T06:00:00Z', { confidenceLevel: 'suspicious', ...fp }),
      threat(2, '2026-01-01T06:01:00Z', fp),
    ]);
    const { t } = await startInstance(
      config({ console_url: server.url }),
      createTestContext({ checkpoints, now: () => Date.parse('2026-01-01T07:00:00Z') }),
    );
    await t.runTask('threats');
    expect(
      t.events().map((e) => [e.txn, e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
    ).toEqual([['1850123456789000002#cleared', 'LOW', 'MEDIUM']]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(1);
  });

  it('sends no downgrade for a threat marked a false positive before the instance first read it', async () => {
    const server = await mock();
    const created = { createdAt: '2026-01-01T00:30:00Z' };
    const threats = [
      threat(1, '2026-01-01T01:00:00Z', { ...created, analystVerdict: 'false_positive' }),
      threat(2, '2026-01-01T01:10:00Z', created),
    ];
    threatsApi(server, threats);
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    await t.runTask('threats');
    expect(t.events().map((e) => [e.txn, e.claims?.['current_level']])).toEqual([
      ['1850123456789000002', 'HIGH'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);

    threats[1] = threat(2, '2026-01-01T02:00:00Z', { ...created, analystVerdict: 'false_positive' });
    await t.runTask('threats');
    expect(
      t.events().map((e) => [e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
    ).toEqual([
      ['HIGH', null],
      ['LOW', 'HIGH'],
    ]);
  });

  it('raises the level again when a threat marked a false positive is reopened', async () => {
    const server = await mock();
    const threats = [threat(1, '2026-01-01T00:00:00Z')];
    threatsApi(server, threats);
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T01:00:00Z', { analystVerdict: 'false_positive' });
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T02:00:00Z', { analystVerdict: 'true_positive' });
    await t.runTask('threats');
    await t.runTask('threats');
    expect(
      t.events().map((e) => [e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
    ).toEqual([
      ['HIGH', null],
      ['LOW', 'HIGH'],
      ['HIGH', null],
    ]);
    // Each change is a record of its own: the core drops none of them as a duplicate.
    expect(new Set(t.events().map((e) => e.sourceRecordId)).size).toBe(3);
    expect(t.persisted.size).toBe(3);
  });

  it('sends the downgrade of a threat marked a false positive once, however often the console updates it after, leaving a newer raise for the user standing', async () => {
    const server = await mock();
    const fp = { analystVerdict: 'false_positive' };
    const threats = [threat(1, '2026-01-01T00:00:00Z')];
    threatsApi(server, threats);
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T01:00:00Z', fp);
    await t.runTask('threats');
    // Threat 2, about the same user, is still active.
    threats.push(threat(2, '2026-01-01T02:00:00Z'));
    await t.runTask('threats');
    // Analysts add notes to the threat marked a false positive: only updatedAt changes.
    threats[0] = threat(1, '2026-01-01T03:00:00Z', fp);
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T04:00:00Z', { ...fp, mitigationStatus: 'marked_as_benign' });
    await t.runTask('threats');
    expect(t.events().map((e) => [e.txn, e.claims?.['current_level']])).toEqual([
      ['1850123456789000001', 'HIGH'],
      ['1850123456789000001#cleared', 'LOW'],
      ['1850123456789000002', 'HIGH'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(2);

    // Reopened: raised again, and its next closure lowers the level again.
    threats[0] = threat(1, '2026-01-01T05:00:00Z', { analystVerdict: 'true_positive' });
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T06:00:00Z', fp);
    await t.runTask('threats');
    expect(
      t
        .events()
        .slice(3)
        .map((e) => [e.txn, e.claims?.['current_level']]),
    ).toEqual([
      ['1850123456789000001', 'HIGH'],
      ['1850123456789000001#cleared', 'LOW'],
    ]);
  });

  it("dates each level change when it happened: the first raise at detection, later ones at the threat's update", async () => {
    const server = await mock();
    const threats = [threat(1, '2026-01-01T00:00:15Z')];
    threatsApi(server, threats);
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T00:05:00Z', { mitigationStatus: 'mitigated' });
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T01:00:00Z', { analystVerdict: 'false_positive' });
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T02:00:00Z', { analystVerdict: 'true_positive' });
    await t.runTask('threats');
    // CAEP §3.8: event_timestamp is the time of the level change; a receiver ordering by it must
    // see the reopened threat's raise after the downgrade before it.
    expect(t.events().map((e) => [e.claims?.['current_level'], e.occurredAt])).toEqual([
      ['HIGH', '2026-01-01T00:00:10.000Z'],
      ['MEDIUM', '2026-01-01T00:05:00.000Z'],
      ['LOW', '2026-01-01T01:00:00.000Z'],
      ['HIGH', '2026-01-01T02:00:00.000Z'],
    ]);
  });

  it('resumes after a restart from the watermark minus the overlap', async () => {
    const server = await mock();
    const threats = [threat(1, '2026-01-01T00:00:00Z'), threat(2, '2026-01-01T00:10:00Z')];
    threatsApi(server, threats);
    const cfg = config({ console_url: server.url, overlap: '1m', initial_lookback: '3650d' });
    const first = await startInstance(cfg);
    await first.t.runTask('threats');
    threats.push(threat(3, '2026-01-01T00:10:30Z'));
    server.requests.length = 0;
    const second = await startInstance(cfg, createTestContext({ checkpoints: first.t.checkpoints }));
    await second.t.runTask('threats');
    expect(threatRequests(server)[0]!.query['updatedAt__gte']).toBe('2026-01-01T00:09:00.000Z');
    expect(second.t.events().map((e) => e.txn)).toEqual(['1850123456789000003']);
  });

  it('skips a threat whose events the event catalog refuses, and hands over the rest of the page', async () => {
    const server = await mock();
    threatsApi(server, [threat(1, '2026-01-01T00:01:00Z'), threat(2, '2026-01-01T00:02:00Z')]);
    const refusedThreat = threat(1, '2026-01-01T00:01:00Z').id;
    const t = createTestContext({
      refuse: (e) => (e.txn === refusedThreat ? 'subject.email: not an e-mail address' : undefined),
    });
    await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }), t);
    await t.runTask('threats');
    await t.runTask('threats');
    expect(t.events().map((e) => e.txn)).toEqual([threat(2, '2026-01-01T00:02:00Z').id]);
    expect((t.checkpoints.get('threats') as { watermark: string }).watermark).toBe(
      '2026-01-01T00:02:00.000Z',
    );
    expect(t.counter('edr_records_total', { outcome: 'rejected', reason: 'malformed' })).toBe(1);
    expect(t.logs.filter((l) => l.level === 'warn').map((l) => [l.obj, l.msg])).toEqual([
      [
        { record: refusedThreat, problem: expect.stringContaining('not an e-mail address') },
        'vendor record skipped: the event catalog refuses its events',
      ],
    ]);
    expect(t.statuses.at(-1)).toEqual({ state: 'ok' });
  });

  it('names no user by an address the event catalog would refuse, and keeps polling', async () => {
    const server = await mock();
    const bad: Record<string, any> = threat(1, '2026-01-01T00:01:00Z');
    for (const info of [bad['agentDetectionInfo'], bad['agentRealtimeInfo']]) {
      if ('agentLastLoggedInUpn' in info) info['agentLastLoggedInUpn'] = 'dana.lee.@example.com';
      if ('agentLastLoggedInUserMail' in info) info['agentLastLoggedInUserMail'] = 'dana..lee@example.com';
    }
    threatsApi(server, [bad, threat(2, '2026-01-01T00:02:00Z')]);
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    await t.runTask('threats');
    // The bad addresses are passed over; the account name resolves through user_aliases.
    expect(t.events().map((e) => [e.txn, (e.subject['user'] as { email: string }).email])).toEqual([
      [bad.id, 'dana.lee@example.com'],
      [threat(2, '2026-01-01T00:02:00Z').id, 'dana.lee@example.com'],
    ]);
    expect((t.checkpoints.get('threats') as { watermark: string }).watermark).toBe(
      '2026-01-01T00:02:00.000Z',
    );
  });

  // A malformed threat, then good ones after it on the same page, on the next pages, and a page that ends on one.
  const withMalformed = () => [
    malformedThreat('mitigation-status-number-rejected', 1, '2026-01-01T00:01:00Z'),
    threat(2, '2026-01-01T00:02:00Z'),
    threat(3, '2026-01-01T00:03:00Z'),
    malformedThreat('missing-threat-id-rejected', undefined, '2026-01-01T00:04:00Z'),
    threat(5, '2026-01-01T00:05:00Z'),
    malformedThreat('missing-threat-info-rejected', 6, '2026-01-01T00:06:00Z'),
    threat(7, '2026-01-01T00:07:00Z'),
  ];

  it.each([
    ['on one page', 100],
    ['across pages', 2],
  ])('skips malformed threats %s and hands over every good threat around them', async (_, pageSize) => {
    const server = await mock();
    threatsApi(server, withMalformed());
    const { t } = await startInstance(
      config({ console_url: server.url, page_size: pageSize, initial_lookback: '3650d' }),
    );
    await t.runTask('threats');
    expect(t.events().map((e) => e.txn)).toEqual([2, 3, 5, 7].map((n) => threat(n, '').id));
    expect(t.counter('edr_records_total', { outcome: 'rejected', reason: 'malformed' })).toBe(3);
    expect(t.logs.filter((l) => l.msg === 'malformed vendor record skipped')).toHaveLength(3);
    expect((t.checkpoints.get('threats') as { watermark: string }).watermark).toBe(
      '2026-01-01T00:07:00.000Z',
    );
    expect(t.statuses.at(-1)).toEqual({ state: 'ok' });
    const emittedBefore = t.events().length;
    await t.runTask('threats');
    expect(t.events()).toHaveLength(emittedBefore);
  });

  it('hands over a threat read malformed once the console updates it', async () => {
    const server = await mock();
    const threats: unknown[] = [
      malformedThreat('mitigation-status-number-rejected', 1, '2026-01-01T00:01:00Z'),
      threat(2, '2026-01-01T00:02:00Z'),
    ];
    threatsApi(server, threats);
    const { t } = await startInstance(config({ console_url: server.url, initial_lookback: '3650d' }));
    await t.runTask('threats');
    threats[0] = threat(1, '2026-01-01T00:03:00Z');
    await t.runTask('threats');
    expect(t.events().map((e) => e.txn)).toEqual([2, 1].map((n) => threat(n, '').id));
  });

  it('flags the instance when the API token is refused', async () => {
    const server = await mock();
    threatsApi(server, [], { token: { value: 'a-different-token' } });
    const { t } = await startInstance(config({ console_url: server.url }));
    await expect(t.runTask('threats')).rejects.toMatchObject({
      authFailure: true,
      code: 'SSF_ERR_HTTP_AUTH',
    });
    expect(t.statuses.at(-1)).toMatchObject({ state: 'permanent_error' });
  });

  it('waits out a 429 with Retry-After, and retries a 5xx on the next poll', async () => {
    const server = await mock();
    let nowMs = Date.parse('2026-01-01T02:00:00Z');
    threatsApi(server, [threat(1, '2026-01-01T01:59:00Z')], {
      interject: [
        {
          status: 429,
          headers: { 'retry-after': '60' },
          body: { errors: [{ code: 4290010, title: 'Too Many Requests' }] },
        },
        { status: 502, body: 'Bad Gateway' },
      ],
    });
    const { t } = await startInstance(
      config({ console_url: server.url }),
      createTestContext({ now: () => nowMs }),
    );
    await expect(t.runTask('threats')).rejects.toMatchObject({ retryAfterMs: 60_000 });
    nowMs += 30_000;
    await t.runTask('threats');
    expect(threatRequests(server)).toHaveLength(1);
    nowMs += 31_000;
    await expect(t.runTask('threats')).rejects.toMatchObject({
      errorClass: 'retryable',
      code: 'SSF_ERR_HTTP_SERVER',
    });
    expect(t.checkpoints.size).toBe(0);
    await t.runTask('threats');
    expect(t.events()).toHaveLength(1);
    expect(t.statuses.at(-1)).toEqual({ state: 'ok' });
  });
});

describe('sentinelone webhook', () => {
  const secret = 'soar-playbook-secret-2026';
  const request = (body: unknown) => ({
    method: 'POST',
    headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
    query: {},
    rawBody: Buffer.from(JSON.stringify(body)),
    body,
    remoteAddress: '127.0.0.1',
  });

  for (const confidence of ['suspicious', 'malicious']) {
    it(`lowers a ${confidence} threat it raised once a playbook posts it marked a false positive and benign`, async () => {
      const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
      const open = fixtureInput('false-positive-downgrade');
      Object.assign(open['threatInfo'], {
        confidenceLevel: confidence,
        analystVerdict: 'undefined',
        incidentStatus: 'unresolved',
        mitigationStatus: 'not_mitigated',
        updatedAt: '2026-01-01T00:00:15Z',
      });
      expect(await connector.handleWebhook!(request(open))).toMatchObject({
        status: 202,
        body: { events: 1 },
      });
      const fp = structuredClone(open);
      Object.assign(fp['threatInfo'], {
        analystVerdict: 'false_positive',
        mitigationStatus: 'marked_as_benign',
        updatedAt: '2026-01-01T06:00:00Z',
      });
      expect(await connector.handleWebhook!(request(fp))).toMatchObject({ status: 202, body: { events: 1 } });
      const level = confidence === 'malicious' ? 'HIGH' : 'MEDIUM';
      expect(
        t.events().map((e) => [e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
      ).toEqual([
        [level, null],
        ['LOW', level],
      ]);
    });
  }

  it('sends the downgrade of a threat posted again marked a false positive once, and raises nothing for an older open state posted late', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const open = threat(1, '2026-01-01T00:00:15Z');
    const fp = (updated: string) => threat(1, updated, { analystVerdict: 'false_positive' });
    const answers = [];
    for (const body of [open, fp('2026-01-01T01:00:00Z'), fp('2026-01-01T01:30:00Z'), open]) {
      answers.push((await connector.handleWebhook!(request(body))).body);
    }
    expect(answers).toMatchObject([
      { events: 1, ignored: 0 },
      { events: 1, ignored: 0 },
      { events: 0, ignored: 1 },
      { events: 0, ignored: 1 },
    ]);
    expect(t.events().map((e) => [e.txn, e.claims?.['current_level']])).toEqual([
      ['1850123456789000001', 'HIGH'],
      ['1850123456789000001#cleared', 'LOW'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(1);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'superseded' })).toBe(1);
  });

  it('maps threats posted as {data: [...]}, as the API returns them', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const body = {
      data: [
        fixtureInput('malicious-active-network-quarantined'),
        fixtureInput('suspicious-mitigated-ignored'),
      ],
    };
    const response = await connector.handleWebhook!({
      method: 'POST',
      headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' },
      query: {},
      rawBody: Buffer.from(JSON.stringify(body)),
      body,
      remoteAddress: '127.0.0.1',
    });
    expect(response).toMatchObject({ status: 202, body: { records: 2, events: 2, ignored: 1 } });
    expect(t.events().map((e) => e.type)).toEqual(['caep.risk-level-change', 'caep.session-revoked']);
  });
});
