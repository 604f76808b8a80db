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
// Exit explicitly: a finished command must not linger on an idle handle (a pool, a timer).
process.exit(code);
