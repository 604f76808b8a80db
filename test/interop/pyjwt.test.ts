/**
 * Cross-implementation tests: SETs signed by ssf-bridge are verified by PyJWT (Debian
 * python3-jwt with python3-cryptography), and SETs signed by PyJWT are verified — or refused
 * with the right RFC 8935 error code — by ssf-bridge.
 */
import { spawn } from 'node:child_process';
import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  KeyStore,
  MemoryReplayCache,
  SIGNING_ALGORITHMS,
  SetCodec,
  SetVerificationError,
  defaultKeysConfig,
  localJwks,
  verifySet,
  type SigningAlgorithm,
  type VerifySetOptions,
} from '../../core/ssf/index.ts';

const PYTHON = '/usr/bin/python3';
const SCRIPT = fileURLToPath(new URL('./pyjwt_set.py', import.meta.url));
const ISS = 'https://tx.example';
const AUD = 'https://rx.example';
const SESSION_REVOKED = 'https://schemas.openid.net/secevent/caep/event-type/session-revoked';

type Op = Record<string, unknown> & { op: 'keygen' | 'sign' | 'hmac' | 'verify' };

/** Runs a batch of operations in one Python process. */
function python<T = Record<string, unknown>>(ops: Op[]): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`${PYTHON} ${SCRIPT} exited ${code}: ${stderr}`));
      else resolve((JSON.parse(stdout) as { results: T[] }).results);
    });
    child.stdin.end(JSON.stringify({ ops }));
  });
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

function setClaims(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    iss: ISS,
    iat: nowSeconds(),
    jti: `py-${Math.random().toString(36).slice(2)}`,
    aud: AUD,
    txn: 'txn-1',
    sub_id: { format: 'iss_sub', iss: 'https://idp.example', sub: 'u-42' },
    events: {
      [SESSION_REVOKED]: { event_timestamp: nowSeconds(), reason_admin: { en: 'Admin revoked session' } },
    },
    ...overrides,
  };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssf-interop-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ssf-bridge signs, PyJWT verifies', () => {
  it.each(SIGNING_ALGORITHMS)('%s', async (algorithm: SigningAlgorithm) => {
    const store = await KeyStore.open({
      dataDir: join(dir, `ours-${algorithm}`),
      config: defaultKeysConfig({ algorithm }),
    });
    const codec = new SetCodec({ issuer: ISS, keys: store });
    const minted = await codec.mint({
      event: {
        type: 'caep.credential-change',
        subject: { format: 'email', email: 'dana@example.com' },
        claims: {
          credential_type: 'fido2-platform',
          change_type: 'create',
          reason_admin: { en: 'Passkey added' },
        },
        sourceRecordId: 'rec-1',
      },
      sourceInstanceId: 'idp',
      destination: { id: 'rx', audience: AUD },
    });
    const [jwk] = store.jwks().keys;
    const [head, body, signature] = minted.jwt.split('.');
    const flipped = Buffer.from(signature as string, 'base64url');
    flipped[0] = (flipped[0] as number) ^ 0x01;
    const tamperedToken = `${head}.${body}.${flipped.toString('base64url')}`;
    const [accepted, wrongAudience, tampered] = await python<{
      ok: boolean;
      header?: unknown;
      claims?: unknown;
      error?: string;
    }>([
      { op: 'verify', token: minted.jwt, jwk, alg: algorithm, audience: AUD, issuer: ISS },
      {
        op: 'verify',
        token: minted.jwt,
        jwk,
        alg: algorithm,
        audience: 'https://other.example',
        issuer: ISS,
      },
      { op: 'verify', token: tamperedToken, jwk, alg: algorithm, audience: AUD, issuer: ISS },
    ]);
    expect(accepted).toEqual({ ok: true, header: minted.header, claims: minted.claims });
    expect(wrongAudience).toMatchObject({ ok: false, error: expect.stringMatching(/InvalidAudienceError/) });
    expect(tampered).toMatchObject({ ok: false, error: expect.stringMatching(/InvalidSignatureError/) });
  });
});

interface PyKey {
  private_pem: string;
  public_jwk: Record<string, unknown>;
}

