import { readdirSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { RetryableError, type InboundConnector } from '../../core/plugin-api/index.ts';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import { createJamfPro } from './connector.ts';
import { fixtureSettings } from './fixtures/settings.ts';
import { jamfProConnector } from './index.ts';
import type { DeviceState } from './mapping.ts';
import {
  checkFixture,
  checkSequence,
  checkSimulateGolden,
  readFixture,
} from '../_shared/mdm-fixture-checks.ts';
import { testContext, type TestContext } from '../_shared/mdm-test-support.ts';

const fixtureDir = new URL('./fixtures/', import.meta.url);

describe('jamf-pro mapping fixtures', () => {
  const config = jamfProConnector.configSchema.parse(fixtureSettings);
  for (const file of readdirSync(fixtureDir).filter((f) => f.endsWith('.json'))) {
    const fixture = readFixture(new URL(file, fixtureDir));
    it(`${file}: ${fixture.description}`, () => {
      checkFixture(fixture, () => jamfProConnector.map!(fixture.input, config));
    });
  }
});

describe('jamf-pro webhook sequences (state carried from one webhook to the next, default settings)', () => {
  const config = jamfProConnector.configSchema.parse({ ...fixtureSettings, first_sighting: 'baseline' });
  const sequences = new URL('./sequences/', fixtureDir);
  for (const name of readdirSync(sequences)) {
    it(name, () => {
      checkSequence(new URL(`${name}/`, sequences), (input, state: unknown) =>
        jamfProConnector.map!(input, config, state),
      );
    });
  }
});

// ─── Golden: the sequence through `ssf-bridge simulate` ─────────────────────────────────────────

describe('golden: ssf-bridge simulate', () => {
  it("prints the sequence's events in order with state carried between payloads, then rejects a malformed one", async () => {
    await checkSimulateGolden(
      'jamf-pro',
      new URL('./sequences/lifecycle/', fixtureDir),
      new URL('malformed-xml-unclosed.json', fixtureDir),
    );
  }, 60_000);
});

// ─── Behaviour against a Jamf Pro API fake on loopback ──────────────────────────────────────────

const server = new MockServer();
/** Computers the fake inventory holds, by id, with the ids of the groups they are in. */
let computers = new Map<string, string[]>();
let tokenRequests = 0;

const GROUPS: Record<string, string> = {
  '1': 'All Managed Clients',
  '42': 'Non-compliant Macs',
  '57': 'FileVault disabled',
};

function inventoryRecord(id: string, groups: string[]) {
  return {
    id,
    udid: `UDID-${id}`,
    general: {
      name: `Mac ${id}`,
      reportDate: '2026-01-01T00:00:05.123Z',
      lastContactTime: '2026-01-01T00:00:11.000Z',
      managementId: `mgmt-${id}`,
      remoteManagement: { managed: true },
    },
    userAndLocation: { username: `u${id}`, realname: `User ${id}`, email: `u${id}@example.com` },
    hardware: { serialNumber: `SN${id}`, model: 'MacBook Pro' },
    groupMemberships: ['1', ...groups].map((g) => ({
      groupId: g,
      groupName: GROUPS[g] ?? `Group ${g}`,
      smartGroup: true,
    })),
  };
}

function serveJamf(): void {
  server.reset();
  tokenRequests = 0;
  server.on('POST', '/api/oauth/token', () => {
    tokenRequests += 1;
    return {
      body: {
        access_token: `jamf-token-${tokenRequests}`,
        token_type: 'Bearer',
        expires_in: 1199,
        scope: 'api-role:1',
      },
    };
  });
  server.on('GET', '/api/v1/computers-inventory', (req) => {
    const page = Number(req.query['page'] ?? 0);
    const size = Number(req.query['page-size'] ?? 100);
    const all = [...computers.entries()].sort(([a], [b]) => Number(a) - Number(b));
    return {
      body: {
        totalCount: all.length,
        results: all.slice(page * size, page * size + size).map(([id, g]) => inventoryRecord(id, g)),
      },
    };
  });
}

function setComputers(entries: Array<[string, string[]]>): void {
  computers = new Map(entries);
  for (const [id] of entries) {
    server.on('GET', `/api/v1/computers-inventory/${id}`, () => {
      const groups = computers.get(id);
      return groups
        ? { body: inventoryRecord(id, groups) }
        : { status: 404, body: { httpStatus: 404, errors: [] } };
    });
  }
}

beforeAll(async () => {
  await server.start();
});
afterAll(async () => {
  await server.close();
});

const running: InboundConnector[] = [];
afterEach(async () => {
  for (const c of running.splice(0)) await c.stop(100);
});

const BASIC = { type: 'basic', username: 'jamf-hooks', password: 'webhook-password-value' };
const basicHeader = (user = 'jamf-hooks', pass = 'webhook-password-value') =>
  `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;

function connector(t: TestContext, settings: Record<string, unknown> = {}) {
  const config = jamfProConnector.configSchema.parse({
    url: server.url,
    client_id: 'api-client-id',
    client_secret: 'api-client-secret-value',
    webhook_auth: BASIC,
    allowed_networks: ['203.0.113.0/24', '127.0.0.1'],
    non_compliant_groups: ['Non-compliant Macs', 57],
    page_size: 2,
    ...settings,
  });
  const instance = createJamfPro(t.ctx, config);
  running.push(instance);
  return instance;
}

function smartGroup(
  group: number,
  name: string,
  added: number[],
  removed: number[],
  id = 7,
  at = 1767229200123,
) {
  return {
    webhook: {
      id,
      name: 'ssf-bridge',
      webhookEvent: 'SmartGroupComputerMembershipChange',
      eventTimestamp: at,
    },
    event: {
      computer: true,
      smartGroup: true,
      jssid: group,
      name,
      groupAddedDevicesIds: added,
      groupRemovedDevicesIds: removed,
    },
  };
}

function post(
  instance: InboundConnector,
  body: unknown,
  options: {
    authorization?: string | null;
    remote?: string;
    xml?: string;
    headers?: Record<string, string>;
  } = {},
) {
  const raw = options.xml ?? JSON.stringify(body);
  const authorization = options.authorization === undefined ? basicHeader() : options.authorization;
  return instance.handleWebhook!({
    method: 'POST',
    headers: {
      'content-type': options.xml ? 'text/xml' : 'application/json',
      ...(authorization === null ? {} : { authorization }),
      ...options.headers,
    },
    query: {},
    rawBody: Buffer.from(raw),
    body: options.xml ? undefined : body,
    remoteAddress: options.remote ?? '203.0.113.25',
  });
}

const lookups = () => server.requests.filter((r) => /^\/api\/v1\/computers-inventory\/\d+$/.test(r.path));
const transitions = (t: TestContext) =>
  t
    .events()
    .map((e) => [
      (e.subject['device'] as { id: string }).id,
      e.claims?.['previous_status'],
      e.claims?.['current_status'],
    ]);

describe('jamf-pro webhooks', () => {
  it('authenticates with Basic auth: 401 without credentials, 403 with wrong ones', async () => {
    serveJamf();
    const instance = connector(testContext());
    const missing = await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []), {
      authorization: null,
    });
    expect(missing.status).toBe(401);
    expect(missing.headers?.['www-authenticate']).toContain('Basic');
    const wrong = await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []), {
      authorization: basicHeader('jamf-hooks', 'guess'),
    });
    expect(wrong.status).toBe(403);
    expect(server.requests).toHaveLength(0);
  });

  it('authenticates with a header secret', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    const t = testContext();
    const instance = connector(t, {
      webhook_auth: { type: 'header', name: 'X-Jamf-Secret', value: 'header-secret-value' },
    });
    const body = smartGroup(42, 'Non-compliant Macs', [1187], []);
    expect((await post(instance, body, { authorization: null })).status).toBe(401);
    expect(
      (await post(instance, body, { authorization: null, headers: { 'x-jamf-secret': 'nope' } })).status,
    ).toBe(403);
    const ok = await post(instance, body, {
      authorization: null,
      headers: { 'x-jamf-secret': 'header-secret-value' },
    });
    expect(ok.status).toBe(202);
    expect(t.events()).toHaveLength(1);
  });

  it('refuses calls from outside allowed_networks before looking at credentials', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    const t = testContext();
    const instance = connector(t);
    const outside = await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []), {
      remote: '198.51.100.9',
    });
    expect(outside.status).toBe(403);
    expect(outside.body).toMatchObject({ message: expect.stringContaining('source address') });
    const mapped = await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []), {
      remote: '::ffff:203.0.113.77',
    });
    expect(mapped.status).toBe(202);
    expect(t.events()).toHaveLength(1);
  });

  it('looks a smart-group computer up in the Jamf Pro API (token cached) and commits its state with the event', async () => {
    serveJamf();
    setComputers([
      ['1187', ['42']],
      ['1201', ['42']],
    ]);
    const t = testContext();
    const instance = connector(t);
    const res = await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []));
    expect(res).toMatchObject({
      status: 202,
      body: { accepted: ['jamf-pro:webhook:7:1767229200123:computer:1187:compliant>not-compliant'] },
    });
    const lookup = lookups()[0]!;
    expect(lookup.headers['authorization']).toBe('Bearer jamf-token-1');
    expect(
      new URL(`http://x/?${new URLSearchParams(lookup.query)}`).searchParams.get('section'),
    ).toBeTruthy();
    expect(server.requests.find((r) => r.path === '/api/oauth/token')?.body).toContain(
      'client_id=api-client-id',
    );

    const event = t.events()[0]!;
    expect(event.subject).toEqual({
      format: 'complex',
      user: { format: 'email', email: 'u1187@example.com' },
      device: { format: 'opaque', id: 'UDID-1187' },
    });
    expect(t.emits[0]?.checkpoint?.name).toBe('computer:1187');
    expect(t.emits[0]?.checkpoint?.value).toMatchObject({
      status: 'not-compliant',
      groups: ['Non-compliant Macs'],
      aliases: {
        jamf_computer_id: '1187',
        udid: 'UDID-1187',
        serial_number: 'SN1187',
        hostname: 'Mac 1187',
        management_id: 'mgmt-1187',
      },
    });

    await post(instance, smartGroup(42, 'Non-compliant Macs', [1201], [], 9));
    expect(tokenRequests).toBe(1);
    expect(t.events()).toHaveLength(2);
  });

  it('sends nothing twice when Jamf Pro repeats a webhook', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    const t = testContext();
    const instance = connector(t);
    const body = smartGroup(42, 'Non-compliant Macs', [1187], []);
    await post(instance, body);
    const again = await post(instance, body);
    expect(again).toMatchObject({ status: 202, body: { accepted: [] } });
    expect(t.events()).toHaveLength(1);
  });

  it('serialises webhooks about one computer: joining two groups at once is one transition', async () => {
    serveJamf();
    setComputers([['1187', ['42', '57']]]);
    const t = testContext();
    const instance = connector(t);
    const [a, b] = await Promise.all([
      post(instance, smartGroup(42, 'Non-compliant Macs', [1187], [], 7, 1767229200000)),
      post(instance, smartGroup(57, 'FileVault disabled', [1187], [], 8, 1767229200001)),
    ]);
    expect([a.status, b.status]).toEqual([202, 202]);
    expect(transitions(t)).toEqual([['UDID-1187', 'compliant', 'not-compliant']]);
    expect((t.checkpoints.get('computer:1187') as DeviceState).groups).toEqual([
      'FileVault disabled',
      'Non-compliant Macs',
    ]);
  });

  it('takes group membership from the inventory it looked up, not from a late or repeated webhook', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    const t = testContext();
    const instance = connector(t);
    const joined = smartGroup(42, 'Non-compliant Macs', [1187], [], 7, 1767229200000);
    await post(instance, joined);
    // The computer is fixed and leaves the group; the webhook saying so arrives first, then Jamf
    // Pro delivers the older "added" once more.
    computers.set('1187', []);
    await post(instance, smartGroup(42, 'Non-compliant Macs', [], [1187], 8, 1767229260000));
    const late = await post(instance, joined);
    expect(transitions(t)).toEqual([
      ['UDID-1187', 'compliant', 'not-compliant'],
      ['UDID-1187', 'not-compliant', 'compliant'],
    ]);
    expect(late).toMatchObject({
      status: 202,
      body: {
        accepted: [],
        notes: [
          'the Jamf Pro inventory does not list computer 1187 in "Non-compliant Macs"; the webhook is out of date',
        ],
      },
    });
    expect(t.checkpoints.get('computer:1187')).toMatchObject({ status: 'compliant', groups: [] });

    // A webhook that arrives with a new id after the same fix changes nothing either.
    await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], [], 9, 1767229200000));
    expect(t.events()).toHaveLength(2);
  });

  it("goes by the webhook's membership change when the inventory carries no group memberships", async () => {
    serveJamf();
    setComputers([['1187', []]]);
    server.on('GET', '/api/v1/computers-inventory/1187', () => ({
      body: { ...inventoryRecord('1187', []), groupMemberships: null },
    }));
    const t = testContext();
    const instance = connector(t);
    await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []));
    expect(transitions(t)).toEqual([['UDID-1187', 'compliant', 'not-compliant']]);
    expect(t.checkpoints.get('computer:1187')).toMatchObject({ groups: ['Non-compliant Macs'] });
  });

  it('ignores groups that are not configured without calling the API', async () => {
    serveJamf();
    const t = testContext();
    const instance = connector(t);
    const res = await post(instance, smartGroup(9, 'macOS 15 Sequoia', [1187], []));
    expect(res).toMatchObject({
      status: 202,
      body: { accepted: [], ignored: expect.stringContaining('not a configured') },
    });
    expect(server.requests).toHaveLength(0);
  });

  it('accepts the XML variant from the raw body', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    const t = testContext();
    const instance = connector(t);
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
<JSSEvent>
  <webhook><id>7</id><name>ssf-bridge</name><webhookEvent>SmartGroupComputerMembershipChange</webhookEvent><eventTimestamp>1767229200123</eventTimestamp></webhook>
  <event><computer>true</computer><smartGroup>true</smartGroup><jssid>42</jssid><name>Non-compliant Macs</name>
    <groupAddedDevicesIds><groupAddedDevicesId>1187</groupAddedDevicesId></groupAddedDevicesIds><groupRemovedDevicesIds/>
  </event>
</JSSEvent>`;
    const res = await post(instance, undefined, { xml });
    expect(res.status).toBe(202);
    expect(transitions(t)).toEqual([['UDID-1187', 'compliant', 'not-compliant']]);
  });

  it('answers 400 with a clear message for malformed JSON and XML', async () => {
    serveJamf();
    const instance = connector(testContext());
    const json = await post(instance, { webhook: { id: 7, eventTimestamp: 1 }, event: {} });
    expect(json).toMatchObject({
      status: 400,
      body: { message: expect.stringContaining('webhook.webhookEvent: is required') },
    });
    const xml = await post(instance, undefined, { xml: '<JSSEvent><webhook><id>7</id></webhook>' });
    expect(xml).toMatchObject({ status: 400, body: { message: expect.stringContaining('malformed XML') } });
    const empty = await post(instance, undefined, { xml: '' });
    expect(empty.status).toBe(400);
  });

  it('notes a computer Jamf Pro no longer has (404) and answers 202', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    computers.delete('1187');
    const t = testContext();
    const res = await post(connector(t), smartGroup(42, 'Non-compliant Macs', [1187], []));
    expect(res).toMatchObject({ status: 202, body: { notes: ['computer 1187 is no longer in Jamf Pro'] } });
    expect(t.events()).toEqual([]);
  });

  it('propagates throttling of the lookup as retryable (the server answers 503 + Retry-After)', async () => {
    serveJamf();
    server.on('GET', '/api/v1/computers-inventory/1187', () => ({
      status: 429,
      headers: { 'retry-after': '30' },
    }));
    const t = testContext();
    const error = await post(connector(t), smartGroup(42, 'Non-compliant Macs', [1187], [])).catch(
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).retryAfterMs).toBe(30_000);
    expect(t.events()).toEqual([]);
  });

  it('signs in as a Jamf Pro account: buys a bearer token with Basic credentials at /api/v1/auth/token and reads with it', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    let issued = 0;
    server.on('POST', '/api/v1/auth/token', (req) => {
      if (req.headers['authorization'] !== basicHeader('bridge-api', 'account-password-value')) {
        return { status: 401, body: { httpStatus: 401, errors: [] } };
      }
      issued += 1;
      return {
        body: {
          token: `eyJhbGciOiJIUzI1NiJ9.account-${issued}`,
          expires: new Date(Date.now() + 20 * 60_000).toISOString(),
        },
      };
    });
    const account = { client_id: undefined, client_secret: undefined, username: 'bridge-api' };
    const t = testContext();
    const instance = connector(t, { ...account, password: 'account-password-value' });
    const res = await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []));
    expect(res.status).toBe(202);
    expect(lookups()[0]!.headers['authorization']).toBe('Bearer eyJhbGciOiJIUzI1NiJ9.account-1');
    expect(server.requests.filter((r) => r.path === '/api/oauth/token')).toHaveLength(0);
    expect(t.events()).toHaveLength(1);

    const wrong = testContext();
    const refused = connector(wrong, { ...account, password: 'not-the-password' });
    expect(await post(refused, smartGroup(42, 'Non-compliant Macs', [1187], []))).toMatchObject({
      status: 502,
    });
    expect(wrong.statuses).toContainEqual({
      state: 'permanent_error',
      reason: expect.stringContaining('Jamf Pro refused the credentials of the account "bridge-api"'),
    });
  });

  it('answers 502 and flags the instance when Jamf Pro refuses the API client', async () => {
    serveJamf();
    server.on('POST', '/api/oauth/token', () => ({ status: 401, body: { error: 'invalid_client' } }));
    const t = testContext();
    const instance = connector(t);
    const res = await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []));
    expect(res).toMatchObject({ status: 502, body: { error: 'upstream_error' } });
    expect(t.statuses.map((s) => s.state)).toContain('permanent_error');
    expect(await instance.check!(t.ctx.signal)).toMatchObject({ ok: false, retryable: false });
  });

  it('lets an outbox-full error through without committing, so a retried webhook sends the same event', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    const t = testContext();
    const instance = connector(t);
    const body = smartGroup(42, 'Non-compliant Macs', [1187], []);
    t.failNextEmit();
    await expect(post(instance, body)).rejects.toBeInstanceOf(RetryableError);
    expect(t.checkpoints.has('computer:1187')).toBe(false);
    const retried = await post(instance, body);
    expect(retried.status).toBe(202);
    expect(t.events().map((e) => e.sourceRecordId)).toEqual([
      'jamf-pro:webhook:7:1767229200123:computer:1187:compliant>not-compliant',
    ]);
  });

  it('check-ins compare group memberships with the last state, or are ignored when lookups are off', async () => {
    serveJamf();
    setComputers([['1187', []]]);
    const t = testContext();
    const instance = connector(t);
    const checkIn = (at: number) => ({
      webhook: { id: 3, name: 'checkin', webhookEvent: 'ComputerCheckIn', eventTimestamp: at },
      event: {
        computer: {
          jssID: 1187,
          udid: 'UDID-1187',
          deviceName: 'Mac 1187',
          emailAddress: 'u1187@example.com',
        },
        trigger: 'CHECKIN',
      },
    });
    expect((await post(instance, checkIn(1767229200000))).status).toBe(202);
    expect(t.events()).toEqual([]);
    computers.set('1187', ['57']);
    await post(instance, checkIn(1767232800000));
    expect(transitions(t)).toEqual([['UDID-1187', 'compliant', 'not-compliant']]);
    expect(t.events()[0]?.claims?.['reason_admin']).toEqual({
      en: 'Jamf Pro lists "Mac 1187" in the non-compliant smart group(s) "FileVault disabled"',
    });

    const quiet = testContext();
    const off = connector(quiet, { check_in_lookup: false });
    const before = lookups().length;
    const res = await post(off, checkIn(1767236400000));
    expect(res).toMatchObject({ status: 202, body: { ignored: expect.stringContaining('check_in_lookup') } });
    expect(lookups().length).toBe(before);
  });

  it('reports an unenrolled mobile device without any lookup', async () => {
    serveJamf();
    const t = testContext();
    const res = await post(connector(t), {
      webhook: {
        id: 11,
        name: 'unenrolled',
        webhookEvent: 'MobileDeviceUnEnrolled',
        eventTimestamp: 1767230000000,
      },
      event: {
        jssID: 770,
        udid: '00008120-001A2B3C4D5E601E',
        deviceName: 'iPhone',
        username: 'sam@example.com',
      },
    });
    expect(res.status).toBe(202);
    expect(transitions(t)).toEqual([['00008120-001A2B3C4D5E601E', 'compliant', 'not-compliant']]);
    expect(server.requests).toHaveLength(0);
  });
});

describe('jamf-pro reconciliation', () => {
  it('pages the inventory, records baselines, then catches a membership change a webhook missed', async () => {
    serveJamf();
    setComputers([
      ['1187', []],
      ['1201', ['42']],
      ['1310', []],
    ]);
    const t = testContext();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    expect(t.tasks.map((task) => [task.name, task.options.everyMs])).toEqual([['reconcile', 3_600_000]]);
    await t.runTask('reconcile');
    const pages = server.requests.filter((r) => r.path === '/api/v1/computers-inventory');
    expect(pages.map((r) => [r.query['page'], r.query['page-size'], r.query['sort']])).toEqual([
      ['0', '2', 'id:asc'],
      ['1', '2', 'id:asc'],
    ]);
    expect(t.events()).toEqual([]);
    expect((t.checkpoints.get('computer:1201') as DeviceState).status).toBe('not-compliant');
    expect(t.checkpoints.get('inventory')).toMatchObject({ ids: ['1187', '1201', '1310'] });

    computers.set('1187', ['57']);
    await t.runTask('reconcile');
    await t.runTask('reconcile');
    expect(transitions(t)).toEqual([['UDID-1187', 'compliant', 'not-compliant']]);
    expect(t.events()[0]?.sourceRecordId).toBe(
      'jamf-pro:reconcile:computer:1187:1:compliant>not-compliant:2026-01-01T00:00:11.000Z',
    );
  });

  it('agrees with webhooks: a change a webhook already reported is not sent again', async () => {
    serveJamf();
    setComputers([['1187', []]]);
    const t = testContext();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');
    computers.set('1187', ['42']);
    await post(instance, smartGroup(42, 'Non-compliant Macs', [1187], []));
    await t.runTask('reconcile');
    expect(t.events()).toHaveLength(1);
  });

  it('resumes from stored computer states after a restart', async () => {
    serveJamf();
    setComputers([
      ['1187', ['42']],
      ['1201', []],
    ]);
    const first = testContext();
    const a = connector(first);
    await a.start(first.ctx.signal);
    await first.runTask('reconcile');
    await a.stop(100);

    const second = testContext();
    for (const [k, v] of first.checkpoints) second.checkpoints.set(k, v);
    const b = connector(second);
    await b.start(second.ctx.signal);
    await second.runTask('reconcile');
    expect(second.events()).toEqual([]);
    computers.set('1187', []);
    await second.runTask('reconcile');
    expect(transitions(second)).toEqual([['UDID-1187', 'not-compliant', 'compliant']]);
  });

  it('sends a change once when a webhook on one instance and the reconciliation on another decide it together', async () => {
    serveJamf();
    setComputers([['1187', []]]);
    // Two bridge instances on one database: A takes the webhook, B (the leader) reconciles.
    const a = testContext();
    const b = testContext({ checkpoints: a.checkpoints });
    const webhooks = connector(a);
    const leader = connector(b);
    await leader.start(b.ctx.signal);
    await b.runTask('reconcile');

    computers.set('1187', ['42']);
    // A reads the computer's state; before A commits, B's reconciliation sees the same change
    // and commits it.
    const read = a.ctx.checkpoints.get.bind(a.ctx.checkpoints);
    let raced = false;
    a.ctx.checkpoints.get = async (name) => {
      const value = await read(name);
      if (name === 'computer:1187' && !raced) {
        raced = true;
        await b.runTask('reconcile');
      }
      return value;
    };
    const res = await post(webhooks, smartGroup(42, 'Non-compliant Macs', [1187], []));
    expect(res).toMatchObject({ status: 202, body: { accepted: [] } });
    expect([...b.events(), ...a.events()].map((e) => e.sourceRecordId)).toEqual([
      'jamf-pro:reconcile:computer:1187:1:compliant>not-compliant:2026-01-01T00:00:11.000Z',
    ]);
    expect(a.checkpoints.get('computer:1187')).toMatchObject({ status: 'not-compliant', seq: 1 });
  });

  it('fails a webhook as retryable when other instances keep changing the computer', async () => {
    serveJamf();
    setComputers([['1187', ['42']]]);
    const a = testContext();
    const b = testContext({ checkpoints: a.checkpoints });
    const webhooks = connector(a);
    const read = a.ctx.checkpoints.get.bind(a.ctx.checkpoints);
    let runs = 0;
    a.ctx.checkpoints.get = async (name) => {
      const value = await read(name);
      // Every read is overtaken by a commit of another instance.
      runs += 1;
      b.checkpoints.set('computer:1187', {
        status: 'compliant',
        groups: [],
        device_id: 'UDID-1187',
        aliases: { jamf_computer_id: '1187' },
        seq: runs,
      });
      return value;
    };
    await expect(post(webhooks, smartGroup(42, 'Non-compliant Macs', [1187], []))).rejects.toMatchObject({
      code: 'SSF_ERR_CHECKPOINT_CONFLICT',
      errorClass: 'retryable',
    });
    expect(runs).toBe(4);
    expect(a.events()).toEqual([]);
  });

  it('handles a computer that leaves the inventory by policy, and distrusts an empty inventory', async () => {
    serveJamf();
    setComputers([
      ['1187', []],
      ['1201', ['42']],
    ]);
    const t = testContext();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');
    computers = new Map();
    await t.runTask('reconcile');
    expect(t.events()).toEqual([]);
    expect(t.logs.some((l) => l.level === 'warn' && l.msg?.includes('inventory was empty'))).toBe(true);

    computers = new Map([['1201', ['42']]]);
    await t.runTask('reconcile');
    expect(transitions(t)).toEqual([['UDID-1187', 'compliant', 'not-compliant']]);
    expect(t.events()[0]?.claims?.['reason_admin']).toEqual({
      en: '"Mac 1187" is no longer in the Jamf Pro inventory (deleted or unmanaged)',
    });
    expect(t.checkpoints.get('computer:1187')).toMatchObject({
      status: 'not-compliant',
      seq: 1,
      gone: expect.any(String),
    });
    expect(t.checkpoints.get('inventory')).toMatchObject({ ids: ['1201'] });
  });

  it('does not report a computer gone when a deletion shifts the pages under the scan', async () => {
    serveJamf();
    setComputers([
      ['1', []],
      ['2', []],
      ['3', []],
      ['4', []],
    ]);
    const t = testContext();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');
    expect(t.checkpoints.get('inventory')).toMatchObject({ ids: ['1', '2', '3', '4'] });

    // Computer 1 is deleted in Jamf Pro just after the first page (1, 2) was read: computer 3
    // moves up to the first page and the second page holds 4 alone.
    server.on('GET', '/api/v1/computers-inventory', (req) => {
      const page = Number(req.query['page'] ?? 0);
      const size = Number(req.query['page-size'] ?? 100);
      const all = [...computers.entries()].sort(([a], [b]) => Number(a) - Number(b));
      if (page === 0) computers.delete('1');
      return {
        body: {
          totalCount: all.length,
          results: all.slice(page * size, page * size + size).map(([id, g]) => inventoryRecord(id, g)),
        },
      };
    });
    await t.runTask('reconcile');
    expect(t.events()).toEqual([]);
    expect(lookups().map((r) => r.path)).toEqual(['/api/v1/computers-inventory/3']);
    expect(t.checkpoints.get('computer:3')).toMatchObject({ status: 'compliant', seq: 0 });
    expect(t.checkpoints.get('inventory')).toMatchObject({ ids: ['1', '2', '3', '4'] });

    // The next reconciliation no longer sees computer 1, and its lookup confirms it is gone.
    await t.runTask('reconcile');
    expect(transitions(t)).toEqual([['UDID-1', 'compliant', 'not-compliant']]);
    expect(t.checkpoints.get('inventory')).toMatchObject({ ids: ['2', '3', '4'] });
  });

  it('sends the current status of a computer that was reported gone and comes back', async () => {
    serveJamf();
    setComputers([
      ['1187', []],
      ['1201', []],
    ]);
    const t = testContext();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');
    computers.delete('1187');
    await t.runTask('reconcile');
    expect(transitions(t)).toEqual([['UDID-1187', 'compliant', 'not-compliant']]);

    computers.set('1187', []);
    await t.runTask('reconcile');
    expect(transitions(t)).toEqual([
      ['UDID-1187', 'compliant', 'not-compliant'],
      ['UDID-1187', 'not-compliant', 'compliant'],
    ]);
    expect(t.checkpoints.get('computer:1187')).toMatchObject({ status: 'compliant', seq: 2 });
    expect(t.checkpoints.get('computer:1187')).not.toHaveProperty('gone');
  });

  it('retries a 5xx page, waits out a 429, and reports a persistent failure as recoverable', async () => {
    serveJamf();
    setComputers([['1187', []]]);
    let calls = 0;
    server.on('GET', '/api/v1/computers-inventory', () => {
      calls += 1;
      if (calls === 1) return { status: 503 };
      if (calls === 2) return { status: 429, headers: { 'retry-after': '1' } };
      return { body: { totalCount: 1, results: [inventoryRecord('1187', [])] } };
    });
    const t = testContext();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    const started = Date.now();
    await t.runTask('reconcile');
    expect(calls).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1400);
    expect(t.checkpoints.has('computer:1187')).toBe(true);

    server.on('GET', '/api/v1/computers-inventory', () => ({ status: 500 }));
    await expect(t.runTask('reconcile')).rejects.toThrow('500');
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');
  });

  it('schedules nothing with reconcile: false, and stop() is idempotent', async () => {
    serveJamf();
    const t = testContext();
    const instance = connector(t, { reconcile: false });
    await instance.stop(100);
    await instance.start(t.ctx.signal);
    expect(t.tasks).toEqual([]);
    await instance.stop(100);
    await instance.stop(100);
  });
});

describe('jamf-pro config', () => {
  it('takes an API client or an account for the Jamf Pro API, exactly one of them and whole', () => {
    const base = { url: 'https://jamf.example.com:8443', webhook_auth: BASIC, non_compliant_groups: [42] };
    const parse = (extra: Record<string, unknown>) =>
      jamfProConnector.configSchema.safeParse({ ...base, ...extra });
    const problems = (extra: Record<string, unknown>) =>
      (parse(extra).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);
    expect(parse({ client_id: 'c', client_secret: 's' }).success).toBe(true);
    expect(parse({ username: 'bridge-api', password: 'p' }).success).toBe(true);
    expect(problems({})).toEqual([
      'client_id: the Jamf Pro API needs client_id and client_secret (an API client), or username and password (an account)',
    ]);
    expect(problems({ client_id: 'c' })).toEqual([
      'client_secret: the Jamf Pro API needs client_id and client_secret (an API client), or username and password (an account)',
    ]);
    expect(problems({ username: 'bridge-api' })).toEqual([
      'password: an account sign-in needs both username and password',
    ]);
    expect(problems({ client_id: 'c', client_secret: 's', username: 'u', password: 'p' })).toEqual([
      'username: sign in to the Jamf Pro API either as an API client (client_id, client_secret) or as an account (username, password), not both',
    ]);
  });

  it('refuses a plain http Jamf Pro URL other than the local machine: the credentials would travel in clear text', () => {
    const base = { webhook_auth: BASIC, non_compliant_groups: [42], username: 'bridge-api', password: 'p' };
    const refused = jamfProConnector.configSchema.safeParse({ ...base, url: 'http://acme.jamfcloud.com' });
    expect(refused.error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`)).toEqual([
      'url: must be an https URL (the credentials would travel in clear text over http)',
    ]);
    expect(
      jamfProConnector.configSchema.safeParse({ ...base, url: 'ftp://acme.jamfcloud.com' }).success,
    ).toBe(false);
    expect(jamfProConnector.configSchema.safeParse({ ...base, url: 'http://127.0.0.1:8080' }).success).toBe(
      true,
    );
    expect(
      jamfProConnector.configSchema.safeParse({ ...base, url: 'https://acme.jamfcloud.com' }).success,
    ).toBe(true);
  });

  it('refuses unauthenticated webhooks unless source networks are allow-listed', () => {
    const base = {
      url: 'https://acme.jamfcloud.com',
      client_id: 'c',
      client_secret: 'secret-value',
      non_compliant_groups: [42],
    };
    const open = jamfProConnector.configSchema.safeParse({ ...base, webhook_auth: { type: 'none' } });
    expect(open.success).toBe(false);
    expect(JSON.stringify(open.error?.issues)).toContain('allowed_networks');
    expect(
      jamfProConnector.configSchema.safeParse({
        ...base,
        webhook_auth: { type: 'none' },
        allowed_networks: ['10.1.0.0/16'],
      }).success,
    ).toBe(true);
    expect(
      jamfProConnector.configSchema.safeParse({
        ...base,
        webhook_auth: BASIC,
        allowed_networks: ['10.1.0.0/33'],
      }).success,
    ).toBe(false);
  });
});

