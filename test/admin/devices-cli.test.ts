import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEVICE_COMPLIANCE_CHANGE } from '../../core/admin/devices.ts';
import { main } from '../../core/cli/main.ts';
import { SqliteStore } from '../../core/storage/sqlite/store.ts';
import { newEvent } from '../../core/storage/testing/fixtures.ts';
import { capturingIo } from '../helpers/capture.ts';

let dir: string;
let configFile: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-cli-devices-'));
  configFile = join(dir, 'bridge.yaml');
  writeFileSync(
    configFile,
    `data_dir: ${JSON.stringify(join(dir, 'data'))}
inbound:
  - id: api
    connector: events-api
    config:
      token: devices-cli-token-0123456789
`,
  );
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function run(...args: string[]) {
  const io = capturingIo();
  const code = await main(['node', 'ssf-bridge', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

describe('ssf-bridge devices show', () => {
  it('prints the last known compliance of a device, when and from where', async () => {
    const store = SqliteStore.open({ path: join(dir, 'data', 'ssf-bridge.db') });
    const at = new Date('2026-03-01T10:00:00Z');
    const event = newEvent({
      event: {
        instanceId: 'api',
        type: DEVICE_COMPLIANCE_CHANGE,
        subject: {
          format: 'complex',
          user: { format: 'email', email: 'ann@example.com' },
          device: { format: 'opaque', id: 'SERIAL-1' },
        },
        claims: {
          previous_status: 'compliant',
          current_status: 'not-compliant',
          event_timestamp: at.getTime() / 1000,
        },
      },
    });
    await store.accept({ now: at, events: [event], dedupeExpiresAt: at });
    await store.close();

    const text = await run('devices', 'show', 'serial-1', '--config', configFile);
    expect(text.code).toBe(0);
    expect(text.out).toContain('device serial-1: not-compliant since 2026-03-01T10:00:00.000Z');
    expect(text.out).toContain('from api (events-api, event)');
    const json = await run('devices', 'show', 'SERIAL-1', '--config', configFile, '--json');
    expect(JSON.parse(json.out).current).toEqual(
      expect.objectContaining({ status: 'not-compliant', eventId: event.event.id }),
    );
    const missing = await run('devices', 'show', 'nope', '--config', configFile);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('no MDM source knows device "nope"');
  });
});
