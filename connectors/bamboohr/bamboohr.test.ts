import { createHmac } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RetryableError, type InboundConnector, type InboundRequest } from '../../core/plugin-api/index.ts';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import { parseTimestamp } from './connector.ts';
import { bamboohrConnector } from './index.ts';
import { mapRecord, type BambooHrState } from './mapping.ts';
import {
  createTestContext,
  simulateFixtures,
  startBridge,
  type TestContext,
} from '../_shared/hr-test-support.ts';

const BASE = {
  company_domain: 'acme',
  api_key: 'bamboo-api-key-for-tests',
  timezone: 'Europe/London',
  backfill_window: '9000d',
};

interface Step {
  input: unknown;
  expect: { events?: unknown[]; ignored?: string; rejected?: string };
}

describe('bamboohr mapping sequences (state carried between payloads, as ssf-bridge simulate does)', () => {
  const dir = new URL('./fixtures/sequences/', import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const sequence = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as {
      description: string;
      steps: Step[];
    };
    it(`${file}: ${sequence.description}`, () => {
      const config = bamboohrConnector.configSchema.parse({ ...BASE, mode: 'poll' });
      let state: BambooHrState | undefined;
      sequence.steps.forEach((step, i) => {
        const result = bamboohrConnector.map!(step.input, config, state);
        state = result.state;
        if (step.expect.ignored) {
          expect(result.events, `step ${i + 1}`).toEqual([]);
          expect(result.ignored, `step ${i + 1}`).toContain(step.expect.ignored);
        } else {
          expect(JSON.parse(JSON.stringify(result.events)), `step ${i + 1}`).toEqual(step.expect.events);
        }
      });
    });
  }
});

describe('X-BambooHR-Timestamp', () => {
  it('reads Unix seconds, milliseconds and ISO 8601 (with an offset without colon)', () => {
    expect(parseTimestamp('1780000000')).toBe(1_780_000_000_000);
    expect(parseTimestamp('1780000000123')).toBe(1_780_000_000_123);
    expect(parseTimestamp('2026-11-29T14:00:00+0000')).toBe(Date.parse('2026-11-29T14:00:00Z'));
    expect(parseTimestamp('yesterday')).toBeUndefined();
  });
});

// ---------------------------------------------------------------------------------------------

const server = new MockServer();
const API = '/api/gateway.php/acme/v1';
const KEY = 'webhook-private-key-for-tests';
const NOW = '2026-11-29T14:00:00.000Z';
const NOW_S = String(Date.parse(NOW) / 1000);

