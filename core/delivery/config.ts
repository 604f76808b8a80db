import { z } from 'zod';
import { duration } from '../plugin-api/duration.ts';

const retrySchema = z.strictObject({
  initial_interval: duration('Upper bound of the first retry delay (full jitter picks below it).').prefault(
    '1s',
  ),
  max_interval: duration('Largest retry delay.').prefault('5m'),
  multiplier: z
    .number()
    .min(1)
    .max(10)
    .default(2)
    .meta({ description: 'Growth of the delay bound per attempt.' }),
  max_attempts: z.int().min(1).optional().meta({
    description:
      'Attempts before a delivery becomes a dead letter. Unset: no limit, so a delivery is retried until `max_age`.',
  }),
  max_age: duration(
    "Time since a delivery's first attempt after which a failing delivery becomes a dead letter (time queued untried does not count).",
  ).prefault('3d'),
  max_interrupted_attempts: z.int().min(2).default(3).meta({
    description:
      'Attempts in a row that end without an outcome (the bridge was killed, crashed or stalled during each, and the lease expired) before a delivery becomes a dead letter: an event that crashes the bridge stops being retried here instead of at `max_age`. The last of them runs alone in the process, so rows that were only in flight beside it are never counted out. A recorded retry starts the count again.',
  }),
});

const breakerSchema = z.strictObject({
  enabled: z.boolean().default(true),
  failure_threshold: z
    .int()
    .min(1)
    .default(5)
    .meta({ description: 'Consecutive retryable failures that open the circuit.' }),
  open_duration: duration('How long an open circuit stops deliveries before one probe is tried.').prefault(
    '30s',
  ),
});

/** Per-destination overrides of the global delivery settings (every key optional). */
export const destinationPolicySchema = z.strictObject({
  retry: z
    .strictObject({
      initial_interval: duration().optional(),
      max_interval: duration().optional(),
      multiplier: z.number().min(1).max(10).optional(),
      max_attempts: z.int().min(1).optional(),
      max_age: duration().optional(),
      max_interrupted_attempts: z.int().min(2).optional(),
    })
    .optional(),
  queue_size: z.int().min(1).optional(),
  max_in_flight: z.int().min(1).max(1000).optional(),
  attempt_timeout: duration().optional(),
  circuit_breaker: z
    .strictObject({
      enabled: z.boolean().optional(),
      failure_threshold: z.int().min(1).optional(),
      open_duration: duration().optional(),
    })
    .optional(),
});

/** The `delivery:` block of the root config. */
export const deliveryConfigSchema = z
  .strictObject({
    retry: retrySchema.prefault({}),
    queue_size: z
      .int()
      .min(1)
      .default(100_000)
      .meta({ description: 'Unfinished deliveries per destination before sources are told to wait.' }),
    max_in_flight: z
      .int()
      .min(1)
      .max(1000)
      .default(16)
      .meta({ description: 'Concurrent deliveries per destination.' }),
    attempt_timeout: duration('Longest a single delivery attempt may take.').prefault('30s'),
    circuit_breaker: breakerSchema.prefault({}),
    lease_duration: duration(
      'How long a worker owns a delivery; another instance takes it over after this if the worker died.',
    ).prefault('2m'),
    batch_size: z.int().min(1).max(1000).default(64).meta({ description: 'Deliveries leased per round.' }),
    poll_interval: duration('How often idle workers look for work queued by other instances.').prefault(
      '500ms',
    ),
    dedupe_window: duration(
      'How long a (source, record, event type) is remembered to drop duplicates.',
    ).prefault('24h'),
    backpressure_retry_after: duration('Retry-After given to sources while an outbox is full.').prefault(
      '5s',
    ),
    delivered_retention: duration('How long delivered rows are kept before being pruned.').prefault('24h'),
    maintenance_interval: duration('How often delivered rows and expired dedupe keys are pruned.').prefault(
      '1m',
    ),
    future_events: z
      .strictObject({
        hold: z
          .boolean()
          .default(true)
          .meta({ description: 'Hold events whose occurred-at lies in the future until that time.' }),
        tolerance: duration('Clock skew tolerated before an event counts as future-dated.').prefault('2m'),
        check_interval: duration('How often held events are checked for release.').prefault('10s'),
      })
      .prefault({}),
    destinations: z
      .record(z.string(), destinationPolicySchema)
      .default({})
      .meta({ description: 'Overrides per destination id (outbound instance id or stream:<id>).' }),
  })
  .superRefine((c, ctx) => {
    if (c.lease_duration <= c.attempt_timeout) {
      ctx.addIssue({
        code: 'custom',
        message:
          'lease_duration must be longer than attempt_timeout, or a slow attempt loses its lease mid-flight',
        path: ['lease_duration'],
      });
    }
    // A destination's own attempt_timeout is bounded by the same lease: an attempt that outlives
    // its lease is offered again by another worker while it still runs.
    for (const [id, policy] of Object.entries(c.destinations)) {
      if (policy.attempt_timeout !== undefined && c.lease_duration <= policy.attempt_timeout) {
        ctx.addIssue({
          code: 'custom',
          message: `attempt_timeout (${policy.attempt_timeout} ms) must be shorter than lease_duration (${c.lease_duration} ms), or a slow attempt loses its lease mid-flight`,
          path: ['destinations', id, 'attempt_timeout'],
        });
      }
    }
  })
  .prefault({});

