import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PermanentError, RetryableError, type InboundConnector } from '../../core/plugin-api/index.ts';
import {
  EXPIRED_SECRET_MARGIN_MS,
  MockServer,
  loadFixtures,
  registeredSecretValues,
} from '../../core/plugin-api/testing/index.ts';
import { createTestContext, type TestContext } from '../_shared/edr-test-support.ts';
import { crowdstrikeFalconConnector as falcon } from './index.ts';
import { JsonObjectSplitter } from './stream.ts';
import {
  alertsApi,
  bearerRefused,
  CLIENT_ID,
  CLIENT_SECRET,
  FIXTURE_ALIASES,
  tokenEndpoint,
  type TokenLedger,
} from './mock-api.ts';

const fixtureDir = new URL('./fixtures/', import.meta.url);
const fixtureInput = (name: string): Record<string, any> =>
  JSON.parse(readFileSync(new URL(`${name}.json`, fixtureDir), 'utf8')).input;

function config(overrides: Record<string, unknown> = {}) {
  return falcon.configSchema.parse({
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    subjects: { user_aliases: FIXTURE_ALIASES },
    ...overrides,
  });
}

const running: Array<{ connector: InboundConnector; t: TestContext }> = [];
const servers: Array<{ close(): Promise<void> }> = [];

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
  const connector = falcon.create(t.ctx, cfg);
  running.push({ connector, t });
  await connector.start(t.abort.signal);
  // The datafeed is read by one long run of the scheduled task, as on the elected leader.
  if (cfg.mode === 'stream') void t.runTask('stream');
  return { connector, t };
}

// ---------------------------------------------------------------------------------------------

describe('crowdstrike-falcon mapping fixtures', () => {
  const cfg = config();
  const { fixtures, problems } = loadFixtures(new URL('./fixtures/', import.meta.url).pathname);
  it('reads every fixture file', () => {
    expect(problems).toEqual([]);
    expect(fixtures.length).toBe(readdirSync(fixtureDir).filter((f) => f.endsWith('.json')).length);
  });
  for (const fixture of fixtures) {
    it(`${fixture.name}: ${fixture.description}`, () => {
      const expectation = fixture.expect;
      if ('rejected' in expectation) {
        let thrown: unknown;
        try {
          falcon.map!(fixture.input, cfg);
        } catch (err) {
          thrown = err;
        }
        expect(thrown).toBeInstanceOf(PermanentError);
        expect((thrown as Error).message).toContain(expectation.rejected);
      } else if ('ignored' in expectation) {
        const result = falcon.map!(fixture.input, cfg);
        expect(result.events).toEqual([]);
        expect(result.ignored).toContain(expectation.ignored);
      } else {
        expect(JSON.parse(JSON.stringify(falcon.map!(fixture.input, cfg).events))).toEqual(
          expectation.events,
        );
      }
    });
  }
});

