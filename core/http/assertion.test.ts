import { execFileSync } from 'node:child_process';
import { X509Certificate, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, jwtVerify, decodeProtectedHeader } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConfigError, PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { EXPIRED_SECRET_MARGIN_MS, Secret, registeredSecretValues } from '../plugin-api/secret.ts';
import { selfSignedCertificate } from '../../test/helpers/certificates.ts';
import type { HttpAuth, Logger } from '../plugin-api/types.ts';
import {
  JWT_BEARER_GRANT,
  JWT_CLIENT_ASSERTION,
  buildAssertionTokenRequest,
  loadAssertionKey,
  type AssertionAuth,
} from './assertion.ts';
import { createHttpClientFactory } from './client.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const pem = (key: KeyObject) => key.export({ type: 'pkcs8', format: 'pem' }) as string;
const RSA_PEM = pem(rsa.privateKey);

const NOW_MS = Date.UTC(2026, 0, 1);

function jwtBearer(extra: Partial<Extract<AssertionAuth, { type: 'jwt_bearer' }>> = {}): AssertionAuth {
  return {
    type: 'jwt_bearer',
    tokenUrl: 'https://oauth2.googleapis.com/token',
    issuer: 'bridge@project.iam.gserviceaccount.com',
    subject: 'admin@example.com',
    scope: 'https://www.googleapis.com/auth/admin.directory.user.security',
    privateKey: new Secret(RSA_PEM),
    keyId: 'sa-key-1',
    ...extra,
  };
}

function privateKeyJwt(
  extra: Partial<Extract<HttpAuth, { type: 'oauth2_private_key_jwt' }>> = {},
): AssertionAuth {
  return {
    type: 'oauth2_private_key_jwt',
    tokenUrl: 'https://example.okta.com/oauth2/v1/token',
    clientId: '0oa1bridge',
    privateKey: new Secret(RSA_PEM),
    scope: 'okta.universalLogout.manage okta.users.read',
    ...extra,
  };
}

describe('loadAssertionKey', () => {
  it('reads a PKCS#8 PEM, with escaped newlines as in a service-account JSON file', () => {
    const escaped = RSA_PEM.replace(/\n/g, '\\n');
    const key = loadAssertionKey(jwtBearer({ privateKey: new Secret(escaped) }));
    expect(key).toMatchObject({ alg: 'RS256', kid: 'sa-key-1' });
  });

  it('reads a private JWK and takes its kid and alg', () => {
    const jwk = { ...ec.privateKey.export({ format: 'jwk' }), kid: 'okta-key-7', alg: 'ES256' };
    const key = loadAssertionKey(privateKeyJwt({ privateKey: new Secret(JSON.stringify(jwk)) }));
    expect(key).toMatchObject({ alg: 'ES256', kid: 'okta-key-7' });
  });

  it.each([
    ['garbage', /is not a private key/],
    ['{"kty":', /does not parse/],
    [rsa.publicKey.export({ type: 'spki', format: 'pem' }) as string, /not a private key|public key/],
  ])('refuses %j with a ConfigError that never quotes the key', (value, message) => {
    let error: unknown;
    try {
      loadAssertionKey(jwtBearer({ privateKey: new Secret(value) }));
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).not.toContain(value.slice(0, 20));
  });
});

describe('buildAssertionTokenRequest', () => {
  it('jwt_bearer (RFC 7523 §2.1): iss, sub, scope, aud = token URL, one-hour lifetime, signed RS256', async () => {
    const auth = jwtBearer();
    const req = await buildAssertionTokenRequest(auth, loadAssertionKey(auth), NOW_MS);
    const form = new URLSearchParams(req.body);
    expect(req.url).toBe('https://oauth2.googleapis.com/token');
    expect(form.get('grant_type')).toBe(JWT_BEARER_GRANT);
    const assertion = form.get('assertion') as string;
    expect(decodeProtectedHeader(assertion)).toEqual({ alg: 'RS256', typ: 'JWT', kid: 'sa-key-1' });
    const { payload } = await jwtVerify(assertion, rsa.publicKey, {
      currentDate: new Date(NOW_MS),
      audience: 'https://oauth2.googleapis.com/token',
    });
    const iat = NOW_MS / 1000;
    expect(payload).toEqual({
      iss: 'bridge@project.iam.gserviceaccount.com',
      sub: 'admin@example.com',
      scope: 'https://www.googleapis.com/auth/admin.directory.user.security',
      aud: 'https://oauth2.googleapis.com/token',
      iat,
      exp: iat + 3600,
    });
  });

  it('private_key_jwt (RFC 7523 §2.2): client_credentials with a short-lived client assertion', async () => {
    const auth = privateKeyJwt({ extraParams: { resource: 'r1' } });
    const req = await buildAssertionTokenRequest(auth, loadAssertionKey(auth), NOW_MS);
    const form = Object.fromEntries(new URLSearchParams(req.body));
    expect(form).toMatchObject({
      grant_type: 'client_credentials',
      scope: 'okta.universalLogout.manage okta.users.read',
      resource: 'r1',
      client_assertion_type: JWT_CLIENT_ASSERTION,
    });
    expect(req.headers['authorization']).toBeUndefined();
    const { payload } = await jwtVerify(form.client_assertion as string, rsa.publicKey, {
      currentDate: new Date(NOW_MS),
    });
    expect(payload).toMatchObject({
      iss: '0oa1bridge',
      sub: '0oa1bridge',
      aud: 'https://example.okta.com/oauth2/v1/token',
      exp: NOW_MS / 1000 + 300,
    });
    expect(payload.jti).toEqual(expect.any(String));
  });
});

