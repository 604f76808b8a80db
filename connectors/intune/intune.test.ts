import { readdirSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PermanentError } from '../../core/plugin-api/index.ts';
import { MockServer, type RecordedRequest } from '../../core/plugin-api/testing/index.ts';
import { createIntune } from './connector.ts';
import { fixtureSettings } from './fixtures/settings.ts';
import { intuneConnector } from './index.ts';
import { mapSnapshot, type IntuneState } from './mapping.ts';
import {
  checkFixture,
  checkSequence,
  checkSimulateGolden,
  readFixture,
} from '../_shared/mdm-fixture-checks.ts';
import { testContext, type TestContext } from '../_shared/mdm-test-support.ts';

const fixtureDir = new URL('./fixtures/', import.meta.url);

describe('intune mapping fixtures', () => {
  const config = intuneConnector.configSchema.parse(fixtureSettings);
  for (const file of readdirSync(fixtureDir).filter((f) => f.endsWith('.json'))) {
    const fixture = readFixture(new URL(file, fixtureDir));
    it(`${file}: ${fixture.description}`, () => {
      checkFixture(fixture, () => intuneConnector.map!(fixture.input, config));
    });
  }
});

describe('intune snapshot sequences (state carried from one scan to the next, default settings)', () => {
  const config = intuneConnector.configSchema.parse({ ...fixtureSettings, first_sighting: 'baseline' });
  const sequences = new URL('./sequences/', fixtureDir);
  for (const name of readdirSync(sequences)) {
    it(name, () => {
      checkSequence(new URL(`${name}/`, sequences), (input, state: IntuneState | undefined) =>
        intuneConnector.map!(input, config, state),
      );
    });
  }
});

// ─── Golden: the sequence through `ssf-bridge simulate` ─────────────────────────────────────────

describe('golden: ssf-bridge simulate', () => {
  it("prints the sequence's events in order with state carried between payloads, then rejects a malformed one", async () => {
    await checkSimulateGolden(
      'intune',
      new URL('./sequences/lifecycle/', fixtureDir),
      new URL('malformed-device-missing-compliance-state.json', fixtureDir),
    );
  }, 60_000);
});

// ─── Behaviour against a Graph API fake on loopback ─────────────────────────────────────────────

const TENANT = 'contoso.onmicrosoft.com';
const TOKEN_PATH = `/${TENANT}/oauth2/v2.0/token`;
const DEVICES_PATH = '/v1.0/deviceManagement/managedDevices';

function device(id: string, complianceState: string, extra: Record<string, unknown> = {}) {
  return {
    id,
    deviceName: `DEV-${id.slice(0, 4).toUpperCase()}`,
    userPrincipalName: `user-${id.slice(0, 4)}@example.com`,
    emailAddress: `user-${id.slice(0, 4)}@example.com`,
    azureADDeviceId: `entra-${id}`,
    complianceState,
    lastSyncDateTime: '2026-01-01T00:00:00Z',
    operatingSystem: 'Windows',
    serialNumber: `SN-${id}`,
    partnerReportedThreatState: 'unknown',
    ...extra,
  };
}

const server = new MockServer();
let pages: unknown[][] = [];
let tokens: RecordedRequest[] = [];

function serveGraph(): void {
  server.reset();
  tokens = [];
  server.on('POST', TOKEN_PATH, (req) => {
    tokens.push(req);
    return { body: { access_token: `graph-token-${tokens.length}`, token_type: 'Bearer', expires_in: 3599 } };
  });
  server.on('GET', DEVICES_PATH, (req) => {
    const index = Number(req.query['$skiptoken'] ?? 0);
    const value = pages[index] ?? [];
    const next =
      index + 1 < pages.length
        ? { '@odata.nextLink': `${server.url}${DEVICES_PATH}?$skiptoken=${index + 1}` }
        : {};
    return {
      body: {
        '@odata.context': `${server.url}/v1.0/$metadata#deviceManagement/managedDevices`,
        value,
        ...next,
      },
    };
  });
}

beforeAll(async () => {
  await server.start();
});
afterAll(async () => {
  await server.close();
});

const running: Array<{ stop(ms: number): Promise<void> }> = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop(100);
});

function connector(t: TestContext<IntuneState>, settings: Record<string, unknown> = {}) {
  const config = intuneConnector.configSchema.parse({
    tenant_id: TENANT,
    client_id: 'app-id',
    client_secret: 'graph-client-secret-value',
    graph_url: server.url,
    login_url: server.url,
    page_size: 2,
    ...settings,
  });
  const instance = createIntune(t.ctx, config);
  running.push(instance);
  return instance;
}

async function scan(t: TestContext<IntuneState>, settings: Record<string, unknown> = {}) {
  const instance = connector(t, settings);
  await instance.start(t.ctx.signal);
  await t.runTask('scan');
  return instance;
}

