import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testInbound, testOutbound } from '../../test/helpers/fake-connectors.ts';
import { ConnectorRegistry } from '../runtime/registry.ts';
import { loadConfigText } from './index.ts';
import { rootConfigSchema } from './root.ts';

// Instances sharing a PostgreSQL database answer for one issuer: they must sign with the same
// keys and serve the same JWKS, which keys generated in each one's data directory are not.

const postgres = { driver: 'postgres', url: 'postgres://127.0.0.1:5432/test' };

describe('signing keys on PostgreSQL storage', () => {
  it('refuses keys generated in the data directory, naming keys.files / keys.secrets and docs/scaling.md', () => {
    const result = rootConfigSchema.safeParse({ storage: postgres });
    expect(result.success).toBe(false);
    expect(result.error?.issues).toEqual([
      expect.objectContaining({
        path: ['keys'],
        message: expect.stringMatching(
          /keys\.files or keys\.secrets.*docs\/scaling\.md.*keys\.single_instance: true/,
        ),
      }),
    ]);
    // The other settings of the block do not change that.
    expect(
      rootConfigSchema.safeParse({ storage: postgres, keys: { algorithm: 'ES256', activation_delay: '0s' } })
        .success,
    ).toBe(false);
  });

  it('takes shared keys from files or secrets, or data-directory keys for a single instance', () => {
    for (const keys of [
      { files: ['/etc/ssf-bridge/signing.pem'] },
      { secrets: ['${env:SSF_SIGNING_KEY}'] },
      { single_instance: true },
    ]) {
      expect(rootConfigSchema.safeParse({ storage: postgres, keys }).success).toBe(true);
    }
  });

  it('leaves SQLite (one process) as it is', () => {
    expect(rootConfigSchema.safeParse({}).success).toBe(true);
    expect(rootConfigSchema.safeParse({ storage: { driver: 'sqlite' } }).success).toBe(true);
  });

  it('reaches the operator as a config problem at keys', async () => {
    const registry = new ConnectorRegistry([testInbound, testOutbound]);
    const dir = mkdtempSync(join(tmpdir(), 'ssf-config-keys-'));
    const result = await loadConfigText(
      `storage:\n  driver: postgres\n  url: postgres://127.0.0.1:5432/test\n`,
      { registry, env: {}, file: join(dir, 'bridge.yaml') },
    );
    expect(result.ok).toBe(false);
    expect(!result.ok && result.problems).toEqual([
      expect.objectContaining({
        path: 'keys',
        message: expect.stringContaining('keys.files or keys.secrets'),
      }),
    ]);
  });
});
