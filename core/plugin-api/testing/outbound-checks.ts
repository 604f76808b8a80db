/** Outbound cases: delivery, classification of error answers, deadlines, local destinations. */
import { classOf, isBridgeError, type PermanentError } from '../errors.ts';
import type { EventDraft } from '../types.ts';
import { z } from 'zod';
import { fail, type SuiteContext } from './context.ts';
import { sampleDrafts } from './events.ts';
import { KIT_MARKER_HEADER, KIT_REQUEST_TIMEOUT_MS, within, type KitInstance } from './harness.ts';
import { guardNetwork } from './network-guard.ts';
import { DEFAULT_ERROR_RESPONSES, type ErrorResponseCase } from './options.ts';
import { startWithin, stopWithin } from './lifecycle-checks.ts';
import { schemaFields, valueAt, type JsonSchema } from './schema-walk.ts';
import { requestedTimeoutProblems, timeoutPlan } from './timeouts.ts';

const DELIVER_BUDGET_MS = 10_000;

export async function deliverOnce(
  ctx: SuiteContext,
  instance: KitInstance,
  recordId?: string,
  draft?: EventDraft,
) {
  const set = await ctx.set(instance, recordId, draft);
  instance.nextRun();
  const controller = new AbortController();
  const outcome = await within(instance.outbound.deliver(set, controller.signal), DELIVER_BUDGET_MS);
  controller.abort();
  if (!outcome.ok && outcome.error !== undefined) {
    ctx.capture.note(outcome.error instanceof Error ? outcome.error.message : String(outcome.error));
  }
  return outcome;
}

export async function deliver(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const instance = ctx.instance();
  await startWithin(instance);
  const outcome = await deliverOnce(ctx, instance);
  if (!outcome.settled)
    fail(`deliver() did not finish within ${DELIVER_BUDGET_MS} ms against a target that accepts`);
  if (!outcome.ok)
    fail(`deliver() failed against a target that accepts: ${(outcome.error as Error)?.message}`);
  if (typeof outcome.value !== 'object' || outcome.value === null)
    fail('deliver() must resolve to a receipt object');
  if (ctx.networked && ctx.server.requests.length === 0) {
    fail(
      'deliver() resolved but no request reached the target; options.validConfig must point the connector at the mock server',
    );
  }
  const problems = await everyAcceptedType(ctx, instance);
  await stopWithin(ctx, instance, 'after delivering');
  if (problems.length > 0) {
    fail(
      `${problems.join('\n')}\nevery type manifest.accepts lists must be delivered: act on it, or take it ` +
        "out of accepts (the delivery engine then never routes it here); a type refused by an operator's " +
        'choice names the boolean config field that turns it on (`delete_on_purge is off`); where the ' +
        'sample the kit builds does not fit the target (claims, subject), give an event of that type in ' +
        'options.outbound.events',
    );
  }
}

/**
 * One SET of every type the manifest accepts (a sample of every standard type for `["*"]`),
 * each delivered against a target that accepts: a declared type the connector refuses (a
 * PermanentError "does not act on …") would dead-letter every such event the bridge routes here.
 * The one refusal allowed is an operator's choice the config documents: a PermanentError naming
 * a boolean config field (`delete_on_purge is off`), with which turned the other way the type is
 * delivered.
 */
async function everyAcceptedType(ctx: SuiteContext, instance: KitInstance): Promise<string[]> {
  const outbound = ctx.options.outbound ?? {};
  const given = [...(outbound.events ?? []), ...(outbound.event ? [outbound.event] : [])];
  const problems: string[] = [];
  const samples = sampleDrafts(ctx.manifest.accepts, given, outbound.event ?? outbound.events?.[0]);
  for (const [i, { type, draft }] of samples.entries()) {
    if (!draft) {
      problems.push(
        `${type}: the kit cannot build an event of this type; give one in options.outbound.events`,
      );
      continue;
    }
    const failure = await deliveryFailure(ctx, instance, draft, `kit-record-type-${i + 1}`);
    if (failure === undefined) continue;
    const switches = failure.permanent ? namedSwitches(ctx, failure.message) : [];
    if (switches.length === 0) {
      problems.push(`${type}: ${failure.message}`);
      continue;
    }
    // The refusal names config switches: with them turned, the type is delivered.
    const turned = await withSwitchesTurned(ctx, switches, draft, `kit-record-type-${i + 1}`);
    if (turned !== undefined) problems.push(`${type}: ${failure.message}; with ${turned}`);
  }
  return problems;
}

