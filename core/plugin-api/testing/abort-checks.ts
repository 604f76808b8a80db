/**
 * delivery.abort-signal: the signal a call is given ends it. The delivery engine aborts the
 * signal of deliver() when an attempt times out and then retries, and the scheduler aborts a
 * run's signal when the run exceeds its timeout; neither stops the instance. A connector that
 * waits for its own deadline instead (or only for the instance's signal, ctx.signal) sends the
 * retry beside the attempt still in flight, or runs two polls at once.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { fail, type SuiteContext } from './context.ts';
import { within, type KitInstance } from './harness.ts';
import { startWithin, stopWithin } from './lifecycle-checks.ts';
import { deliverOnce } from './outbound-checks.ts';

/** How long a call may take to settle once its signal is aborted. */
export const ABORT_SETTLE_MS = 200;
/**
 * The deadline requests get in this case: far longer than ABORT_SETTLE_MS, so a connector that
 * ends only at its request deadline cannot pass by it.
 */
const ABORT_CASE_REQUEST_TIMEOUT_MS = 5_000;
/** The first, warm-up call against the answering target. */
const WARM_UP_BUDGET_MS = 10_000;
/** How long the kit waits for the call's first request to reach the hanging target. */
const FIRST_REQUEST_WAIT_MS = 3_000;

async function requestArrived(ctx: SuiteContext, before: number): Promise<boolean> {
  const until = performance.now() + FIRST_REQUEST_WAIT_MS;
  while (ctx.server.requests.length <= before) {
    if (performance.now() > until) return false;
    await delay(5);
  }
  return true;
}

/**
 * Waits until `work` has a request in flight at the hanging target, aborts only `controller`
 * (the instance keeps running) and expects `work` to settle within ABORT_SETTLE_MS.
 */
async function settlesOnAbort(
  ctx: SuiteContext,
  instance: KitInstance,
  call: (signal: AbortSignal) => Promise<unknown>,
  what: string,
  why: string,
): Promise<void> {
  const before = ctx.server.requests.length;
  const controller = new AbortController();
  const work = call(controller.signal);
  // Whatever the work does, it never fails the test from outside the case.
  work.catch(() => undefined);
  if (!(await requestArrived(ctx, before))) {
    fail(
      `${what} sent no request within ${FIRST_REQUEST_WAIT_MS} ms; options.validConfig must point the connector at the mock server`,
    );
  }
  controller.abort(new Error('the conformance kit aborted the signal of this call'));
  const outcome = await within(work, ABORT_SETTLE_MS);
  if (instance.abort.signal.aborted) fail('the instance signal was aborted during the case (a kit bug)');
  if (!outcome.settled) {
    fail(
      `${what} did not settle within ${ABORT_SETTLE_MS} ms after the signal it was given was aborted, with ` +
        `the instance still running: ${why}. Pass that signal to every request (the signal option of ` +
        'ctx.http requests) and to every wait, not only ctx.signal',
    );
  }
  // Ends the request left hanging, so the next call starts afresh.
  ctx.server.override(undefined);
}

/** A poll run whose signal is aborted mid-request ends at once. */
export async function pollAbortSignal(ctx: SuiteContext): Promise<void> {
  const poll = ctx.options.poll;
  if (!poll) fail('a polling connector gives options.poll.serve(server, records), serving its vendor API');
  ctx.resetServer();
  poll.serve(ctx.server, []);
  const instance = ctx.instance({ requestTimeoutMs: ABORT_CASE_REQUEST_TIMEOUT_MS });
  await startWithin(instance);
  const why =
    'the scheduler aborts a run that exceeds its timeout, and a run that goes on overlaps the next one';
  const run = (signal: AbortSignal) =>
    instance.runTask(ABORT_CASE_REQUEST_TIMEOUT_MS * 2, poll.task, { signal });
  // Cold, the request left hanging may be an access-token or session request ctx.http shares
  // between calls; warmed up, it is the connector's own.
  ctx.server.override('hang');
  await settlesOnAbort(ctx, instance, run, 'a first poll', why);
  await instance.runTask(WARM_UP_BUDGET_MS, poll.task);
  ctx.server.override('hang');
  await settlesOnAbort(ctx, instance, run, 'a poll', why);
  await stopWithin(ctx, instance, 'after the aborted polls');
}

/** deliver() whose signal is aborted mid-request ends at once. */
export async function deliverAbortSignal(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const instance = ctx.instance({ requestTimeoutMs: ABORT_CASE_REQUEST_TIMEOUT_MS });
  await startWithin(instance);
  const why =
    'the delivery engine aborts it when an attempt times out and then retries, so a delivery that goes on ' +
    'sends the same SET twice at once';
  // As for polls: cold first (a token or session request may be the one left hanging), then warm.
  const cold = await ctx.set(instance);
  instance.nextRun();
  ctx.server.override('hang');
  await settlesOnAbort(
    ctx,
    instance,
    (signal) => instance.outbound.deliver(cold, signal),
    'a first deliver()',
    why,
  );
  await deliverOnce(ctx, instance, 'kit-record-warm-up');
  const set = await ctx.set(instance);
  instance.nextRun();
  ctx.server.override('hang');
  await settlesOnAbort(ctx, instance, (signal) => instance.outbound.deliver(set, signal), 'deliver()', why);
  await stopWithin(ctx, instance, 'after the aborted deliveries');
}
