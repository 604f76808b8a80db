/** Secrets never leak, and the connector's counters count the traffic the kit sent. */
import { z } from 'zod';
import { fail, type SuiteContext } from './context.ts';
import { expectsIgnored, expectsRejected, type Fixture } from './fixtures.ts';
import { within, type KitInstance } from './harness.ts';
import { noteCheck, startWithin, stopWithin } from './lifecycle-checks.ts';
import { deliverOnce } from './outbound-checks.ts';
import type { Traffic } from './options.ts';
import { isSecretField, schemaFields, valueAt, type JsonSchema } from './schema-walk.ts';

const CONNECTOR_METRIC_PREFIX = 'ssf_bridge_connector_';

function emptyTraffic(): Traffic {
  return { records: 0, accepted: 0, rejected: 0, ignored: 0, events: 0, delivered: 0, failed: 0 };
}

async function outboundTraffic(ctx: SuiteContext, instance: KitInstance, traffic: Traffic): Promise<void> {
  for (const id of ['kit-record-1', 'kit-record-2']) {
    if ((await deliverOnce(ctx, instance, id)).ok) traffic.delivered += 1;
  }
  if (!ctx.networked) return;
  ctx.server.override({ status: 500, body: { error: 'kit' } });
  if (!(await deliverOnce(ctx, instance, 'kit-record-3')).ok) traffic.failed += 1;
  ctx.server.override(undefined);
}

async function inboundTraffic(ctx: SuiteContext, instance: KitInstance, traffic: Traffic): Promise<void> {
  const { fixtures } = ctx.fixtures();
  if (ctx.manifest.capabilities.poll && ctx.options.poll) {
    const served = servedToPoll(ctx);
    traffic.records = served.length;
    traffic.rejected = served.filter(expectsRejected).length;
    traffic.ignored = served.filter(expectsIgnored).length;
    await instance.runTask(10_000, ctx.options.poll.task);
  } else {
    for (const fixture of fixtures) {
      const response = await ctx.webhook(instance, fixture.input);
      traffic.records += 1;
      if (response.status >= 200 && response.status < 300) traffic.accepted += 1;
      else if (response.status >= 400 && response.status < 500) traffic.rejected += 1;
      if (expectsIgnored(fixture)) traffic.ignored += 1;
    }
  }
  traffic.events = instance.sink.persisted.size;
}

/**
 * The fixtures one poll is served: malformed ones too (a poll logs and skips them), unless the
 * manifest skips delivery.skips-malformed because its fake API cannot serve them.
 */
function servedToPoll(ctx: SuiteContext): Fixture[] {
  const { fixtures } = ctx.fixtures();
  const skipped = ctx.manifest.conformance?.skip?.['delivery.skips-malformed'] !== undefined;
  return skipped ? fixtures.filter((f) => !expectsRejected(f)) : fixtures;
}

/**
 * Sends a known amount of traffic through a fresh instance: two deliveries and one failure for
 * outbound connectors; every fixture, malformed ones included (as webhook bodies, or served to one
 * poll), for inbound ones.
 */
export async function driveTraffic(ctx: SuiteContext): Promise<{ instance: KitInstance; traffic: Traffic }> {
  ctx.resetServer();
  if (ctx.manifest.capabilities.poll && ctx.options.poll) {
    ctx.options.poll.serve(
      ctx.server,
      servedToPoll(ctx).map((f) => f.input),
    );
  }
  const instance = ctx.instance();
  await startWithin(instance);
  const traffic = emptyTraffic();
  if (ctx.definition.kind === 'outbound') await outboundTraffic(ctx, instance, traffic);
  else await inboundTraffic(ctx, instance, traffic);
  await stopWithin(ctx, instance, 'after the traffic');
  return { instance, traffic };
}

/** Raw values of every secret field in the valid config (as written and as validated). */
function secretValues(ctx: SuiteContext): Array<{ field: string; value: string }> {
  const json = z.toJSONSchema(ctx.definition.configSchema, { io: 'input' }) as JsonSchema;
  const raw = ctx.rawConfig();
  const found = ctx.secrets();
  for (const field of schemaFields(json).filter((f) => isSecretField(f.schema))) {
    const value = valueAt(raw, field.path);
    if (typeof value === 'string' && value.length >= 4) found.push({ field: field.path, value });
  }
  const unique = new Map(found.map((s) => [s.value, s]));
  return [...unique.values()];
}