beforeAll(async () => {
  await server.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function employee(id: string, fields: Record<string, unknown> = {}) {
  return {
    id,
    employeeNumber: `E${id}`,
    firstName: 'Jordan',
    lastName: 'Avery',
    workEmail: 'jordan.avery@example.com',
    status: 'Active',
    employmentHistoryStatus: 'Full-Time',
    terminationDate: '0000-00-00',
    hireDate: '2021-04-12',
    ...fields,
  };
}
const terminated = {
  status: 'Inactive',
  employmentHistoryStatus: 'Terminated',
  terminationDate: '2026-11-27',
};

async function started(
  config: Record<string, unknown> = {},
  tc = createTestContext<BambooHrState>({ now: NOW }),
) {
  const connector: InboundConnector = bamboohrConnector.create(
    tc.ctx,
    bamboohrConnector.configSchema.parse({
      ...BASE,
      api_base_url: `${server.url}${API}`,
      webhook_private_key: KEY,
      ...config,
    }),
  );
  await connector.start(tc.ctx.signal);
  return { connector, tc };
}

function signed(
  body: unknown,
  options: { key?: string; timestamp?: string; signature?: string; contentType?: string; raw?: string } = {},
): InboundRequest {
  const raw = options.raw ?? JSON.stringify(body);
  const timestamp = options.timestamp ?? NOW_S;
  const signature =
    options.signature ??
    createHmac('sha256', options.key ?? KEY)
      .update(raw + timestamp)
      .digest('hex');
  const contentType = options.contentType ?? 'application/json';
  return {
    method: 'POST',
    headers: {
      'content-type': contentType,
      'x-bamboohr-signature': signature,
      'x-bamboohr-timestamp': timestamp,
      'user-agent': 'BambooHR-WebHooks/1.0 (+https://www.bamboohr.com)',
    },
    query: {},
    rawBody: Buffer.from(raw),
    body: contentType === 'application/json' ? body : undefined,
    remoteAddress: '127.0.0.1',
  };
}

const updated = (id: string) => ({
  type: 'employee.updated',
  timestamp: '2026-11-29T13:59:58+0000',
  data: { companyId: '12345', employeeId: id, changedFields: ['employmentHistoryStatus'] },
});

describe('bamboohr webhooks', () => {
  it('verifies the signature over body + timestamp, fetches the employee, answers 200 once emitted', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    const { connector, tc } = await started();
    const res = await connector.handleWebhook!(signed(updated('4581')));
    expect(res).toMatchObject({ status: 200, body: { received: 1, events: 2 } });
    const [req] = server.requests;
    expect(req?.headers.authorization).toBe(
      `Basic ${Buffer.from('bamboo-api-key-for-tests:x').toString('base64')}`,
    );
    expect(req?.query.fields?.split(',')).toEqual(
      expect.arrayContaining(['workEmail', 'status', 'employmentHistoryStatus', 'terminationDate']),
    );
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    expect((tc.checkpoints.get('default') as BambooHrState).workers['4581']?.status).toBe('terminated');
    expect(tc.counter('bamboohr_webhooks_total', { outcome: 'accepted' })).toBe(1);

    // A redelivery of the same webhook sends nothing new.
    expect((await connector.handleWebhook!(signed(updated('4581')))).status).toBe(200);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('sends a termination entered late, dated before the backfill window, when the webhook says the status changed', async () => {
    // On 29 November HR enters a termination that took effect on 30 September; this is the first
    // webhook about the employee.
    server.on('GET', `${API}/employees/4581`, () => ({
      body: employee('4581', { ...terminated, terminationDate: '2026-09-30' }),
    }));
    server.on('GET', `${API}/employees/4582`, () => ({
      body: employee('4582', { ...terminated, terminationDate: '2024-03-31' }),
    }));
    const { connector, tc } = await started({ backfill_window: '30d' });
    const res = await connector.handleWebhook!(signed(updated('4581')));
    expect(res).toMatchObject({ status: 200, body: { events: 2 } });
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '4581:terminated:2026-09-30'],
      ['caep.session-revoked', '4581:terminated:2026-09-30'],
    ]);
    // A change to another field of someone who left long ago, first seen now, stays quiet.
    const jobTitle = { ...updated('4582'), data: { ...updated('4582').data, changedFields: ['jobTitle'] } };
    expect((await connector.handleWebhook!(signed(jobTitle))).status).toBe(200);
    // So does one that does not say what changed.
    const { changedFields: _unsaid, ...bare } = updated('4582').data;
    expect((await connector.handleWebhook!(signed({ ...updated('4582'), data: bare }))).status).toBe(200);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('changes nothing when the record no longer shows the employment fields: a hidden status is not a rehire', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    server.on('GET', `${API}/employees/4617`, () => ({
      body: employee('4617', { terminationDate: '2026-12-31' }),
    }));
    const { connector, tc } = await started();
    await connector.handleWebhook!(signed(updated('4581')));
    await connector.handleWebhook!(signed(updated('4617')));
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    // The API key loses access to the employment fields: BambooHR answers them as null.
    const hidden = { status: null, employmentHistoryStatus: null, terminationDate: null };
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', hidden) }));
    server.on('GET', `${API}/employees/4617`, () => ({ body: employee('4617', hidden) }));
    expect((await connector.handleWebhook!(signed(updated('4581')))).status).toBe(200);
    expect((await connector.handleWebhook!(signed(updated('4617')))).status).toBe(200);
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    // The held termination of 4617 still takes effect.
    tc.clock.set('2026-12-31T00:00:00.000Z');
    await tc.runTask('release');
    expect(
      tc
        .events()
        .map((e) => e.sourceRecordId)
        .slice(2),
    ).toEqual(['4617:terminated:2026-12-31', '4617:terminated:2026-12-31']);
    await connector.stop(100);
  });

  it('a leaver whose work email the event catalog would refuse (jordan..avery@) is named by the HR id instead', async () => {
    for (const [id, workEmail] of [
      ['4590', 'jordan..avery@example.com'],
      ['4591', 'jordan.avery.@example.com'],
      ['4592', 'jordan@-corp.example.com'],
    ] as const) {
      server.on('GET', `${API}/employees/${id}`, () => ({
        body: employee(id, { ...terminated, workEmail }),
      }));
    }
    const { connector, tc } = await started();
    for (const id of ['4590', '4591', '4592']) {
      expect((await connector.handleWebhook!(signed(updated(id)))).status, id).toBe(200);
    }
    const subjects = JSON.stringify(tc.events().map((e) => e.subject));
    expect(tc.events().length).toBeGreaterThanOrEqual(3);
    expect(subjects).not.toMatch(/jordan/);
    expect(subjects).toContain('"sub":"4590"');
    await connector.stop(100);
  });

  it('refuses a bad signature, a missing one, and a stale or future timestamp with 401, and calls nothing', async () => {
    const { connector, tc } = await started();
    const body = updated('4581');
    const cases: Array<[InboundRequest, string]> = [
      [signed(body, { key: 'someone-elses-key' }), 'does not match'],
      [signed(body, { signature: 'deadbeef' }), 'does not match'],
      [{ ...signed(body), headers: { 'content-type': 'application/json' } }, 'are required'],
      [signed(body, { timestamp: String(Number(NOW_S) - 301) }), 'replay window'],
      [signed(body, { timestamp: String(Number(NOW_S) + 301) }), 'replay window'],
      [signed(body, { timestamp: 'soon' }), 'not a time'],
    ];
    // A body changed after signing.
    const tampered = signed(body);
    cases.push([{ ...tampered, rawBody: Buffer.from(JSON.stringify(updated('9999'))) }, 'does not match']);
    for (const [req, reason] of cases) {
      const res = await connector.handleWebhook!(req);
      expect(res.status, reason).toBe(401);
      expect((res.body as { message: string }).message).toContain(reason);
    }
    // Inside the window (up to five minutes old) is accepted.
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581') }));
    expect(
      (await connector.handleWebhook!(signed(body, { timestamp: String(Number(NOW_S) - 299) }))).status,
    ).toBe(200);
    expect(server.requests).toHaveLength(1);
    expect(tc.events()).toEqual([]);
    expect(tc.counter('bamboohr_webhooks_total', { outcome: 'unauthenticated' })).toBe(cases.length);
    await connector.stop(100);
  });

  it('accepts the previous key while the webhook is being replaced', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581') }));
    const { connector } = await started({ previous_webhook_private_key: 'the-old-webhook-key' });
    expect(
      (await connector.handleWebhook!(signed(updated('4581'), { key: 'the-old-webhook-key' }))).status,
    ).toBe(200);
    await connector.stop(100);
  });

  it('reads form-encoded and field-based webhooks; a deletion purges the remembered account', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581') }));
    server.on('GET', `${API}/employees/4602`, () => ({
      body: employee('4602', { ...terminated, workEmail: 'hana@example.com' }),
    }));
    const { connector, tc } = await started();
    const form = 'type=employee.updated&timestamp=2026-11-29T13%3A59%3A58%2B0000&data%5BemployeeId%5D=4581';
    const res = await connector.handleWebhook!(
      signed(undefined, { raw: form, contentType: 'application/x-www-form-urlencoded' }),
    );
    expect(res.status).toBe(200);
    expect(server.requests.map((r) => r.path)).toEqual([`${API}/employees/4581`]);

    const fieldBased = {
      employees: [
        {
          id: '4602',
          action: 'Updated',
          timestamp: '2026-11-29T13:59:00+0000',
          changedFields: ['Status'],
          fields: {},
        },
        {
          id: '4581',
          action: 'Deleted',
          timestamp: '2026-11-29T13:59:30+0000',
          changedFields: [],
          fields: {},
        },
      ],
    };
    expect((await connector.handleWebhook!(signed(fieldBased))).status).toBe(200);
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '4602:terminated:2026-11-27'],
      ['caep.session-revoked', '4602:terminated:2026-11-27'],
      ['risc.account-purged', '4581:purged:deleted'],
    ]);
    await connector.stop(100);
  });

  it('reads each employee a field-based webhook names once, and refuses more than 100 with 400 before any read', async () => {
    server.on('GET', `${API}/employees/4602`, () => ({
      body: employee('4602', { ...terminated, workEmail: 'hana@example.com' }),
    }));
    const { connector, tc } = await started();
    const change = (id: string, minute: number) => ({
      id,
      action: 'Updated',
      timestamp: `2026-11-29T13:${String(minute).padStart(2, '0')}:00+0000`,
      changedFields: ['Status'],
      fields: {},
    });
    const repeated = { employees: [change('4602', 1), change('4602', 2), change('4602', 3)] };
    expect((await connector.handleWebhook!(signed(repeated))).status).toBe(200);
    expect(server.requests.map((r) => r.path)).toEqual([`${API}/employees/4602`]);
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);

    const flood = { employees: Array.from({ length: 101 }, (_, i) => change(String(5000 + i), 4)) };
    const refused = await connector.handleWebhook!(signed(flood));
    expect(refused.status).toBe(400);
    expect(JSON.stringify(refused.body)).toContain('at most 100 employees in one webhook call');
    expect(server.requests).toHaveLength(1);
    await connector.stop(100);
  });

  it('answers 400 for a body that is not a BambooHR webhook', async () => {
    const { connector, tc } = await started();
    const res = await connector.handleWebhook!(signed({ hello: 'world' }));
    expect(res.status).toBe(400);
    expect(tc.emits).toEqual([]);
    await connector.stop(100);
  });

  it('lets BambooHR retry: 503 when its API or the outbox is unavailable, 502 when the API key is refused', async () => {
    const { connector, tc } = await started();
    server.on('GET', `${API}/employees/4581`, () => ({ status: 503, headers: { 'retry-after': '30' } }));
    const unavailable = await connector.handleWebhook!(signed(updated('4581'))).catch((e: unknown) => e);
    expect(unavailable).toBeInstanceOf(RetryableError);
    expect((unavailable as RetryableError).retryAfterMs).toBe(30_000);

    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    tc.failNextEmit();
    await expect(connector.handleWebhook!(signed(updated('4581')))).rejects.toBeInstanceOf(RetryableError);
    expect(tc.checkpoints.size).toBe(0);

    server.on('GET', `${API}/employees/4581`, () => ({ status: 401, body: { error: 'invalid key' } }));
    const refused = await connector.handleWebhook!(signed(updated('4581')));
    expect(refused.status).toBe(502);
    expect(tc.statuses.map((s) => s.state)).toContain('permanent_error');

    // The retry succeeds once everything is back.
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    expect((await connector.handleWebhook!(signed(updated('4581')))).status).toBe(200);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('skips an employee that no longer exists (404) and answers 200', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({ status: 404, body: { error: 'not found' } }));
    const { connector, tc } = await started();
    expect((await connector.handleWebhook!(signed(updated('4581')))).status).toBe(200);
    expect(tc.counter('bamboohr_employees_total', { outcome: 'vanished' })).toBe(1);
    await connector.stop(100);
  });

  it('disables a terminated employee whose termination date is unreadable, as of when it was seen', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({
      body: employee('4581', { ...terminated, terminationDate: '30/11/2026' }),
    }));
    const { connector, tc } = await started();
    expect(await connector.handleWebhook!(signed(updated('4581')))).toMatchObject({
      status: 200,
      body: { events: 2 },
    });
    expect(tc.events().map((e) => [e.type, e.occurredAt])).toEqual([
      ['risc.account-disabled', '2026-11-29T13:59:58.000Z'],
      ['caep.session-revoked', '2026-11-29T13:59:58.000Z'],
    ]);
    await connector.stop(100);
  });

  it('answers 502 and flags the instance for an active employee with an unreadable date, applying nothing', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({
      body: employee('4581', { terminationDate: '30/12/2026' }),
    }));
    const { connector, tc } = await started();
    const res = await connector.handleWebhook!(signed(updated('4581')));
    expect(res.status).toBe(502);
    expect((res.body as { message: string }).message).toContain('employee 4581 from BambooHR is unreadable');
    expect(tc.statuses.at(-1)).toMatchObject({ state: 'recoverable_error' });
    expect(tc.emits).toEqual([]);
    expect(tc.checkpoints.size).toBe(0);
    await connector.stop(100);
  });

  it('answers 404 when the instance only polls', async () => {
    const { connector } = await started({ mode: 'poll' });
    expect((await connector.handleWebhook!(signed(updated('4581')))).status).toBe(404);
    await connector.stop(100);
  });
});

