/**
 * The per-stream queues kept in the store's poll-queue table:
 *
 * - the stream's own queue (`<stream id>`): event SETs waiting for an RFC 8936 poll;
 * - its control queue (`ctl:<stream id>`): stream-updated SETs. They travel apart from event SETs
 *   because they must reach the receiver whatever the stream's status (a stream-updated event
 *   announces a pause before it takes effect, SSF 1.0 §8.1.2, §8.1.5), while event SETs wait in
 *   the outbox as long as the stream is paused;
 * - its verification queue (`vrf:<stream id>`): verification SETs (§8.1.4). They obey the
 *   stream's status like event SETs (a paused stream transmits nothing and holds them, a disabled
 *   one holds nothing, §8.1.2), but are made by the transmitter, not the outbox, so they wait
 *   here. Versions before this queue kept them in the control queue; such a SET found there is
 *   moved here when it is next taken (`takeControl`).
 *
 * Stream ids never contain ':' (STREAM_ID_PATTERN), so these queue ids cannot collide.
 */
import type { Clock } from '../plugin-api/types.ts';
import type { StreamStore } from '../storage/types.ts';

export function controlQueueId(streamId: string): string {
  return `ctl:${streamId}`;
}

export function verificationQueueId(streamId: string): string {
  return `vrf:${streamId}`;
}

const PURGE_BATCH = 1000;

/** Drops every SET still queued; SETs a receiver reported in setErrs are kept for inspection. */
export async function purgeQueue(streams: StreamStore, queueId: string, clock: Clock): Promise<number> {
  let purged = 0;
  for (;;) {
    const batch = await streams.poll(queueId, { max: PURGE_BATCH, now: clock.now(), redeliverAfterMs: 0 });
    if (batch.sets.length === 0) return purged;
    purged += (
      await streams.ack(
        queueId,
        batch.sets.map((s) => s.jti),
      )
    ).length;
    if (!batch.moreAvailable) return purged;
  }
}