/** A target refusing the credentials, as most failures an operator sees begin. */
const REFUSED = { status: 401, body: { error: 'invalid_token' } };

/**
 * The failures a connector reports in words: check() against a healthy target and one refusing
 * the credentials (its message is shown to operators), then a poll or a delivery the target
 * refuses (the scheduler and the delivery engine log what it throws). All of it is noted.
 */
async function driveFailures(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const polls = Boolean(ctx.manifest.capabilities.poll && ctx.options.poll);
  if (polls) ctx.options.poll?.serve(ctx.server, []);
  const instance = ctx.instance();
  await startWithin(instance);
  const check = instance.connector.check;
  if (typeof check === 'function') {
    for (const answer of ctx.networked ? [undefined, REFUSED] : [undefined]) {
      ctx.server.override(answer);
      noteCheck(ctx, await within(check.call(instance.connector, instance.abort.signal), 3_000));
    }
  }
  if (ctx.networked) {
    ctx.server.override(REFUSED);
    if (polls) await instance.runTask(10_000, ctx.options.poll?.task);
    else if (ctx.definition.kind === 'outbound') await deliverOnce(ctx, instance, 'kit-record-4');
  }
  ctx.server.override(undefined);
  await stopWithin(ctx, instance, 'after the refused requests');
}

export async function secretsNotLogged(ctx: SuiteContext): Promise<void> {
  await driveTraffic(ctx);
  await driveFailures(ctx);
  const secrets = secretValues(ctx);
  const problems: string[] = [];
  for (const { field, value } of secrets) {
    const hits = ctx.capture.lines.filter((line) => line.includes(value)).length;
    if (hits > 0)
      problems.push(`the value of ${field} appears in ${hits} log line(s), output(s) or error message(s)`);
  }
  if (problems.length > 0) {
    fail(
      `${problems.join('\n')}\nlog the field name, never the value; keep credentials as Secret and reveal() them only into a request`,
    );
  }
}

interface MetricJson {
  name: string;
  type: string;
  values: Array<{ labels: Record<string, string | number>; value: number }>;
}

export async function countersMatch(ctx: SuiteContext): Promise<void> {
  const { instance, traffic } = await driveTraffic(ctx);
  const metrics = (await instance.metrics.registry.getMetricsAsJSON()) as unknown as MetricJson[];
  const counters = metrics.filter((m) => m.type === 'counter' && m.name.startsWith(CONNECTOR_METRIC_PREFIX));
  const expectations = ctx.options.metrics ?? [];
  const full = (name: string) =>
    name.startsWith(CONNECTOR_METRIC_PREFIX) ? name : `${CONNECTOR_METRIC_PREFIX}${name}`;
  const problems: string[] = [];
  for (const counter of counters) {
    if (!expectations.some((e) => full(e.name) === counter.name)) {
      problems.push(
        `${counter.name.slice(CONNECTOR_METRIC_PREFIX.length)} has no expectation: say what it counts in options.metrics`,
      );
    }
  }
  for (const expectation of expectations) {
    const metric = counters.find((m) => m.name === full(expectation.name));
    const labels = expectation.labels ?? {};
    const shown = `${expectation.name}${Object.keys(labels).length ? JSON.stringify(labels) : ''}`;
    if (!metric) {
      problems.push(`${shown}: the connector registered no such counter`);
      continue;
    }
    const actual = metric.values
      .filter((v) => Object.entries(labels).every(([k, want]) => String(v.labels[k]) === want))
      .reduce((sum, v) => sum + v.value, 0);
    const wanted = expectation.value(traffic);
    if (actual !== wanted)
      problems.push(`${shown} is ${actual}, expected ${wanted} for traffic ${JSON.stringify(traffic)}`);
  }
  if (problems.length > 0) fail(problems.join('\n'));
}
