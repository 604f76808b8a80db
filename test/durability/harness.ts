/**
 * Shared pieces of the durability tests: bridge configs that load the test plugins, a loopback
 * receiver that records every SET it is offered (jti, process, timing, overlaps), an ingest
 * client that resends until the bridge answers 202, and bridges run as real child processes.
 */
import { writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { deliveryJti } from '../../core/delivery/jti.ts';
import { BridgeProcess } from '../helpers/bridge-process.ts';

export const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';
export const INGEST_TOKEN = 'durability-ingest-token';
export const SOURCE = 'src';

const plugin = (name: string) => new URL(`../fixtures/plugins/${name}.ts`, import.meta.url).href;
export const HTTP_PUSH_PLUGIN = plugin('http-push');
export const LEADER_PROBE_PLUGIN = plugin('leader-probe');

/** Milliseconds since the epoch with sub-millisecond precision, comparable across processes. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface ConfigOptions {
  dir: string;
  storage?: Record<string, unknown>;
  /** Outbound instance id → receiver URL; each is routed every event from the events API. */
  destinations: Record<string, string>;
  delivery?: Record<string, unknown>;
  /** Extra inbound instances (e.g. the leader probe). */
  inbound?: Array<Record<string, unknown>>;
  keys?: Record<string, unknown>;
  file?: string;
}

/** Writes a bridge config (JSON is YAML) with absolute paths, so any cwd reads the same store. */
export function writeBridgeConfig(options: ConfigOptions): string {
  const file = join(options.dir, options.file ?? 'bridge.json');
  const config = {
    server: { host: '127.0.0.1', port: 0, shutdown_timeout: '5s' },
    data_dir: join(options.dir, 'data'),
    telemetry: { log_level: 'info' },
    plugins: [HTTP_PUSH_PLUGIN, ...(options.inbound?.length ? [LEADER_PROBE_PLUGIN] : [])],
    ...(options.storage ? { storage: options.storage } : {}),
    ...(options.keys ? { keys: options.keys } : {}),
    inbound: [
      { id: SOURCE, connector: 'events-api', config: { token: INGEST_TOKEN, max_events_per_request: 100 } },
      ...(options.inbound ?? []),
    ],
    outbound: Object.entries(options.destinations).map(([id, url]) => ({
      id,
      connector: 'test-http-push',
      config: { url },
    })),
    routes: [{ id: 'all', from: [SOURCE], to: Object.keys(options.destinations) }],
    ...(options.delivery ? { delivery: options.delivery } : {}),
  };
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

export function startBridge(dir: string, configFile: string): BridgeProcess {
  return new BridgeProcess(['run', '--config', configFile], { cwd: dir });
}

/** Resolves with the URL once the bridge listens; rejects if it exits first or takes too long. */
export function listening(bridge: BridgeProcess, timeoutMs = 60_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const settle = (outcome: () => void) => {
      clearTimeout(timer);
      bridge.child.stdout?.off('data', check);
      bridge.child.off('exit', exited);
      outcome();
    };
    // BridgeProcess splits stdout into lines in its own listener, registered before this one.
    const check = () => {
      const line = bridge.stdout.find((l) => l.includes('"msg":"ssf-bridge listening'));
      if (line) settle(() => resolve((JSON.parse(line) as { url: string }).url));
    };
    const exited = () =>
      settle(() => reject(new Error(`bridge exited before listening: ${bridge.stderr.join('')}`)));
    const timer = setTimeout(
      () => settle(() => reject(new Error(`bridge not listening after ${timeoutMs} ms`))),
      timeoutMs,
    );
    bridge.child.stdout?.on('data', check);
    bridge.child.on('exit', exited);
    if (bridge.child.exitCode !== null || bridge.child.signalCode !== null) exited();
    else check();
  });
}

export async function startListening(dir: string, configFile: string) {
  const bridge = startBridge(dir, configFile);
  return { bridge, url: await listening(bridge) };
}

export async function killHard(bridge: BridgeProcess): Promise<void> {
  bridge.kill('SIGKILL');
  await bridge.exited;
}

/**
 * One event per id about one of `subjects` people, chosen by a hash of the id so every batch
 * mixes people (events about the same person are delivered one at a time, in order), or about
 * a person of its own with `'unique'`.
 */
