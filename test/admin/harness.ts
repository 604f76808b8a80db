/**
 * A whole bridge in this process for admin API and console tests: events-api ingest, a webhook
 * outbound to a loopback receiver whose answer the test controls, a transmitter receiver, and
 * read and write admin tokens. SQLite in a temporary data directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfigText } from '../../core/config/index.ts';
import { Bridge } from '../../core/runtime/bridge.ts';
import { configCrossChecks, defaultRegistry } from '../../core/runtime/defaults.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';

export const READ_TOKEN = 'read-token-0123456789abcdef';
export const WRITE_TOKEN = 'write-token-0123456789abcdef';
export const INGEST_TOKEN = 'ingest-token-0123456789abcdef';
export const RECEIVER_TOKEN = 'receiver-token-0123456789abcdef';

/** A loopback webhook receiver: answers `status` and keeps what it got. */
export class Receiver {
  status = 200;
  /** What a refusal (status 300 or more) answers. */
  errorBody = JSON.stringify({ error: 'refused by test receiver' });
  readonly received: Array<Record<string, unknown>> = [];
  readonly server: Server;
  url = '';

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        if (this.status < 300) this.received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        res.writeHead(this.status, { 'content-type': 'application/json' });
        res.end(this.status < 300 ? JSON.stringify({ ok: true }) : this.errorBody);
      });
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  }

  stop(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** `delivery` adds keys to the delivery block, two spaces in (e.g. `future_events: {...}`). */
export function configText(receiverUrl: string, extra = '', delivery = ''): string {
  return `
server:
  host: 127.0.0.1
  port: 0
data_dir: \${env:DATA_DIR}
delivery:
  retry:
    max_attempts: 1
  ${delivery}
inbound:
  - id: api
    connector: events-api
    config:
      token: ${INGEST_TOKEN}
outbound:
  - id: hook
    connector: webhook
    config:
      url: ${receiverUrl}
      signing_secret: webhook-signing-secret-0123456789abcdef
      include_set: true
transmitter:
  receivers:
    - client_id: receiver
      token: ${RECEIVER_TOKEN}
routes:
  - id: all
    from: '*'
    to: [hook]
admin:
  tokens:
    - name: viewer
      role: read
      token: ${READ_TOKEN}
    - name: operator
      role: write
      token: ${WRITE_TOKEN}
${extra}`;
}

export interface Running {
  bridge: Bridge;
  receiver: Receiver;
  url: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startBridge(extra = '', delivery = ''): Promise<Running> {
  const dataDir = mkdtempSync(join(tmpdir(), 'ssf-admin-'));
  const receiver = new Receiver();
  await receiver.start();
  const loaded = await loadConfigText(configText(receiver.url, extra, delivery), {
    registry: defaultRegistry(),
    crossChecks: configCrossChecks(),
    env: { DATA_DIR: dataDir },
  });
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  const bridge = new Bridge(loaded.config, { logger: silentLogger() });
  await bridge.start();
  return {
    bridge,
    receiver,
    url: bridge.url,
    dataDir,
    async stop() {
      await bridge.stop(2_000);
      await receiver.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Calls the bridge with a bearer token; JSON in, JSON (or nothing) out. */
export async function call(
  base: string,
  path: string,
  options: { token?: string; method?: string; body?: unknown } = {},
): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${base}${path}`, {
    method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
    headers: {
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

export async function ingest(base: string, events: unknown[]): Promise<string[]> {
  const res = await call(base, '/ingest/api', { token: INGEST_TOKEN, body: events });
  if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body.accepted as string[];
}

/** Waits until the check passes (polling), or fails with the last value seen. */
export async function eventually<T>(
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = await read();
  while (!ok(last)) {
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
    last = await read();
  }
  return last;
}
