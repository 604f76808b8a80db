import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capturingIo } from '../../../test/helpers/capture.ts';
import { SqliteStore } from '../../storage/sqlite/store.ts';
import { WriterLock } from '../../storage/sqlite/writer-lock.ts';
import {
  POSTGRES_TEST_URL,
  describePostgres,
  dropSchema,
  openTestPostgresStore,
  uniqueSchema,
} from '../../storage/testing/postgres.ts';
import { main } from '../main.ts';

let dir: string;
let configFile: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'ssf-cli-checkpoints-'));
  configFile = join(dir, 'bridge.yaml');
  writeFileSync(configFile, `data_dir: ${JSON.stringify(join(dir, 'data'))}\n`);
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

async function run(...args: string[]) {
  const io = capturingIo();
  const code = await main(['node', 'ssf-bridge', ...args, '--config', configFile], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

async function withStore<T>(work: (store: SqliteStore) => Promise<T>): Promise<T> {
  const store = SqliteStore.open({ path: join(dir, 'data', 'ssf-bridge.db') });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

const AT = new Date('2026-11-30T08:00:00Z');

async function seed(): Promise<void> {
  await withStore(async (store) => {
    await store.checkpoints.set('hibob', 'default', { employees: 'not a snapshot' }, AT);
    await store.checkpoints.set('hibob', 'releases', { due: [] }, AT);
    await store.checkpoints.set('crowdstrike', 'default', { offset: 42 }, AT);
  });
}

describe('ssf-bridge checkpoints', () => {
  it('lists an instance’s checkpoints with when and how big, never their content', async () => {
    await seed();
    const listed = await run('checkpoints', 'list', 'hibob');
    expect(listed.code).toBe(0);
    expect(listed.out.split('\n')).toEqual([
      expect.stringMatching(/^default\tupdated 2026-11-30T08:00:00\.000Z\t\d+ bytes$/),
      'releases\tupdated 2026-11-30T08:00:00.000Z\t10 bytes',
    ]);
    expect(listed.out).not.toContain('not a snapshot');
    const json = await run('checkpoints', 'list', 'crowdstrike', '--json');
    expect(JSON.parse(json.out)).toEqual([
      { name: 'default', updated_at: '2026-11-30T08:00:00.000Z', bytes: 13 },
    ]);
    expect((await run('checkpoints', 'list', 'nobody')).out).toBe('instance nobody has no checkpoint');
  });

  it('reset asks for --yes (exit 2), then deletes that instance’s checkpoints only, and audits it', async () => {
    await seed();
    const unconfirmed = await run('checkpoints', 'reset', 'hibob');
    expect(unconfirmed.code).toBe(2);
    expect(unconfirmed.err).toContain('deletes the checkpoints default, releases');
    expect(await withStore((s) => s.checkpoints.list('hibob'))).toHaveLength(2);

    const reset = await run('checkpoints', 'reset', 'hibob', '--yes');
    expect(reset.code).toBe(0);
    expect(reset.out).toBe(
      'reset instance hibob: deleted default, releases (the instance is not in this config)',
    );
    await withStore(async (store) => {
      expect(await store.checkpoints.list('hibob')).toEqual([]);
      expect(await store.checkpoints.get('crowdstrike')).toEqual({ offset: 42 });
      const [entry] = await store.operator.listAudit({ limit: 5 });
      expect(entry).toMatchObject({
        actor: 'cli',
        action: 'checkpoints.reset',
        target: 'hibob',
        detail: { names: ['default', 'releases'], outcome: 'ok' },
      });
    });
  });

  it('reset --name deletes one checkpoint; nothing to reset exits 1', async () => {
    await seed();
    expect((await run('checkpoints', 'reset', 'hibob', '--name', 'releases', '--yes')).code).toBe(0);
    expect((await withStore((s) => s.checkpoints.list('hibob'))).map((r) => r.name)).toEqual(['default']);
    const missing = await run('checkpoints', 'reset', 'hibob', '--name', 'releases', '--yes');
    expect(missing.code).toBe(1);
    expect(missing.err).toContain('instance hibob has no checkpoint named "releases"; nothing to reset');
    expect((await run('checkpoints', 'reset', 'nobody', '--yes')).code).toBe(1);
  });
});

describe('ssf-bridge checkpoints reset beside a running bridge', () => {
  it('SQLite: refuses (exit 1) while a bridge holds the writer lock, and deletes nothing', async () => {
    await seed();
    // The lock a running bridge holds on its SQLite file.
    const bridge = WriterLock.acquire(join(dir, 'data', 'ssf-bridge.db'));
    try {
      const refused = await run('checkpoints', 'reset', 'hibob', '--yes');
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(`a bridge is running on ${join(dir, 'data', 'ssf-bridge.db')}`);
      expect(refused.err).toContain('stop the bridge first');
      expect(await withStore((s) => s.checkpoints.list('hibob'))).toHaveLength(2);
    } finally {
      bridge.release();
    }
    expect((await run('checkpoints', 'reset', 'hibob', '--yes')).code).toBe(0);
    expect(await withStore((s) => s.checkpoints.list('hibob'))).toEqual([]);
  });
});

describePostgres('ssf-bridge checkpoints reset on PostgreSQL', () => {
  it('refuses (exit 1) while a bridge holds the scheduler lease, and resets once it is released', async () => {
    const schema = uniqueSchema();
    const store = await openTestPostgresStore(schema);
    try {
      await store.checkpoints.set('hibob', 'default', { cursor: 'c1' }, AT);
      // What a running bridge on PostgreSQL holds while it runs (runtime/bridge.ts).
      expect(await store.leases.tryAcquire('scheduler', 'bridge-a:4242', 60_000, new Date())).toBe(true);
      writeFileSync(
        configFile,
        [
          `data_dir: ${JSON.stringify(join(dir, 'data'))}`,
          `storage: { driver: postgres, url: ${JSON.stringify(POSTGRES_TEST_URL)}, schema: ${schema} }`,
          'keys: { single_instance: true }',
          '',
        ].join('\n'),
      );
      const refused = await run('checkpoints', 'reset', 'hibob', '--yes');
      expect(refused.code).toBe(1);
      expect(refused.err).toContain(`a bridge (bridge-a:4242) is running on the database schema "${schema}"`);
      expect(refused.err).toContain('stop the bridge first');
      expect(await store.checkpoints.get('hibob')).toEqual({ cursor: 'c1' });

      await store.leases.release('scheduler', 'bridge-a:4242');
      expect((await run('checkpoints', 'reset', 'hibob', '--yes')).code).toBe(0);
      expect(await store.checkpoints.list('hibob')).toEqual([]);
    } finally {
      await store.close();
      await dropSchema(schema);
    }
  });
});
