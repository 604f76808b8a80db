/**
 * Event ids: UUIDv7 (RFC 9562 §5.7). They sort by acceptance time, so new rows land at the end of
 * the stores' primary-key and event-id indexes instead of at random pages: an accepted batch
 * touches a few index pages rather than one per event, which keeps each durable commit small.
 */
import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;
let lastMs = -1;
let counter = 0;

function randomBytes(n: number): Buffer {
  if (poolOffset + n > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.subarray(poolOffset, poolOffset + n);
  poolOffset += n;
  return out;
}

/**
 * A new UUIDv7. Ids made in the same millisecond stay in creation order: the 12 bits after the
 * version hold a counter (RFC 9562 §6.2, method 1) started at a random value below 2048.
 */
export function newEventId(nowMs: number = Date.now()): string {
  const random = randomBytes(10);
  let ms = nowMs;
  if (ms <= lastMs) {
    ms = lastMs;
    counter += 1;
    if (counter > 0xfff) {
      // The counter ran out within one millisecond: borrow the next one, as §6.2 allows.
      ms = lastMs + 1;
      counter = random.readUInt16BE(0) & 0x7ff;
    }
  } else {
    counter = random.readUInt16BE(0) & 0x7ff;
  }
  lastMs = ms;
  const bytes = Buffer.allocUnsafe(16);
  bytes.writeUIntBE(ms, 0, 6);
  bytes[6] = 0x70 | (counter >> 8);
  bytes[7] = counter & 0xff;
  random.copy(bytes, 8, 2, 10);
  bytes[8] = 0x80 | (bytes[8]! & 0x3f);
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
