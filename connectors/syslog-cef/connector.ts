import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import {
  classOf,
  isBridgeError,
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
  /** It took one of its sender's tokens (given back if it matches no rule). */
  charged: boolean;
}

/** An event waiting to be handed to the pipeline, with where its line came from (for logs). */
interface Queued {
  event: EventDraft;
  transport: Transport;
  address: string;
}

/** A TCP sender's connection. */
interface Connection {
  socket: Socket;
  address: string;
  /**
   * Lines read while the sender is over its rate limit, from `head` on: taken as its tokens
   * refill, while the socket is not read. At most what the socket had read when it was paused.
   */
  pending: string[];
  head: number;
  /** Over its rate limit: not read until `pending` is taken. */
  throttled: boolean;
  timer: NodeJS.Timeout | undefined;
  closed: boolean;
}

/**
 * A syslog listener (UDP and/or TCP) whose lines, CEF or LEEF, are mapped to events by the
 * rules, in order and on a helper thread (never on the event loop), and handed on in small
 * batches. Backpressure: while the pipeline refuses a batch (outbox full), too many events wait
 * or too many lines wait for the rules, TCP sockets stop being read (senders block or buffer);
 * UDP datagrams, which cannot be slowed, are dropped and counted while the pipeline is full or
 * the rules are far behind. The per-sender rate limit slows a TCP sender the same way (its
 * connection is not read until its tokens refill) and drops UDP datagrams over it. A batch the
 * pipeline refuses for good is handed over again one event at a time, so only the events it
 * refuses are lost, each counted and logged.
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
    'Events handed to the pipeline, by outcome (persisted, refused, dropped)',
    ['outcome'],
  );
  const highWater = config.batch_size * 4;
  const queue: Queued[] = [];
  const waiting: Waiting[] = [];
  let waitingBytes = 0;
  let mapping: Promise<void> | undefined;
  const connections = new Set<Connection>();
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
  /** Events at the head of the queue to hand over one at a time: the pipeline refused their batch. */
  let alone = 0;
  /** Events handed to the pipeline and not answered yet. */
  let sending = 0;
  /** When stop() gives up on what is not durable yet; set while stopping. */
  let stopBy: number | undefined;
  /** Ends the wait before the pipeline is tried again (stop() calls it). */
  let wake: (() => void) | undefined;

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

  /** The sender's token bucket, refilled up to now. */
  function bucketOf(address: string): { tokens: number; at: number } {
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
    return bucket;
  }

  /** Takes one of the sender's tokens, if it has one. */
  function allow(address: string): boolean {
    const bucket = bucketOf(address);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Milliseconds until the sender has a token again. */
  function untilToken(address: string): number {
    const bucket = bucketOf(address);
    return Math.max(1, Math.ceil(((1 - bucket.tokens) / config.rate_limit.per_second) * 1000));
  }

  /**
   * Gives back the token of a message that matched no rule: noise costs a sender tokens only
   * while it waits for the rules, so it does not spend those of the sender's alerts.
   */
  function refund(address: string): void {
    const bucket = buckets.get(address);
    if (bucket) bucket.tokens = Math.min(config.rate_limit.burst, bucket.tokens + 1);
    for (const conn of connections) {
      if (conn.address === address && conn.throttled && conn.timer) {
        clearTimeout(conn.timer);
        conn.timer = undefined;
        takePending(conn);
      }
    }
  }

  /** A connection is read unless the pipeline or the rules are behind or its sender is over its rate. */
  function read(conn: Connection): void {
    if (conn.closed) return;
    if (paused || conn.throttled) conn.socket.pause();
    else conn.socket.resume();
  }

  /** TCP sockets are read while neither the pipeline nor the rules are behind. */
  function flow(): void {
    const hold = full || behind;
    if (hold === paused) return;
    paused = hold;
    for (const conn of connections) read(conn);
  }

  function pause(): void {
    full = true;
    flow();
  }

  function resume(): void {
    full = false;
    flow();
  }

  /** The record of a line; a malformed line is counted and logged, and gives undefined. */
  function parsed(line: string, transport: Transport, address: string): SyslogRecord | undefined {
    try {
      return recordOf(line);
    } catch (err) {
      lines.inc({ transport, outcome: 'malformed' });
      warn(
        'malformed',
        { address, error: err instanceof Error ? err.message : String(err) },
        'dropped a malformed syslog message',
      );
      return undefined;
    }
  }

  /**
   * A datagram's line. Parsed before the rate limit is applied: a malformed message costs its
   * sender no token (it is dropped at once, never mapped).
   */
  function onUdpLine(line: string, address: string): void {
    const record = parsed(line, 'udp', address);
    if (!record) return;
    if (!allow(address)) {
      lines.inc({ transport: 'udp', outcome: 'rate_limited' });
      warn('rate_limited', { address }, 'dropping UDP syslog messages over the per-sender rate limit');
      return;
    }
    enqueue(record, line, 'udp', address, true);
  }

  /**
   * A TCP frame. A sender over its rate limit is slowed, not dropped: its connection is no longer
   * read, and the lines already read wait (in order) for its tokens to refill.
   */
  function onTcpLine(conn: Connection, line: string): void {
    if (conn.head < conn.pending.length || !take(conn, line)) {
      conn.pending.push(line);
      if (!conn.throttled) {
        conn.throttled = true;
        read(conn);
        warn(
          'rate_limited',
          { address: conn.address },
          'slowing a TCP syslog sender over the per-sender rate limit',
        );
      }
      if (!conn.timer) schedule(conn);
    }
  }

  /** Handles a TCP line if its sender has a token for it (a malformed line needs none). */
  function take(conn: Connection, line: string): boolean {
    const record = parsed(line, 'tcp', conn.address);
    if (!record) return true;
    if (!allow(conn.address)) return false;
    enqueue(record, line, 'tcp', conn.address, true);
    return true;
  }

  function schedule(conn: Connection): void {
    conn.timer = setTimeout(() => {
      conn.timer = undefined;
      takePending(conn);
    }, untilToken(conn.address));
    conn.timer.unref();
  }

  /** Takes the lines a throttled connection holds while its sender has tokens; reads it again after. */
  function takePending(conn: Connection): void {
    while (conn.head < conn.pending.length) {
      if (!take(conn, conn.pending[conn.head] as string)) {
        if (!conn.timer) schedule(conn);
        return;
      }
      conn.pending[conn.head] = '';
      conn.head += 1;
    }
    conn.pending = [];
    conn.head = 0;
    conn.throttled = false;
    if (conn.closed) connections.delete(conn);
    else read(conn);
  }

  /** Queues a parsed line for the rules. */
  function enqueue(
    record: SyslogRecord,
    line: string,
    transport: Transport,
    address: string,
    charged: boolean,
  ): void {
    const bytes = Buffer.byteLength(line);
    waiting.push({ record, bytes, transport, address, charged });
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

  function settle({ transport, address, charged }: Waiting, outcome: RecordOutcome | undefined): void {
    if (charged && outcome?.ok && outcome.result.ignored !== undefined) refund(address);
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
    for (const event of mapped.events) queue.push({ event, transport, address });
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

  /**
   * Hands the queued events to the pipeline in batches. A batch the pipeline refuses for good
   * (an invalid event) is handed over again one event at a time, so that only the events it
   * refuses are lost. A batch in flight is out of the queue: when stop() has given up on it
   * meanwhile, its outcome is counted when the pipeline answers.
   */
  async function drain(): Promise<void> {
    const signal = halt.signal;
    while (queue.length > 0 && !signal.aborted) {
      const batch = queue.splice(0, alone > 0 ? 1 : config.batch_size);
      sending = batch.length;
      let refusal: unknown;
      let persisted = false;
      try {
        await ctx.emit(batch.map((q) => q.event));
        persisted = true;
      } catch (err) {
        refusal = err;
      }
      sending = 0;
      if (persisted) {
        events.inc({ outcome: 'persisted' }, batch.length);
        if (signal.aborted) return;
        alone = Math.max(0, alone - batch.length);
        ctx.status.success();
        if (queue.length < config.batch_size) resume();
        continue;
      }
      if (signal.aborted) {
        lost(batch.length, { code: codeOf(refusal) });
        return;
      }
      if (classOf(refusal) === 'retryable') {
        queue.unshift(...batch);
        pause();
        const asked =
          refusal instanceof RetryableError ? (refusal.retryAfterMs ?? DEFAULT_RETRY_MS) : DEFAULT_RETRY_MS;
        let wait = Math.min(Math.max(asked, 10), MAX_RETRY_MS);
        // Stopping: try again a few times before stop() gives up, rather than sleep past it.
        if (stopBy !== undefined) wait = Math.min(wait, Math.max(10, Math.floor((stopBy - Date.now()) / 4)));
        warn('backpressure', { queued: queue.length }, 'the pipeline is full: reading paused, UDP dropped');
        await sleep(wait, signal);
        continue;
      }
      if (batch.length > 1) {
        queue.unshift(...batch);
        alone = batch.length;
        warn(
          'refused_batch',
          { events: batch.length, code: codeOf(refusal) },
          'the pipeline refused a batch of syslog events: handing them over one at a time',
        );
        continue;
      }
      alone = Math.max(0, alone - 1);
      const [{ event, transport, address }] = batch as [Queued];
      events.inc({ outcome: 'refused' });
      // The record id and where the line came from, not the event's content.
      ctx.logger.error(
        {
          record: event.sourceRecordId,
          type: event.type,
          transport,
          address,
          code: codeOf(refusal),
          problems: problemPaths(refusal),
        },
        'the pipeline refused a syslog event; it is dropped',
      );
      if (queue.length < config.batch_size) resume();
    }
  }

  /** Sleeps `ms`, or less when `signal` fires or stop() calls `wake`. Never rejects. */
  function sleep(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        signal.removeEventListener('abort', done);
        if (wake === done) wake = undefined;
        resolve();
      }
      signal.addEventListener('abort', done, { once: true });
      wake = done;
    });
  }

  /** Counts events that will never be durable, and says so. */
  function lost(count: number, detail: Record<string, unknown>): void {
    if (count === 0) return;
    events.inc({ outcome: 'dropped' }, count);
    ctx.logger.error(
      { events: count, ...detail },
      'syslog events were dropped at stop: the pipeline did not take them before the deadline',
    );
  }

  /** Waits until what is queued is durable and what waits for the rules is mapped, or until `until`. */
  async function settleWithin(until: number): Promise<void> {
    for (;;) {
      const left = until - Date.now();
      if (left <= 0) return;
      if (queue.length > 0 && !pumping) pump();
      const busy = [mapping, pumping].filter((p): p is Promise<void> => p !== undefined);
      if (busy.length === 0) return;
      await waitAtMost(Promise.all(busy), left);
    }
  }

  function onConnection(socket: Socket): void {
    if (stopped) {
      socket.destroy();
      return;
    }
    const address = socket.remoteAddress ?? 'unknown';
    const conn: Connection = {
      socket,
      address,
      pending: [],
      head: 0,
      throttled: false,
      timer: undefined,
      closed: false,
    };
    connections.add(conn);
    const framer = new TcpFramer(config.max_line_bytes, {
      frame: (line) => onTcpLine(conn, line),
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
    socket.on('close', () => {
      conn.closed = true;
      // Lines already read from a throttled sender are still taken, as its tokens refill.
      if (conn.head >= conn.pending.length) connections.delete(conn);
    });
    read(conn);
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
    onUdpLine(message.toString('utf8'), address);
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
    for (const conn of connections) {
      conn.closed = true;
      conn.socket.destroy();
    }
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
      stopBy = until;
      wake?.();
      await closeListeners();
      // Lines read from throttled senders are taken now: the connections are closed, and what a
      // sender had sent before stop is handled like what it sent in time.
      for (const conn of connections) {
        if (conn.timer) clearTimeout(conn.timer);
        conn.timer = undefined;
        for (let i = conn.head; i < conn.pending.length; i += 1) {
          const line = conn.pending[i] as string;
          const record = parsed(line, 'tcp', conn.address);
          if (record) enqueue(record, line, 'tcp', conn.address, false);
        }
      }
      connections.clear();
      // Map what waits and hand on what is queued, within the deadline; what is left then is
      // dropped, counted and logged.
      await settleWithin(until);
      halt.abort();
      if (timer) clearTimeout(timer);
      timer = undefined;
      const unmapped = { udp: 0, tcp: 0 };
      for (const w of waiting) unmapped[w.transport] += 1;
      for (const transport of ['udp', 'tcp'] as const)
        if (unmapped[transport] > 0) lines.inc({ transport, outcome: 'dropped' }, unmapped[transport]);
      if (queue.length > 0 || waiting.length > 0) {
        events.inc({ outcome: 'dropped' }, queue.length);
        ctx.logger.error(
          { events: queue.length, lines: waiting.length, in_flight: sending },
          'stopped with syslog events the pipeline had not taken and messages not yet mapped: they are dropped',
        );
      } else if (sending > 0) {
        ctx.logger.warn(
          { in_flight: sending },
          'stopped while the pipeline was taking syslog events: they are counted when it answers',
        );
      }
      queue.length = 0;
      waiting.length = 0;
      waitingBytes = 0;
      alone = 0;
      stopBy = undefined;
      full = false;
      behind = false;
      paused = false;
    },
  };
}

function codeOf(err: unknown): string | undefined {
  return isBridgeError(err) ? err.code : undefined;
}

/** Where in the event the pipeline found its problems (the paths only: never the values). */
function problemPaths(err: unknown): string[] | undefined {
  if (!isBridgeError(err)) return undefined;
  const problems = (err.detail as { problems?: unknown } | undefined)?.problems;
  if (!Array.isArray(problems)) return undefined;
  return problems.flatMap((p) =>
    typeof (p as { path?: unknown }).path === 'string' ? [(p as { path: string }).path] : [],
  );
}