describe('bamboohr polling', () => {
  it('asks for changes since the last `latest`, commits it with the events, handles deletions', async () => {
    server.on('GET', `${API}/employees/changed`, (req) => ({
      body: req.query.since?.startsWith('2026-11-28T14:00:00')
        ? {
            latest: '2026-11-29T13:55:00+00:00',
            employees: {
              '4581': { id: '4581', action: 'Updated', lastChanged: '2026-11-29T13:50:00+00:00' },
              '4630': { id: '4630', action: 'Inserted', lastChanged: '2026-11-29T13:51:00+00:00' },
            },
          }
        : {
            latest: '2026-11-29T14:10:00+00:00',
            employees: {
              '4581': { id: '4581', action: 'Deleted', lastChanged: '2026-11-29T14:05:00+00:00' },
            },
          },
    }));
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    server.on('GET', `${API}/employees/4630`, () => ({
      body: employee('4630', { workEmail: 'ines@example.com' }),
    }));
    const { connector, tc } = await started({ mode: 'poll' });
    expect(tc.tasks.map((t) => t.name)).toEqual(['poll', 'release']);
    await tc.runTask('poll');
    expect(server.requests[0]?.query.since).toBe('2026-11-28T14:00:00.000Z');
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    expect((tc.checkpoints.get('default') as BambooHrState).since).toBe('2026-11-29T13:55:00+00:00');

    tc.clock.set('2026-11-29T14:15:00.000Z');
    await tc.runTask('poll');
    expect(server.requests.at(-1)?.query.since).toBe('2026-11-29T13:55:00+00:00');
    expect(tc.events().at(-1)).toMatchObject({
      type: 'risc.account-purged',
      sourceRecordId: '4581:purged:deleted',
    });
    expect(tc.directSets).toBe(0);
    await connector.stop(100);
  });

  it('keeps an unreadable employee on the instance status instead of reporting a healthy poll', async () => {
    server.on('GET', `${API}/employees/changed`, () => ({
      body: {
        latest: '2026-11-29T13:55:00+00:00',
        employees: {
          '4581': { id: '4581', action: 'Updated', lastChanged: '2026-11-29T13:50:00+00:00' },
          '4630': { id: '4630', action: 'Updated', lastChanged: '2026-11-29T13:51:00+00:00' },
        },
      },
    }));
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    server.on('GET', `${API}/employees/4630`, () => ({
      body: employee('4630', { terminationDate: '30/12/2026' }),
    }));
    const { connector, tc } = await started({ mode: 'poll' });
    await tc.runTask('poll');
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    expect(tc.statuses.at(-1)).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringContaining('employee 4630'),
    });
    expect(tc.counter('bamboohr_employees_total', { outcome: 'malformed' })).toBe(1);
    await connector.stop(100);
  });

  it('skips an employee whose record the API answers unreadably, instead of failing every poll on it', async () => {
    server.on('GET', `${API}/employees/changed`, (req) => ({
      body: req.query.since?.startsWith('2026-11-28T14:00:00')
        ? {
            latest: '2026-11-29T13:55:00+00:00',
            employees: {
              '4630': { id: '4630', action: 'Updated', lastChanged: '2026-11-29T13:50:00+00:00' },
              '4631': { id: '4631', action: 'Updated', lastChanged: '2026-11-29T13:50:30+00:00' },
              '4581': { id: '4581', action: 'Updated', lastChanged: '2026-11-29T13:51:00+00:00' },
            },
          }
        : { latest: '2026-11-29T14:10:00+00:00', employees: {} },
    }));
    // A 200 whose JSON is not an employee record, and one that is not JSON at all.
    server.on('GET', `${API}/employees/4630`, () => ({ body: { employee: { id: '4630' } } }));
    server.on('GET', `${API}/employees/4631`, () => ({
      headers: { 'content-type': 'text/html' },
      body: '<html><body>Scheduled maintenance</body></html>',
    }));
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    const { connector, tc } = await started({ mode: 'poll' });
    await tc.runTask('poll');
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    expect((tc.checkpoints.get('default') as BambooHrState).since).toBe('2026-11-29T13:55:00+00:00');
    expect(tc.statuses.at(-1)).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringMatching(/employee 4630[\s\S]*employee 4631/),
    });
    expect(tc.counter('bamboohr_employees_total', { outcome: 'malformed' })).toBe(2);
    // The next poll goes on from the watermark.
    await tc.runTask('poll');
    expect(server.requests.at(-1)?.query.since).toBe('2026-11-29T13:55:00+00:00');
    expect(tc.successes).toBe(1);
    await connector.stop(100);
  });

  it('commits large change sets in batches, moving the watermark only with the last one', async () => {
    const ids = Array.from({ length: 120 }, (_, i) => String(5000 + i));
    server.on('GET', `${API}/employees/changed`, () => ({
      body: {
        latest: '2026-11-29T13:55:00+00:00',
        employees: Object.fromEntries(ids.map((id) => [id, { id, action: 'Updated' }])),
      },
    }));
    for (const id of ids) {
      server.on('GET', `${API}/employees/${id}`, () => ({
        body: employee(id, { ...terminated, workEmail: `e${id}@example.com` }),
      }));
    }
    const { connector, tc } = await started({ mode: 'poll' });
    await tc.runTask('poll');
    expect(tc.emits.map((e) => e.events.length)).toEqual([100, 100, 40]);
    const sinces = tc.emits.map((e) => (e.checkpoint?.value as BambooHrState).since);
    expect(sinces).toEqual([undefined, undefined, '2026-11-29T13:55:00+00:00']);
    await connector.stop(100);
  });

  it('keeps the watermark when rate limited (429), and retries the same changes', async () => {
    server.on('GET', `${API}/employees/changed`, () => ({
      body: { latest: '2026-11-29T13:55:00+00:00', employees: { '4581': { id: '4581', action: 'Updated' } } },
    }));
    server.on('GET', `${API}/employees/4581`, () => ({ status: 429, headers: { 'retry-after': '12' } }));
    const { connector, tc } = await started({ mode: 'poll' });
    const err = await tc.runTask('poll').catch((e: unknown) => e);
    expect((err as RetryableError).retryAfterMs).toBe(12_000);
    expect(tc.checkpoints.size).toBe(0);
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    await tc.runTask('poll');
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('fires a future-dated termination when it takes effect, after a restart', async () => {
    server.on('GET', `${API}/employees/4617`, () => ({
      body: employee('4617', { terminationDate: '2026-12-31' }),
    }));
    const first = await started();
    await first.connector.handleWebhook!(signed(updated('4617')));
    expect(first.tc.events()).toEqual([]);
    await first.connector.stop(100);
    // Midnight in London on 2026-12-31 is 00:00 UTC.
    const tc: TestContext<BambooHrState> = createTestContext({
      now: '2026-12-31T00:00:00.000Z',
      checkpoints: first.tc.checkpoints,
    });
    const second = await started({}, tc);
    await tc.runTask('release');
    expect(tc.events().map((e) => [e.type, e.occurredAt])).toEqual([
      ['risc.account-disabled', '2026-12-31T00:00:00.000Z'],
      ['caep.session-revoked', '2026-12-31T00:00:00.000Z'],
    ]);
    await second.connector.stop(100);
  });

  it('reports connectivity with check()', async () => {
    server.on('GET', `${API}/meta/fields`, () => ({ body: [] }));
    const { connector } = await started();
    expect(await connector.check!(new AbortController().signal)).toMatchObject({ ok: true });
    server.on('GET', `${API}/meta/fields`, () => ({ status: 401 }));
    expect(await connector.check!(new AbortController().signal)).toMatchObject({
      ok: false,
      retryable: false,
    });
    await connector.stop(100);
  });
});

