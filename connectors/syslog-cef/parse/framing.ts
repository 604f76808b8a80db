/**
 * TCP syslog framing (RFC 6587): octet counting (`<length> <message>`) and non-transparent
 * framing (messages ended by LF, or by NUL, the other trailer RFC 6587 §3.4.2 names as some
 * senders' choice), told apart per message by its first byte. Frames longer than the limit are
 * skipped whole and reported, one report per frame, never buffered.
 */

const LF = 0x0a;
const CR = 0x0d;
const NUL = 0x00;
const SPACE = 0x20;

export interface FramerSink {
  frame(message: string): void;
  oversized(): void;
}

export class TcpFramer {
  #buffer: Buffer = Buffer.alloc(0);
  #skipBytes = 0;
  #skipLine = false;
  /** Bytes at the start of the buffer already known to hold no LF or NUL (a frame still arriving). */
  #scanned = 0;

  constructor(
    private readonly maxBytes: number,
    private readonly sink: FramerSink,
  ) {}

  push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    for (;;) {
      const buf = this.#buffer;
      if (this.#skipBytes > 0) {
        const n = Math.min(this.#skipBytes, buf.length);
        this.#skipBytes -= n;
        this.#buffer = buf.subarray(n);
        if (this.#skipBytes > 0) return;
        continue;
      }
      if (this.#skipLine) {
        const end = frameEnd(buf, 0);
        if (end < 0) {
          this.#buffer = Buffer.alloc(0);
          return;
        }
        this.#skipLine = false;
        this.#buffer = buf.subarray(end + 1);
        continue;
      }
      if (buf.length === 0) return;
      const first = buf[0] as number;
      if (first === LF || first === CR || first === NUL) {
        this.#buffer = buf.subarray(1);
        continue;
      }
      if (first >= 0x31 && first <= 0x39) {
        const counted = this.#octetCounted(buf);
        if (counted === 'wait') return;
        if (counted === 'done') continue;
      }
      const trailer = frameEnd(buf, this.#scanned);
      if (trailer < 0) {
        if (buf.length > this.maxBytes) {
          this.sink.oversized();
          this.#skipLine = true;
          this.#buffer = Buffer.alloc(0);
          this.#scanned = 0;
        } else this.#scanned = buf.length;
        return;
      }
      this.#scanned = 0;
      const end = trailer > 0 && buf[trailer - 1] === CR ? trailer - 1 : trailer;
      this.#buffer = buf.subarray(trailer + 1);
      if (end > this.maxBytes) this.sink.oversized();
      else this.sink.frame(buf.toString('utf8', 0, end));
    }
  }

  /** Reads one octet-counted frame: 'wait' for more bytes, 'done' when consumed, 'no' if not one. */
  #octetCounted(buf: Buffer): 'wait' | 'done' | 'no' {
    let i = 0;
    while (i < buf.length && i < 8 && (buf[i] as number) >= 0x30 && (buf[i] as number) <= 0x39) i += 1;
    if (i === buf.length) return i < 8 ? 'wait' : 'no';
    if (buf[i] !== SPACE) return 'no';
    const length = Number(buf.toString('latin1', 0, i));
    const start = i + 1;
    if (length > this.maxBytes) {
      this.sink.oversized();
      this.#buffer = buf.subarray(start);
      this.#skipBytes = length;
      return 'done';
    }
    if (buf.length < start + length) return 'wait';
    let end = start + length;
    this.#buffer = buf.subarray(end);
    while (end > start && (buf[end - 1] === LF || buf[end - 1] === CR || buf[end - 1] === NUL)) end -= 1;
    this.sink.frame(buf.toString('utf8', start, end));
    return 'done';
  }
}

/**
 * Where the first non-transparent frame of `buf` ends: its first LF or NUL at or after `from`,
 * -1 when there is none. One pass for both bytes: two indexOf calls would each read to the end
 * of the buffer when a stream uses only the other trailer, once per frame.
 */
function frameEnd(buf: Buffer, from: number): number {
  for (let i = from; i < buf.length; i += 1) {
    const byte = buf[i];
    if (byte === LF || byte === NUL) return i;
  }
  return -1;
}
