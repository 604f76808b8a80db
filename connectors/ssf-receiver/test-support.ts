/**
 * What the ssf-receiver tests share: an inbound context that records what the connector emits,
 * reports and counts, with a scheduler that runs tasks as the core's does (on the leader only,
 * never overlapping themselves), a wait for a condition, and an HTTP server that hands pushes to
 * connectors as the bridge's server does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  assertCheckpointExpected,
  checkDraft,
  memoryReceivedIds,
  staticDeviceDirectory,
} from '../../core/plugin-api/testing/index.ts';
import {
  PermanentError,
  RetryableError,
  type EventDraft,
  type HttpClientFactory,
  type InboundConnector,
  type InboundContext,
  type InboundRequest,
  type InstanceState,
  type Logger,
  type ReceivedIds,
} from '../../core/plugin-api/index.ts';

export interface Harness {
  ctx: InboundContext;
  emitted: EventDraft[];
  statuses: Array<{ state: InstanceState; reason?: string }>;
  counters: Map<string, number>;
  abort: AbortController;
}

export interface HarnessOptions {
  /**
   * Stands for the store: two harnesses given the same map are two bridge instances on one
   * database (they share `ctx.receivedIds` too).
   */
  checkpoints?: Map<string, unknown>;
  /** False: this instance is not the scheduler's leader, so its scheduled tasks never run. */
  leader?: boolean;
  /** The HTTP client factory the connector gets, stopped by the harness's signal. */
  http: (signal: AbortSignal, logger: Logger) => HttpClientFactory;
  /** The connector's logger; default: one that drops everything (see recordingLogger). */
  logger?: Logger;
}

export interface LogLine {
  level: 'trace' | 'debug' | 'info' | 'warn' | 'error';
  fields: Record<string, unknown>;
  msg: string;
}

/** A logger that keeps what it is given, to check what a connector logs. */
export function recordingLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine['level']) =>
    (obj: object | string, msg?: string): void =>
      void lines.push(
        typeof obj === 'string'
          ? { level, fields: {}, msg: obj }
          : { level, fields: obj as Record<string, unknown>, msg: msg ?? '' },
      );
  const logger: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return { logger, lines };
}

/** The `ctx.receivedIds` of each stand-in store (a checkpoints map). */
const receivedIdsOfStore = new WeakMap<Map<string, unknown>, ReceivedIds>();

export function receiverHarness(instanceId: string, options: HarnessOptions): Harness {
  const { checkpoints = new Map<string, unknown>(), leader = true } = options;
  let receivedIds = receivedIdsOfStore.get(checkpoints);
  if (receivedIds === undefined) {
    receivedIds = memoryReceivedIds();
    receivedIdsOfStore.set(checkpoints, receivedIds);
  }
  const abort = new AbortController();
  const emitted: EventDraft[] = [];
  const statuses: Harness['statuses'] = [];
  const counters = new Map<string, number>();
  const silent: Logger = {
    trace: () => undefined,
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: () => undefined,
    child: () => silent,
  };
  const logger = options.logger ?? silent;
  const key = (name: string, labels?: Record<string, string>) =>
    `${name}${labels ? JSON.stringify(Object.entries(labels).sort()) : ''}`;
  const ctx: InboundContext = {
    instanceId,
    devices: staticDeviceDirectory(),
    receivedIds,
    connectorId: 'ssf-receiver',
    logger,
    http: options.http(abort.signal, logger),
    checkpoints: {
      get: async (name = 'default') => checkpoints.get(name),
      set: async (value, name = 'default') => void checkpoints.set(name, value),
    },
    scheduler: {
      schedule: (_name, schedule, task) => {
        const controller = new AbortController();
        let running = false;
        const run = () => {
          if (!leader || running || controller.signal.aborted) return;
          running = true;
          void task(controller.signal)
            .catch(() => undefined)
            .finally(() => (running = false));
        };
        if (schedule.runOnStart) setImmediate(run);
        const timer = schedule.everyMs ? setInterval(run, schedule.everyMs) : undefined;
        return {
          stop: () => {
            clearInterval(timer);
            controller.abort();
          },
        };
      },
    },
    clock: { now: () => new Date() },
    metrics: {
      counter: (name) => ({
        inc: (labels, value = 1) =>
          void counters.set(key(name, labels), (counters.get(key(name, labels)) ?? 0) + value),
      }),
      histogram: () => ({ observe: () => undefined }),
      gauge: (name) => ({ set: (labels, value) => void counters.set(key(name, labels), value) }),
    },
    status: {
      set: (state, reason) => void statuses.push({ state, ...(reason ? { reason } : {}) }),
      success: () => undefined,
    },
    signal: abort.signal,
    async emit(events, emitOptions) {
      // Like the core: the event catalog refuses the whole batch when any event is invalid.
      const refused = events.map((e) => checkDraft(e, instanceId)).find((c) => !c.ok);
      if (refused && !refused.ok) {
        throw new PermanentError(`invalid events: ${refused.message}`, {
          code: 'SSF_ERR_PIPELINE_INVALID_EVENT',
        });
      }
      // Like the stores: a checkpoint goes with the events, compare-and-set when it says so.
      const write = emitOptions?.checkpoint;
      assertCheckpointExpected(instanceId, write, (name) => checkpoints.get(name));
      emitted.push(...events);
      if (write) checkpoints.set(write.name ?? 'default', structuredClone(write.value));
      return { accepted: events.map((e) => e.sourceRecordId), duplicates: 0 };
    },
  };
  return { ctx, emitted, statuses, counters, abort };
}

/** The value of a counter or gauge the connector recorded with these labels. */
export function count(h: Harness, name: string, labels: Record<string, string>): number {
  return h.counters.get(`${name}${JSON.stringify(Object.entries(labels).sort())}`) ?? 0;
}

/** Polls until `probe` gives a value, or fails naming `what`. */
export async function eventually<T>(
  probe: () => T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** The whole body of a request. */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * Serves `POST /ingest/<instance id>` on loopback like the bridge's server: the request goes to
 * that connector's handleWebhook, a RetryableError becomes 503 with Retry-After.
 */
export async function serveIngest(
  connectors: Map<string, InboundConnector>,
): Promise<{ url: string; server: Server }> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const raw = await readBody(req);
      const id = decodeURIComponent((req.url ?? '').replace(/^\/ingest\//, '').split('?')[0] as string);
      const connector = connectors.get(id);
      if (!connector?.handleWebhook) {
        res.writeHead(404).end();
        return;
      }
      const request: InboundRequest = {
        method: req.method ?? 'POST',
        headers: req.headers as Record<string, string | undefined>,
        query: {},
        rawBody: raw,
        body: undefined,
        remoteAddress: '127.0.0.1',
      };
      try {
        const answer = await connector.handleWebhook(request);
        res.writeHead(answer.status, {
          ...(answer.body === undefined ? {} : { 'content-type': 'application/json' }),
          ...answer.headers,
        });
        res.end(answer.body === undefined ? '' : JSON.stringify(answer.body));
      } catch (err) {
        const retryAfter = err instanceof RetryableError ? Math.ceil((err.retryAfterMs ?? 5000) / 1000) : 0;
        res.writeHead(
          err instanceof RetryableError ? 503 : 500,
          retryAfter ? { 'retry-after': String(retryAfter) } : {},
        );
        res.end(String(err));
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}
