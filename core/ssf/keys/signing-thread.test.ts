import { verify } from 'node:crypto';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { generateKeyMaterial } from './material.ts';
import { SigningThread } from './signing-thread.ts';
import { createPublicKey } from 'node:crypto';

const threads: SigningThread[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const thread of threads.splice(0)) await thread.close();
});

async function es256() {
  const material = await generateKeyMaterial('ES256');
  const { d: _d, ...publicJwk } = material.privateJwk as Record<string, unknown>;
  const publicKey = createPublicKey({ key: publicJwk as never, format: 'jwk' });
  // RFC 7518 §3.4: a 64-byte R || S signature over SHA-256 of the signing input.
  const valid = (input: Buffer, signature: Buffer) =>
    signature.length === 64 &&
    verify('sha256', input, { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature);
  return { material, valid };
}

describe('ES256 signing thread', () => {
  it('rule: signatures made on the thread verify (RFC 7518 §3.4), and one turn’s signatures travel as one message', async () => {
    const thread = new SigningThread();
    threads.push(thread);
    const { material, valid } = await es256();
    const sign = thread.signer(material);
    const inputs = Array.from({ length: 50 }, (_, i) => Buffer.from(`header.payload-${i}`));
    const signatures = await Promise.all(inputs.map((input) => sign(input)));
    expect(signatures.every((signature, i) => valid(inputs[i]!, signature))).toBe(true);
    expect(new Set(signatures.map((s) => s.toString('hex'))).size).toBe(50);
    expect(thread.batches).toBe(1);
    // Each key signs with its own private key, on the same thread.
    const other = await es256();
    const otherSign = thread.signer(other.material);
    const [mine, theirs] = await Promise.all([sign(inputs[0]!), otherSign(inputs[0]!)]);
    expect(valid(inputs[0]!, mine!)).toBe(true);
    expect(other.valid(inputs[0]!, theirs!)).toBe(true);
    expect(valid(inputs[0]!, theirs!)).toBe(false);
  });

  it('a signature alone in its turn is made on the event loop, without a hand-off', async () => {
    const thread = new SigningThread();
    threads.push(thread);
    const { material, valid } = await es256();
    const sign = thread.signer(material);
    for (let i = 0; i < 5; i++) {
      const input = Buffer.from(`one-off ${i}`);
      expect(valid(input, await sign(input))).toBe(true);
    }
    expect(thread.batches).toBe(0);
  });

  it('a thread that dies hands its held signatures back to the event loop, with a warning, and signing goes on there', async () => {
    const thread = new SigningThread();
    threads.push(thread);
    const warning = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { material, valid } = await es256();
    const sign = thread.signer(material);
    await sign(Buffer.from('warm'));
    // Enough signatures that the thread is still at work when it dies (about 40 µs each).
    const inputs = Array.from({ length: 2000 }, (_, i) => Buffer.from(`held ${i}`));
    const held = inputs.map((input) => sign(input));
    await new Promise((resolve) => setImmediate(resolve));
    await thread.crashForTest();
    const signatures = await Promise.all(held);
    expect(signatures.every((signature, i) => valid(inputs[i]!, signature))).toBe(true);
    expect(warning).toHaveBeenCalledWith(expect.stringMatching(/signing thread stopped/));
    const batches = thread.batches;
    const later = Buffer.from('after the failure');
    expect(valid(later, await sign(later))).toBe(true);
    expect(thread.batches).toBe(batches);
  });

  it('close makes the signatures it held on the event loop; the next signature starts a new thread that knows the key', async () => {
    const thread = new SigningThread();
    threads.push(thread);
    const { material, valid } = await es256();
    const sign = thread.signer(material);
    const inputs = Array.from({ length: 2000 }, (_, i) => Buffer.from(`in flight at close ${i}`));
    const held = inputs.map((input) => sign(input));
    await new Promise((resolve) => setImmediate(resolve));
    await thread.close();
    const signatures = await Promise.all(held);
    expect(signatures.every((signature, i) => valid(inputs[i]!, signature))).toBe(true);
    const next = [Buffer.from('after close 1'), Buffer.from('after close 2')];
    const after = await Promise.all(next.map((input) => sign(input)));
    expect(after.every((signature, i) => valid(next[i]!, signature))).toBe(true);
    expect(thread.batches).toBe(2);
  });
});
