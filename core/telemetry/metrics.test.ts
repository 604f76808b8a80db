import { describe, expect, it } from 'vitest';
import { MetricsRegistry } from './metrics.ts';

describe('MetricsRegistry.forget', () => {
  it('removes every series carrying the labels from counters, gauges and histograms, and no other', async () => {
    const metrics = new MetricsRegistry({ collectDefault: false });
    const counter = metrics.counter('ssf_bridge_test_total', 'test', ['destination', 'outcome']);
    const gauge = metrics.gauge('ssf_bridge_test_state', 'test', ['destination']);
    const histogram = metrics.histogram('ssf_bridge_test_seconds', 'test', ['destination'], [0.1, 1]);
    for (const destination of ['stream:a', 'stream:b']) {
      counter.inc({ destination, outcome: 'delivered' });
      counter.inc({ destination, outcome: 'retry' });
      gauge.set({ destination }, 2);
      histogram.observe({ destination }, 0.5);
    }
    await metrics.forget({ destination: 'stream:a' });
    const { body } = await metrics.render();
    expect(body).not.toContain('stream:a');
    const lines = body.split('\n').filter((l) => l.includes('stream:b'));
    expect(lines).toEqual([
      'ssf_bridge_test_total{destination="stream:b",outcome="delivered"} 1',
      'ssf_bridge_test_total{destination="stream:b",outcome="retry"} 1',
      'ssf_bridge_test_state{destination="stream:b"} 2',
      'ssf_bridge_test_seconds_bucket{le="0.1",destination="stream:b"} 0',
      'ssf_bridge_test_seconds_bucket{le="1",destination="stream:b"} 1',
      'ssf_bridge_test_seconds_bucket{le="+Inf",destination="stream:b"} 1',
      'ssf_bridge_test_seconds_sum{destination="stream:b"} 0.5',
      'ssf_bridge_test_seconds_count{destination="stream:b"} 1',
    ]);
  });
});