describe('crowdstrike-falcon mapping rules', () => {
  const map = (name: string, overrides: Record<string, unknown> = {}) =>
    falcon.map!(fixtureInput(name), config(overrides));

  it('gives a detection the same txn whether it came from the stream or the Alerts API', () => {
    const fromStream = map('stream-epp-high').events;
    const fromAlerts = map('alert-epp-high-user-principal').events;
    expect(fromStream.map((e) => [e.type, e.txn])).toEqual(fromAlerts.map((e) => [e.type, e.txn]));
    expect(fromStream).toHaveLength(1);
    // A stream summary is never updated; an alert names the update time of the state it is in.
    expect(fromStream[0]?.sourceRecordId).toMatch(/#risk-level-change:USER:HIGH$/);
    expect(fromAlerts[0]?.sourceRecordId).toBe(`${fromStream[0]?.sourceRecordId}@2026-01-01T00:00:41.523Z`);
  });

  it('raises the level again when a closed alert is reopened, and keeps a redelivered state a duplicate', () => {
    const alert = fixtureInput('alert-epp-high-user-principal');
    const states = [
      { status: 'new', updated_timestamp: '2026-01-01T00:00:41.523456789Z' },
      { status: 'closed', tags: ['false_positive'], updated_timestamp: '2026-01-01T02:00:00Z' },
      { status: 'reopened', updated_timestamp: '2026-01-01T05:00:00Z' },
      { status: 'reopened', updated_timestamp: '2026-01-01T05:00:00Z' },
    ];
    const events = states.map((state) => falcon.map!({ ...alert, ...state }, config()).events[0]!);
    expect(events.map((e) => e.claims?.['current_level'])).toEqual(['HIGH', 'LOW', 'HIGH', 'HIGH']);
    const ids = events.map((e) => e.sourceRecordId);
    expect(new Set(ids.slice(0, 3)).size).toBe(3);
    expect(ids[3]).toBe(ids[2]);
  });

  it('sends LOW detections when min_level is low', () => {
    const result = map('stream-epp-low-ignored', { mapping: { min_level: 'low' } });
    expect(result.events.map((e) => [e.claims?.['current_level'], e.severity])).toEqual([['LOW', 'low']]);
  });

  it('sends a device-only event (principal DEVICE) for an unresolved user when unresolved_user is device', () => {
    const result = map('alert-user-unresolved', { subjects: { unresolved_user: 'device' } });
    expect(result.events).toHaveLength(1);
    expect(result.events[0]?.subject).toEqual({
      format: 'complex',
      device: { format: 'opaque', id: '7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b' },
    });
    expect(result.events[0]?.claims?.['principal']).toBe('DEVICE');
  });

  it('never guesses an e-mail address from a bare account name', () => {
    const result = map('stream-epp-high', { subjects: { user_aliases: {} } });
    expect(result.events).toEqual([]);
    expect(result.ignored).toMatch(/^subject_unresolved: account "CORP\\dlee"/);
  });

  it('leaves the device out of the subject when include_device is off', () => {
    const result = map('stream-epp-high', {
      subjects: { user_aliases: FIXTURE_ALIASES, include_device: false },
    });
    expect(result.events[0]?.subject).toEqual({ format: 'email', email: 'dana.lee@example.com' });
  });

  it('applies configured 0–100 bands', () => {
    const result = map('stream-epp-score-only-medium', {
      mapping: { score_thresholds: { medium: 20, high: 50 } },
    });
    expect(result.events[0]?.claims?.['current_level']).toBe('HIGH');
  });

  it('applies configured legacy 1–5 bands', () => {
    const result = map('stream-legacy-severity-3-medium', {
      mapping: { legacy_severity_thresholds: { high: 3 } },
    });
    expect(result.events[0]?.claims?.['current_level']).toBe('HIGH');
  });

  it('sends no credential-compromise when credential_theft is off, and grades by severity instead', () => {
    const result = map('alert-idp-credential-theft', { mapping: { credential_theft: false } });
    expect(result.events.map((e) => [e.type, e.claims?.['current_level']])).toEqual([
      ['caep.risk-level-change', 'MEDIUM'],
    ]);
  });

  it('sends no session-revoked when revoke_sessions_on_containment is off', () => {
    const result = map('alert-critical-contained', { mapping: { revoke_sessions_on_containment: false } });
    expect(result.events.map((e) => e.type)).toEqual(['caep.risk-level-change']);
  });

  it('does not revoke sessions for a critical detection on a host that is not contained', () => {
    const input = fixtureInput('alert-critical-contained');
    input['device'] = { ...input['device'], status: 'normal' };
    expect(falcon.map!(input, config()).events.map((e) => e.type)).toEqual(['caep.risk-level-change']);
  });

  it('recognises custom false-positive tags and ignores a false positive when downgrades are off', () => {
    const input = { ...fixtureInput('alert-closed-false-positive'), tags: ['benign-by-soc'] };
    expect(falcon.map!(input, config()).ignored).toMatch(/^closed: .* was resolved/);
    const custom = falcon.map!(input, config({ mapping: { false_positive_tags: ['Benign by SOC'] } }));
    expect(custom.events[0]?.claims).toMatchObject({ current_level: 'LOW', previous_level: 'HIGH' });
    const off = falcon.map!(
      fixtureInput('alert-closed-false-positive'),
      config({ mapping: { downgrade_on_false_positive: false } }),
    );
    expect(off.ignored).toMatch(/downgrade_on_false_positive is off/);
  });

  it('downgrade_on_resolved: a resolved true positive lowers the risk back to LOW', () => {
    const resolved = fixtureInput('alert-closed-true-positive-ignored');
    expect(falcon.map!(resolved, config()).ignored).toMatch(/downgrade_on_resolved is off/);
    const [event, ...rest] = falcon.map!(
      resolved,
      config({ mapping: { downgrade_on_resolved: true } }),
    ).events;
    expect(rest).toEqual([]);
    expect(event).toMatchObject({
      type: 'caep.risk-level-change',
      claims: { current_level: 'LOW', previous_level: 'HIGH', initiating_entity: 'admin' },
      severity: 'low',
    });
    expect(String(event?.claims?.['risk_reason'])).toMatch(/ resolved: /);
    expect(event?.sourceRecordId).toMatch(
      /#risk-level-change:USER:cleared@2026-01-01T\d\d:\d\d:\d\d\.\d{3}Z$/,
    );
  });

  it('reads the legacy Detects status false_positive as a false positive', () => {
    const input = { ...fixtureInput('alert-epp-high-user-principal'), status: 'false_positive' };
    expect(falcon.map!(input, config()).events[0]?.claims?.['current_level']).toBe('LOW');
  });
});

describe('JsonObjectSplitter', () => {
  it('splits concatenated objects across chunk boundaries, with braces and quotes inside strings', () => {
    const a = { metadata: { offset: 1 }, event: { CommandLine: 'cmd /c "echo {x}" \\"', Name: 'a}b' } };
    const b = { metadata: { offset: 2 }, event: { Name: 'Zoë' } };
    const text = `${JSON.stringify(a)}\r\n${JSON.stringify(b)}${JSON.stringify(a)}`;
    const splitter = new JsonObjectSplitter();
    const out: string[] = [];
    for (let i = 0; i < text.length; i += 7) out.push(...splitter.push(text.slice(i, i + 7)));
    expect(out.map((o) => JSON.parse(o))).toEqual([a, b, a]);
  });
});

// ---------------------------------------------------------------------------------------------

function alert(n: number, updated: string, extra: Record<string, unknown> = {}) {
  const base = fixtureInput('alert-epp-high-user-principal');
  return { ...base, composite_id: `${base['composite_id']}-${n}`, updated_timestamp: updated, ...extra };
}

const WEBHOOK_SECRET = 'fusion-workflow-secret-0001';

/** A request a Falcon Fusion workflow posts to POST /ingest/<instance-id>. */
function webhookRequest(body: unknown) {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${WEBHOOK_SECRET}` },
    query: {},
    rawBody: Buffer.from(JSON.stringify(body)),
    body,
    remoteAddress: '127.0.0.1',
  };
}

const alertsRequests = (server: MockServer) =>
  server.requests.filter((r) => r.path === '/alerts/combined/alerts/v1');

describe('crowdstrike-falcon alerts mode', () => {
  it('authenticates once, pages with after, and commits each page with its watermark', async () => {
    const server = await mock();
    const ledger = tokenEndpoint(server);
    const alerts = [1, 2, 3, 4, 5].map((n) => alert(n, `2026-01-01T00:0${n}:00.123456789Z`));
    alertsApi(server, alerts, { ledger });
    const { t } = await startInstance(
      config({ base_url: server.url, alerts: { page_size: 2, initial_lookback: '3650d' } }),
    );
    expect(t.tasks.map((task) => [task.name, task.options.everyMs, task.options.runOnStart])).toEqual([
      ['alerts', 60_000, true],
    ]);

    await t.runTask('alerts');

    const token = server.requests.filter((r) => r.path === '/oauth2/token');
    expect(token).toHaveLength(1);
    expect(new URLSearchParams(token[0]!.body).get('grant_type')).toBe('client_credentials');
    const pages = alertsRequests(server);
    expect(pages.map((r) => (r.json as { after?: string }).after === undefined)).toEqual([
      true,
      false,
      false,
    ]);
    expect(pages.every((r) => r.headers['authorization'] === `Bearer ${ledger.issued[0]}`)).toBe(true);
    expect(
      t.commits('alerts').map((c) => [c.events.length, (c.value as { watermark: string }).watermark]),
    ).toEqual([
      [2, '2026-01-01T00:02:00.123Z'],
      [2, '2026-01-01T00:04:00.123Z'],
      [1, '2026-01-01T00:05:00.123Z'],
    ]);
    expect(
      t.emitted.every(
        (e) => e.checkpoint?.name === 'alerts' || e.checkpoint?.name?.startsWith('raised-detections-'),
      ),
    ).toBe(true);
    expect(t.statuses.at(-1)).toEqual({ state: 'ok' });
  });

  it('resumes after a restart from the committed watermark minus the overlap, without re-sending', async () => {
    const server = await mock();
    const alerts = [alert(1, '2026-01-01T00:00:00Z'), alert(2, '2026-01-01T00:10:00Z')];
    alertsApi(server, alerts);
    const cfg = config({ base_url: server.url, alerts: { initial_lookback: '3650d', overlap: '5m' } });
    const first = await startInstance(cfg);
    await first.t.runTask('alerts');
    expect(first.t.events()).toHaveLength(2);
    await first.connector.stop(1000);

    alerts.push(alert(3, '2026-01-01T00:12:00Z'));
    const second = await startInstance(
      cfg,
      createTestContext({ checkpoints: first.t.checkpoints, persisted: first.t.persisted }),
    );
    server.requests.length = 0;
    await second.t.runTask('alerts');
    expect((alertsRequests(server)[0]!.json as { filter: string }).filter).toBe(
      "updated_timestamp:>='2026-01-01T00:05:00.000Z'",
    );
    // Alert 2 is inside the overlap window and already processed: only alert 3 is new.
    expect(second.t.events().map((e) => e.sourceRecordId)).toEqual([
      `${alerts[2]!['composite_id']}#risk-level-change:USER:HIGH@2026-01-01T00:12:00.000Z`,
    ]);
    expect(second.t.counter('edr_records_total', { outcome: 'ignored', reason: 'duplicate' })).toBe(1);
  });

  it('sends no downgrade for an alert closed as a false positive before the instance first read it, and lowers one it read raised', async () => {
    const server = await mock();
    const fp = { status: 'closed', tags: ['false_positive'] };
    // Alert 1 was raised and closed before the first poll: the receiver never heard of it.
    const alerts = [
      alert(1, '2026-01-01T01:00:00Z', { ...fp, created_timestamp: '2026-01-01T00:30:00Z' }),
      alert(2, '2026-01-01T01:10:00Z', { created_timestamp: '2026-01-01T01:05:00Z' }),
    ];
    alertsApi(server, alerts);
    const cfg = config({ base_url: server.url, alerts: { initial_lookback: '3650d' } });
    const { t } = await startInstance(cfg);
    await t.runTask('alerts');
    expect(
      t.events().map((e) => [e.sourceRecordId.split('#')[0]!.at(-1), e.claims?.['current_level']]),
    ).toEqual([['2', 'HIGH']]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);

    // Alert 2 was read raised: its closure lowers the level again.
    alerts[1] = alert(2, '2026-01-01T02:00:00Z', { ...fp, created_timestamp: '2026-01-01T01:05:00Z' });
    await t.runTask('alerts');
    expect(
      t.events().map((e) => [e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
    ).toEqual([
      ['HIGH', null],
      ['LOW', 'HIGH'],
    ]);
  });

  it('sends the downgrade of an alert closed as a false positive once, however often it is updated after, and dates the raise of the reopened alert at its update', async () => {
    const server = await mock();
    const fp = { status: 'closed', tags: ['false_positive'] };
    const alerts = [alert(1, '2026-01-01T00:10:00Z')];
    alertsApi(server, alerts);
    const { t } = await startInstance(
      config({ base_url: server.url, alerts: { initial_lookback: '3650d' } }),
    );
    await t.runTask('alerts');
    alerts[0] = alert(1, '2026-01-01T01:00:00Z', fp);
    await t.runTask('alerts');
    alerts.push(alert(2, '2026-01-01T02:00:00Z'));
    await t.runTask('alerts');
    // Analysts comment on and re-tag the closed alert: a new updated_timestamp each time.
    alerts[0] = alert(1, '2026-01-01T03:00:00Z', fp);
    await t.runTask('alerts');
    alerts[0] = alert(1, '2026-01-01T04:00:00Z', { ...fp, tags: ['false_positive', 'reviewed'] });
    await t.runTask('alerts');
    alerts[0] = alert(1, '2026-01-01T05:00:00Z', { status: 'reopened' });
    await t.runTask('alerts');
    const id = (n: number) => alert(n, '')['composite_id'];
    expect(t.events().map((e) => [e.txn, e.claims?.['current_level'], e.occurredAt])).toEqual([
      [id(1), 'HIGH', '2026-01-01T00:00:41.123Z'],
      [`${id(1)}#cleared`, 'LOW', '2026-01-01T01:00:00.000Z'],
      [id(2), 'HIGH', '2026-01-01T00:00:41.123Z'],
      [id(1), 'HIGH', '2026-01-01T05:00:00.000Z'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(2);
  });

  it('sends no downgrade of an alert first read closed when a webhook could have raised it but did not', async () => {
    const server = await mock();
    const alerts = [
      alert(1, '2026-01-01T01:00:00Z', {
        status: 'closed',
        tags: ['false_positive'],
        created_timestamp: '2026-01-01T00:30:00Z',
      }),
    ];
    alertsApi(server, alerts);
    const { t } = await startInstance(
      config({
        base_url: server.url,
        alerts: { initial_lookback: '3650d' },
        webhook: { secret: 'fusion-workflow-secret-0001' },
      }),
    );
    await t.runTask('alerts');
    expect(t.events()).toEqual([]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);
  });

  it('raised through the webhook, closed as a false positive in the poll: the poll sends the downgrade', async () => {
    const server = await mock();
    const raised = alert(1, '2026-01-01T00:10:00Z', { created_timestamp: '2026-01-01T00:05:00Z' });
    const fp = { status: 'closed', tags: ['false_positive'], created_timestamp: '2026-01-01T00:05:00Z' };
    // Alert 2 never reached this instance open: its closure must not lower anything.
    const alerts = [
      alert(1, '2026-01-01T01:00:00Z', fp),
      alert(2, '2026-01-01T01:00:00Z', { ...fp, created_timestamp: '2026-01-01T00:06:00Z' }),
    ];
    alertsApi(server, alerts);
    const cfg = config({
      base_url: server.url,
      alerts: { initial_lookback: '3650d' },
      webhook: { secret: 'fusion-workflow-secret-0001' },
    });
    const first = await startInstance(cfg);
    const posted = await first.connector.handleWebhook!(webhookRequest({ resources: [raised] }));
    expect(posted).toMatchObject({ status: 202, body: { events: 1 } });
    await first.connector.stop(1000);

    // The memory is a checkpoint: it outlives the process.
    const second = await startInstance(
      cfg,
      createTestContext({ checkpoints: first.t.checkpoints, persisted: first.t.persisted }),
    );
    await second.t.runTask('alerts');
    expect(
      second.t.events().map((e) => [e.txn, e.claims?.['current_level'], e.claims?.['previous_level']]),
    ).toEqual([[`${raised['composite_id']}#cleared`, 'LOW', 'HIGH']]);
    expect(second.t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);
  });

  it('on an upgraded poll-only instance (a watermark, no memory yet), decides closures of older alerts by the watermark as before', async () => {
    const server = await mock();
    const fp = { status: 'closed', tags: ['false_positive'] };
    const alerts = [
      // Created before the committed watermark: it may have been read raised before the upgrade.
      alert(1, '2026-01-01T02:00:00Z', { ...fp, created_timestamp: '2026-01-01T00:30:00Z' }),
      // Created after it: never read open.
      alert(2, '2026-01-01T02:00:00Z', { ...fp, created_timestamp: '2026-01-01T01:30:00Z' }),
    ];
    alertsApi(server, alerts);
    const checkpoints = new Map<string, unknown>([
      ['alerts', { watermark: '2026-01-01T01:00:00.000Z', seen: {} }],
    ]);
    const { t } = await startInstance(
      config({ base_url: server.url }),
      createTestContext({ checkpoints, now: () => Date.parse('2026-01-01T03:00:00Z') }),
    );
    await t.runTask('alerts');
    expect(t.events().map((e) => [e.txn?.split('#')[0]!.at(-1), e.claims?.['current_level']])).toEqual([
      ['1', 'LOW'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(1);
    expect(t.checkpoints.get('raised-detections-meta')).toEqual({
      since: '2026-01-01T03:00:00.000Z',
      predates: '2026-01-01T03:00:00.000Z',
    });
  });

  it('fetches a new token when the API refuses an expired one, and goes on', async () => {
    const server = await mock();
    const ledger = tokenEndpoint(server);
    alertsApi(server, [alert(1, '2026-01-01T00:01:00Z')], { ledger });
    const { t } = await startInstance(
      config({ base_url: server.url, alerts: { initial_lookback: '3650d' } }),
    );
    await t.runTask('alerts');
    ledger.revoked.add(ledger.issued[0]!);
    await t.runTask('alerts');
    expect(ledger.issued).toHaveLength(2);
    const last = alertsRequests(server).at(-1)!;
    expect(last.headers['authorization']).toBe(`Bearer ${ledger.issued[1]}`);
    expect(t.statuses.some((s) => s.state === 'permanent_error')).toBe(false);
  });

  it('flags the instance when the client credentials are refused', async () => {
    const server = await mock();
    alertsApi(server, []);
    const { t } = await startInstance(
      config({ base_url: server.url, client_secret: 'not-the-secret', alerts: { initial_lookback: '1h' } }),
    );
    await expect(t.runTask('alerts')).rejects.toMatchObject({ errorClass: 'permanent', authFailure: true });
    expect(t.statuses.at(-1)?.state).toBe('permanent_error');
    expect(t.statuses.at(-1)?.reason).toMatch(/refused the credentials/);
    expect(t.emitted).toEqual([]);
  });

  it('waits until the epoch time in X-Ratelimit-Retryafter before polling again after a 429', async () => {
    const server = await mock();
    let nowMs = Date.parse('2026-01-01T01:00:00Z');
    const interject = [
      {
        status: 429,
        headers: {
          'x-ratelimit-limit': '6000',
          'x-ratelimit-remaining': '0',
          'x-ratelimit-retryafter': String(nowMs / 1000 + 30),
        },
        body: { errors: [{ code: 429, message: 'API rate limit exceeded.' }] },
      },
    ];
    alertsApi(server, [alert(1, '2026-01-01T00:59:00Z')], { interject });
    const { t } = await startInstance(
      config({ base_url: server.url }),
      createTestContext({ now: () => nowMs }),
    );

    const error = await t.runTask('alerts').then(
      () => undefined,
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(30_000);
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');

    nowMs += 10_000;
    await t.runTask('alerts');
    expect(alertsRequests(server)).toHaveLength(1);

    nowMs += 21_000;
    await t.runTask('alerts');
    expect(alertsRequests(server)).toHaveLength(2);
    expect(t.events()).toHaveLength(1);
  });

  it('treats a 5xx as retryable, commits nothing, and reads the same page on the next run', async () => {
    const server = await mock();
    alertsApi(server, [alert(1, '2026-01-01T00:01:00Z')], {
      interject: [{ status: 503, body: { errors: [{ code: 503, message: 'service unavailable' }] } }],
    });
    const { t } = await startInstance(
      config({ base_url: server.url, alerts: { initial_lookback: '3650d' } }),
    );
    await expect(t.runTask('alerts')).rejects.toMatchObject({
      errorClass: 'retryable',
      code: 'SSF_ERR_HTTP_SERVER',
    });
    expect(t.checkpoints.size).toBe(0);
    await t.runTask('alerts');
    expect(t.events()).toHaveLength(1);
  });

  it('re-reads the page when the outbox is full, and produces the same events (no loss, no second SET)', async () => {
    const server = await mock();
    alertsApi(server, [alert(1, '2026-01-01T00:01:00Z'), alert(2, '2026-01-01T00:02:00Z')]);
    const { t } = await startInstance(
      config({ base_url: server.url, alerts: { initial_lookback: '3650d' } }),
    );
    t.failNextEmits(1, 5_000);
    await expect(t.runTask('alerts')).rejects.toMatchObject({ code: 'SSF_ERR_DELIVERY_QUEUE_FULL' });
    expect(t.checkpoints.size).toBe(0);
    await t.runTask('alerts');
    expect(t.events().map((e) => e.sourceRecordId.split('#')[0]!.split('-').at(-1))).toEqual(['1', '2']);
    await t.runTask('alerts');
    expect(t.events()).toHaveLength(2);
  });

  it('skips a malformed alert, counts it, and goes on with the rest of the page', async () => {
    const server = await mock();
    const broken = { composite_id: 'broken-1', updated_timestamp: '2026-01-01T00:00:30Z', severity: 'very' };
    alertsApi(server, [broken, alert(1, '2026-01-01T00:01:00Z')]);
    const { t } = await startInstance(
      config({ base_url: server.url, alerts: { initial_lookback: '3650d' } }),
    );
    await t.runTask('alerts');
    expect(t.events()).toHaveLength(1);
    expect(t.counter('edr_records_total', { outcome: 'rejected', reason: 'malformed' })).toBe(1);
    expect((t.checkpoints.get('alerts') as { watermark: string }).watermark).toBe('2026-01-01T00:01:00.000Z');
  });

  it('answers check() with a structured failure when the credentials are refused', async () => {
    const server = await mock();
    alertsApi(server, []);
    const good = falcon.create(createTestContext().ctx, config({ base_url: server.url }));
    expect(await good.check!(new AbortController().signal)).toEqual({ ok: true });
    const bad = falcon.create(
      createTestContext().ctx,
      config({ base_url: server.url, client_id: 'someone-else' }),
    );
    const result = await bad.check!(new AbortController().signal);
    expect(result).toMatchObject({ ok: false, retryable: false });
    expect(result.message).toMatch(/401/);
  });
});

// ---------------------------------------------------------------------------------------------
// Event Streams

interface FeedConnection {
  partition: string;
  offset: string | null;
  authorization: string | undefined;
  res: ServerResponse;
}

/** A datafeed host: each connection is handed to the test, which writes and ends it at will. */
async function datafeedHost(onConnect: (c: FeedConnection) => void) {
  const connections: FeedConnection[] = [];
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://feed');
    const partition = /\/datafeed\/v1\/(\d+)$/.exec(url.pathname)?.[1];
    if (!partition) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.flushHeaders();
    const c = {
      partition,
      offset: url.searchParams.get('offset'),
      authorization: req.headers.authorization,
      res,
    };
    connections.push(c);
    onConnect(c);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const host = {
    url,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  servers.push(host);
  return host;
}

function streamRecord(offset: number, template = 'stream-epp-high', compositeSuffix = `${offset}`) {
  const record = fixtureInput(template);
  record['metadata'] = { ...record['metadata'], offset };
  if (record['event']['CompositeId'])
    record['event']['CompositeId'] = `${record['event']['CompositeId']}-${compositeSuffix}`;
  return `${JSON.stringify(record)}\n`;
}

interface DiscoveryOptions {
  partitions: string[];
  refreshInterval?: number;
  sessionToken?: (partition: string, n: number) => string;
  /** The session token's `expiration`; undefined leaves it out. A fixed past time by default. */
  expiration?: (partition: string) => string | undefined;
  ledger?: TokenLedger;
  discoveryAnswers?: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>;
  /** Status every session refresh gets (a function: evaluated per refresh; undefined → 200). */
  refreshStatus?: number | (() => number | undefined);
  /** Answers the session refreshes get first, in order (then 200). */
  refreshAnswers?: Array<{ status: number; headers?: Record<string, string>; body?: unknown }>;
}

function discoveryApi(api: MockServer, feedUrl: string, o: DiscoveryOptions) {
  const ledger = o.ledger ?? tokenEndpoint(api);
  let discoveries = 0;
  api.on('GET', '/sensors/entities/datafeed/v2', (req) => {
    const refused = bearerRefused(req, ledger);
    if (refused) return refused;
    const interjected = o.discoveryAnswers?.shift();
    if (interjected) return interjected;
    discoveries += 1;
    return {
      body: {
        meta: { query_time: 0.01 },
        resources: o.partitions.map((p) => ({
          dataFeedURL: `${feedUrl}/sensors/entities/datafeed/v1/${p}?appId=${req.query['appId']}&eventType=all`,
          sessionToken: {
            token: o.sessionToken?.(p, discoveries) ?? `session-${p}-${discoveries}`,
            expiration: o.expiration ? o.expiration(p) : '2026-01-01T00:30:00Z',
          },
          refreshActiveSessionURL: `${api.url}/sensors/entities/datafeed-actions/v1/${p}?action_name=refresh_active_stream_session&appId=${req.query['appId']}`,
          refreshActiveSessionInterval: o.refreshInterval ?? 1800,
        })),
      },
    };
  });
  for (const p of o.partitions) {
    api.on('POST', `/sensors/entities/datafeed-actions/v1/${p}`, (req) => {
      const refused = bearerRefused(req, ledger);
      if (refused) return refused;
      const answer = o.refreshAnswers?.shift();
      if (answer) return answer;
      const status = typeof o.refreshStatus === 'function' ? o.refreshStatus() : o.refreshStatus;
      if (status)
        return {
          status,
          body: { errors: [{ code: status, message: 'no active stream session found' }] },
        };
      return { body: { meta: { query_time: 0.001 }, resources: [], errors: [] } };
    });
  }
  return ledger;
}

function streamConfig(api: MockServer, stream: Record<string, unknown> = {}) {
  return config({
    mode: 'stream',
    base_url: api.url,
    stream: {
      app_id: 'ssfbridgetest',
      flush_interval: '20ms',
      reconnect_initial_backoff: '20ms',
      reconnect_max_backoff: '200ms',
      ...stream,
    },
  });
}

const committedOffset = (t: TestContext, partition: string) =>
  (t.checkpoints.get(`partition-${partition}`) as { offset: number } | undefined)?.offset;

describe('crowdstrike-falcon stream mode', () => {
  it('reads every partition with its session token and commits each partition offset with its events', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => {
      if (c.partition === '0')
        c.res.write(streamRecord(100) + streamRecord(101, 'stream-auth-audit-ignored'));
      else c.res.write(streamRecord(7, 'stream-legacy-severity-4-high'));
    });
    discoveryApi(api, feeds.url, { partitions: ['0', '1'] });
    const { t } = await startInstance(streamConfig(api));
    await t.until(
      () => committedOffset(t, '0') === 101 && committedOffset(t, '1') === 7,
      5000,
      'both offsets',
    );

    expect(feeds.connections.map((c) => [c.partition, c.offset, c.authorization]).sort()).toEqual([
      ['0', null, 'Token session-0-1'],
      ['1', null, 'Token session-1-1'],
    ]);
    const discovery = api.requests.find((r) => r.path === '/sensors/entities/datafeed/v2')!;
    expect(discovery.query).toMatchObject({ appId: 'ssfbridgetest', format: 'json' });
    expect(
      t
        .events()
        .map((e) => e.sourceRecordId)
        .sort(),
    ).toEqual([
      '0a1b2c3d4e5f60718293a4b5c6d7e8f9:ind:7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b:88112233445-10197-9900-100#risk-level-change:USER:HIGH',
      'ldt:7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b:4295012345#risk-level-change:USER:HIGH',
    ]);
    // The audit event at offset 101 produced no event, yet its offset is committed.
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_a_detection' })).toBe(1);
    expect(
      t.emitted.every(
        (e) =>
          e.checkpoint?.name?.startsWith('partition-') ||
          e.checkpoint?.name?.startsWith('raised-detections-'),
      ),
    ).toBe(true);
  });

  it('remembers what the datafeed raised: a Fusion workflow closing it as a false positive lowers it; a closure never raised sends nothing', async () => {
    const api = await mock();
    const incident = (offset: number, id: string, state: string) => {
      const record = fixtureInput('stream-identity-protection-incident');
      record['metadata'] = { ...record['metadata'], offset, eventCreationTime: 1767223700000 + offset };
      record['event'] = { ...record['event'], IdentityProtectionIncidentId: id, State: state };
      return `${JSON.stringify(record)}\n`;
    };
    const feeds = await datafeedHost((c) =>
      c.res.write(
        streamRecord(100) +
          // Resolved before this instance ever saw it open.
          incident(101, 'INC-never-seen-open', 'RESOLVED') +
          incident(102, 'INC-raised-here', 'NEW') +
          incident(103, 'INC-raised-here', 'RESOLVED'),
      ),
    );
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const { connector, t } = await startInstance(
      config({
        mode: 'stream',
        base_url: api.url,
        stream: { app_id: 'ssfbridgetest', flush_interval: '20ms' },
        webhook: { secret: WEBHOOK_SECRET },
        mapping: { downgrade_on_resolved: true },
      }),
    );
    await t.until(() => committedOffset(t, '0') === 103, 5000, 'offset 103');
    expect(t.events().map((e) => [e.txn, e.claims?.['current_level']])).toEqual([
      [`${fixtureInput('stream-epp-high')['event']['CompositeId']}-100`, 'HIGH'],
      ['INC-raised-here', 'HIGH'],
      ['INC-raised-here#cleared', 'LOW'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);

    // The Alerts API names the detection by the same composite id as the datafeed.
    const closed = {
      ...fixtureInput('alert-closed-false-positive'),
      composite_id: `${fixtureInput('alert-closed-false-positive')['composite_id']}-100`,
    };
    const response = await connector.handleWebhook!(webhookRequest(closed));
    expect(response).toMatchObject({ status: 202, body: { events: 1, ignored: 0 } });
    expect(t.events().at(-1)?.claims).toMatchObject({ current_level: 'LOW', previous_level: 'HIGH' });
  });

  it('sends the downgrade of a detection once: a resolved incident read again, a closure posted again, send nothing more', async () => {
    const api = await mock();
    const incident = (offset: number, state: string) => {
      const record = fixtureInput('stream-identity-protection-incident');
      record['metadata'] = { ...record['metadata'], offset, eventCreationTime: 1767223700000 + offset };
      record['event'] = { ...record['event'], IdentityProtectionIncidentId: 'INC-1', State: state };
      return `${JSON.stringify(record)}\n`;
    };
    const feeds = await datafeedHost((c) =>
      c.res.write(
        streamRecord(100) +
          incident(101, 'NEW') +
          incident(102, 'RESOLVED') +
          // A comment on the resolved incident: another event of the same state.
          incident(103, 'RESOLVED') +
          incident(104, 'CLOSED'),
      ),
    );
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const { connector, t } = await startInstance(
      config({
        mode: 'stream',
        base_url: api.url,
        stream: { app_id: 'ssfbridgetest', flush_interval: '20ms' },
        webhook: { secret: WEBHOOK_SECRET },
        mapping: { downgrade_on_resolved: true },
      }),
    );
    await t.until(() => committedOffset(t, '0') === 104, 5000, 'offset 104');
    // The detection of offset 100, closed by a Fusion workflow, posted again after a note.
    const closed = (updated: string) => ({
      ...fixtureInput('alert-closed-false-positive'),
      composite_id: `${fixtureInput('alert-closed-false-positive')['composite_id']}-100`,
      updated_timestamp: updated,
    });
    for (const updated of ['2026-01-01T02:00:00Z', '2026-01-01T02:30:00Z']) {
      expect(await connector.handleWebhook!(webhookRequest(closed(updated)))).toMatchObject({ status: 202 });
    }
    const detection = `${fixtureInput('stream-epp-high')['event']['CompositeId']}-100`;
    expect(t.events().map((e) => [e.txn, e.claims?.['current_level']])).toEqual([
      [detection, 'HIGH'],
      ['INC-1', 'HIGH'],
      ['INC-1#cleared', 'LOW'],
      [`${detection}#cleared`, 'LOW'],
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'closed' })).toBe(3);
  });

  it('keeps a session token out of logs until its expiration, then forgets it', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(1)));
    const before = Date.now();
    const expiresAt = before + 30 * 60_000;
    const tokens = { '0': `session-expiring-${before}`, '1': `session-unexpiring-${before}` };
    discoveryApi(api, feeds.url, {
      partitions: ['0', '1'],
      sessionToken: (p) => tokens[p as '0' | '1'],
      refreshInterval: 600,
      // Partition 1's token names no expiration: it lasts the session's refresh interval.
      expiration: (p) => (p === '0' ? new Date(expiresAt).toISOString() : undefined),
    });
    const { connector, t } = await startInstance(streamConfig(api));
    await t.until(() => feeds.connections.length === 2, 5000, 'both feeds open');
    await connector.stop(1000);
    const after = Date.now();
    const kept = (value: string) => registeredSecretValues().has(value);
    expect(kept(tokens['0']) && kept(tokens['1'])).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(before + 600_000 + EXPIRED_SECRET_MARGIN_MS - 1);
      expect(kept(tokens['0']) && kept(tokens['1'])).toBe(true);
      vi.setSystemTime(after + 600_000 + EXPIRED_SECRET_MARGIN_MS);
      expect(kept(tokens['1'])).toBe(false);
      vi.setSystemTime(expiresAt + EXPIRED_SECRET_MARGIN_MS - 1);
      expect(kept(tokens['0'])).toBe(true);
      vi.setSystemTime(expiresAt + EXPIRED_SECRET_MARGIN_MS);
      expect(kept(tokens['0'])).toBe(false);
    } finally {
      vi.useRealTimers();
    }
  });

  it('rediscovers after EOF and resumes at the committed offset, skipping the replayed record', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => {
      if (c.offset === null) c.res.end(streamRecord(200) + streamRecord(201));
      else c.res.write(streamRecord(201) + streamRecord(202));
    });
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const { t } = await startInstance(streamConfig(api));
    await t.until(() => committedOffset(t, '0') === 202, 5000, 'offset 202');

    expect(feeds.connections.map((c) => c.offset)).toEqual([null, '201']);
    expect(feeds.connections.map((c) => c.authorization)).toEqual(['Token session-0-1', 'Token session-0-2']);
    expect(t.events().map((e) => e.sourceRecordId.split('#')[0]!.split('-').at(-1))).toEqual([
      '200',
      '201',
      '202',
    ]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'replayed_offset' })).toBe(1);
  });

  it('resumes a restarted instance from the stored offset of each partition', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(Number(c.offset ?? 0) + 1)));
    discoveryApi(api, feeds.url, { partitions: ['3'] });
    const t = createTestContext({ checkpoints: new Map([['partition-3', { offset: 4410300 }]]) });
    await startInstance(streamConfig(api), t);
    await t.until(() => committedOffset(t, '3') === 4410301, 5000, 'offset 4410301');
    expect(feeds.connections[0]?.offset).toBe('4410300');
  });

  it('refreshes the stream session before its interval ends', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(1)));
    const ledger = discoveryApi(api, feeds.url, { partitions: ['0'], refreshInterval: 1 });
    const { t } = await startInstance(streamConfig(api));
    const refreshes = () => api.requests.filter((r) => r.path === '/sensors/entities/datafeed-actions/v1/0');
    await t.until(() => refreshes().length >= 2, 3000, 'two session refreshes');
    expect(refreshes()[0]!.query).toMatchObject({
      action_name: 'refresh_active_stream_session',
      appId: 'ssfbridgetest',
    });
    expect(refreshes()[0]!.headers['authorization']).toBe(`Bearer ${ledger.issued[0]}`);
    expect(feeds.connections).toHaveLength(1);
  });

  it('tries a failed session refresh again within the session, instead of at the next interval', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(1)));
    discoveryApi(api, feeds.url, {
      partitions: ['0'],
      refreshInterval: 2,
      refreshAnswers: [
        { status: 503, body: { errors: [{ code: 503, message: 'Service Unavailable' }] } },
        {
          status: 429,
          headers: { 'retry-after': '0' },
          body: { errors: [{ code: 429, message: 'API rate limit exceeded.' }] },
        },
      ],
    });
    const { t } = await startInstance(streamConfig(api));
    const refreshes = () => api.requests.filter((r) => r.path === '/sensors/entities/datafeed-actions/v1/0');
    const started = Date.now();
    // The first refresh is due after 1 s (halfway through the 2 s session); the next interval
    // would come only after the session had ended.
    await t.until(() => refreshes().length >= 3, 1900, 'two more refresh attempts within the session');
    expect(Date.now() - started).toBeLessThan(1900);
    expect(feeds.connections).toHaveLength(1);
    expect(t.logs.filter((l) => l.msg === 'session refresh failed; trying again')).toHaveLength(2);
  });

  it('reconnects when the session refresh says the session is gone', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(Number(c.offset ?? 0) + 1)));
    // The session is gone only once the first record is committed, however slow the machine: the
    // reconnection must then resume after it.
    let firstCommitted = () => false;
    discoveryApi(api, feeds.url, {
      partitions: ['0'],
      refreshInterval: 0.1,
      refreshStatus: () => (firstCommitted() ? 404 : undefined),
    });
    const { t } = await startInstance(streamConfig(api));
    firstCommitted = () => committedOffset(t, '0') === 1;
    await t.until(() => feeds.connections.length >= 2, 3000, 'a reconnection');
    expect(feeds.connections[1]?.offset).toBe('1');
    expect(t.statuses.find((s) => s.state !== 'ok')).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringMatching(/session could not be refreshed.*404/),
    });
  });

  it('waits until X-Ratelimit-Retryafter when discovery is rate limited', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(1)));
    const retryAt = Math.ceil(Date.now() / 1000) + 1;
    discoveryApi(api, feeds.url, {
      partitions: ['0'],
      discoveryAnswers: [
        {
          status: 429,
          headers: { 'x-ratelimit-retryafter': String(retryAt) },
          body: { errors: [{ code: 429, message: 'rate limit' }] },
        },
      ],
    });
    const { t } = await startInstance(streamConfig(api));
    await t.until(() => committedOffset(t, '0') === 1, 5000, 'the first record after the wait');
    expect(feeds.connections[0]).toBeDefined();
    const discoveries = api.requests.filter((r) => r.path === '/sensors/entities/datafeed/v2');
    expect(discoveries).toHaveLength(2);
    expect(Date.now()).toBeGreaterThanOrEqual(retryAt * 1000 - 50);
    expect(t.statuses.find((s) => s.state === 'recoverable_error')?.reason).toMatch(/429/);
  });

  it('keeps complete records read before the connection broke and reconnects from there', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => {
      if (c.offset === null) {
        c.res.write(streamRecord(10) + streamRecord(11) + '{"metadata":{"offset":12,"eventType":"EppDetecti');
        setTimeout(() => c.res.socket?.destroy(), 30);
      } else c.res.write(streamRecord(12));
    });
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const { t } = await startInstance(streamConfig(api));
    await t.until(() => committedOffset(t, '0') === 12, 5000, 'offset 12');
    expect(feeds.connections.map((c) => c.offset)).toEqual([null, '11']);
    expect(t.events()).toHaveLength(3);
  });

  it('reads more than the HTTP client response limit (10 MiB) over one connection', async () => {
    const api = await mock();
    // 3,000 detection summaries of about 4 KB each (long command lines), 12 MB in all: a busy
    // partition's hour. Low ones are ignored; every 1,000th is High and raises the level.
    const padding = ` --config "C:\\ProgramData\\Agent\\${'x'.repeat(3900)}.cfg"`;
    const record = (offset: number) => {
      const r = fixtureInput(offset % 1000 === 0 ? 'stream-epp-high' : 'stream-epp-low-ignored');
      r['metadata'] = { ...r['metadata'], offset };
      r['event'] = {
        ...r['event'],
        CompositeId: `${r['event']['CompositeId']}-${offset}`,
        CommandLine: `${r['event']['CommandLine']}${padding}`,
      };
      return `${JSON.stringify(r)}\n`;
    };
    const sent: number[] = [];
    const feeds = await datafeedHost((c) => {
      const chunk: string[] = [];
      for (let offset = Number(c.offset ?? 0) + 1; offset <= 3000; offset += 1) chunk.push(record(offset));
      const body = chunk.join('');
      sent.push(Buffer.byteLength(body));
      c.res.write(body);
    });
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const { t } = await startInstance(streamConfig(api, { batch_size: 500 }));
    await t.until(() => committedOffset(t, '0') === 3000, 15_000, 'offset 3000');
    expect(sent[0]).toBeGreaterThan(10 * 1024 * 1024);
    expect(feeds.connections.map((c) => c.offset)).toEqual([null]);
    expect(feeds.connections[0]!.res.destroyed).toBe(false);
    expect(t.statuses.filter((s) => s.state !== 'ok')).toEqual([]);
    expect(t.events().map((e) => e.sourceRecordId.split('#')[0]!.split('-').at(-1))).toEqual([
      '1000',
      '2000',
      '3000',
    ]);
  }, 30_000);

  it('backs off from the first step again after a connection that delivered records breaks', async () => {
    const api = await mock();
    const openedAt: number[] = [];
    // Every connection delivers one record, then breaks: each one makes progress.
    const feeds = await datafeedHost((c) => {
      openedAt.push(Date.now());
      c.res.write(streamRecord(Number(c.offset ?? 0) + 1, 'stream-auth-audit-ignored'));
      setTimeout(() => c.res.socket?.destroy(), 100);
    });
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const { t } = await startInstance(
      streamConfig(api, { reconnect_initial_backoff: '100ms', reconnect_max_backoff: '10s' }),
    );
    await t.until(() => feeds.connections.length >= 6, 10_000, 'six connections');
    expect(feeds.connections.map((c) => c.offset)).toEqual([null, '1', '2', '3', '4', '5']);
    // Doubling on every break would wait 0.4–0.8 s before the fifth reconnection, 0.8–1.6 s
    // before the sixth; each waits at most the first step (100 ms) after 100 ms of reading.
    const gaps = openedAt.slice(1, 6).map((at, i) => at - openedAt[i]!);
    expect(Math.max(...gaps)).toBeLessThan(450);
    expect(t.statuses.some((s) => s.state === 'permanent_error')).toBe(false);
  }, 20_000);

  it('maps records whose UTF-8 characters are split across chunks', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => {
      const bytes = Buffer.from(streamRecord(5, 'stream-epp-unicode-names'));
      const cut = bytes.indexOf(Buffer.from('Ü')) + 1;
      c.res.write(bytes.subarray(0, cut));
      setTimeout(() => c.res.write(bytes.subarray(cut)), 20);
    });
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const { t } = await startInstance(streamConfig(api));
    await t.until(() => committedOffset(t, '0') === 5, 5000, 'offset 5');
    expect(t.events()[0]?.subject).toMatchObject({ user: { email: 'juergen.gross@example.de' } });
    expect(t.events()[0]?.claims?.['reason_admin']).toEqual({
      en: expect.stringContaining('on NB-MÜNCHEN-07'),
    });
  });

  it('stops reading when the outbox is full and resumes from the last committed offset', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => {
      if (c.offset === null) c.res.write(streamRecord(1));
      else c.res.write(streamRecord(Number(c.offset)) + streamRecord(Number(c.offset) + 1));
    });
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const t = createTestContext({ checkpoints: new Map([['partition-0', { offset: 0 }]]) });
    t.failNextEmits(1, 50);
    await startInstance(streamConfig(api), t);
    await t.until(() => committedOffset(t, '0') === 1, 5000, 'offset 1');
    expect(t.emitted[0]?.ok).toBe(false);
    expect(feeds.connections.map((c) => c.offset)).toEqual(['0', '0']);
    expect(t.events().map((e) => e.sourceRecordId.split('#')[0]!.split('-').at(-1))).toEqual(['1']);
  });

  it('skips a record whose events the event catalog refuses, and moves the offset past it', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(300) + streamRecord(301)));
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const t = createTestContext({
      refuse: (e) =>
        e.sourceRecordId.includes('-300#') ? 'subject.email: not an e-mail address' : undefined,
    });
    await startInstance(streamConfig(api, { batch_size: 10 }), t);
    await t.until(() => committedOffset(t, '0') === 301, 5000, 'offset 301');
    expect(t.events().map((e) => e.sourceRecordId.split('#')[0]!.split('-').at(-1))).toEqual(['301']);
    expect(t.counter('edr_records_total', { outcome: 'rejected', reason: 'malformed' })).toBe(1);
    expect(feeds.connections).toHaveLength(1);
    expect(t.statuses.some((s) => s.state !== 'ok')).toBe(false);
  });

  it('reads the datafeed only in a run of the scheduled task, and lets go of it when the run is aborted', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(Number(c.offset ?? 0) + 1)));
    discoveryApi(api, feeds.url, { partitions: ['0'] });
    const t = createTestContext();
    const connector = falcon.create(t.ctx, streamConfig(api));
    running.push({ connector, t });
    await connector.start(t.abort.signal);
    // Started, but not elected to run scheduled work: nothing is opened.
    await new Promise((r) => setTimeout(r, 100));
    expect(api.requests).toEqual([]);
    expect(feeds.connections).toEqual([]);
    const task = t.tasks.find((candidate) => candidate.name === 'stream')!;
    expect(task.options).toEqual({ everyMs: 5_000, runOnStart: true });

    // Elected: the run reads the datafeed until it is aborted (another instance became the leader).
    const leadership = new AbortController();
    const run = task.run(leadership.signal);
    await t.until(() => committedOffset(t, '0') === 1, 5000, 'offset 1');
    leadership.abort(new Error('this instance is no longer the scheduler leader'));
    await run;
    await t.until(
      () => feeds.connections[0]!.res.destroyed || feeds.connections[0]!.res.closed,
      2000,
      'closed',
    );

    // The next leader's run resumes from the committed offset.
    void task.run(new AbortController().signal);
    await t.until(() => feeds.connections.length === 2, 5000, 'a second connection');
    expect(feeds.connections[1]?.offset).toBe('1');
  });

  it('stops within its deadline while a stream is open', async () => {
    const api = await mock();
    const feeds = await datafeedHost((c) => c.res.write(streamRecord(1)));
    discoveryApi(api, feeds.url, { partitions: ['0', '1'] });
    const { connector, t } = await startInstance(streamConfig(api));
    await t.until(() => feeds.connections.length === 2, 3000, 'both partitions');
    const started = Date.now();
    await connector.stop(500);
    expect(Date.now() - started).toBeLessThan(600);
    const connectionsAtStop = feeds.connections.length;
    await new Promise((r) => setTimeout(r, 100));
    expect(feeds.connections.length).toBe(connectionsAtStop);
  });
});

