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
    // The device itself (GET /api/v1/devices/{id}): Kandji answers 404 once it no longer has it.
    server.on('GET', `/api/v1/devices/${id}`, () =>
      fleet.includes(d) ? { body: d.record } : { status: 404, body: { detail: 'Not found.' } },
    );
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

// ─── Statuses that decide nothing, status reads that fail, flags, and devices missing from the list ─

/** The device ids whose status was read, in request order. */
const statusReads = () =>
  server.requests.filter((r) => r.path.endsWith('/status')).map((r) => r.path.split('/')[4]);
/** The device ids looked up on their own (GET /api/v1/devices/{id}), in request order. */
const deviceLookups = () =>
  server.requests.filter((r) => /^\/api\/v1\/devices\/[^/]+$/.test(r.path)).map((r) => r.path.split('/')[4]);
const stateOf = (t: TestContext<KandjiState>) => t.checkpoints.get('default') as KandjiState;
/** Answers every status read of `id` with `answer` (until setFleet serves it again). */
const answerStatus = (
  id: string,
  answer: { status?: number; body: unknown; headers?: Record<string, string> },
) => server.on('GET', `/api/v1/devices/${id}/status`, () => answer);

describe('kandji: a status answer that lists no checks decides nothing', () => {
  it('a 200 answer without parameters or library_items ({"detail": …}) sends nothing, warns, and the status is read again next scan', async () => {
    serveKandji();
    const a: FakeDevice = { record: kandjiDevice('a'), status: 'ERROR' };
    setFleet([a]);
    const t = testContext<KandjiState>();
    await scan(t);
    expect(stateOf(t).devices['a']?.status).toBe('not-compliant');

    // The device checks in; Kandji's status endpoint answers an error body with 200.
    a.record = kandjiDevice('a', '2026-01-01T09:00:00.000000Z');
    answerStatus('a', { body: { detail: 'Service temporarily unavailable' } });
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    expect(stateOf(t).devices['a']).toMatchObject({
      status: 'not-compliant',
      checked_in: '2026-01-01T08:00:00.000000Z',
    });
    expect(
      t.logs.some(
        (l) =>
          l.level === 'warn' &&
          l.fields['id'] === 'a' &&
          String(l.fields['problem']).includes('neither parameters nor library_items is a list of checks'),
      ),
    ).toBe(true);

    // Kandji answers properly again: read again without a new check-in, and the fix is sent.
    a.status = 'PASS';
    setFleet([a]);
    const before = statusReads().length;
    await t.runTask('scan');
    expect(statusReads().slice(before)).toEqual(['a']);
    expect(changes(t)).toEqual([['a', 'not-compliant', 'compliant']]);
  });

  it('a status whose lists are empty, or hold only informational checks, leaves the last status standing', async () => {
    serveKandji();
    const a: FakeDevice = { record: kandjiDevice('a'), status: 'ERROR' };
    setFleet([a]);
    const t = testContext<KandjiState>();
    await scan(t);

    a.record = kandjiDevice('a', '2026-01-01T09:00:00.000000Z');
    answerStatus('a', { body: { device_id: 'a', parameters: [], library_items: [] } });
    await t.runTask('scan');
    a.record = kandjiDevice('a', '2026-01-01T10:00:00.000000Z');
    answerStatus('a', {
      body: {
        device_id: 'a',
        parameters: [{ item_id: 'p-gk', name: 'Gatekeeper', status: 'WARNING', category: 'Security' }],
        library_items: [{ id: 7, item_id: 'li-7', name: 'Zoom', type: 'automatic-app', status: 'EXCLUDED' }],
      },
    });
    await t.runTask('scan');
    expect(statusReads()).toEqual(['a', 'a', 'a']);
    expect(t.events()).toEqual([]);
    expect(stateOf(t).devices['a']).toMatchObject({ status: 'not-compliant', failing: ['FileVault 2'] });
  });
});

