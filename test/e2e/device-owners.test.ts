/**
 * An EDR alert that names a laptop but no usable user gets the user the MDM assigns the laptop
 * to: a whole bridge in this process, an Intune instance polling a loopback Graph, a CrowdStrike
 * instance taking a Falcon workflow's webhook with `subjects.device_owners: [intune-corp]`, and a
 * webhook destination that receives the signed SET.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfigText } from '../../core/config/index.ts';
import { MockServer } from '../../core/plugin-api/testing/index.ts';
import { Bridge } from '../../core/runtime/bridge.ts';
import { configCrossChecks, defaultRegistry } from '../../core/runtime/defaults.ts';
import { silentLogger } from '../../core/telemetry/logger.ts';
import { call, eventually, Receiver } from '../admin/harness.ts';

const TENANT = 'contoso.onmicrosoft.com';
const WEBHOOK_SECRET = 'falcon-workflow-secret-0123456789';
const READ_TOKEN = 'read-token-0123456789abcdef';

function managedDevice(id: string, deviceName: string, user: string | undefined, entraId: string) {
  return {
    id,
    deviceName,
    userPrincipalName: user ?? null,
    emailAddress: user ?? null,
    azureADDeviceId: entraId,
    complianceState: 'compliant',
    lastSyncDateTime: '2026-11-20T08:00:00Z',
    operatingSystem: 'Windows',
    osVersion: '10.0.22631',
    serialNumber: `SN-${id}`,
    managedDeviceOwnerType: 'company',
    managementAgent: 'mdm',
    isEncrypted: true,
    jailBroken: 'False',
    partnerReportedThreatState: 'unknown',
  };
}

/** A Falcon Alerts API entity for a local service account on `hostname`: no UPN, no alias. */
function falconAlert(suffix: string, hostname: string) {
  return {
    composite_id: `0a1b2c3d4e5f60718293a4b5c6d7e8f9:ind:7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b:88112233445-10197-${suffix}`,
    id: `ind:7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b:88112233445-10197-${suffix}`,
    cid: '0a1b2c3d4e5f60718293a4b5c6d7e8f9',
    agent_id: '7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b',
    product: 'epp',
    type: 'ldt',
    name: 'KnownMalware',
    display_name: 'Known Malware',
    severity: 70,
    severity_name: 'High',
    status: 'new',
    tactic: 'Malware',
    technique: 'Malicious File',
    pattern_disposition: 2048,
    pattern_disposition_details: { process_blocked: true, quarantine_machine: false },
    created_timestamp: '2026-11-29T10:00:41.123Z',
    updated_timestamp: '2026-11-29T10:00:41.523Z',
    timestamp: '2026-11-29T10:00:30Z',
    user_name: 'svc_sql',
    user_principal: null,
    device: {
      device_id: '7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b',
      hostname,
      platform_name: 'Windows',
      machine_domain: 'corp.example.com',
      status: 'normal',
    },
  };
}

describe('EDR users from MDM device records (a bridge in this process)', () => {
  const graph = new MockServer();
  const receiver = new Receiver();
  let bridge: Bridge;
  let dataDir: string;

  beforeAll(async () => {
    await graph.start();
    graph.on('POST', `/${TENANT}/oauth2/v2.0/token`, () => ({
      body: { access_token: 'graph-access-token', token_type: 'Bearer', expires_in: 3599 },
    }));
    graph.on('GET', '/v1.0/deviceManagement/managedDevices', () => ({
      body: {
        value: [
          managedDevice('a1b2c3d4-0001', 'LT-LIWEI-01', 'li.wei@example.com', 'entra-0001'),
          managedDevice('a1b2c3d4-0002', 'KIOSK-07', undefined, 'entra-0002'),
        ],
      },
    }));
    await receiver.start();
    dataDir = mkdtempSync(join(tmpdir(), 'ssf-device-owners-'));
    const loaded = await loadConfigText(
      `
server: { host: 127.0.0.1, port: 0 }
data_dir: ${dataDir}
inbound:
  - id: intune-corp
    connector: intune
    config:
      tenant_id: ${TENANT}
      client_id: 6731de76-14a6-49ae-97bc-6eba6914391e
      client_secret: intune-client-secret
      graph_url: ${graph.url}
      login_url: ${graph.url}
  - id: falcon
    connector: crowdstrike-falcon
    config:
      mode: webhook
      webhook: { secret: ${WEBHOOK_SECRET} }
      subjects: { device_owners: [intune-corp] }
outbound:
  - id: hook
    connector: webhook
    config:
      url: ${receiver.url}
      signing_secret: webhook-signing-secret-0123456789abcdef
      include_set: true
routes:
  - { id: edr, from: [falcon], to: [hook] }
admin:
  tokens: [{ name: viewer, role: read, token: ${READ_TOKEN} }]
`,
      { registry: defaultRegistry(), crossChecks: configCrossChecks() },
    );
    if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
    bridge = new Bridge(loaded.config, { logger: silentLogger() });
    await bridge.start();
    // The Intune instance's first scan records the devices it manages.
    await eventually(
      () => call(bridge.url, '/admin/devices/LT-LIWEI-01/compliance', { token: READ_TOKEN }),
      (res) => res.status === 200,
      30_000,
    );
  });

  afterAll(async () => {
    await bridge?.stop(2_000);
    await receiver.stop();
    await graph.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const post = (records: unknown[]) =>
    fetch(`${bridge.url}/ingest/falcon`, {
      method: 'POST',
      headers: { authorization: `Bearer ${WEBHOOK_SECRET}`, 'content-type': 'application/json' },
      body: JSON.stringify(records),
    });

  it('sends the alert about the user Intune assigns the host to, and says where the user came from', async () => {
    const res = await post([falconAlert('0001', 'lt-liwei-01.corp.example.com')]);
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ records: 1, events: 1, ignored: 0 });

    const [delivery] = await eventually(
      async () => receiver.received,
      (got) => got.length >= 1,
    );
    const set = decodeJwt(String(delivery!['set']));
    const event = Object.values(set['events'] as Record<string, Record<string, unknown>>)[0]!;
    expect(set['sub_id']).toEqual({
      format: 'complex',
      user: { format: 'email', email: 'li.wei@example.com' },
      device: { format: 'opaque', id: '7e1b0c2d9f8a4e6b8c3d2a1f0e9d8c7b' },
    });
    expect(event).toMatchObject({ principal: 'USER', current_level: 'HIGH' });
    expect((event['reason_admin'] as { en: string }).en).toContain(
      'user assigned to LT-LIWEI-01 in intune-corp',
    );
  });

  it('still skips an alert on a device no record assigns to a user', async () => {
    const res = await post([falconAlert('0002', 'KIOSK-07'), falconAlert('0003', 'UNKNOWN-HOST')]);
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({ records: 2, events: 0, ignored: 2 });
  });
});