/** Why delivering `draft` failed against a target that accepts, or undefined when it was delivered. */
async function deliveryFailure(
  ctx: SuiteContext,
  instance: KitInstance,
  draft: EventDraft,
  recordId: string,
): Promise<{ message: string; permanent: boolean } | undefined> {
  let outcome: Awaited<ReturnType<typeof deliverOnce>>;
  try {
    outcome = await deliverOnce(ctx, instance, recordId, draft);
  } catch (err) {
    // prepare() refused the event before any SET was built.
    return { message: `prepare() failed: ${describe(err)}`, permanent: classOf(err) === 'permanent' };
  }
  if (!outcome.settled)
    return { message: `deliver() did not finish within ${DELIVER_BUDGET_MS} ms`, permanent: false };
  if (outcome.ok) return undefined;
  return {
    message: `deliver() failed against a target that accepts: ${describe(outcome.error)}`,
    permanent: classOf(outcome.error) === 'permanent' && !(outcome.error as PermanentError).authFailure,
  };
}

/** Boolean config fields a refusal names (`delete_on_purge is off`), with their value now. */
function namedSwitches(ctx: SuiteContext, message: string): Array<{ path: string; value: boolean }> {
  let json: JsonSchema;
  try {
    json = z.toJSONSchema(ctx.definition.configSchema, { io: 'input' }) as JsonSchema;
  } catch {
    return [];
  }
  const parsed = ctx.parsedConfig();
  return schemaFields(json)
    .filter((f) => f.schema.type === 'boolean' && !f.path.includes('[]'))
    .filter((f) => {
      const name = f.path.split('.').at(-1)!;
      const named = (text: string) => new RegExp(`(^|[^\\w.])${text.replace(/\./g, '\\.')}\\b`).test(message);
      return named(f.path) || (name.includes('_') && named(name));
    })
    .map((f) => ({ path: f.path, value: valueAt(parsed, f.path) === true }));
}

/** Sets `path` (dotted) of a plain config object to `value`, copying the objects on the way. */
function withValue(config: unknown, path: string, value: unknown): unknown {
  const [head, ...rest] = path.split('.');
  const object = config && typeof config === 'object' && !Array.isArray(config) ? config : {};
  return {
    ...object,
    [head!]:
      rest.length === 0
        ? value
        : withValue((object as Record<string, unknown>)[head!], rest.join('.'), value),
  };
}

/**
 * Delivers `draft` through a fresh instance whose config has `switches` turned the other way;
 * undefined when it was delivered, else what happened (for the message).
 */
async function withSwitchesTurned(
  ctx: SuiteContext,
  switches: Array<{ path: string; value: boolean }>,
  draft: EventDraft,
  recordId: string,
): Promise<string | undefined> {
  const shown = switches.map((s) => `${s.path}: ${!s.value}`).join(', ');
  const raw = switches.reduce((config, s) => withValue(config, s.path, !s.value), ctx.rawConfig());
  const parsed = ctx.definition.configSchema.safeParse(raw);
  if (!parsed.success) return `${shown} the config does not validate`;
  const turned = ctx.instance({ config: parsed.data });
  await startWithin(turned);
  const failure = await deliveryFailure(ctx, turned, draft, recordId);
  await stopWithin(ctx, turned, `after delivering with ${shown}`);
  return failure === undefined ? undefined : `${shown} it still fails: ${failure.message}`;
}

