import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import {
  classOf,
  RetryableError,
  type EventDraft,
  type InboundConnector,
  type InboundContext,
  type RecordOutcome,
} from '../../core/plugin-api/index.ts';
import { waitAtMost } from '../_shared/edr-poller.ts';
import type { SyslogCefConfig } from './config.ts';
import { compiledRules, recordOf } from './mapping.ts';
import { TcpFramer } from './parse/framing.ts';
import type { SyslogRecord } from './parse/record.ts';

type Transport = 'udp' | 'tcp';

/** At most one warning of a kind in this window; the rest are counted into the next one. */
/** Idle time before the kernel starts probing a silent syslog TCP sender. */
const KEEPALIVE_IDLE_MS = 60_000;
const WARN_WINDOW_MS = 10_000;
/** Retry delay after a full outbox when it names none, and the longest it may ask for. */
const DEFAULT_RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** Token buckets kept before idle ones are forgotten. */
const MAX_BUCKETS = 10_000;
/** Lines (or bytes of them) waiting for the rules above which TCP connections are no longer read. */
const TCP_WAITING_LINES = 1_000;
const TCP_WAITING_BYTES = 4 * 1_048_576;
/** Lines (or bytes of them) waiting for the rules above which UDP datagrams are dropped. */
const UDP_WAITING_LINES = 10_000;
const UDP_WAITING_BYTES = 32 * 1_048_576;

interface Waiting {
  record: SyslogRecord;
  bytes: number;
  transport: Transport;
  address: string;
}

/**
 * A syslog listener (UDP and/or TCP) whose lines, CEF or LEEF, are mapped to events by the
 * rules, in order and on a helper thread (never on the event loop), and handed on in small
 * batches. Backpressure: while the pipeline refuses a batch (outbox full), too many events wait
 * or too many lines wait for the rules, TCP sockets stop being read (senders block or buffer);
 * UDP datagrams, which cannot be slowed, are dropped and counted while the pipeline is full or
 * the rules are far behind.
 */