describe('kandji: a device whose status read fails costs that device alone', () => {
  it('one device whose status keeps failing (5xx) does not hold the others back, and is read after them next time', async () => {
    serveKandji();
    const a: FakeDevice = { record: kandjiDevice('a'), status: 'PASS' };
    setFleet([a]);
    const t = testContext<KandjiState>();
    const settings = { status_concurrency: 1, max_retry_wait: '5s' };
    await scan(t, settings);

    // a checks in failing FileVault; b enrolls, and Kandji keeps answering 500 for b's status.
    a.record = kandjiDevice('a', '2026-01-01T09:00:00.000000Z');
    a.status = 'ERROR';
    const b: FakeDevice = { record: kandjiDevice('b', '2026-01-01T09:00:00.000000Z'), status: 'PASS' };
    setFleet([a, b]);
    const serverError = { status: 500, body: { detail: 'A server error occurred.' } };
    answerStatus('b', serverError);
    await t.runTask('scan');
    // b first (never evaluated): three attempts, then given up for this scan; a still read.
    expect(statusReads()).toEqual(['a', 'b', 'b', 'b', 'a']);
    expect(changes(t)).toEqual([['a', 'compliant', 'not-compliant']]);
    expect(t.statuses).toEqual([]);
    expect(t.successes).toBe(2);
    expect(t.counter('kandji_scans_total', { outcome: 'partial' })).toBe(1);
    expect(t.counter('kandji_status_read_failures_total')).toBe(1);
    expect(t.logs.some((l) => l.level === 'warn' && l.fields['device'] === 'b')).toBe(true);
    expect(stateOf(t).devices['b']).toMatchObject({ read_failed: expect.any(String) });
    expect(stateOf(t).devices['b']?.status).toBeUndefined();

    // c enrolls while b still fails: c, never evaluated either, goes first now.
    const c: FakeDevice = { record: kandjiDevice('c', '2026-01-01T09:30:00.000000Z'), status: 'PASS' };
    setFleet([a, b, c]);
    answerStatus('b', serverError);
    const before = statusReads().length;
    await t.runTask('scan');
    expect(statusReads().slice(before)).toEqual(['c', 'b', 'b', 'b']);
    expect(stateOf(t).devices['c']?.status).toBe('compliant');

    // b recovers: baseline recorded, and the mark is dropped.
    setFleet([a, b, c]);
    await t.runTask('scan');
    expect(stateOf(t).devices['b']?.status).toBe('compliant');
    expect(stateOf(t).devices['b']).not.toHaveProperty('read_failed');
    expect(t.counter('kandji_scans_total', { outcome: 'ok' })).toBe(2);
  }, 30_000);

  it('a 4xx on one device status is about that device: the instance is not flagged permanent_error', async () => {
    serveKandji();
    const a: FakeDevice = { record: kandjiDevice('a'), status: 'PASS' };
    setFleet([a]);
    const t = testContext<KandjiState>();
    await scan(t);
    a.record = kandjiDevice('a', '2026-01-01T09:00:00.000000Z');
    a.status = 'ERROR';
    setFleet([a, { record: kandjiDevice('b', '2026-01-01T09:00:00.000000Z'), status: 'PASS' }]);
    answerStatus('b', { status: 400, body: { detail: 'Invalid device_id for this blueprint.' } });
    await t.runTask('scan');
    expect(changes(t)).toEqual([['a', 'compliant', 'not-compliant']]);
    expect(t.statuses.map((s) => s.state)).not.toContain('permanent_error');
    expect(stateOf(t).devices['b']).toMatchObject({ read_failed: expect.any(String) });
  });

  it('stops the status reads at throttling beyond max_retry_wait (recoverable) or a refused token (permanent), keeping what was read', async () => {
    for (const [answer, state] of [
      [
        { status: 429, headers: { 'retry-after': '120' }, body: { detail: 'Request was throttled.' } },
        'recoverable_error',
      ],
      [{ status: 401, body: { detail: 'Invalid token.' } }, 'permanent_error'],
    ] as const) {
      serveKandji();
      const fleetOf = (checkIn: string, status: 'PASS' | 'ERROR') =>
        ['a', 'b', 'c'].map((id) => ({ record: kandjiDevice(id, checkIn), status }));
      setFleet(fleetOf('2026-01-01T08:00:00.000000Z', 'PASS'));
      const t = testContext<KandjiState>();
      const instance = connector(t, { status_concurrency: 1, max_retry_wait: '1s' });
      await instance.start(t.ctx.signal);
      await t.runTask('scan');

      setFleet(fleetOf('2026-01-01T09:00:00.000000Z', 'ERROR'));
      answerStatus('b', answer);
      await expect(t.runTask('scan')).rejects.toThrow(String(answer.status));
      // a was read and its change sent; c is not read after b's answer.
      expect(statusReads().slice(3)).toEqual(['a', 'b']);
      expect(changes(t)).toEqual([['a', 'compliant', 'not-compliant']]);
      expect(stateOf(t).devices['a']?.checked_in).toBe('2026-01-01T09:00:00.000000Z');
      expect(stateOf(t).devices['c']?.checked_in).toBe('2026-01-01T08:00:00.000000Z');
      expect(t.statuses.at(-1)?.state).toBe(state);
    }
  });
});

