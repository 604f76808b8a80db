/**
 * SET signing throughput per algorithm: the codec (check the event, shape it for the target,
 * derive jti and txn, sign) next to raw jose SignJWT signing the same claims with the same key.
 */
import { SignJWT, importJWK } from 'jose';
import {
  KeyStore,
  SIGNING_ALGORITHMS,
  SetCodec,
  defaultKeysConfig,
  generateKeyMaterial,
  type CodecBuildInput,
} from '../../core/ssf/index.ts';
import type { Benchmark } from './run.ts';

/** The codec may cost at most 10 % of raw signing throughput. */
const TARGET_RATIO = 0.9;

const input: CodecBuildInput = {
  event: {
    type: 'caep.session-revoked',
    subject: {
      format: 'complex',
      user: { format: 'email', email: 'dana.lee@example.com' },
      device: { format: 'opaque', id: '7e1b0c2d9f8a4e6b' },
    },
    claims: { initiating_entity: 'policy', reason_admin: { en: 'EDR detection on LT-DLEE-042' } },
    sourceRecordId: 'ldt:7e1b0c2d9f8a4e6b:88112233445',
    occurredAt: new Date('2026-01-01T00:00:00Z'),
  },
  sourceInstanceId: 'crowdstrike-prod',
  destination: { id: 'okta-prod', audience: 'https://example.okta.com' },
};

const benchmark: Benchmark = {
  name: 'set-signing',
  description: 'SETs per second: codec (build + sign) vs raw jose SignJWT of the same claims',
  async run({ compare, ratio, print }) {
    print(
      'ops/s: median of 25 rounds of 200 ms; codec ÷ raw: median of the ratios of back-to-back rounds; ' +
        'CPU µs/op: CPU time of all threads per SET (independent of machine load)',
    );
    print(
      '| alg | codec ops/s | raw jose ops/s | codec ÷ raw | target ≥ 0.9 | codec CPU µs/op | raw CPU µs/op |',
    );
    print('|---|---:|---:|---:|---|---:|---:|');
    for (const algorithm of SIGNING_ALGORITHMS) {
      // One key for both contenders: the codec reads it as a configured secret, jose imports it.
      const material = await generateKeyMaterial(algorithm);
      const store = await KeyStore.open({
        dataDir: '(unused: keys come from the config)',
        config: defaultKeysConfig({ algorithm, secrets: [JSON.stringify(material.privateJwk)] }),
      });
      const codec = new SetCodec({ issuer: 'https://signals.example.com', keys: store });
      const joseKey = await importJWK(material.privateJwk, algorithm);
      const claims = codec.build(input).claims;
      const header = { alg: algorithm, kid: material.kid, typ: 'secevent+jwt' };
      const [ours, raw] = await compare({
        codec: () => codec.mint(input),
        'raw jose': () => new SignJWT(claims).setProtectedHeader(header).sign(joseKey),
      });
      const measured = ours && raw ? ratio(ours, raw) : 0;
      print(
        `| ${algorithm} | ${Math.round(ours?.opsPerSecond ?? 0)} | ${Math.round(raw?.opsPerSecond ?? 0)} | ` +
          `${measured.toFixed(2)}× | ${measured >= TARGET_RATIO ? 'met' : 'MISSED'} | ` +
          `${Math.round(ours?.cpuMicrosPerOp ?? 0)} | ${Math.round(raw?.cpuMicrosPerOp ?? 0)} |`,
      );
    }
  },
};

export default benchmark;
