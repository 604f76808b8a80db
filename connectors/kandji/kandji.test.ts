import { readdirSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import { createKandji } from './connector.ts';
import { fixtureSettings } from './fixtures/settings.ts';
import { kandjiConnector } from './index.ts';
import type { KandjiState } from './mapping.ts';
import {
  checkFixture,
  checkSequence,
  checkSimulateGolden,
  readFixture,
} from '../_shared/mdm-fixture-checks.ts';
import { testContext, type TestContext } from '../_shared/mdm-test-support.ts';

const fixtureDir = new URL('./fixtures/', import.meta.url);

describe('kandji mapping fixtures', () => {
  const config = kandjiConnector.configSchema.parse(fixtureSettings);
  for (const file of readdirSync(fixtureDir).filter((f) => f.endsWith('.json'))) {
    const fixture = readFixture(new URL(file, fixtureDir));
    it(`${file}: ${fixture.description}`, () => {
      checkFixture(fixture, () => kandjiConnector.map!(fixture.input, config));
    });
  }
});

describe('kandji snapshot sequences (state carried from one scan to the next, default settings)', () => {
  const config = kandjiConnector.configSchema.parse({ ...fixtureSettings, first_sighting: 'baseline' });
  const sequences = new URL('./sequences/', fixtureDir);
  for (const name of readdirSync(sequences)) {
    it(name, () => {
      checkSequence(new URL(`${name}/`, sequences), (input, state: KandjiState | undefined) =>
        kandjiConnector.map!(input, config, state),
      );
    });
  }
});

// ─── Golden: the sequence through `ssf-bridge simulate` ─────────────────────────────────────────

describe('golden: ssf-bridge simulate', () => {
  it("prints the sequence's events in order with state carried between payloads, then rejects a malformed one", async () => {
    await checkSimulateGolden(
      'kandji',
      new URL('./sequences/lifecycle/', fixtureDir),
      new URL('malformed-device-missing-id.json', fixtureDir),
    );
  }, 60_000);
});

// ─── Behaviour against a Kandji API fake on loopback ────────────────────────────────────────────

interface FakeDevice {
  record: Record<string, unknown>;
  status: 'PASS' | 'ERROR' | 'PENDING' | 404;
}

const server = new MockServer();
let fleet: FakeDevice[] = [];

function kandjiDevice(
  id: string,
  checkIn = '2026-01-01T08:00:00.000000Z',
  extra: Record<string, unknown> = {},
) {
  return {
    device_id: id,
    device_name: `Mac ${id}`,
    serial_number: `SN${id.toUpperCase()}`,
    platform: 'Mac',
    os_version: '15.2',
    last_check_in: checkIn,
    user: { email: `${id}@example.com`, name: `User ${id}`, id: `u-${id}`, is_archived: false },
    blueprint_id: 'bp-1',
    blueprint_name: 'Engineering',
    mdm_enabled: true,
    agent_installed: true,
    is_missing: false,
    is_removed: false,
    ...extra,
  };
}

function setFleet(devices: FakeDevice[]): void {
  fleet = devices;
  for (const d of fleet) {
    const id = String(d.record['device_id']);
    // Kandji answers 404 for a device it no longer has.
    server.on('GET', `/api/v1/devices/${id}/status`, () =>
      d.status === 404 || !fleet.includes(d)
        ? { status: 404, body: { detail: 'Not found.' } }
        : {
            body: {
              device_id: id,
              parameters: [
                {
                  item_id: 'p-fv',
                  name: 'FileVault 2',
                  status: d.status,
                  category: 'Security',
                  subcategory: 'Encryption',
                },
              ],
              library_items: [
                { id: 1, item_id: 'li-1', name: 'Google Chrome', type: 'automatic-app', status: 'PASS' },
              ],
            },
          },
    );
  }
}

function serveKandji(): void {
  server.reset();
  serveList();
}

function serveList(): void {
  server.on('GET', '/api/v1/devices', (req) => {
    const offset = Number(req.query['offset'] ?? 0);
    const limit = Number(req.query['limit'] ?? 300);
    return { body: fleet.slice(offset, offset + limit).map((d) => d.record) };
  });
}

const statusRequests = () => server.requests.filter((r) => r.path.endsWith('/status')).length;

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

function connector(t: TestContext<KandjiState>, settings: Record<string, unknown> = {}) {
  const config = kandjiConnector.configSchema.parse({
    api_url: server.url,
    api_token: 'kandji-api-token-value',
    ...settings,
  });
  const instance = createKandji(t.ctx, config);
  running.push(instance);
  return instance;
}

async function scan(t: TestContext<KandjiState>, settings: Record<string, unknown> = {}) {
  const instance = connector(t, settings);
  await instance.start(t.ctx.signal);
  await t.runTask('scan');
  return instance;
}

const changes = (t: TestContext<KandjiState>) =>
  t
    .events()
    .map((e) => [
      (e.subject['device'] as { id: string }).id,
      e.claims?.['previous_status'],
      e.claims?.['current_status'],
    ]);

describe('kandji config', () => {
  it('refuses a plain http API URL other than the local machine: the API token would travel in clear text', () => {
    const parse = (api_url: string) =>
      kandjiConnector.configSchema.safeParse({ ...fixtureSettings, api_url });
    expect(
      parse('http://acme.api.kandji.io').error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`),
    ).toEqual(['api_url: must be an https URL (the credentials would travel in clear text over http)']);
    expect(parse('http://localhost:8080').success).toBe(true);
    expect(parse('https://acme.api.eu.kandji.io').success).toBe(true);
  });
});

describe('kandji connector against a Kandji API fake', () => {
  it('pages the device list by 300 with the bearer token, reads each status once, and records a baseline', async () => {
    serveKandji();
    setFleet(
      Array.from({ length: 302 }, (_, i) => ({ record: kandjiDevice(`d${i}`), status: 'PASS' as const })),
    );
    const t = testContext<KandjiState>();
    await scan(t);
    const lists = server.requests.filter((r) => r.path === '/api/v1/devices');
    expect(lists.map((r) => [r.query['limit'], r.query['offset'], r.query['ordering']])).toEqual([
      ['300', '0', 'device_id'],
      ['300', '300', 'device_id'],
    ]);
    expect(server.requests.every((r) => r.headers['authorization'] === 'Bearer kandji-api-token-value')).toBe(
      true,
    );
    expect(statusRequests()).toBe(302);
    expect(t.events()).toEqual([]);
    expect(Object.keys((t.checkpoints.get('default') as KandjiState).devices)).toHaveLength(302);
    expect(t.counter('kandji_scans_total', { outcome: 'ok' })).toBe(1);
  });

  it('reads the status only of devices that checked in since their last evaluation, and emits one event per transition', async () => {
    serveKandji();
    setFleet([
      { record: kandjiDevice('a'), status: 'PASS' },
      { record: kandjiDevice('b'), status: 'PASS' },
    ]);
    const t = testContext<KandjiState>();
    await scan(t);
    expect(statusRequests()).toBe(2);

    setFleet([
      { record: kandjiDevice('a', '2026-01-01T09:00:00.000000Z'), status: 'ERROR' },
      { record: kandjiDevice('b'), status: 'ERROR' },
    ]);
    await t.runTask('scan');
    // b did not check in: its status is not read, so the failure it would show is not seen yet.
    expect(statusRequests()).toBe(3);
    expect(changes(t)).toEqual([['a', 'compliant', 'not-compliant']]);
    expect(t.events()[0]?.claims?.['reason_admin']).toEqual({
      en: '1 Kandji check failing on "Mac a": FileVault 2',
    });
    expect(t.events()[0]?.sourceRecordId).toBe(
      'kandji:a:1:compliant>not-compliant:2026-01-01T09:00:00.000000Z',
    );

    await t.runTask('scan');
    expect(statusRequests()).toBe(3);
    expect(t.events()).toHaveLength(1);
  });

  it('resumes after a restart from the stored state without sending anything twice', async () => {
    serveKandji();
    setFleet([{ record: kandjiDevice('a'), status: 'PASS' }]);
    const first = testContext<KandjiState>();
    await scan(first);
    setFleet([{ record: kandjiDevice('a', '2026-01-01T09:00:00.000000Z'), status: 'ERROR' }]);
    await first.runTask('scan');
    expect(first.events()).toHaveLength(1);

    const second = testContext<KandjiState>();
    for (const [k, v] of first.checkpoints) second.checkpoints.set(k, v);
    const before = statusRequests();
    await scan(second);
    expect(second.events()).toEqual([]);
    expect(statusRequests()).toBe(before);
  });

  it('stays within the hourly request budget and finishes the leftover devices in the next hour', async () => {
    serveKandji();
    setFleet(
      Array.from({ length: 12 }, (_, i) => ({ record: kandjiDevice(`d${i}`), status: 'PASS' as const })),
    );
    let now = Date.parse('2026-01-01T10:00:00Z');
    const t = testContext<KandjiState>({ now: () => new Date(now) });
    await scan(t, { max_requests_per_hour: 10, status_concurrency: 1 });
    // One list request and nine status reads: the budget of ten is spent.
    expect(server.requests).toHaveLength(10);
    expect(t.counter('kandji_scans_total', { outcome: 'partial' })).toBe(1);
    expect(t.counter('kandji_devices_deferred_total')).toBe(3);
    const partial = t.checkpoints.get('default') as KandjiState;
    expect(Object.values(partial.devices).filter((d) => d.status === 'compliant')).toHaveLength(9);
    // The whole list was read, so the scan still knows which devices exist.
    expect(partial.last_scan?.devices).toBe(12);

    await t.runTask('scan');
    expect(server.requests).toHaveLength(10);

    now += 3_600_001;
    await t.runTask('scan');
    expect(statusRequests()).toBe(12);
    const done = t.checkpoints.get('default') as KandjiState;
    expect(Object.values(done.devices).every((d) => d.status === 'compliant')).toBe(true);
    expect(done.last_scan?.devices).toBe(12);
  });

  it('reads the statuses the budget left over first, so every device of a fleet larger than the budget is evaluated', async () => {
    serveKandji();
    let now = Date.parse('2026-01-01T10:00:00Z');
    const fleetAt = (checkIn: string) =>
      setFleet(
        Array.from({ length: 20 }, (_, i) => ({
          record: kandjiDevice(`d${String(i).padStart(2, '0')}`, checkIn),
          status: 'PASS' as const,
        })),
      );
    const statusPaths = () =>
      server.requests.filter((r) => r.path.endsWith('/status')).map((r) => r.path.split('/')[4]);
    fleetAt('2026-01-01T09:59:00.000000Z');
    const t = testContext<KandjiState>({ now: () => new Date(now) });
    // A budget of ten: one list request and nine status reads per hour, while every device
    // checks in again within the hour.
    await scan(t, { max_requests_per_hour: 10, status_concurrency: 1 });
    expect(statusPaths()).toEqual(['d00', 'd01', 'd02', 'd03', 'd04', 'd05', 'd06', 'd07', 'd08']);

    for (const hour of ['10:59', '11:59']) {
      now += 3_600_001;
      fleetAt(`2026-01-01T${hour}:00.000000Z`);
      await t.runTask('scan');
    }
    // The second hour reads the nine devices never evaluated; the third the last two, then the
    // ones evaluated longest ago.
    expect(statusPaths().slice(9)).toEqual([
      ...['d09', 'd10', 'd11', 'd12', 'd13', 'd14', 'd15', 'd16', 'd17'],
      ...['d18', 'd19', 'd00', 'd01', 'd02', 'd03', 'd04', 'd05', 'd06'],
    ]);
    const state = t.checkpoints.get('default') as KandjiState;
    expect(Object.values(state.devices).filter((d) => d.status === 'compliant')).toHaveLength(20);
    expect(t.counter('kandji_scans_total', { outcome: 'partial' })).toBe(3);
  });

  it('waits out a 429 with Retry-After', async () => {
    serveKandji();
    setFleet([{ record: kandjiDevice('a'), status: 'PASS' }]);
    let calls = 0;
    server.on('GET', '/api/v1/devices', () => {
      calls += 1;
      return calls === 1
        ? { status: 429, headers: { 'retry-after': '1' }, body: { detail: 'Request was throttled.' } }
        : { body: fleet.map((d) => d.record) };
    });
    const t = testContext<KandjiState>();
    const started = Date.now();
    await scan(t);
    expect(calls).toBe(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect((t.checkpoints.get('default') as KandjiState).devices['a']?.status).toBe('compliant');
  });

  it('flags the instance when Kandji refuses the API token', async () => {
    serveKandji();
    server.on('GET', '/api/v1/devices', () => ({ status: 401, body: { detail: 'Invalid token.' } }));
    const t = testContext<KandjiState>();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await expect(t.runTask('scan')).rejects.toThrow('401');
    expect(t.statuses.at(-1)).toMatchObject({ state: 'permanent_error' });
    expect(t.statuses.at(-1)?.reason).toContain('refused the API token');
    expect(await instance.check!(t.ctx.signal)).toMatchObject({ ok: false, retryable: false });
  });

  it('classifies a persistent 5xx as recoverable, after retrying it in the scan', async () => {
    serveKandji();
    server.on('GET', '/api/v1/devices', () => ({ status: 502, body: 'Bad gateway' }));
    const t = testContext<KandjiState>();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await expect(t.runTask('scan')).rejects.toThrow('502');
    expect(server.requests).toHaveLength(3);
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');
    expect(t.checkpoints.has('default')).toBe(false);
  });

  it('leaves a device whose status read answers 404 for the next scan', async () => {
    serveKandji();
    setFleet([
      { record: kandjiDevice('a'), status: 'PASS' },
      { record: kandjiDevice('gone'), status: 404 },
    ]);
    const t = testContext<KandjiState>();
    await scan(t);
    const state = t.checkpoints.get('default') as KandjiState;
    expect(state.devices['a']?.status).toBe('compliant');
    expect(state.devices['gone']?.status).toBeUndefined();
    expect(t.counter('kandji_devices_deferred_total')).toBe(1);
  });

  it('reports a removed or missing device as not compliant without reading its status', async () => {
    serveKandji();
    setFleet([{ record: kandjiDevice('a'), status: 'PASS' }]);
    const t = testContext<KandjiState>();
    await scan(t);
    setFleet([
      { record: kandjiDevice('a', '2026-01-01T08:00:00.000000Z', { is_missing: true }), status: 'PASS' },
    ]);
    const before = statusRequests();
    await t.runTask('scan');
    expect(statusRequests()).toBe(before);
    expect(changes(t)).toEqual([['a', 'compliant', 'not-compliant']]);
  });

  it('handles a device that leaves the list by policy, and keeps it as not compliant', async () => {
    serveKandji();
    setFleet([
      { record: kandjiDevice('a'), status: 'PASS' },
      { record: kandjiDevice('b'), status: 'ERROR' },
    ]);
    const t = testContext<KandjiState>();
    await scan(t);
    setFleet([]);
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    setFleet([{ record: kandjiDevice('b'), status: 'ERROR' }]);
    await t.runTask('scan');
    expect(changes(t)).toEqual([['a', 'compliant', 'not-compliant']]);
    const state = t.checkpoints.get('default') as KandjiState;
    expect(state.devices['a']).toMatchObject({ status: 'not-compliant', seq: 1, gone: expect.any(String) });
    expect(state.devices['b']?.gone).toBeUndefined();

    // Still gone on the next scan: nothing more is sent and its status is not read again.
    const reads = statusRequests();
    await t.runTask('scan');
    expect(t.events()).toHaveLength(1);
    expect(statusRequests()).toBe(reads);
  });

  it('does not report a device gone when a removal shifts the pages under the scan', async () => {
    serveKandji();
    const devices = Array.from({ length: 302 }, (_, i) => ({
      record: kandjiDevice(`d${String(i).padStart(3, '0')}`),
      status: 'PASS' as const,
    }));
    setFleet(devices);
    const t = testContext<KandjiState>();
    await scan(t);
    expect(t.events()).toEqual([]);

    // d000 is deleted in Kandji just after the first page was read: d300 moves up to the first
    // page, which the scan has already passed, and the second page holds d301 alone.
    server.on('GET', '/api/v1/devices', (req) => {
      const offset = Number(req.query['offset'] ?? 0);
      const page = fleet.slice(offset, offset + 300).map((d) => d.record);
      if (offset === 0) fleet = fleet.slice(1);
      return { body: page };
    });
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    let state = t.checkpoints.get('default') as KandjiState;
    expect(state.devices['d300']).toMatchObject({ status: 'compliant', seq: 0 });
    expect(state.devices['d300']?.gone).toBeUndefined();
    expect(t.counter('kandji_scans_total', { outcome: 'ok' })).toBe(2);

    // The next scan no longer lists d000, and Kandji confirms it is gone.
    serveList();
    await t.runTask('scan');
    expect(changes(t)).toEqual([['d000', 'compliant', 'not-compliant']]);
    state = t.checkpoints.get('default') as KandjiState;
    expect(state.devices['d000']?.gone).toBeDefined();
    expect(state.devices['d300']?.gone).toBeUndefined();
  });

  it('sends the current status of a device that was reported gone and is listed again', async () => {
    serveKandji();
    const a = { record: kandjiDevice('a'), status: 'PASS' as const };
    const b = { record: kandjiDevice('b'), status: 'PASS' as const };
    setFleet([a, b]);
    const t = testContext<KandjiState>();
    await scan(t);
    setFleet([b]);
    await t.runTask('scan');
    expect(changes(t)).toEqual([['a', 'compliant', 'not-compliant']]);

    // Back with the same check-in as before: its status is read again all the same.
    setFleet([a, b]);
    await t.runTask('scan');
    expect(changes(t)).toEqual([
      ['a', 'compliant', 'not-compliant'],
      ['a', 'not-compliant', 'compliant'],
    ]);
    expect(t.events()[1]?.sourceRecordId).toBe(
      'kandji:a:2:not-compliant>compliant:2026-01-01T08:00:00.000000Z',
    );
    expect((t.checkpoints.get('default') as KandjiState).devices['a']).toMatchObject({
      status: 'compliant',
      seq: 2,
    });
    expect((t.checkpoints.get('default') as KandjiState).devices['a']?.gone).toBeUndefined();
  });

  it('re-emits the same source record ids when the outbox refused them', async () => {
    serveKandji();
    setFleet([{ record: kandjiDevice('a'), status: 'PASS' }]);
    const t = testContext<KandjiState>();
    await scan(t);
    setFleet([{ record: kandjiDevice('a', '2026-01-01T09:00:00.000000Z'), status: 'ERROR' }]);
    t.failNextEmit();
    await expect(t.runTask('scan')).rejects.toThrow('outbox');
    expect((t.checkpoints.get('default') as KandjiState).devices['a']?.status).toBe('compliant');
    await t.runTask('scan');
    expect(t.events().map((e) => e.sourceRecordId)).toEqual([
      'kandji:a:1:compliant>not-compliant:2026-01-01T09:00:00.000000Z',
    ]);
  });

  it('skips malformed device records with a warning and goes on', async () => {
    serveKandji();
    setFleet([{ record: kandjiDevice('a'), status: 'PASS' }]);
    server.on('GET', '/api/v1/devices', () => ({
      body: [{ device_name: 'no id' }, ...fleet.map((d) => d.record)],
    }));
    const t = testContext<KandjiState>();
    await scan(t);
    expect(t.counter('kandji_rejected_records_total')).toBe(1);
    expect(t.logs.some((l) => l.level === 'warn' && String(l.fields['problem']).includes('device_id'))).toBe(
      true,
    );
    expect(Object.keys((t.checkpoints.get('default') as KandjiState).devices)).toEqual(['a']);
  });

  it('check() reads one device and stop() is idempotent without start', async () => {
    serveKandji();
    setFleet([{ record: kandjiDevice('a'), status: 'PASS' }]);
    const t = testContext<KandjiState>();
    const instance = connector(t);
    expect(await instance.check!(t.ctx.signal)).toMatchObject({ ok: true });
    expect(server.requests.at(-1)?.query).toEqual({ limit: '1', offset: '0' });
    await instance.stop(100);
    await instance.stop(100);
  });
});
