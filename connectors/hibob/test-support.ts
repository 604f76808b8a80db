/** What the HiBob tests share: Bob's webhook deliveries as Bob posts and signs them, and a started instance. */
import { createHmac } from 'node:crypto';
import type { InboundConnector, InboundRequest } from '../../core/plugin-api/index.ts';
import type { createTestContext } from '../_shared/hr-test-support.ts';
import { hibobConnector } from './index.ts';
import type { HibobState } from './mapping.ts';

/** A Bob webhooks v2 delivery about one employee. */
export function bobDelivery(
  employeeId: string,
  type: string,
  triggeredAt: string,
  data: Record<string, unknown> = {},
) {
  return {
    companyId: 638291,
    type,
    triggeredBy: 'system',
    triggeredAt,
    version: 'v2',
    data: { employeeId, ...data },
  };
}

/**
 * The request Bob sends for `body`: Bob-Signature is the base64 HMAC-SHA512 of the raw body
 * (`algorithm` and `header` let a test send a wrong one, `header: null` none).
 */
export function signedBob(
  body: unknown,
  options: { secret: string; algorithm?: string; header?: string | null },
): InboundRequest {
  const raw = JSON.stringify(body);
  const signature =
    options.header === undefined
      ? createHmac(options.algorithm ?? 'sha512', options.secret)
          .update(raw)
          .digest('base64')
      : options.header;
  return {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(signature === null ? {} : { 'bob-signature': signature }),
    },
    query: {},
    rawBody: Buffer.from(raw),
    body,
    remoteAddress: '127.0.0.1',
  };
}

/** A HiBob instance of `config`, started in the test context `tc`. */
export async function startHibob(
  config: Record<string, unknown>,
  tc: ReturnType<typeof createTestContext<HibobState>>,
): Promise<{ connector: InboundConnector; tc: typeof tc }> {
  const connector: InboundConnector = hibobConnector.create(
    tc.ctx,
    hibobConnector.configSchema.parse(config),
  );
  await connector.start(tc.ctx.signal);
  return { connector, tc };
}
