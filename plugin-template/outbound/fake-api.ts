import type { ConformanceOptions, MockServer } from '../../core/plugin-api/testing/index.ts';

/** The vendor API as the fake server plays it: accepts actions, reports healthy. */
export function serveVendorApi(server: MockServer): void {
  server.on('POST', '/v1/actions', () => ({ status: 202, body: { status: 'queued' } }));
  server.on('GET', '/v1/health', () => ({ status: 200, body: 'ok' }));
}

/** How the conformance kit and `npm run dev` run this connector against the fake API. */
export const conformanceOptions: ConformanceOptions = {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({ base_url: server.url, api_token: 'fake-api-token-8e1f' }),
  invalidConfigs: [{ config: { base_url: 'not a url', api_token: 'x' }, error: 'base_url' }],
  mock: serveVendorApi,
  metrics: [{ name: 'actions_sent_total', value: (t) => t.delivered }],
};