describe('PyJWT signs, ssf-bridge verifies', () => {
  const keys = new Map<SigningAlgorithm, PyKey>();

  beforeAll(async () => {
    const generated = await python<PyKey>(SIGNING_ALGORITHMS.map((alg) => ({ op: 'keygen', alg })));
    SIGNING_ALGORITHMS.forEach((alg, i) => keys.set(alg, generated[i] as PyKey));
  });

  function jwksOf(alg: SigningAlgorithm) {
    const key = keys.get(alg) as PyKey;
    return localJwks({ keys: [{ ...key.public_jwk, kid: `py-${alg}`, alg, use: 'sig' }] });
  }

  async function pySign(
    alg: SigningAlgorithm | 'none',
    claims: Record<string, unknown>,
    headers: Record<string, unknown>,
  ) {
    const key = alg === 'none' ? undefined : keys.get(alg);
    const [result] = await python<{ token: string }>([
      { op: 'sign', alg, private_pem: key?.private_pem, claims, headers },
    ]);
    return (result as { token: string }).token;
  }

  const options = (alg: SigningAlgorithm, extra: Partial<VerifySetOptions> = {}): VerifySetOptions => ({
    keys: jwksOf(alg),
    issuer: ISS,
    audience: AUD,
    ...extra,
  });

  async function refusal(token: string, opts: VerifySetOptions): Promise<SetVerificationError> {
    const error = await verifySet(token, opts).catch((err: unknown) => err);
    if (!(error instanceof SetVerificationError)) throw new Error(`expected a refusal, got ${String(error)}`);
    return error;
  }

  it.each(SIGNING_ALGORITHMS)('%s', async (alg: SigningAlgorithm) => {
    const claims = setClaims();
    const token = await pySign(alg, claims, { kid: `py-${alg}`, typ: 'secevent+jwt' });
    const verified = await verifySet(token, options(alg));
    expect(verified.claims).toEqual(claims);
    expect(verified.eventType).toBe(SESSION_REVOKED);
    expect(verified.subject).toEqual(claims.sub_id);
  });

  it('a tampered SET → invalid_key', async () => {
    const token = await pySign('RS256', setClaims(), { kid: 'py-RS256', typ: 'secevent+jwt' });
    const [header, , signature] = token.split('.');
    const forged = Buffer.from(
      JSON.stringify(setClaims({ sub_id: { format: 'email', email: 'ceo@example.com' } })),
    ).toString('base64url');
    const error = await refusal(`${header}.${forged}.${signature}`, options('RS256'));
    expect([error.err, error.code]).toEqual(['invalid_key', 'SSF_ERR_SET_SIGNATURE']);
  });

  it('alg none → authentication_failed', async () => {
    const token = await pySign('none', setClaims(), { typ: 'secevent+jwt' });
    expect(token.endsWith('.')).toBe(true);
    const error = await refusal(token, options('RS256'));
    expect([error.err, error.code]).toEqual(['authentication_failed', 'SSF_ERR_SET_UNSIGNED']);
  });

  it('HS256 keyed with the transmitter public key → invalid_key', async () => {
    const jwk = (keys.get('RS256') as PyKey).public_jwk;
    const publicPem = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' })
      .export({ format: 'pem', type: 'spki' })
      .toString();
    const headers = { kid: 'py-RS256', typ: 'secevent+jwt' };
    const tokens = await python<{ token: string }>([
      { op: 'hmac', secret: publicPem, claims: setClaims(), headers },
      { op: 'hmac', secret: JSON.stringify(jwk), claims: setClaims(), headers },
    ]);
    for (const { token } of tokens) {
      const error = await refusal(token, options('RS256'));
      expect([error.err, error.code]).toEqual(['invalid_key', 'SSF_ERR_SET_ALG']);
    }
  });

  it('the wrong typ (PyJWT default JWT) → invalid_request', async () => {
    const token = await pySign('ES256', setClaims(), { kid: 'py-ES256' });
    const error = await refusal(token, options('ES256'));
    expect([error.err, error.code]).toEqual(['invalid_request', 'SSF_ERR_SET_TYP']);
    expect(error.description).toMatch(/typ is "JWT"/);
  });

  it('the wrong aud → invalid_audience', async () => {
    const token = await pySign('PS256', setClaims({ aud: 'https://someone-else.example' }), {
      kid: 'py-PS256',
      typ: 'secevent+jwt',
    });
    const error = await refusal(token, options('PS256'));
    expect([error.err, error.code]).toEqual(['invalid_audience', 'SSF_ERR_SET_AUDIENCE']);
  });

  it('older than the maximum age → invalid_request', async () => {
    const token = await pySign('EdDSA', setClaims({ iat: nowSeconds() - 3600 }), {
      kid: 'py-EdDSA',
      typ: 'secevent+jwt',
    });
    await expect(verifySet(token, options('EdDSA'))).resolves.toBeDefined();
    const error = await refusal(token, options('EdDSA', { maxAgeMs: 300_000 }));
    expect([error.err, error.code]).toEqual(['invalid_request', 'SSF_ERR_SET_TOO_OLD']);
  });

  it('replayed → invalid_request', async () => {
    const token = await pySign('ES256', setClaims(), { kid: 'py-ES256', typ: 'secevent+jwt' });
    const replayCache = new MemoryReplayCache({ ttlMs: 3_600_000 });
    await verifySet(token, options('ES256', { replayCache }));
    const error = await refusal(token, options('ES256', { replayCache }));
    expect([error.err, error.code]).toEqual(['invalid_request', 'SSF_ERR_SET_REPLAYED']);
  });
});
