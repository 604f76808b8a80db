/**
 * Test support for the EDR connectors' behaviour tests: an InboundContext that records what a
 * connector emits, commits and reports, with an HTTP client factory that honours the plugin
 * API's documented contract (docs/http-client.md): base URLs and params, bearer / basic / header
 * / OAuth 2.0 client-credentials auth with a token cache and one forced refresh on 401, a
 * deadline on every request, `json`/`text`/`stream` bodies, and every non-2xx outcome classified
 * (408/429/5xx retryable with `Retry-After` or `X-Ratelimit-Retryafter`, 401/403 permanent with
 * `authFailure` and the instance flagged, other 4xx permanent). Vendor APIs are mocked by the
 * conformance kit's loopback MockServer.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import {
  PermanentError,
  RetryableError,
  type EmitOptions,
  type EmitResult,
  type EventDraft,
  type HttpAuth,
  type HttpClient,
  type HttpClientFactory,
  type HttpClientOptions,
  type HttpRequest,
  type HttpResponse,
  type InboundContext,
  type InstanceState,
  type Logger,
  type ScheduleOptions,
} from '../../core/plugin-api/index.ts';

function retryAfterMs(headers: Headers, nowMs: number): number | undefined {
  const standard = headers.get('retry-after');
  if (standard !== null && /^\d+$/.test(standard.trim())) return Number(standard.trim()) * 1000;
  const epoch = headers.get('x-ratelimit-retryafter');
  if (epoch !== null && /^\d+$/.test(epoch.trim())) return Math.max(0, Number(epoch.trim()) * 1000 - nowMs);
  return undefined;
}

function classify(status: number, what: string, headers: Headers, body: string, nowMs: number) {
  const answered = `${what} answered ${status}${body ? `: ${body.slice(0, 200)}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) {
    const wait = retryAfterMs(headers, nowMs);
    return new RetryableError(answered, {
      code: status === 429 ? 'SSF_ERR_HTTP_RATE_LIMITED' : 'SSF_ERR_HTTP_SERVER',
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
    });
  }
  if (status === 401 || status === 403) {
    return new PermanentError(`${answered}; check the credentials`, {
      code: 'SSF_ERR_HTTP_AUTH',
      authFailure: true,
    });
  }
  return new PermanentError(answered, { code: 'SSF_ERR_HTTP_CLIENT' });
}

interface Token {
  value: string;
  refreshAt: number;
}

type OAuth = Extract<HttpAuth, { type: 'oauth2_client_credentials' }>;

class ContractClient implements HttpClient {
  #token: Token | undefined;

  constructor(
    private readonly options: HttpClientOptions,
    private readonly instance: AbortSignal,
    private readonly onAuthFailure: (reason: string) => void,
    private readonly now: () => number,
  ) {}

  get<T>(url: string, req: Omit<HttpRequest, 'url' | 'method'> = {}) {
    return this.request<T>({ ...req, url, method: 'GET' });
  }

  post<T>(url: string, body?: unknown, req: Omit<HttpRequest, 'url' | 'method' | 'body'> = {}) {
    return this.request<T>({ ...req, url, method: 'POST', body });
  }

  async request<T>(req: HttpRequest): Promise<HttpResponse<T>> {
    const auth = this.options.auth;
    const own = Object.keys(req.headers ?? {}).some((h) => h.toLowerCase() === 'authorization');
    const oauth = auth?.type === 'oauth2_client_credentials' && !own ? auth : undefined;
    for (let attempt = 0; ; attempt += 1) {
      const token = oauth ? await this.#accessToken(oauth) : undefined;
      try {
        return await this.#exchange<T>(req, token);
      } catch (err) {
        const refused = err instanceof PermanentError && err.authFailure;
        if (refused && token !== undefined && attempt === 0) {
          this.#token = undefined;
          continue;
        }
        if (refused) this.onAuthFailure((err as Error).message);
        throw err;
      }
    }
  }

  async #accessToken(auth: OAuth): Promise<string> {
    if (this.#token && this.now() < this.#token.refreshAt) return this.#token.value;
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (auth.scope) form.set('scope', auth.scope);
    for (const [k, v] of Object.entries(auth.extraParams ?? {})) form.set(k, v);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth.clientAuth === 'body') {
      form.set('client_id', auth.clientId);
      form.set('client_secret', auth.clientSecret.reveal());
    } else {
      headers['authorization'] =
        `Basic ${Buffer.from(`${auth.clientId}:${auth.clientSecret.reveal()}`).toString('base64')}`;
    }
    const res = await this.#fetch(
      auth.tokenUrl,
      { method: 'POST', headers, body: form.toString() },
      undefined,
    );
    const text = await res.text();
    if (!res.ok) {
      const err = classify(
        res.status,
        `POST ${auth.tokenUrl} (OAuth token endpoint)`,
        res.headers,
        '',
        this.now(),
      );
      if (err instanceof PermanentError && err.authFailure) this.onAuthFailure(err.message);
      throw err;
    }
    const json = JSON.parse(text) as { access_token: string; expires_in?: number };
    const lifetime = (json.expires_in ?? 300) * 1000;
    this.#token = {
      value: json.access_token,
      refreshAt: this.now() + lifetime - Math.min(60_000, lifetime / 10),
    };
    return json.access_token;
  }

  #url(req: HttpRequest): string {
    const absolute = /^https?:\/\//i.test(req.url);
    const base = this.options.baseURL?.replace(/\/+$/, '');
    const url = new URL(absolute || !base ? req.url : `${base}/${req.url.replace(/^\/+/, '')}`);
    for (const [k, v] of Object.entries(req.params ?? {}))
      if (v !== undefined) url.searchParams.append(k, String(v));
    return url.toString();
  }

  async #fetch(
    url: string,
    init: RequestInit,
    caller: AbortSignal | undefined,
    timeoutMs = this.options.timeoutMs ?? 30_000,
  ) {
    const signals = [this.instance, AbortSignal.timeout(timeoutMs), ...(caller ? [caller] : [])];
    try {
      return await fetch(url, { ...init, signal: AbortSignal.any(signals) });
    } catch (err) {
      throw new RetryableError(`${init.method ?? 'GET'} ${url} failed: ${(err as Error).message}`, {
        code: 'SSF_ERR_HTTP_NETWORK',
      });
    }
  }

  async #exchange<T>(req: HttpRequest, token: string | undefined): Promise<HttpResponse<T>> {
    const method = req.method ?? 'GET';
    const url = this.#url(req);
    const headers: Record<string, string> = { ...this.options.headers };
    const auth = this.options.auth;
    if (auth?.type === 'bearer') headers['authorization'] = `Bearer ${auth.token.reveal()}`;
    if (auth?.type === 'header') headers[auth.name.toLowerCase()] = auth.value.reveal();
    if (auth?.type === 'basic') {
      headers['authorization'] =
        `Basic ${Buffer.from(`${auth.username}:${auth.password.reveal()}`).toString('base64')}`;
    }
    if (token !== undefined) headers['authorization'] = `Bearer ${token}`;
    for (const [k, v] of Object.entries(req.headers ?? {})) headers[k.toLowerCase()] = v;
    let body: string | undefined;
    if (typeof req.body === 'string') body = req.body;
    else if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] ??= 'application/json';
    }
    const streaming = req.responseType === 'stream';
    // For streams the deadline covers the wait for the headers only.
    const headersOnly = new AbortController();
    const timer = setTimeout(() => headersOnly.abort(), req.timeoutMs ?? this.options.timeoutMs ?? 30_000);
    const signals = [this.instance, headersOnly.signal, ...(req.signal ? [req.signal] : [])];
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      clearTimeout(timer);
      throw new RetryableError(`${method} ${url} failed: ${(err as Error).message}`, {
        code: 'SSF_ERR_HTTP_NETWORK',
      });
    }
    const responseHeaders: Record<string, string> = {};
    res.headers.forEach((v, k) => (responseHeaders[k] = v));
    if (!res.ok) {
      clearTimeout(timer);
      const text = await res.text().catch(() => '');
      throw classify(res.status, `${method} ${url}`, res.headers, text, this.now());
    }
    if (streaming && res.body) {
      clearTimeout(timer);
      const later = AbortSignal.any([this.instance, ...(req.signal ? [req.signal] : [])]);
      const stream = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
      const stop = () =>
        stream.destroy(new RetryableError(`${method} ${url} was aborted`, { code: 'SSF_ERR_HTTP_ABORTED' }));
      later.addEventListener('abort', stop, { once: true });
      stream.once('close', () => later.removeEventListener('abort', stop));
      return { status: res.status, headers: responseHeaders, data: stream as T };
    }
    try {
      const text = await res.text();
      const data =
        req.responseType === 'text' ? text : text.trim() === '' ? undefined : (JSON.parse(text) as unknown);
      return { status: res.status, headers: responseHeaders, data: data as T };
    } finally {
      clearTimeout(timer);
    }
  }
}

export interface TestLogLine {
  level: string;
  obj: unknown;
  msg: string | undefined;
}

function recordingLogger(lines: TestLogLine[]): Logger {
  const at = (level: string) => (obj: object | string, msg?: string) => void lines.push({ level, obj, msg });
  const logger: Logger = {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: () => logger,
  };
  return logger;
}

export interface Emitted {
  events: EventDraft[];
  checkpoint: EmitOptions['checkpoint'];
  ok: boolean;
}

export interface TestTask {
  name: string;
  options: ScheduleOptions;
  run(signal: AbortSignal): Promise<void>;
  stopped: boolean;
}

export interface TestContextOptions {
  /** Checkpoints of an earlier instance, to restart from them. */
  checkpoints?: Map<string, unknown>;
  /** Source record ids seen by an earlier instance, so duplicates are counted across restarts. */
  persisted?: Set<string>;
  now?: () => number;
}

