import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { keyFilePath } from '../../ssf/index.ts';
import type { CliIo } from '../io.ts';
import { WriterLock } from '../../storage/sqlite/writer-lock.ts';
import { main } from '../main.ts';

function capture(): CliIo & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    readStdin: async () => '',
  };
}

async function run(...args: string[]) {
  const io = capture();
  const code = await main(['node', 'ssf-bridge', ...args], io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ssf-cli-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('ssf-bridge keys', () => {
  it('list fails with a hint before any key exists', async () => {
    const result = await run('keys', 'list', '--data-dir', dir);
    expect(result.code).toBe(1);
    expect(result.err).toMatch(/ssf-bridge keys generate --data-dir/);
  });

  it('generate creates one key (mode 0600), and refuses to run twice', async () => {
    const first = await run('keys', 'generate', '--data-dir', dir, '--algorithm', 'ES256');
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/^generated ES256 signing key \S+ in /);
    expect((await stat(keyFilePath(dir))).mode & 0o777).toBe(0o600);
    const second = await run('keys', 'generate', '--data-dir', dir);
    expect(second.code).toBe(1);
    expect(second.err).toMatch(/keys rotate/);
  });

  it('generate refuses an unknown algorithm and weak RSA with exit 2', async () => {
    expect((await run('keys', 'generate', '--data-dir', dir, '--algorithm', 'HS256')).code).toBe(2);
    expect((await run('keys', 'generate', '--data-dir', dir, '--rsa-bits', '1024')).code).toBe(2);
  });

  it('rotate keeps the previous key in the JWKS for the grace period; list and jwks show both', async () => {
    await run('keys', 'generate', '--data-dir', dir, '--algorithm', 'EdDSA');
    // The new key signs at once here; the activation delay has tests of its own below.
    const rotated = await run(
      'keys',
      'rotate',
      '--data-dir',
      dir,
      '--grace-period',
      '2h',
      '--activation-delay',
      '0s',
    );
    expect(rotated.code).toBe(0);
    expect(rotated.out).toMatch(
      /new signing key \S+ \(EdDSA\) signs from now\nprevious key \S+ stays in the JWKS until \d{4}-/,
    );

    const list = await run('keys', 'list', '--data-dir', dir, '--json');
    const keys = JSON.parse(list.out) as Array<{ status: string; retires_at?: string }>;
    expect(keys.map((k) => k.status)).toEqual(['active', 'retiring']);
    const leaves = Date.parse(keys[1]?.retires_at ?? '') - Date.now();
    expect(leaves).toBeGreaterThan(7_100_000);
    expect(leaves).toBeLessThanOrEqual(7_200_000);

    const table = await run('keys', 'list', '--data-dir', dir);
    expect(table.out.split('\n')[0]).toMatch(/^KID\s+ALG\s+STATUS\s+CREATED\s+SIGNS FROM\s+LEAVES JWKS$/);

    const jwks = JSON.parse((await run('keys', 'jwks', '--data-dir', dir)).out) as {
      keys: Array<Record<string, unknown>>;
    };
    expect(jwks.keys).toHaveLength(2);
    for (const key of jwks.keys) {
      expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(key).not.toHaveProperty('d');
    }
  });

  it('rotate with a zero grace period retires the previous key at once', async () => {
    await run('keys', 'generate', '--data-dir', dir, '--algorithm', 'ES256');
    const rotated = await run(
      'keys',
      'rotate',
      '--data-dir',
      dir,
      '--grace-period',
      '0s',
      '--activation-delay',
      '0s',
    );
    expect(rotated.out).toMatch(/is retired now/);
    const jwks = JSON.parse((await run('keys', 'jwks', '--data-dir', dir)).out) as { keys: unknown[] };
    expect(jwks.keys).toHaveLength(1);
  });

  it('rotate takes the data directory and keys.rotation_grace_period from --config; flags override them', async () => {
    const data = join(dir, 'data');
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      `data_dir: ${JSON.stringify(data)}\nkeys:\n  algorithm: ES256\n  rotation_grace_period: 3h\n  activation_delay: 0s\n`,
    );
    const leavesIn = async (...args: string[]) => {
      const list = await run('keys', 'list', ...args, '--json');
      const keys = JSON.parse(list.out) as Array<{ status: string; retires_at?: string }>;
      return Date.parse(keys.find((k) => k.status === 'retiring')?.retires_at ?? '') - Date.now();
    };
    expect((await run('keys', 'generate', '--config', config)).out).toMatch(/^generated ES256 signing key /);
    expect((await stat(keyFilePath(data))).isFile()).toBe(true);

    expect((await run('keys', 'rotate', '--config', config)).code).toBe(0);
    const configured = await leavesIn('--config', config);
    expect(configured).toBeGreaterThan(3 * 3_600_000 - 100_000);
    expect(configured).toBeLessThanOrEqual(3 * 3_600_000);

    expect((await run('keys', 'rotate', '--config', config, '--grace-period', '1h')).code).toBe(0);
    const list = JSON.parse((await run('keys', 'list', '--data-dir', data, '--json')).out) as Array<{
      status: string;
      retires_at?: string;
    }>;
    // The key replaced now leaves in 1 h; the one replaced before keeps its 3 h.
    const leaving = list
      .filter((k) => k.status === 'retiring')
      .map((k) => Date.parse(k.retires_at!) - Date.now());
    expect(leaving.sort((a, b) => a - b)).toEqual([
      expect.closeTo(3_600_000, -6) as number,
      expect.closeTo(3 * 3_600_000, -6) as number,
    ]);

    // Without --config or SSF_BRIDGE_CONFIG the default grace period is 7 days.
    const other = join(dir, 'other');
    await run('keys', 'generate', '--data-dir', other, '--algorithm', 'ES256');
    expect((await run('keys', 'rotate', '--data-dir', other, '--activation-delay', '0s')).code).toBe(0);
    expect(await leavesIn('--data-dir', other)).toBeGreaterThan(7 * 86_400_000 - 100_000);
  });

  it('without --config or SSF_BRIDGE_CONFIG, finds the data directory the quickstart bridge uses (SSF_BRIDGE_DATA_DIR)', async () => {
    const data = join(dir, 'quickstart-data');
    vi.stubEnv('SSF_BRIDGE_CONFIG', undefined);
    vi.stubEnv('SSF_BRIDGE_DATA_DIR', data);
    try {
      const generated = await run('keys', 'generate', '--algorithm', 'ES256');
      expect(generated.code).toBe(0);
      expect(generated.out).toContain(data);
      expect((await stat(keyFilePath(data))).isFile()).toBe(true);
      const list = JSON.parse((await run('keys', 'list', '--json')).out) as Array<{ alg: string }>;
      expect(list).toMatchObject([{ alg: 'ES256', status: 'active' }]);

      // --data-dir still names another directory.
      const other = join(dir, 'other');
      expect((await run('keys', 'generate', '--data-dir', other, '--algorithm', 'EdDSA')).code).toBe(0);
      expect((await stat(keyFilePath(other))).isFile()).toBe(true);
      const jwks = JSON.parse((await run('keys', 'jwks')).out) as { keys: Array<{ alg: string }> };
      expect(jwks.keys.map((k) => k.alg)).toEqual(['ES256']);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('rotate refuses a bad duration', async () => {
    await run('keys', 'generate', '--data-dir', dir, '--algorithm', 'ES256');
    expect((await run('keys', 'rotate', '--data-dir', dir, '--grace-period', 'soon')).code).toBe(2);
    expect((await run('keys', 'rotate', '--data-dir', dir, '--activation-delay', 'soon')).code).toBe(2);
  });

  it('rotate publishes the new key at once and says which key signs until when; list shows it', async () => {
    await run('keys', 'generate', '--data-dir', dir, '--algorithm', 'EdDSA');
    const before = JSON.parse((await run('keys', 'list', '--data-dir', dir, '--json')).out) as Array<{
      kid: string;
    }>;
    const old = before[0]!.kid;
    const rotated = await run('keys', 'rotate', '--data-dir', dir, '--grace-period', '1h');
    expect(rotated.code).toBe(0);
    const [, kid, signsFrom] =
      /^new signing key (\S+) \(EdDSA\) is in the JWKS now and signs from (\S+) \(activation delay 10m\)$/m.exec(
        rotated.out,
      ) ?? [];
    expect(kid).toBeDefined();
    expect(rotated.out).toContain(`previous key ${old} signs until then and stays in the JWKS until `);
    const activates = Date.parse(signsFrom!);
    expect(activates - Date.now()).toBeGreaterThan(10 * 60_000 - 60_000);
    expect(activates - Date.now()).toBeLessThanOrEqual(10 * 60_000);

    const list = JSON.parse((await run('keys', 'list', '--data-dir', dir, '--json')).out) as Array<{
      kid: string;
      status: string;
      activates_at?: string;
      retires_at?: string;
    }>;
    // The old key signs (listed first) and leaves a grace period after the new one starts signing.
    expect(list).toEqual([
      expect.objectContaining({
        kid: old,
        status: 'active',
        retires_at: new Date(activates + 3_600_000).toISOString(),
      }),
      expect.objectContaining({ kid, status: 'published', activates_at: signsFrom }),
    ]);
    const table = (await run('keys', 'list', '--data-dir', dir)).out.split('\n');
    expect(table[2]).toMatch(new RegExp(`^${kid}\\s+EdDSA\\s+published\\s+\\S+\\s+${signsFrom}\\s+-$`));
    const jwks = JSON.parse((await run('keys', 'jwks', '--data-dir', dir)).out) as {
      keys: Array<{ kid: string }>;
    };
    expect(jwks.keys.map((k) => k.kid)).toEqual([old, kid]);
  });

  it('rotate takes keys.activation_delay from --config', async () => {
    const data = join(dir, 'data');
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      `data_dir: ${JSON.stringify(data)}\nkeys:\n  algorithm: ES256\n  activation_delay: 90s\n`,
    );
    await run('keys', 'generate', '--config', config);
    const rotated = await run('keys', 'rotate', '--config', config);
    expect(rotated.out).toMatch(/signs from \S+ \(activation delay 1m30s\)/);
  });

  it('rotate refuses keys from keys.files / keys.secrets, which the bridge does not own, and changes nothing', async () => {
    const keyFile = join(dir, 'signing.pem');
    const pem = generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }).toString();
    await writeFile(keyFile, pem, { mode: 0o600 });
    const config = join(dir, 'bridge.yaml');
    await writeFile(
      config,
      `data_dir: ${JSON.stringify(join(dir, 'data'))}\nkeys:\n  files: [${JSON.stringify(keyFile)}]\n`,
    );
    const rotated = await run('keys', 'rotate', '--config', config);
    expect(rotated.code).toBe(1);
    expect(rotated.err).toMatch(
      /keys\.files \/ keys\.secrets .*rotate them there \[SSF_ERR_KEYS_NOT_ROTATABLE\]/,
    );
    expect(await readFile(keyFile, 'utf8')).toBe(pem);
  });
});

