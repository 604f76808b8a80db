import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeProcess } from '../helpers/bridge-process.ts';

// SIGTERM drains within server.shutdown_timeout even while a client holds a request it never
// finishes sending: Node stops enforcing request and header timeouts on a closing server, so the
// bridge has to cut such connections itself when the deadline passes.

const running: BridgeProcess[] = [];
const sockets: Socket[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
  for (const s of sockets.splice(0)) s.destroy();
});

const CONFIG = `
data_dir: ./data
server:
  host: 127.0.0.1
  port: 0
  shutdown_timeout: 1s
  request_timeout: 30s
inbound:
  - id: in1
    connector: events-api
    config:
      token: abcdefgh12345678
outbound:
  - id: out
    connector: log
    config:
      audience: urn:ssf-bridge:shutdown-test
routes:
  - id: all
    from: '*'
    to: [out]
`;

/** Opens a raw connection and sends `text`, resolving once it is written. */
function hold(url: string, text: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => socket.write(text, () => resolve(socket)));
    socket.on('error', reject);
    sockets.push(socket);
  });
}

describe('ssf-bridge run: shutdown (real child process)', () => {
  it('exits 0 within shutdown_timeout while a client holds a half-sent request open', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'ssf-shutdown-'));
    writeFileSync(join(cwd, 'bridge.yaml'), CONFIG);
    const bridge = new BridgeProcess(['run', '--config', 'bridge.yaml'], { cwd });
    running.push(bridge);
    const url = await bridge.url();

    // Headers without their final CRLF, and a body that stops short of its Content-Length.
    await hold(url, 'GET /healthz HTTP/1.1\r\nHost: x\r\n');
    await hold(
      url,
      'POST /ingest/in1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer abcdefgh12345678\r\n' +
        'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"a":',
    );
    // A complete request on the same server is still answered before the signal.
    expect((await fetch(`${url}/healthz`)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const signalled = Date.now();
    bridge.kill('SIGTERM');
    const exit = await bridge.exited;
    const took = Date.now() - signalled;

    expect(exit).toEqual({ code: 0, signal: null });
    expect(took).toBeLessThan(3_000);
    expect(bridge.records().map((r) => r.msg)).toEqual(
      expect.arrayContaining(['draining before exit', 'stopped']),
    );
  }, 20_000);
});