// ---------------------------------------------------------------------------------------------
// Through the client, against a loopback token endpoint and API.

interface Seen {
  url: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (s) =>
        new Promise<void>((resolve) => {
          s.closeAllConnections();
          s.close(() => resolve());
        }),
    ),
  );
});

async function serve(
  answer: (seen: Seen) => { status: number; body?: string; headers?: Record<string, string> },
) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = {
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      seen.push(entry);
      const { status, body = '', headers = {} } = answer(entry);
      res.writeHead(status, headers).end(body);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function recording(lines: string[]): Logger {
  const at = (obj: object | string, msg?: string) => void lines.push(JSON.stringify({ obj, msg }));
  const logger: Logger = { trace: at, debug: at, info: at, warn: at, error: at, child: () => logger };
  return logger;
}

function factory(lines: string[] = []) {
  const authFailures: string[] = [];
  const stop = new AbortController();
  const made = createHttpClientFactory({
    logger: recording(lines),
    signal: stop.signal,
    onAuthFailure: (reason) => authFailures.push(reason),
  });
  return { factory: made, authFailures };
}

const TOKEN_JSON = JSON.stringify({
  access_token: 'ya29.assertion-token-1',
  token_type: 'Bearer',
  expires_in: 3599,
});

describe('assertion grants through the HTTP client', () => {
  it('a client assertion is kept out of logs for its five minutes and a margin, then forgotten', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(NOW_MS);
      const auth = privateKeyJwt();
      const req = await buildAssertionTokenRequest(auth, loadAssertionKey(auth), NOW_MS);
      const assertion = new URLSearchParams(req.body).get('client_assertion') as string;
      expect(registeredSecretValues().has(assertion)).toBe(true);
      vi.setSystemTime(NOW_MS + 300_000 + EXPIRED_SECRET_MARGIN_MS - 1);
      expect(registeredSecretValues().has(assertion)).toBe(true);
      vi.setSystemTime(NOW_MS + 300_000 + EXPIRED_SECRET_MARGIN_MS);
      expect(registeredSecretValues().has(assertion)).toBe(false);
      expect(registeredSecretValues().has(RSA_PEM)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
  it('jwt_bearer fetches a token with a signed assertion, caches it and sends it as a bearer', async () => {
    const server = await serve((seen) =>
      seen.url === '/token'
        ? { status: 200, body: TOKEN_JSON, headers: { 'content-type': 'application/json' } }
        : { status: 204 },
    );
    const lines: string[] = [];
    const client = factory(lines).factory.create({
      auth: {
        ...(jwtBearer({ tokenUrl: `${server.url}/token` }) as Extract<HttpAuth, { type: 'jwt_bearer' }>),
      },
    });
    await client.post(`${server.url}/admin/directory/v1/users/dana%40example.com/signOut`);
    await client.post(`${server.url}/admin/directory/v1/users/lee%40example.com/signOut`);
    const tokens = server.seen.filter((s) => s.url === '/token');
    expect(tokens).toHaveLength(1);
    const assertion = new URLSearchParams(tokens[0]!.body).get('assertion') as string;
    const { payload } = await jwtVerify(assertion, rsa.publicKey);
    expect(payload.aud).toBe(`${server.url}/token`);
    expect(server.seen.filter((s) => s.url !== '/token').map((s) => s.headers['authorization'])).toEqual([
      'Bearer ya29.assertion-token-1',
      'Bearer ya29.assertion-token-1',
    ]);
    const logged = lines.join('\n');
    expect(logged).not.toContain('ya29.assertion-token-1');
    expect(logged).not.toContain(assertion);
    expect(logged).not.toContain('PRIVATE KEY');
  });

  it('private_key_jwt: an OAuth credential error at the token endpoint flags the credentials', async () => {
    const server = await serve(() => ({
      status: 401,
      body: JSON.stringify({
        error: 'invalid_client',
        error_description: 'The client_assertion signature is invalid.',
      }),
      headers: { 'content-type': 'application/json' },
    }));
    const { factory: made, authFailures } = factory();
    const client = made.create({
      auth: privateKeyJwt({ tokenUrl: `${server.url}/oauth2/v1/token` }) as HttpAuth,
    });
    const error = await client.get(`${server.url}/api/v1/users/me`).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).authFailure).toBe(true);
    expect(authFailures).toHaveLength(1);
    expect(server.seen.map((s) => s.url)).toEqual(['/oauth2/v1/token']);
  });

  it('private_key_jwt (RFC 7523 §2.2): a token endpoint’s 307 is not followed; the client assertion goes nowhere else', async () => {
    const elsewhere = await serve(() => ({ status: 200, body: TOKEN_JSON }));
    const server = await serve(() => ({ status: 307, headers: { location: `${elsewhere.url}/token` } }));
    const client = factory().factory.create({
      auth: privateKeyJwt({ tokenUrl: `${server.url}/oauth2/v1/token` }) as HttpAuth,
    });
    const error = await client.get(`${server.url}/api/v1/users/me`).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).code).toBe('SSF_ERR_HTTP_REDIRECT');
    expect((error as Error).message).toContain('never follows a redirect');
    expect(server.seen.map((s) => s.url)).toEqual(['/oauth2/v1/token']);
    expect(elsewhere.seen).toEqual([]);
  });

  it('jwt_bearer with a signer: the signer signs the grant’s claims; a refusal by it flags the credentials', async () => {
    const server = await serve((seen) =>
      seen.url === '/token'
        ? { status: 200, body: TOKEN_JSON, headers: { 'content-type': 'application/json' } }
        : { status: 204 },
    );
    const signed: Array<Record<string, unknown>> = [];
    let refuse = false;
    const signer = async (claims: Record<string, unknown>) => {
      if (refuse) throw new PermanentError('the key service refused', { authFailure: true });
      signed.push(claims);
      return new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: 'held-elsewhere' })
        .sign(rsa.privateKey);
    };
    const lines: string[] = [];
    const { factory: made, authFailures } = factory(lines);
    const auth = {
      type: 'jwt_bearer',
      tokenUrl: `${server.url}/token`,
      issuer: 'bridge@project.iam.gserviceaccount.com',
      subject: 'admin@example.com',
      scope: 'https://www.googleapis.com/auth/admin.directory.user.security',
      signer,
    } as const;
    const before = Math.floor(Date.now() / 1000);
    await made.create({ auth }).post(`${server.url}/signOut`);
    const after = Math.floor(Date.now() / 1000);
    expect(signed).toHaveLength(1);
    const iat = signed[0]!.iat as number;
    // Issued during the call: the second may turn while it runs.
    expect(iat).toBeGreaterThanOrEqual(before);
    expect(iat).toBeLessThanOrEqual(after);
    expect(signed[0]).toEqual({
      iss: 'bridge@project.iam.gserviceaccount.com',
      sub: 'admin@example.com',
      scope: 'https://www.googleapis.com/auth/admin.directory.user.security',
      aud: `${server.url}/token`,
      iat,
      exp: iat + 3600,
    });
    const assertion = new URLSearchParams(server.seen[0]!.body).get('assertion')!;
    expect((await jwtVerify(assertion, rsa.publicKey)).protectedHeader.kid).toBe('held-elsewhere');
    expect(lines.join('\n')).not.toContain(assertion);
    refuse = true;
    const error = await made
      .create({ auth })
      .post(`${server.url}/signOut`)
      .catch((err: unknown) => err);
    expect(error).toBeInstanceOf(PermanentError);
    expect(authFailures).toEqual(['the key service refused']);
  });

  it('a malformed key fails create() with a ConfigError', () => {
    expect(() =>
      factory().factory.create({
        auth: jwtBearer({ privateKey: new Secret('not a key at all') }) as HttpAuth,
      }),
    ).toThrow(ConfigError);
  });
});

