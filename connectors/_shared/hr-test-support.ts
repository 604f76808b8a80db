/**
 * Test support for the HR connectors' behaviour tests: an InboundContext that records what a
 * connector emits, commits and reports, a settable clock, a scheduler whose tasks the test runs,
 * and the bridge's own HTTP client (refused credentials flag the instance). Vendor APIs are
 * mocked on loopback by the conformance kit's MockServer.
 *
 * Shared by the HR connectors' tests (workday, bamboohr, hibob, scim-service, csv-drop).
 */
import {
  assertCheckpointExpected,
  memoryReceivedIds,
  staticDeviceDirectory,
  testHttpClientFactory,
} from '../../core/plugin-api/testing/index.ts';
import {
  RetryableError,
  type EmitOptions,
  type EmitResult,
  type EventDraft,
  type InboundContext,
  type InstanceState,
  type Logger,
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

export interface RegisteredTask {
  name: string;
  options: ScheduleOptions;
  run: (signal: AbortSignal) => Promise<void>;
}

export interface TestContext<S> {
  ctx: InboundContext<S>;
  /** Checkpoints by name (`default` when unnamed); share the map to restart from them. */
  checkpoints: Map<string, unknown>;
  /** Successful emits, in order. */
  emits: EmitCall[];
  /** Every event of every successful emit. */
  events(): EventDraft[];
  /** Makes the next emit fail with `error` (default: an outbox-full RetryableError); nothing is committed. */
  failNextEmit(error?: Error): void;
  /** Writes through ctx.checkpoints.set (which the connectors must not use ahead of emit). */
  directSets: number;
  statuses: Array<{ state: InstanceState; reason: string | undefined }>;
  successes: number;
  logs: LogEntry[];
  /** Sum of a counter's series matching `labels`. */
  counter(name: string, labels?: Record<string, string>): number;
  /** The last value set on a gauge. */
  gauge(name: string): number | undefined;
  tasks: RegisteredTask[];
  /** Runs a scheduled task once, as the scheduler would; rejects with what the run threw. */
  runTask(name: string): Promise<void>;
  /** Aborts the instance signal, as the host does before stop(). */
  abort(): void;
  /** The clock the context hands out; `set` moves it. */
  clock: { now(): Date; set(at: Date | string): void };
}

export function createTestContext<S>(
  options: { instanceId?: string; now?: Date | string; checkpoints?: Map<string, unknown> } = {},
): TestContext<S> {
  const checkpoints = options.checkpoints ?? new Map<string, unknown>();
  const emits: EmitCall[] = [];
  const statuses: TestContext<S>['statuses'] = [];
  const logs: LogEntry[] = [];
  const counters = new Map<string, Array<{ labels: Record<string, string>; value: number }>>();
  const gauges = new Map<string, number>();
  const tasks: RegisteredTask[] = [];
  const abort = new AbortController();
  let failure: Error | undefined;
  let now = options.now === undefined ? new Date() : new Date(options.now);
  let successes = 0;
  let directSets = 0;

  const logger: Logger = {
    trace: (o, m) => void logs.push(entry('trace', o, m)),
    debug: (o, m) => void logs.push(entry('debug', o, m)),
    info: (o, m) => void logs.push(entry('info', o, m)),
    warn: (o, m) => void logs.push(entry('warn', o, m)),
    error: (o, m) => void logs.push(entry('error', o, m)),
    child: () => logger,
  };
  const http = testHttpClientFactory({
    logger,
    signal: abort.signal,
    onAuthFailure: (reason) => statuses.push({ state: 'permanent_error', reason }),
  });

  const ctx: InboundContext<S> = {
    instanceId: options.instanceId ?? 'hr-test',
    devices: staticDeviceDirectory(),
    receivedIds: memoryReceivedIds(),
    connectorId: 'test',
    logger,
    http,
    checkpoints: {
      get: async (name = 'default') => structuredClone(checkpoints.get(name)) as S | undefined,
      set: async (value, name = 'default') => {
        directSets += 1;
        checkpoints.set(name, structuredClone(value));
      },
    },
    scheduler: {
      schedule(name, scheduleOptions, run) {
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
    clock: { now: () => new Date(now) },
    metrics: {
      counter: (name) => ({
        inc(labels = {}, value = 1) {
          const series = counters.get(name) ?? [];
          series.push({ labels, value });
          counters.set(name, series);
        },
      }),
      histogram: () => ({ observe() {} }),
      gauge: (name) => ({ set: (_labels, value) => void gauges.set(name, value) }),
    },
    status: {
      set: (state, reason) => void statuses.push({ state, reason }),
      success: () => void (successes += 1),
    },
    signal: abort.signal,
    async emit(events: EventDraft[], emitOptions?: EmitOptions): Promise<EmitResult> {
      if (failure) {
        const err = failure;
        failure = undefined;
        throw err;
      }
      // Compare-and-set, as the stores do: instances sharing one map share one database.
      assertCheckpointExpected(ctx.instanceId, emitOptions?.checkpoint, (name) => checkpoints.get(name));
      const copy = structuredClone(events);
      emits.push({ events: copy, checkpoint: emitOptions?.checkpoint });
      if (emitOptions?.checkpoint) {
        checkpoints.set(
          emitOptions.checkpoint.name ?? 'default',
          structuredClone(emitOptions.checkpoint.value),
        );
      }
      return { accepted: events.map((e) => `${e.sourceRecordId}/${e.type}`), duplicates: 0 };
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
        new RetryableError('the outbox is full (test)', {
          code: 'SSF_ERR_DELIVERY_QUEUE_FULL',
          retryAfterMs: 5000,
        });
    },
    get directSets() {
      return directSets;
    },
    statuses,
    get successes() {
      return successes;
    },
    logs,
    counter(name, labels = {}) {
      return (counters.get(name) ?? [])
        .filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))
        .reduce((sum, s) => sum + s.value, 0);
    },
    gauge: (name) => gauges.get(name),
    tasks,
    async runTask(name) {
      const task = tasks.find((t) => t.name === name);
      if (!task)
        throw new Error(`no task "${name}" (scheduled: ${tasks.map((t) => t.name).join(', ') || 'none'})`);
      await task.run(new AbortController().signal);
    },
    abort: () => abort.abort(new Error('instance stopping')),
    clock: {
      now: () => new Date(now),
      set: (at) => void (now = new Date(at)),
    },
  };
}

function entry(level: string, obj: object | string, msg?: string): LogEntry {
  return typeof obj === 'string'
    ? { level, msg: obj, fields: {} }
    : { level, msg, fields: obj as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------
// Golden runs through the `ssf-bridge simulate` command, as an operator would run it.

interface FixtureFile {
  file: string;
  description: string;
  input: unknown;
  expect: { events?: Array<Record<string, unknown>>; ignored?: string; rejected?: string };
}

export interface SimulateRun {
  code: number | null;
  /** One parsed JSON line per event printed. */
  events: Array<Record<string, unknown>>;
  stderr: string;
}

const EVENT_BASE: Record<string, string> = {
  risc: 'https://schemas.openid.net/secevent/risc/event-type/',
  caep: 'https://schemas.openid.net/secevent/caep/event-type/',
};

function eventUri(type: string): string {
  const [family, name] = type.split('.') as [string, string];
  return EVENT_BASE[family] ? `${EVENT_BASE[family]}${name}` : type;
}

/** Runs `ssf-bridge simulate --connector <id> --config <file> <files…>` with one inbound instance. */
export async function runSimulate(
  connector: string,
  config: unknown,
  files: string[],
  dir: string,
): Promise<SimulateRun> {
  const { spawn } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const configFile = join(dir, 'bridge.yaml');
  writeFileSync(configFile, JSON.stringify({ inbound: [{ id: 'simulated', connector, config }] }));
  const bin = fileURLToPath(new URL('../../core/cli/bin.cjs', import.meta.url));
  const child = spawn(
    process.execPath,
    [bin, 'simulate', '--connector', connector, '--config', configFile, ...files],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  const events = stdout
    .split('\n')
    .filter((line) => line.trim().startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
  return { code, events, stderr };
}

/**
 * Runs every fixture of `fixturesDir` through `ssf-bridge simulate` in name order (state carried
 * between them), the malformed ones last, and returns what the command printed next to what the
 * fixtures expect, in the form the command prints it.
 */
export async function simulateFixtures(
  connector: string,
  config: unknown,
  fixturesDir: URL,
): Promise<{
  run: SimulateRun;
  expected: Array<Record<string, unknown>>;
  ignored: string[];
  rejected: string[];
}> {
  const { mkdtempSync, readdirSync, readFileSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const source = fileURLToPath(fixturesDir);
  const fixtures: FixtureFile[] = readdirSync(source)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => ({
      file: join(source, f),
      ...(JSON.parse(readFileSync(join(source, f), 'utf8')) as Omit<FixtureFile, 'file'>),
    }));
  const ordered = [
    ...fixtures.filter((f) => !f.expect.rejected),
    ...fixtures.filter((f) => f.expect.rejected).slice(0, 1),
  ];
  const dir = mkdtempSync(join(tmpdir(), `simulate-${connector}-`));
  // Text payloads (CSV, XML) are given as the raw files an operator would have.
  const files = ordered.map((f, i) => {
    if (typeof f.input !== 'string') return f.file;
    const raw = join(
      dir,
      `${String(i).padStart(3, '0')}.${f.input.trimStart().startsWith('<') ? 'xml' : 'csv'}`,
    );
    writeFileSync(raw, f.input);
    return raw;
  });
  const run = await runSimulate(connector, config, files, dir);
  const expected = ordered.flatMap((f) =>
    (f.expect.events ?? []).map((e) => {
      const future = typeof e.occurredAt === 'string' && Date.parse(e.occurredAt) > Date.now() + 120_000;
      return {
        type: eventUri(String(e.type)),
        subject: e.subject,
        claims: e.claims ?? {},
        source_record_id: e.sourceRecordId,
        ...(e.occurredAt ? { occurred_at: e.occurredAt } : {}),
        ...(future ? { scheduled_for: e.occurredAt } : {}),
      };
    }),
  );
  return {
    run,
    expected,
    ignored: ordered.flatMap((f) => (f.expect.ignored ? [f.expect.ignored] : [])),
    rejected: ordered.flatMap((f) => (f.expect.rejected ? [f.expect.rejected] : [])),
  };
}

// ---------------------------------------------------------------------------------------------
// A whole bridge (`ssf-bridge run`) in a child process, for end-to-end checks on loopback.

export interface DeliveredSet {
  aud: string;
  type: string;
  jti: string;
  txn: string;
  subject: unknown;
}

export interface RunningBridge {
  port: number;
  /** SETs the `log` destinations wrote so far. */
  delivered(): DeliveredSet[];
  /** Waits until `count` SETs were delivered (or the time is up). */
  waitFor(count: number, timeoutMs?: number): Promise<DeliveredSet[]>;
  stop(): Promise<void>;
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

/** Starts `ssf-bridge run` with `config` (plus server and data settings) and waits until it is ready. */
export async function startBridge(config: Record<string, unknown>, dataDir: string): Promise<RunningBridge> {
  const { spawn } = await import('node:child_process');
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { fileURLToPath } = await import('node:url');
  const port = await freePort();
  const file = join(dataDir, 'bridge.yaml');
  writeFileSync(
    file,
    JSON.stringify({
      issuer: 'https://bridge.test',
      data_dir: dataDir,
      server: { host: '127.0.0.1', port },
      telemetry: { log_level: 'warn' },
      ...config,
    }),
  );
  const bin = fileURLToPath(new URL('../../core/cli/bin.cjs', import.meta.url));
  const child = spawn(process.execPath, [bin, 'run', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sets: DeliveredSet[] = [];
  let output = '';
  let buffered = '';
  child.stdout.on('data', (chunk: Buffer) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) {
      output += `${line}\n`;
      if (!line.startsWith('{"delivered_set"')) continue;
      const { delivered_set: d } = JSON.parse(line) as {
        delivered_set: { jti: string; event_type: string; claims: Record<string, unknown> };
      };
      sets.push({
        aud: String(d.claims.aud),
        type: d.event_type,
        jti: d.jti,
        txn: String(d.claims.txn),
        subject: d.claims.sub_id,
      });
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const deadline = Date.now() + 20_000;
  for (;;) {
    const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.status === 200,
      () => false,
    );
    if (ready) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`the bridge did not become ready:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    port,
    delivered: () => [...sets],
    async waitFor(count, timeoutMs = 15_000) {
      const until = Date.now() + timeoutMs;
      while (sets.length < count && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      return [...sets];
    },
    async stop() {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
