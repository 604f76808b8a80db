/**
 * delivery.request-timeout, the deadlines a connector asks for. The kit shortens every deadline
 * to a few hundred milliseconds so a hanging target fails fast; what the connector asked for is
 * recorded first (KitInstance.requestedTimeouts) and checked here: never above the connector's
 * own `request_timeout` (the kit sets it to a value of its own, so a connector that ignores it
 * shows), and never above a ceiling, so a request cannot hang a poll or a delivery for hours.
 */
import type { SuiteContext } from './context.ts';
import type { KitInstance } from './harness.ts';

/** The longest deadline any request may ask for. */
export const REQUEST_TIMEOUT_CEILING_MS = 5 * 60_000;
/** What the kit configures as `request_timeout` where the config has one: below every default. */
const KIT_REQUEST_TIMEOUT = { written: '7s', ms: 7_000 };

export interface TimeoutPlan {
  /** The config the instance runs with. */
  config: unknown;
  /** The longest deadline a request may ask for. */
  limitMs: number;
  /** What the limit is, for messages. */
  limit: string;
}

/**
 * The config for the case: the valid config with `request_timeout` set to the kit's own value
 * when the connector has that field (top level, a duration), else the valid config as it is.
 */
export function timeoutPlan(ctx: SuiteContext): TimeoutPlan {
  const parsed = ctx.parsedConfig() as Record<string, unknown> | undefined;
  const ceiling = {
    config: parsed,
    limitMs: REQUEST_TIMEOUT_CEILING_MS,
    limit: `the ceiling of ${REQUEST_TIMEOUT_CEILING_MS} ms`,
  };
  const configured = parsed?.request_timeout;
  if (typeof configured !== 'number') return ceiling;
  const raw = ctx.rawConfig();
  if (raw && typeof raw === 'object' && !Array.isArray(raw)) {
    const probe = ctx.definition.configSchema.safeParse({
      ...raw,
      request_timeout: KIT_REQUEST_TIMEOUT.written,
    });
    const data = probe.success ? (probe.data as Record<string, unknown>) : undefined;
    if (data?.request_timeout === KIT_REQUEST_TIMEOUT.ms) {
      return {
        config: data,
        limitMs: KIT_REQUEST_TIMEOUT.ms,
        limit: `request_timeout (the kit set it to ${KIT_REQUEST_TIMEOUT.written})`,
      };
    }
  }
  const limitMs = Math.min(configured, REQUEST_TIMEOUT_CEILING_MS);
  return { config: parsed, limitMs, limit: `request_timeout (${configured} ms in options.validConfig)` };
}

const FROM = {
  create: 'given to ctx.http.create()',
  request: 'given to the request',
  client: "its client's timeoutMs",
  default: 'the default of a client created without timeoutMs',
} as const;

/** One line per deadline the instance asked for above the plan's limit. */
export function requestedTimeoutProblems(instance: KitInstance, plan: TimeoutPlan): string[] {
  const seen = new Set<string>();
  const problems: string[] = [];
  for (const { what, ms, from } of instance.requestedTimeouts) {
    const key = `${what} ${ms} ${from}`;
    if (seen.has(key) || (Number.isFinite(ms) && ms > 0 && ms <= plan.limitMs)) continue;
    seen.add(key);
    const subject = from === 'create' ? 'ctx.http.create()' : `the request ${what}`;
    problems.push(
      `${subject} asked for a deadline of ${ms} ms (${FROM[from]}), above ${plan.limit}: ` +
        (from === 'default'
          ? 'pass the configured request timeout as timeoutMs when creating the client'
          : 'derive every timeoutMs from the configured request timeout'),
    );
  }
  return problems;
}