function complianceEvents(t: TestContext<IntuneState>) {
  return t.events().map((e) => ({
    device: (e.subject['device'] as { id: string }).id,
    previous: e.claims?.['previous_status'],
    current: e.claims?.['current_status'],
    id: e.sourceRecordId,
  }));
}

describe('intune config', () => {
  it('refuses plain http Graph and sign-in URLs other than the local machine: the client secret would travel in clear text', () => {
    const problems = (urls: Record<string, string>) =>
      (intuneConnector.configSchema.safeParse({ ...fixtureSettings, ...urls }).error?.issues ?? []).map(
        (i) => `${i.path.join('.')}: ${i.message}`,
      );
    expect(
      problems({ login_url: 'http://login.microsoftonline.us', graph_url: 'http://graph.microsoft.us' }),
    ).toEqual([
      'graph_url: must be an https URL (the credentials would travel in clear text over http)',
      'login_url: must be an https URL (the credentials would travel in clear text over http)',
    ]);
    expect(problems({ login_url: 'http://127.0.0.1:8080', graph_url: 'http://[::1]:8081' })).toEqual([]);
    expect(
      problems({ login_url: 'https://login.microsoftonline.us', graph_url: 'https://graph.microsoft.us' }),
    ).toEqual([]);
  });
});

describe('intune connector against a Graph fake', () => {
  it('pages through @odata.nextLink, signs in once with client credentials and records a baseline on the first scan', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'noncompliant')], [device('c3', 'compliant')]];
    const t = testContext<IntuneState>();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    expect(t.tasks.map((task) => [task.name, task.options.everyMs, task.options.runOnStart])).toEqual([
      ['scan', 15 * 60_000, true],
    ]);
    await t.runTask('scan');

    const deviceRequests = server.requests.filter((r) => r.path === DEVICES_PATH);
    expect(deviceRequests.map((r) => r.query['$skiptoken'] ?? 'first')).toEqual(['first', '1']);
    expect(deviceRequests[0]?.query['$select']).toContain('complianceState');
    expect(deviceRequests[0]?.query['$top']).toBe('2');
    expect(deviceRequests.every((r) => r.headers['authorization'] === 'Bearer graph-token-1')).toBe(true);
    expect(tokens).toHaveLength(1);
    const form = new URLSearchParams(tokens[0]!.body);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'client_credentials',
      scope: `${server.url}/.default`,
      client_id: 'app-id',
      client_secret: 'graph-client-secret-value',
    });

    expect(t.events()).toEqual([]);
    const state = t.checkpoints.get('default') as IntuneState;
    expect(Object.keys(state.devices).sort()).toEqual(['a1', 'b2', 'c3']);
    expect(state.devices['b2']?.status).toBe('not-compliant');
    expect(state.last_scan?.devices).toBe(3);
    expect(t.successes).toBe(1);

    // A second scan reuses the cached token.
    await t.runTask('scan');
    expect(tokens).toHaveLength(1);
  });

  it('emits exactly one event per transition, committed with the device state, and nothing for unchanged devices', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'noncompliant')]];
    const t = testContext<IntuneState>();
    await scan(t);
    pages = [
      [
        device('a1', 'noncompliant', { lastSyncDateTime: '2026-01-02T08:00:00Z' }),
        device('b2', 'noncompliant'),
      ],
    ];
    await t.runTask('scan');
    await t.runTask('scan');

    expect(complianceEvents(t)).toEqual([
      {
        device: 'entra-a1',
        previous: 'compliant',
        current: 'not-compliant',
        id: 'intune:a1:1:compliant>not-compliant:2026-01-02T08:00:00Z',
      },
    ]);
    const carrying = t.emits.find((e) => e.events.length > 0)!;
    const committed = carrying.checkpoint?.value as IntuneState;
    expect(committed.devices['a1']).toMatchObject({
      status: 'not-compliant',
      seq: 1,
      since: '2026-01-02T08:00:00Z',
    });
    expect(t.counter('intune_events_total')).toBe(1);
  });

  it('resumes from the stored device state after a restart without sending anything twice', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant')]];
    const first = testContext<IntuneState>();
    await scan(first);
    pages = [[device('a1', 'noncompliant'), device('b2', 'compliant')]];
    await first.runTask('scan');
    expect(first.events()).toHaveLength(1);

    const second = testContext<IntuneState>();
    for (const [k, v] of first.checkpoints) second.checkpoints.set(k, v);
    await scan(second);
    expect(second.events()).toEqual([]);
    pages = [[device('a1', 'noncompliant'), device('b2', 'noncompliant')]];
    await second.runTask('scan');
    expect(complianceEvents(second).map((e) => e.device)).toEqual(['entra-b2']);
  });

  it('re-emits the same source record ids when the outbox refused the page, because the state did not move', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t);
    pages = [[device('a1', 'noncompliant')]];
    t.failNextEmit();
    await expect(t.runTask('scan')).rejects.toThrow('the outbox is full');
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');
    expect((t.checkpoints.get('default') as IntuneState).devices['a1']?.status).toBe('compliant');
    await t.runTask('scan');
    expect(complianceEvents(t).map((e) => e.id)).toEqual([
      'intune:a1:1:compliant>not-compliant:2026-01-01T00:00:00Z',
    ]);
  });

  it('waits out 429 throttling for the Retry-After Graph sends, then goes on', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant')]];
    let throttled = 0;
    const answer = server.on.bind(server);
    answer('GET', DEVICES_PATH, () => {
      throttled += 1;
      return throttled === 1
        ? { status: 429, headers: { 'retry-after': '1' }, body: { error: { code: 'TooManyRequests' } } }
        : { body: { value: pages[0] } };
    });
    const t = testContext<IntuneState>();
    const started = Date.now();
    await scan(t);
    expect(throttled).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(Object.keys((t.checkpoints.get('default') as IntuneState).devices)).toEqual(['a1']);
  });

  it('gives up on a throttled scan whose Retry-After exceeds max_retry_wait, and keeps the state', async () => {
    serveGraph();
    server.on('GET', DEVICES_PATH, () => ({ status: 429, headers: { 'retry-after': '120' } }));
    const t = testContext<IntuneState>();
    const instance = connector(t, { max_retry_wait: '10s' });
    await instance.start(t.ctx.signal);
    await expect(t.runTask('scan')).rejects.toThrow('429');
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');
    expect(t.checkpoints.has('default')).toBe(false);
  });

  it('retries a 5xx within the scan and fails the scan as recoverable when it persists', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant')]];
    let calls = 0;
    server.on('GET', DEVICES_PATH, () => {
      calls += 1;
      return calls === 1 ? { status: 503, body: 'upstream' } : { body: { value: pages[0] } };
    });
    const t = testContext<IntuneState>();
    await scan(t);
    expect(calls).toBe(2);
    expect(t.checkpoints.has('default')).toBe(true);

    server.on('GET', DEVICES_PATH, () => ({ status: 500, body: { error: { code: 'InternalServerError' } } }));
    const before = server.requests.length;
    await expect(t.runTask('scan')).rejects.toThrow('500');
    expect(server.requests.length - before).toBe(3);
    expect(t.statuses.at(-1)).toMatchObject({ state: 'recoverable_error' });
  });

  it('flags the instance when Entra refuses the client credentials, and sends no event', async () => {
    serveGraph();
    server.on('POST', TOKEN_PATH, () => ({
      status: 401,
      body: { error: 'invalid_client', error_description: 'AADSTS7000215: Invalid client secret provided.' },
    }));
    const t = testContext<IntuneState>();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await expect(t.runTask('scan')).rejects.toBeInstanceOf(PermanentError);
    expect(t.statuses.map((s) => s.state)).toContain('permanent_error');
    expect(t.statuses.at(-1)?.reason).toContain('refused');
    expect(t.emits).toEqual([]);
    expect(await instance.check!(t.ctx.signal)).toMatchObject({ ok: false, retryable: false });
  });

  it('check() succeeds against a healthy tenant', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant')]];
    const t = testContext<IntuneState>();
    const instance = connector(t);
    expect(await instance.check!(t.ctx.signal)).toMatchObject({ ok: true });
    expect(server.requests.find((r) => r.path === DEVICES_PATH)?.query['$top']).toBe('1');
  });

  it('handles a vanished device by policy, and distrusts a scan that returns no device at all', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'noncompliant'), device('c3', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t);
    pages = [];
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    expect(t.logs.some((l) => l.level === 'warn' && l.msg?.includes('returned no device'))).toBe(true);
    expect(t.statuses.at(-1)).toEqual({
      state: 'recoverable_error',
      reason:
        "the scan returned no device while 3 are known; check the app's DeviceManagementManagedDevices.Read.All permission",
    });
    expect(Object.keys((t.checkpoints.get('default') as IntuneState).devices)).toHaveLength(3);

    pages = [[device('b2', 'noncompliant')]];
    await t.runTask('scan');
    // a1 and c3 were compliant: reported not-compliant and kept as gone; b2 stays.
    expect(complianceEvents(t).map((e) => [e.device, e.current])).toEqual([
      ['entra-a1', 'not-compliant'],
      ['entra-c3', 'not-compliant'],
    ]);
    const devices = (t.checkpoints.get('default') as IntuneState).devices;
    expect(Object.keys(devices).sort()).toEqual(['a1', 'b2', 'c3']);
    expect(devices['a1']).toMatchObject({ status: 'not-compliant', gone: expect.any(String) });
    expect(devices['b2']).not.toHaveProperty('gone');
  });

  it('sends the current status of a device reported gone that Intune lists again, under new record ids', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t);
    // a1 is missing from one complete scan (reported not-compliant), then listed again, compliant.
    pages = [[device('b2', 'compliant')]];
    await t.runTask('scan');
    pages = [
      [device('a1', 'compliant', { lastSyncDateTime: '2026-01-03T00:00:00Z' }), device('b2', 'compliant')],
    ];
    await t.runTask('scan');
    // Missing once more: the second report is a new record, not a duplicate of the first one.
    pages = [[device('b2', 'compliant')]];
    await t.runTask('scan');

    expect(complianceEvents(t)).toEqual([
      {
        device: 'entra-a1',
        previous: 'compliant',
        current: 'not-compliant',
        id: 'intune:a1:1:compliant>not-compliant:vanished',
      },
      {
        device: 'entra-a1',
        previous: 'not-compliant',
        current: 'compliant',
        id: 'intune:a1:2:not-compliant>compliant:2026-01-03T00:00:00Z',
      },
      {
        device: 'entra-a1',
        previous: 'compliant',
        current: 'not-compliant',
        id: 'intune:a1:3:compliant>not-compliant:vanished',
      },
    ]);
    expect(t.events()[1]?.claims?.['reason_admin']).toEqual({
      en: 'Intune reports "DEV-A1" as compliant (listed again after it was reported gone)',
    });
  });

  it('keeps vanished devices silently with vanished_devices: keep', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t, { vanished_devices: 'keep' });
    pages = [[device('b2', 'compliant')]];
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    expect(Object.keys((t.checkpoints.get('default') as IntuneState).devices).sort()).toEqual(['a1', 'b2']);
  });

  it('keeps the device id of the events already sent when Intune later reports an Entra device id', async () => {
    serveGraph();
    const nil = { azureADDeviceId: '00000000-0000-0000-0000-000000000000' };
    pages = [[device('a1', 'compliant', nil), device('b2', 'compliant', nil)]];
    const t = testContext<IntuneState>();
    await scan(t);
    pages = [[device('a1', 'noncompliant', nil), device('b2', 'compliant', nil)]];
    await t.runTask('scan');
    // Both join Entra; a1 is compliant again. b2 had no event yet, so it takes the Entra id.
    pages = [[device('a1', 'compliant'), device('b2', 'noncompliant')]];
    await t.runTask('scan');
    expect(complianceEvents(t).map((e) => [e.device, e.previous, e.current])).toEqual([
      ['a1', 'compliant', 'not-compliant'],
      ['a1', 'not-compliant', 'compliant'],
      ['entra-b2', 'compliant', 'not-compliant'],
    ]);
    const state = t.checkpoints.get('default') as IntuneState;
    expect(state.devices['a1']).toMatchObject({
      device_id: 'a1',
      aliases: { intune_device_id: 'a1', entra_device_id: 'entra-a1' },
    });
    expect(state.devices['b2']?.device_id).toBe('entra-b2');
  });

  it('treats inGracePeriod as not compliant when configured so', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t, { grace_period: 'not-compliant' });
    pages = [[device('a1', 'inGracePeriod')]];
    await t.runTask('scan');
    expect(complianceEvents(t).map((e) => e.current)).toEqual(['not-compliant']);
  });

  it('grace_period medium-risk: MEDIUM device risk in the grace period, held through non-compliance, LOW once compliant', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t, { grace_period: 'medium-risk' });
    const risks = () =>
      t
        .events()
        .filter((e) => e.type.endsWith('/risk-level-change'))
        .map((e) => ({
          device: (e.subject['device'] as { id: string }).id,
          principal: e.claims?.['principal'],
          previous: e.claims?.['previous_level'],
          current: e.claims?.['current_level'],
          reason: e.claims?.['risk_reason'],
        }));
    const next = async (...devices: Array<ReturnType<typeof device>>) => {
      pages = [devices];
      await t.runTask('scan');
    };
    // Into the grace period: still compliant (no compliance event), device risk MEDIUM.
    await next(device('a1', 'inGracePeriod'), device('b2', 'inGracePeriod'));
    expect(complianceEvents(t).filter((e) => e.current !== undefined)).toEqual([]);
    expect(risks()).toEqual([
      {
        device: 'entra-a1',
        principal: 'DEVICE',
        previous: undefined,
        current: 'MEDIUM',
        reason: 'INTUNE_COMPLIANCE_GRACE_PERIOD',
      },
      {
        device: 'entra-b2',
        principal: 'DEVICE',
        previous: undefined,
        current: 'MEDIUM',
        reason: 'INTUNE_COMPLIANCE_GRACE_PERIOD',
      },
    ]);
    // a1 is fixed; b2's grace period runs out: not compliant, and its risk stays MEDIUM.
    await next(device('a1', 'compliant'), device('b2', 'noncompliant'));
    expect(risks().slice(2)).toEqual([
      {
        device: 'entra-a1',
        principal: 'DEVICE',
        previous: 'MEDIUM',
        current: 'LOW',
        reason: 'INTUNE_COMPLIANCE_GRACE_PERIOD_ENDED',
      },
    ]);
    expect(
      complianceEvents(t)
        .filter((e) => e.current !== undefined)
        .map((e) => [e.device, e.current]),
    ).toEqual([['entra-b2', 'not-compliant']]);
    // b2 compliant again: its grace-period risk ends with it.
    await next(device('a1', 'compliant'), device('b2', 'compliant'));
    expect(risks().slice(3)).toEqual([
      {
        device: 'entra-b2',
        principal: 'DEVICE',
        previous: 'MEDIUM',
        current: 'LOW',
        reason: 'INTUNE_COMPLIANCE_GRACE_PERIOD_ENDED',
      },
    ]);
    // A high threat in the grace period wins over MEDIUM: never lowered by it.
    await next(
      device('a1', 'inGracePeriod', { partnerReportedThreatState: 'highSeverity' }),
      device('b2', 'compliant'),
    );
    expect(
      risks()
        .slice(4)
        .map((r) => [r.current, r.reason]),
    ).toEqual([['HIGH', 'INTUNE_MTD_HIGH_SEVERITY']]);
  });

  it('counts and logs undetermined states, skips malformed records, and sends risk-level-change for a high MTD threat', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t);
    pages = [
      [
        device('a1', 'conflict'),
        { id: 'broken', deviceName: 'no compliance state' },
        device('b2', 'compliant', { partnerReportedThreatState: 'highSeverity' }),
      ],
    ];
    await t.runTask('scan');
    expect(t.counter('intune_undetermined_total', { compliance_state: 'conflict' })).toBe(1);
    expect(t.counter('intune_rejected_records_total')).toBe(1);
    expect(
      t.logs.some((l) => l.level === 'warn' && String(l.fields['problem']).includes('complianceState')),
    ).toBe(true);
    expect(t.events().map((e) => [e.type.split('/').at(-1), e.claims?.['current_level']])).toEqual([
      ['risk-level-change', 'HIGH'],
    ]);
    const state = t.checkpoints.get('default') as IntuneState;
    expect(state.devices['a1']).toMatchObject({ status: 'compliant', compliance_state: 'conflict' });
    expect(state.devices['broken']).toBeUndefined();

    // A known device whose record comes back malformed is still seen: it does not vanish.
    pages = [[device('a1', 'compliant'), { id: 'b2', deviceName: 'record without complianceState' }]];
    await t.runTask('scan');
    expect(t.events()).toHaveLength(1);
    expect((t.checkpoints.get('default') as IntuneState).devices['b2']).toMatchObject({
      status: 'compliant',
    });
  });

  it('refuses a next link to another host (the token must not leave Graph)', async () => {
    serveGraph();
    server.on('GET', DEVICES_PATH, () => ({
      body: { value: [device('a1', 'compliant')], '@odata.nextLink': 'https://graph.example.net/v1.0/next' },
    }));
    const t = testContext<IntuneState>();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await expect(t.runTask('scan')).rejects.toThrow('another host');
    expect(t.statuses.at(-1)?.state).toBe('permanent_error');
  });

  it('ends a scan whose next link comes back again (retryable) instead of reading it forever', async () => {
    serveGraph();
    const again = `${server.url}${DEVICES_PATH}?$skiptoken=SAME`;
    server.on('GET', DEVICES_PATH, () => ({
      body: { value: [device('a1', 'compliant')], '@odata.nextLink': again },
    }));
    const t = testContext<IntuneState>();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await expect(t.runTask('scan')).rejects.toMatchObject({
      code: 'SSF_ERR_PAGING_REPEATED',
      errorClass: 'retryable',
    });
    expect(server.requests.filter((r) => r.path === DEVICES_PATH)).toHaveLength(2);
  });

  it('rebuilds the baseline from an unreadable stored state instead of guessing transitions', async () => {
    serveGraph();
    pages = [[device('a1', 'noncompliant')]];
    const t = testContext<IntuneState>();
    t.checkpoints.set('default', { version: 99, devices: 'from a newer release' });
    await scan(t);
    expect(t.events()).toEqual([]);
    expect((t.checkpoints.get('default') as IntuneState).version).toBe(1);
    expect(t.logs.some((l) => l.msg?.includes('rebuilding the baseline'))).toBe(true);
  });

  it('stop() is safe without start, idempotent, and ends a scan in flight', async () => {
    serveGraph();
    const idle = connector(testContext<IntuneState>());
    await idle.stop(100);
    await idle.stop(100);

    server.override('hang');
    const t = testContext<IntuneState>();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    const run = t.runTask('scan').catch((err: unknown) => err);
    await new Promise((r) => setTimeout(r, 50));
    const started = Date.now();
    t.abort();
    await instance.stop(500);
    await run;
    expect(Date.now() - started).toBeLessThan(600);
    server.override(undefined);
    expect(t.statuses.some((s) => s.state === 'permanent_error')).toBe(false);
  });
});

