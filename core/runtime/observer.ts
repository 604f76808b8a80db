import type { DeliveryObserver } from '../delivery/index.ts';
import type { Logger } from '../plugin-api/types.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';
import type { StatusBoard } from './status.ts';

const CIRCUIT_VALUE = { closed: 0, half_open: 1, open: 2 } as const;

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
      if (outboundOnly(destinationId))
        status.set(destinationId, 'permanent_error', `credentials refused: ${error.message}`);
    },
    circuit(destinationId, state) {
      circuit.set({ destination: destinationId }, CIRCUIT_VALUE[state as keyof typeof CIRCUIT_VALUE] ?? 0);
    },
  };
}
