/**
 * OAuth 2.0 JWT access tokens (CAEP interop profile §2.7, checklist IOP-13…IOP-15, TX-03): checked
 * against the authorization server's JWKS for signature, issuer, audience, expiry and scope. These
 * are the "dynamic" variants of the conformance modules that need an authorization server.
 */
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SignJWT,
  calculateJwkThumbprint,
  decodeProtectedHeader,
  exportJWK,
  generateKeyPair,
  type CryptoKey,
  type JWTPayload,
} from 'jose';
import { DpopProver, asksForNonce } from '../../core/http/dpop.ts';
import { NONCE_PERIOD_MS } from '../../core/transmitter/dpop.ts';
import { Secret } from '../../core/plugin-api/index.ts';
import { testHttpClientFactory } from '../../core/plugin-api/testing/index.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import {
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../../core/storage/testing/postgres.ts';
import type { PostgresStore } from '../../core/storage/postgres/store.ts';
import { ALICE, POLL, call, startBridge, type Bridge } from './harness.ts';

const AS_ISSUER = 'https://as.example';
const RS_AUDIENCE = 'https://bridge.example/ssf';
const CLIENT = 'oauth-client-1';

let bridge: Bridge;
let jwksServer: Server;
let signingKey: CryptoKey;
let otherKey: CryptoKey;
let jwksFetches = 0;

async function token(
  claims: JWTPayload = {},
  options: {
    key?: CryptoKey;
    typ?: string;
    expiresIn?: string | number | null;
    iss?: string;
    aud?: string;
  } = {},
): Promise<string> {
  let jwt = new SignJWT({ client_id: CLIENT, scope: 'ssf.read ssf.manage', ...claims })
    .setProtectedHeader({ alg: 'RS256', kid: 'as-key-1', typ: options.typ ?? 'at+jwt' })
    .setIssuer(options.iss ?? AS_ISSUER)
    .setAudience(options.aud ?? RS_AUDIENCE)
    .setIssuedAt();
  if (options.expiresIn !== null) jwt = jwt.setExpirationTime(options.expiresIn ?? '5m');
  return jwt.sign(options.key ?? signingKey);
}

/** The transmitter's `oauth` block for the authorization server this file runs, with `extra` settings. */
function oauthConfig(extra: Record<string, unknown> = {}) {
  const port = (jwksServer.address() as { port: number }).port;
  return { issuer: AS_ISSUER, audience: RS_AUDIENCE, jwks_uri: `http://127.0.0.1:${port}/jwks`, ...extra };
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'as-key-1', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    jwksFetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  bridge = await startBridge({
    transmitter: {
      receivers: [ALICE, { client_id: CLIENT, audience: 'https://rx.example' }],
      oauth: oauthConfig({ clock_tolerance: '0s' }),
      streams: { per_receiver: 'many' },
    },
  });
});

afterAll(async () => {
  await bridge?.close();
  await new Promise<void>((r) => jwksServer?.close(() => r()));
});

/**
 * Whether a proof's id is still free in the bridge's store, i.e. the proof was not taken. Claims
 * the id to find out, so the proof is spent afterwards.
 */
async function proofUnused(at: Bridge, prover: DpopProver, proof: string): Promise<boolean> {
  const { jti } = JSON.parse(Buffer.from(proof.split('.')[1]!, 'base64url').toString()) as { jti: string };
  return at.store.oneTimeIds.claim(
    'dpop-proof',
    `${prover.thumbprint}.${jti}`,
    new Date(Date.now() + 60_000),
    new Date(),
  );
}

const streams = (jwt: string, method = 'GET', body?: unknown) =>
  call(bridge.issuer, method, 'ssf/streams', { token: jwt, ...(body === undefined ? {} : { body }) });