describe('kandji: flags of the device record', () => {
  it('dates a change a flag shows without a new check-in by the scan that saw it (CAEP 1.0 §2 event_timestamp), a checked-in change by its check-in', async () => {
    serveKandji();
    const now = Date.parse('2026-01-15T12:00:00Z');
    const a: FakeDevice = { record: kandjiDevice('a'), status: 'PASS' };
    const b: FakeDevice = { record: kandjiDevice('b'), status: 'PASS' };
    setFleet([a, b]);
    const t = testContext<KandjiState>({ now: () => new Date(now) });
    await scan(t);

    // Two weeks without a check-in: Kandji marks a missing now. b checks in failing.
    a.record = kandjiDevice('a', '2026-01-01T08:00:00.000000Z', { is_missing: true });
    b.record = kandjiDevice('b', '2026-01-15T11:58:00.000000Z');
    b.status = 'ERROR';
    await t.runTask('scan');
    const [flag, checks] = t.events();
    expect(flag?.claims?.['event_timestamp']).toBe(now / 1000);
    expect(flag?.occurredAt).toBe('2026-01-15T12:00:00.000Z');
    // The record id holds no scan time, so that a retried scan sends the same record.
    expect(flag?.sourceRecordId).toBe('kandji:a:1:compliant>not-compliant:2026-01-01T08:00:00.000000Z');
    expect(checks?.claims?.['event_timestamp']).toBe(Date.parse('2026-01-15T11:58:00Z') / 1000);
  });

  it('reads the status again when Kandji clears a flag without a new check-in, and sends not-compliant → compliant', async () => {
    serveKandji();
    const a: FakeDevice = { record: kandjiDevice('a'), status: 'PASS' };
    setFleet([a]);
    const t = testContext<KandjiState>();
    await scan(t);
    a.record = kandjiDevice('a', '2026-01-01T08:00:00.000000Z', { mdm_enabled: false });
    await t.runTask('scan');

    a.record = kandjiDevice('a', '2026-01-01T08:00:00.000000Z', { mdm_enabled: true });
    await t.runTask('scan');
    await t.runTask('scan');
    expect(statusReads()).toEqual(['a', 'a']);
    expect(changes(t)).toEqual([
      ['a', 'compliant', 'not-compliant'],
      ['a', 'not-compliant', 'compliant'],
    ]);
    expect(t.events()[1]?.claims?.['reason_admin']).toEqual({
      en: 'every Kandji check passes on "Mac a" (2 passing)',
    });
    expect(stateOf(t).devices['a']).not.toHaveProperty('flagged');
  });

  it('state written before flags were recorded still parses, and a flag-driven not-compliant device in it is read again once the flag is gone', async () => {
    serveKandji();
    setFleet([
      { record: kandjiDevice('a'), status: 'PASS' },
      { record: kandjiDevice('b'), status: 'ERROR' },
    ]);
    const t = testContext<KandjiState>();
    const aliases = (id: string) => ({
      kandji_device_id: id,
      serial_number: `SN${id.toUpperCase()}`,
      hostname: `Mac ${id}`,
    });
    // As the previous version stored it: a marked missing (no failing checks), b failing FileVault.
    t.checkpoints.set('default', {
      version: 1,
      devices: {
        a: {
          status: 'not-compliant',
          checked_in: '2026-01-01T08:00:00.000000Z',
          since: '2026-01-01T08:00:00.000000Z',
          user: 'a@example.com',
          aliases: aliases('a'),
          seq: 1,
        },
        b: {
          status: 'not-compliant',
          checked_in: '2026-01-01T08:00:00.000000Z',
          since: '2026-01-01T08:00:00.000000Z',
          failing: ['FileVault 2'],
          user: 'b@example.com',
          aliases: aliases('b'),
          seq: 1,
        },
      },
      last_scan: { completed_at: '2026-01-01T08:05:00.000Z', devices: 2 },
    });
    await scan(t);
    expect(t.logs.some((l) => l.msg?.includes('not readable'))).toBe(false);
    expect(statusReads()).toEqual(['a']);
    expect(changes(t)).toEqual([['a', 'not-compliant', 'compliant']]);
    expect(t.events()[0]?.sourceRecordId).toBe(
      'kandji:a:2:not-compliant>compliant:2026-01-01T08:00:00.000000Z',
    );
  });
});

