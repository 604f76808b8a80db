import { createServer, connect } from 'node:net';
import { runConnectorConformance, type KitInstance } from '../../core/plugin-api/testing/index.ts';
import { syslogCef } from './index.ts';

/** A free loopback port for the instances the kit starts one after another. */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

const port = await freePort();

/** Messages the instance has handled so far, by outcome. */
async function handled(instance: KitInstance): Promise<Record<string, number>> {
  const metrics = (await instance.metrics.registry.getMetricsAsJSON()) as unknown as Array<{
    name: string;
    values: Array<{ value: number; labels: Record<string, string> }>;
  }>;
  const out: Record<string, number> = { total: 0 };
  for (const v of metrics.find((m) => m.name.endsWith('syslog_cef_lines_total'))?.values ?? []) {
    const outcome = String(v.labels.outcome);
    out[outcome] = (out[outcome] ?? 0) + v.value;
    out.total = (out.total ?? 0) + v.value;
  }
  return out;
}

async function until<T>(probe: () => Promise<T | undefined> | T | undefined, what: string): Promise<T> {
  const started = Date.now();
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() - started > 5_000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sends one line over TCP as a syslog sender does and reports how the instance handled it. */
async function send(input: unknown, instance: KitInstance): Promise<number> {
  const before = await handled(instance);
  const attempts = instance.sink.attempts.length;
  await new Promise<void>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => socket.end(`${String(input)}\n`));
    socket.on('error', reject);
    socket.on('close', () => resolve());
  });
  const after = await until(async () => {
    const now = await handled(instance);
    return (now.total ?? 0) > (before.total ?? 0) ? now : undefined;
  }, 'the line to be handled');
  const grew = (outcome: string) => (after[outcome] ?? 0) > (before[outcome] ?? 0);
  if (grew('malformed') || grew('unmapped')) return 400;
  if (!grew('mapped')) return 202;
  const settled = await until(
    () => instance.sink.attempts.slice(attempts).find((a) => a.outcome !== 'pending'),
    'its events to be persisted or refused',
  );
  return settled.outcome === 'persisted' ? 202 : settled.outcome === 'failed' ? 503 : 400;
}

const rules = syslogCef.examples?.flatMap((e) => e.config.rules as unknown[]) ?? [];

runConnectorConformance(syslogCef, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: { tcp_port: port, rules },
  invalidConfigs: [
    { config: { rules }, error: 'set udp_port, tcp_port or both' },
    { config: { tcp_port: 70_000, rules }, error: 'tcp_port' },
    {
      config: {
        tcp_port: port,
        rules: [{ name: 'r', match: 'cef.severity = ', event_type: 'caep.session-revoked', subject: 'x' }],
      },
      error: 'invalid JSONata',
    },
  ],
  stream: { send },
  metrics: [
    {
      name: 'syslog_cef_lines_total',
      labels: { outcome: 'mapped' },
      value: (t) => t.accepted - t.ignored,
    },
    { name: 'syslog_cef_lines_total', labels: { outcome: 'ignored' }, value: (t) => t.ignored },
    { name: 'syslog_cef_lines_total', labels: { outcome: 'malformed' }, value: (t) => t.rejected },
    { name: 'syslog_cef_events_total', labels: { outcome: 'persisted' }, value: (t) => t.events },
  ],
});
