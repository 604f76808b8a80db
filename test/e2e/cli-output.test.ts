import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// A one-shot command's output written to a pipe (`ssf-bridge … | jq`) arrives whole: the command
// waits for its output to leave the process before it exits (core/cli/bin.mjs).

const BIN = fileURLToPath(new URL('../../core/cli/bin.cjs', import.meta.url));

/**
 * Runs the command as a shell runs `ssf-bridge ARGS | cat`: its stdout is a pipe(2) (what Node
 * gives a child is a socket pair, which behaves otherwise). Resolves to the command's exit code.
 */
function runPiped(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const quoted = [process.execPath, BIN, ...args].map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -o pipefail; ${quoted} | cat`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({ code, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }),
    );
  });
}

describe('CLI output to a pipe (real child process)', () => {
  it('a JSON document larger than a pipe buffer arrives complete and parses', async () => {
    const { code, stdout, stderr } = await runPiped(['connectors', 'list', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    // Larger than the 64 KiB a Linux pipe holds: cut at exit, it would not parse.
    expect(stdout.length).toBeGreaterThan(128 * 1024);
    const listed = JSON.parse(stdout) as Array<{ id: string }>;
    expect(listed.map((c) => c.id)).toContain('crowdstrike-falcon');
  }, 60_000);

  it('a reader that stops early (| head) ends the command cleanly, without an EPIPE crash', async () => {
    const child = spawn(process.execPath, [BIN, 'connectors', 'list', '--json'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const err: Buffer[] = [];
    child.stderr.on('data', (chunk: Buffer) => err.push(chunk));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(Buffer.concat(err).toString()).not.toMatch(/EPIPE|Error/);
    expect(code).toBe(0);
  }, 60_000);
});
