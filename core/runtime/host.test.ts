import { beforeEach, describe, expect, it } from 'vitest';
import { loadConfigText } from '../config/index.ts';
import { ConnectorRegistry } from './registry.ts';
import { journal, testInbound, testOutbound } from '../../test/helpers/fake-connectors.ts';
import { capturingLogger } from '../../test/helpers/capture.ts';
import { createTestCore } from '../../test/helpers/test-core.ts';
import { Host, StartupError } from './host.ts';

const registry = new ConnectorRegistry([testInbound, testOutbound]);

async function hostFor(yaml: string, services: { name: string; fail?: boolean }[] = []) {
  const result = await loadConfigText(yaml, { registry, env: {} });
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  const { logger } = capturingLogger();
  const core = createTestCore(result.config, logger);
  const host = new Host({
    ...core,
    config: result.config,
    logger,
    services: services.map((s) => ({
      name: s.name,
      start: async () => {
        journal.record(`start:${s.name}`);
        if (s.fail) throw new Error(`${s.name} broke`);
      },
      stop: async () => journal.record(`stop:${s.name}`),
    })),
  });
  return { host, status: core.status };
}

const TWO_OF_EACH = `
inbound:
  - {id: in-a, connector: test-inbound}
  - {id: in-b, connector: test-inbound}
outbound:
  - {id: out-a, connector: test-outbound}
  - {id: out-b, connector: test-outbound}
`;

beforeEach(() => {
  journal.entries.length = 0;
});

describe('runtime host lifecycle', () => {
  it('starts outbound, then core services, then inbound; stops inbound first', async () => {
    const { host, status } = await hostFor(TWO_OF_EACH, [{ name: 'delivery' }]);
    await host.start();
    expect(status.readiness()).toEqual({ ready: true, reasons: [] });
    await host.stop();
    expect(journal.entries).toEqual([
      'start:out-a',
      'start:out-b',
      'start:delivery',
      'start:in-a',
      'start:in-b',
      'stop:in-b',
      'stop:in-a',
      'stop:delivery',
      'stop:out-b',
      'stop:out-a',
    ]);
    expect(status.list().every((s) => s.state === 'stopped')).toBe(true);
  });

  it('rolls back a partial start in reverse order and reports which unit failed', async () => {
    const { host, status } = await hostFor(`
inbound:
  - {id: in-a, connector: test-inbound}
  - {id: in-b, connector: test-inbound, config: {fail_start: true}}
outbound:
  - {id: out-a, connector: test-outbound}
`);
    const error = await host.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).unitId).toBe('in-b');
    expect(journal.entries).toEqual([
      'start:out-a',
      'start:in-a',
      'start:in-b',
      'stop:in-b',
      'stop:in-a',
      'stop:out-a',
    ]);
    expect(status.get('in-b')?.state).toBe('stopped');
    expect(status.get('in-b')?.lastError).toMatch(/in-b cannot start/);
  });

  it('a connector whose create() throws is named by its place in the config and its id; nothing starts', async () => {
    const { host } = await hostFor(`
inbound:
  - {id: in-a, connector: test-inbound}
  - {id: in-b, connector: test-inbound, config: {fail_create: true}}
`);
    const error = await host.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StartupError);
    expect((error as StartupError).message).toBe(
      'inbound[1] (in-b) failed to start: timeoutMs must be a positive number (got 0)',
    );
    expect(journal.entries).toEqual([]);
  });

  it('a failing core service stops the outbound connectors already started', async () => {
    const { host } = await hostFor(TWO_OF_EACH, [{ name: 'delivery', fail: true }]);
    await expect(host.start()).rejects.toThrow(/delivery failed to start: delivery broke/);
    expect(journal.entries).toEqual([
      'start:out-a',
      'start:out-b',
      'start:delivery',
      'stop:delivery',
      'stop:out-b',
      'stop:out-a',
    ]);
  });

  it('stop without start does nothing and double stop is harmless', async () => {
    const { host } = await hostFor(TWO_OF_EACH);
    await host.stop();
    await host.stop();
    expect(journal.entries).toEqual([]);
    const second = await hostFor(TWO_OF_EACH);
    await second.host.start();
    await Promise.all([second.host.stop(), second.host.stop()]);
    await second.host.stop();
    expect(journal.entries.filter((e) => e.startsWith('stop:'))).toHaveLength(4);
  });

  it('a stop that comes while the host is starting stops what started and starts nothing more', async () => {
    const { host, status } = await hostFor(
      `
inbound:
  - {id: in-a, connector: test-inbound}
outbound:
  - {id: out-a, connector: test-outbound, config: {start_delay_ms: 100}}
`,
      [{ name: 'delivery' }],
    );
    const starting = host.start();
    await expect.poll(() => journal.entries).toEqual(['start:out-a']);
    // SIGTERM while an outbound connector is still starting (a slow token endpoint, say).
    await host.stop();
    await starting;
    expect(journal.entries).toEqual(['start:out-a', 'stop:out-a']);
    expect(host.state).toBe('stopped');
    expect(host.inbound('in-a')).toBeUndefined();
    expect(status.get('in-a')?.state).toBe('stopped');
  });

  it('a stop whose deadline passes while a unit is still starting returns; that unit is stopped once it has started', async () => {
    const { host } = await hostFor(`
inbound:
  - {id: in-a, connector: test-inbound}
outbound:
  - {id: out-a, connector: test-outbound, config: {start_delay_ms: 300}}
`);
    const starting = host.start();
    await expect.poll(() => journal.entries).toEqual(['start:out-a']);
    const t0 = Date.now();
    await host.stop(50);
    expect(Date.now() - t0).toBeLessThan(250);
    await starting;
    expect(journal.entries).toEqual(['start:out-a', 'stop:out-a']);
  });

  it('disabled instances are validated but never started', async () => {
    const { host, status } = await hostFor(`
outbound:
  - {id: out-a, connector: test-outbound, enabled: false}
  - {id: out-b, connector: test-outbound}
`);
    await host.start();
    await host.stop();
    expect(journal.entries).toEqual(['start:out-b', 'stop:out-b']);
    expect(status.get('out-a')).toBeUndefined();
  });

  it('routes webhooks only to running inbound instances', async () => {
    const { host } = await hostFor(TWO_OF_EACH);
    expect(host.inbound('in-a')).toBeUndefined();
    await host.start();
    expect(host.inbound('in-a')?.handleWebhook).toBeTypeOf('function');
    expect(host.inbound('out-a')).toBeUndefined();
    await host.stop();
    expect(host.inbound('in-a')).toBeUndefined();
  });
});
