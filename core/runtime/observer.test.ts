import { describe, expect, it } from 'vitest';
import { silentLogger } from '../telemetry/logger.ts';
import { MetricsRegistry } from '../telemetry/metrics.ts';
import { checkpointTime, deliveryObserver, observedInbound } from './observer.ts';
import { StatusBoard } from './status.ts';

describe('delivery observer', () => {
  it("lists an outbound instance's outcomes at 0 once it is registered, so its first dead letter is an increase", async () => {
    const metrics = new MetricsRegistry({ collectDefault: false });
    const status = new StatusBoard({ now: () => new Date() });
    status.register('early', 'webhook', 'outbound');
    const observer = deliveryObserver(metrics, status, silentLogger());
    // Instances the host registers after the observer exists are listed when they start.
    status.register('late', 'webhook', 'outbound');
    status.register('api', 'events-api', 'inbound');
    status.set('late', 'starting');
    status.set('api', 'starting');
    const series = (await metrics.render()).body
      .split('\n')
      .filter((l) => l.startsWith('ssf_bridge_deliveries_total{'));
    expect(series.sort()).toEqual(
      ['early', 'late']
        .flatMap((d) =>
          ['delivered', 'retry', 'dead_letter'].map(
            (o) => `ssf_bridge_deliveries_total{destination="${d}",outcome="${o}"} 0`,
          ),
        )
        .sort(),
    );
    observer.deadLettered?.({
      destinationId: 'late',
      jti: 'j1',
      eventType: 'https://schemas.openid.net/secevent/caep/event-type/session-revoked',
      attempts: 1,
      reason: 'permanent',
      error: { class: 'permanent', code: 'X', message: 'refused' },
    } as never);
    expect((await metrics.render()).body).toMatch(
      /^ssf_bridge_deliveries_total\{destination="late",outcome="dead_letter"\} 1$/m,
    );
  });

  it('keeps the latest checkpoint time, whether the store or a write of this run gave it', async () => {
    const metrics = new MetricsRegistry({ collectDefault: false });
    const inbound = observedInbound(metrics, { now: () => new Date(2_000_000) }, 'api');
    const value = async () =>
      /ssf_bridge_checkpoint_updated_timestamp_seconds\{instance_id="api"\} (\S+)/.exec(
        (await metrics.render()).body,
      )?.[1];
    expect(await value()).toBeUndefined();
    checkpointTime(metrics, 'api', 1_000);
    expect(await value()).toBe('1000');
    inbound.checkpointed();
    // The store's answer arriving after a write of this run does not take the gauge back.
    checkpointTime(metrics, 'api', 1_000);
    expect(await value()).toBe('2000');
  });
});
