import { specimenPusher } from './index.ts';

/**
 * The specimen pusher as a plugin package exports it, for tests of `ssf-bridge validate --check`:
 * its check() puts its token in the message it reports when the receiver refuses.
 */
export const specimenPusherPlugin = specimenPusher('secret-in-check');
