import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError } from '../plugin-api/errors.ts';
import { Secret } from '../plugin-api/secret.ts';
import type { HttpAuth, Logger } from '../plugin-api/types.ts';
import { FakeApi, type FakeRequest, type FakeResponse } from '../../test/helpers/fake-api.ts';
import { createHttpClientFactory } from './client.ts';
import { DpopProver, accessTokenHash, asksForNonce } from './dpop.ts';

/** Verifies a proof as RFC 9449 §4.3 has a server do; returns its header key and claims. */
async function verifyProof(proof: string) {
  const header = decodeProtectedHeader(proof);
  const jwk = header.jwk as JWK;
  const { payload, protectedHeader } = await jwtVerify(proof, await importJWK(jwk, 'ES256'), {
    typ: 'dpop+jwt',
    algorithms: ['ES256'],
  });
  return { jwk, header: protectedHeader, claims: payload, jkt: await calculateJwkThumbprint(jwk) };
}

describe('DpopProver (RFC 9449 §4)', () => {
  it('§4.2: a proof is a dpop+jwt signed by the key its header carries, public members only', async () => {
    const prover = new DpopProver();
    const proof = prover.proof(
      'post',
      'https://Example.okta.com:443/oauth2/v1/token?x=1#frag',
      {},
      1_767_225_600_000,
    );
    const { jwk, header, claims, jkt } = await verifyProof(proof);
    expect(header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256' });
    expect(Object.keys(jwk).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    expect(claims).toEqual({
      jti: expect.any(String),
      htm: 'POST',
      htu: 'https://example.okta.com/oauth2/v1/token',
      iat: 1_767_225_600,
    });
    // RFC 7638 thumbprint, the value a server binds tokens to (cnf.jkt).
    expect(prover.thumbprint).toBe(jkt);
  });

  it('§4.2: every proof has its own jti; ath is the base64url SHA-256 of the access token', async () => {
    const prover = new DpopProver();
    const first = await verifyProof(
      prover.proof('GET', 'https://api.example.com/v1/users', { accessToken: 'tok-1' }),
    );
    const second = await verifyProof(
      prover.proof('GET', 'https://api.example.com/v1/users', { accessToken: 'tok-1' }),
    );
    expect(first.claims.jti).not.toBe(second.claims.jti);
    const expected = createHash('sha256').update('tok-1').digest('base64url');
    expect(first.claims.ath).toBe(expected);
    expect(accessTokenHash('tok-1')).toBe(expected);
  });

  it('§8, §9: a nonce a server gave goes into later proofs to that server only', async () => {
    const prover = new DpopProver();
    expect(prover.rememberNonce('https://a.example.com/token', { 'dpop-nonce': 'n-1' })).toBe(true);
    // The same nonce again is not news; one that is not printable ASCII is not a nonce.
    expect(prover.rememberNonce('https://a.example.com/other', { 'dpop-nonce': 'n-1' })).toBe(false);
    expect(prover.rememberNonce('https://a.example.com/token', { 'dpop-nonce': 'bad nonce' })).toBe(false);
    expect(prover.rememberNonce('https://a.example.com/token', { 'dpop-nonce': 'bad"nonce' })).toBe(false);
    expect(prover.rememberNonce('https://a.example.com/token', {})).toBe(false);
    const toA = await verifyProof(prover.proof('POST', 'https://a.example.com/api'));
    const toB = await verifyProof(prover.proof('POST', 'https://b.example.com/api'));
    expect(toA.claims.nonce).toBe('n-1');
    expect(toB.claims).not.toHaveProperty('nonce');
  });

  it('§9: reads a resource server’s request for a nonce from its WWW-Authenticate challenge', () => {
    expect(
      asksForNonce({
        'www-authenticate':
          'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"',
      }),
    ).toBe(true);
    expect(
      asksForNonce({ 'www-authenticate': 'Bearer realm="okta", DPoP algs="ES256", error="use_dpop_nonce"' }),
    ).toBe(true);
    expect(asksForNonce({ 'www-authenticate': 'DPoP algs="ES256", error="invalid_token"' })).toBe(false);
    expect(asksForNonce({ 'www-authenticate': 'Bearer error="invalid_token"' })).toBe(false);
    expect(asksForNonce(undefined)).toBe(false);
  });
});

// Through the client, against a loopback server that answers as Okta does for an API Services
// app with "Require DPoP header in token requests" on (Okta's default for such apps).

const servers: FakeApi[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(answer: (req: FakeRequest, all: FakeRequest[]) => FakeResponse | Promise<FakeResponse>) {
  const server: FakeApi = new FakeApi((req) => answer(req, server.requests));
  servers.push(server);
  await server.start();
  return { url: server.url, seen: server.requests };
}

const ec: { privateKey: KeyObject } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const APP_KEY = JSON.stringify({ ...ec.privateKey.export({ format: 'jwk' }), kid: 'okta-app-key-1' });
const json = { 'content-type': 'application/json' };
const TOKEN = 'eyJraWQiOiJva3RhIn0.dpop-bound-access-token.sig';

function oktaApp(url: string, dpop?: boolean): HttpAuth {
  return {
    type: 'oauth2_private_key_jwt',
    tokenUrl: `${url}/oauth2/v1/token`,
    clientId: '0oa1bridge',
    privateKey: new Secret(APP_KEY),
    scope: 'okta.users.read',
    ...(dpop === undefined ? {} : { dpop }),
  };
}

/** The thumbprint of the key the last token was bound to (cnf.jkt). */
let boundTo = '';

/** Okta's token endpoint for a DPoP app: no proof → invalid_dpop_proof; no nonce → use_dpop_nonce. */
async function tokenEndpointRequiringDpop(seen: FakeRequest): Promise<FakeResponse> {
  const proof = seen.headers['dpop'];
  if (typeof proof !== 'string') {
    return {
      status: 400,
      headers: json,
      body: JSON.stringify({
        error: 'invalid_dpop_proof',
        error_description: 'The DPoP proof JWT header is missing.',
      }),
    };
  }
  const { claims, jkt } = await verifyProof(proof);
  if (claims.nonce !== 'okta-nonce-1') {
    return {
      status: 400,
      headers: { ...json, 'dpop-nonce': 'okta-nonce-1' },
      body: JSON.stringify({
        error: 'use_dpop_nonce',
        error_description: 'Authorization server requires nonce in DPoP proof.',
      }),
    };
  }
  boundTo = jkt;
  return {
    status: 200,
    headers: json,
    body: JSON.stringify({
      token_type: 'DPoP',
      expires_in: 3600,
      access_token: TOKEN,
      scope: 'okta.users.read',
    }),
  };
}

function recording(lines: string[]): Logger {
  const at = (obj: object | string, msg?: string) => void lines.push(JSON.stringify({ obj, msg }));
  const logger: Logger = { trace: at, debug: at, info: at, warn: at, error: at, child: () => logger };
  return logger;
}

function client(auth: HttpAuth, lines: string[] = []) {
  const authFailures: string[] = [];
  const made = createHttpClientFactory({
    logger: recording(lines),
    signal: new AbortController().signal,
    onAuthFailure: (reason) => authFailures.push(reason),
  });
  return { http: made.create({ auth }), authFailures };
}

const tokenRequests = (seen: FakeRequest[]) => seen.filter((s) => s.path === '/oauth2/v1/token');
const assertionJti = (s: FakeRequest) =>
  JSON.parse(
    Buffer.from(new URLSearchParams(s.body).get('client_assertion')!.split('.')[1]!, 'base64url').toString(),
  ).jti as string;

describe('DPoP through the HTTP client', () => {
  it('turns DPoP on when the token endpoint asks, answers its nonce, and proves the key on each API call', async () => {
    const server = await serve(async (seen) => {
      if (seen.path === '/oauth2/v1/token') return tokenEndpointRequiringDpop(seen);
      // The resource server checks the §7.1 scheme, the proof, ath and the binding.
      const proof = seen.headers['dpop'];
      if (seen.headers['authorization'] !== `DPoP ${TOKEN}` || typeof proof !== 'string')
        return { status: 401 };
      const { claims, jkt } = await verifyProof(proof);
      const target = `${server.url}${seen.path}`;
      const valid =
        claims.htm === seen.method && claims.htu === target && claims.ath === accessTokenHash(TOKEN);
      return valid && jkt === boundTo
        ? { status: 200, headers: json, body: '{"id":"00u1"}' }
        : { status: 401 };
    });
    const lines: string[] = [];
    const { http: okta, authFailures } = client(oktaApp(server.url), lines);

    const first = await okta.get<{ id: string }>(`${server.url}/api/v1/users/dana@example.com?expand=x`);
    await okta.post(`${server.url}/oauth2/v1/global-token-revocation`, {
      sub_id: { format: 'opaque', id: '00u1' },
    });

    expect(first.data.id).toBe('00u1');
    const tokens = tokenRequests(server.seen);
    // Without a proof, with one, with one carrying the nonce; then the token serves both calls.
    expect(tokens.map((s) => typeof s.headers['dpop'])).toEqual(['undefined', 'string', 'string']);
    expect(server.seen.filter((s) => s.path !== '/oauth2/v1/token').map((s) => s.path)).toEqual([
      '/api/v1/users/dana@example.com',
      '/oauth2/v1/global-token-revocation',
    ]);
    // Okta refuses a client assertion seen before: every token request signs a new one.
    expect(new Set(tokens.map(assertionJti)).size).toBe(3);
    expect(authFailures).toEqual([]);
    const logged = lines.join('\n');
    expect(logged.match(/requires DPoP/g)).toHaveLength(1);
    expect(logged).not.toContain(TOKEN);
  });

  it('dpop: true proves possession from the first token request', async () => {
    const server = await serve(async (seen) =>
      seen.path === '/oauth2/v1/token' ? tokenEndpointRequiringDpop(seen) : { status: 204 },
    );
    await client(oktaApp(server.url, true)).http.get(`${server.url}/api/v1/users/me`);
    expect(tokenRequests(server.seen).map((s) => typeof s.headers['dpop'])).toEqual(['string', 'string']);
  });

  it('dpop: false does not turn it on: the refusal is an authentication failure that says why', async () => {
    const server = await serve(async (seen) => tokenEndpointRequiringDpop(seen));
    const { http: okta, authFailures } = client(oktaApp(server.url, false));
    const error = await okta.get(`${server.url}/api/v1/users/me`).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).authFailure).toBe(true);
    expect((error as Error).message).toMatch(/wants a DPoP proof it accepts \(invalid_dpop_proof\)/);
    expect(authFailures).toHaveLength(1);
    expect(tokenRequests(server.seen)).toHaveLength(1);
  });

  it('§9: a resource server asking for a nonce gets one more request with it, with the same token', async () => {
    const server = await serve(async (seen, all) => {
      if (seen.path === '/oauth2/v1/token') return tokenEndpointRequiringDpop(seen);
      const { claims } = await verifyProof(seen.headers['dpop'] as string);
      if (claims.nonce === 'rs-nonce-1') return { status: 204 };
      const calls = all.filter((s) => s.path !== '/oauth2/v1/token').length;
      return {
        status: 401,
        headers: {
          'www-authenticate':
            'DPoP error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof"',
          'dpop-nonce': `rs-nonce-${calls}`,
        },
      };
    });
    const okta = client(oktaApp(server.url, true)).http;
    const answer = await okta.post(`${server.url}/oauth2/v1/global-token-revocation`, { sub_id: {} });
    expect(answer.status).toBe(204);
    expect(tokenRequests(server.seen)).toHaveLength(2); // the token endpoint's own nonce round, once
    expect(server.seen.filter((s) => s.path !== '/oauth2/v1/token')).toHaveLength(2);
  });

  it('§5: a token endpoint that ignores the proof and issues a bearer token gets it used as a bearer', async () => {
    const server = await serve((seen) =>
      seen.path === '/oauth2/v1/token'
        ? {
            status: 200,
            headers: json,
            body: JSON.stringify({ token_type: 'Bearer', access_token: 'plain-1' }),
          }
        : { status: 204 },
    );
    await client(oktaApp(server.url, true)).http.get(`${server.url}/api/v1/users/me`);
    const call = server.seen.find((s) => s.path === '/api/v1/users/me')!;
    expect(call.headers['authorization']).toBe('Bearer plain-1');
    expect(call.headers['dpop']).toBeUndefined();
  });
});