export function createSyslogCef(ctx: InboundContext, config: SyslogCefConfig): InboundConnector {
  const rules = compiledRules(config);
  const lines = ctx.metrics.counter(
    'syslog_cef_lines_total',
    'Syslog messages received, by transport and outcome (mapped, ignored, malformed, unmapped, oversized, rate_limited, dropped)',
    ['transport', 'outcome'],
  );
  const events = ctx.metrics.counter(
    'syslog_cef_events_total',
    'Events handed to the pipeline, by outcome (persisted, refused)',
    ['outcome'],
  );
  const highWater = config.batch_size * 4;
  const queue: EventDraft[] = [];
  const waiting: Waiting[] = [];
  let waitingBytes = 0;
  let mapping: Promise<void> | undefined;
  const sockets = new Set<Socket>();
  const buckets = new Map<string, { tokens: number; at: number }>();
  const warned = new Map<string, { at: number; suppressed: number }>();
  let udp: UdpSocket | undefined;
  let tcp: Server | undefined;
  let timer: NodeJS.Timeout | undefined;
  let pumping: Promise<void> | undefined;
  /** The pipeline refuses batches or too many events wait; too many lines wait for the rules. */
  let full = false;
  let behind = false;
  let paused = false;
  let halt = new AbortController();
  let stopped = false;

  function warn(kind: string, detail: Record<string, unknown>, message: string): void {
    const now = Date.now();
    const last = warned.get(kind);
    if (last && now - last.at < WARN_WINDOW_MS) {
      last.suppressed += 1;
      return;
    }
    ctx.logger.warn({ ...detail, suppressed: last?.suppressed ?? 0 }, message);
    warned.set(kind, { at: now, suppressed: 0 });
  }

  function allow(address: string): boolean {
    const { per_second: rate, burst } = config.rate_limit;
    const now = performance.now();
    let bucket = buckets.get(address);
    if (!bucket) {
      if (buckets.size >= MAX_BUCKETS) {
        for (const [key, b] of buckets)
          if (b.tokens + ((now - b.at) / 1000) * rate >= burst) buckets.delete(key);
        if (buckets.size >= MAX_BUCKETS) buckets.clear();
      }
      bucket = { tokens: burst, at: now };
      buckets.set(address, bucket);
    }
    bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** TCP sockets are read while neither the pipeline nor the rules are behind. */
  function flow(): void {
    const hold = full || behind;
    if (hold === paused) return;
    paused = hold;
    for (const socket of sockets) {
      if (hold) socket.pause();
      else socket.resume();
    }
  }

  function pause(): void {
    full = true;
    flow();
  }

  function resume(): void {
    full = false;
    flow();
  }

  function handle(line: string, transport: Transport, address: string): void {
    if (!allow(address)) {
      lines.inc({ transport, outcome: 'rate_limited' });
      warn('rate_limited', { address }, 'dropping syslog messages over the per-sender rate limit');
      return;
    }
    let record: SyslogRecord;
    try {
      record = recordOf(line);
    } catch (err) {
      lines.inc({ transport, outcome: 'malformed' });
      warn(
        'malformed',
        { address, error: err instanceof Error ? err.message : String(err) },
        'dropped a malformed syslog message',
      );
      return;
    }
    const bytes = Buffer.byteLength(line);
    waiting.push({ record, bytes, transport, address });
    waitingBytes += bytes;
    if (waiting.length >= TCP_WAITING_LINES || waitingBytes >= TCP_WAITING_BYTES) {
      behind = true;
      flow();
    }
    mapWaiting();
  }

  /** Maps the waiting lines one at a time, in order, off the event loop. */
  function mapWaiting(): void {
    if (mapping) return;
    const signal = halt.signal;
    mapping = (async () => {
      while (waiting.length > 0 && !signal.aborted) {
        const next = waiting[0] as Waiting;
        let outcome: RecordOutcome | undefined;
        try {
          [outcome] = await rules.mapRecords([next.record]);
        } catch (err) {
          ctx.logger.error(
            { address: next.address, error: err instanceof Error ? err.message : String(err) },
            'mapping a syslog message failed',
          );
        }
        if (signal.aborted) return;
        waiting.shift();
        waitingBytes -= next.bytes;
        if (behind && waiting.length < TCP_WAITING_LINES / 2 && waitingBytes < TCP_WAITING_BYTES / 2) {
          behind = false;
          flow();
        }
        settle(next, outcome);
      }
    })().finally(() => {
      mapping = undefined;
      if (waiting.length > 0 && !halt.signal.aborted) mapWaiting();
    });
  }

  function settle({ transport, address }: Waiting, outcome: RecordOutcome | undefined): void {
    if (!outcome?.ok) {
      lines.inc({ transport, outcome: 'unmapped' });
      if (outcome)
        warn(
          'unmapped',
          { address, error: outcome.error.message },
          'mapping rules failed on a syslog message',
        );
      return;
    }
    const mapped = outcome.result;
    if (mapped.ignored !== undefined) {
      lines.inc({ transport, outcome: 'ignored' });
      return;
    }
    lines.inc({ transport, outcome: 'mapped' });
    queue.push(...mapped.events);
    if (queue.length >= highWater) pause();
    if (queue.length >= config.batch_size) pump();
    else if (queue.length > 0 && !timer && !pumping) {
      timer = setTimeout(() => {
        timer = undefined;
        pump();
      }, config.batch_wait);
      timer.unref();
    }
  }

  function pump(): void {
    if (timer) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (pumping) return;
    pumping = drain().finally(() => {
      pumping = undefined;
      if (queue.length > 0 && !halt.signal.aborted) pump();
    });
  }

  async function drain(): Promise<void> {
    while (queue.length > 0 && !halt.signal.aborted) {
      const batch = queue.slice(0, config.batch_size);
      try {
        await ctx.emit(batch);
        queue.splice(0, batch.length);
        events.inc({ outcome: 'persisted' }, batch.length);
        ctx.status.success();
        if (queue.length < config.batch_size) resume();
      } catch (err) {
        if (classOf(err) === 'retryable') {
          pause();
          const wait =
            err instanceof RetryableError ? (err.retryAfterMs ?? DEFAULT_RETRY_MS) : DEFAULT_RETRY_MS;
          warn('backpressure', { queued: queue.length }, 'the pipeline is full: reading paused, UDP dropped');
          await sleep(Math.min(Math.max(wait, 10), MAX_RETRY_MS), halt.signal);
        } else {
          queue.splice(0, batch.length);
          events.inc({ outcome: 'refused' }, batch.length);
          ctx.logger.error(
            { error: err instanceof Error ? err.message : String(err), events: batch.length },
            'the pipeline refused a batch of syslog events',
          );
          if (queue.length < config.batch_size) resume();
        }
      }
    }
  }

  function onConnection(socket: Socket): void {
    if (stopped) {
      socket.destroy();
      return;
    }
    sockets.add(socket);
    if (paused) socket.pause();
    const address = socket.remoteAddress ?? 'unknown';
    const framer = new TcpFramer(config.max_line_bytes, {
      frame: (line) => handle(line, 'tcp', address),
      oversized: () => {
        lines.inc({ transport: 'tcp', outcome: 'oversized' });
        warn('oversized', { address, limit: config.max_line_bytes }, 'dropped an oversized syslog message');
      },
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        framer.push(chunk);
      } catch (err) {
        // A fault of this connection must never take the listener down with it.
        ctx.logger.error(
          { address, error: err instanceof Error ? err.message : String(err) },
          'closing a syslog connection',
        );
        socket.destroy();
      }
    });
    socket.on('error', (err) => ctx.logger.debug({ address, error: err.message }, 'syslog connection error'));
    socket.on('close', () => sockets.delete(socket));
  }

  function onDatagram(message: Buffer, address: string): void {
    if (full || waiting.length >= UDP_WAITING_LINES || waitingBytes >= UDP_WAITING_BYTES) {
      lines.inc({ transport: 'udp', outcome: 'dropped' });
      warn('udp_dropped', { address }, 'dropping UDP syslog datagrams while the pipeline is full');
      return;
    }
    if (message.length > config.max_line_bytes) {
      lines.inc({ transport: 'udp', outcome: 'oversized' });
      warn('oversized', { address, limit: config.max_line_bytes }, 'dropped an oversized syslog message');
      return;
    }
    handle(message.toString('utf8'), 'udp', address);
  }

  async function listenUdp(port: number): Promise<UdpSocket> {
    const socket = createSocket({ type: config.host.includes(':') ? 'udp6' : 'udp4' });
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(port, config.host, () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.on('error', (err) => ctx.logger.error({ error: err.message }, 'syslog UDP listener error'));
    socket.on('message', (msg, rinfo) => {
      try {
        onDatagram(msg, rinfo.address);
      } catch (err) {
        ctx.logger.error(
          { error: err instanceof Error ? err.message : String(err) },
          'dropped a syslog datagram',
        );
      }
    });
    return socket;
  }

  async function listenTcp(port: number): Promise<Server> {
    // TCP keepalive: a sender whose host vanished without closing (a crash, a cut link) is found
    // and its connection closed by the kernel, instead of holding one of max_connections for good.
    const server = createServer(
      { noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_IDLE_MS },
      onConnection,
    );
    server.maxConnections = config.max_connections;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, config.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => ctx.logger.error({ error: err.message }, 'syslog TCP listener error'));
    return server;
  }

  async function closeListeners(): Promise<void> {
    const closing: Array<Promise<void>> = [];
    if (udp) {
      const socket = udp;
      closing.push(new Promise((resolve) => socket.close(() => resolve())));
      udp = undefined;
    }
    if (tcp) {
      const server = tcp;
      closing.push(new Promise((resolve) => server.close(() => resolve())));
      tcp = undefined;
    }
    for (const socket of sockets) socket.destroy();
    sockets.clear();
    await Promise.all(closing);
  }

  return {
    async start() {
      stopped = false;
      halt = new AbortController();
      try {
        if (config.udp_port !== undefined) udp = await listenUdp(config.udp_port);
        if (config.tcp_port !== undefined) tcp = await listenTcp(config.tcp_port);
      } catch (err) {
        await closeListeners();
        const message = err instanceof Error ? err.message : String(err);
        throw new RetryableError(`cannot listen for syslog on ${config.host}: ${message}`, { cause: err });
      }
      ctx.logger.info(
        { host: config.host, udp_port: config.udp_port, tcp_port: config.tcp_port },
        'listening for syslog',
      );
    },

    async stop(deadlineMs: number) {
      if (stopped) return;
      stopped = true;
      const until = Date.now() + deadlineMs - 50;
      await closeListeners();
      // Map what waits and hand on what is queued, within the deadline; what is left then is dropped.
      if (mapping) await waitAtMost(mapping, until - Date.now());
      if (queue.length > 0) pump();
      if (pumping) await waitAtMost(pumping, until - Date.now());
      halt.abort();
      if (timer) clearTimeout(timer);
      timer = undefined;
      queue.length = 0;
      waiting.length = 0;
      waitingBytes = 0;
      full = false;
      behind = false;
      paused = false;
    },
  };
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