describe('bamboohr polling: a termination entered late (backdated)', () => {
  // Lee left on 6 February; HR enters it on 20 March. The bridge has polled since January, and
  // Lee's record never changed in between: /employees/changed names Lee now, for the first time.
  const lee = employee('88', {
    firstName: 'Lee',
    lastName: 'Okafor',
    workEmail: 'lee.okafor@example.com',
    hireDate: '2020-09-14',
    ...terminated,
    terminationDate: '2026-02-06',
  });
  const changed = {
    latest: '2026-03-20T08:58:00+00:00',
    employees: { '88': { id: '88', action: 'Updated', lastChanged: '2026-03-20T08:52:11+00:00' } },
  };
  function polling(since: string | undefined) {
    const checkpoints = new Map<string, unknown>();
    if (since) checkpoints.set('default', { workers: {}, pending: {}, since });
    return createTestContext<BambooHrState>({ now: '2026-03-20T09:00:00.000Z', checkpoints });
  }

  it('sends it once the first poll is behind: what /employees/changed names is news however old the date', async () => {
    server.on('GET', `${API}/employees/changed`, () => ({ body: changed }));
    server.on('GET', `${API}/employees/88`, () => ({ body: lee }));
    const { connector, tc } = await started(
      { mode: 'poll', backfill_window: '30d' },
      polling('2026-03-20T08:45:00+00:00'),
    );
    await tc.runTask('poll');
    expect(server.requests[0]?.query.since).toBe('2026-03-20T08:45:00+00:00');
    expect(tc.events().map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', '88:terminated:2026-02-06', '2026-02-06T00:00:00.000Z'],
      ['caep.session-revoked', '88:terminated:2026-02-06', '2026-02-06T00:00:00.000Z'],
    ]);
    await connector.stop(100);
  });

  it('keeps it quiet on the first poll, and says how many old leavers it recorded at info level', async () => {
    server.on('GET', `${API}/employees/changed`, () => ({ body: changed }));
    server.on('GET', `${API}/employees/88`, () => ({ body: lee }));
    const { connector, tc } = await started({ mode: 'poll', backfill_window: '30d' }, polling(undefined));
    await tc.runTask('poll');
    expect(tc.events()).toEqual([]);
    expect(tc.logs.filter((l) => l.level === 'info' && l.fields.first_read === true)).toEqual([
      expect.objectContaining({
        msg: expect.stringContaining('recorded 1 leaver(s)'),
        fields: expect.objectContaining({ employees: 1, examples: ['88'] }),
      }),
    ]);
    await connector.stop(100);
  });

  it('simulate: an employee record read with a poller state (a watermark) is news', () => {
    const config = bamboohrConnector.configSchema.parse({ ...BASE, mode: 'poll', backfill_window: '30d' });
    const now = new Date('2026-03-20T09:00:00.000Z');
    const state = { workers: {}, pending: {}, since: '2026-03-20T08:45:00+00:00' };
    expect(bamboohrConnector.map!(lee, config, state).events).toHaveLength(2);
    expect(mapRecord(lee, config, undefined, now).ignored).toContain('before the backfill window');
  });
});

