/**
 * RFC 9449 §4.3 step 9 and §11.1: a DPoP proof is valid only for the resource it names (`htu`),
 * and the resource is the transmitter's, whose URLs derive from the configured issuer. The Host
 * header is the client's to choose, so a URL built from it proves nothing: a proof made for
 * another resource server must not pass because the request claims to be for that server.
 */
import { createServer, request, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { DpopProver } from '../../core/http/dpop.ts';
import { ALICE, startBridge, type Bridge } from './harness.ts';

const AS_ISSUER = 'https://as.example';
const RS_AUDIENCE = 'https://bridge.example/ssf';
const PUBLIC = 'https://tx.example';

let jwksServer: Server;
let signingKey: CryptoKey;
let bridge: Bridge;

function oauth() {
  const port = (jwksServer.address() as { port: number }).port;
  return { issuer: AS_ISSUER, audience: RS_AUDIENCE, jwks_uri: `http://127.0.0.1:${port}/jwks` };
}

function boundToken(prover: DpopProver): Promise<string> {
  return new SignJWT({ client_id: 'dpop-client', scope: 'ssf.read', cnf: { jkt: prover.thumbprint } })
    .setProtectedHeader({ alg: 'RS256', kid: 'as-key-1', typ: 'at+jwt' })
    .setIssuer(AS_ISSUER)
    .setAudience(RS_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(signingKey);
}

/** GET `path` at the bridge's socket with a Host header of our choosing (fetch cannot set one). */
function get(
  at: Bridge,
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: any }> {
  const origin = new URL(at.origin);
  return new Promise((resolve, reject) => {
    const req = request({ host: origin.hostname, port: origin.port, path, method: 'GET', headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'as-key-1', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  // Behind a load balancer: the issuer (and so every public URL) is https://tx.example.
  bridge = await startBridge({
    publicOrigin: PUBLIC,
    noEngine: true,
    transmitter: { receivers: [ALICE], oauth: oauth() },
  });
});

afterAll(async () => {
  await bridge?.close();
  await new Promise<void>((r) => jwksServer?.close(() => r()));
});

describe('RFC 9449 §4.3 step 9: htu is compared with the URL under the configured issuer only', () => {
  it('§11.1: a proof made for another server is refused, whatever Host the request names', async () => {
    const prover = new DpopProver();
    const jwt = await boundToken(prover);
    const res = await get(bridge, '/ssf/streams', {
      host: 'other-rs.example',
      authorization: `DPoP ${jwt}`,
      dpop: prover.proof('GET', 'http://other-rs.example/ssf/streams', { accessToken: jwt }),
    });
    expect(res.status).toBe(401);
    expect(res.body).toMatchObject({ err: 'invalid_dpop_proof' });
    expect(res.body.description).toMatch(/not this URL/);
  });

  it('§4.3 step 9: a proof for the address the request reached, when that is not the public URL, is refused', async () => {
    const prover = new DpopProver();
    const jwt = await boundToken(prover);
    const direct = `${bridge.origin}/ssf/streams`;
    const res = await get(bridge, '/ssf/streams', {
      authorization: `DPoP ${jwt}`,
      dpop: prover.proof('GET', direct, { accessToken: jwt }),
    });
    expect(res.status).toBe(401);
    expect(res.body.description).toMatch(/not this URL/);
  });

  it('§4.3 step 9: a proof for the public URL under the issuer is accepted, whatever Host the request names', async () => {
    const prover = new DpopProver();
    const jwt = await boundToken(prover);
    for (const host of [undefined, 'other-rs.example']) {
      const res = await get(bridge, '/ssf/streams', {
        ...(host ? { host } : {}),
        authorization: `DPoP ${jwt}`,
        dpop: prover.proof('GET', `${PUBLIC}/ssf/streams`, { accessToken: jwt }),
      });
      expect(res.status).toBe(200);
    }
  });

  it.each([
    ['an issuer known only once the server listens (the default http://HOST:PORT)', { lazyIssuer: true }],
    ['an issuer with a path (routes mounted under it)', { issuerPath: '/tenants/a' }],
  ])('§4.3 step 9: keeps working with %s', async (_name, options) => {
    const other = await startBridge({
      ...options,
      noEngine: true,
      transmitter: { receivers: [ALICE], oauth: oauth() },
    });
    try {
      const prover = new DpopProver();
      const jwt = await boundToken(prover);
      const url = `${other.issuer}/ssf/streams`;
      const res = await get(other, new URL(url).pathname, {
        authorization: `DPoP ${jwt}`,
        dpop: prover.proof('GET', url, { accessToken: jwt }),
      });
      expect(res.status).toBe(200);
    } finally {
      await other.close();
    }
  });
});
