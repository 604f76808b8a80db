import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { InboundRequest } from '../../core/plugin-api/index.ts';
import { createTestContext } from '../_shared/edr-test-support.ts';
import { genericWebhook } from './index.ts';

const rules = [
  {
    name: 'disabled',
    match: 'action = "account.disabled"',
    event_type: 'risc.account-disabled',
    subject: '{"format": "email", "email": target}',
    id: 'id',
  },
];

function request(body: unknown, headers: Record<string, string> = {}): InboundRequest {
  const rawBody = Buffer.from(JSON.stringify(body));
  return { method: 'POST', headers, query: {}, rawBody, body, remoteAddress: '127.0.0.1' };
}

function instance(config: unknown) {
  const t = createTestContext();
  const connector = genericWebhook.create(t.ctx, genericWebhook.configSchema.parse(config));
  return { t, handle: (req: InboundRequest) => connector.handleWebhook!(req) };
}

describe('generic-webhook', () => {
  it('checks an HMAC signature over the raw body, with a prefix, and refuses a wrong one', async () => {
    const { t, handle } = instance({
      auth: { type: 'hmac', key: 'hmac-key-for-tests', header: 'X-Hub-Signature-256', prefix: 'sha256=' },
      records_field: 'events',
      rules,
    });
    const body = { events: [{ id: 'e1', action: 'account.disabled', target: 'a@example.com' }] };
    const sig = createHmac('sha256', 'hmac-key-for-tests').update(JSON.stringify(body)).digest('hex');
    expect((await handle(request(body))).status).toBe(401);
    const tampered = `${sig.slice(0, -1)}${sig.endsWith('0') ? '1' : '0'}`;
    expect((await handle(request(body, { 'x-hub-signature-256': `sha256=${tampered}` }))).status).toBe(403);
    const ok = await handle(request(body, { 'x-hub-signature-256': `sha256=${sig.toUpperCase()}` }));
    expect(ok.status).toBe(202);
    expect(t.events().map((e) => [e.type, e.subject, e.sourceRecordId])).toEqual([
      ['risc.account-disabled', { format: 'email', email: 'a@example.com' }, 'e1'],
    ]);
  });

  it('with timestamp_header, checks the signature over "<timestamp>.<body>" and refuses a request replayed outside the tolerance', async () => {
    let now = Date.UTC(2026, 2, 2, 9, 14, 27);
    const t = createTestContext({ now: () => now });
    const connector = genericWebhook.create(
      t.ctx,
      genericWebhook.configSchema.parse({
        auth: {
          type: 'hmac',
          key: 'hmac-key-for-tests',
          prefix: 'sha256=',
          timestamp_header: 'X-Timestamp',
        },
        rules,
      }),
    );
    const handle = (req: InboundRequest) => connector.handleWebhook!(req);
    const body = { id: 'e1', action: 'account.disabled', target: 'a@example.com' };
    // As ssf-bridge's webhook destination signs: sha256=hex(HMAC(key, "<X-Timestamp>.<raw body>")).
    const sign = (timestamp: string) =>
      `sha256=${createHmac('sha256', 'hmac-key-for-tests')
        .update(`${timestamp}.${JSON.stringify(body)}`)
        .digest('hex')}`;
    const sent = String(now / 1000);
    const headers = { 'x-timestamp': sent, 'x-signature': sign(sent) };
    expect((await handle(request(body, headers))).status).toBe(202);
    // A signature over the body alone, or a timestamp changed after signing, is not valid.
    const bodyOnly = `sha256=${createHmac('sha256', 'hmac-key-for-tests').update(JSON.stringify(body)).digest('hex')}`;
    expect((await handle(request(body, { ...headers, 'x-signature': bodyOnly }))).status).toBe(403);
    expect((await handle(request(body, { ...headers, 'x-timestamp': String(now / 1000 + 60) }))).status).toBe(
      403,
    );
    expect(await handle(request(body, { 'x-signature': sign(sent) }))).toMatchObject({
      status: 401,
      body: { message: expect.stringContaining('X-Timestamp header') as string },
    });
    // The same signed request captured and sent again six minutes later.
    now += 6 * 60_000;
    expect(await handle(request(body, headers))).toMatchObject({
      status: 403,
      body: { error: 'forbidden', message: expect.stringContaining('more than 300 s') as string },
    });
    expect(t.events()).toHaveLength(1);
  });

  it('accepts a rotated bearer token and refuses an unknown one', async () => {
    const { handle } = instance({
      auth: { type: 'bearer', token: 'new-token-123', previous_token: 'old-token-123' },
      rules,
    });
    const body = { id: 'e2', action: 'account.disabled', target: 'b@example.com' };
    expect((await handle(request(body, { authorization: 'Bearer old-token-123' }))).status).toBe(202);
    expect((await handle(request(body, { authorization: 'Bearer new-token-123' }))).status).toBe(202);
    expect((await handle(request(body, { authorization: 'Bearer other-token' }))).status).toBe(403);
  });

  it('refuses a whole batch when a rule fails on one record, naming the record, and keeps nothing', async () => {
    const { t, handle } = instance({ auth: { type: 'bearer', token: 'tok-12345' }, rules });
    const auth = { authorization: 'Bearer tok-12345' };
    const response = await handle(
      request(
        [
          { id: 'e3', action: 'account.disabled', target: 'c@example.com' },
          { id: 'e4', action: 'account.disabled' },
          { id: 'e5', action: 'login' },
        ],
        auth,
      ),
    );
    expect(response.status).toBe(400);
    expect(response.body).toEqual({
      error: 'invalid_request',
      problems: [
        {
          record: 1,
          message: expect.stringContaining(
            'rule "disabled", subject: subject.email is required by format email',
          ) as string,
        },
      ],
    });
    expect(t.emitted).toHaveLength(0);
    const big = Array.from({ length: 3 }, (_, i) => ({ id: `x${i}`, action: 'login' }));
    const limited = instance({
      auth: { type: 'bearer', token: 'tok-12345' },
      rules,
      max_records_per_request: 2,
    });
    expect((await limited.handle(request(big, auth))).body).toMatchObject({
      problems: [{ message: '3 records in one request; the limit is 2' }],
    });
  });

  it('refuses a body or record that is not a JSON object with 400, instead of ignoring it', async () => {
    const { t, handle } = instance({ auth: { type: 'bearer', token: 'tok-12345' }, rules });
    const auth = { authorization: 'Bearer tok-12345' };
    for (const [body, message] of [
      ['kit', 'the body is a string, not a JSON object (an alert) or an array of them'],
      [42, 'the body is a number, not a JSON object (an alert) or an array of them'],
      [[{ id: 'e1', action: 'login' }, 'x'], 'record 1 is a string, not a JSON object'],
      [[null], 'record 0 is null, not a JSON object'],
      [[[]], 'record 0 is an array, not a JSON object'],
    ] as const) {
      const response = await handle(request(body, auth));
      expect(response.status, JSON.stringify(body)).toBe(400);
      expect(response.body).toMatchObject({ problems: [{ message }] });
    }
    expect(t.emitted).toHaveLength(0);
  });

  it('answers 202 without emitting when no rule matches, and fails (so the sender retries) when the outbox is full', async () => {
    const { t, handle } = instance({ auth: { type: 'bearer', token: 'tok-12345' }, rules });
    const auth = { authorization: 'Bearer tok-12345' };
    expect(await handle(request({ id: 'e6', action: 'login' }, auth))).toMatchObject({
      status: 202,
      body: { ignored: 1 },
    });
    t.failNextEmits(1);
    await expect(
      handle(request({ id: 'e7', action: 'account.disabled', target: 'd@example.com' }, auth)),
    ).rejects.toThrow('the outbox is full');
    expect(t.counter('generic_webhook_requests_total', { outcome: 'error' })).toBe(1);
  });

  it('keeps serving while a rule runs away on a record, refuses that request, and maps the next one at once', async () => {
    const slow = [
      { ...rules[0]!, match: 'action = "account.disabled" and $contains(title, /^(\\w+\\s?)*$/)' },
    ];
    const { t, handle } = instance({ auth: { type: 'bearer', token: 'tok-12345' }, rules: slow });
    const auth = { authorization: 'Bearer tok-12345' };
    const health = createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => health.listen(0, '127.0.0.1', resolve));
    const address = health.address();
    const healthz = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/healthz`;
    try {
      const record = (i: number, title: string) => ({
        id: `s${i}`,
        action: 'account.disabled',
        target: `s${i}@example.com`,
        title,
      });
      const runaway = `${'word '.repeat(12)}${'a'.repeat(30)}!`;
      const started = performance.now();
      const body = [record(0, 'fine title'), record(1, runaway), record(2, runaway), record(3, runaway)];
      // Arrives while the first health check waits its turn.
      const answer = new Promise((resolve) => setTimeout(resolve, 100)).then(() =>
        handle(request(body, auth)),
      );
      // Health checks every 300 ms are answered while the rules run on the helper thread: each takes
      // far less than the 2 s a runaway record would hold the event loop for if it ran there.
      const checks: number[] = [];
      for (let i = 0; i < 3; i += 1) {
        const at = performance.now();
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect((await fetch(healthz)).status).toBe(200);
        checks.push(performance.now() - at);
      }
      expect(Math.max(...checks)).toBeLessThan(1_500);
      const response = await answer;
      // Cut off at the first runaway record (2 s), not one deadline per record.
      expect(performance.now() - started).toBeLessThan(3_500);
      expect(response.status).toBe(400);
      expect(response.body).toEqual({
        error: 'invalid_request',
        problems: [
          { record: 1, message: 'mapping rules could not be evaluated: evaluation took longer than 2000 ms' },
        ],
      });
      expect(t.emitted).toHaveLength(0);
      const next = performance.now();
      expect((await handle(request(record(4, 'fine title'), auth))).status).toBe(202);
      expect(performance.now() - next).toBeLessThan(1_500);
      expect(t.events().map((e) => e.sourceRecordId)).toEqual(['s4']);
    } finally {
      await new Promise<void>((resolve) => health.close(() => resolve()));
    }
  }, 15_000);

  it('maps a payload for simulate exactly as the running connector maps the same request body', async () => {
    const auth = { authorization: 'Bearer tok-12345' };
    const disabled = (id: string, target?: string) => ({ id, action: 'account.disabled', target });
    const cases: Array<{ config: Record<string, unknown>; body: unknown }> = [
      {
        config: { records_field: 'events' },
        body: { events: [disabled('f1', 'a@example.com'), disabled('f2', 'b@example.com')] },
      },
      {
        config: {},
        body: [
          disabled('f3', 'c@example.com'),
          { id: 'f4', action: 'login' },
          disabled('f5', 'd@example.com'),
        ],
      },
      { config: {}, body: disabled('f6', 'e@example.com') },
      {
        config: {},
        body: [
          { id: 'f7', action: 'login' },
          { id: 'f8', action: 'login' },
        ],
      },
      { config: {}, body: [disabled('f9', 'f@example.com'), disabled('f10')] },
      { config: { records_field: 'events' }, body: disabled('f11', 'g@example.com') },
      {
        config: { max_records_per_request: 1 },
        body: [disabled('f12', 'h@example.com'), disabled('f13', 'i@example.com')],
      },
    ];
    const answers = [];
    for (const { config, body } of cases) {
      const full = genericWebhook.configSchema.parse({
        auth: { type: 'bearer', token: 'tok-12345' },
        rules,
        ...config,
      });
      const { t, handle } = instance({ auth: { type: 'bearer', token: 'tok-12345' }, rules, ...config });
      const live = await handle(request(body, auth));
      let simulated: { events: unknown[]; ignored?: string } | { refused: string };
      try {
        simulated = genericWebhook.map!(body, full);
      } catch (err) {
        simulated = { refused: (err as Error).message };
      }
      answers.push({ status: live.status, live: t.events(), simulated });
      if (live.status === 202) {
        expect('events' in simulated && simulated.events).toEqual(t.events());
      } else {
        const problems = (live.body as { problems: Array<{ message: string }> }).problems;
        expect(simulated).toEqual({ refused: expect.stringContaining(problems[0]!.message) as string });
      }
    }
    expect(answers.map((a) => [a.status, a.live.map((e) => e.sourceRecordId)])).toEqual([
      [202, ['f1', 'f2']],
      [202, ['f3', 'f5']],
      [202, ['f6']],
      [202, []],
      [400, []],
      [400, []],
      [400, []],
    ]);
    expect(answers[3]?.simulated).toEqual({
      events: [],
      ignored: 'no mapping rule matched any of the 2 records',
    });
    expect(answers[4]?.simulated).toEqual({
      refused: expect.stringMatching(
        /^record 1: rule "disabled", subject: subject\.email is required/,
      ) as string,
    });
    expect(answers[5]?.simulated).toEqual({ refused: 'the body has no array "events"' });
  });
});