describe('kandji: devices missing from the list, confirmed one by one and guarded against a short list', () => {
  it('an empty device list while devices are known holds the scan: recoverable_error says why, and a full list clears it', async () => {
    serveKandji();
    const devices: FakeDevice[] = [
      { record: kandjiDevice('a'), status: 'PASS' },
      { record: kandjiDevice('b'), status: 'PASS' },
    ];
    setFleet(devices);
    const t = testContext<KandjiState>();
    await scan(t);
    expect(t.successes).toBe(1);

    const requests = server.requests.length;
    setFleet([]);
    await t.runTask('scan');
    expect(t.successes).toBe(1);
    expect(t.statuses.at(-1)).toEqual({
      state: 'recoverable_error',
      reason: "the device list was empty while 2 devices are known; check the API token's permissions",
    });
    expect(t.counter('kandji_scans_total', { outcome: 'held' })).toBe(1);
    // Only the list was read: no lookup, no status.
    expect(server.requests.slice(requests).map((r) => r.path)).toEqual(['/api/v1/devices']);

    setFleet(devices);
    await t.runTask('scan');
    expect(t.successes).toBe(2);
    expect(t.events()).toEqual([]);
  });

  it('a short list with every device path answering 404 (a proxy) turns nothing not-compliant: the guard holds the scan without a lookup', async () => {
    serveKandji();
    const devices = Array.from({ length: 30 }, (_, i) => ({
      record: kandjiDevice(`d${String(i).padStart(2, '0')}`),
      status: 'PASS' as const,
    }));
    setFleet(devices);
    const t = testContext<KandjiState>();
    await scan(t);

    // The list comes back with 5 devices; a proxy in front of Kandji answers 404 for every
    // per-device path.
    server.on('GET', '/api/v1/devices', () => ({ body: devices.slice(0, 5).map((d) => d.record) }));
    for (const d of devices.slice(5)) {
      const id = String(d.record['device_id']);
      const notFound = () => ({ status: 404, body: { detail: 'Not found.' } });
      server.on('GET', `/api/v1/devices/${id}`, notFound);
      server.on('GET', `/api/v1/devices/${id}/status`, notFound);
    }
    const requests = server.requests.length;
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    expect(server.requests.slice(requests).map((r) => r.path)).toEqual(['/api/v1/devices']);
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');
    expect(t.statuses.at(-1)?.reason).toMatch(
      /^25 of 30 known devices are missing from the Kandji device list, more than vanished_guard_share \(10%\) allows: none is reported gone this scan/,
    );
    expect(t.counter('kandji_missing_devices_total', { outcome: 'held' })).toBe(25);
    expect(Object.values(stateOf(t).devices).filter((d) => d.gone !== undefined)).toEqual([]);

    // An operator who knows they left raises the share: the lookups confirm them gone.
    const raised = testContext<KandjiState>({ checkpoints: t.checkpoints });
    await scan(raised, { vanished_guard_share: 1 });
    expect(deviceLookups()).toHaveLength(25);
    expect(raised.events()).toHaveLength(25);
  });

  it('confirms a missing device with GET /api/v1/devices/{id}, not its status: one whose status answers 404 but that Kandji still has is kept', async () => {
    serveKandji();
    const devices: FakeDevice[] = ['a', 'b', 'c'].map((id) => ({ record: kandjiDevice(id), status: 'PASS' }));
    setFleet(devices);
    const t = testContext<KandjiState>();
    await scan(t);

    // The list leaves b out; its status answers 404 (as for a device without a status yet), but
    // Kandji still has the device.
    server.on('GET', '/api/v1/devices', () => ({ body: [devices[0]!.record, devices[2]!.record] }));
    answerStatus('b', { status: 404, body: { detail: 'Not found.' } });
    const reads = statusReads().length;
    await t.runTask('scan');
    expect(t.events()).toEqual([]);
    expect(deviceLookups()).toEqual(['b']);
    expect(statusReads().length).toBe(reads);
    expect(stateOf(t).devices['b']).toMatchObject({ status: 'compliant', looked_up: expect.any(String) });
    expect(stateOf(t).devices['b']).not.toHaveProperty('gone');
    expect(t.counter('kandji_missing_devices_total', { outcome: 'present' })).toBe(1);

    // Deleted in Kandji: the lookup answers 404 and the policy applies.
    setFleet([devices[0]!, devices[2]!]);
    await t.runTask('scan');
    expect(deviceLookups()).toEqual(['b', 'b']);
    expect(changes(t)).toEqual([['b', 'compliant', 'not-compliant']]);
  });

  it('looks up at most vanished_lookups_per_scan missing devices per scan, never looked up first; a lookup that fails keeps its device and goes last', async () => {
    serveKandji();
    const devices: FakeDevice[] = ['a', 'b', 'c', 'd', 'e'].map((id) => ({
      record: kandjiDevice(id),
      status: 'PASS',
    }));
    setFleet(devices);
    const t = testContext<KandjiState>();
    await scan(t, { vanished_lookups_per_scan: 2, status_concurrency: 1, max_retry_wait: '2s' });

    // a, b and c are deleted; Kandji keeps answering 503 for a.
    setFleet(devices.slice(3));
    const unavailable = () => ({ status: 503, body: { detail: 'Service temporarily unavailable' } });
    server.on('GET', '/api/v1/devices/a', unavailable);
    await t.runTask('scan');
    // a first (list order): three attempts, then the lookups stop for this scan.
    expect(deviceLookups()).toEqual(['a', 'a', 'a']);
    expect(t.events()).toEqual([]);
    expect(t.counter('kandji_scans_total', { outcome: 'partial' })).toBe(1);
    expect(t.counter('kandji_missing_devices_total', { outcome: 'failed' })).toBe(1);
    expect(stateOf(t).devices['a']).toMatchObject({ status: 'compliant', looked_up: expect.any(String) });

    // b and c, never looked up, go before a; two per scan.
    await t.runTask('scan');
    expect(deviceLookups().slice(3)).toEqual(['b', 'c']);
    expect(changes(t)).toEqual([
      ['b', 'compliant', 'not-compliant'],
      ['c', 'compliant', 'not-compliant'],
    ]);
    server.on('GET', '/api/v1/devices/a', () => ({ status: 404, body: { detail: 'Not found.' } }));
    await t.runTask('scan');
    expect(deviceLookups().slice(5)).toEqual(['a']);
    expect(changes(t).map(([id]) => id)).toEqual(['b', 'c', 'a']);
    expect(t.counter('kandji_scans_total', { outcome: 'ok' })).toBe(2);
  });
});

