import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isSecret } from '../plugin-api/secret.ts';
import { DEFAULT_SQLITE_FILE, openStore, storageConfigSchema } from './index.ts';

describe('storage config', () => {
  it('defaults to durable SQLite in the data directory', async () => {
    const config = storageConfigSchema.parse(undefined);
    expect(config).toEqual({
      driver: 'sqlite',
      synchronous: 'full',
      busy_timeout: 5000,
      lock_wait: 0,
      cache_mb: 16,
      thread: false,
    });
    const dir = mkdtempSync(join(tmpdir(), 'ssf-open-'));
    try {
      const store = await openStore(config, { dataDir: join(dir, 'data') });
      expect(store.driver).toBe('sqlite');
      expect(existsSync(join(dir, 'data', DEFAULT_SQLITE_FILE))).toBe(true);
      await store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rule: the PostgreSQL URL is a secret and the schema a plain identifier', () => {
    const config = storageConfigSchema.parse({ driver: 'postgres', url: 'postgres://u:pw@db/ssf' });
    expect(config.driver === 'postgres' && isSecret(config.url)).toBe(true);
    expect(JSON.stringify(config)).not.toContain('pw@');
    expect(storageConfigSchema.safeParse({ driver: 'postgres', url: 'x', schema: 'a;drop' }).success).toBe(
      false,
    );
  });

  it('rule: the scheduler leader lease on PostgreSQL defaults to 15 s and is at least 1 s', () => {
    const parse = (leader_lease?: string) =>
      storageConfigSchema.safeParse({ driver: 'postgres', url: 'postgres://db/ssf', leader_lease });
    expect(parse().data).toMatchObject({ leader_lease: 15_000 });
    expect(parse('2s').data).toMatchObject({ leader_lease: 2000 });
    expect(parse('500ms').error?.issues).toEqual([
      expect.objectContaining({ path: ['leader_lease'], message: 'must be at least 1s' }),
    ]);
  });

  it('rejects unknown drivers and keys', () => {
    expect(storageConfigSchema.safeParse({ driver: 'mysql' }).success).toBe(false);
    expect(storageConfigSchema.safeParse({ driver: 'sqlite', file: 'x' }).success).toBe(false);
  });
});
