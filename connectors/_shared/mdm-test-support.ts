/**
 * Test support: an inbound connector context with in-memory checkpoints, a recording emit, a
 * scheduler whose tasks the test runs, and an HTTP client built on fetch that follows the
 * plugin API contract (classified errors, Retry-After, OAuth client-credentials token cache,
 * flagging refused credentials). Shared by the MDM connectors' behaviour tests (intune,
 * jamf-pro, kandji).
 */
import {
  PermanentError,
  RetryableError,
  callbackLogger,
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
  type ScheduleOptions,
} from '../../core/plugin-api/index.ts';

export interface EmitCall {
  events: EventDraft[];
  checkpoint: EmitOptions['checkpoint'];
}

export interface LogEntry {
  level: string;
  msg: string | undefined;
  fields: Record<string, unknown>;
}

export interface TestContext<S = unknown> {
  ctx: InboundContext<S>;
  checkpoints: Map<string, unknown>;
  /** Successful emits, in order. */
  emits: EmitCall[];
  /** Every event of every successful emit. */
  events(): EventDraft[];
  /** Makes the next emit fail with `error` (default: an outbox-full RetryableError); nothing is committed. */
  failNextEmit(error?: Error): void;
  statuses: Array<{ state: InstanceState; reason: string | undefined }>;
  successes: number;
  logs: LogEntry[];
  counter(name: string, labels?: Record<string, string>): number;
  /** The tasks start() scheduled. */
  tasks: Array<{ name: string; options: ScheduleOptions; run: (signal: AbortSignal) => Promise<void> }>;
  /** Runs a scheduled task once, as the scheduler would. */
  runTask(name?: string): Promise<void>;
  /** Aborts the instance signal, as the host does before stop(). */
  abort(): void;
  /** Requests made to the token endpoint by clients of this context. */
  tokenRequests(): number;
}

function retryAfterMs(value: string | null): number | undefined {
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - Date.now()) : undefined;
}

function classify(method: string, url: string, status: number, headers: Headers, body: string): Error {
  const what = `${method} ${url} answered ${status}${body ? `: ${body.slice(0, 200)}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) {
    const wait = retryAfterMs(headers.get('retry-after'));
    const code =
      status === 429
        ? 'SSF_ERR_HTTP_RATE_LIMITED'
        : status === 408
          ? 'SSF_ERR_HTTP_TIMEOUT'
          : 'SSF_ERR_HTTP_SERVER';
    return new RetryableError(what, {
      code,
      ...(wait === undefined ? {} : { retryAfterMs: wait }),
      detail: { status },
    });
  }
  if (status === 401 || status === 403) {
    return new PermanentError(`${what}; check the credentials`, {
      code: 'SSF_ERR_HTTP_AUTH',
      authFailure: true,
      detail: { status },
    });
  }
  return new PermanentError(what, { code: 'SSF_ERR_HTTP_CLIENT', detail: { status } });
}

class FetchClient implements HttpClient {
  #token: { value: string; refreshAt: number } | undefined;

  constructor(
    private readonly options: HttpClientOptions,
    private readonly instance: AbortSignal,
    private readonly onAuthFailure: (reason: string) => void,
    private readonly countToken: () => void,
  ) {}

  get<T>(url: string, req: Omit<HttpRequest, 'url' | 'method'> = {}) {
    return this.request<T>({ ...req, url, method: 'GET' });
  }

  post<T>(url: string, body?: unknown, req: Omit<HttpRequest, 'url' | 'method' | 'body'> = {}) {
    return this.request<T>({ ...req, url, method: 'POST', body });
  }