describe('bamboohr polling without `latest`', () => {
  it('starts the next poll a little before this one by its own clock, and sends nothing twice for a change read again', async () => {
    // BambooHR's clock runs two minutes behind the bridge's, and this answer carries no `latest`.
    const entries: Array<{ id: string; at: string }> = [];
    server.on('GET', `${API}/employees/changed`, (req) => ({
      body: {
        employees: Object.fromEntries(
          entries
            .filter((e) => e.at >= (req.query.since ?? ''))
            .map((e) => [e.id, { id: e.id, action: 'Updated', lastChanged: e.at }]),
        ),
      },
    }));
    server.on('GET', `${API}/employees/4701`, () => ({
      body: employee('4701', { ...terminated, workEmail: 'ray@example.com' }),
    }));
    const { connector, tc } = await started({ mode: 'poll' });
    await tc.runTask('poll'); // 14:00: nothing changed yet
    expect((tc.checkpoints.get('default') as BambooHrState).since).toBe('2026-11-29T13:55:00.000Z');
    // HR terminates Ray just after the poll, at 13:59 by BambooHR's clock.
    entries.push({ id: '4701', at: '2026-11-29T13:59:00.000Z' });
    tc.clock.set('2026-11-29T14:02:00.000Z');
    await tc.runTask('poll');
    expect(server.requests.filter((r) => r.path.endsWith('/changed')).at(-1)?.query.since).toBe(
      '2026-11-29T13:55:00.000Z',
    );
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      '4701:terminated:2026-11-27',
      '4701:terminated:2026-11-27',
    ]);
    // The next poll (since 13:57) reads the change of 13:59 again: nothing is sent twice.
    tc.clock.set('2026-11-29T14:17:00.000Z');
    await tc.runTask('poll');
    expect(server.requests.filter((r) => r.path.endsWith('/employees/4701'))).toHaveLength(2);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });
});