export function eventsFor(ids: string[], subjects: number | 'unique' = 50) {
  return ids.map((id) => ({
    id,
    type: 'caep.session-revoked',
    subject: {
      format: 'email',
      email: subjects === 'unique' ? `${id}@example.com` : `user${fnv1a(id) % subjects}@example.com`,
    },
    claims: { initiating_entity: 'policy' },
  }));
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

export function expectedJti(recordId: string, destination: string): string {
  return deliveryJti(SOURCE, recordId, SESSION_REVOKED, destination);
}

/**
 * POSTs a batch until a bridge answers 202, following `currentUrl` across restarts. A refused
 * batch (any other 4xx) is a test failure; 503 and connection failures are retried.
 */
export async function ingestUntilAccepted(
  currentUrl: () => string | undefined,
  events: unknown[],
  signal?: AbortSignal,
): Promise<void> {
  for (;;) {
    if (signal?.aborted) throw new Error('ingest aborted');
    const url = currentUrl();
    if (url === undefined) {
      await sleep(50);
      continue;
    }
    let status: number;
    let body: string;
    let retryAfter: string | null;
    try {
      const res = await fetch(`${url}/ingest/${SOURCE}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGEST_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify(events),
        signal: AbortSignal.timeout(10_000),
      });
      status = res.status;
      retryAfter = res.headers.get('retry-after');
      body = await res.text();
    } catch {
      await sleep(50);
      continue;
    }
    if (status === 202) return;
    if (status === 503) {
      await sleep(Math.min(1000, Number(retryAfter ?? '1') * 1000));
      continue;
    }
    throw new Error(`ingest refused with ${status}: ${body}`);
  }
}

export type Answer =
  { status: number; retryAfter?: string; delayMs?: number } | { drop: true; delayMs?: number };

export interface Offer {
  path: string;
  jti: string;
  /** Process id of the bridge that made the attempt. */
  pid: number;
  arrivedAt: number;
  answeredAt?: number;
  answer?: Answer;
}

/**
 * A loopback HTTP receiver standing in for every destination: it records each SET offered
 * (decoding its jti), which bridge process offered it, when, and how it answered; it notes any
 * jti offered while an earlier offer of the same jti was still in flight. POSTs to /leader are
 * the leader probe's reports.
 */
export class Receiver {
  readonly offers: Offer[] = [];
  readonly overlaps: Array<{ jti: string; pids: number[] }> = [];
  /** Leader-probe reports: the process that ran the task, when it arrived, and when it ran. */
  readonly probes: Array<{ pid: number; at: number; ranAt: number }> = [];
  #inFlight = new Map<string, number[]>();
  #server: Server | undefined;
  #base = '';

  constructor(private answer: (offer: Offer) => Answer = () => ({ status: 202 })) {}

  async start(): Promise<this> {
    this.#server = createServer((req, res) => this.#handle(req, res));
    this.#server.keepAliveTimeout = 30_000;
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.#base = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  url(path: string): string {
    return `${this.#base}${path}`;
  }

  setAnswer(answer: (offer: Offer) => Answer): void {
    this.answer = answer;
  }

  /** Offers answered 2xx, per path. */
  delivered(path?: string): Offer[] {
    return this.offers.filter(
      (o) =>
        (path === undefined || o.path === path) && o.answer && 'status' in o.answer && o.answer.status < 300,
    );
  }

  deliveredJtis(path?: string): Set<string> {
    return new Set(this.delivered(path).map((o) => o.jti));
  }

  async close(): Promise<void> {
    this.#server?.closeAllConnections();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0] ?? '/';
      if (path === '/leader') {
        const report = JSON.parse(body) as { pid: number; at: number };
        this.probes.push({ pid: report.pid, at: nowMs(), ranAt: report.at });
        res.writeHead(204).end();
        return;
      }
      const offer: Offer = {
        path,
        jti: jtiOf(body),
        pid: Number(req.headers['x-bridge-pid']),
        arrivedAt: nowMs(),
      };
      this.offers.push(offer);
      this.#enter(offer);
      res.on('close', () => this.#leave(offer));
      const answer = this.answer(offer);
      const reply = () => {
        offer.answer = answer;
        offer.answeredAt = nowMs();
        if ('drop' in answer) {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status, answer.retryAfter ? { 'retry-after': answer.retryAfter } : {}).end();
      };
      if (answer.delayMs) setTimeout(reply, answer.delayMs);
      else reply();
    });
  }

  #enter(offer: Offer): void {
    const pids = this.#inFlight.get(offer.jti) ?? [];
    if (pids.length > 0) this.overlaps.push({ jti: offer.jti, pids: [...pids, offer.pid] });
    this.#inFlight.set(offer.jti, [...pids, offer.pid]);
  }

  #leave(offer: Offer): void {
    const pids = this.#inFlight.get(offer.jti) ?? [];
    const rest = pids.filter((_, i) => i !== pids.indexOf(offer.pid));
    if (rest.length === 0) this.#inFlight.delete(offer.jti);
    else this.#inFlight.set(offer.jti, rest);
  }
}

/** The jti claim of a compact SET (the receiver trusts the bridge; signatures are tested elsewhere). */
function jtiOf(jwt: string): string {
  const payload = jwt.split('.')[1] ?? '';
  return String((JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { jti?: unknown }).jti);
}

/** Polls until `done` holds or the time is up; resolves to whether it held. */
export async function waitFor(done: () => boolean | Promise<boolean>, timeoutMs: number, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await done()) return true;
    await sleep(everyMs);
  }
  return done();
}

export function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
