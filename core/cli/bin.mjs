#!/usr/bin/env node
// Entry point of the `ssf-bridge` command. The sources are TypeScript; tsx loads them
// directly so a fresh clone runs after `npm ci` with no build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('./main.ts');
process.exitCode = await main(process.argv);