describe('OAuth 2.0 access tokens', () => {
  it('a valid token with ssf.manage creates a stream owned by its client, with the configured aud', async () => {
    const created = await streams(await token(), 'POST', { delivery: { method: POLL } });
    expect(created.status).toBe(201);
    expect(created.json.aud).toBe('https://rx.example');
    const mine = await streams(await token());
    expect(mine.json.map((s: { stream_id: string }) => s.stream_id)).toContain(created.json.stream_id);
    // Another OAuth client, and a static-token client, see nothing of it (SSF-23).
    const other = await streams(await token({ client_id: 'oauth-client-2' }));
    expect(other.json).toEqual([]);
    const read = await call(bridge.issuer, 'GET', 'ssf/streams', {
      token: ALICE.token,
      query: { stream_id: created.json.stream_id },
    });
    expect(read.status).toBe(404);
    expect(jwksFetches).toBe(1);
  });

  it('openid-ssf-stream-control-error-create-stream-with-read-only-token (dynamic): 403 insufficient_scope (IOP-14)', async () => {
    const readOnly = await token({ scope: 'ssf.read' });
    const res = await streams(readOnly, 'POST', {});
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="insufficient_scope"/);
    expect((await streams(readOnly)).status).toBe(200);
    // No ssf scope at all: not even reading.
    expect((await streams(await token({ scope: 'openid profile' }))).status).toBe(403);
  });

  it('openid-ssf-stream-control-error-token-in-uri-query (dynamic): a valid token in the query is refused (IOP-15)', async () => {
    const res = await call(bridge.issuer, 'GET', 'ssf/streams', { query: { access_token: await token() } });
    expect([400, 401]).toContain(res.status);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
  });

  it('accepts the scp claim (array) and falls back to azp, then sub, for the client id', async () => {
    const scp = await token({
      scope: undefined,
      scp: ['ssf.manage'],
      client_id: undefined,
      azp: 'azp-client',
    });
    const created = await streams(scp, 'POST', {});
    expect(created.status).toBe(201);
    expect(created.json.aud).toBe('azp-client');
    const bySub = await token({ client_id: undefined, sub: 'sub-client' });
    expect((await streams(bySub, 'POST', {})).json.aud).toBe('sub-client');
  });

  it.each([
    ['expired', () => token({}, { expiresIn: Math.floor(Date.now() / 1000) - 60 })],
    ['without exp', () => token({}, { expiresIn: null })],
    ['for another audience', () => token({}, { aud: 'https://someone-else.example' })],
    ['from another issuer', () => token({}, { iss: 'https://evil-as.example' })],
    ['signed with an unknown key', () => token({}, { key: otherKey })],
    ['of type secevent+jwt', () => token({}, { typ: 'secevent+jwt' })],
    [
      'unsigned (alg none)',
      async () => {
        const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
        const now = Math.floor(Date.now() / 1000);
        return `${enc({ alg: 'none' })}.${enc({ iss: AS_ISSUER, aud: RS_AUDIENCE, exp: now + 60, client_id: CLIENT, scope: 'ssf.manage' })}.`;
      },
    ],
  ])('refuses a token %s with 401 invalid_token (IOP-15)', async (_name, make) => {
    const res = await streams(await make());
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer .*error="invalid_token"/);
  });

  it("answers 503 with Retry-After when the authorization server's JWKS cannot be fetched", async () => {
    const unreachable = await startBridge({
      transmitter: {
        oauth: { issuer: AS_ISSUER, audience: RS_AUDIENCE, jwks_uri: 'http://127.0.0.1:9/jwks' },
      },
    });
    try {
      const res = await call(unreachable.issuer, 'GET', 'ssf/streams', { token: await token() });
      expect(res.status).toBe(503);
      expect(res.headers.get('retry-after')).toBe('5');
      // Static tokens keep working meanwhile.
      expect((await call(unreachable.issuer, 'GET', 'ssf/streams', { token: ALICE.token })).status).toBe(200);
    } finally {
      await unreachable.close();
    }
  });
});