describe('kandji: status reads that fail in a row stop until the next scan (status_failures_to_stop)', () => {
  const serverError = { status: 500, body: { detail: 'A server error occurred.' } };
  /** A fleet of `count` devices never evaluated, d000, d001, … in list (and read) order. */
  const fleetOf = (count: number): FakeDevice[] =>
    Array.from({ length: count }, (_, i) => ({
      record: kandjiDevice(`d${String(i).padStart(3, '0')}`),
      status: 'PASS' as const,
    }));
  const failStatus = (devices: FakeDevice[]) => {
    for (const d of devices) answerStatus(String(d.record['device_id']), serverError);
  };

  it('with every status read answering 500, a scan stops after 10 failures in a row (+ the reads in flight), keeps what it has, reports recoverable_error, and the next scan reads the others first', async () => {
    serveKandji();
    const devices = fleetOf(40);
    setFleet(devices);
    failStatus(devices);
    const t = testContext<KandjiState>();
    // No wait budget: one request per read, so the requests count the reads.
    await scan(t, { max_retry_wait: '0s' });

    // Default status_failures_to_stop (10) and status_concurrency (4): the tenth failure stops
    // the reads; at most three more were in flight.
    const first = statusReads();
    expect(first.length).toBeGreaterThanOrEqual(10);
    expect(first.length).toBeLessThanOrEqual(13);
    expect(new Set(first).size).toBe(first.length);
    expect(t.successes).toBe(0);
    expect(t.statuses).toHaveLength(1);
    expect(t.statuses[0]?.state).toBe('recoverable_error');
    expect(t.statuses[0]?.reason).toMatch(
      /^10 device status reads in a row failed \(status_failures_to_stop\), the last with: GET \S+\/api\/v1\/devices\/d\d+\/status answered 500 .*; the status reads stopped for this scan: what was read is kept, and the next scan reads again, the \d+ devices not read before the \d+ whose read failed$/,
    );
    expect(t.statuses[0]?.reason).toContain(
      `the ${40 - first.length} devices not read before the ${first.length} whose read failed`,
    );
    expect(t.counter('kandji_scans_total', { outcome: 'stopped' })).toBe(1);
    expect(t.counter('kandji_status_read_failures_total')).toBe(first.length);
    expect(t.events()).toEqual([]);
    // Committed: the devices read are marked to go last; the others wait unread, as they were.
    const state = stateOf(t);
    expect(Object.keys(state.devices)).toHaveLength(40);
    expect(Object.keys(state.devices).filter((id) => state.devices[id]?.read_failed !== undefined)).toEqual(
      [...first].sort(),
    );
    expect(state.last_scan?.devices).toBe(40);

    // The next scan starts again, with the devices not read yet.
    await t.runTask('scan');
    const second = statusReads().slice(first.length);
    expect(second.length).toBeGreaterThanOrEqual(10);
    expect(second.length).toBeLessThanOrEqual(13);
    expect(second.filter((id) => first.includes(id))).toEqual([]);
    expect(t.statuses.map((s) => s.state)).toEqual(['recoverable_error', 'recoverable_error']);

    // Kandji answers again: every device is read, and the status clears.
    setFleet(devices);
    await t.runTask('scan');
    expect(statusReads()).toHaveLength(first.length + second.length + 40);
    expect(t.successes).toBe(1);
    expect(Object.values(stateOf(t).devices).every((d) => d.status === 'compliant')).toBe(true);
    expect(Object.values(stateOf(t).devices).some((d) => d.read_failed !== undefined)).toBe(false);
  });

  it('an answer between two failures starts the count over: failures that are not in a row do not stop the reads', async () => {
    const settings = { status_failures_to_stop: 3, status_concurrency: 1, max_retry_wait: '0s' };
    serveKandji();
    const devices = fleetOf(10);
    setFleet(devices);
    // d002, d005 and d008 answer; the others fail, never three in a row.
    failStatus(devices.filter((_, i) => i % 3 !== 2));
    const t = testContext<KandjiState>();
    await scan(t, settings);
    expect(statusReads()).toHaveLength(10);
    expect(t.statuses).toEqual([]);
    expect(t.counter('kandji_scans_total', { outcome: 'partial' })).toBe(1);
    expect(t.counter('kandji_status_read_failures_total')).toBe(7);
    expect(Object.keys(stateOf(t).devices).filter((id) => stateOf(t).devices[id]?.status)).toEqual([
      'd002',
      'd005',
      'd008',
    ]);

    // d005 fails too: d003, d004, d005 make three in a row, and d006… are not read.
    serveKandji();
    setFleet(devices);
    failStatus(devices.filter((_, i) => i % 3 !== 2 || i === 5));
    const u = testContext<KandjiState>();
    await scan(u, settings);
    expect(statusReads()).toEqual(['d000', 'd001', 'd002', 'd003', 'd004', 'd005']);
    expect(u.statuses.at(-1)?.state).toBe('recoverable_error');
    expect(u.statuses.at(-1)?.reason).toMatch(/^3 device status reads in a row failed/);
    expect(u.statuses.at(-1)?.reason).toContain('/api/v1/devices/d005/status');
    expect(stateOf(u).devices['d002']?.status).toBe('compliant');
  });

  it('counts the failures in a row across the chunks of 300 statuses a scan reads and commits', async () => {
    serveKandji();
    const devices = fleetOf(302);
    setFleet(devices);
    // The last two of the first chunk and the first of the second fail.
    failStatus(devices.slice(298, 301));
    const t = testContext<KandjiState>();
    await scan(t, { status_failures_to_stop: 3, status_concurrency: 1, max_retry_wait: '0s' });
    expect(statusReads()).toHaveLength(301);
    expect(statusReads().at(-1)).toBe('d300');
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');
    expect(t.statuses.at(-1)?.reason).toContain('the 1 device not read before the 3 whose read failed');
    const state = stateOf(t);
    expect(Object.values(state.devices).filter((d) => d.status === 'compliant')).toHaveLength(298);
    expect(state.devices['d301']).not.toHaveProperty('status');
    expect(state.devices['d301']).not.toHaveProperty('read_failed');
  });

  it('status_failures_to_stop is bounded (1–1000, default 10)', () => {
    const parse = (value: unknown) =>
      kandjiConnector.configSchema.safeParse({ ...fixtureSettings, status_failures_to_stop: value });
    expect(kandjiConnector.configSchema.parse(fixtureSettings).status_failures_to_stop).toBe(10);
    expect(parse(1).success).toBe(true);
    expect(parse(1_000).success).toBe(true);
    expect(parse(0).success).toBe(false);
    expect(parse(1_001).success).toBe(false);
    expect(parse(2.5).success).toBe(false);
  });
});