// ─── Missing computers: an empty or short inventory, capped and concurrent lookups ──────────────

describe('jamf-pro reconciliation: computers missing from the inventory', () => {
  const ids = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1));
  const inventoryIndex = (t: TestContext) => t.checkpoints.get('inventory') as { ids: string[] };

  it('holds a reconciliation whose inventory is empty while computers are known: recoverable_error says why, not reported healthy', async () => {
    serveJamf();
    setComputers([
      ['1187', []],
      ['1201', ['42']],
    ]);
    const t = testContext();
    const instance = connector(t);
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');
    expect(t.successes).toBe(1);

    computers = new Map();
    await t.runTask('reconcile');
    expect(t.successes).toBe(1);
    expect(t.statuses.at(-1)).toEqual({
      state: 'recoverable_error',
      reason:
        "the inventory was empty while 2 computers are known; check the API client's Read Computers privilege",
    });
    expect(t.counter('jamf_pro_reconcile_runs_total', { outcome: 'held' })).toBe(1);
    expect(lookups()).toEqual([]);
    expect(inventoryIndex(t).ids).toEqual(['1187', '1201']);
  });

  it('a short inventory with every lookup answering 404 (a proxy) turns nothing not-compliant: the guard holds it without a lookup, and the index keeps the computers', async () => {
    serveJamf();
    setComputers(ids(300).map((id): [string, string[]] => [id, []]));
    const t = testContext();
    const instance = connector(t, { page_size: 100 });
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');
    expect(inventoryIndex(t).ids).toHaveLength(300);

    // The first page claims there is only one page, and a proxy answers 404 for every computer.
    server.on('GET', '/api/v1/computers-inventory', (req) => ({
      body: {
        totalCount: 100,
        results: ids(100)
          .slice(Number(req.query['page']) * 100)
          .map((id) => inventoryRecord(id, [])),
      },
    }));
    for (const id of ids(300)) {
      server.on('GET', `/api/v1/computers-inventory/${id}`, () => ({
        status: 404,
        body: { httpStatus: 404, errors: [{ code: 'INVALID_ID', description: 'Computer not found' }] },
      }));
    }
    await t.runTask('reconcile');
    expect(lookups()).toEqual([]);
    expect(t.events()).toEqual([]);
    expect(t.statuses.at(-1)?.state).toBe('recoverable_error');
    expect(t.statuses.at(-1)?.reason).toMatch(
      /^200 of 300 known computers are missing from the Jamf Pro inventory, more than vanished_guard_share \(10%\) allows: none is reported gone this reconciliation/,
    );
    expect(t.counter('jamf_pro_missing_computers_total', { outcome: 'held' })).toBe(200);
    expect(inventoryIndex(t).ids).toHaveLength(300);
    expect(t.checkpoints.get('computer:250')).not.toHaveProperty('gone');
  });

  it('looks missing computers up lookup_concurrency at once', async () => {
    serveJamf();
    setComputers(ids(12).map((id): [string, string[]] => [id, []]));
    const t = testContext();
    const instance = connector(t, { page_size: 100, lookup_concurrency: 3 });
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');

    // Eight are deleted; each lookup takes a while, so the ones in flight overlap.
    for (const id of ids(8)) computers.delete(id);
    let inFlight = 0;
    let most = 0;
    for (const id of ids(8)) {
      server.on('GET', `/api/v1/computers-inventory/${id}`, async () => {
        inFlight += 1;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 40));
        inFlight -= 1;
        return { status: 404, body: { httpStatus: 404, errors: [] } };
      });
    }
    await t.runTask('reconcile');
    expect(lookups()).toHaveLength(8);
    expect(most).toBe(3);
    expect(t.events()).toHaveLength(8);
    expect(inventoryIndex(t).ids).toEqual(['10', '11', '12', '9']);
  });

  it('looks up at most vanished_lookups_per_scan missing computers per reconciliation, never looked up first, and carries the rest', async () => {
    serveJamf();
    setComputers(ids(12).map((id): [string, string[]] => [id, []]));
    const t = testContext();
    const instance = connector(t, { page_size: 100, vanished_lookups_per_scan: 5, lookup_concurrency: 1 });
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');

    for (const id of ids(8)) computers.delete(id);
    await t.runTask('reconcile');
    expect(lookups().map((r) => r.path.split('/').at(-1))).toEqual(['1', '2', '3', '4', '5']);
    expect(t.events()).toHaveLength(5);
    expect(t.counter('jamf_pro_reconcile_runs_total', { outcome: 'partial' })).toBe(1);
    expect(inventoryIndex(t).ids).toEqual(['10', '11', '12', '6', '7', '8', '9']);

    await t.runTask('reconcile');
    expect(lookups().map((r) => r.path.split('/').at(-1))).toEqual(['1', '2', '3', '4', '5', '6', '7', '8']);
    expect(t.events()).toHaveLength(8);
    expect(inventoryIndex(t).ids).toEqual(['10', '11', '12', '9']);
    expect(t.counter('jamf_pro_reconcile_runs_total', { outcome: 'ok' })).toBe(2);
  });

  it('a lookup that keeps failing keeps its computer (no event) without stopping the removals already confirmed; the index is written and it is looked up again', async () => {
    serveJamf();
    setComputers(ids(6).map((id): [string, string[]] => [id, []]));
    const t = testContext();
    const instance = connector(t, { page_size: 100, max_retry_wait: '3s' });
    await instance.start(t.ctx.signal);
    await t.runTask('reconcile');

    // Computers 1 to 5 are deleted; Jamf Pro keeps answering 500 for computer 2.
    computers = new Map([['6', []]]);
    server.on('GET', '/api/v1/computers-inventory/2', () => ({
      status: 500,
      body: { httpStatus: 500, errors: [{ code: 'UNEXPECTED', description: 'Internal Server Error' }] },
    }));
    await t.runTask('reconcile');
    expect(
      transitions(t)
        .map(([device]) => device)
        .sort(),
    ).toEqual(['UDID-1', 'UDID-3', 'UDID-4', 'UDID-5']);
    expect(t.checkpoints.get('computer:2')).toMatchObject({ status: 'compliant' });
    expect(t.checkpoints.get('computer:2')).not.toHaveProperty('gone');
    expect(t.checkpoints.get('inventory')).toMatchObject({
      ids: ['2', '6'],
      looked_up: { '2': expect.any(String) },
    });
    expect(t.statuses).toEqual([]);
    expect(t.counter('jamf_pro_reconcile_runs_total', { outcome: 'partial' })).toBe(1);
    expect(t.logs.some((l) => l.level === 'warn' && l.fields['computer'] === '2')).toBe(true);

    // Jamf Pro answers again: computer 2 is gone too.
    server.on('GET', '/api/v1/computers-inventory/2', () => ({
      status: 404,
      body: { httpStatus: 404, errors: [{ code: 'INVALID_ID', description: 'Computer not found' }] },
    }));
    await t.runTask('reconcile');
    expect(transitions(t)).toHaveLength(5);
    expect(transitions(t).at(-1)).toEqual(['UDID-2', 'compliant', 'not-compliant']);
    expect(t.checkpoints.get('inventory')).toEqual({ ids: ['6'], completed_at: expect.any(String) });
  });
});

