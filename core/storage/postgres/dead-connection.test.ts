/**
 * A database host that vanishes without closing its connections (a crash, a failover that moves
 * the address): packets on the old connections go unanswered, new connections work. A proxy
 * between the store and PostgreSQL freezes every connection open at that moment.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LeaderElection } from '../leader.ts';
import { describePostgres, dropSchema, POSTGRES_TEST_URL, uniqueSchema } from '../testing/postgres.ts';
import { PostgresStore, clientQueryTimeout } from './store.ts';

/** Forwards to PostgreSQL; freeze() silences the connections open now, both ways, for good. */
class FreezingProxy {
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  port = 0;

  constructor(target: URL) {
    this.#server = createServer((client) => {
      const upstream = connect(Number(target.port || 5432), target.hostname);
      const pair: [Socket, Socket] = [client, upstream];
      this.#pairs.add(pair);
      client.pipe(upstream);
      upstream.pipe(client);
      const drop = () => {
        this.#pairs.delete(pair);
        client.destroy();
        upstream.destroy();
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    const address = this.#server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  freeze(): void {
    for (const [client, upstream] of this.#pairs) {
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
    this.#pairs.clear();
  }

  async close(): Promise<void> {
    this.#server.close();
  }
}

async function within<T>(ms: number, work: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work(),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`not done within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function eventually(check: () => Promise<boolean>, ms: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check().catch(() => false)) return Date.now() - started;
    if (Date.now() - started > ms) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describePostgres('PostgreSQL store when the server stops answering on open connections', () => {
  const schema = uniqueSchema();
  const proxy = new FreezingProxy(new URL(POSTGRES_TEST_URL));

  beforeAll(async () => {
    await proxy.start();
  });
  afterAll(async () => {
    await proxy.close();
    await dropSchema(schema);
  });

  it('queries end at their deadline, fresh connections replace the silent ones, and the instance leads again', async () => {
    const url = new URL(POSTGRES_TEST_URL);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    const store = await PostgresStore.open({ url: url.href, schema, poolSize: 4, statementTimeoutMs: 1000 });
    const clock = { now: () => new Date() };
    const election = new LeaderElection({
      leases: store.leases,
      name: 'scheduler',
      holder: 'instance-a',
      ttlMs: 1500,
      clock,
    });
    try {
      election.start();
      await eventually(async () => election.isLeader(), 3000);
      // Connections open in the pool, then the server goes silent on all of them.
      await Promise.all([1, 2, 3].map(() => store.checkpoints.get('warm', 'up')));
      proxy.freeze();

      // A query on a silent connection fails at its deadline (statement_timeout + 1 s) …
      const started = Date.now();
      const outcomes = await within(8000, () =>
        Promise.allSettled([1, 2, 3].map(() => store.checkpoints.get('after', 'freeze'))),
      );
      expect(Date.now() - started).toBeLessThan(5000);
      expect(outcomes.some((o) => o.status === 'rejected')).toBe(true);
      // … and the store works again over new connections, as does the election.
      await eventually(async () => (await store.checkpoints.get('after', 'freeze')) === undefined, 8000);
      await eventually(async () => election.isLeader(), 8000);
      await within(2000, () => election.stop());
    } finally {
      await within(8000, () => election.stop());
      await within(8000, () => store.close());
    }
  });

  it('statement_timeout 0 (no limit) sets no client deadline either: a query waiting on a lock longer than a second succeeds', async () => {
    const store = await PostgresStore.open({
      url: POSTGRES_TEST_URL,
      schema,
      poolSize: 2,
      statementTimeoutMs: 0,
    });
    const locker = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await locker.connect();
    try {
      await locker.query(`SET search_path TO "${schema}"`);
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE checkpoints IN ACCESS EXCLUSIVE MODE');
      const read = store.checkpoints.get('held', 'up');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await locker.query('COMMIT');
      await expect(read).resolves.toBeUndefined();
    } finally {
      await locker.end();
      await store.close();
    }
  });

  it('the client deadline is a little past statement_timeout: a tenth more, at least a second', () => {
    expect(clientQueryTimeout(30_000)).toBe(33_000);
    expect(clientQueryTimeout(1_000)).toBe(2_000);
  });
});
