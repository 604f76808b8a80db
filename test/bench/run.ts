/**
 * `npm run bench [filter]`: runs the benchmark modules listed below, in order, and prints their
 * figures and ratios. A filter runs only the benchmarks whose name contains it.
 *
 * A benchmark module's default export is a `Benchmark`. To add one, append a loader to
 * `BENCHMARKS`; modules load only when they run, so a filtered run stays fast.
 */
import { performance } from 'node:perf_hooks';

export interface Measurement {
  label: string;
  /** Median operations per second over the rounds. */
  opsPerSecond: number;
  /** Operations per second of every round. */
  rounds: number[];
  /**
   * Median CPU time per operation in microseconds, all threads of the process included (libuv's
   * thread pool too). Unlike wall-clock throughput it does not depend on how much of a busy
   * machine the process got.
   */
  cpuMicrosPerOp: number;
}

export interface MeasureOptions {
  /** Measured time per round; default 200 ms. */
  roundMs?: number;
  /** Rounds per contender; default 25. Many short rounds keep bursts of machine load out of the median. */
  rounds?: number;
  /** Untimed calls before measuring; default 200. */
  warmup?: number;
}

export interface BenchContext {
  /**
   * Measures contenders side by side: each round times every contender in turn, so drift in
   * machine load affects all of them alike. Returns one measurement per contender, in order.
   */
  compare(contenders: Record<string, () => unknown>, options?: MeasureOptions): Promise<Measurement[]>;
  /**
   * How many times faster `a` is than `b`: the median of the ratios of rounds that ran back to
   * back, which cancels load that changes between rounds better than a ratio of medians.
   */
  ratio(a: Measurement, b: Measurement): number;
  /** Prints a line of the report. */
  print(line: string): void;
}

export interface Benchmark {
  name: string;
  description: string;
  run(ctx: BenchContext): Promise<void>;
}

interface BenchmarkEntry {
  /** Same as the module's Benchmark name; the filter matches it before the module loads. */
  name: string;
  load: () => Promise<{ default: Benchmark }>;
}

const BENCHMARKS: readonly BenchmarkEntry[] = [
  { name: 'set-signing', load: () => import('./set-signing.ts') },
  { name: 'transmitter', load: () => import('./transmitter.ts') },
  { name: 'http-client', load: () => import('./http-client.ts') },
  { name: 'delivery', load: () => import('./delivery.ts') },
];

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

async function timeRound(
  fn: () => unknown,
  roundMs: number,
): Promise<{ opsPerSecond: number; cpuMicrosPerOp: number }> {
  let ops = 0;
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < roundMs) {
    await fn();
    ops++;
    elapsed = performance.now() - start;
  }
  const cpu = process.cpuUsage(cpuStart);
  return { opsPerSecond: (ops * 1000) / elapsed, cpuMicrosPerOp: (cpu.user + cpu.system) / ops };
}

async function compare(
  contenders: Record<string, () => unknown>,
  options: MeasureOptions = {},
): Promise<Measurement[]> {
  const roundMs = options.roundMs ?? 200;
  const roundCount = options.rounds ?? 25;
  const entries = Object.entries(contenders);
  for (const [, fn] of entries) for (let i = 0; i < (options.warmup ?? 200); i++) await fn();
  const results = entries.map(([label]) => ({ label, rounds: [] as number[], cpu: [] as number[] }));
  for (let round = 0; round < roundCount; round++) {
    // Alternate the order every round so neither contender always runs first.
    const order = round % 2 === 0 ? [...entries.keys()] : [...entries.keys()].reverse();
    for (const i of order) {
      const fn = entries[i]?.[1] as () => unknown;
      const timed = await timeRound(fn, roundMs);
      const result = results[i] as { rounds: number[]; cpu: number[] };
      result.rounds[round] = timed.opsPerSecond;
      result.cpu[round] = timed.cpuMicrosPerOp;
    }
  }
  return results.map(({ label, rounds, cpu }) => ({
    label,
    rounds,
    opsPerSecond: median(rounds),
    cpuMicrosPerOp: median(cpu),
  }));
}

function ratio(a: Measurement, b: Measurement): number {
  return median(a.rounds.map((ops, i) => ops / (b.rounds[i] ?? Number.NaN)).filter(Number.isFinite));
}

async function main(filter: string | undefined): Promise<number> {
  const print = (line: string) => console.log(line);
  print(`ssf-bridge benchmarks — Node ${process.version}, ${process.platform}/${process.arch}`);
  let ran = 0;
  for (const entry of BENCHMARKS) {
    if (filter && !entry.name.includes(filter)) continue;
    const benchmark = (await entry.load()).default;
    print(`\n## ${benchmark.name}: ${benchmark.description}`);
    await benchmark.run({ compare, ratio, print });
    ran++;
  }
  if (ran === 0) {
    print(`no benchmark matches "${filter}"`);
    return 1;
  }
  return 0;
}

process.exitCode = await main(process.argv[2]);