// ─── Vanished devices: each confirmed by its own lookup, and a guard against short listings ─────

/** A device id as Intune has them (a GUID), numbered. */
const guid = (i: number) => `3f2a9c1e-7b4d-4e8a-9c3f-${String(i).padStart(12, '0')}`;

/** What `GET /deviceManagement/managedDevices/{id}` answers: the device, Graph's 404, or an error. */
type Lookup = { device: ReturnType<typeof device> } | 'not-found' | { status: number; body: unknown };

/** Graph's 404 for a managed device Intune no longer has (the Intune service wraps its own error). */
function graphNotFound(id: string) {
  return {
    status: 404,
    headers: { 'request-id': '5e0d1c2b-3a49-4f8e-9d7c-6b5a4f3e2d1c' },
    body: {
      error: {
        code: 'ResourceNotFound',
        message: `{\r\n  "_version": 3,\r\n  "Message": "Resource not found for the segment 'managedDevices'. - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: 5e0d1c2b-3a49-4f8e-9d7c-6b5a4f3e2d1c - Url: https://fef.msub02.manage.microsoft.com/DeviceFE/StatelessDeviceFEService/deviceManagement/managedDevices('${id}')?api-version=5024-11-05",\r\n  "CustomApiErrorPhrase": "",\r\n  "RetryAfter": null,\r\n  "ErrorSourceService": "",\r\n  "HttpHeaders": "{}"\r\n}`,
        innerError: {
          date: '2026-02-01T10:00:00',
          'request-id': '5e0d1c2b-3a49-4f8e-9d7c-6b5a4f3e2d1c',
          'client-request-id': '5e0d1c2b-3a49-4f8e-9d7c-6b5a4f3e2d1c',
        },
      },
    },
  };
}

