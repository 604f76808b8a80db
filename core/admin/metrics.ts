/**
 * Gauges read from the store and the status board when Prometheus scrapes: outbox depth and
 * dead letters per destination, poll queue depth per stream, and each instance's state. One
 * store query serves all of them per scrape. A store that cannot be read leaves its gauges empty
 * and `ssf_bridge_store_up` at 0, and the rest of the scrape is served; `/readyz` asks the store
 * too (a cheap query, bounded), so a bridge whose store is gone is not ready.
 */
import client from 'prom-client';
import { checkpointTime } from '../runtime/observer.ts';
import type { StatusBoard } from '../runtime/status.ts';
import type { Store, StoreStats } from '../storage/types.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';

/** Instance states as numbers, so alerts can say `> 1` for a permanent error. */
export const STATE_VALUE: Record<string, number> = {
  ok: 0,
  recoverable_error: 1,
  permanent_error: 2,
  starting: 3,
  stopping: 4,
  stopped: 5,
};

function setAll(gauge: client.Gauge, label: string, values: Record<string, number> | undefined): void {
  gauge.reset();
  for (const [key, value] of Object.entries(values ?? {})) gauge.set({ [label]: key }, value);
}

export function registerStoreGauges(metrics: MetricsRegistry, store: Store, status: StatusBoard): void {
  let pending: { at: number; stats: Promise<StoreStats | undefined> } | undefined;
  // The gauges of one scrape share one read; a later scrape reads again. A failed read is
  // undefined: the store's gauges stay empty rather than fail the whole scrape.
  const stats = () => {
    const now = Date.now();
    if (!pending || now - pending.at > 1_000) {
      pending = {
        at: now,
        stats: Promise.resolve()
          .then(() => store.stats())
          .catch(() => undefined),
      };
    }
    return pending.stats;
  };
  status.addProbe('store', () => store.schemaVersion());
  // As an inbound instance starts, its checkpoint time is the one the store kept, so a poller that
  // has failed since a restart shows its real lag instead of no series at all.
  status.onChange((s, previous) => {
    if (s.kind !== 'inbound' || s.state !== 'starting' || previous === 'starting') return;
    store.checkpoints.list(s.id).then(
      (stored) => {
        const latest = Math.max(...stored.map((c) => c.updatedAt.getTime()));
        if (Number.isFinite(latest)) checkpointTime(metrics, s.id, latest / 1000);
      },
      () => undefined, // an unreadable store shows in ssf_bridge_store_up and /readyz
    );
  });
  const registers = [metrics.registry];
  new client.Gauge({
    name: 'ssf_bridge_store_up',
    help: 'Whether the last read of the store for these metrics succeeded (1) or failed (0)',
    registers,
    async collect() {
      this.set((await stats()) ? 1 : 0);
    },
  });
  new client.Gauge({
    name: 'ssf_bridge_queue_depth',
    help: 'Unfinished deliveries (pending and leased) per destination',
    labelNames: ['destination'],
    registers,
    async collect() {
      setAll(this, 'destination', (await stats())?.backlog);
    },
  });
  new client.Gauge({
    name: 'ssf_bridge_dead_letters',
    help: 'Dead letters waiting for replay or purge per destination',
    labelNames: ['destination'],
    registers,
    async collect() {
      setAll(this, 'destination', (await stats())?.deadLetters);
    },
  });
  new client.Gauge({
    name: 'ssf_bridge_poll_queue_depth',
    help: 'SETs waiting to be polled and acknowledged per SSF stream',
    labelNames: ['stream'],
    registers,
    async collect() {
      setAll(this, 'stream', (await stats())?.pollQueues);
    },
  });
  new client.Gauge({
    name: 'ssf_bridge_instance_state',
    help: 'State of each instance: 0 ok, 1 recoverable error, 2 permanent error, 3 starting, 4 stopping, 5 stopped',
    labelNames: ['instance_id', 'connector', 'kind'],
    registers,
    collect() {
      this.reset();
      for (const s of status.list()) {
        this.set({ instance_id: s.id, connector: s.connector, kind: s.kind }, STATE_VALUE[s.state] ?? 5);
      }
    },
  });
}
