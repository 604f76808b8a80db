import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { fixtureSettings } from './fixtures/settings.ts';
import { intuneConnector } from './index.ts';

const DEVICES_PATH = '/v1.0/deviceManagement/managedDevices';
const TOKEN_PATH = `/${fixtureSettings.tenant_id}/oauth2/v2.0/token`;

/** The devices last served to a scan, one per id (the later fixture wins). */
let served: Array<{ id: string; complianceState?: string }> = [];

function serveDevices(server: MockServer, devices: unknown[]): void {
  const byId = new Map<string, { id: string; complianceState?: string }>();
  for (const d of devices as Array<{ id: string; complianceState?: string }>) byId.set(d.id, d);
  served = [...byId.values()];
  // Two devices per page, so the scan follows @odata.nextLink.
  server.on('GET', DEVICES_PATH, (req) => {
    const index = Number(req.query['$skiptoken'] ?? 0);
    const value = served.slice(index * 2, index * 2 + 2);
    const more = (index + 1) * 2 < served.length;
    return {
      body: {
        value,
        ...(more ? { '@odata.nextLink': `${server.url}${DEVICES_PATH}?$skiptoken=${index + 1}` } : {}),
      },
    };
  });
}

const UNDETERMINED = new Set(['conflict', 'error', 'unknown', 'configmanager']);

runConnectorConformance(intuneConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({ ...fixtureSettings, graph_url: server.url, login_url: server.url }),
  invalidConfigs: [
    { config: { ...fixtureSettings, tenant_id: 'contoso tenant' }, error: 'tenant' },
    { config: { ...fixtureSettings, grace_period: 'sometimes' }, error: 'grace_period' },
    {
      config: { tenant_id: fixtureSettings.tenant_id, client_id: fixtureSettings.client_id },
      error: 'one of client_secret, client_certificate, federated_token_file is required',
    },
  ],
  mock: (server) => {
    server.on('POST', TOKEN_PATH, () => ({
      body: { access_token: 'kit-graph-access-token', token_type: 'Bearer', expires_in: 3599 },
    }));
    serveDevices(server, []);
  },
  poll: {
    task: 'scan',
    serve: (server, records) =>
      serveDevices(
        server,
        records.flatMap((r) => (r as { value: unknown[] }).value),
      ),
  },
  metrics: [
    { name: 'intune_scans_total', labels: { outcome: 'ok' }, value: () => 1 },
    { name: 'intune_scans_total', labels: { outcome: 'failed' }, value: () => 0 },
    { name: 'intune_devices_scanned_total', value: () => served.length },
    { name: 'intune_events_total', value: (t) => t.events },
    {
      name: 'intune_undetermined_total',
      value: () => served.filter((d) => UNDETERMINED.has(String(d.complianceState).toLowerCase())).length,
    },
    { name: 'intune_rejected_records_total', value: () => 0 },
    // One scan from an empty state: no device can be missing from it.
    { name: 'intune_missing_devices_total', value: () => 0 },
  ],
});
