/**
 * `ssf-bridge run` as a real child process: what it does on an error nothing handled and on a
 * second signal, which only a process of its own can show.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeProcess } from '../../../test/helpers/bridge-process.ts';

const PLUGIN_API = fileURLToPath(new URL('../../plugin-api/index.ts', import.meta.url));

/** A bridge takes a few seconds to start, many more on a busy machine. */
const PROCESS_TEST_MS = 60_000;

const running: BridgeProcess[] = [];
const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
  for (const c of cleanups.splice(0)) c();
});

function workDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'ssf-cli-run-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A destination whose background work fails with its own credential in the error text, as a
 * token refresh loop's might: a stray rejected promise, or an exception thrown from a timer.
 */
const CRASHING_PLUGIN = `
import { defineConnector, secret, z } from ${JSON.stringify(PLUGIN_API)};
export default defineConnector({
  manifest: { id: 'crashy', kind: 'outbound', version: '0.1.0', stability: 'development',
    displayName: 'Crashy', description: 'Fails in the background on purpose.',
    accepts: ['caep.session-revoked'], capabilities: {} },
  configSchema: z.strictObject({ api_token: secret('t'), how: z.enum(['reject', 'throw']) }),
  examples: [],
  create: (ctx, config) => ({
    target: { audience: 'urn:ssf-bridge:crash-test' },
    async start() {
      setTimeout(() => {
        const err = new Error('token refresh failed for ' + config.api_token.reveal());
        if (config.how === 'throw') throw err;
        void Promise.reject(err);
      }, 300);
    },
    async stop() { ctx.logger.info('crashy stopped'); },
    async deliver() { return { status: 200 }; },
  }),
});
`;

function crashingBridge(how: 'reject' | 'throw', secretValue: string): BridgeProcess {
  const cwd = workDir();
  writeFileSync(join(cwd, 'crash.mjs'), CRASHING_PLUGIN);
  writeFileSync(
    join(cwd, 'bridge.yaml'),
    [
      'data_dir: ./data',
      'server: { host: 127.0.0.1, port: 0 }',
      'plugins: [./crash.mjs]',
      'outbound:',
      `  - { id: crashy, connector: crashy, config: { api_token: ${secretValue}, how: ${how} } }`,
      '',
    ].join('\n'),
  );
  const bridge = new BridgeProcess(['run', '--config', 'bridge.yaml'], { cwd });
  running.push(bridge);
  return bridge;
}

describe('ssf-bridge run: an error nothing handled (real child process)', () => {
  for (const how of ['reject', 'throw'] as const) {
    it(
      `a connector's ${how === 'reject' ? 'stray rejected promise' : 'exception thrown from a timer'} is logged fatal with its secret scrubbed, and the process exits 1 at once`,
      async () => {
        const secretValue = `crash-secret-${how}-4f9c2a7e`;
        const bridge = crashingBridge(how, secretValue);
        const exit = await bridge.exited;
        const stdout = bridge.stdout.join('\n');
        const stderr = bridge.stderr.join('');

        expect(stdout + stderr).not.toContain(secretValue);
        expect(exit).toEqual({ code: 1, signal: null });
        const records = bridge.records();
        const fatal = records.findIndex((r) => r.msg === 'unexpected error; exiting without draining');
        expect(fatal, stdout + stderr).toBeGreaterThanOrEqual(0);
        expect(records[fatal]).toMatchObject({
          level: 'fatal',
          origin: how === 'reject' ? 'unhandledRejection' : 'uncaughtException',
          err: { message: 'token refresh failed for [redacted]' },
        });
        // Not drained: stopping would settle attempts in flight, and one that crashed the bridge
        // must count as interrupted on the next start (see test/durability/poison.test.ts).
        expect(records.slice(fatal + 1)).toEqual([]);
        // No raw stack from Node on stderr, only the CLI's own line.
        expect(stderr.trim()).toBe('ssf-bridge: stopped after an unexpected error (see the log)');
      },
      PROCESS_TEST_MS,
    );
  }
});

describe('ssf-bridge run: a second signal (real child process)', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const) {
    it(
      `a second ${signal} while draining exits at once with ${code} (128 + the signal's number)`,
      async () => {
        const cwd = workDir();
        writeFileSync(
          join(cwd, 'bridge.yaml'),
          [
            'data_dir: ./data',
            // Long enough that the drain is still waiting for the held request at the second signal.
            'server: { host: 127.0.0.1, port: 0, shutdown_timeout: 60s }',
            'inbound:',
            '  - { id: in1, connector: events-api, config: { token: abcdefgh12345678 } }',
            'outbound:',
            '  - { id: out, connector: log }',
            'routes:',
            "  - { from: '*', to: [out] }",
            '',
          ].join('\n'),
        );
        const bridge = new BridgeProcess(['run', '--config', 'bridge.yaml'], { cwd });
        running.push(bridge);
        const listening = await bridge.waitForLine((l) => l.includes('"msg":"ssf-bridge listening'), 50_000);
        const { hostname, port } = new URL((JSON.parse(listening) as { url: string }).url);
        // A request that never finishes keeps the drain going until shutdown_timeout.
        const socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(Number(port), hostname, () =>
            s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n', () => resolve(s)),
          );
          s.on('error', reject);
        });
        cleanups.push(() => socket.destroy());

        bridge.kill(signal);
        await bridge.waitForLine((l) => l.includes('"msg":"draining before exit"'));
        bridge.kill(signal);
        const exit = await bridge.exited;

        expect(exit).toEqual({ code, signal: null });
        expect(bridge.stderr.join('')).toContain(`${signal} again: exiting without draining`);
      },
      PROCESS_TEST_MS,
    );
  }
});