  async request<T>(req: HttpRequest): Promise<HttpResponse<T>> {
    const auth = this.options.auth;
    for (let attempt = 0; ; attempt += 1) {
      const headers: Record<string, string> = {
        accept: 'application/json',
        ...this.options.headers,
        ...req.headers,
      };
      let token: string | undefined;
      try {
        token = auth?.type === 'oauth2_client_credentials' ? await this.#oauth(auth) : undefined;
      } catch (err) {
        if (err instanceof PermanentError && err.authFailure) this.onAuthFailure(err.message);
        throw err;
      }
      if (token) headers['authorization'] = `Bearer ${token}`;
      else if (auth) Object.assign(headers, staticAuth(auth));
      try {
        return await this.#send<T>(req, headers);
      } catch (err) {
        const refused = err instanceof PermanentError && err.detail?.['status'] === 401;
        if (token && refused && attempt === 0) {
          this.#token = undefined;
          continue;
        }
        if (err instanceof PermanentError && err.authFailure) this.onAuthFailure(err.message);
        throw err;
      }
    }
  }

  async #oauth(auth: Extract<HttpAuth, { type: 'oauth2_client_credentials' }>): Promise<string> {
    if (this.#token && Date.now() < this.#token.refreshAt) return this.#token.value;
    this.countToken();
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (auth.scope) form.set('scope', auth.scope);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded' };
    if (auth.clientAuth === 'body') {
      form.set('client_id', auth.clientId);
      form.set('client_secret', auth.clientSecret.reveal());
    } else {
      headers['authorization'] =
        `Basic ${Buffer.from(`${auth.clientId}:${auth.clientSecret.reveal()}`).toString('base64')}`;
    }
    const res = await this.#send<{ access_token?: string; expires_in?: number }>(
      { url: auth.tokenUrl, method: 'POST', body: form },
      headers,
    ).catch((err: unknown) => {
      if (err instanceof PermanentError && err.detail?.['status'] === 400) {
        throw new PermanentError(`${err.message}; the token endpoint refused the client credentials`, {
          code: 'SSF_ERR_HTTP_AUTH',
          authFailure: true,
        });
      }
      throw err;
    });
    const value = res.data?.access_token;
    if (!value) throw new PermanentError('the token endpoint answered without access_token');
    const lifetime = (res.data.expires_in ?? 300) * 1000;
    this.#token = { value, refreshAt: Date.now() + lifetime - Math.min(60_000, lifetime / 10) };
    return value;
  }

  async #send<T>(req: HttpRequest, headers: Record<string, string>): Promise<HttpResponse<T>> {
    const base = this.options.baseURL;
    const joined =
      /^https?:\/\//i.test(req.url) || !base
        ? req.url
        : `${base.replace(/\/+$/, '')}/${req.url.replace(/^\/+/, '')}`;
    const url = new URL(joined);
    for (const [k, v] of Object.entries(req.params ?? {}))
      if (v !== undefined) url.searchParams.append(k, String(v));
    let body: string | undefined;
    if (req.body instanceof URLSearchParams) body = req.body.toString();
    else if (typeof req.body === 'string') body = req.body;
    else if (req.body !== undefined) {
      body = JSON.stringify(req.body);
      headers['content-type'] ??= 'application/json';
    }
    const timeout = AbortSignal.timeout(req.timeoutMs ?? this.options.timeoutMs ?? 5_000);
    const signals = [this.instance, timeout, ...(req.signal ? [req.signal] : [])];
    const method = req.method ?? 'GET';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        signal: AbortSignal.any(signals),
      });
    } catch (err) {
      if (timeout.aborted)
        throw new RetryableError(`${method} ${url.pathname} timed out`, { code: 'SSF_ERR_HTTP_TIMEOUT' });
      if (signals.some((s) => s.aborted))
        throw new RetryableError(`${method} ${url.pathname} was aborted`, { code: 'SSF_ERR_HTTP_ABORTED' });
      throw new RetryableError(`${method} ${url.pathname} failed: ${(err as Error).message}`, {
        code: 'SSF_ERR_HTTP_NETWORK',
      });
    }
    const text = await res.text();
    if (!res.ok) throw classify(method, url.pathname, res.status, res.headers, text);
    const responseHeaders: Record<string, string> = {};
    res.headers.forEach((v, k) => (responseHeaders[k] = v));
    const data = req.responseType === 'text' ? text : text.trim() ? (JSON.parse(text) as unknown) : undefined;
    return { status: res.status, headers: responseHeaders, data: data as T };
  }
}