export type DeliveryConfig = z.output<typeof deliveryConfigSchema>;
export type DeliveryConfigInput = z.input<typeof deliveryConfigSchema>;
export type DestinationPolicyInput = z.input<typeof destinationPolicySchema>;
export type DestinationPolicyOverride = z.output<typeof destinationPolicySchema>;

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  multiplier: number;
  /** Infinity when no attempt limit is configured: `max_age` alone ends retrying. */
  maxAttempts: number;
  maxAgeMs: number;
  /** Interrupted attempts in a row (see LeasedDelivery.interruptedAttempts) before dead-lettering. */
  maxInterruptedAttempts: number;
}

export interface BreakerPolicy {
  enabled: boolean;
  failureThreshold: number;
  openMs: number;
}

/** The settings in force for one destination, after overrides. */
export interface DestinationPolicy {
  retry: RetryPolicy;
  queueSize: number;
  maxInFlight: number;
  attemptTimeoutMs: number;
  breaker: BreakerPolicy;
}

/** Resolves one destination's policy: its own override, then the config's, then the globals. */
export function policyFor(
  config: DeliveryConfig,
  destinationId: string,
  override: DestinationPolicyOverride = {},
): DestinationPolicy {
  const fromConfig = config.destinations[destinationId] ?? {};
  const retry = { ...fromConfig.retry, ...override.retry };
  const breaker = { ...fromConfig.circuit_breaker, ...override.circuit_breaker };
  return {
    retry: {
      initialMs: retry.initial_interval ?? config.retry.initial_interval,
      maxMs: retry.max_interval ?? config.retry.max_interval,
      multiplier: retry.multiplier ?? config.retry.multiplier,
      maxAttempts: retry.max_attempts ?? config.retry.max_attempts ?? Infinity,
      maxAgeMs: retry.max_age ?? config.retry.max_age,
      maxInterruptedAttempts: retry.max_interrupted_attempts ?? config.retry.max_interrupted_attempts,
    },
    queueSize: override.queue_size ?? fromConfig.queue_size ?? config.queue_size,
    maxInFlight: override.max_in_flight ?? fromConfig.max_in_flight ?? config.max_in_flight,
    attemptTimeoutMs: override.attempt_timeout ?? fromConfig.attempt_timeout ?? config.attempt_timeout,
    breaker: {
      enabled: breaker.enabled ?? config.circuit_breaker.enabled,
      failureThreshold: breaker.failure_threshold ?? config.circuit_breaker.failure_threshold,
      openMs: breaker.open_duration ?? config.circuit_breaker.open_duration,
    },
  };
}
