import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** Node options for every bridge process, e.g. `--cpu-prof` (which NODE_OPTIONS does not allow). */
const NODE_ARGS = process.env.SSF_BRIDGE_NODE_ARGS?.split(' ').filter(Boolean) ?? [];

export const BIN = fileURLToPath(new URL('../../core/cli/bin.cjs', import.meta.url));

/** A bridge running as a real child process (`ssf-bridge run`), with its output collected. */
export class BridgeProcess {
  readonly stdout: string[] = [];
  readonly stderr: string[] = [];
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #partial = '';
  #waiters: Array<{ test: (line: string) => boolean; resolve: (line: string) => void }> = [];

  constructor(args: string[], options: { cwd: string; env?: Record<string, string> }) {
    this.child = spawn(process.execPath, [...NODE_ARGS, BIN, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => this.#onStdout(chunk));
    this.child.stderr?.setEncoding('utf8').on('data', (chunk: string) => this.stderr.push(chunk));
    this.exited = new Promise((resolve) =>
      this.child.on('exit', (code, signal) => resolve({ code, signal })),
    );
  }

  /** Resolves with the first stdout line (past or future) that passes the test. */
  waitForLine(test: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const seen = this.stdout.find(test);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching line within ${timeoutMs} ms; stderr: ${this.stderr.join('')}`)),
        timeoutMs,
      );
      this.#waiters.push({
        test,
        resolve: (line) => {
          clearTimeout(timer);
          resolve(line);
        },
      });
    });
  }

  /** The URL from the "listening" log line. */
  async url(): Promise<string> {
    const line = await this.waitForLine((l) => l.includes('"msg":"ssf-bridge listening'));
    return (JSON.parse(line) as { url: string }).url;
  }

  /** JSON objects printed on stdout. */
  records(): Array<Record<string, unknown>> {
    return this.stdout.flatMap((line) => {
      try {
        return [JSON.parse(line) as Record<string, unknown>];
      } catch {
        return [];
      }
    });
  }

  kill(signal: NodeJS.Signals): void {
    this.child.kill(signal);
  }

  #onStdout(chunk: string): void {
    const lines = (this.#partial + chunk).split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      this.stdout.push(line);
      this.#waiters = this.#waiters.filter((w) => (w.test(line) ? (w.resolve(line), false) : true));
    }
  }
}
