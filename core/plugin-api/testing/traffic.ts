/**
 * The traffic several cases read: every fixture sent through one fresh instance (served to one
 * poll, or posted to the webhook), and, for a polling connector that also takes webhooks, every
 * fixture posted to its webhook. Each runs once per suite, in the first case that needs it:
 * delivery.stored-as-mapped and hygiene.secrets-not-logged read the same run. metrics.counters
 * drives its own, last: the expectations of options.metrics may read what options.poll.serve
 * was last given.
 */
import type { SuiteContext } from './context.ts';
import { expectsEvents, expectsIgnored, expectsRejected, type Fixture } from './fixtures.ts';
import type { KitInstance } from './harness.ts';
import { startWithin, stopWithin } from './lifecycle-checks.ts';
import type { Traffic } from './options.ts';
import { deliverOnce } from './outbound-checks.ts';

/** One poll of every fixture must finish well within this against the loopback mock. */
const TRAFFIC_POLL_BUDGET_MS = 10_000;

export interface TrafficRun {
  /** The instance the traffic went through, stopped. */
  instance: KitInstance;
  traffic: Traffic;
  /** The fixtures sent: served to the poll, or posted one request each. */
  sent: Fixture[];
  /** How the poll ended, for a polling connector: settled, and what it threw. */
  poll?: { settled: boolean; error?: unknown };
}

/**
 * The fixtures one poll is served: malformed ones too (a poll logs and skips them), unless the
 * manifest skips delivery.skips-malformed because its fake API cannot serve them.
 */
export function servedToPoll(ctx: SuiteContext): Fixture[] {
  const { fixtures } = ctx.fixtures();
  const skipped = ctx.manifest.conformance?.skip?.['delivery.skips-malformed'] !== undefined;
  return skipped ? fixtures.filter((f) => !expectsRejected(f)) : fixtures;
}

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

async function inboundTraffic(ctx: SuiteContext, instance: KitInstance, run: TrafficRun): Promise<void> {
  const { traffic } = run;
  if (ctx.manifest.capabilities.poll && ctx.options.poll) {
    traffic.records = run.sent.length;
    traffic.rejected = run.sent.filter(expectsRejected).length;
    traffic.ignored = run.sent.filter(expectsIgnored).length;
    const outcome = await instance.runTask(TRAFFIC_POLL_BUDGET_MS, ctx.options.poll.task);
    run.poll = {
      settled: outcome.settled,
      ...(outcome.settled && !outcome.ok ? { error: outcome.error } : {}),
    };
  } else {
    for (const fixture of run.sent) {
      const response = await ctx.webhook(instance, fixture.input);
      traffic.records += 1;
      if (response.status >= 200 && response.status < 300) traffic.accepted += 1;
      else if (response.status >= 400 && response.status < 500) traffic.rejected += 1;
      if (expectsIgnored(fixture)) traffic.ignored += 1;
    }
  }
  traffic.events = instance.sink.persisted.size;
}

const runs = new WeakMap<SuiteContext, Map<string, Promise<unknown>>>();

/** Runs `drive` once per suite; later calls get the same run. */
function once<T>(ctx: SuiteContext, key: string, drive: () => Promise<T>): Promise<T> {
  let forSuite = runs.get(ctx);
  if (!forSuite) runs.set(ctx, (forSuite = new Map()));
  let run = forSuite.get(key) as Promise<T> | undefined;
  if (!run) forSuite.set(key, (run = drive()));
  return run;
}

/**
 * A known amount of traffic through a fresh instance: two deliveries and one failure for
 * outbound connectors; every fixture, malformed ones included (as webhook bodies, or served to one
 * poll), for inbound ones.
 */
export function driveTraffic(ctx: SuiteContext, options: { fresh?: boolean } = {}): Promise<TrafficRun> {
  const drive = async () => {
    ctx.resetServer();
    const polls = Boolean(
      ctx.definition.kind === 'inbound' && ctx.manifest.capabilities.poll && ctx.options.poll,
    );
    const sent =
      ctx.definition.kind === 'outbound' ? [] : polls ? servedToPoll(ctx) : ctx.fixtures().fixtures;
    if (polls)
      ctx.options.poll?.serve(
        ctx.server,
        sent.map((f) => f.input),
      );
    const instance = ctx.instance();
    await startWithin(instance);
    const run: TrafficRun = { instance, traffic: emptyTraffic(), sent };
    if (ctx.definition.kind === 'outbound') await outboundTraffic(ctx, instance, run.traffic);
    else await inboundTraffic(ctx, instance, run);
    await stopWithin(ctx, instance, 'after the traffic');
    return run;
  };
  return options.fresh ? drive() : once(ctx, 'traffic', drive);
}

/**
 * The webhook of an inbound connector, beside the traffic: a request without its credentials and
 * one with wrong ones (what a refusal answers, headers included, is scanned for secrets), and,
 * for a connector the traffic drove by polls, every fixture, signed as options.webhook.request
 * signs it, to one fresh instance (the records served for its lookups). Undefined for a
 * connector that takes no webhooks.
 */
export function driveWebhook(
  ctx: SuiteContext,
): Promise<{ instance: KitInstance; sent: Fixture[] } | undefined> {
  return once(ctx, 'webhook', async () => {
    const caps = ctx.manifest.capabilities;
    if (ctx.definition.kind !== 'inbound' || !caps.webhook) return undefined;
    ctx.resetServer();
    const polls = Boolean(caps.poll && ctx.options.poll);
    const { fixtures } = ctx.fixtures();
    if (polls)
      ctx.options.poll?.serve(
        ctx.server,
        fixtures.filter((f) => !expectsRejected(f)).map((f) => f.input),
      );
    const instance = ctx.instance();
    await startWithin(instance);
    const signed = ctx.options.webhook?.request !== undefined;
    const sent = polls && signed ? fixtures : [];
    if (typeof instance.inbound.handleWebhook === 'function') {
      for (const fixture of sent) await ctx.webhook(instance, fixture.input);
      const sample = fixtures.find(expectsEvents) ?? fixtures[0];
      if (sample) {
        await ctx.webhook(instance, sample.input, { credentials: 'none' });
        if (signed) await ctx.webhook(instance, sample.input, { credentials: 'wrong' });
      }
    }
    await stopWithin(ctx, instance, 'after the webhook requests');
    return { instance, sent };
  });
}
