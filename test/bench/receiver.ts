/**
 * A push receiver in its own process for the delivery benchmark: answers every SET with 202
 * and records when each jti arrived. The parent process reads and resets the record over
 * `GET /_count`, `GET /_stats` and `POST /_reset`, and waits for the n-th SET with
 * `GET /_wait?count=n`, answered when it arrives (no polling to take CPU from what is measured);
 * it learns the port from the first line on stdout.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';

let arrivals: Array<[string, number]> = [];
/** Requests waiting for the arrival of the count-th SET. */
let waiters: Array<{ count: number; answer: () => void; giveUp: () => void }> = [];

function answerWaiters(): void {
  if (waiters.length === 0) return;
  const due = waiters.filter((w) => arrivals.length >= w.count);
  if (due.length === 0) return;
  waiters = waiters.filter((w) => arrivals.length < w.count);
  for (const w of due) w.answer();
}

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
    if (req.url?.startsWith('/_wait?')) {
      // Answers with the arrival time of the count-th SET, or {reached: false} after timeout_ms.
      const query = new URL(req.url, 'http://receiver').searchParams;
      const count = Number(query.get('count'));
      const answer = () =>
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ reached: true, at: arrivals[count - 1]![1] }));
      if (arrivals.length >= count) return answer();
      const giveUp = () =>
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ reached: false }));
      const waiter = { count, answer, giveUp };
      waiters.push(waiter);
      setTimeout(
        () => {
          if (!waiters.includes(waiter)) return;
          waiters = waiters.filter((w) => w !== waiter);
          giveUp();
        },
        Number(query.get('timeout_ms') ?? 10_000),
      ).unref();
      return;
    }
    if (req.url === '/_reset') {
      arrivals = [];
      // A wait left from before the reset would count the next round's SETs: it ends unreached.
      for (const w of waiters.splice(0)) w.giveUp();
      res.writeHead(204).end();
      return;
    }
    arrivals.push([
      jtiOf(Buffer.concat(chunks).toString('utf8')),
      performance.timeOrigin + performance.now(),
    ]);
    res.writeHead(202).end();
    answerWaiters();
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as AddressInfo).port}\n`);
});
process.on('disconnect', () => process.exit(0));
process.on('SIGTERM', () => process.exit(0));