describe('acceptStatuses', () => {
  it('hands back listed error statuses as responses, other statuses still throw classified errors', async () => {
    let status = 400;
    const server = await serve(() => ({
      status,
      body: status === 502 ? '<html>bad gateway</html>' : '{"err":"invalid_audience","description":"aud"}',
      headers: { 'content-type': status === 502 ? 'text/html' : 'application/json' },
    }));
    const client = factory().factory.create({});
    const answered = await client.post(`${server.url}/push`, 'x', { acceptStatuses: [400, 502] });
    expect(answered).toMatchObject({ status: 400, data: { err: 'invalid_audience', description: 'aud' } });
    status = 502;
    const html = await client.post(`${server.url}/push`, 'x', { acceptStatuses: [400, 502] });
    expect(html).toMatchObject({ status: 502, data: undefined });
    status = 503;
    const thrown = await client
      .post(`${server.url}/push`, 'x', { acceptStatuses: [400] })
      .catch((e: unknown) => e);
    expect(thrown).toBeInstanceOf(RetryableError);
  });

  it('an accepted 401 still forces one token refresh first', async () => {
    let issued = 0;
    const server = await serve((seen) => {
      if (seen.url === '/token') {
        issued += 1;
        return {
          status: 200,
          body: JSON.stringify({ access_token: `tok-refresh-${issued}`, expires_in: 600 }),
        };
      }
      return { status: seen.headers['authorization'] === 'Bearer tok-refresh-1' ? 401 : 202 };
    });
    const client = factory().factory.create({
      auth: {
        type: 'oauth2_client_credentials',
        tokenUrl: `${server.url}/token`,
        clientId: 'bridge',
        clientSecret: new Secret('client-secret-accept'),
      },
    });
    const res = await client.post(`${server.url}/push`, 'x', {
      acceptStatuses: [400, 401],
      responseType: 'text',
    });
    expect(res.status).toBe(202);
    expect(issued).toBe(2);
  });
});

