#!/usr/bin/env node
// Entry point of the `ssf-bridge` command. The sources are TypeScript; tsx loads them
// directly so a fresh clone runs after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
const code = await main(process.argv);
// Exit explicitly: a finished command must not linger on an idle handle (a pool, a timer).
process.exit(code);