/** An inbound context for one test instance, and what the connector did with it. */
export function createTestContext(options: TestContextOptions = {}) {
  const abort = new AbortController();
  const checkpoints = options.checkpoints ?? new Map<string, unknown>();
  const persisted = options.persisted ?? new Set<string>();
  const emitted: Emitted[] = [];
  const statuses: Array<{ state: InstanceState; reason?: string }> = [];
  const logs: TestLogLine[] = [];
  const tasks: TestTask[] = [];
  const counters = new Map<string, number>();
  const now = options.now ?? Date.now;
  let failEmits = 0;
  let emitFailureRetryAfterMs: number | undefined;
  const flag = (state: InstanceState, reason?: string) =>
    void statuses.push(reason === undefined ? { state } : { state, reason });

  const ctx: InboundContext = {
    instanceId: 'edr-test',
    connectorId: 'edr-test',
    logger: recordingLogger(logs),
    http: {
      create: (o: HttpClientOptions = {}) =>
        new ContractClient(o, abort.signal, (reason) => flag('permanent_error', reason), now),
    } satisfies HttpClientFactory,
    checkpoints: {
      get: async (name = 'default') => structuredClone(checkpoints.get(name)),
      set: async () => {
        throw new Error('checkpoints are committed with the events, never set directly');
      },
    },
    scheduler: {
      schedule(name, scheduleOptions, run) {
        const task: TestTask = { name, options: scheduleOptions, run, stopped: false };
        tasks.push(task);
        return { stop: () => void (task.stopped = true) };
      },
    },
    clock: { now: () => new Date(now()) },
    metrics: {
      counter: (name) => ({
        inc: (labels, value = 1) => {
          const key = `${name}${JSON.stringify(labels ?? {})}`;
          counters.set(key, (counters.get(key) ?? 0) + value);
        },
      }),
      gauge: () => ({ set: () => undefined }),
      histogram: () => ({ observe: () => undefined }),
    },
    status: { set: flag, success: () => flag('ok') },
    signal: abort.signal,
    async emit(events: EventDraft[], emitOptions?: EmitOptions): Promise<EmitResult> {
      if (failEmits > 0) {
        failEmits -= 1;
        emitted.push({ events, checkpoint: emitOptions?.checkpoint, ok: false });
        throw new RetryableError('the outbox is full', {
          code: 'SSF_ERR_DELIVERY_QUEUE_FULL',
          ...(emitFailureRetryAfterMs === undefined ? {} : { retryAfterMs: emitFailureRetryAfterMs }),
        });
      }
      emitted.push({ events, checkpoint: emitOptions?.checkpoint, ok: true });
      let duplicates = 0;
      for (const e of events) {
        const key = `${e.sourceRecordId}|${e.type}`;
        if (persisted.has(key)) duplicates += 1;
        persisted.add(key);
      }
      if (emitOptions?.checkpoint) {
        checkpoints.set(
          emitOptions.checkpoint.name ?? 'default',
          structuredClone(emitOptions.checkpoint.value),
        );
      }
      return { accepted: events.map((e) => e.sourceRecordId), duplicates };
    },
  };

  return {
    ctx,
    abort,
    checkpoints,
    persisted,
    emitted,
    statuses,
    logs,
    tasks,
    /** Events that were made durable, in order. */
    events: () => emitted.filter((e) => e.ok).flatMap((e) => e.events),
    counter: (name: string, labels: Record<string, string>) =>
      counters.get(`${name}${JSON.stringify(labels)}`) ?? 0,
    failNextEmits(count: number, retryAfterMs?: number) {
      failEmits = count;
      emitFailureRetryAfterMs = retryAfterMs;
    },
    /** Runs the task scheduled under `name` once, as the scheduler would. */
    async runTask(name: string): Promise<void> {
      const task = tasks.find((t) => t.name === name && !t.stopped);
      if (!task)
        throw new Error(`no running task ${name}; scheduled: ${tasks.map((t) => t.name).join(', ')}`);
      await task.run(new AbortController().signal);
    },
    /** Polls `predicate` until it holds (or fails after `timeoutMs`). */
    async until(predicate: () => boolean, timeoutMs = 5_000, what = 'the condition'): Promise<void> {
      const started = Date.now();
      while (!predicate()) {
        if (Date.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
  };
}

export type TestContext = ReturnType<typeof createTestContext>;