// ---------------------------------------------------------------------------------------------

describe('crowdstrike-falcon webhook', () => {
  const secret = 'fusion-workflow-secret-0001';
  const request = (
    body: unknown,
    headers: Record<string, string> = { authorization: `Bearer ${secret}` },
  ) => ({
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    query: {},
    rawBody: Buffer.from(JSON.stringify(body)),
    body,
    remoteAddress: '127.0.0.1',
  });

  it('maps what a Falcon Fusion workflow posts, in the same way as polled records', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const body = {
      resources: [fixtureInput('alert-critical-contained'), fixtureInput('stream-auth-audit-ignored')],
    };
    const response = await connector.handleWebhook!(request(body));
    expect(response).toMatchObject({ status: 202, body: { records: 2, events: 2, ignored: 1 } });
    expect(t.events().map((e) => e.type)).toEqual(['caep.risk-level-change', 'caep.session-revoked']);
    expect(t.tasks).toEqual([]);
  });

  it('reports the instance healthy only in mode webhook: a request accepted in mode alerts leaves the refused credentials of the poll flagged', async () => {
    const server = await mock();
    alertsApi(server, []);
    const { connector, t } = await startInstance(
      config({ base_url: server.url, client_secret: 'not-the-secret', webhook: { secret } }),
    );
    await expect(t.runTask('alerts')).rejects.toMatchObject({ authFailure: true });
    expect(t.statuses.at(-1)?.state).toBe('permanent_error');
    const response = await connector.handleWebhook!(request(fixtureInput('alert-epp-high-user-principal')));
    expect(response).toMatchObject({ status: 202, body: { events: 1 } });
    expect(t.statuses.at(-1)).toMatchObject({
      state: 'permanent_error',
      reason: expect.stringMatching(/refused the credentials/),
    });

    const only = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    await only.connector.handleWebhook!(request(fixtureInput('alert-epp-high-user-principal')));
    expect(only.t.statuses).toEqual([{ state: 'ok' }]);
  });

  it('sends no downgrade for an alert closed as a false positive that this instance never raised, and says why', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const closed = fixtureInput('alert-closed-false-positive');
    const response = await connector.handleWebhook!(request(closed));
    expect(response).toMatchObject({ status: 202, body: { records: 1, events: 0, ignored: 1 } });
    expect(t.events()).toEqual([]);
    expect(t.counter('edr_records_total', { outcome: 'ignored', reason: 'not_raised_here' })).toBe(1);
    const logged = t.logs.find((l) => l.msg === 'record ignored');
    expect((logged?.obj as { reason: string }).reason).toMatch(
      /^not_raised_here: .*-9900 was closed as a false positive, but this instance did not raise the risk level for it/,
    );

    // Raised here (the same alert, open), then closed: the downgrade is sent.
    await connector.handleWebhook!(request(fixtureInput('alert-epp-high-user-principal')));
    const again = await connector.handleWebhook!(request(closed));
    expect(again).toMatchObject({ status: 202, body: { events: 1, ignored: 0 } });
    expect(
      t.events().map((e) => [e.claims?.['current_level'], e.claims?.['previous_level'] ?? null]),
    ).toEqual([
      ['HIGH', null],
      ['LOW', 'HIGH'],
    ]);
  });

  it('lowers a detection raised and closed in one request, and remembers a raise only once it is durable', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const open = fixtureInput('alert-epp-high-user-principal');
    const closed = fixtureInput('alert-closed-false-positive');
    // The outbox is full: the raise is not durable, so it is not remembered.
    t.failNextEmits(1);
    await expect(connector.handleWebhook!(request(open))).rejects.toBeInstanceOf(RetryableError);
    expect((await connector.handleWebhook!(request(closed))).body).toMatchObject({ events: 0, ignored: 1 });

    const both = await connector.handleWebhook!(request({ resources: [open, closed] }));
    expect(both).toMatchObject({ status: 202, body: { events: 2, ignored: 0 } });
    expect(t.events().map((e) => e.claims?.['current_level'])).toEqual(['HIGH', 'LOW']);
  });

  it('accepts the secret in a custom header, and refuses a missing or wrong one', async () => {
    const { connector, t } = await startInstance(
      config({ mode: 'webhook', webhook: { secret, secret_header: 'X-Falcon-Secret' } }),
    );
    const body = fixtureInput('alert-epp-high-user-principal');
    expect((await connector.handleWebhook!(request(body, {}))).status).toBe(401);
    expect(
      (await connector.handleWebhook!(request(body, { authorization: 'Bearer wrong-secret-000000' }))).status,
    ).toBe(403);
    expect((await connector.handleWebhook!(request(body, { 'x-falcon-secret': secret }))).status).toBe(202);
    expect(t.events()).toHaveLength(1);
  });

  it('refuses a batch with a malformed record and accepts none of it', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    const response = await connector.handleWebhook!(
      request([fixtureInput('alert-epp-high-user-principal'), { hello: 'world' }]),
    );
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({
      problems: [{ index: 1, message: expect.stringContaining('not a CrowdStrike Falcon record') }],
    });
    expect(t.emitted).toEqual([]);
  });

  it('lets a full outbox surface as a retryable error, so the sender is told to retry', async () => {
    const { connector, t } = await startInstance(config({ mode: 'webhook', webhook: { secret } }));
    t.failNextEmits(1, 2000);
    await expect(
      connector.handleWebhook!(request(fixtureInput('alert-epp-high-user-principal'))),
    ).rejects.toBeInstanceOf(RetryableError);
  });

  it('answers 404 on an instance without a webhook block', async () => {
    const server = await mock();
    alertsApi(server, []);
    const { connector } = await startInstance(config({ base_url: server.url }));
    expect((await connector.handleWebhook!(request({}))).status).toBe(404);
  });
});
