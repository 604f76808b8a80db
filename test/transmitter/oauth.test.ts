/**
 * OAuth 2.0 JWT access tokens (CAEP interop profile §2.7, checklist IOP-13…IOP-15, TX-03): checked
 * against the authorization server's JWKS for signature, issuer, audience, expiry and scope. These
 * are the "dynamic" variants of the conformance modules that need an authorization server.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey, type JWTPayload } from 'jose';
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
  const port = (jwksServer.address() as { port: number }).port;
  bridge = await startBridge({
    transmitter: {
      receivers: [ALICE, { client_id: CLIENT, audience: 'https://rx.example' }],
      oauth: {
        issuer: AS_ISSUER,
        audience: RS_AUDIENCE,
        jwks_uri: `http://127.0.0.1:${port}/jwks`,
        clock_tolerance: '0s',
      },
      streams: { per_receiver: 'many' },
    },
  });
});

afterAll(async () => {
  await bridge?.close();
  await new Promise<void>((r) => jwksServer?.close(() => r()));
});

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
