import { defineConnector, secret, z, type ConnectorContext } from '../../core/plugin-api/index.ts';

/** Records lifecycle calls across instances, in order, so tests can assert start/stop order. */
export class LifecycleJournal {
  readonly entries: string[] = [];
  record(entry: string): void {
    this.entries.push(entry);
  }
}

export const journal = new LifecycleJournal();

const behaviourSchema = z.strictObject({
  fail_start: z.boolean().default(false),
  fail_create: z.boolean().default(false),
  start_delay_ms: z.number().int().min(0).default(0),
  token: secret('A credential, to prove it never reaches logs').optional(),
});

/** An outbound test connector whose start can be told to fail. */
export const testOutbound = defineConnector({
  manifest: {
    id: 'test-outbound',
    kind: 'outbound',
    version: '1.0.0',
    stability: 'development',
    displayName: 'Test outbound',
    description: 'Records lifecycle calls; used by runtime tests.',
    accepts: ['caep.session-revoked'],
  },
  configSchema: behaviourSchema,
  create(ctx: ConnectorContext, config) {
    return {
      target: { audience: 'https://receiver.test' },
      async start() {
        journal.record(`start:${ctx.instanceId}`);
        if (config.start_delay_ms) await new Promise((r) => setTimeout(r, config.start_delay_ms));
        if (config.fail_start) throw new Error(`${ctx.instanceId} cannot reach its target`);
      },
      async stop() {
        journal.record(`stop:${ctx.instanceId}`);
      },
      async deliver() {
        return { detail: 'ok' };
      },
    };
  },
});

/** An inbound test connector that answers webhooks by emitting what it receives. */
export const testInbound = defineConnector({
  manifest: {
    id: 'test-inbound',
    kind: 'inbound',
    version: '1.0.0',
    stability: 'development',
    displayName: 'Test inbound',
    description: 'Records lifecycle calls and echoes webhooks; used by runtime tests.',
    emits: ['caep.session-revoked'],
    capabilities: { webhook: true },
  },
  configSchema: behaviourSchema,
  create(ctx, config) {
    if (config.fail_create) throw new Error('timeoutMs must be a positive number (got 0)');
    return {
      async start() {
        journal.record(`start:${ctx.instanceId}`);
        if (config.fail_start) throw new Error(`${ctx.instanceId} cannot start`);
      },
      async stop() {
        journal.record(`stop:${ctx.instanceId}`);
      },
      async handleWebhook(req) {
        return { status: 202, body: { received: req.rawBody.length, parsed: req.body ?? null } };
      },
    };
  },
});