describe('ssf-bridge keys: --data-dir', () => {
  it('refuses a data directory under /proc or /sys as the config does, instead of hanging (exit 2)', async () => {
    for (const args of [
      ['keys', 'generate', '--data-dir', '/proc/self/x'],
      ['keys', 'list', '--data-dir', '/sys/kernel/x'],
    ]) {
      const result = await run(...args);
      expect([result.code, result.err]).toEqual([
        2,
        `--data-dir ${args[3]}: must not be under /proc or /sys`,
      ]);
    }
  }, 10_000);
});

describe('ssf-bridge keys rotate beside a running bridge', () => {
  it('refuses while a bridge holds the database, which would go on signing with the keys it loaded', async () => {
    expect((await run('keys', 'generate', '--data-dir', dir)).code).toBe(0);
    const database = join(dir, 'ssf-bridge.db');
    await writeFile(database, '');
    const before = await readFile(keyFilePath(dir), 'utf8');
    // The lock a running bridge holds on its SQLite file.
    const bridge = WriterLock.acquire(database);
    try {
      const refused = await run('keys', 'rotate', '--data-dir', dir);
      expect(refused.code).toBe(1);
      expect(refused.err).toContain('a bridge is running on');
      expect(refused.err).toContain('POST /admin/keys/rotate');
      expect(await readFile(keyFilePath(dir), 'utf8')).toBe(before);
    } finally {
      bridge.release();
    }
    const rotated = await run('keys', 'rotate', '--data-dir', dir);
    expect(rotated.code).toBe(0);
    expect(await readFile(keyFilePath(dir), 'utf8')).not.toBe(before);
  });
});
