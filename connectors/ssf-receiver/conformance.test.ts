import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { ssfReceiver } from './index.ts';

/** The stand-in transmitter of the fixtures: its issuer, and the public key that signed them. */
const ISSUER = 'https://transmitter.example.com';
const AUDIENCE = 'https://bridge.example.com/ingest/upstream';
const FIXTURE_KEY = {
  kty: 'EC',
  x: 'rs83-WCJvHr7QGoUZdZRPqJc8j9l9TGkVZTYfi1ijvQ',
  y: '0cTbAHdylwG1BWGocpy9gKJi2dURQGBGFmZga5qzB4s',
  crv: 'P-256',
  kid: 'fixture-key-1',
  alg: 'ES256',
  use: 'sig',
};
/** The key that signed the later fixtures (a transmitter publishes several keys while it rotates). */
const FIXTURE_KEY_2 = {
  kty: 'Z0p5aFqrqWUvK_ILbVPh5UYzJar3WydUPXigx5OM3sc',
  x: 'UB5R6riR-JyWHrttXiacRoRXvEJwHi6xrZFaf-vxMAY',
  y: 'Z0p5aFqrqWUvK_ILbVPh5UYzJar3WydUPXigx5OM3sc',
  crv: 'P-256',
  kid: 'fixture-key-2',
  alg: 'ES256',
  use: 'sig',
};
const PUSH_AUTHORIZATION = 'Bearer conformance-push-authorization-9d41';

function transmitter(server: MockServer): void {
  server.on('GET', '/.well-known/ssf-configuration', () => ({
    status: 200,
    body: {
      spec_version: '1_0',
      issuer: ISSUER,
      jwks_uri: `${server.url}/jwks.json`,
      delivery_methods_supported: ['urn:ietf:rfc:8935', 'urn:ietf:rfc:8936'],
      configuration_endpoint: `${server.url}/ssf/streams`,
      status_endpoint: `${server.url}/ssf/status`,
      verification_endpoint: `${server.url}/ssf/verify`,
    },
  }));
  server.on('GET', '/jwks.json', () => ({ status: 200, body: { keys: [FIXTURE_KEY, FIXTURE_KEY_2] } }));
  server.on('POST', '/ssf/streams', (req) => ({
    status: 201,
    body: {
      stream_id: 'conformance-stream',
      iss: ISSUER,
      aud: AUDIENCE,
      delivery: (req.json as { delivery: unknown }).delivery,
      events_delivered: ['https://schemas.openid.net/secevent/caep/event-type/session-revoked'],
    },
  }));
  server.on('GET', '/ssf/status', () => ({ status: 200, body: { status: 'enabled' } }));
  server.on('POST', '/ssf/verify', () => ({ status: 204 }));
}

runConnectorConformance(ssfReceiver, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    issuer: ISSUER,
    metadata_url: `${server.url}/.well-known/ssf-configuration`,
    auth: { type: 'bearer', token: 'conformance-management-token-2b7e' },
    delivery: {
      method: 'push',
      endpoint_url: AUDIENCE,
      authorization_header: PUSH_AUTHORIZATION,
    },
    bridge_issuer: 'https://bridge.example.com',
    // The stand-in serves the transmitter's endpoints over http on loopback, off the issuer's origin.
    endpoint_origins: [server.url],
    ssrf: { allow_http_hosts: ['127.0.0.1'], allow_cidrs: ['127.0.0.0/8'] },
    // The fixtures were signed once; their iat is fixed. An age limit is required (replay
    // protection rests on it): one far beyond the fixtures' age, with a replay window covering it.
    max_age: '36500d',
    replay_window: '36501d',
  }),
  invalidConfigs: [
    {
      config: { issuer: ISSUER, auth: { type: 'bearer', token: 't' }, delivery: { method: 'poll' } },
      error: 'bridge_issuer',
    },
    {
      config: {
        issuer: ISSUER,
        auth: { type: 'bearer', token: 't' },
        delivery: { method: 'push', endpoint_url: AUDIENCE },
        bridge_issuer: 'https://bridge.example.com',
      },
      error: 'authorization_header',
    },
  ],
  mock: transmitter,
  webhook: {
    request: () => ({
      headers: { authorization: PUSH_AUTHORIZATION, 'content-type': 'application/secevent+jwt' },
    }),
  },
  metrics: [
    { name: 'ssf_receiver_sets_total', labels: { outcome: 'emitted' }, value: (t) => t.accepted - t.ignored },
    { name: 'ssf_receiver_sets_total', labels: { outcome: 'ignored' }, value: (t) => t.ignored },
    { name: 'ssf_receiver_sets_total', labels: { outcome: 'refused' }, value: (t) => t.rejected },
    { name: 'ssf_receiver_verifications_total', labels: { outcome: 'matched' }, value: () => 0 },
  ],
});
