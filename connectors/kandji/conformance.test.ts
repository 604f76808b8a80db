import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { fixtureSettings } from './fixtures/settings.ts';
import { kandjiConnector } from './index.ts';

interface Snapshot {
  devices: Array<{ device_id: string }>;
  statuses?: Record<string, unknown>;
}

/** What the last scan was served: one record per device (the later fixture wins) and their statuses. */
let served = { devices: [] as Array<{ device_id: string }>, statuses: {} as Record<string, unknown> };

function serveSnapshots(server: MockServer, snapshots: Snapshot[]): void {
  const devices = new Map<string, { device_id: string }>();
  const statuses: Record<string, unknown> = {};
  for (const s of snapshots) {
    for (const d of s.devices) devices.set(d.device_id, d);
    Object.assign(statuses, s.statuses ?? {});
  }
  served = { devices: [...devices.values()], statuses };
  server.on('GET', '/api/v1/devices', (req) => {
    const offset = Number(req.query['offset'] ?? 0);
    const limit = Number(req.query['limit'] ?? 300);
    return { body: served.devices.slice(offset, offset + limit) };
  });
  for (const d of served.devices) {
    const status = statuses[d.device_id];
    server.on('GET', `/api/v1/devices/${d.device_id}/status`, () =>
      status === undefined ? { status: 404, body: { detail: 'Not found.' } } : { body: status },
    );
  }
}

/** Devices whose status a first scan reads: one flagged removed, missing or unmanaged is decided without. */
function needingStatus() {
  return served.devices.filter((d) => {
    const flags = d as { is_removed?: boolean; is_missing?: boolean; mdm_enabled?: boolean };
    return !flags.is_removed && !flags.is_missing && flags.mdm_enabled !== false;
  });
}

runConnectorConformance(kandjiConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({ ...fixtureSettings, api_url: server.url }),
  invalidConfigs: [
    { config: { ...fixtureSettings, api_url: 'acme.api.kandji.io' }, error: 'api_url' },
    { config: { ...fixtureSettings, max_requests_per_hour: 20_000 }, error: 'max_requests_per_hour' },
    { config: { api_url: fixtureSettings.api_url }, error: 'api_token' },
  ],
  mock: (server) => serveSnapshots(server, []),
  poll: { task: 'scan', serve: (server, records) => serveSnapshots(server, records as Snapshot[]) },
  metrics: [
    { name: 'kandji_scans_total', labels: { outcome: 'ok' }, value: () => 1 },
    { name: 'kandji_scans_total', labels: { outcome: 'partial' }, value: () => 0 },
    { name: 'kandji_scans_total', labels: { outcome: 'failed' }, value: () => 0 },
    { name: 'kandji_status_reads_total', value: () => needingStatus().length },
    // A read that answers 404 leaves the device for the next scan.
    {
      name: 'kandji_devices_deferred_total',
      value: () => needingStatus().filter((d) => served.statuses[d.device_id] === undefined).length,
    },
    { name: 'kandji_events_total', value: (t) => t.events },
    { name: 'kandji_rejected_records_total', value: () => 0 },
    // The fake answers every status read; one scan from an empty state has no device missing.
    { name: 'kandji_status_read_failures_total', value: () => 0 },
    { name: 'kandji_missing_devices_total', value: () => 0 },
  ],
});
