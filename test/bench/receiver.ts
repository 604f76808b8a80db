/**
 * A push receiver in its own process for the delivery benchmark: answers every SET with 202
 * and records when each jti arrived. The parent process reads and resets the record over
 * `GET /_count`, `GET /_stats` and `POST /_reset`; it learns the port from the first line on stdout.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

let arrivals: Array<[string, number]> = [];

function jtiOf(jwt: string): string {
  const payload = jwt.split('.')[1] ?? '';
  return String((JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { jti?: unknown }).jti);
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    if (req.url === '/_stats') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ arrivals }));
      return;
    }
    if (req.url === '/_count') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(String(arrivals.length));
      return;
    }
    if (req.url === '/_reset') {
      arrivals = [];
      res.writeHead(204).end();
      return;
    }
    arrivals.push([
      jtiOf(Buffer.concat(chunks).toString('utf8')),
      performance.timeOrigin + performance.now(),
    ]);
    res.writeHead(202).end();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
