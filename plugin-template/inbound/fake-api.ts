import type { ConformanceOptions, MockServer } from '../../core/plugin-api/testing/index.ts';
import { SIGNATURE_HEADER, sign } from './webhook.ts';

/**
 * The shared secret the fake vendor signs its webhooks with. A connector that only polls deletes
 * it, the import from webhook.ts, `webhook_secret` in validConfig and the `webhook` option.
 */
const WEBHOOK_SECRET = 'fake-webhook-secret-5e2a';

/**
 * The vendor's alerts API as the fake server plays it: `GET /v1/alerts?after=<id>&limit=<n>`
 * answers the alerts after `after`, oldest first, and says whether more are left.
 */
export function serveAlerts(server: MockServer, records: unknown[]): void {
  const alerts = records as Array<{ id: string }>;
  server.on('GET', '/v1/alerts', (req) => {
    const start = req.query.after ? alerts.findIndex((a) => a.id === req.query.after) + 1 : 0;
    const limit = Number(req.query.limit ?? 100);
    return { body: { alerts: alerts.slice(start, start + limit), has_more: start + limit < alerts.length } };
  });
}

/** How the conformance kit and `npm run dev` run this connector against the fake API. */
export const conformanceOptions: ConformanceOptions = {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    base_url: server.url,
    api_token: 'fake-api-token-3b9d',
    page_size: 2,
    webhook_secret: WEBHOOK_SECRET,
  }),
  invalidConfigs: [
    { config: { api_token: 'x' }, error: 'base_url' },
    {
      config: { base_url: 'https://api.vendor.example', api_token: 'x', poll_interval: 'often' },
      error: 'poll_interval',
    },
  ],
  poll: { serve: serveAlerts },
  // What the vendor adds to each webhook: its signature over the raw body. The kit sends requests
  // without it and with it altered (401 expected), malformed fixtures (400 expected), and checks
  // that a request is answered 202 only once its events are persisted, 503 when they are not.
  webhook: {
    request: (_body, rawBody) => ({ headers: { [SIGNATURE_HEADER]: sign(WEBHOOK_SECRET, rawBody) } }),
  },
  metrics: [
    { name: 'alerts_read_total', value: (t) => t.records },
    { name: 'alerts_ignored_total', value: (t) => t.ignored },
    { name: 'alerts_malformed_total', value: (t) => t.rejected },
  ],
};