// RFC 9449 §7: DPoP-bound access tokens. The authorization server binds a token to the
// receiver's key with cnf.jkt; every request carries a fresh proof of that key.
describe('DPoP-bound access tokens (RFC 9449)', () => {
  const streamsUrl = () =>
    new URL('ssf/streams', bridge.issuer.endsWith('/') ? bridge.issuer : `${bridge.issuer}/`);
  const bound = (prover: DpopProver, claims: JWTPayload = {}) =>
    token({ cnf: { jkt: prover.thumbprint }, ...claims });
  const withDpop = (jwt: string, proof: string | undefined, url = streamsUrl().href, method = 'GET') =>
    call(url, method, url, {
      headers: { authorization: `DPoP ${jwt}`, ...(proof === undefined ? {} : { dpop: proof }) },
    });

  it('§7.1: a bound token with a proof of its key, the method, the URL and the token is accepted', async () => {
    const prover = new DpopProver();
    const jwt = await bound(prover);
    const res = await withDpop(jwt, prover.proof('GET', streamsUrl().href, { accessToken: jwt }));
    expect(res.status).toBe(200);
    // §4.3 step 9: the query is not part of htu.
    const url = new URL(streamsUrl());
    url.searchParams.set('stream_id', 'nope');
    const one = await withDpop(jwt, prover.proof('GET', streamsUrl().href, { accessToken: jwt }), url.href);
    expect(one.status).toBe(404);
  });

  it('§7.2: a bound token presented as a bearer token is refused', async () => {
    const res = await streams(await bound(new DpopProver()));
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(
      /^DPoP algs="[^"]*ES256[^"]*", error="invalid_token"/,
    );
    expect(res.json).toMatchObject({ err: 'invalid_token' });
  });

  it('§4.3: a proof that does not fit is refused with invalid_dpop_proof and says why', async () => {
    const prover = new DpopProver();
    const jwt = await bound(prover);
    const href = streamsUrl().href;
    const cases: Array<[string | undefined, RegExp]> = [
      [undefined, /proof is missing/],
      [prover.proof('POST', href, { accessToken: jwt }), /is for POST, not GET/],
      [prover.proof('GET', `${href}/other`, { accessToken: jwt }), /not this URL/],
      [prover.proof('GET', href, { accessToken: `${jwt}x` }), /does not name this access token/],
      [prover.proof('GET', href, { accessToken: jwt }, Date.now() - 120_000), /too old/],
      [prover.proof('GET', href, { accessToken: jwt }, Date.now() + 120_000), /in the future/],
      [
        `${prover.proof('GET', href, { accessToken: jwt })}, ${prover.proof('GET', href, { accessToken: jwt })}`,
        /more than one/,
      ],
    ];
    for (const [proof, reason] of cases) {
      const res = await withDpop(jwt, proof);
      expect(res.status, String(reason)).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^DPoP .*error="invalid_dpop_proof"/);
      expect(res.json.description).toMatch(reason);
    }
  });

  it('§4.3: a proof whose header is wrong (typ, a private key in jwk) is refused', async () => {
    const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
    const jwt = await token({ cnf: { jkt: await calculateJwkThumbprint(await exportJWK(publicKey)) } });
    const claims = {
      jti: 'p-1',
      htm: 'GET',
      htu: streamsUrl().href,
      iat: Math.floor(Date.now() / 1000),
      ath: createHash('sha256').update(jwt).digest('base64url'),
    };
    const sign = (header: Record<string, unknown>) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', ...header }).sign(privateKey);
    const asJwt = await withDpop(jwt, await sign({ typ: 'JWT', jwk: await exportJWK(publicKey) }));
    expect(asJwt.json.description).toMatch(/typ dpop\+jwt/);
    const withPrivate = await withDpop(
      jwt,
      await sign({ typ: 'dpop+jwt', jwk: await exportJWK(privateKey) }),
    );
    expect(withPrivate.json.description).toMatch(/public key/);
    // The same header with the public key passes: the refusals were for the header alone.
    expect(
      (await withDpop(jwt, await sign({ typ: 'dpop+jwt', jwk: await exportJWK(publicKey) }))).status,
    ).toBe(200);
  });

  it('§11.1: a proof is accepted once; its replay is refused', async () => {
    const prover = new DpopProver();
    const jwt = await bound(prover);
    const proof = prover.proof('GET', streamsUrl().href, { accessToken: jwt });
    expect((await withDpop(jwt, proof)).status).toBe(200);
    const replay = await withDpop(jwt, proof);
    expect(replay.status).toBe(401);
    expect(replay.json.description).toMatch(/used before/);
  });

  it('a request whose token is not valid leaves nothing in the proof store', async () => {
    const prover = new DpopProver();
    const forged = await token({ cnf: { jkt: prover.thumbprint } }, { key: otherKey });
    const proof = prover.proof('GET', streamsUrl().href, { accessToken: forged });
    const res = await withDpop(forged, proof);
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ err: 'invalid_token' });
    expect(await proofUnused(bridge, prover, proof)).toBe(true);
  });

  it('a valid proof of another key does not unlock the token (cnf.jkt)', async () => {
    const jwt = await bound(new DpopProver());
    const thief = new DpopProver();
    const res = await withDpop(jwt, thief.proof('GET', streamsUrl().href, { accessToken: jwt }));
    expect(res.status).toBe(401);
    expect(res.json).toMatchObject({ err: 'invalid_token' });
    expect(res.json.description).toMatch(/not bound to the key of the DPoP proof/);
  });

  it('oauth.dpop: required refuses OAuth tokens that are not bound, and still takes bound ones', async () => {
    const strict = await startBridge({
      transmitter: { receivers: [ALICE], oauth: oauthConfig({ dpop: 'required' }) },
    });
    try {
      const url = `${strict.issuer}/ssf/streams`;
      const plain = await call(url, 'GET', url, { token: await token() });
      expect(plain.status).toBe(401);
      expect(plain.json.description).toMatch(/only DPoP-bound access tokens/);
      const prover = new DpopProver();
      const jwt = await bound(prover);
      const res = await call(url, 'GET', url, {
        headers: { authorization: `DPoP ${jwt}`, dpop: prover.proof('GET', url, { accessToken: jwt }) },
      });
      expect(res.status).toBe(200);
      // Static receiver tokens are not OAuth tokens: unaffected.
      expect((await call(url, 'GET', url, { token: ALICE.token })).status).toBe(200);
    } finally {
      await strict.close();
    }
  });
});

