import client from 'prom-client';
import type { ConnectorMetrics, Counter, Gauge, Histogram } from '../plugin-api/types.ts';

/**
 * One Prometheus registry per runtime (not prom-client's global one), so tests and several
 * runtimes in one process never collide. Metric names are prefixed `ssf_bridge_`.
 */
export class MetricsRegistry {
  readonly registry = new client.Registry();
  readonly #metrics = new Map<string, client.Metric>();

  constructor(options: { collectDefault?: boolean } = {}) {
    if (options.collectDefault ?? true) {
      client.collectDefaultMetrics({ register: this.registry, prefix: 'ssf_bridge_' });
    }
  }

  counter(name: string, help: string, labelNames: string[] = []): client.Counter {
    return this.#getOrCreate(
      name,
      () => new client.Counter({ name, help, labelNames, registers: [this.registry] }),
    );
  }

  gauge(name: string, help: string, labelNames: string[] = []): client.Gauge {
    return this.#getOrCreate(
      name,
      () => new client.Gauge({ name, help, labelNames, registers: [this.registry] }),
    );
  }

  histogram(name: string, help: string, labelNames: string[] = [], buckets?: number[]): client.Histogram {
    return this.#getOrCreate(
      name,
      () =>
        new client.Histogram({
          name,
          help,
          labelNames,
          registers: [this.registry],
          ...(buckets ? { buckets } : {}),
        }),
    );
  }

  /**
   * Removes every series carrying all of `labels` from the metrics made here, e.g. a deleted
   * SSF stream's `{destination: "stream:<id>"}`: a series only goes away when it is removed, so
   * whatever comes and goes at run time must be forgotten when it goes.
   */
  async forget(labels: Record<string, string>): Promise<void> {
    const wanted = Object.entries(labels);
    for (const metric of this.#metrics.values()) {
      const { values } = await metric.get();
      const series = new Map<string, Record<string, string | number>>();
      for (const value of values) {
        // Histogram buckets add `le`; the series itself is named by the other labels.
        const { le: _bucket, ...named } = value.labels as Record<string, string | number>;
        if (wanted.every(([name, v]) => named[name] === v)) series.set(JSON.stringify(named), named);
      }
      for (const named of series.values()) (metric as client.Counter).remove(named);
    }
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  #getOrCreate<M extends client.Metric>(name: string, make: () => M): M {
    const existing = this.#metrics.get(name);
    if (existing) return existing as M;
    const metric = make();
    this.#metrics.set(name, metric);
    return metric;
  }
}

const METRIC_NAME = /^[a-z][a-z0-9_]*$/;

/**
 * Metrics for one connector instance: names are prefixed `ssf_bridge_connector_` and every
 * series carries `connector` and `instance_id` labels.
 */
export function connectorMetrics(
  registry: MetricsRegistry,
  connectorId: string,
  instanceId: string,
): ConnectorMetrics {
  const fixed = { connector: connectorId, instance_id: instanceId };
  const fullName = (name: string): string => {
    if (!METRIC_NAME.test(name)) throw new Error(`metric name "${name}" must be snake_case`);
    return `ssf_bridge_connector_${name}`;
  };
  return {
    counter(name, help, labelNames = []): Counter {
      const metric = registry.counter(fullName(name), help, ['connector', 'instance_id', ...labelNames]);
      return { inc: (labels, value = 1) => metric.inc({ ...labels, ...fixed }, value) };
    },
    gauge(name, help, labelNames = []): Gauge {
      const metric = registry.gauge(fullName(name), help, ['connector', 'instance_id', ...labelNames]);
      return { set: (labels, value) => metric.set({ ...labels, ...fixed }, value) };
    },
    histogram(name, help, labelNames = [], buckets): Histogram {
      const metric = registry.histogram(
        fullName(name),
        help,
        ['connector', 'instance_id', ...labelNames],
        buckets,
      );
      return { observe: (labels, value) => metric.observe({ ...labels, ...fixed }, value) };
    },
  };
}
