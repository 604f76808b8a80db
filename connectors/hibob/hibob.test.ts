import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { RetryableError, type InboundRequest } from '../../core/plugin-api/index.ts';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import { hibobConnector } from './index.ts';
import type { HibobState } from './mapping.ts';
import { createTestContext, simulateFixtures } from '../_shared/hr-test-support.ts';
import { bobDelivery, signedBob, startHibob } from './test-support.ts';

const BASE = {
  webhook_secret: 'bob-webhook-secret-for-tests',
  service_user_id: 'SERVICE-44117',
  service_user_token: 'bob-service-token-for-tests',
  timezone: 'Europe/Berlin',
  backfill_window: '9000d',
};

interface Step {
  input: unknown;
  expect: { events?: unknown[]; ignored?: string };
}

describe('hibob mapping sequences (state carried between payloads, as ssf-bridge simulate does)', () => {
  const dir = new URL('./fixtures/sequences/', import.meta.url);
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const sequence = JSON.parse(readFileSync(new URL(file, dir), 'utf8')) as {
      description: string;
      steps: Step[];
    };
    it(`${file}: ${sequence.description}`, () => {
      const config = hibobConnector.configSchema.parse(BASE);
      let state: HibobState | undefined;
      sequence.steps.forEach((step, i) => {
        const result = hibobConnector.map!(step.input, config, state);
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

// ---------------------------------------------------------------------------------------------

const server = new MockServer();
const NOW = '2026-11-29T14:00:00.000Z';
const ID = '3332883884017713241';

beforeAll(async () => {
  await server.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

function delivery(
  type: string,
  triggeredAt = '2026-11-29T13:59:58.120Z',
  data: Record<string, unknown> = {},
) {
  return bobDelivery(ID, type, triggeredAt, data);
}

function signed(
  body: unknown,
  options: { secret?: string; algorithm?: string; header?: string | null } = {},
): InboundRequest {
  return signedBob(body, { ...options, secret: options.secret ?? BASE.webhook_secret });
}

const record = (internal: Record<string, unknown>, email = 'jonas.weber@example.de') => ({
  body: { id: ID, email, displayName: 'Jonas Weber', internal },
});

function started(config: Record<string, unknown> = {}, tc = createTestContext<HibobState>({ now: NOW })) {
  return startHibob({ ...BASE, api_base_url: `${server.url}/v1`, ...config }, tc);
}

describe('hibob webhooks', () => {
  it('verifies Bob-Signature, reads the employee through the Public API, and answers 200 once emitted', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-29' }),
    );
    const { connector, tc } = await started();
    const res = await connector.handleWebhook!(signed(delivery('employee.left')));
    expect(res).toMatchObject({ status: 200, body: { events: 2 } });
    const [req] = server.requests;
    expect(req?.headers.authorization).toBe(
      `Basic ${Buffer.from('SERVICE-44117:bob-service-token-for-tests').toString('base64')}`,
    );
    expect(req?.json).toEqual({ fields: expect.arrayContaining(['root.email', 'internal.terminationDate']) });
    expect(tc.events().map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', `${ID}:terminated:2026-11-29`, '2026-11-28T23:00:00.000Z'],
      ['caep.session-revoked', `${ID}:terminated:2026-11-29`, '2026-11-28T23:00:00.000Z'],
    ]);
    // Bob retries the same delivery: nothing new.
    expect((await connector.handleWebhook!(signed(delivery('employee.left')))).status).toBe(200);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('refuses a bad, missing or wrong-algorithm signature, and a replayed delivery, with 401', async () => {
    const { connector, tc } = await started({ max_event_age: '1h' });
    const cases: Array<[InboundRequest, string]> = [
      [signed(delivery('employee.left'), { secret: 'not-the-secret' }), 'does not match'],
      [signed(delivery('employee.left'), { header: null }), 'missing'],
      [signed(delivery('employee.left'), { algorithm: 'sha256' }), 'does not match'],
      [signed(delivery('employee.left'), { header: 'c2hvcnQ=' }), 'does not match'],
      [signed(delivery('employee.left', '2026-11-29T12:59:00.000Z')), 'outside the accepted window'],
      [signed(delivery('employee.left', '2026-11-29T15:01:00.000Z')), 'outside the accepted window'],
    ];
    const tampered = signed(delivery('employee.left'));
    cases.push([
      {
        ...tampered,
        body: delivery('employee.deleted'),
        rawBody: Buffer.from(JSON.stringify(delivery('employee.deleted'))),
      },
      'does not match',
    ]);
    for (const [req, reason] of cases) {
      const res = await connector.handleWebhook!(req);
      expect(res.status, reason).toBe(401);
      expect((res.body as { message: string }).message).toContain(reason);
    }
    expect(server.requests).toEqual([]);
    expect(tc.emits).toEqual([]);
    await connector.stop(100);
  });

  it('accepts SHA-256 signatures when configured, and the previous secret while rotating', async () => {
    server.on('POST', `/v1/people/${ID}`, () => record({ status: 'Active', lifecycleStatus: 'employed' }));
    const { connector } = await started({
      signature_algorithm: 'sha256',
      previous_webhook_secret: 'old-bob-secret',
    });
    expect(
      (await connector.handleWebhook!(signed(delivery('employee.updated'), { algorithm: 'sha256' }))).status,
    ).toBe(200);
    const old = signed(delivery('employee.updated'), { algorithm: 'sha256', secret: 'old-bob-secret' });
    expect((await connector.handleWebhook!(old)).status).toBe(200);
    await connector.stop(100);
  });

  it('trusts employee.left when the API does not show the termination yet', async () => {
    server.on('POST', `/v1/people/${ID}`, () => record({ status: 'Active', lifecycleStatus: 'employed' }));
    const { connector, tc } = await started();
    await connector.handleWebhook!(signed(delivery('employee.left', '2026-11-28T23:00:01.000Z')));
    expect(tc.events().map((e) => [e.sourceRecordId, e.occurredAt])).toEqual([
      [`${ID}:terminated:2026-11-29`, '2026-11-28T23:00:01.000Z'],
      [`${ID}:terminated:2026-11-29`, '2026-11-28T23:00:01.000Z'],
    ]);
    await connector.stop(100);
  });

  it('sends employee.left for a termination entered late, dated before the backfill window', async () => {
    // HR enters on 29 November a termination that took effect on 30 September: the first
    // delivery about this employee is news, not an old leaver found by a first full sync.
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-09-30' }),
    );
    const { connector, tc } = await started({ backfill_window: '30d' });
    const res = await connector.handleWebhook!(signed(delivery('employee.left')));
    expect(res).toMatchObject({ status: 200, body: { events: 2 } });
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', `${ID}:terminated:2026-09-30`],
      ['caep.session-revoked', `${ID}:terminated:2026-09-30`],
    ]);
    // Bob sends it again: already reported.
    await connector.handleWebhook!(signed(delivery('employee.left')));
    expect(tc.events()).toHaveLength(2);
    // An update about someone who left long ago, first seen now, stays quiet.
    server.on('POST', '/v1/people/9001', () => ({
      body: {
        id: '9001',
        email: 'old.leaver@example.de',
        internal: { status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2024-03-31' },
      },
    }));
    await connector.handleWebhook!(signed({ ...delivery('employee.updated'), data: { employeeId: '9001' } }));
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('records a leaver Bob shows without a termination date, first seen on an update, without events: logged and counted', async () => {
    const undated = (id: string, email: string) => () => ({
      body: {
        id,
        email,
        internal: { status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: null },
      },
    });
    server.on('POST', '/v1/people/9001', undated('9001', 'old.leaver@example.de'));
    const { connector, tc } = await started({ backfill_window: '30d' });
    const res = await connector.handleWebhook!(
      signed({ ...delivery('employee.updated'), data: { employeeId: '9001' } }),
    );
    expect(res).toMatchObject({ status: 200, body: { events: 0 } });
    expect(tc.events()).toEqual([]);
    expect(tc.counter('hibob_employees_total', { outcome: 'backfilled' })).toBe(1);
    expect(tc.logs).toContainEqual({
      level: 'info',
      msg: 'recorded 1 leaver(s) seen for the first time, whose termination took effect before backfill_window (or has no date), without events',
      fields: {
        employees: 1,
        backfill_window_ms: 30 * 86_400_000,
        examples: ['9001'],
        type: 'employee.updated',
      },
    });
    // A later update about the same leaver sends nothing either.
    await connector.handleWebhook!(signed({ ...delivery('employee.updated'), data: { employeeId: '9001' } }));
    expect(tc.events()).toEqual([]);
    // employee.left, fired as an employee leaves, is news though the record has no date yet.
    server.on('POST', '/v1/people/9002', undated('9002', 'new.leaver@example.de'));
    await connector.handleWebhook!(signed({ ...delivery('employee.left'), data: { employeeId: '9002' } }));
    expect(tc.events().map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', '9002:terminated:2026-11-29', '2026-11-29T13:59:58.120Z'],
      ['caep.session-revoked', '9002:terminated:2026-11-29', '2026-11-29T13:59:58.120Z'],
    ]);
    await connector.stop(100);
  });

  it('sends garden leave, first seen on an update, from now: it is going on, though no date is taken from it', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Active', lifecycleStatus: 'Garden leave', terminationDate: '2027-01-31' }),
    );
    const { connector, tc } = await started({ backfill_window: '30d' });
    await connector.handleWebhook!(signed(delivery('employee.updated')));
    expect(tc.events().map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', `${ID}:terminated:2026-11-29`, '2026-11-29T13:59:58.120Z'],
      ['caep.session-revoked', `${ID}:terminated:2026-11-29`, '2026-11-29T13:59:58.120Z'],
    ]);
    expect(tc.counter('hibob_employees_total', { outcome: 'backfilled' })).toBe(0);
    await connector.stop(100);
  });

  it('answers 503 to a leaver Bob hides (404) when subject_format is email: warned, counted, flagged, nothing committed', async () => {
    server.on('POST', `/v1/people/${ID}`, () => ({ status: 404, body: { error: 'not found' } }));
    const { connector, tc } = await started({ subject_format: 'email' });
    for (const type of ['employee.left', 'employee.inactivated']) {
      const refused = await connector.handleWebhook!(signed(delivery(type))).catch((e: unknown) => e);
      // The server answers a RetryableError with 503 and Retry-After: Bob delivers it again.
      expect(refused).toBeInstanceOf(RetryableError);
      expect((refused as RetryableError).retryAfterMs).toBe(60_000);
      expect((refused as RetryableError).message).toBe(
        `${type} for employee ${ID} is a leaver, but Bob answered no employee ${ID} (can the service user see inactive employees?), no earlier delivery gave an email, and subject_format is email: not sent; Bob is asked to deliver it again`,
      );
    }
    expect(tc.emits).toEqual([]);
    expect(tc.checkpoints.size).toBe(0);
    expect(tc.counter('hibob_employees_total', { outcome: 'no_email' })).toBe(2);
    expect(tc.counter('hibob_webhooks_total', { outcome: 'retry' })).toBe(2);
    expect(tc.counter('hibob_webhooks_total', { outcome: 'accepted' })).toBe(0);
    expect(tc.statuses.at(-1)).toMatchObject({
      state: 'recoverable_error',
      reason: expect.stringContaining('can the service user see inactive employees?'),
    });
    expect(tc.logs.filter((l) => l.level === 'warn').map((l) => l.fields)).toEqual([
      { type: 'employee.left', employee: ID },
      { type: 'employee.inactivated', employee: ID },
    ]);
    // The service user is given access to inactive employees; Bob delivers again.
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-29' }),
    );
    const res = await connector.handleWebhook!(signed(delivery('employee.left')));
    expect(res).toMatchObject({ status: 200, body: { events: 2 } });
    expect(tc.events().map((e) => e.subject)).toEqual([
      { format: 'email', email: 'jonas.weber@example.de' },
      { format: 'email', email: 'jonas.weber@example.de' },
    ]);
    await connector.stop(100);
  });

  it('changes nothing when Bob shows no employee after an update: a hidden record is not a rehire', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-29' }),
    );
    const { connector, tc } = await started();
    await connector.handleWebhook!(signed(delivery('employee.left')));
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    // The service user no longer sees the inactive employee: 404, then an empty search answer.
    server.on('POST', `/v1/people/${ID}`, () => ({ status: 404, body: { error: 'not found' } }));
    expect(await connector.handleWebhook!(signed(delivery('employee.updated')))).toMatchObject({
      status: 200,
      body: { events: 0 },
    });
    server.on('POST', `/v1/people/${ID}`, () => ({ body: { employees: [] } }));
    expect((await connector.handleWebhook!(signed(delivery('employee.updated')))).status).toBe(200);
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    // Once Bob shows the employee active again, that is the rehire.
    server.on('POST', `/v1/people/${ID}`, () => record({ status: 'Active', lifecycleStatus: 'employed' }));
    await connector.handleWebhook!(signed(delivery('employee.updated')));
    expect(
      tc
        .events()
        .map((e) => e.type)
        .at(-1),
    ).toBe('risc.account-enabled');
    await connector.stop(100);
  });

  it('keeps a held termination when Bob shows no employee after an update', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Active', lifecycleStatus: 'employed', terminationDate: '2026-12-31' }),
    );
    const first = await started();
    await first.connector.handleWebhook!(signed(delivery('employee.updated')));
    server.on('POST', `/v1/people/${ID}`, () => ({ status: 404, body: { error: 'not found' } }));
    await first.connector.handleWebhook!(signed(delivery('employee.updated')));
    await first.connector.stop(100);
    const tc = createTestContext<HibobState>({
      now: '2026-12-30T23:00:00.000Z',
      checkpoints: first.tc.checkpoints,
    });
    const second = await started({}, tc);
    await tc.runTask('release');
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    await second.connector.stop(100);
  });

  it("sends employee.left when Bob fires it, though the day starts later in the instance's time zone", async () => {
    // Midnight of 30 November in Tokyo is 15:00 UTC on the 29th; in Berlin (the instance's
    // zone) the 30th starts 8 hours later.
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-30' }),
    );
    const tc = createTestContext<HibobState>({ now: '2026-11-29T15:00:02.000Z' });
    const { connector } = await started({}, tc);
    await connector.handleWebhook!(signed(delivery('employee.left', '2026-11-29T15:00:00.000Z')));
    expect(tc.events().map((e) => [e.type, e.sourceRecordId, e.occurredAt])).toEqual([
      ['risc.account-disabled', `${ID}:terminated:2026-11-30`, '2026-11-29T15:00:00.000Z'],
      ['caep.session-revoked', `${ID}:terminated:2026-11-30`, '2026-11-29T15:00:00.000Z'],
    ]);
    await connector.stop(100);
    // An update carrying a date months ahead is held to that date, whatever the event.
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Active', lifecycleStatus: 'employed', terminationDate: '2027-03-31' }),
    );
    const later = createTestContext<HibobState>({ now: '2026-11-29T15:00:02.000Z' });
    const other = await started({}, later);
    await other.connector.handleWebhook!(signed(delivery('employee.left', '2026-11-29T15:00:00.000Z')));
    expect(later.events()).toEqual([]);
    await other.connector.stop(100);
  });

  it('keeps a leaver sent early (employee.left ahead of the time zone) disabled through a later update', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-30' }),
    );
    const tc = createTestContext<HibobState>({ now: '2026-11-29T15:00:02.000Z' });
    const { connector } = await started({}, tc);
    await connector.handleWebhook!(signed(delivery('employee.left', '2026-11-29T15:00:00.000Z')));
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    // An hour later HR adds exit notes: Bob still shows the employee terminated, on a date that
    // has not begun in Berlin yet. That is no rehire.
    tc.clock.set('2026-11-29T16:00:02.000Z');
    const res = await connector.handleWebhook!(
      signed(delivery('employee.updated', '2026-11-29T16:00:00.000Z')),
    );
    expect(res.status).toBe(200);
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    // Nor is anything held to be sent again when the date begins in Berlin.
    tc.clock.set('2026-11-29T23:00:00.000Z');
    await tc.runTask('release');
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('purges on employee.deleted with the email from the payload, without calling the API', async () => {
    const { connector, tc } = await started();
    const res = await connector.handleWebhook!(
      signed(delivery('employee.deleted', undefined, { email: 'jonas.weber@example.de' })),
    );
    expect(res.status).toBe(200);
    expect(server.requests).toEqual([]);
    expect(tc.events()).toEqual([
      expect.objectContaining({ type: 'risc.account-purged', sourceRecordId: `${ID}:purged:deleted` }),
    ]);
    await connector.stop(100);
  });

  it('answers 200 without a call for events that are not about employment, 400 for a body that is not a delivery', async () => {
    const { connector } = await started();
    const other = await connector.handleWebhook!(signed({ ...delivery('timeoff.request.created') }));
    expect(other.status).toBe(200);
    expect((await connector.handleWebhook!(signed({ hello: 'bob' }))).status).toBe(400);
    expect(server.requests).toEqual([]);
    await connector.stop(100);
  });

  it('lets Bob retry when its API or the outbox is unavailable; 502 when the service user is refused', async () => {
    const { connector, tc } = await started();
    server.on('POST', `/v1/people/${ID}`, () => ({ status: 429, headers: { 'retry-after': '20' } }));
    const limited = await connector.handleWebhook!(signed(delivery('employee.left'))).catch(
      (e: unknown) => e,
    );
    expect((limited as RetryableError).retryAfterMs).toBe(20_000);

    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-29' }),
    );
    tc.failNextEmit();
    await expect(connector.handleWebhook!(signed(delivery('employee.left')))).rejects.toBeInstanceOf(
      RetryableError,
    );
    expect(tc.checkpoints.size).toBe(0);

    server.on('POST', `/v1/people/${ID}`, () => ({ status: 403, body: { error: 'forbidden' } }));
    expect((await connector.handleWebhook!(signed(delivery('employee.left')))).status).toBe(502);
    expect(tc.statuses.map((s) => s.state)).toContain('permanent_error');

    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-29' }),
    );
    expect((await connector.handleWebhook!(signed(delivery('employee.left')))).status).toBe(200);
    expect(tc.events().map((e) => e.sourceRecordId)).toEqual([
      `${ID}:terminated:2026-11-29`,
      `${ID}:terminated:2026-11-29`,
    ]);
    await connector.stop(100);
  });

  it('answers 500 (Bob delivers again) while the stored state is unreadable, and 200 once it is reset', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '2026-11-29' }),
    );
    const checkpoints = new Map<string, unknown>([['default', { employees: 'not a snapshot' }]]);
    const tc = createTestContext<HibobState>({ now: NOW, checkpoints });
    const { connector } = await started({}, tc);
    const broken = await connector.handleWebhook!(signed(delivery('employee.left')));
    expect(broken.status).toBe(500);
    expect(broken.body).toMatchObject({ error: 'internal_error', message: /checkpoint is not readable/ });
    expect(tc.statuses).toContainEqual(expect.objectContaining({ state: 'permanent_error' }));
    expect(tc.emits).toEqual([]);
    checkpoints.clear(); // the operator resets the state
    expect((await connector.handleWebhook!(signed(delivery('employee.left')))).status).toBe(200);
    expect(tc.events().map((e) => [e.type, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', `${ID}:terminated:2026-11-29`],
      ['caep.session-revoked', `${ID}:terminated:2026-11-29`],
    ]);
    await connector.stop(100);
  });

  it('answers 502 when the API returns an unreadable employee record', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Inactive', lifecycleStatus: 'terminated', terminationDate: '29.11.2026' }),
    );
    const { connector, tc } = await started();
    expect((await connector.handleWebhook!(signed(delivery('employee.left')))).status).toBe(502);
    expect(tc.emits).toEqual([]);
    await connector.stop(100);
  });

  it('holds a future termination and fires it at midnight Berlin time after a restart, once', async () => {
    server.on('POST', `/v1/people/${ID}`, () =>
      record({ status: 'Active', lifecycleStatus: 'employed', terminationDate: '2026-12-31' }),
    );
    const first = await started();
    await first.connector.handleWebhook!(signed(delivery('employee.updated')));
    expect(first.tc.events()).toEqual([]);
    await first.connector.stop(100);

    const tc = createTestContext<HibobState>({
      now: '2026-12-30T23:00:00.000Z',
      checkpoints: first.tc.checkpoints,
    });
    const second = await started({}, tc);
    await tc.runTask('release');
    expect(tc.events().map((e) => [e.type, e.occurredAt])).toEqual([
      ['risc.account-disabled', '2026-12-30T23:00:00.000Z'],
      ['caep.session-revoked', '2026-12-30T23:00:00.000Z'],
    ]);
    await tc.runTask('release');
    expect(tc.events()).toHaveLength(2);
    await second.connector.stop(100);
  });
});

