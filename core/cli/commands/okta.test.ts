import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { oktaItp } from '../../../connectors/okta-itp/index.ts';
import { capturingIo } from '../../../test/helpers/capture.ts';
import type { FakeApi } from '../../../test/helpers/fake-api.ts';
import { FakeOkta, bridgePublisher } from '../../../test/helpers/fake-okta.ts';
import { BRIDGE_ISSUER, outboundHarness } from '../../../test/helpers/outbound.ts';
import { main } from '../main.ts';

const okta = new FakeOkta();
let publisher: FakeApi;
let dir: string;

beforeAll(async () => {
  await okta.start();
  publisher = await bridgePublisher();
});
afterAll(async () => {
  await okta.close();
  await publisher.close();
});
beforeEach(async () => {
  okta.providers.clear();
  okta.clients.length = 0;
  okta.api.reset();
  dir = await mkdtemp(join(tmpdir(), 'ssf-cli-okta-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

async function run(...args: string[]) {
  const io = capturingIo();
  const code = await main(['node', 'ssf-bridge', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

const auth = () => ['--org', okta.orgUrl, '--token', okta.apiToken];

describe('ssf-bridge okta register-provider', () => {
  it('registers by issuer and JWKS URL with an API token', async () => {
    const jwks = `${publisher.url}/jwks.json`;
    const result = await run(
      'okta',
      'register-provider',
      ...auth(),
      '--issuer',
      BRIDGE_ISSUER,
      '--jwks-url',
      jwks,
    );
    expect(result.code).toBe(0);
    const [provider] = okta.providers.values();
    expect(result.out).toBe(
      `registered security events provider ${provider?.id} (ACTIVE): issuer ${BRIDGE_ISSUER}, jwks_url ${jwks}`,
    );
    const request = okta.api.requests.find((r) => r.method === 'POST');
    expect(request).toMatchObject({
      path: '/api/v1/security-events-providers',
      json: { name: 'ssf-bridge', type: 'okta', settings: { issuer: BRIDGE_ISSUER, jwks_url: jwks } },
    });
    expect(request?.headers['authorization']).toBe(`SSWS ${okta.apiToken}`);
    expect(request?.headers['content-type']).toBe('application/json');
  });

  it('registers by the SSF well-known URL; Okta reads issuer and JWKS from it, and then accepts okta-itp SETs', async () => {
    const wellKnown = `${publisher.url}/.well-known/ssf-configuration`;
    const result = await run(
      'okta',
      'register-provider',
      ...auth(),
      '--well-known-url',
      wellKnown,
      '--name',
      'Acme ssf-bridge',
      '--json',
    );
    expect(result.code).toBe(0);
    const printed = JSON.parse(result.out) as {
      id: string;
      status: string;
      settings: Record<string, string>;
    };
    expect(printed).toMatchObject({
      status: 'ACTIVE',
      name: 'Acme ssf-bridge',
      settings: { issuer: BRIDGE_ISSUER, jwks_url: `${publisher.url}/jwks.json`, well_known_url: wellKnown },
    });
    const harness = await outboundHarness(oktaItp, { org_url: okta.orgUrl });
    const delivered = await harness.attempt({
      type: 'caep.risk-level-change',
      subject: { format: 'email', email: 'dana.lee@example.com' },
      claims: { principal: 'USER', current_level: 'HIGH', risk_reason: 'EDR detection' },
      sourceRecordId: 'cli-e2e',
    });
    await harness.stop();
    expect(delivered.ok).toBe(true);
    expect(okta.accepted.at(-1)?.provider).toBe(printed.id);
  });

  it('authenticates with an API Services app (private_key_jwt, DPoP as Okta requires by default) instead of a token', async () => {
    const keys = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyFile = join(dir, 'okta-app.pem');
    await writeFile(keyFile, keys.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, {
      mode: 0o600,
    });
    okta.clients.push({
      clientId: '0oa1cliapp',
      publicJwk: keys.publicKey.export({ format: 'jwk' }),
      scopes: ['okta.securityEventsProviders.manage', 'okta.securityEventsProviders.read'],
      requireDpop: true,
    });
    const oauth = [
      '--org',
      okta.orgUrl,
      '--client-id',
      '0oa1cliapp',
      '--private-key',
      keyFile,
      '--key-id',
      'k1',
    ];
    const result = await run(
      'okta',
      'register-provider',
      ...oauth,
      '--issuer',
      BRIDGE_ISSUER,
      '--jwks-url',
      `${publisher.url}/jwks.json`,
    );
    expect(result.code).toBe(0);
    expect(okta.api.requests.find((r) => r.path === '/oauth2/v1/token')?.json).toMatchObject({
      grant_type: 'client_credentials',
      scope: 'okta.securityEventsProviders.manage',
    });
    const created = okta.api.requests.find((r) => r.path === '/api/v1/security-events-providers');
    expect(created?.headers['authorization']).toMatch(/^DPoP okta-at-/);
    const list = await run('okta', 'providers', 'list', ...oauth);
    expect(list.code).toBe(0);
    expect(list.out).toMatch(
      /^ID\s+NAME\s+STATUS\s+ISSUER\s+JWKS URL\nsse\S+\s+ssf-bridge\s+ACTIVE\s+https:\/\/signals\.example\.com\//,
    );
  });

  it('refuses incomplete arguments with exit 2', async () => {
    expect((await run('okta', 'register-provider', ...auth())).code).toBe(2);
    expect(
      (await run('okta', 'register-provider', '--org', okta.orgUrl, '--issuer', 'i', '--jwks-url', 'j')).code,
    ).toBe(2);
    const both = await run(
      'okta',
      'register-provider',
      ...auth(),
      '--well-known-url',
      'https://a/x',
      '--issuer',
      'i',
      '--jwks-url',
      'j',
    );
    expect(both.code).toBe(2);
    expect((await run('okta', 'providers', 'list', '--org', 'not a url', '--token', 't')).code).toBe(2);
  });

  it('a refused token exits 1 with Okta’s message and a hint, never printing the token', async () => {
    const result = await run(
      'okta',
      'providers',
      'list',
      '--org',
      okta.orgUrl,
      '--token',
      'wrong-okta-token-123',
    );
    expect(result.code).toBe(1);
    expect(result.err).toMatch(
      /answered 401.*Invalid token provided.*okta.securityEventsProviders.read scope/,
    );
    expect(result.err + result.out).not.toContain('wrong-okta-token-123');
  });

  it('refuses an http org that is not loopback before sending the token (exit 2)', async () => {
    for (const org of ['http://example.okta.com', 'http://10.0.0.5:8080', 'ftp://example.okta.com']) {
      const result = await run('okta', 'providers', 'list', '--org', org, '--token', okta.apiToken);
      expect(result.code).toBe(2);
      expect(result.err).toContain('--org must be an https URL (http only on loopback)');
    }
    expect(okta.api.requests).toEqual([]);
    // Loopback spellings other than the fake's own 127.0.0.1 pass the check (and reach it).
    const port = new URL(okta.orgUrl).port;
    const localhost = await run(
      'okta',
      'providers',
      'list',
      '--org',
      `http://localhost:${port}`,
      '--token',
      okta.apiToken,
    );
    expect(localhost.err).not.toContain('--org must be');
  });

  it('never prints the token when Okta quotes it in an error', async () => {
    const token = 'echoed-okta-token-4711';
    okta.api.inject({
      status: 400,
      body: {
        errorCode: 'E0000001',
        errorSummary: `Api validation failed: Authorization SSWS ${token}`,
        errorCauses: [{ errorSummary: `token ${token} is not allowed here` }],
      },
    });
    const result = await run('okta', 'providers', 'list', '--org', okta.orgUrl, '--token', token);
    expect(result.code).toBe(1);
    expect(result.err).toBe(
      'ssf-bridge okta: Okta answered 400 E0000001 Api validation failed: Authorization [redacted] (token [redacted] is not allowed here)',
    );
  });

  it('Okta’s validation errors are shown as they are', async () => {
    const result = await run(
      'okta',
      'register-provider',
      ...auth(),
      '--well-known-url',
      `${publisher.url}/nothing-here`,
    );
    expect(result.code).toBe(1);
    expect(result.err).toBe(
      'ssf-bridge okta: Okta answered 400 E0000001 Api validation failed: settings (settings.well_known_url: The well-known configuration has no issuer or jwks_uri)',
    );
    expect(okta.providers.size).toBe(0);
  });
});

describe('ssf-bridge okta providers', () => {
  it('lists, deactivates and activates providers', async () => {
    const provider = okta.addProvider({ issuer: BRIDGE_ISSUER, jwks_url: `${publisher.url}/jwks.json` });
    const deactivated = await run('okta', 'providers', 'deactivate', provider.id, ...auth());
    expect(deactivated).toMatchObject({
      code: 0,
      out: expect.stringContaining(`provider ${provider.id} (INACTIVE)`),
    });
    expect(okta.api.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: `/api/v1/security-events-providers/${provider.id}/lifecycle/deactivate`,
    });
    const listed = await run('okta', 'providers', 'list', ...auth(), '--json');
    expect(JSON.parse(listed.out)).toMatchObject([{ id: provider.id, status: 'INACTIVE' }]);
    expect((await run('okta', 'providers', 'activate', provider.id, ...auth())).out).toContain('(ACTIVE)');
    const missing = await run('okta', 'providers', 'activate', 'sse-nope', ...auth());
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('E0000007');
  });

  it('says so when there are none', async () => {
    expect(await run('okta', 'providers', 'list', ...auth())).toMatchObject({
      code: 0,
      out: 'no security events providers',
    });
  });
});
