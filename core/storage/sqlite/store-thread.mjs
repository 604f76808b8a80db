// Entry of the SQLite store's thread (see threaded-store.ts). Worker threads do not inherit the
// TypeScript loader the command registers, so the thread registers its own before loading the store.
import { register } from 'tsx/esm/api';

register();
await import('./thread-host.ts');