describe('hibob garden leave kept (garden_leave: ignore)', () => {
  it('keeps a held termination through garden leave and sends it on its date', async () => {
    let internal: Record<string, unknown> = {
      status: 'Active',
      lifecycleStatus: 'employed',
      terminationDate: '2026-12-31',
    };
    server.on('POST', `/v1/people/${ID}`, () => record(internal));
    const first = await started({ garden_leave: 'ignore' });
    await first.connector.handleWebhook!(signed(delivery('employee.updated')));
    // Garden leave begins: Bob fires employee.left, the record shows garden leave and the date.
    internal = { status: 'Active', lifecycleStatus: 'Garden leave', terminationDate: '2026-12-31' };
    expect((await first.connector.handleWebhook!(signed(delivery('employee.left')))).status).toBe(200);
    await first.connector.handleWebhook!(signed(delivery('employee.updated')));
    expect(first.tc.events()).toEqual([]);
    await first.connector.stop(100);

    const tc = createTestContext<HibobState>({
      now: '2026-12-30T23:00:00.000Z',
      checkpoints: first.tc.checkpoints,
    });
    const second = await started({ garden_leave: 'ignore' }, tc);
    await tc.runTask('release');
    expect(tc.events().map((e) => [e.type, e.occurredAt])).toEqual([
      ['risc.account-disabled', '2026-12-30T23:00:00.000Z'],
      ['caep.session-revoked', '2026-12-30T23:00:00.000Z'],
    ]);
    await second.connector.stop(100);
  });

  it('sends the termination at once when garden leave shows a date that has come, and nothing for one without a date', async () => {
    let internal: Record<string, unknown> = { status: 'Active', lifecycleStatus: 'Garden leave' };
    server.on('POST', `/v1/people/${ID}`, () => record(internal));
    const { connector, tc } = await started({ garden_leave: 'ignore' });
    await connector.handleWebhook!(signed(delivery('employee.left')));
    expect(tc.events()).toEqual([]);
    internal = { status: 'Active', lifecycleStatus: 'Garden leave', terminationDate: '2026-11-29' };
    await connector.handleWebhook!(signed(delivery('employee.updated')));
    expect(tc.events().map((e) => e.type)).toEqual(['risc.account-disabled', 'caep.session-revoked']);
    await connector.stop(100);
  });
});

describe('hibob through ssf-bridge simulate (golden)', () => {
  it('prints every fixture event, notes the ignored ones, and stops at a malformed one', async () => {
    const { run, expected, ignored, rejected } = await simulateFixtures(
      'hibob',
      BASE,
      new URL('./fixtures/', import.meta.url),
    );
    expect(run.events.map(({ txn: _txn, ...rest }) => rest)).toEqual(expected);
    expect(run.events.some((e) => typeof e.scheduled_for === 'string')).toBe(true);
    for (const reason of ignored) expect(run.stderr).toContain(reason);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(rejected[0]);
  }, 60_000);
});