/** Waits until `check` holds, at most `ms`. */
async function until(check: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await delay(5);
  }
}

const LEAVER = ['risc.account-disabled', 'caep.session-revoked'];

describe('bamboohr: reads of one employee are applied in the order they were made', () => {
  it('webhook_and_poll: a poll that read the employee before the termination webhook does not re-enable the leaver', async () => {
    const checkpoints = new Map<string, unknown>([
      ['default', { workers: {}, pending: {}, since: '2026-11-29T13:00:00+00:00' }],
    ]);
    let record = employee('4581');
    let answer4582!: () => void;
    const slow = new Promise<void>((resolve) => (answer4582 = resolve));
    server.on('GET', `${API}/employees/changed`, () => ({
      body: {
        latest: '2026-11-29T13:59:00+00:00',
        employees: { '4581': { id: '4581', action: 'Updated' }, '4582': { id: '4582', action: 'Updated' } },
      },
    }));
    server.on('GET', `${API}/employees/4581`, () => ({ body: record }));
    server.on('GET', `${API}/employees/4582`, async () => {
      await slow;
      return { body: employee('4582', { workEmail: 'sam@example.com' }) };
    });
    const { connector, tc } = await started(
      { mode: 'webhook_and_poll' },
      createTestContext<BambooHrState>({ now: NOW, checkpoints }),
    );
    const poll = tc.runTask('poll');
    // The poll has read 4581 (still active) and waits for BambooHR's answer about 4582 ...
    await until(() => server.requests.some((r) => r.path.endsWith('/employees/4582')));
    // ... when HR terminates 4581, and BambooHR's webhook about it arrives.
    record = employee('4581', terminated);
    const delivery = connector.handleWebhook!(signed(updated('4581')));
    await Promise.race([delivery, delay(300)]);
    answer4582();
    expect((await delivery).status).toBe(200);
    await poll;
    expect(tc.events().map((e) => e.type)).toEqual(LEAVER);
    expect((tc.checkpoints.get('default') as BambooHrState).workers['4581']?.status).toBe('terminated');
    await connector.stop(100);
  });

  it('webhook: of two deliveries in flight, the one read first and answered last is not applied last', async () => {
    let record = employee('4581');
    let reads = 0;
    let answerFirst!: () => void;
    const slow = new Promise<void>((resolve) => (answerFirst = resolve));
    server.on('GET', `${API}/employees/4581`, async () => {
      reads += 1;
      // BambooHR reads the record now; its answer to the first read is slow to arrive.
      const body = record;
      if (reads === 1) await slow;
      return { body };
    });
    const { connector, tc } = await started();
    const jobTitle = {
      ...updated('4581'),
      timestamp: '2026-11-29T13:59:50+0000',
      data: { ...updated('4581').data, changedFields: ['jobTitle'] },
    };
    const first = connector.handleWebhook!(signed(jobTitle));
    await until(() => reads === 1);
    record = employee('4581', terminated);
    const termination = connector.handleWebhook!(signed(updated('4581')));
    await Promise.race([termination, delay(300)]);
    answerFirst();
    expect((await first).status).toBe(200);
    expect((await termination).status).toBe(200);
    expect(tc.events().map((e) => e.type)).toEqual(LEAVER);
    expect((tc.checkpoints.get('default') as BambooHrState).workers['4581']?.status).toBe('terminated');
    await connector.stop(100);
  });
});

