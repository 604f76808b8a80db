/**
 * What the HTTP client costs per request: a SET pushed through the client every connector and
 * the delivery engine use (deadline, cancellation, size limit, classification, metrics hook) next
 * to a bare `node:http` keep-alive request with the same body, both 16 at once, to a receiver in
 * another process — so the CPU measured here is the sender's alone.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { createHttpClientFactory } from '../../core/http/client.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import type { Benchmark } from './run.ts';

const CONCURRENCY = 16;

/** A compact JWS-shaped body of a typical SET's size (the receiver reads its jti). */
function setBody(): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const claims = {
    jti: 'bench',
    iss: 'https://bridge.example',
    aud: 'https://idp.example',
    pad: 'x'.repeat(400),
  };
  return `${part({ alg: 'ES256', typ: 'secevent+jwt' })}.${part(claims)}.${'s'.repeat(86)}`;
}

const benchmark: Benchmark = {
  name: 'http-client',
  description: 'CPU per pushed SET: the HTTP client vs a bare node:http request, 16 at once',
  async run({ compare, ratio, print }) {
    const receiverFile = fileURLToPath(new URL('./receiver.ts', import.meta.url));
    const receiver = spawn(process.execPath, ['--import', 'tsx', receiverFile], {
      stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    });
    const stop = new AbortController();
    try {
      const base = await new Promise<string>((resolve) =>
        receiver.stdout!.once('data', (d: Buffer) => resolve(`http://127.0.0.1:${String(d).trim()}`)),
      );
      const url = `${base}/sets`;
      const body = setBody();
      const agent = new http.Agent({ keepAlive: true, maxSockets: CONCURRENCY });
      const bare = () =>
        new Promise<void>((resolve, reject) => {
          const req = http.request(
            url,
            {
              method: 'POST',
              agent,
              headers: {
                'content-type': 'application/secevent+jwt',
                accept: 'application/json',
                'content-length': Buffer.byteLength(body),
              },
            },
            (res) => {
              res.resume();
              res.once('end', () =>
                res.statusCode === 202 ? resolve() : reject(new Error(`${res.statusCode}`)),
              );
            },
          );
          req.once('error', reject);
          req.end(body);
        });
      const client = createHttpClientFactory({
        logger: silentLogger(),
        signal: stop.signal,
        onAuthFailure() {},
        metrics: { onRequest() {} },
        proxyEnv: {},
      }).create({ timeoutMs: 10_000 });
      const viaClient = async () => {
        const res = await client.request<string>({
          method: 'POST',
          url,
          body,
          headers: { 'content-type': 'application/secevent+jwt', accept: 'application/json' },
          responseType: 'text',
          acceptStatuses: [400, 401, 403, 429],
        });
        if (res.status !== 202) throw new Error(`${res.status}`);
      };
      const burst = (send: () => Promise<void>) => () =>
        Promise.all(Array.from({ length: CONCURRENCY }, send));
      const [raw, ours] = await compare(
        { 'node:http': burst(bare), 'HTTP client': burst(viaClient) },
        { rounds: 15, warmup: 50 },
      );
      print(`| sender | requests/s | CPU per request |`);
      print(`|---|---:|---:|`);
      for (const m of [raw!, ours!]) {
        print(
          `| ${m.label} | ${Math.round(m.opsPerSecond * CONCURRENCY)} | ${Math.round(m.cpuMicrosPerOp / CONCURRENCY)} µs |`,
        );
      }
      print(
        `HTTP client ÷ node:http throughput: ${ratio(ours!, raw!).toFixed(2)}×; ` +
          `client overhead ${Math.round((ours!.cpuMicrosPerOp - raw!.cpuMicrosPerOp) / CONCURRENCY)} µs CPU per request`,
      );
      agent.destroy();
    } finally {
      stop.abort();
      receiver.kill();
    }
  },
};

export default benchmark;
