/**
 * Signs ES256 SETs on a helper thread. An ECDSA P-256 signature costs about 40 µs of CPU, and on
 * the event loop that is time in which no request is read and no SET pushed; at full load it was
 * about a sixth of the loop's time. The signatures requested in one turn of the event loop go to
 * the thread in one message, so the hand-off costs little per SET (measured: +8–13% ES256 SETs
 * per second end to end on two cores). A signature alone in its turn is made on the event loop. RSA already signs on libuv's thread pool; Ed25519 signs
 * faster than a hand-off costs, so both stay where they are.
 *
 * Should the thread fail, the signatures it held and every later one are made on the event loop
 * instead, with a process warning: signing never fails because of the thread.
 */
import { createPrivateKey, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import type { KeyMaterial } from './material.ts';

const THREAD_URL = new URL('./signing-thread.mjs', import.meta.url);

type SignFunction = (signingInput: Buffer) => Promise<Buffer>;

interface Queued {
  keyId: number;
  key: KeyObject;
  input: Buffer;
  resolve(signature: Buffer): void;
  reject(err: unknown): void;
}

/** ES256 on the event loop: RFC 7518 §3.4 (R and S concatenated, not DER). */
function signEs256(key: KeyObject, input: Buffer): Buffer {
  return sign('sha256', input, { key, dsaEncoding: 'ieee-p1363' });
}

export class SigningThread {
  #worker: Worker | undefined;
  #failed = false;
  #nextKeyId = 0;
  #nextSeq = 0;
  #queue: Queued[] = [];
  readonly #sent = new Map<number, Queued[]>();
  /** Messages of signatures sent to the thread so far (for tests and diagnostics). */
  batches = 0;
  /** Every key handed out so far, as the thread needs it (a restarted thread gets them all). */
  readonly #keys = new Map<number, unknown>();

  /** A signer for an ES256 key whose signatures are made on this thread. */
  signer(material: KeyMaterial): SignFunction {
    const key = createPrivateKey({ key: material.privateJwk as JsonWebKey, format: 'jwk' });
    const keyId = ++this.#nextKeyId;
    this.#keys.set(keyId, material.privateJwk);
    this.#worker?.postMessage({ type: 'key', id: keyId, jwk: material.privateJwk });
    return (input) => {
      if (this.#failed) return Promise.resolve(signEs256(key, input));
      return new Promise<Buffer>((resolve, reject) => {
        if (this.#queue.length === 0) setImmediate(() => this.#flush());
        this.#queue.push({ keyId, key, input, resolve, reject });
      });
    };
  }

  /** Stops the thread; signatures it held are made here, later ones start a new thread. */
  async close(): Promise<void> {
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
    this.#signHeldHere();
  }

  /** Ends the thread abruptly, as a crash would (for tests). */
  async crashForTest(): Promise<void> {
    await this.#worker?.terminate();
  }

  #thread(): Worker | undefined {
    if (this.#failed) return undefined;
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(THREAD_URL);
    worker.unref();
    for (const [id, jwk] of this.#keys) worker.postMessage({ type: 'key', id, jwk });
    worker.on('message', (reply: { seq: number; signatures?: Uint8Array[]; error?: string }) => {
      const batch = this.#sent.get(reply.seq);
      this.#sent.delete(reply.seq);
      if (this.#sent.size === 0) worker.unref();
      if (batch === undefined) return;
      if (reply.signatures === undefined) {
        // A signature the thread could not make fails as it would have on the event loop.
        for (const item of batch) this.#signHere(item);
        return;
      }
      batch.forEach((item, i) => item.resolve(Buffer.from(reply.signatures![i]!)));
    });
    worker.on('error', (err) => this.#fail(worker, err.message));
    worker.on('exit', (code) => this.#fail(worker, `exit code ${code}`));
    this.#worker = worker;
    return worker;
  }

  #flush(): void {
    const batch = this.#queue;
    this.#queue = [];
    if (batch.length === 0) return;
    // A signature alone in its turn (one-off signing, a quiet destination) costs less here than
    // the hand-off would; under load a turn holds several (about 7 at full load).
    const worker = batch.length > 1 ? this.#thread() : undefined;
    if (worker === undefined) {
      for (const item of batch) this.#signHere(item);
      return;
    }
    const seq = ++this.#nextSeq;
    this.batches += 1;
    this.#sent.set(seq, batch);
    // While signatures are out, the thread keeps the process alive so an awaited one settles.
    if (this.#sent.size === 1) worker.ref();
    worker.postMessage({ type: 'sign', seq, items: batch.map((item) => [item.keyId, item.input]) });
  }

  #signHere(item: Queued): void {
    try {
      item.resolve(signEs256(item.key, item.input));
    } catch (err) {
      item.reject(err);
    }
  }

  #fail(worker: Worker, reason: string): void {
    if (this.#worker !== worker) return;
    this.#worker = undefined;
    this.#failed = true;
    process.emitWarning(`the ES256 signing thread stopped (${reason}); signing continues on the event loop`);
    this.#signHeldHere();
  }

  #signHeldHere(): void {
    const held = [...this.#sent.values()].flat();
    this.#sent.clear();
    for (const item of held) this.#signHere(item);
  }
}

let shared: SigningThread | undefined;

/** The process's signing thread, started with the first ES256 signature. */
export function signingThread(): SigningThread {
  shared ??= new SigningThread();
  return shared;
}
