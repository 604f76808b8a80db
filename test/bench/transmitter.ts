/**
 * The SSF transmitter: SETs per second served by the RFC 8936 poll endpoint at maxEvents=1000,
 * RFC 8935 push throughput across 1,000 streams to a loopback receiver, and the cost of routing
 * one event with 10,000 streams and 100,000 subjects.
 */
import { createServer } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { SignedSet } from '../../core/plugin-api/types.ts';
import { SetCodec } from '../../core/ssf/index.ts';
import { RoutingIndex, type IndexedStream } from '../../core/transmitter/index.ts';
import {
  ALICE,
  POLL,
  PUSH,
  SESSION_REVOKED,
  call,
  sessionRevoked,
  startBridge,
  type Bridge,
} from '../transmitter/harness.ts';
import type { Benchmark } from './run.ts';

const ROUTE_TARGET_MS = 0.2;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

async function mintSets(bridge: Bridge, streamId: string, count: number): Promise<string[]> {
  const minter = new SetCodec({ issuer: bridge.issuer, keys: bridge.keys });
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const event = sessionRevoked(`user${i}@example.com`);
    const minted = await minter.mint({
      event,
      sourceInstanceId: 'bench',
      destination: { id: `stream:${streamId}`, audience: ALICE.client_id },
    });
    out.push(minted.jwt);
  }
  return out;
}

/** Poll: SETs/s handed out by POST <poll endpoint> {maxEvents: 1000}, acknowledging each batch in the next poll. */
async function pollThroughput(print: (line: string) => void): Promise<void> {
  const bridge = await startBridge({ noEngine: true, transmitter: { poll: { max_events: 1000 } } });
  try {
    const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
      token: ALICE.token,
      body: { delivery: { method: POLL } },
    });
    const streamId = created.json.stream_id as string;
    const jwts = await mintSets(bridge, streamId, 1000);
    const perRound = 20_000;
    const rates: number[] = [];
    for (let round = 0; round < 5; round++) {
      const items = Array.from({ length: perRound }, (_, i) => ({
        jti: `r${round}-${i}`,
        eventId: `r${round}-${i}`,
        setJwt: jwts[i % jwts.length] as string,
      }));
      for (let i = 0; i < items.length; i += 5000) {
        await bridge.store.streams.enqueuePoll(streamId, items.slice(i, i + 5000), new Date());
      }
      let ack: string[] = [];
      let served = 0;
      const started = performance.now();
      for (;;) {
        const res = await call(bridge.issuer, 'POST', `ssf/poll/${streamId}`, {
          token: ALICE.token,
          body: { maxEvents: 1000, returnImmediately: true, ack },
        });
        ack = Object.keys(res.json.sets as object);
        served += ack.length;
        if (ack.length === 0) break;
      }
      rates.push((served * 1000) / (performance.now() - started));
    }
    print(
      `| poll endpoint, maxEvents=1000, ack in the next poll (SQLite) | ${Math.round(median(rates))} SETs/s |`,
    );
  } finally {
    await bridge.close();
  }
}

