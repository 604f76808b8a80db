import { createHmac } from 'node:crypto';
import { runConnectorConformance, type MockServer } from '../../core/plugin-api/testing/index.ts';
import { bamboohrConnector } from './index.ts';

const API = '/api/gateway.php/acme/v1';
const WEBHOOK_KEY = 'conformance-bamboohr-webhook-key-51d7';

/** An employee record of the fixtures as BambooHR announces its change: an event webhook naming it. */
function webhookBody(input: unknown): unknown {
  if (typeof input !== 'object' || input === null || 'type' in input || 'employees' in input) return input;
  return {
    type: 'employee.updated',
    timestamp: new Date().toISOString(),
    data: { employeeId: (input as { id?: unknown }).id, changedFields: ['Status', 'Termination Date'] },
  };
}

/** What BambooHR adds: X-BambooHR-Timestamp, and the HMAC-SHA256 of the body followed by it. */
function signedHeaders(rawBody: Buffer): { headers: Record<string, string> } {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const signature = createHmac('sha256', WEBHOOK_KEY)
    .update(Buffer.concat([rawBody, Buffer.from(timestamp)]))
    .digest('hex');
  return { headers: { 'x-bamboohr-signature': signature, 'x-bamboohr-timestamp': timestamp } };
}
const served = { employees: 0 };

/** Serves the fixture employees as /employees/changed and GET /employees/{id} do. */
function serve(server: MockServer, records: unknown[]): void {
  const employees = new Map<string, unknown>();
  for (const record of records) {
    if (typeof record !== 'object' || record === null || 'type' in record || 'employees' in record) continue;
    employees.set(String((record as { id: unknown }).id), record);
  }
  served.employees = employees.size;
  const changed = Object.fromEntries(
    [...employees.keys()].map((id) => [
      id,
      { id, action: 'Updated', lastChanged: '2026-11-29T09:00:00+00:00' },
    ]),
  );
  server.on('GET', `${API}/employees/changed`, () => ({
    body: { latest: '2026-11-29T09:00:00+00:00', employees: changed },
  }));
  for (const [id, employee] of employees)
    server.on('GET', `${API}/employees/${id}`, () => ({ body: employee }));
}

runConnectorConformance(bamboohrConnector, {
  connectorDir: new URL('.', import.meta.url),
  validConfig: (server: MockServer) => ({
    company_domain: 'acme',
    api_key: 'conformance-bamboohr-api-key-9c2e',
    api_base_url: `${server.url}${API}`,
    mode: 'webhook_and_poll',
    webhook_private_key: WEBHOOK_KEY,
    timezone: 'Europe/London',
    backfill_window: '9000d',
  }),
  invalidConfigs: [
    { config: { company_domain: 'acme', api_key: 'k' }, error: 'webhook_private_key' },
    {
      config: { company_domain: 'acme.bamboohr.com', api_key: 'k', mode: 'poll' },
      error: 'company subdomain',
    },
  ],
  mock: (server) =>
    server.on('GET', `${API}/meta/fields`, () => ({ body: [{ id: '1', name: 'First Name', type: 'text' }] })),
  poll: { serve, task: 'poll' },
  webhook: { request: (_body, rawBody) => signedHeaders(rawBody), body: webhookBody },
  metrics: [
    // Of the six fixture employees, five are leavers (one held for the future) and one is not.
    { name: 'bamboohr_employees_total', labels: { outcome: 'mapped' }, value: () => served.employees - 1 },
    { name: 'bamboohr_employees_total', labels: { outcome: 'ignored' }, value: () => 1 },
    { name: 'bamboohr_employees_total', labels: { outcome: 'vanished' }, value: () => 0 },
    { name: 'bamboohr_employees_total', labels: { outcome: 'malformed' }, value: () => 0 },
    { name: 'bamboohr_webhooks_total', value: () => 0 },
    { name: 'bamboohr_events_total', value: (t) => t.events },
  ],
});
