/**
 * Compare-and-set of checkpoints, shared by both drivers. A connector whose state may be
 * changed by several instances at once (webhooks are served by every instance on a shared
 * database) commits its new state only if the stored one is still the one it read; otherwise
 * nothing of the batch is written and the work is done again from the state that won.
 */
export { checkpointConflict } from '../plugin-api/errors.ts';

/** The text SQLite stores for a checkpoint value (and compares an expected value by). */
export function checkpointText(value: unknown): string {
  return JSON.stringify(value ?? null);
}