/** Push: SETs/s across 1,000 streams to one loopback receiver, end to end and transport only. */
async function pushThroughput(print: (line: string) => void): Promise<void> {
  let received = 0;
  const receiver = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received += 1;
      res.writeHead(202).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}/push`;
  const bridge = await startBridge({
    transmitter: { streams: { per_receiver: 'many' }, push: { max_sockets: 256 } },
    delivery: { batch_size: 64, max_in_flight: 8, poll_interval: '1s' },
  });
  try {
    const ids: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const res = await call(bridge.issuer, 'POST', 'ssf/streams', {
        token: ALICE.token,
        body: {
          events_requested: [SESSION_REVOKED],
          delivery: { method: PUSH, endpoint_url: `${url}/${i}` },
        },
      });
      ids.push(res.json.stream_id as string);
    }
    // End to end: 10 events, each routed to all 1,000 streams, signed per stream and pushed.
    received = 0;
    const events = Array.from({ length: 10 }, (_, i) => sessionRevoked(`push${i}@example.com`));
    const started = performance.now();
    await bridge.ingest(events);
    while (received < 10_000) await new Promise((r) => setTimeout(r, 5));
    const endToEnd = (10_000 * 1000) / (performance.now() - started);
    print(
      `| push, 1,000 streams, outbox → sign (RS256) → POST, end to end | ${Math.round(endToEnd)} SETs/s |`,
    );

    // Transport only: the stream destinations' deliver() with an already signed SET.
    const jwt = (await mintSets(bridge, ids[0] as string, 1))[0] as string;
    const destinations = ids.map((id) => bridge.tx.destinations.get(`stream:${id}`)!);
    const set: SignedSet = {
      jwt,
      jti: 'j',
      claims: {},
      eventType: SESSION_REVOKED,
      event: {},
      subject: { format: 'opaque', id: 'x' },
      attempt: 0,
    };
    const total = 20_000;
    let next = 0;
    const worker = async () => {
      while (next < total) {
        const d = destinations[next++ % destinations.length]!;
        // The engine gives every attempt its own signal.
        await d.deliver(set, new AbortController().signal);
      }
    };
    const t0 = performance.now();
    await Promise.all(Array.from({ length: 128 }, worker));
    const transport = (total * 1000) / (performance.now() - t0);
    print(
      `| push, 1,000 streams, deliver() of signed SETs, 128 concurrent | ${Math.round(transport)} SETs/s |`,
    );
  } finally {
    await bridge.close();
    await new Promise<void>((r) => receiver.close(() => r()));
  }
}

function indexWith(
  streams: number,
  subjectsPerStream: number,
  status: 'enabled' | 'paused' = 'enabled',
): RoutingIndex {
  const index = new RoutingIndex();
  for (let s = 0; s < streams; s++) {
    const stream: IndexedStream = {
      streamId: `s${s}`,
      clientId: `c${s % 50}`,
      audience: `c${s % 50}`,
      status,
      eventsDelivered: new Set([SESSION_REVOKED]),
      method: 'push',
      rev: '1',
    };
    index.setStream(stream);
    for (let j = 0; j < subjectsPerStream; j++) {
      const n = s * subjectsPerStream + j;
      const subject =
        j === 0
          ? {
              format: 'complex',
              user: { format: 'email', email: `u${n}@example.com` },
              tenant: { format: 'opaque', id: `t${s % 100}` },
            }
          : { format: 'email', email: `u${n}@example.com` };
      index.putSubject(`s${s}`, subject, true);
    }
  }
  return index;
}

const benchmark: Benchmark = {
  name: 'transmitter',
  description: 'SSF transmitter: poll serving, push throughput, routing cost',
  async run({ compare, print }) {
    print('| measurement | result |');
    print('|---|---:|');
    await pollThroughput(print);
    await pushThroughput(print);

    const index = indexWith(10_000, 10);
    const none = { defaultSubjects: 'NONE' as const, pausedHoldLimit: 10_000 };
    const all = { defaultSubjects: 'ALL' as const, pausedHoldLimit: 10_000 };
    let i = 0;
    const hit = () =>
      index.route(
        SESSION_REVOKED,
        { format: 'email', email: `u${(i++ * 7919) % 100_000}@example.com` },
        none,
      );
    const miss = () =>
      index.route(SESSION_REVOKED, { format: 'email', email: `nobody${i++}@example.com` }, none);
    const complex = () =>
      index.route(
        SESSION_REVOKED,
        {
          format: 'complex',
          user: { format: 'email', email: `u${((i++ * 7919) % 10_000) * 10}@example.com` },
          tenant: { format: 'opaque', id: 't1' },
        },
        none,
      );
    const everyone = () =>
      index.route(SESSION_REVOKED, { format: 'email', email: `x${i++}@example.com` }, all);
    const [h, m, c, a] = await compare(
      { hit, miss, complex, all: everyone },
      { roundMs: 300, rounds: 7, warmup: 2000 },
    );
    const ms = (ops: number | undefined) => 1000 / (ops ?? 1);
    const verdict = (value: number) => (value < ROUTE_TARGET_MS ? 'met' : 'MISSED');
    const row = (label: string, ops: number | undefined) =>
      print(
        `| routing, 10,000 streams / 100,000 subjects, ${label} | ${ms(ops).toFixed(4)} ms/event (target < ${ROUTE_TARGET_MS}: ${verdict(ms(ops))}) |`,
      );
    row('default_subjects NONE, subject added to one stream', h?.opsPerSecond);
    row('default_subjects NONE, subject nobody added', m?.opsPerSecond);
    row('default_subjects NONE, complex subject (wildcard match)', c?.opsPerSecond);
    print(
      `| routing, 10,000 streams, default_subjects ALL (event goes to all 10,000) | ${ms(a?.opsPerSecond).toFixed(4)} ms/event |`,
    );
  },
};

export default benchmark;
