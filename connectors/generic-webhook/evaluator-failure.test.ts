import type * as WorkerThreads from 'node:worker_threads';
import { describe, expect, it, vi } from 'vitest';
import { RetryableError, type InboundRequest } from '../../core/plugin-api/index.ts';
import { createTestContext } from '../_shared/edr-test-support.ts';
import { genericWebhook } from './index.ts';

/** How many of the next helper threads fail to start, as one does when the process is out of threads. */
const threads = vi.hoisted(() => ({ failing: 0 }));

vi.mock('node:worker_threads', async (importOriginal) => {
  const actual = await importOriginal<typeof WorkerThreads>();
  class Worker extends actual.Worker {
    constructor(...args: ConstructorParameters<typeof actual.Worker>) {
      if (threads.failing > 0) {
        threads.failing -= 1;
        throw Object.assign(new Error('Worker initialization failure: EAGAIN'), {
          code: 'ERR_WORKER_INIT_FAILED',
        });
      }
      super(...args);
    }
  }
  return { ...actual, default: { ...actual, Worker }, Worker };
});

const auth = { authorization: 'Bearer tok-12345' };

function request(body: unknown): InboundRequest {
  const rawBody = Buffer.from(JSON.stringify(body));
  return { method: 'POST', headers: auth, query: {}, rawBody, body, remoteAddress: '127.0.0.1' };
}

describe('generic-webhook when the rules’ helper thread fails', () => {
  it('fails the request as retryable (503 with Retry-After), not as a 400 the sender would drop, and maps it when resent', async () => {
    const t = createTestContext();
    const connector = genericWebhook.create(
      t.ctx,
      genericWebhook.configSchema.parse({
        auth: { type: 'bearer', token: 'tok-12345' },
        rules: genericWebhook.examples![0]!.config.rules,
      }),
    );
    const body = {
      alert_id: 'A-1',
      severity: 'high',
      title: 'Impossible travel',
      user: { email: 'dana.lee@example.com' },
    };
    threads.failing = 1;
    const err = await connector.handleWebhook!(request(body)).catch((e: unknown) => e);
    // The server answers a RetryableError 503 with Retry-After in whole seconds of retryAfterMs.
    expect(err).toBeInstanceOf(RetryableError);
    expect(err).toMatchObject({
      code: 'SSF_ERR_MAPPING_UNAVAILABLE',
      retryAfterMs: 5_000,
      message: expect.stringContaining('through no fault of the records') as string,
    });
    expect(t.counter('generic_webhook_requests_total', { outcome: 'error' })).toBe(1);
    expect(t.emitted).toHaveLength(0);
    expect(await connector.handleWebhook!(request(body))).toMatchObject({ status: 202 });
    expect(t.events().map((e) => e.sourceRecordId)).toEqual(['A-1']);
  });
});