// RFC 9449 §9: a resource server may ask for a nonce of its own in every proof, so that a proof
// made ahead of time is of no use (§11.2).
describe('DPoP nonces of the bridge (RFC 9449 §9, oauth.dpop_nonce)', () => {
  const SECRET = 'dpop-nonce-secret-for-these-tests-3f9a1c';
  let offsetMs = 0;
  const clock = { now: () => new Date(Date.now() + offsetMs) };
  const bridges: Bridge[] = [];
  /** A bridge asking for nonces, derived from `secret` (null: none given, the bridge makes its own). */
  const nonceBridge = async (secret: string | null = SECRET) => {
    const started = await startBridge({
      clock,
      transmitter: {
        receivers: [ALICE],
        oauth: oauthConfig({ dpop_nonce: true, ...(secret === null ? {} : { dpop_nonce_secret: secret }) }),
      },
    });
    bridges.push(started);
    return started;
  };
  const headersOf = (res: { headers: Headers }) => Object.fromEntries(res.headers);
  /** A GET of the bridge's streams with a bound token and a fresh proof from `prover`. */
  const get = async (at: Bridge, prover: DpopProver, jwt: string) => {
    const url = `${at.issuer}/ssf/streams`;
    const proof = prover.proof('GET', url, { accessToken: jwt }, clock.now().getTime());
    return call(url, 'GET', url, { headers: { authorization: `DPoP ${jwt}`, dpop: proof } });
  };

  afterAll(async () => {
    for (const b of bridges) await b.close();
  });

  it('a proof without a nonce is refused with use_dpop_nonce and the nonce; the retry with it is taken', async () => {
    offsetMs = 0;
    const at = await nonceBridge();
    const prover = new DpopProver();
    const jwt = await token({ cnf: { jkt: prover.thumbprint } });
    const first = await get(at, prover, jwt);
    expect(first.status).toBe(401);
    expect(first.json).toMatchObject({ err: 'use_dpop_nonce' });
    expect(first.json.description).toMatch(/must carry the nonce/);
    expect(first.headers.get('www-authenticate')).toMatch(/^DPoP algs="[^"]+", error="use_dpop_nonce"/);
    // §8.1: nonce = 1*NQCHAR. The client's own rules take it and see the request for a retry.
    expect(first.headers.get('dpop-nonce')).toMatch(/^[\x21\x23-\x5b\x5d-\x7e]{32,}$/);
    expect(asksForNonce(headersOf(first))).toBe(true);
    expect(prover.rememberNonce(at.issuer, headersOf(first))).toBe(true);
    const retry = await get(at, prover, jwt);
    expect(retry.status).toBe(200);
    // §9: the answer carries the nonce to use next (the same one within its period).
    expect(retry.headers.get('dpop-nonce')).toBe(first.headers.get('dpop-nonce'));
    // Bearer tokens and static receiver tokens know nothing of nonces.
    const url = `${at.issuer}/ssf/streams`;
    const bearer = await call(url, 'GET', url, { token: ALICE.token });
    expect(bearer.status).toBe(200);
    expect(bearer.headers.get('dpop-nonce')).toBeNull();
  });

  it('a nonce it did not hand out is refused; a refusal for another reason carries the nonce too', async () => {
    offsetMs = 0;
    const at = await nonceBridge();
    const prover = new DpopProver();
    const jwt = await token({ cnf: { jkt: prover.thumbprint } });
    prover.rememberNonce(at.issuer, { 'dpop-nonce': 'made-up-by-the-client-0123456789abcdef' });
    const madeUp = await get(at, prover, jwt);
    expect(madeUp.status).toBe(401);
    expect(madeUp.json).toMatchObject({ err: 'use_dpop_nonce' });
    expect(madeUp.json.description).toMatch(/no longer taken/);
    // A proof that fails before its nonce is looked at says why, and gives the nonce for the retry.
    const url = `${at.issuer}/ssf/streams`;
    const wrongMethod = await call(url, 'GET', url, {
      headers: { authorization: `DPoP ${jwt}`, dpop: prover.proof('POST', url, { accessToken: jwt }) },
    });
    expect(wrongMethod.status).toBe(401);
    expect(wrongMethod.json).toMatchObject({ err: 'invalid_dpop_proof' });
    expect(wrongMethod.headers.get('dpop-nonce')).toBe(madeUp.headers.get('dpop-nonce'));
  });

  it('a proof refused for its nonce is not used up: the same key and token get in with the nonce', async () => {
    offsetMs = 0;
    const at = await nonceBridge();
    const prover = new DpopProver();
    const jwt = await token({ cnf: { jkt: prover.thumbprint } });
    const url = `${at.issuer}/ssf/streams`;
    const proof = prover.proof('GET', url, { accessToken: jwt });
    const refused = await call(url, 'GET', url, { headers: { authorization: `DPoP ${jwt}`, dpop: proof } });
    expect(refused.json).toMatchObject({ err: 'use_dpop_nonce' });
    expect(await proofUnused(at, prover, proof)).toBe(true);
    // The client takes the nonce and gets in with the same key and token.
    prover.rememberNonce(at.issuer, headersOf(refused));
    expect((await get(at, prover, jwt)).status).toBe(200);
  });

  it('a nonce is taken through the next period and refused after it; answers move the client on', async () => {
    offsetMs = 0;
    const at = await nonceBridge();
    const prover = new DpopProver();
    const jwt = await token({ cnf: { jkt: prover.thumbprint } });
    // Start at the beginning of a period, so that the steps below cross exactly one boundary each.
    offsetMs = NONCE_PERIOD_MS - (Date.now() % NONCE_PERIOD_MS) + 1_000;
    const first = await get(at, prover, jwt);
    prover.rememberNonce(at.issuer, headersOf(first));
    const handedOut = first.headers.get('dpop-nonce');
    expect((await get(at, prover, jwt)).status).toBe(200);
    // One period on: the nonce is still taken, and the answer hands out the new one.
    offsetMs += NONCE_PERIOD_MS;
    const stillTaken = await get(at, prover, jwt);
    expect(stillTaken.status).toBe(200);
    const next = stillTaken.headers.get('dpop-nonce');
    expect(next).not.toBe(handedOut);
    // Two periods on, a client that kept the old nonce is refused and told the current one.
    offsetMs += NONCE_PERIOD_MS;
    const stale = await get(at, prover, jwt);
    expect(stale.status).toBe(401);
    expect(stale.json).toMatchObject({ err: 'use_dpop_nonce' });
    expect(stale.json.description).toMatch(/no longer taken/);
    expect(stale.headers.get('dpop-nonce')).not.toBe(next);
    // A client that took the nonce from each answer never sees a refusal.
    prover.rememberNonce(at.issuer, headersOf(stale));
    expect((await get(at, prover, jwt)).status).toBe(200);
    offsetMs = 0;
  });

  it("the bridge's own HTTP client (client credentials, DPoP) gets in, taking the nonce from the refusal", async () => {
    offsetMs = 0;
    const at = await nonceBridge();
    // A token endpoint that binds each token to the key of the request's DPoP proof (§5, §6.1).
    const tokenRequests: Array<string | undefined> = [];
    const tokenServer = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        const proof = req.headers.dpop as string | undefined;
        tokenRequests.push(proof);
        void (async () => {
          const jwk = proof === undefined ? undefined : decodeProtectedHeader(proof).jwk;
          if (jwk === undefined) {
            res.writeHead(400, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({ error: 'invalid_dpop_proof', error_description: 'a DPoP proof is required' }),
            );
            return;
          }
          const accessToken = await token({ cnf: { jkt: await calculateJwkThumbprint(jwk) } });
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ access_token: accessToken, token_type: 'DPoP', expires_in: 300 }));
        })();
      });
    });
    await new Promise<void>((r) => tokenServer.listen(0, '127.0.0.1', r));
    const stop = new AbortController();
    try {
      const authFailures: string[] = [];
      const client = testHttpClientFactory({
        logger: silentLogger(),
        signal: stop.signal,
        onAuthFailure: (reason) => authFailures.push(reason),
      }).create({
        auth: {
          type: 'oauth2_client_credentials',
          tokenUrl: `http://127.0.0.1:${(tokenServer.address() as { port: number }).port}/token`,
          clientId: CLIENT,
          clientSecret: new Secret('client-secret-of-the-receiver'),
          dpop: true,
        },
      });
      const first = await client.get<unknown[]>(`${at.issuer}/ssf/streams`);
      expect(first.status).toBe(200);
      expect(first.data).toEqual([]);
      // The nonce it kept serves the next request at once, with the same token.
      const second = await client.get<unknown[]>(`${at.issuer}/ssf/streams`);
      expect(second.status).toBe(200);
      expect(tokenRequests).toHaveLength(1);
      expect(authFailures).toEqual([]);
    } finally {
      stop.abort();
      await new Promise<void>((r) => tokenServer.close(() => r()));
    }
  });

  it("instances with the same secret take each other's nonces; another secret does not", async () => {
    offsetMs = 0;
    const a = await nonceBridge();
    const b = await nonceBridge();
    const other = await nonceBridge('another-dpop-nonce-secret-of-32-chars-or-more');
    const prover = new DpopProver();
    const jwt = await token({ cnf: { jkt: prover.thumbprint } });
    const fromA = await get(a, prover, jwt);
    // The nonce is per server origin on the client; the bridges here differ by port, so hand
    // each the nonce A gave, as a client behind one load balancer would.
    for (const at of [a, b, other]) prover.rememberNonce(at.issuer, headersOf(fromA));
    expect((await get(a, prover, jwt)).status).toBe(200);
    expect((await get(b, prover, jwt)).status).toBe(200);
    const refused = await get(other, prover, jwt);
    expect(refused.status).toBe(401);
    expect(refused.json).toMatchObject({ err: 'use_dpop_nonce' });
    // Without a secret, a bridge makes its own: its nonces are not A's.
    const own = await nonceBridge(null);
    prover.rememberNonce(own.issuer, headersOf(fromA));
    expect((await get(own, prover, jwt)).json).toMatchObject({ err: 'use_dpop_nonce' });
  });
});

