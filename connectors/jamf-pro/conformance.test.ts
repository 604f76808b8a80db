import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { fixtureSettings } from './fixtures/settings.ts';
import { jamfProConnector } from './index.ts';

const INVENTORY_PATH = '/api/v1/computers-inventory';

/**
 * The reconciliation, and the lookups of a webhook, read the inventory the fixtures' webhooks
 * were looked up against: every computer the fixture records carry under `inventory` (the later
 * fixture wins).
 */
function serveInventory(server: MockServer, records: unknown[]): void {
  const computers = new Map<string, unknown>();
  for (const record of records) {
    const inventory = (record as { inventory?: Array<{ id: string }> } | null)?.inventory;
    if (typeof record === 'object' && record !== null && Array.isArray(inventory)) {
      for (const computer of inventory) computers.set(computer.id, computer);
    }
  }
  const all = [...computers.values()];
  server.on('GET', INVENTORY_PATH, (req) => {
    const page = Number(req.query['page'] ?? 0);
    const size = Number(req.query['page-size'] ?? 100);
    return { body: { totalCount: all.length, results: all.slice(page * size, (page + 1) * size) } };
  });
  // The lookup of one computer a webhook names.
  for (const [id, computer] of computers)
    server.on('GET', `${INVENTORY_PATH}/${id}`, () => ({ body: computer }));
}

runConnectorConformance(jamfProConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({ ...fixtureSettings, url: server.url }),
  invalidConfigs: [
    { config: { ...fixtureSettings, non_compliant_groups: [] }, error: 'non_compliant_groups' },
    { config: { ...fixtureSettings, webhook_auth: { type: 'none' } }, error: 'allowed_networks' },
    { config: { ...fixtureSettings, allowed_networks: ['203.0.113.0/40'] }, error: 'CIDR' },
  ],
  // Jamf Pro posts a fixture's payload; its inventory is what the lookups and the reconciliation read.
  webhook: {
    request: () => ({ headers: { 'x-webhook-secret': fixtureSettings.webhook_auth.value } }),
    body: (record) => {
      const { payload } = record as { payload?: unknown };
      return payload === undefined ? record : payload;
    },
  },
  mock: (server) => {
    server.on('POST', '/api/oauth/token', () => ({
      body: { access_token: 'kit-jamf-access-token', token_type: 'Bearer', expires_in: 1199 },
    }));
    serveInventory(server, []);
  },
  poll: { task: 'reconcile', serve: serveInventory },
  metrics: [
    { name: 'jamf_pro_reconcile_runs_total', labels: { outcome: 'ok' }, value: () => 1 },
    { name: 'jamf_pro_reconcile_runs_total', labels: { outcome: 'failed' }, value: () => 0 },
    { name: 'jamf_pro_events_total', labels: { via: 'reconcile' }, value: (t) => t.events },
    { name: 'jamf_pro_events_total', labels: { via: 'webhook' }, value: () => 0 },
    // The kit drives a polling connector through its reconciliation only: no webhook call, no lookup.
    { name: 'jamf_pro_webhooks_total', value: () => 0 },
    { name: 'jamf_pro_lookups_total', value: () => 0 },
    // One reconciliation from an empty state: no computer can be missing from it.
    { name: 'jamf_pro_missing_computers_total', value: () => 0 },
  ],
});
