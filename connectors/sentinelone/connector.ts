import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import { createEdrConnector } from '../_shared/edr-connector.ts';
import { createIntake } from '../_shared/edr-intake.ts';
import { SentinelOneClient } from './client.ts';
import type { SentinelOneConfig } from './config.ts';
import { describeThreat, mapThreat, threatVersion } from './mapping.ts';

/** Wrapper keys a notification or script may put its threats under (`data` as the API does). */
const WEBHOOK_WRAPPERS = ['data', 'threats', 'records'];

/**
 * A SentinelOne instance: polls the threats API on the scheduler, and with a `webhook` block also
 * maps threats posted to it. create() does no I/O.
 */
export function createSentinelOneConnector(ctx: InboundContext, config: SentinelOneConfig): InboundConnector {
  return createEdrConnector(ctx, {
    intake: createIntake(
      ctx,
      (record, owners, history) => mapThreat(record, config, owners, history),
      describeThreat,
      { deviceOwners: config.subjects.device_owners, priorCheckpoints: ['threats'] },
    ),
    client: config.mode === 'poll' ? new SentinelOneClient(ctx.http, config) : undefined,
    webhook: config.webhook,
    wrapperKeys: WEBHOOK_WRAPPERS,
    task: 'threats',
    everyMs: config.poll_interval,
    poller: (client) => ({
      checkpointName: 'threats',
      overlapMs: config.overlap,
      initialLookbackMs: config.initial_lookback,
      sortedAscending: true,
      maxPagesPerRun: config.max_pages_per_run,
      fetchPage: async (since, cursor, signal) => {
        const page = await client.threats(since, cursor, signal);
        return { records: page.threats, next: page.cursor };
      },
      version: threatVersion,
    }),
  });
}
