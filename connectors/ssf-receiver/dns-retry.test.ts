/**
 * A DNS failure that may pass (EAI_AGAIN) while the instance sets its stream up is retried like
 * any network failure (README: "Setup failures that may pass … are retried"), not taken as an
 * SSRF refusal that stops the instance until a restart. The transmitter is a stand-in on
 * 127.0.0.1 named `transmitter.test`; the guarded client's resolver is injected through the
 * parsed configuration's SSRF policy.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { testHttpClientFactory } from '../../core/plugin-api/testing/index.ts';
import type { InboundConnector, InboundContext } from '../../core/plugin-api/index.ts';
import { ssfReceiver } from './index.ts';
import { eventually, readBody, receiverHarness, type Harness } from './test-support.ts';

const MANAGEMENT_TOKEN = 'dns-retry-management-token-4e2a';
const NAME = 'transmitter.test';

/** A transmitter answering as SSF 1.0 §7.2 / §8.1.1 ask, on 127.0.0.1; records each path. */
async function standIn(issuer: () => string): Promise<{ server: Server; port: number; paths: string[] }> {
  const paths: string[] = [];
  const server = createServer((req, res) => {
    void (async () => {
      await readBody(req);
      const path = new URL(req.url ?? '/', 'http://x').pathname;
      paths.push(path);
      const json = (status: number, value: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(value));
      };
      const iss = issuer();
      if (path === '/.well-known/ssf-configuration')
        return json(200, {
          issuer: iss,
          jwks_uri: `${iss}/jwks.json`,
          configuration_endpoint: `${iss}/streams`,
          status_endpoint: `${iss}/status`,
        });
      if (path === '/streams')
        return json(201, {
          stream_id: 's1',
          iss,
          aud: 'https://receiver.example/',
          delivery: { method: 'urn:ietf:rfc:8936', endpoint_url: `${iss}/poll` },
        });
      if (path === '/status') return json(200, { status: 'enabled' });
      if (path === '/poll') {
        await new Promise((r) => setTimeout(r, 100));
        return json(200, { sets: {} });
      }
      return json(404, {});
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port, paths };
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0)) await cleanup();
});

describe('ssf-receiver setup and a DNS failure', () => {
  it('a lookup of the transmitter’s host that fails with EAI_AGAIN is retried; the stream is then set up', async () => {
    let port = 0;
    const tx = await standIn(() => `http://${NAME}:${port}`);
    port = tx.port;
    const lookups: string[] = [];
    /** The system resolver, as it answers during a DNS outage and then after it. */
    const resolve = async (hostname: string) => {
      lookups.push(hostname);
      if (lookups.length === 1) {
        throw Object.assign(new Error(`getaddrinfo EAI_AGAIN ${hostname}`), {
          code: 'EAI_AGAIN',
          hostname,
          syscall: 'getaddrinfo',
        });
      }
      return [{ address: '127.0.0.1', family: 4 as const }];
    };
    const h: Harness = receiverHarness('dns-retry', {
      // The bridge's own HTTP client, guarded agents included.
      http: (signal, logger) => testHttpClientFactory({ logger, signal, onAuthFailure: () => {} }),
    });
    const ctx: InboundContext = h.ctx;
    const parsed = ssfReceiver.configSchema.parse({
      issuer: `http://${NAME}:${port}`,
      // The metadata document is read by the operator's URL, not through the guarded client.
      metadata_url: `http://127.0.0.1:${port}/.well-known/ssf-configuration`,
      bridge_issuer: 'http://receiving-bridge.test',
      auth: { type: 'bearer', token: MANAGEMENT_TOKEN },
      delivery: { method: 'poll', error_backoff: '50ms' },
      ssrf: { allow_http_hosts: [NAME, '127.0.0.1'] },
    });
    const connector: InboundConnector = ssfReceiver.create(ctx, {
      ...parsed,
      ssrf: { ...parsed.ssrf, resolve },
    });
    cleanups.push(async () => {
      await connector.stop(200);
      h.abort.abort();
      tx.server.close();
      tx.server.closeAllConnections();
    });

    await connector.start(ctx.signal);
    const settled = await eventually(
      () => h.statuses.find((s) => s.state === 'ok' || s.state === 'permanent_error'),
      'the setup to succeed or stop',
      10_000,
    );

    expect(settled).toMatchObject({ state: 'ok' });
    const [first] = h.statuses;
    expect(first?.state).toBe('recoverable_error');
    expect(first?.reason).toContain('EAI_AGAIN');
    expect(lookups.length).toBeGreaterThanOrEqual(2);
    expect(lookups.every((name) => name === NAME)).toBe(true);
    expect(tx.paths).toContain('/streams');
    await eventually(() => tx.paths.includes('/poll'), 'a poll');
  }, 15_000);
});