function staticAuth(auth: HttpAuth): Record<string, string> {
  switch (auth.type) {
    case 'bearer':
      return { authorization: `Bearer ${auth.token.reveal()}` };
    case 'basic':
      return {
        authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password.reveal()}`).toString('base64')}`,
      };
    case 'header':
      return { [auth.name]: auth.value.reveal() };
    default:
      return {};
  }
}

export function testContext<S = unknown>(
  options: { instanceId?: string; now?: () => Date } = {},
): TestContext<S> {
  const abort = new AbortController();
  const checkpoints = new Map<string, unknown>();
  const emits: EmitCall[] = [];
  const statuses: TestContext<S>['statuses'] = [];
  const logs: LogEntry[] = [];
  const counters = new Map<string, number>();
  const tasks: TestContext<S>['tasks'] = [];
  let failure: Error | undefined;
  let tokens = 0;
  const result = { successes: 0 } as { successes: number };

  const key = (name: string, labels?: Record<string, string>) =>
    `${name}${JSON.stringify(Object.entries(labels ?? {}).sort())}`;

  const http: HttpClientFactory = {
    create: (opts = {}) =>
      new FetchClient(
        opts,
        abort.signal,
        (reason) => statuses.push({ state: 'permanent_error', reason }),
        () => (tokens += 1),
      ),
  };

  const ctx: InboundContext<S> = {
    instanceId: options.instanceId ?? 'mdm-test',
    connectorId: 'test',
    logger: callbackLogger((level, fields, msg) => logs.push({ level, msg, fields })),
    http,
    checkpoints: {
      get: async (name = 'default') => structuredClone(checkpoints.get(name)) as S | undefined,
      set: async (value, name = 'default') => void checkpoints.set(name, structuredClone(value)),
    },
    scheduler: {
      schedule: (name, scheduleOptions, run) => {
        const task = { name, options: scheduleOptions, run };
        tasks.push(task);
        return {
          stop: () => {
            const i = tasks.indexOf(task);
            if (i >= 0) tasks.splice(i, 1);
          },
        };
      },
    },
    clock: { now: options.now ?? (() => new Date()) },
    metrics: {
      counter: (name) => ({
        inc: (labels, value = 1) => {
          counters.set(key(name, labels), (counters.get(key(name, labels)) ?? 0) + value);
          counters.set(key(name), (counters.get(key(name)) ?? 0) + (labels ? value : 0));
        },
      }),
      histogram: () => ({ observe: () => undefined }),
      gauge: (name) => ({ set: (labels, value) => void counters.set(key(name, labels ?? undefined), value) }),
    },
    status: {
      set: (state, reason) => void statuses.push({ state, reason }),
      success: () => void (result.successes += 1),
    },
    signal: abort.signal,
    emit: async (events: EventDraft[], emitOptions?: EmitOptions): Promise<EmitResult> => {
      if (failure) {
        const err = failure;
        failure = undefined;
        throw err;
      }
      emits.push({ events: structuredClone(events), checkpoint: structuredClone(emitOptions?.checkpoint) });
      if (emitOptions?.checkpoint) {
        checkpoints.set(
          emitOptions.checkpoint.name ?? 'default',
          structuredClone(emitOptions.checkpoint.value),
        );
      }
      return { accepted: events.map((e) => e.sourceRecordId), duplicates: 0 };
    },
  };

  return {
    ctx,
    checkpoints,
    emits,
    events: () => emits.flatMap((e) => e.events),
    failNextEmit(error) {
      failure =
        error ??
        new RetryableError('the outbox is full', { code: 'SSF_ERR_DELIVERY_QUEUE_FULL', retryAfterMs: 2000 });
    },
    statuses,
    get successes() {
      return result.successes;
    },
    logs,
    counter: (name, labels) => counters.get(key(name, labels)) ?? 0,
    tasks,
    async runTask(name) {
      const task = name ? tasks.find((t) => t.name === name) : tasks[0];
      if (!task) throw new Error(`no task ${name ?? ''} scheduled`);
      await task.run(new AbortController().signal);
    },
    abort: () => abort.abort(new Error('instance stopping')),
    tokenRequests: () => tokens,
  };
}
