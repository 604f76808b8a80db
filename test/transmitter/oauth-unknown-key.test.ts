/**
 * OAuth access tokens whose key is not in the authorization server's JWKS (RFC 6750 §3.1;
 * checklist IOP-15, POLL-10): a token signed by another authorization server, by a key that was
 * removed, or made up, is an invalid token — 401 with a Bearer challenge naming invalid_token on
 * every protected route, the poll endpoint included — not a 503 telling the client to come back,
 * and not a warning in the log per request. A JWKS that cannot be fetched is a 503, warned about
 * once a minute, not once per request.
 */
import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { ALICE, POLL, call, recordingLogger, startBridge, type Bridge, type LogEntry } from './harness.ts';

const AS_ISSUER = 'https://as.example';
const RS_AUDIENCE = 'https://bridge.example/ssf';

let bridge: Bridge;
let jwksServer: Server;
let asKey: CryptoKey;
let foreignKey: CryptoKey;
let jwksFetches = 0;
const entries: LogEntry[] = [];

function token(key: CryptoKey, header: { alg: string; kid?: string }): Promise<string> {
  return new SignJWT({ client_id: 'oauth-client', scope: 'ssf.read ssf.manage' })
    .setProtectedHeader({ typ: 'at+jwt', ...header })
    .setIssuer(AS_ISSUER)
    .setAudience(RS_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('5m')
    .sign(key);
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  asKey = pair.privateKey;
  foreignKey = (await generateKeyPair('RS256')).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'as-key-1', alg: 'RS256', use: 'sig' };
  jwksServer = createServer((_req, res) => {
    jwksFetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => jwksServer.listen(0, '127.0.0.1', r));
  const port = (jwksServer.address() as { port: number }).port;
  bridge = await startBridge({
    logger: recordingLogger(entries),
    transmitter: {
      receivers: [ALICE],
      oauth: {
        issuer: AS_ISSUER,
        audience: RS_AUDIENCE,
        jwks_uri: `http://127.0.0.1:${port}/jwks`,
        algorithms: ['RS256', 'ES256'],
      },
    },
  });
});

afterAll(async () => {
  await bridge?.close();
  await new Promise<void>((r) => jwksServer?.close(() => r()));
});

function expectInvalidToken(res: { status: number; headers: Headers; json: any }): void {
  expect(res.status).toBe(401);
  expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="ssf-bridge", error="invalid_token"/);
  expect(res.headers.get('retry-after')).toBeNull();
  expect(res.json).toMatchObject({ err: 'invalid_token', code: 'SSF_ERR_TRANSMITTER_AUTH_INVALID' });
}

describe('RFC 6750 §3.1: an access token no key of the JWKS matches', () => {
  it('IOP-15, POLL-10: an unknown kid is 401 invalid_token with a Bearer challenge on every route, the poll endpoint included', async () => {
    // The JWKS is fetched (and fresh) first: a valid token passes.
    expect(
      (
        await call(bridge.issuer, 'GET', 'ssf/streams', {
          token: await token(asKey, { alg: 'RS256', kid: 'as-key-1' }),
        })
      ).status,
    ).toBe(200);
    const created = await call(bridge.issuer, 'POST', 'ssf/streams', {
      token: ALICE.token,
      body: { delivery: { method: POLL } },
    });
    const streamId = created.json.stream_id as string;
    const foreign = await token(foreignKey, { alg: 'RS256', kid: 'attacker-kid' });
    expectInvalidToken(await call(bridge.issuer, 'GET', 'ssf/streams', { token: foreign }));
    expectInvalidToken(
      await call(bridge.issuer, 'POST', `ssf/poll/${streamId}`, {
        token: foreign,
        body: { returnImmediately: true },
      }),
    );
    expectInvalidToken(
      await call(bridge.issuer, 'GET', 'ssf/status', { token: foreign, query: { stream_id: streamId } }),
    );
    // A removed key: its kid is gone from the JWKS, and so are its tokens.
    expectInvalidToken(
      await call(bridge.issuer, 'GET', 'ssf/streams', {
        token: await token(asKey, { alg: 'RS256', kid: 'as-key-0-retired' }),
      }),
    );
  });

  it('IOP-15: a token without kid whose key type the JWKS does not hold (EC against an RSA-only JWKS) is 401 invalid_token', async () => {
    const ec = (await generateKeyPair('ES256')).privateKey;
    expectInvalidToken(
      await call(bridge.issuer, 'GET', 'ssf/streams', { token: await token(ec, { alg: 'ES256' }) }),
    );
  });

  it('IOP-15: unknown kids are not warned about per request, and do not make the bridge fetch the JWKS per request', async () => {
    const fetchesBefore = jwksFetches;
    const warnsBefore = entries.filter((e) => e.level === 'warn' || e.level === 'error').length;
    for (let i = 0; i < 20; i += 1) {
      const res = await call(bridge.issuer, 'GET', 'ssf/streams', {
        token: await token(foreignKey, { alg: 'RS256', kid: `made-up-${i}` }),
      });
      expect(res.status).toBe(401);
    }
    expect(entries.filter((e) => e.level === 'warn' || e.level === 'error').length).toBe(warnsBefore);
    expect(entries.some((e) => /JWKS is unavailable/.test(e.msg))).toBe(false);
    // The cooldown (30 s) still holds back re-fetches: none for these 20 requests.
    expect(jwksFetches - fetchesBefore).toBe(0);
  });
});

describe('a JWKS that cannot be fetched', () => {
  it('RFC 6750 §3.1: is 503 with Retry-After for each request, and warned about once, not once per request', async () => {
    const logged: LogEntry[] = [];
    const unreachable = await startBridge({
      logger: recordingLogger(logged),
      transmitter: {
        receivers: [ALICE],
        oauth: { issuer: AS_ISSUER, audience: RS_AUDIENCE, jwks_uri: 'http://127.0.0.1:9/jwks' },
      },
    });
    try {
      const jwt = await token(asKey, { alg: 'RS256', kid: 'as-key-1' });
      for (let i = 0; i < 5; i += 1) {
        const res = await call(unreachable.issuer, 'GET', 'ssf/streams', { token: jwt });
        expect(res.status).toBe(503);
        expect(res.headers.get('retry-after')).toBe('5');
      }
      expect(logged.filter((e) => /JWKS is unavailable/.test(e.msg))).toHaveLength(1);
    } finally {
      await unreachable.close();
    }
  });
});
