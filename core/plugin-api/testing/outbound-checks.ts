/** Outbound cases: delivery, classification of error answers, deadlines, local destinations. */
import { classOf, isBridgeError, type PermanentError } from '../errors.ts';
import { fail, type SuiteContext } from './context.ts';
import { KIT_MARKER_HEADER, KIT_REQUEST_TIMEOUT_MS, within, type KitInstance } from './harness.ts';
import { guardNetwork } from './network-guard.ts';
import { DEFAULT_ERROR_RESPONSES, type ErrorResponseCase } from './options.ts';
import { startWithin, stopWithin } from './lifecycle-checks.ts';

const DELIVER_BUDGET_MS = 10_000;

export async function deliverOnce(ctx: SuiteContext, instance: KitInstance, recordId?: string) {
  const set = await ctx.set(instance, recordId);
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
  await stopWithin(ctx, instance, 'after delivering');
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
  ctx.resetServer();
  const instance = ctx.instance();
  await startWithin(instance);
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
  await stopWithin(ctx, instance, 'after the hanging target');
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