/** Serves each device's own lookup as given; a device not given answers Graph's 404. */
function serveLookups(lookups: Record<string, Lookup>): void {
  for (const [id, answer] of Object.entries(lookups)) {
    server.on('GET', `${DEVICES_PATH}/${id}`, () => {
      if (answer === 'not-found') return graphNotFound(id);
      if ('device' in answer) {
        return {
          body: {
            '@odata.context': `${server.url}/v1.0/$metadata#deviceManagement/managedDevices(id,deviceName,userPrincipalName,emailAddress,azureADDeviceId,complianceState,lastSyncDateTime,serialNumber,operatingSystem,partnerReportedThreatState)/$entity`,
            ...answer.device,
          },
        };
      }
      return answer;
    });
  }
}

/** The ids looked up on their own, in request order. */
const lookedUp = () =>
  server.requests.filter((r) => r.path.startsWith(`${DEVICES_PATH}/`)).map((r) => r.path.split('/').at(-1));

describe('intune vanished devices: confirmed one by one, guarded against a short listing', () => {
  it('reproduction: 500 known compliant devices, then a listing of 1 — no device reported gone, no lookup, and the status says why', async () => {
    serveGraph();
    const fleet = Array.from({ length: 500 }, (_, i) => device(guid(i), 'compliant'));
    pages = [fleet];
    const t = testContext<IntuneState>();
    await scan(t, { page_size: 500 });
    expect(t.successes).toBe(1);

    pages = [[fleet[0]!]];
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    expect(lookedUp()).toEqual([]);
    expect(t.statuses.at(-1)).toEqual({
      state: 'recoverable_error',
      reason:
        '499 of 500 known devices are missing from the managedDevices listing, more than vanished_guard_share (10%) allows: none is reported gone this scan, since a partial Graph answer or a paging problem looks like that; if they really left Intune, raise vanished_guard_share until the scans have confirmed them gone',
    });
    expect(t.logs.some((l) => l.level === 'warn' && l.msg?.startsWith('499 of 500 known devices'))).toBe(
      true,
    );
    expect(t.counter('intune_scans_total', { outcome: 'held' })).toBe(1);
    expect(t.counter('intune_missing_devices_total', { outcome: 'held' })).toBe(499);
    const held = t.checkpoints.get('default') as IntuneState;
    expect(
      Object.values(held.devices).filter((d) => d.gone !== undefined || d.status !== 'compliant'),
    ).toEqual([]);
    expect(held.last_scan?.devices).toBe(1);

    // The whole listing again: nothing to report, and the status is good again.
    pages = [fleet];
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    expect(t.successes).toBe(2);
  });

  it('reproduction through simulate: a snapshot of 1 after one of 500 sends nothing and says why', () => {
    const config = intuneConnector.configSchema.parse({ ...fixtureSettings, first_sighting: 'baseline' });
    const fleet = Array.from({ length: 500 }, (_, i) => device(guid(i), 'compliant'));
    const first = mapSnapshot({ value: fleet }, config, undefined);
    const second = mapSnapshot({ value: [fleet[0]] }, config, first.state);
    expect(second.events).toEqual([]);
    expect(second.ignored).toContain('499 of 500 known devices are missing from the managedDevices listing');
    expect(Object.values(second.state!.devices).every((d) => d.gone === undefined)).toBe(true);
  });

  it('a device missing from the listing that Graph still answers for is not reported gone; its current state is decided', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant'), device('c3', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t);
    // The listing leaves a1 and b2 out; both are still in Intune, b2 meanwhile noncompliant.
    serveLookups({
      a1: { device: device('a1', 'compliant') },
      b2: { device: device('b2', 'noncompliant', { lastSyncDateTime: '2026-01-02T07:30:00Z' }) },
    });
    pages = [[device('c3', 'compliant')]];
    await t.runTask('scan');

    expect(lookedUp()).toEqual(['a1', 'b2']);
    const lookup = server.requests.find((r) => r.path === `${DEVICES_PATH}/a1`)!;
    expect(lookup.query['$select']).toContain('complianceState');
    expect(lookup.headers['authorization']).toBe('Bearer graph-token-1');
    expect(complianceEvents(t)).toEqual([
      {
        device: 'entra-b2',
        previous: 'compliant',
        current: 'not-compliant',
        id: 'intune:b2:1:compliant>not-compliant:2026-01-02T07:30:00Z',
      },
    ]);
    const devices = (t.checkpoints.get('default') as IntuneState).devices;
    expect(devices['a1']).toMatchObject({ status: 'compliant', seq: 0, looked_up: expect.any(String) });
    expect(devices['a1']).not.toHaveProperty('gone');
    expect(devices['b2']).toMatchObject({ status: 'not-compliant', seq: 1 });
    expect(t.counter('intune_missing_devices_total', { outcome: 'present' })).toBe(2);
    expect(t.successes).toBe(2);

    // Listed again: no event, and the lookup mark is dropped.
    pages = [[device('a1', 'compliant'), device('c3', 'compliant')]];
    serveLookups({
      b2: { device: device('b2', 'noncompliant', { lastSyncDateTime: '2026-01-02T07:30:00Z' }) },
    });
    await t.runTask('scan');
    expect(t.events()).toHaveLength(1);
    expect((t.checkpoints.get('default') as IntuneState).devices['a1']).not.toHaveProperty('looked_up');
  });

  it('a device Graph answers 404 for is handled by vanished_devices: not-compliant by default, dropped with forget', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'noncompliant'), device('c3', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t);
    serveLookups({ a1: 'not-found', b2: 'not-found' });
    pages = [[device('c3', 'compliant')]];
    await t.runTask('scan');

    expect(lookedUp()).toEqual(['a1', 'b2']);
    expect(complianceEvents(t)).toEqual([
      {
        device: 'entra-a1',
        previous: 'compliant',
        current: 'not-compliant',
        id: 'intune:a1:1:compliant>not-compliant:vanished',
      },
    ]);
    expect(t.events()[0]?.claims?.['reason_admin']).toEqual({
      en: '"DEV-A1" is no longer managed by Intune (missing from managedDevices: retired, wiped or deleted)',
    });
    const devices = (t.checkpoints.get('default') as IntuneState).devices;
    expect(devices['a1']).toMatchObject({ status: 'not-compliant', gone: expect.any(String) });
    expect(devices['b2']).toMatchObject({ status: 'not-compliant', gone: expect.any(String) });
    expect(t.counter('intune_missing_devices_total', { outcome: 'gone' })).toBe(2);
    expect(t.successes).toBe(2);

    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant')]];
    const f = testContext<IntuneState>();
    await scan(f, { vanished_devices: 'forget' });
    serveLookups({ a1: 'not-found' });
    pages = [[device('b2', 'compliant')]];
    await f.runTask('scan');
    expect(lookedUp()).toEqual(['a1']);
    expect(f.events()).toEqual([]);
    expect(Object.keys((f.checkpoints.get('default') as IntuneState).devices)).toEqual(['b2']);
  });

  it('keeps a device whose lookup fails otherwise (no event) and looks it up again after the devices never looked up', async () => {
    serveGraph();
    pages = [[device('a1', 'compliant'), device('b2', 'compliant'), device('c3', 'compliant')]];
    const t = testContext<IntuneState>();
    await scan(t, { max_retry_wait: '2s', vanished_lookups_per_scan: 1 });
    const unavailable = {
      status: 503,
      body: { error: { code: 'ServiceUnavailable', message: 'Service is unavailable.' } },
    };
    serveLookups({ a1: unavailable, b2: 'not-found' });
    pages = [[device('c3', 'compliant')]];
    await t.runTask('scan');
    // a1 first (listing order): three attempts, then given up for this scan; b2 waits its turn.
    expect(lookedUp()).toEqual(['a1', 'a1', 'a1']);
    expect(t.events()).toEqual([]);
    expect(t.counter('intune_scans_total', { outcome: 'partial' })).toBe(1);
    expect(t.counter('intune_missing_devices_total', { outcome: 'failed' })).toBe(1);
    expect(t.counter('intune_missing_devices_total', { outcome: 'deferred' })).toBe(1);
    expect(t.logs.some((l) => l.level === 'warn' && l.fields['device'] === 'a1')).toBe(true);
    let devices = (t.checkpoints.get('default') as IntuneState).devices;
    expect(devices['a1']).toMatchObject({ status: 'compliant', looked_up: expect.any(String) });
    expect(devices['b2']).not.toHaveProperty('gone');

    // Next scan: b2 (never looked up) goes before a1, and its 404 makes it gone.
    const before = lookedUp().length;
    await t.runTask('scan');
    expect(lookedUp().slice(before)).toEqual(['b2']);
    expect(complianceEvents(t).map((e) => [e.device, e.current])).toEqual([['entra-b2', 'not-compliant']]);

    // Then a1, which Intune has deleted meanwhile.
    serveLookups({ a1: 'not-found' });
    await t.runTask('scan');
    expect(lookedUp().slice(before + 1)).toEqual(['a1']);
    expect(complianceEvents(t).map((e) => [e.device, e.current])).toEqual([
      ['entra-b2', 'not-compliant'],
      ['entra-a1', 'not-compliant'],
    ]);
    devices = (t.checkpoints.get('default') as IntuneState).devices;
    expect(devices['a1']?.gone).toEqual(expect.any(String));
  });

  it('looks up at most vanished_lookups_per_scan devices per scan and carries the rest to the next scan', async () => {
    serveGraph();
    const ids = ['a1', 'b2', 'c3', 'd4', 'e5'];
    pages = [ids.map((id) => device(id, 'compliant'))];
    const t = testContext<IntuneState>();
    const instance = connector(t, { vanished_lookups_per_scan: 2 });
    await instance.start(t.ctx.signal);
    await t.runTask('scan');
    serveLookups({ a1: 'not-found', b2: 'not-found', c3: 'not-found' });
    pages = [[device('d4', 'compliant'), device('e5', 'compliant')]];
    await t.runTask('scan');
    expect(lookedUp()).toEqual(['a1', 'b2']);
    expect(complianceEvents(t).map((e) => e.device)).toEqual(['entra-a1', 'entra-b2']);
    expect((t.checkpoints.get('default') as IntuneState).devices['c3']).not.toHaveProperty('gone');
    expect(t.counter('intune_scans_total', { outcome: 'partial' })).toBe(1);

    await t.runTask('scan');
    expect(lookedUp()).toEqual(['a1', 'b2', 'c3']);
    expect(complianceEvents(t).map((e) => e.device)).toEqual(['entra-a1', 'entra-b2', 'entra-c3']);
    expect(t.counter('intune_scans_total', { outcome: 'ok' })).toBe(2);
  });

  it('lets a few devices vanish at once in a small fleet, and holds a larger share per vanished_guard_share', async () => {
    serveGraph();
    // 30 devices; 10 missing is within vanished_guard_min_devices (10) although it is a third.
    const fleet = Array.from({ length: 30 }, (_, i) => device(guid(i), 'compliant'));
    pages = [fleet];
    const t = testContext<IntuneState>();
    const instance = connector(t, { page_size: 100 });
    await instance.start(t.ctx.signal);
    await t.runTask('scan');
    pages = [fleet.slice(10)];
    await t.runTask('scan');
    expect(lookedUp()).toHaveLength(10);
    expect(t.events()).toHaveLength(10);

    // 11 of the 20 left: more than 10 and more than 10 % — held.
    pages = [fleet.slice(21)];
    await t.runTask('scan');
    expect(lookedUp()).toHaveLength(10);
    expect(t.events()).toHaveLength(10);
    expect(t.statuses.at(-1)?.reason).toMatch(/^11 of 20 known devices are missing/);

    // With the share raised (an operator confirming a real departure), they go.
    const raised = testContext<IntuneState>({ checkpoints: t.checkpoints });
    const again = connector(raised, { page_size: 100, vanished_guard_share: 0.6 });
    await again.start(raised.ctx.signal);
    await raised.runTask('scan');
    expect(lookedUp()).toHaveLength(21);
    expect(raised.events()).toHaveLength(11);
    expect(raised.successes).toBe(1);
  });
});
