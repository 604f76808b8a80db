import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import { hibobConnector } from './index.ts';
import type { HibobState } from './mapping.ts';
import { createTestContext } from '../_shared/hr-test-support.ts';
import { bobDelivery, signedBob, startHibob } from './test-support.ts';

const SECRET = 'bob-webhook-secret-for-webhook-only';
const WEBHOOK_ONLY = {
  webhook_secret: SECRET,
  employee_lookup: 'webhook_only',
  timezone: 'Europe/Berlin',
};
const server = new MockServer();
const NOW = '2026-11-29T23:00:30.000Z';
const ID = '3332883884017713250';
const BOB = { format: 'iss_sub', iss: 'https://app.hibob.com', sub: ID };

beforeAll(async () => {
  await server.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => server.reset());

/** A Bob webhooks v2 delivery as Bob posts it, signed with Bob-Signature (base64 HMAC-SHA512). */
function signed(type: string, data: Record<string, unknown> = {}, triggeredAt = '2026-11-29T23:00:02.874Z') {
  return signedBob(bobDelivery(ID, type, triggeredAt, data), { secret: SECRET });
}

function started(config: Record<string, unknown> = {}, tc = createTestContext<HibobState>({ now: NOW })) {
  return startHibob({ ...WEBHOOK_ONLY, api_base_url: `${server.url}/v1`, ...config }, tc);
}

describe('hibob employee_lookup webhook_only: configuration', () => {
  it('refuses a service-user config without the service user, and says webhook_only is the way without one', () => {
    const parsed = hibobConnector.configSchema.safeParse({ webhook_secret: SECRET });
    expect(parsed.success).toBe(false);
    expect(JSON.stringify(parsed.error?.issues)).toContain('set employee_lookup: webhook_only');
  });

  it('accepts webhooks alone', () => {
    expect(hibobConnector.configSchema.parse(WEBHOOK_ONLY)).toMatchObject({
      employee_lookup: 'webhook_only',
    });
  });

  it('refuses what webhook_only cannot honour, each with the reason', () => {
    const problem = (extra: Record<string, unknown>) =>
      JSON.stringify(hibobConnector.configSchema.safeParse({ ...WEBHOOK_ONLY, ...extra }).error?.issues);
    expect(problem({ subject_format: 'email' })).toContain('employee.left carries only the employee id');
    expect(problem({ garden_leave: 'ignore' })).toContain('only the employee record tells them apart');
    expect(problem({ service_user_id: 'SERVICE-1', service_user_token: 't' })).toContain(
      'webhook_only reads no employee from the API',
    );
  });
});

describe('hibob employee_lookup webhook_only: deliveries', () => {
  it('disables a leaver on employee.left as of triggeredAt, named by the Bob id, and calls no Bob API', async () => {
    const { connector, tc } = await started();
    const res = await connector.handleWebhook!(signed('employee.left'));
    expect(res).toMatchObject({ status: 200, body: { received: 1, events: 2 } });
    expect(tc.events().map((e) => [e.type, e.subject, e.sourceRecordId, e.occurredAt])).toEqual([
      // Bob fires at midnight site time: 23:00 UTC is the 30th in Berlin.
      ['risc.account-disabled', BOB, `${ID}:terminated:2026-11-30`, '2026-11-29T23:00:02.874Z'],
      ['caep.session-revoked', BOB, `${ID}:terminated:2026-11-30`, '2026-11-29T23:00:02.874Z'],
    ]);
    expect(server.requests).toEqual([]);
    // Redelivered, it sends nothing twice.
    expect((await connector.handleWebhook!(signed('employee.left'))).status).toBe(200);
    expect(tc.events()).toHaveLength(2);
    await connector.stop(100);
  });

  it('re-enables a leaver on employee.activated (a rehire), and purges on employee.deleted with its email', async () => {
    const { connector, tc } = await started();
    await connector.handleWebhook!(signed('employee.left'));
    tc.clock.set('2027-02-01T08:00:00.000Z');
    const rehired = await connector.handleWebhook!(
      signed('employee.activated', {}, '2027-02-01T07:59:58.000Z'),
    );
    expect(rehired).toMatchObject({ status: 200, body: { events: 1 } });
    expect(tc.events().at(-1)).toMatchObject({ type: 'risc.account-enabled', subject: BOB });

    const deleted = await connector.handleWebhook!(
      signed('employee.deleted', { email: 'lena.vogel@example.de' }, '2027-02-01T07:59:59.000Z'),
    );
    expect(deleted).toMatchObject({ status: 200, body: { events: 1 } });
    expect(tc.events().at(-1)).toMatchObject({
      type: 'risc.account-purged',
      subject: {
        format: 'aliases',
        identifiers: [{ format: 'email', email: 'lena.vogel@example.de' }, BOB],
      },
    });
    expect(server.requests).toEqual([]);
    await connector.stop(100);
  });

  it('sends nothing for employee.inactivated (leave or termination cannot be told apart) nor employee.updated (field ids only)', async () => {
    const { connector, tc } = await started();
    const inactivated = await connector.handleWebhook!(signed('employee.inactivated'));
    expect(inactivated).toMatchObject({ status: 200, body: { events: 0 } });
    const updated = await connector.handleWebhook!(
      signed('employee.updated', { fieldUpdates: [{ fieldId: 'root.email' }] }),
    );
    expect(updated).toMatchObject({ status: 200, body: { events: 0 } });
    expect(tc.events()).toEqual([]);
    expect(tc.logs.filter((l) => l.msg === 'no event').map((l) => l.fields.reason)).toEqual([
      expect.stringContaining('employee.inactivated fires for leave as for termination'),
      expect.stringContaining('employee.updated does not carry the changed values'),
    ]);
    expect(server.requests).toEqual([]);
    await connector.stop(100);
  });

  it('still refuses a delivery whose Bob-Signature does not match', async () => {
    const { connector, tc } = await started();
    const forged = signed('employee.left');
    forged.headers['bob-signature'] = createHmac('sha512', 'not-the-secret')
      .update(forged.rawBody)
      .digest('base64');
    expect((await connector.handleWebhook!(forged)).status).toBe(401);
    expect(tc.events()).toEqual([]);
    await connector.stop(100);
  });
});