describe('token requests', () => {
  it('carry the client’s configured headers and user agent, like its other requests', async () => {
    const server = await serve((seen) =>
      seen.url === '/token' ? { status: 200, body: TOKEN_JSON } : { status: 204 },
    );
    const client = factory().factory.create({
      userAgent: 'ssf-bridge/test',
      headers: { 'x-request-source': 'bridge-1' },
      auth: privateKeyJwt({ tokenUrl: `${server.url}/token` }) as HttpAuth,
    });
    await client.get(`${server.url}/api`);
    for (const seen of server.seen) {
      expect(seen.headers['x-request-source']).toBe('bridge-1');
      expect(seen.headers['user-agent']).toBe('ssf-bridge/test');
    }
    expect(server.seen.map((s) => s.url)).toEqual(['/token', '/api']);
  });
});

// Microsoft Entra ID finds an app's key by the thumbprint of the certificate uploaded for it.
describe('private_key_jwt with a certificate (Microsoft Entra ID certificate credentials)', () => {
  let dir: string;
  let certPem: string;
  let keyPem: string;
  let otherCertPem: string;
  /** The certificate's SHA-256 and SHA-1 fingerprints as openssl prints them, in base64url. */
  let fingerprints: { sha256: string; sha1: string };

  const openssl = (...args: string[]) => execFileSync('openssl', args, { encoding: 'utf8' });
  const fingerprint = (algorithm: string, certFile: string) =>
    Buffer.from(
      openssl('x509', '-in', certFile, '-noout', '-fingerprint', `-${algorithm}`)
        .split('=')[1]!
        .trim()
        .replace(/:/g, ''),
      'hex',
    ).toString('base64url');

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-entra-cert-'));
    let certFile: string;
    ({ cert: certPem, key: keyPem, certFile } = selfSignedCertificate(dir, 'bridge-app'));
    otherCertPem = selfSignedCertificate(dir, 'someone-else').cert;
    fingerprints = { sha256: fingerprint('sha256', certFile), sha1: fingerprint('sha1', certFile) };
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const entra = (
    extra: Partial<Extract<HttpAuth, { type: 'oauth2_private_key_jwt' }>> = {},
  ): AssertionAuth => ({
    type: 'oauth2_private_key_jwt',
    tokenUrl: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
    clientId: '6731de76-14a6-49ae-97bc-6eba6914391e',
    privateKey: new Secret(keyPem),
    certificate: certPem,
    scope: 'https://graph.microsoft.com/.default',
    ...extra,
  });

  it('signs PS256 with x5t#S256 and x5t, the thumbprints of the certificate’s DER', async () => {
    const auth = entra();
    const req = await buildAssertionTokenRequest(auth, loadAssertionKey(auth), NOW_MS);
    const form = Object.fromEntries(new URLSearchParams(req.body));
    expect(form).toMatchObject({
      grant_type: 'client_credentials',
      scope: 'https://graph.microsoft.com/.default',
    });
    const assertion = form.client_assertion as string;
    expect(decodeProtectedHeader(assertion)).toEqual({
      alg: 'PS256',
      typ: 'JWT',
      'x5t#S256': fingerprints.sha256,
      x5t: fingerprints.sha1,
    });
    const certKey = new X509Certificate(certPem).publicKey;
    const { payload } = await jwtVerify(assertion, certKey, { currentDate: new Date(NOW_MS) });
    const iat = NOW_MS / 1000;
    expect(payload).toEqual({
      iss: '6731de76-14a6-49ae-97bc-6eba6914391e',
      sub: '6731de76-14a6-49ae-97bc-6eba6914391e',
      aud: 'https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token',
      iat,
      nbf: iat,
      exp: iat + 300,
      jti: expect.any(String),
    });
  });

  it.each([
    ['a certificate of another key', () => otherCertPem, /is not the certificate of auth\.privateKey/],
    ['text that is no certificate', () => 'MIIC not a certificate', /is not an X\.509 certificate/],
  ])('refuses %s with a ConfigError', (_name, certificate, message) => {
    const error = (() => {
      try {
        loadAssertionKey(entra({ certificate: certificate() }));
      } catch (err) {
        return err;
      }
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(message);
  });
});

// Workload identity federation: the client's credential is a JWT another identity provider
// issued (AKS projects a service-account token into a file and replaces it before it expires).
describe('oauth2_client_assertion_file (workload identity federation)', () => {
  let dir: string;
  let file: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-federated-'));
    file = join(dir, 'azure-identity-token');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const federated = (tokenUrl: string): HttpAuth => ({
    type: 'oauth2_client_assertion_file',
    tokenUrl,
    clientId: '6731de76-14a6-49ae-97bc-6eba6914391e',
    assertionFile: file,
    scope: 'https://graph.microsoft.com/.default',
  });

  it('sends the file’s token as the client assertion, and reads the file again for the next token', async () => {
    let issued = 0;
    const server = await serve((seen) => {
      if (seen.url !== '/token')
        return { status: seen.headers['authorization'] === `Bearer at-${issued}` ? 204 : 401 };
      issued += 1;
      return {
        status: 200,
        body: JSON.stringify({ access_token: `at-${issued}`, token_type: 'Bearer', expires_in: 3600 }),
      };
    });
    writeFileSync(file, 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig\n');
    const lines: string[] = [];
    const client = factory(lines).factory.create({ auth: federated(`${server.url}/token`) });
    await client.get(`${server.url}/v1.0/users`);
    // The kubelet replaces the token; the API refuses the access token, which forces a new one.
    writeFileSync(file, 'eyJhbGciOiJSUzI1NiJ9.sa-token-2.sig\n');
    issued += 1;
    await client.get(`${server.url}/v1.0/users`);
    const forms = server.seen
      .filter((s) => s.url === '/token')
      .map((s) => Object.fromEntries(new URLSearchParams(s.body)));
    expect(forms).toEqual([
      expect.objectContaining({
        grant_type: 'client_credentials',
        client_id: '6731de76-14a6-49ae-97bc-6eba6914391e',
        client_assertion_type: JWT_CLIENT_ASSERTION,
        client_assertion: 'eyJhbGciOiJSUzI1NiJ9.sa-token-1.sig',
        scope: 'https://graph.microsoft.com/.default',
      }),
      expect.objectContaining({ client_assertion: 'eyJhbGciOiJSUzI1NiJ9.sa-token-2.sig' }),
    ]);
    expect(lines.join('\n')).not.toContain('sa-token-');
  });

  it('a file that cannot be read fails create() with a ConfigError; one that goes away later is retried', async () => {
    expect(() =>
      factory().factory.create({
        auth: { ...federated('https://login.example/token'), assertionFile: join(dir, 'nope') } as HttpAuth,
      }),
    ).toThrow(ConfigError);
    const server = await serve(() => ({ status: 500 }));
    writeFileSync(file, 'eyJ.token.sig');
    const client = factory().factory.create({ auth: federated(`${server.url}/token`) });
    rmSync(file);
    const error = await client.get(`${server.url}/v1.0/users`).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(RetryableError);
    expect((error as RetryableError).code).toBe('SSF_ERR_HTTP_ASSERTION_FILE');
    expect(server.seen).toHaveLength(0);
  });
});
