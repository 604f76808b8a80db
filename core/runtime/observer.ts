import type { DeliveryObserver } from '../delivery/index.ts';
import { PermanentError } from '../plugin-api/errors.ts';
import type { Clock, InboundContext, Logger } from '../plugin-api/types.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import type { StatusBoard } from './status.ts';

const CIRCUIT_VALUE = { closed: 0, half_open: 1, open: 2 } as const;
const OUTCOMES = ['delivered', 'retry', 'dead_letter'] as const;

/** Turns delivery outcomes into metrics, log lines and instance status. */
export function deliveryObserver(
  metrics: MetricsRegistry,
  status: StatusBoard,
  logger: Logger,
): DeliveryObserver {
  const outcomes = metrics.counter(
    'ssf_bridge_deliveries_total',
    'Delivery attempts by destination and outcome',
    ['destination', 'outcome'],
  );
  const latency = metrics.histogram(
    'ssf_bridge_delivery_latency_seconds',
    'Time from accepting an event to its delivery',
    ['destination'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  );
  const circuit = metrics.gauge(
    'ssf_bridge_circuit_state',
    'Circuit breaker per destination (0 closed, 1 half-open, 2 open)',
    ['destination'],
  );
  const outboundOnly = (id: string) => !id.startsWith('stream:');
  // Every outcome of an outbound instance is listed at 0 from its start, so the first dead letter
  // after a start is an increase `increase(...[15m]) > 0` sees, not a series that appears at 1.
  // (SSF streams come and go: theirs appear with their first delivery.)
  const known = new Set<string>();
  const listed = (destination: string) => {
    if (known.has(destination)) return;
    known.add(destination);
    for (const outcome of OUTCOMES) outcomes.inc({ destination, outcome }, 0);
  };
  for (const s of status.list()) if (s.kind === 'outbound') listed(s.id);
  status.onChange((s) => {
    if (s.kind === 'outbound') listed(s.id);
  });
  return {
    delivered(n) {
      outcomes.inc({ destination: n.destinationId, outcome: 'delivered' });
      latency.observe({ destination: n.destinationId }, n.sinceAcceptedMs / 1000);
      if (outboundOnly(n.destinationId)) status.success(n.destinationId);
    },
    retrying(n) {
      outcomes.inc({ destination: n.destinationId, outcome: 'retry' });
      if (outboundOnly(n.destinationId)) status.set(n.destinationId, 'recoverable_error', n.error.message);
    },
    deadLettered(n) {
      outcomes.inc({ destination: n.destinationId, outcome: 'dead_letter' });
      logger.warn(
        {
          destination: n.destinationId,
          jti: n.jti,
          eventType: n.eventType,
          attempts: n.attempts,
          reason: n.reason,
          error: n.error,
        },
        'delivery dead-lettered',
      );
    },
    authFailure(destinationId, error) {
      if (outboundOnly(destinationId)) status.refused(destinationId, `credentials refused: ${error.message}`);
    },
    circuit(destinationId, state) {
      circuit.set({ destination: destinationId }, CIRCUIT_VALUE[state as keyof typeof CIRCUIT_VALUE] ?? 0);
    },
  };
}

type Emit = InboundContext['emit'];

const checkpointTimes = new WeakMap<MetricsRegistry, Map<string, number>>();

/**
 * Records that an instance's checkpoint was written at `seconds` (Unix), unless a later write is
 * already recorded: the runtime's own writes and, as an instance starts, the time the store says
 * its checkpoints were last written (so the lag of a poller failing since a restart still shows).
 */
export function checkpointTime(metrics: MetricsRegistry, instanceId: string, seconds: number): void {
  let times = checkpointTimes.get(metrics);
  if (!times) checkpointTimes.set(metrics, (times = new Map()));
  if ((times.get(instanceId) ?? -Infinity) >= seconds) return;
  times.set(instanceId, seconds);
  checkpointGauge(metrics).set({ instance_id: instanceId }, seconds);
}

const checkpointGauge = (metrics: MetricsRegistry) =>
  metrics.gauge(
    'ssf_bridge_checkpoint_updated_timestamp_seconds',
    'When the instance last wrote its checkpoint (Unix seconds)',
    ['instance_id'],
  );

/**
 * Counts what an inbound instance hands the pipeline (events received, duplicates dropped,
 * events rejected by validation) and records when its checkpoint last moved, so checkpoint lag
 * is `time() - ssf_bridge_checkpoint_updated_timestamp_seconds`.
 */
export function observedInbound(
  metrics: MetricsRegistry,
  clock: Clock,
  instanceId: string,
): { emit(emit: Emit): Emit; checkpointed(): void } {
  const labels = { instance_id: instanceId };
  const received = metrics.counter(
    'ssf_bridge_events_received_total',
    'Events emitted by inbound instances',
    ['instance_id'],
  );
  const duplicates = metrics.counter(
    'ssf_bridge_events_duplicate_total',
    'Emitted events dropped as duplicates within the dedupe window',
    ['instance_id'],
  );
  const rejected = metrics.counter(
    'ssf_bridge_events_rejected_total',
    'Emitted events refused by validation (nothing of the batch is accepted)',
    ['instance_id'],
  );
  checkpointGauge(metrics);
  const checkpointed = () => checkpointTime(metrics, instanceId, clock.now().getTime() / 1000);
  return {
    checkpointed,
    emit: (emit) => async (events, options) => {
      received.inc(labels, events.length);
      try {
        const result = await emit(events, options);
        duplicates.inc(labels, result.duplicates);
        if (options?.checkpoint !== undefined) checkpointed();
        return result;
      } catch (err) {
        if (err instanceof PermanentError) rejected.inc(labels, events.length);
        throw err;
      }
    },
  };
}