describe('bamboohr: a leaver it cannot name (subject_format email, no work email)', () => {
  const unnamed = employee('4581', { ...terminated, workEmail: null });

  it('answers the webhook 503, so that BambooHR delivers it again, and flags the instance; nothing is committed', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({ body: unnamed }));
    const { connector, tc } = await started({ subject_format: 'email' });
    const refused = await connector.handleWebhook!(signed(updated('4581'))).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RetryableError);
    expect((refused as RetryableError).message).toContain('employee 4581 is a leaver');
    expect(tc.checkpoints.size).toBe(0);
    expect(tc.statuses.at(-1)).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringContaining('employee 4581'),
    });
    expect(tc.logs.filter((l) => l.level === 'warn').map((l) => l.fields.employee)).toEqual(['4581']);
    expect(tc.counter('bamboohr_employees_total', { outcome: 'no_email' })).toBe(1);
    // Delivered again once the record has a work email: sent.
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    expect((await connector.handleWebhook!(signed(updated('4581')))).status).toBe(200);
    expect(tc.events().map((e) => e.type)).toEqual(LEAVER);
    await connector.stop(100);
  });

  it('keeps a polled one on the status and reads it again at every poll (the watermark moved on) until it is sent', async () => {
    const checkpoints = new Map<string, unknown>([
      ['default', { workers: {}, pending: {}, since: '2026-11-29T13:00:00+00:00' }],
    ]);
    server.on('GET', `${API}/employees/changed`, (req) => ({
      body: req.query.since?.startsWith('2026-11-29T13:00')
        ? {
            latest: '2026-11-29T13:55:00+00:00',
            employees: {
              '4581': { id: '4581', action: 'Updated', lastChanged: '2026-11-29T13:50:00+00:00' },
            },
          }
        : { latest: '2026-11-29T14:10:00+00:00', employees: {} },
    }));
    server.on('GET', `${API}/employees/4581`, () => ({ body: unnamed }));
    const { connector, tc } = await started(
      { mode: 'poll', subject_format: 'email' },
      createTestContext<BambooHrState>({ now: NOW, checkpoints }),
    );
    await tc.runTask('poll');
    expect(tc.events()).toEqual([]);
    const state = () => tc.checkpoints.get('default') as BambooHrState;
    expect(state().since).toBe('2026-11-29T13:55:00+00:00');
    expect(state().unnamed).toEqual({ '4581': '2026-11-29T13:50:00.000Z' });
    expect(tc.statuses.at(-1)).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringContaining('1 leaver(s) not sent, employee 4581'),
    });
    expect(tc.logs.filter((l) => l.level === 'warn')).toEqual([
      expect.objectContaining({ fields: expect.objectContaining({ examples: ['4581'] }) }),
    ]);
    expect(tc.successes).toBe(0);

    // /employees/changed names it no more; it is read again all the same.
    await tc.runTask('poll');
    expect(server.requests.filter((r) => r.path.endsWith('/employees/4581'))).toHaveLength(2);
    expect(tc.statuses.at(-1)?.state).toBe('recoverable_error');
    expect(tc.successes).toBe(0);

    // HR gives the record a work email: the next poll sends the leaver, dated as first read.
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    await tc.runTask('poll');
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '4581:terminated:2026-11-27'],
      ['caep.session-revoked', '4581:terminated:2026-11-27'],
    ]);
    expect(state().unnamed).toBeUndefined();
    expect(tc.successes).toBe(1);
    await tc.runTask('poll');
    expect(server.requests.filter((r) => r.path.endsWith('/employees/4581'))).toHaveLength(3);
    await connector.stop(100);
  });
});

