// The ES256 signing thread (see signing-thread.ts). Plain JavaScript: worker threads do not
// inherit the TypeScript loader the command registers, and this needs nothing but node:crypto.
import { createPrivateKey, sign } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

const keys = new Map();

parentPort.on('message', (message) => {
  if (message.type === 'key') {
    keys.set(message.id, createPrivateKey({ key: message.jwk, format: 'jwk' }));
    return;
  }
  try {
    // RFC 7518 §3.4: R and S concatenated, not DER.
    const signatures = message.items.map(([keyId, input]) =>
      sign('sha256', input, { key: keys.get(keyId), dsaEncoding: 'ieee-p1363' }),
    );
    parentPort.postMessage({ seq: message.seq, signatures });
  } catch (err) {
    parentPort.postMessage({ seq: message.seq, error: err instanceof Error ? err.message : String(err) });
  }
});
