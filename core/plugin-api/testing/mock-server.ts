import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What the mock answers. Objects are sent as JSON; strings and Buffers as they are. */
export interface MockResponse {
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | undefined>;
  body: string;
  /** The body parsed as JSON, when it is JSON. */
  json: unknown;
}

export type MockHandler = (req: RecordedRequest) => MockResponse | Promise<MockResponse>;

/**
 * A loopback HTTP server standing in for a vendor API or a receiver. Routes answer by method
 * and path; an override (an error response, or `hang`) answers every request while it is set.
 */
export class MockServer {
  readonly requests: RecordedRequest[] = [];
  /** The answer for requests no route matches. */
  fallback: MockResponse = { status: 404, body: { error: 'no route in the mock API' } };
  #server: Server | undefined;
  #url = '';
  #routes = new Map<string, MockHandler>();
  #override: MockResponse | 'hang' | undefined;
  readonly #hanging = new Set<ServerResponse>();
  readonly #sockets = new Set<Socket>();

  /** Base URL, e.g. `http://127.0.0.1:41234` (no trailing slash). */
  get url(): string {
    if (!this.#server) throw new Error('the mock server is not started');
    return this.#url;
  }

  async start(): Promise<this> {
    const server = createServer((req, res) => void this.#handle(req, res));
    server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    this.#server = server;
    this.#url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return this;
  }

  /** Answers `METHOD path` with the handler (replacing an earlier one). */
  on(method: string, path: string, handler: MockHandler): this {
    this.#routes.set(`${method.toUpperCase()} ${path}`, handler);
    return this;
  }

  /** Answers every request with `response`, or never (`hang`), until cleared with undefined. */
  override(response: MockResponse | 'hang' | undefined): void {
    this.#override = response;
    if (response === undefined) this.#releaseHanging();
  }

  /** Forgets routes, recorded requests and overrides; ends requests left hanging. */
  reset(fallback: MockResponse = { status: 404, body: { error: 'no route in the mock API' } }): void {
    this.#routes.clear();
    this.requests.length = 0;
    this.fallback = fallback;
    this.override(undefined);
  }

  async close(): Promise<void> {
    this.#releaseHanging();
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const recorded = await record(req);
    this.requests.push(recorded);
    if (this.#override === 'hang') {
      this.#hanging.add(res);
      res.on('close', () => this.#hanging.delete(res));
      return;
    }
    let response: MockResponse;
    try {
      const handler = this.#routes.get(`${recorded.method} ${recorded.path}`);
      response = this.#override ?? (handler ? await handler(recorded) : this.fallback);
    } catch (err) {
      response = { status: 500, body: { error: `mock handler failed: ${(err as Error).message}` } };
    }
    send(res, response);
  }

  #releaseHanging(): void {
    for (const res of this.#hanging) res.destroy();
    this.#hanging.clear();
  }
}

async function record(req: IncomingMessage): Promise<RecordedRequest> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const body = Buffer.concat(chunks).toString('utf8');
  const url = new URL(req.url ?? '/', 'http://mock');
  const headers: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    headers[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return {
    method: (req.method ?? 'GET').toUpperCase(),
    path: url.pathname,
    query: Object.fromEntries(url.searchParams),
    headers,
    body,
    json: parseJson(body),
  };
}

function parseJson(text: string): unknown {
  if (text.length === 0) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function send(res: ServerResponse, response: MockResponse): void {
  const { status = 200, headers = {}, body } = response;
  const isRaw = typeof body === 'string' || Buffer.isBuffer(body);
  const payload = body === undefined ? '' : isRaw ? body : JSON.stringify(body);
  const hasType = Object.keys(headers).some((h) => h.toLowerCase() === 'content-type');
  res.writeHead(status, {
    ...(body !== undefined && !isRaw && !hasType ? { 'content-type': 'application/json' } : {}),
    ...headers,
  });
  res.end(payload);
}