describe('bamboohr: a rehire after a termination the bridge released on its date', () => {
  async function released() {
    server.on('GET', `${API}/employees/4617`, () => ({
      body: employee('4617', { terminationDate: '2026-12-31' }),
    }));
    const { connector, tc } = await started();
    await connector.handleWebhook!(signed(updated('4617')));
    tc.clock.set('2026-12-31T00:00:00.000Z');
    await tc.runTask('release');
    expect(tc.events().map((e) => e.type)).toEqual(LEAVER);
    return { connector, tc };
  }

  it('is sent months later, though BambooHR never showed the termination and the record keeps its date', async () => {
    const { connector, tc } = await released();
    // Later that day the record still shows the employee active: BambooHR lagging, not a rehire.
    tc.clock.set('2026-12-31T15:00:00.000Z');
    await connector.handleWebhook!(
      signed(updated('4617'), { timestamp: String(Date.parse('2026-12-31T15:00:00Z') / 1000) }),
    );
    expect(tc.events()).toHaveLength(2);
    // In May the employee is back.
    tc.clock.set('2027-05-03T09:00:00.000Z');
    const at = String(Date.parse('2027-05-03T09:00:00Z') / 1000);
    expect((await connector.handleWebhook!(signed(updated('4617'), { timestamp: at }))).status).toBe(200);
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', '4617:terminated:2026-12-31'],
      ['caep.session-revoked', '4617:terminated:2026-12-31'],
      ['risc.account-enabled', '4617:enabled:after:2026-12-31'],
    ]);
    await connector.stop(100);
  });

  it('on the termination day, a hire date after it makes a rehire, held until that day', async () => {
    const { connector, tc } = await released();
    server.on('GET', `${API}/employees/4617`, () => ({
      body: employee('4617', { terminationDate: '2026-12-31', hireDate: '2027-01-04' }),
    }));
    tc.clock.set('2026-12-31T15:00:00.000Z');
    const at = String(Date.parse('2026-12-31T15:00:00Z') / 1000);
    expect((await connector.handleWebhook!(signed(updated('4617'), { timestamp: at }))).status).toBe(200);
    expect(tc.events()).toHaveLength(2);
    expect((tc.checkpoints.get('default') as BambooHrState).pending['4617:enable']?.dueAt).toBe(
      '2027-01-04T00:00:00.000Z',
    );
    tc.clock.set('2027-01-04T00:00:00.000Z');
    await tc.runTask('release');
    expect(tc.events().map((e) => e.type)).toEqual([...LEAVER, 'risc.account-enabled']);
    await connector.stop(100);
  });
});

describe('bamboohr through ssf-bridge simulate (golden)', () => {
  it('prints every fixture event, notes the ignored ones, and stops at a malformed one', async () => {
    const { run, expected, ignored, rejected } = await simulateFixtures(
      'bamboohr',
      { ...BASE, mode: 'poll' },
      new URL('./fixtures/', import.meta.url),
    );
    expect(run.events.map(({ txn: _txn, ...rest }) => rest)).toEqual(expected);
    expect(run.events.some((e) => typeof e.scheduled_for === 'string')).toBe(true);
    for (const reason of ignored) expect(run.stderr).toContain(reason);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(rejected[0]);
  }, 60_000);
});

describe('bamboohr in a running bridge', () => {
  it('answers a signed webhook at /ingest/<id> once its SETs are durable, and 401 with nothing sent for a bad signature', async () => {
    server.on('GET', `${API}/employees/4581`, () => ({ body: employee('4581', terminated) }));
    const data = mkdtempSync(join(tmpdir(), 'bamboohr-e2e-'));
    const bridge = await startBridge(
      {
        inbound: [
          {
            id: 'bamboo',
            connector: 'bamboohr',
            config: {
              ...BASE,
              api_base_url: `${server.url}${API}`,
              webhook_private_key: KEY,
              subject_format: 'email',
            },
          },
        ],
        outbound: [
          { id: 'okta', connector: 'log', config: { audience: 'https://acme.okta.example' } },
          { id: 'google', connector: 'log', config: { audience: 'https://google.example' } },
        ],
        routes: [{ from: ['bamboo'], to: ['okta', 'google'] }],
      },
      data,
    );
    try {
      const post = (body: string, key: string) => {
        const timestamp = String(Math.floor(Date.now() / 1000));
        const signature = createHmac('sha256', key)
          .update(body + timestamp)
          .digest('hex');
        return fetch(`http://127.0.0.1:${bridge.port}/ingest/bamboo`, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-bamboohr-signature': signature,
            'x-bamboohr-timestamp': timestamp,
          },
          body,
        });
      };
      const forged = await post(JSON.stringify(updated('4581')), 'not-the-key');
      expect(forged.status).toBe(401);
      expect(server.requests).toEqual([]);

      const res = await post(JSON.stringify(updated('4581')), KEY);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ received: 1, events: 2 });
      const sets = await bridge.waitFor(4);
      // A redelivery by BambooHR is answered 200 and sends nothing new.
      expect((await post(JSON.stringify(updated('4581')), KEY)).status).toBe(200);
      await delay(500);
      expect(bridge.delivered()).toHaveLength(4);
      for (const aud of ['https://acme.okta.example', 'https://google.example']) {
        expect(
          sets
            .filter((s) => s.aud === aud)
            .map((s) => s.type.split('/').pop())
            .sort(),
        ).toEqual(['account-disabled', 'session-revoked']);
      }
    } finally {
      await bridge.stop();
      rmSync(data, { recursive: true, force: true });
    }
  }, 60_000);
});
