import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BridgeProcess } from '../helpers/bridge-process.ts';

// `ssf-bridge run` starts libuv's thread pool (RSA signatures, file syncs) below the event loop's
// priority (core/cli/bin.cjs). Checked on a real process by reading each thread's nice value.

const running: BridgeProcess[] = [];
afterEach(() => {
  for (const p of running.splice(0)) p.kill('SIGKILL');
});

/** Nice value of each thread of a process (Linux: field 19 of /proc/<pid>/task/<tid>/stat). */
function niceByThread(pid: number): Map<number, number> {
  const nice = new Map<number, number>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    nice.set(Number(tid), Number(fields[16]));
  }
  return nice;
}

async function startQuickstart(env: Record<string, string>) {
  const cwd = mkdtempSync(join(tmpdir(), 'ssf-priority-'));
  const bridge = new BridgeProcess(['run'], { cwd, env: { SSF_BRIDGE_PORT: '0', ...env } });
  running.push(bridge);
  const url = await bridge.url();
  return { bridge, url, pid: bridge.child.pid! };
}

// Per-thread nice values are a Linux property; elsewhere the bridge leaves priorities alone.
const linux = existsSync('/proc/thread-self');

describe.skipIf(!linux)('thread pool priority (real child process)', () => {
  it('the pool’s threads run at nice 10, the event loop and every other thread at the process’s own; signing on the pool still delivers', async () => {
    const own = niceByThread(process.pid).get(process.pid)!;
    const { bridge, url, pid } = await startQuickstart({ UV_THREADPOOL_SIZE: '3' });
    const res = await fetch(`${url}/ingest/quickstart`, {
      method: 'POST',
      headers: { authorization: 'Bearer quickstart-token', 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'caep.session-revoked',
        subject: { format: 'email', email: 'a@example.com' },
      }),
    });
    expect(res.status).toBe(202);
    await bridge.waitForLine((l) => l.includes('delivered_set') && l.includes('a@example.com'));
    const nice = niceByThread(pid);
    expect(nice.get(pid)).toBe(own);
    const niced = [...nice].filter(([, value]) => value === 10);
    // Exactly the pool: UV_THREADPOOL_SIZE threads (the helper that started it has ended).
    expect(niced).toHaveLength(3);
    expect([...nice].filter(([, value]) => value !== 10).every(([, value]) => value === own)).toBe(true);
  });

  it('SSF_BRIDGE_THREAD_POOL_NICE sets the value, and 0 leaves every thread at the process’s priority', async () => {
    const own = niceByThread(process.pid).get(process.pid)!;
    const lowest = await startQuickstart({ UV_THREADPOOL_SIZE: '2', SSF_BRIDGE_THREAD_POOL_NICE: '19' });
    expect([...niceByThread(lowest.pid).values()].filter((value) => value === 19)).toHaveLength(2);
    const off = await startQuickstart({ SSF_BRIDGE_THREAD_POOL_NICE: '0' });
    expect([...niceByThread(off.pid).values()].every((value) => value === own)).toBe(true);
  });
});