function describe(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

function classified(err: unknown): ErrorResponseCase['expect'] | 'unclassified' {
  if (!isBridgeError(err)) return 'unclassified';
  if (err.errorClass === 'permanent')
    return (err as PermanentError).authFailure ? 'credentials' : 'permanent';
  return classOf(err) === 'retryable' ? 'retryable' : 'unclassified';
}

export async function classification(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const instance = ctx.instance();
  await startWithin(instance);
  const problems: string[] = [];
  for (const response of ctx.options.outbound?.errorResponses ?? DEFAULT_ERROR_RESPONSES) {
    ctx.server.override({
      status: response.status,
      headers: response.headers ?? {},
      body: response.body ?? { error: 'kit' },
    });
    const outcome = await deliverOnce(ctx, instance);
    const label = `answer ${response.status}`;
    if (!outcome.settled) problems.push(`${label}: deliver() did not finish within ${DELIVER_BUDGET_MS} ms`);
    else if (outcome.ok) problems.push(`${label}: deliver() resolved as if the SET was delivered`);
    else {
      const got = classified(outcome.error);
      if (got !== response.expect) {
        const err = outcome.error as Error;
        problems.push(`${label}: expected ${response.expect}, got ${got} (${err?.name}: ${err?.message})`);
      } else if (
        response.headers?.['retry-after'] &&
        (outcome.error as { retryAfterMs?: number }).retryAfterMs === undefined
      ) {
        problems.push(`${label}: the Retry-After the target sent was dropped (keep retryAfterMs)`);
      }
    }
  }
  ctx.server.override(undefined);
  await stopWithin(ctx, instance, 'after the error answers');
  if (problems.length > 0) {
    fail(
      `${problems.join('\n')}\nlet ctx.http's classified errors propagate, or throw RetryableError/PermanentError`,
    );
  }
}

export async function outboundRequestTimeout(ctx: SuiteContext): Promise<void> {
  const plan = timeoutPlan(ctx);
  ctx.resetServer();
  const instance = ctx.instance({ config: plan.config });
  await startWithin(instance);
  // A delivery that is answered first, and check(): the deadlines of every request they make are recorded.
  await deliverOnce(ctx, instance, 'kit-record-answered');
  const check = instance.connector.check;
  if (typeof check === 'function') await within(check.call(instance.connector, instance.abort.signal), 3_000);
  ctx.server.override('hang');
  const set = await ctx.set(instance);
  instance.nextRun();
  const budget = KIT_REQUEST_TIMEOUT_MS + 1_500;
  const outcome = await within(instance.outbound.deliver(set, new AbortController().signal), budget);
  ctx.server.override(undefined);
  if (!outcome.settled) {
    fail(
      `deliver() did not finish within ${budget} ms against a target that never answers: a request has no deadline (make requests through ctx.http)`,
    );
  }
  if (outcome.ok) fail('deliver() resolved although the target never answered');
  if (classOf(outcome.error) !== 'retryable') {
    fail(
      `a timed-out delivery must be retryable; got ${(outcome.error as Error)?.name}: ${(outcome.error as Error)?.message}`,
    );
  }
  const unmarked = ctx.unmarkedRequests(KIT_MARKER_HEADER);
  if (unmarked.length > 0) {
    fail(
      `${unmarked.length} request(s) did not go through ctx.http (e.g. ${unmarked[0]?.method} ${unmarked[0]?.path}) and have no enforced deadline`,
    );
  }
  const problems = requestedTimeoutProblems(instance, plan);
  await stopWithin(ctx, instance, 'after the hanging target');
  if (problems.length > 0) fail(problems.join('\n'));
}

export async function noNetwork(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const guard = guardNetwork();
  try {
    const instance = ctx.instance();
    await startWithin(instance);
    for (const id of ['kit-record-1', 'kit-record-2']) {
      const outcome = await deliverOnce(ctx, instance, id);
      if (!outcome.ok) fail(`deliver() failed: ${(outcome.error as Error)?.message ?? 'no answer'}`);
    }
    await stopWithin(ctx, instance, 'after delivering');
  } finally {
    guard.release();
  }
  if (guard.attempts.length > 0) {
    fail(`a destination declared local (outbound.network: false) connected to ${guard.attempts.join(', ')}`);
  }
}