// ─── Mobile devices: unenrolled and enrolled again ──────────────────────────────────────────────

describe('jamf-pro mobile devices', () => {
  const mobileDevice = (jssID: number) => ({
    bluetoothMacAddress: 'be:aa:e5:54:94:db',
    deviceName: 'Sam’s iPhone 15',
    jssID,
    model: 'iPhone 15',
    osVersion: '18.2',
    serialNumber: 'HX7QK9L2N1',
    udid: `00008120-001A2B3C4D5E60${jssID}`,
    username: 'sam.okafor@example.com',
    managementId: 'c4d5e6f7-0819-4a2b-bc3d-4e5f60718293',
  });
  const mobileWebhook = (event: string, id: number, at: number, jssID = 770) => ({
    webhook: { id, name: `ssf-${event}`, webhookEvent: event, eventTimestamp: at },
    event: mobileDevice(jssID),
  });

  it('sends not-compliant → compliant when a device it reported unenrolled is enrolled again, once', async () => {
    serveJamf();
    const t = testContext();
    const instance = connector(t);
    await post(instance, mobileWebhook('MobileDeviceUnEnrolled', 11, 1767230000000));
    expect(t.checkpoints.get('mobile-device:770')).toMatchObject({ status: 'not-compliant', seq: 1 });

    const enrolled = await post(instance, mobileWebhook('MobileDeviceEnrolled', 12, 1767233600000));
    expect(enrolled).toMatchObject({
      status: 202,
      body: { accepted: ['jamf-pro:webhook:12:1767233600000:mobile-device:770:enrolled'] },
    });
    expect(transitions(t)).toEqual([
      ['00008120-001A2B3C4D5E60770', 'compliant', 'not-compliant'],
      ['00008120-001A2B3C4D5E60770', 'not-compliant', 'compliant'],
    ]);
    expect(t.events()[1]?.claims).toMatchObject({
      event_timestamp: 1767233600,
      reason_admin: { en: '"Sam’s iPhone 15" was enrolled in Jamf Pro and is managed again' },
    });
    expect(t.events()[1]?.subject).toEqual(t.events()[0]?.subject);

    // Enrolled once more, and a late unenrolled from before the enrollment: nothing to send.
    const again = await post(instance, mobileWebhook('MobileDeviceEnrolled', 13, 1767237200000));
    expect(again).toMatchObject({
      status: 202,
      body: { accepted: [], notes: ['"Sam’s iPhone 15" is already enrolled'] },
    });
    const late = await post(instance, mobileWebhook('MobileDeviceUnEnrolled', 14, 1767231000000));
    expect(late).toMatchObject({
      status: 202,
      body: { accepted: [], notes: [expect.stringContaining('out of date')] },
    });
    expect(t.events()).toHaveLength(2);
    expect(server.requests).toHaveLength(0);
  });

  it('a first enrollment of a device never seen follows first_sighting: a baseline by default, sent with emit', async () => {
    serveJamf();
    const quiet = testContext();
    const res = await post(connector(quiet), mobileWebhook('MobileDeviceEnrolled', 21, 1767233600000, 771));
    expect(res).toMatchObject({ status: 202, body: { accepted: [] } });
    expect(quiet.events()).toEqual([]);
    expect(quiet.checkpoints.get('mobile-device:771')).toMatchObject({ status: 'compliant', seq: 0 });

    const loud = testContext();
    await post(
      connector(loud, { first_sighting: 'emit' }),
      mobileWebhook('MobileDeviceEnrolled', 21, 1767233600000, 771),
    );
    expect(transitions(loud)).toEqual([['00008120-001A2B3C4D5E60771', 'not-compliant', 'compliant']]);
    expect(loud.events()[0]?.claims?.['reason_admin']).toEqual({
      en: '"Sam’s iPhone 15" was enrolled in Jamf Pro (first seen)',
    });
  });
});

describe('jamf-pro config: the vanished-computer guard', () => {
  it('takes the same fields and defaults as intune, and refuses a share outside 0–1', () => {
    const base = { ...fixtureSettings };
    const config = jamfProConnector.configSchema.parse(base);
    expect([
      config.vanished_lookups_per_scan,
      config.vanished_guard_share,
      config.vanished_guard_min_devices,
    ]).toEqual([100, 0.1, 10]);
    const refused = jamfProConnector.configSchema.safeParse({ ...base, vanished_guard_share: 1.5 });
    expect(refused.error?.issues.map((i) => i.path.join('.'))).toEqual(['vanished_guard_share']);
  });
});
