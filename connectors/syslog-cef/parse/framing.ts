/**
 * TCP syslog framing (RFC 6587): octet counting (`<length> <message>`) and non-transparent
 * framing (messages ended by LF), told apart per message by its first byte. Frames longer than
 * the limit are skipped whole and reported, never buffered.
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
        const lf = buf.indexOf(LF);
        if (lf < 0) {
          this.#buffer = Buffer.alloc(0);
          return;
        }
        this.#skipLine = false;
        this.#buffer = buf.subarray(lf + 1);
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
      const lf = buf.indexOf(LF);
      if (lf < 0) {
        if (buf.length > this.maxBytes) {
          this.sink.oversized();
          this.#skipLine = true;
          this.#buffer = Buffer.alloc(0);
        }
        return;
      }
      const end = lf > 0 && buf[lf - 1] === CR ? lf - 1 : lf;
      this.#buffer = buf.subarray(lf + 1);
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
    while (end > start && (buf[end - 1] === LF || buf[end - 1] === CR)) end -= 1;
    this.sink.frame(buf.toString('utf8', start, end));
    return 'done';
  }
}
