import { isDeepStrictEqual } from 'node:util';
import { checkpointConflict } from '../errors.ts';
import type { EmitOptions } from '../types.ts';

/**
 * Compare-and-set as the stores do it, for test doubles of `ctx.emit`: throws the retryable
 * `SSF_ERR_CHECKPOINT_CONFLICT` when the checkpoint written with `expected` is no longer the one
 * stored (`read(name)`), so contexts sharing one checkpoint map behave like instances on one database.
 */
export function assertCheckpointExpected(
  instanceId: string,
  checkpoint: EmitOptions['checkpoint'],
  read: (name: string) => unknown,
): void {
  if (!checkpoint?.expected) return;
  const name = checkpoint.name ?? 'default';
  if (!isDeepStrictEqual(read(name), checkpoint.expected.value)) throw checkpointConflict(instanceId, name);
}
