/** Lifecycle cases: create is pure, stop is safe in every state and honours its deadline. */
import { setTimeout as delay } from 'node:timers/promises';
import type { CheckResult } from '../types.ts';
import { fail, type SuiteContext } from './context.ts';
import { expectsEvents } from './fixtures.ts';
import { within, type KitInstance, type Settled } from './harness.ts';
import { guardNetwork } from './network-guard.ts';

/** How long the network guard stays up after create() returns, for I/O it started without awaiting. */
const CREATE_WATCH_MS = 40;
/** Slack on top of a deadline for a busy machine; a connector that ignores deadlines takes far longer. */
const SLACK_MS = 1_000;
const START_BUDGET_MS = 5_000;
/** How long work may take to reach the point where it stays in flight. */
const REACH_BUDGET_MS = 5_000;

function describeError(err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

export async function startWithin(instance: KitInstance): Promise<void> {
  const started = await within(instance.start(), START_BUDGET_MS);
  if (!started.settled)
    fail(`start() did not return within ${START_BUDGET_MS} ms; run long work in the background`);
  if (!started.ok) fail(`start() failed: ${describeError(started.error)}`);
}

export async function stopWithin(ctx: SuiteContext, instance: KitInstance, what: string): Promise<void> {
  const deadline = ctx.stopDeadlineMs;
  const stopped = await within(instance.stop(deadline), deadline + SLACK_MS);
  if (!stopped.settled) fail(`${what}: stop(${deadline}) did not settle within its deadline`);
  if (!stopped.ok) fail(`${what}: stop() threw ${describeError(stopped.error)}`);
}

export async function createNoIo(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  ctx.parsedConfig(); // a config problem is reported as such, not as a create() failure
  const guard = guardNetwork();
  let instance: KitInstance | undefined;
  let thrown: unknown;
  try {
    try {
      instance = ctx.instance();
    } catch (err) {
      thrown = err;
    }
    await delay(CREATE_WATCH_MS);
  } finally {
    guard.release();
  }
  const problems: string[] = [];
  if (thrown !== undefined) problems.push(`create() threw with a valid config: ${describeError(thrown)}`);
  for (const target of guard.attempts) problems.push(`create() opened a network connection to ${target}`);
  if (ctx.server.requests.length > 0) problems.push(`create() sent ${ctx.server.requests.length} request(s)`);
  for (const use of instance?.createIo ?? []) problems.push(`create() used ${use}`);
  if (problems.length > 0) {
    fail(`${problems.join('\n')}\ncreate() must be pure: start network, storage and schedules in start()`);
  }
}

export async function stopWithoutStart(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  await stopWithin(ctx, ctx.instance(), 'stop without start');
}

export async function doubleStop(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const instance = ctx.instance();
  await startWithin(instance);
  await stopWithin(ctx, instance, 'first stop');
  await stopWithin(ctx, instance, 'second stop');
}

export async function restart(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const first = ctx.instance();
  await startWithin(first);
  await stopWithin(ctx, first, 'first instance');
  const second = ctx.instance({ checkpoints: first.checkpoints });
  await startWithin(second);
  await stopWithin(ctx, second, 'second instance');
}

/** Starts one unit of work that stays in flight: a hanging request, or a persist held back. */
async function workInFlight(
  ctx: SuiteContext,
  instance: KitInstance,
): Promise<{ work: Promise<unknown>; reached: () => boolean; release(): void }> {
  const caps = ctx.manifest.capabilities;
  const requestsBefore = ctx.server.requests.length;
  const requestArrived = () => ctx.server.requests.length > requestsBefore;
  if (ctx.definition.kind === 'outbound') {
    ctx.server.override('hang');
    const set = await ctx.set(instance);
    instance.nextRun();
    return {
      work: instance.outbound.deliver(set, instance.abort.signal),
      reached: requestArrived,
      release: () => ctx.server.override(undefined),
    };
  }
  if (caps.poll && ctx.options.poll) {
    ctx.options.poll.serve(ctx.server, []);
    ctx.server.override('hang');
    return {
      work: instance.runTask(60_000, ctx.options.poll.task),
      reached: requestArrived,
      release: () => ctx.server.override(undefined),
    };
  }
  const fixture = ctx.fixtures().fixtures.find(expectsEvents);
  const release = instance.sink.hold();
  const attemptsBefore = instance.sink.attempts.length;
  return {
    work: ctx.webhook(instance, fixture?.input ?? {}),
    // Without a fixture that emits, the work in flight is the request itself.
    reached: () => fixture === undefined || instance.sink.attempts.length > attemptsBefore,
    release,
  };
}

/**
 * Waits until the work is where it stays (the request at the server, the persist held) so that
 * stop() meets work in flight however slowly this machine got it there; never longer than a
 * budget, after which stop() meets whatever is in flight then.
 */
async function untilReached(work: Promise<unknown>, reached: () => boolean): Promise<void> {
  let settled = false;
  work.then(
    () => (settled = true),
    () => (settled = true),
  );
  const until = Date.now() + REACH_BUDGET_MS;
  while (!reached() && !settled && Date.now() < until) await delay(5);
}

export async function stopDeadline(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const instance = ctx.instance();
  await startWithin(instance);
  const { work, reached, release } = await workInFlight(ctx, instance);
  // Whatever the work does, it never fails the test from outside the case.
  work.catch(() => undefined);
  await untilReached(work, reached);
  await delay(50);
  try {
    await stopWithin(ctx, instance, 'stop with work in flight');
  } finally {
    release();
  }
  const outcome = await within(work, ctx.stopDeadlineMs + SLACK_MS);
  if (!outcome.settled) {
    fail(
      `work in flight did not end within ${ctx.stopDeadlineMs} ms of stop(): pass the signal you are given ` +
        '(or ctx.signal) to every request and wait',
    );
  }
}

/** What check() told the operator, or threw, is scanned for secrets like a log line. */
export function noteCheck(ctx: SuiteContext, outcome: Settled<CheckResult>): void {
  if (!outcome.settled) return;
  if (!outcome.ok) ctx.capture.noteError(outcome.error);
  else if (typeof outcome.value?.message === 'string') ctx.capture.note(outcome.value.message);
}

export async function checkStructured(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  ctx.options.poll?.serve(ctx.server, []);
  const instance = ctx.instance();
  const check = instance.connector.check;
  if (typeof check !== 'function') fail('capabilities.check is declared but the instance has no check()');
  await startWithin(instance);
  const problems: string[] = [];
  const healthy = await within(check.call(instance.connector, instance.abort.signal), 3_000);
  if (!healthy.settled) problems.push('check() did not answer within 3 s against a healthy target');
  else if (!healthy.ok)
    problems.push(`check() threw against a healthy target: ${describeError(healthy.error)}`);
  else if (healthy.value?.ok !== true)
    problems.push(`check() reported a failure against a healthy target: ${healthy.value?.message ?? ''}`);
  if (ctx.networked) {
    ctx.server.override({ status: 401, body: { error: 'invalid_token' } });
    const refused = await within(check.call(instance.connector, instance.abort.signal), 3_000);
    ctx.server.override(undefined);
    if (!refused.settled)
      problems.push('check() did not answer within 3 s when the credentials were refused');
    else if (!refused.ok)
      problems.push(
        `check() threw when the credentials were refused: ${describeError(refused.error)}; return { ok: false, message }`,
      );
    else if (refused.value?.ok !== false || !refused.value.message) {
      problems.push('check() must report { ok: false, message } when the target refuses the credentials');
    }
  }
  await stopWithin(ctx, instance, 'after check');
  if (problems.length > 0) fail(problems.join('\n'));
}

export async function capabilitiesMatch(ctx: SuiteContext): Promise<void> {
  ctx.resetServer();
  const caps = ctx.manifest.capabilities;
  const instance = ctx.instance();
  await startWithin(instance);
  const problems: string[] = [];
  const hasCheck = typeof instance.connector.check === 'function';
  if (Boolean(caps.check) !== hasCheck) {
    problems.push(
      hasCheck
        ? 'the instance has check(): declare capabilities.check'
        : 'capabilities.check is declared but there is no check()',
    );
  }
  if (ctx.definition.kind === 'inbound') {
    const hasWebhook = typeof instance.inbound.handleWebhook === 'function';
    if (Boolean(caps.webhook) !== hasWebhook) {
      problems.push(
        hasWebhook
          ? 'the instance has handleWebhook(): declare capabilities.webhook'
          : 'capabilities.webhook is declared but there is no handleWebhook()',
      );
    }
    const polls = instance.tasks.length > 0;
    if (Boolean(caps.poll) !== polls) {
      problems.push(
        polls
          ? 'start() schedules tasks: declare capabilities.poll'
          : 'capabilities.poll is declared but start() schedules no task',
      );
    }
    if (!caps.poll && !caps.webhook && !caps.stream)
      problems.push(
        'an inbound connector polls, receives webhooks or listens on its own sockets (capabilities.stream): declare one',
      );
    if (caps.stream && !caps.poll && !caps.webhook && !ctx.options.stream)
      problems.push('a listening connector gives options.stream.send, so the kit can send it records');
    if (caps.poll && !ctx.options.poll)
      problems.push('a polling connector gives options.poll.serve, so the kit can serve it records');
  } else if (caps.poll || caps.webhook || caps.stream) {
    problems.push('outbound connectors neither poll, receive webhooks nor listen');
  }
  await stopWithin(ctx, instance, 'after start');
  if (problems.length > 0) fail(problems.join('\n'));
}
