#!/usr/bin/env node
// The `ssf-bridge` command, loaded by its entry point (bin.cjs). The sources are TypeScript; tsx
// loads them directly so a fresh clone runs after `npm ci` with no build step.
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';

// V8 lets the heap grow up to fourfold between full collections while it is small and collects
// fast. Under a burst of ingest that is some 80 MB of garbage a long-running bridge need not hold:
// grow by half instead (measured: peak memory -65 MB with a 100,000-event backlog, for 4–6% of
// delivery throughput; see docs/performance.md). A value given on the node command line wins.
if (!process.execArgv.some((arg) => arg.startsWith('--heap-growing-percent'))) {
  setFlagsFromString('--heap-growing-percent=50');
}

register();
const { main } = await import('./main.ts');
const code = await main(process.argv);
await flushed(process.stdout);
await flushed(process.stderr);
// Exit explicitly: a finished command must not linger on an idle handle (a pool, a timer).
process.exit(code);

/**
 * Resolves once everything written to the stream so far has left the process. Writes to a pipe
 * are asynchronous: exiting at once cut `ssf-bridge connectors list --json | jq` off at 64 KiB.
 * A reader that went away (`| head`) ends the wait too; there is nothing left to deliver to it.
 */
function flushed(stream) {
  return new Promise((resolve) => {
    if (stream.destroyed || stream.writableEnded) return resolve();
    stream.on('error', resolve);
    stream.write('', () => resolve());
  });
}