describePostgres('DPoP at instances sharing one PostgreSQL database', () => {
  const schema = uniqueSchema();
  // Both instances answer for one public issuer, as behind a load balancer.
  const PUBLIC = 'https://ssf.example.com';
  let store: PostgresStore;
  let a: Bridge;
  let b: Bridge;

  beforeAll(async () => {
    store = await openTestPostgresStore(schema);
    const transmitter = { receivers: [ALICE], oauth: oauthConfig() };
    a = await startBridge({ store, transmitter, instanceId: 'a', publicOrigin: PUBLIC, noEngine: true });
    b = await startBridge({ store, transmitter, instanceId: 'b', publicOrigin: PUBLIC, noEngine: true });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await store?.close();
    await dropSchema(schema);
  });

  it('§11.1: a proof used at one instance is refused at the other', async () => {
    const prover = new DpopProver();
    const jwt = await token({ cnf: { jkt: prover.thumbprint } });
    const proof = prover.proof('GET', `${PUBLIC}/ssf/streams`, { accessToken: jwt });
    const at = (bridge: Bridge, dpop: string) =>
      call(bridge.origin, 'GET', 'ssf/streams', { headers: { authorization: `DPoP ${jwt}`, dpop } });
    expect((await at(a, proof)).status).toBe(200);
    const replay = await at(b, proof);
    expect(replay.status).toBe(401);
    expect(replay.json.description).toMatch(/used before/);
    // A fresh proof of the same key is taken at either instance.
    expect((await at(b, prover.proof('GET', `${PUBLIC}/ssf/streams`, { accessToken: jwt }))).status).toBe(
      200,
    );
  });
});
