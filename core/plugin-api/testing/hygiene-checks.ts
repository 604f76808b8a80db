/** Secrets never leak, and the connector's counters count the traffic the kit sent. */
import { z } from 'zod';
import { fail, type SuiteContext } from './context.ts';
import { within, type KitInstance } from './harness.ts';
import { noteCheck, startWithin, stopWithin } from './lifecycle-checks.ts';
import { deliverOnce } from './outbound-checks.ts';
import { isSecretField, schemaFields, valueAt, type JsonSchema } from './schema-walk.ts';
import { driveTraffic, driveWebhook } from './traffic.ts';

const CONNECTOR_METRIC_PREFIX = 'ssf_bridge_connector_';

/**
 * Config keys whose values are credentials, whatever the schema says of them: `api_key`,
 * `authorization`, `token(s)`, `password`, `client_secret`, `connection_string`, `access_key_id` …
 * Every string under such a key (in arrays and nested objects too) is one, but for the keys
 * below, which name what a credential is rather than hold it.
 */
const CREDENTIAL_KEY =
  /(secret|token|password|passwd|passphrase|credential|private_?key|api_?key|hmac|signing_?key|(^|_)key|[a-z]Key|authorization|connection_?string|access_?key_?id)s?$/i;
const NAMES_A_CREDENTIAL =
  /^(type|kind|name|label|description|header|header_name|scheme|algorithm|alg|format|id|kid|key_id|url|uri|endpoint|issuer|audience|username|user|email|client_id|scope|scopes)$/i;
/** Shorter strings are too common to be found only where a credential leaked. */
const MIN_CREDENTIAL_LENGTH = 6;

/** Strings of the config as written under credential-like keys, with their path. */
function credentialLikeValues(ctx: SuiteContext): Array<{ field: string; value: string }> {
  const exempt = Object.keys(ctx.options.notSecret ?? {});
  const isExempt = (path: string) => {
    const general = path.replace(/\[\d+\]/g, '[]');
    return exempt.some((e) => e === path || e === general || e === general.replace(/\[\]/g, ''));
  };
  const found: Array<{ field: string; value: string }> = [];
  const walk = (value: unknown, path: string, key: string, credential: boolean): void => {
    if (typeof value === 'string') {
      if (
        credential &&
        !NAMES_A_CREDENTIAL.test(key) &&
        value.length >= MIN_CREDENTIAL_LENGTH &&
        !value.startsWith('${') &&
        !isExempt(path)
      )
        found.push({ field: path, value });
    } else if (Array.isArray(value)) {
      value.forEach((item, i) => walk(item, `${path}[${i}]`, key, credential));
    } else if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) {
        walk(v, path ? `${path}.${k}` : k, k, credential || CREDENTIAL_KEY.test(k));
      }
    }
  };
  walk(ctx.rawConfig(), '', '', false);
  return found;
}

/**
 * Raw values of every secret field in the valid config (as written and as validated), and of
 * every string under a key that names a credential, declared secret or not.
 */
function secretValues(ctx: SuiteContext): Array<{ field: string; value: string }> {
  const json = z.toJSONSchema(ctx.definition.configSchema, { io: 'input' }) as JsonSchema;
  const raw = ctx.rawConfig();
  const found = ctx.secrets();
  for (const field of schemaFields(json).filter((f) => isSecretField(f.schema))) {
    const value = valueAt(raw, field.path);
    if (typeof value === 'string' && value.length >= 4) found.push({ field: field.path, value });
  }
  found.push(...credentialLikeValues(ctx));
  const unique = new Map<string, { field: string; value: string }>();
  for (const s of found) if (!unique.has(s.value)) unique.set(s.value, s);
  return [...unique.values()];
}

/** A target refusing the credentials, as most failures an operator sees begin. */
const REFUSED = { status: 401, body: { error: 'invalid_token' } };

/**
 * The failures a connector reports in words: check() against a healthy target and one refusing
 * the credentials (its message is shown to operators), then a poll or a delivery the target
 * refuses (the scheduler and the delivery engine log what it throws). All of it is noted.
 */
async function driveFailures(ctx: SuiteContext): Promise<KitInstance> {
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
  return instance;
}

export async function secretsNotLogged(ctx: SuiteContext): Promise<void> {
  const { instance: traffic } = await driveTraffic(ctx);
  const failed = await driveFailures(ctx);
  const webhook = (await driveWebhook(ctx))?.instance;
  const secrets = secretValues(ctx);
  // What the connector handed to ctx.emit(), stored or not: SETs carry it to every receiver.
  const emitted = [traffic, failed, webhook]
    .flatMap((i) => i?.sink.attempts ?? [])
    .flatMap((a) => a.events)
    .map((e) => JSON.stringify(e));
  const problems: string[] = [];
  for (const { field, value } of secrets) {
    const hits = ctx.capture.lines.filter((line) => line.includes(value)).length;
    if (hits > 0)
      problems.push(`the value of ${field} appears in ${hits} log line(s), output(s) or error message(s)`);
    const inEvents = emitted.filter((e) => e.includes(value)).length;
    if (inEvents > 0) {
      problems.push(
        `the value of ${field} appears in ${inEvents} event(s) handed to ctx.emit(): it would be signed ` +
          'into SETs and sent to every receiver',
      );
    }
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
  const { instance, traffic } = await driveTraffic(ctx, { fresh: true });
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
