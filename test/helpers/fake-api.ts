/**
 * A loopback (127.0.0.1) HTTP server for fakes of vendor APIs: one handler sees every request
 * (method, path, query, headers, raw and parsed body) and answers; tests can slip in answers
 * for the next matching requests (a 429, a 503, a slow answer) and read every request made.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface FakeRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  body: string;
  /** The body parsed as JSON, or as a form for application/x-www-form-urlencoded. */
  json: unknown;
}

export interface FakeResponse {
  status?: number;
  headers?: Record<string, string>;
  /** Objects are sent as JSON; strings as they are. */
  body?: unknown;
  /** Wait this long before answering (to outlast a client's timeout). */
  delayMs?: number;
}

export type FakeHandler = (req: FakeRequest) => FakeResponse | Promise<FakeResponse>;

interface Injected {
  response: FakeResponse;
  match: (req: FakeRequest) => boolean;
  times: number;
}

export class FakeApi {
  readonly requests: FakeRequest[] = [];
  #server: Server | undefined;
  #url = '';
  #injected: Injected[] = [];
  readonly #sockets = new Set<Socket>();

  constructor(private readonly handler: FakeHandler) {}

  get url(): string {
    return this.#url;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const url = new URL(req.url ?? '/', 'http://fake');
        const body = Buffer.concat(chunks).toString('utf8');
        const headers: Record<string, string | undefined> = {};
        for (const [name, value] of Object.entries(req.headers)) {
          headers[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        const recorded: FakeRequest = {
          method: req.method ?? 'GET',
          path: url.pathname,
          query: Object.fromEntries(url.searchParams),
          headers,
          body,
          json: parse(body, headers['content-type']),
        };
        this.requests.push(recorded);
        void this.#answer(recorded).then(async (response) => {
          if (response.delayMs) await new Promise((r) => setTimeout(r, response.delayMs));
          if (res.destroyed) return;
          const isText = typeof response.body === 'string';
          const payload =
            response.body === undefined
              ? ''
              : isText
                ? (response.body as string)
                : JSON.stringify(response.body);
          const hasType = Object.keys(response.headers ?? {}).some((h) => h.toLowerCase() === 'content-type');
          res.writeHead(response.status ?? 200, {
            ...(response.body !== undefined && !isText && !hasType
              ? { 'content-type': 'application/json' }
              : {}),
            ...response.headers,
          });
          res.end(payload);
        });
      });
    });
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  /** The next `times` requests that `match` get `response` instead of the fake's own answer. */
  inject(response: FakeResponse, match: (req: FakeRequest) => boolean = () => true, times = 1): void {
    this.#injected.push({ response, match, times });
  }

  /** Forgets recorded requests and injected answers. */
  reset(): void {
    this.requests.length = 0;
    this.#injected = [];
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #answer(req: FakeRequest): Promise<FakeResponse> {
    const injected = this.#injected.find((i) => i.match(req));
    if (injected) {
      injected.times -= 1;
      if (injected.times <= 0) this.#injected.splice(this.#injected.indexOf(injected), 1);
      return injected.response;
    }
    try {
      return await this.handler(req);
    } catch (err) {
      return { status: 500, body: { error: `fake handler failed: ${(err as Error).message}` } };
    }
  }
}

function parse(body: string, contentType: string | undefined): unknown {
  if (body.length === 0) return undefined;
  if (contentType?.startsWith('application/x-www-form-urlencoded')) {
    return Object.fromEntries(new URLSearchParams(body));
  }
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}
