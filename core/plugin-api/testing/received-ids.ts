import { receivedIdsOf } from '../../runtime/context.ts';
import { memoryOneTimeIds } from '../../runtime/ports.ts';
import type { ReceivedIds } from '../types.ts';

/**
 * A ctx.receivedIds kept in memory, for a connector's own tests. Two test contexts given the same
 * one stand for two bridge instances sharing a database.
 */
export function memoryReceivedIds(): ReceivedIds {
  return receivedIdsOf('test', memoryOneTimeIds());
}
