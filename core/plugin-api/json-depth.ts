/**
 * How deep an event's claims and subject may nest. SET claims are shallow (CAEP's deepest are
 * about four levels); a limit far above that keeps recursive code downstream (hashing, JSON
 * serialisation, the store) clear of the call stack, which a few thousand levels exhaust.
 */
export const MAX_EVENT_NESTING = 32;

/** Whether `value` nests objects or arrays more than `limit` levels deep. Not recursive itself. */
export function nestsDeeperThan(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [item, depth] = next;
    if (item === null || typeof item !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Array.isArray(item) ? item : Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}
