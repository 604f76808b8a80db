/**
 * Where `plugins:` entries are found: from the config file's folder first, then the working
 * directory, then the bridge's own location; paths relative to the config file. The fixtures live
 * in a temporary folder outside the repository, as an operator's project would, and the CLI is
 * run from the repository, as a globally installed or linked bridge is.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConnectorRegistry, loadPlugins, resolvePlugin } from './registry.ts';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(REPO, 'core/cli/bin.cjs');

let work: string;
/** The operator's project: bridge.yaml and its own node_modules. */
let project: string;
/** Where the operator runs the bridge from: not the project. */
let elsewhere: string;

function write(file: string, text: string): void {
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, text);
}

/** An inbound connector module (ES module, importing the plugin API as a package does). */
function connectorSource(id: string): string {
  return [
    "import { defineConnector, z } from 'ssf-bridge/plugin-api';",
    'export default defineConnector({',
    `  manifest: { id: '${id}', kind: 'inbound', version: '1.0.0', stability: 'development',`,
    `    displayName: '${id}', description: 'Plugin resolution test connector.',`,
    "    emits: ['caep.session-revoked'], capabilities: { webhook: true } },",
    '  configSchema: z.strictObject({ tenant: z.string().min(1) }),',
    "  examples: [{ title: 'One tenant', config: { tenant: 'acme' } }],",
    '  map(record, config) {',
    "    return { events: [{ type: 'caep.session-revoked',",
    "      subject: { format: 'email', email: record.user },",
    '      sourceRecordId: `${config.tenant}:${record.id}`, occurredAt: record.at }] };',
    '  },',
    '  create() { return { async start() {}, async stop() {}, async handleWebhook() { return { status: 404 }; } }; },',
    '});',
    '',
  ].join('\n');
}

function run(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
  });
}

beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'ssf-bridge-plugins-')));
  project = join(work, 'project');
  elsewhere = join(work, 'elsewhere');
  mkdirSync(elsewhere, { recursive: true });
  // The plugin API comes from the bridge the package peers with (npm link ssf-bridge).
  mkdirSync(join(project, 'node_modules'), { recursive: true });
  symlinkSync(REPO, join(project, 'node_modules', 'ssf-bridge'));
  // An ESM-only package: its exports answer `import` alone, so a CommonJS lookup would fail.
  const pkg = join(project, 'node_modules', '@acme', 'ssf-bridge-connector-signals');
  write(
    join(pkg, 'package.json'),
    JSON.stringify({
      name: '@acme/ssf-bridge-connector-signals',
      version: '1.0.0',
      type: 'module',
      exports: {
        '.': { types: './dist/index.d.ts', import: './dist/index.js' },
        './extra/*': { import: './dist/extra/*.js' },
        './package.json': './package.json',
      },
      main: './dist/not-this.cjs',
    }),
  );
  write(join(pkg, 'dist', 'index.js'), connectorSource('acme-signals'));
  write(join(pkg, 'dist', 'extra', 'audit.js'), connectorSource('acme-audit'));
  write(join(project, 'connectors', 'local-feed.mjs'), connectorSource('local-feed'));
  // A package folder named by path, with only `main`.
  write(
    join(project, 'vendored', 'hr', 'package.json'),
    JSON.stringify({ name: 'hr', main: 'lib/main.mjs' }),
  );
  write(join(project, 'vendored', 'hr', 'lib', 'main.mjs'), connectorSource('vendored-hr'));
  write(
    join(project, 'bridge.yaml'),
    [
      'data_dir: ./data',
      'plugins:',
      '  - "@acme/ssf-bridge-connector-signals"',
      '  - ./connectors/local-feed.mjs',
      'inbound:',
      '  - { id: signals, connector: acme-signals, config: { tenant: acme } }',
      '  - { id: feed, connector: local-feed, config: { tenant: feed } }',
      'outbound:',
      '  - { id: stdout, connector: log }',
      'routes:',
      '  - { from: [signals, feed], to: [stdout] }',
      '',
    ].join('\n'),
  );
  write(join(project, 'missing.yaml'), 'plugins: [ssf-bridge-connector-absent, ./connectors/nope.mjs]\n');
  write(
    join(project, 'payload.json'),
    JSON.stringify({ id: 'a-1', user: 'ana.lima@example.com', at: '2026-05-05T07:45:00Z' }),
  );
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('resolvePlugin', () => {
  it("finds a package in the config file's node_modules, through its exports' import condition", () => {
    const found = resolvePlugin('@acme/ssf-bridge-connector-signals', { configDir: project, cwd: elsewhere });
    expect(found).toEqual({
      ok: true,
      url: pathToFileURL(join(project, 'node_modules/@acme/ssf-bridge-connector-signals/dist/index.js')).href,
      from: join(project, 'node_modules/@acme/ssf-bridge-connector-signals'),
    });
    const sub = resolvePlugin('@acme/ssf-bridge-connector-signals/extra/audit', { configDir: project });
    expect(sub.ok && sub.url).toBe(
      pathToFileURL(join(project, 'node_modules/@acme/ssf-bridge-connector-signals/dist/extra/audit.js'))
        .href,
    );
    const hidden = resolvePlugin('@acme/ssf-bridge-connector-signals/dist/index.js', { configDir: project });
    expect(hidden.ok).toBe(false);
    expect(!hidden.ok && hidden.message).toMatch(/does not export "\.\/dist\/index\.js"/);
  });

  it('looks in the working directory, then the bridge, after the config folder', () => {
    const config = join(work, 'configs');
    mkdirSync(config, { recursive: true });
    // Not next to the config: found from the working directory.
    const fromCwd = resolvePlugin('@acme/ssf-bridge-connector-signals', { configDir: config, cwd: project });
    expect(fromCwd.ok && fromCwd.from).toBe(join(project, 'node_modules/@acme/ssf-bridge-connector-signals'));
    // Neither: the bridge's own node_modules (a bundled package).
    const bundled = resolvePlugin('yaml', { configDir: config, cwd: elsewhere });
    expect(bundled.ok && bundled.from).toBe(join(REPO, 'node_modules/yaml'));
    // The config folder wins over both.
    write(
      join(config, 'node_modules/yaml/package.json'),
      JSON.stringify({ name: 'yaml', exports: './y.js' }),
    );
    write(join(config, 'node_modules/yaml/y.js'), 'export default 1;\n');
    const local = resolvePlugin('yaml', { configDir: config, cwd: project });
    expect(local.ok && local.url).toBe(pathToFileURL(join(config, 'node_modules/yaml/y.js')).href);
  });

  it('takes a path from the config file: a file, a package folder, an absolute path or a file: URL', () => {
    const file = join(project, 'connectors/local-feed.mjs');
    for (const entry of ['./connectors/local-feed.mjs', file, pathToFileURL(file).href]) {
      expect(resolvePlugin(entry, { configDir: project, cwd: elsewhere })).toMatchObject({
        ok: true,
        url: pathToFileURL(file).href,
      });
    }
    expect(resolvePlugin('../vendored/hr', { configDir: join(project, 'connectors') })).toMatchObject({
      ok: true,
      url: pathToFileURL(join(project, 'vendored/hr/lib/main.mjs')).href,
    });
    // Without a config file (the quickstart), from the working directory.
    expect(resolvePlugin('./connectors/local-feed.mjs', { cwd: project })).toMatchObject({ ok: true });
  });

  it('says where it looked and how to fix it when nothing is found', () => {
    const missing = resolvePlugin('ssf-bridge-connector-absent', {
      configDir: project,
      cwd: elsewhere,
      bridgeDir: join(REPO, 'core/runtime'),
    });
    expect(missing).toEqual({
      ok: false,
      message:
        `no package "ssf-bridge-connector-absent" in the node_modules folders of ${project} (the config file's folder), ` +
        `${elsewhere} (the working directory), ${join(REPO, 'core/runtime')} (the bridge's own location), ` +
        `nor of the folders above them; install it next to the config file (cd ${project} && npm install ssf-bridge-connector-absent), ` +
        'or name its folder or entry file by a path relative to the config file (./path/to/it)',
    });
    const path = resolvePlugin('./connectors/nope.mjs', { configDir: project, cwd: elsewhere });
    expect(!path.ok && path.message).toBe(
      `${join(project, 'connectors/nope.mjs')} does not exist (relative to the config file's folder ${project}); ` +
        'fix the path, or name an installed package instead',
    );
    const folder = resolvePlugin('./connectors', { configDir: project });
    expect(!folder.ok && folder.message).toMatch(/is a folder without a package\.json/);
  });
});

describe('loadPlugins', () => {
  it('imports what it resolved and names the entry and its place in each failure', async () => {
    const registry = new ConnectorRegistry();
    const imported: string[] = [];
    const failures = await loadPlugins(
      registry,
      ['./connectors/local-feed.mjs', 'absent-pkg', './bridge.yaml'],
      {
        configDir: project,
        cwd: elsewhere,
        importer: async (url) => {
          imported.push(url);
          if (url.endsWith('.yaml')) throw new Error('Unknown file extension ".yaml"');
          return {};
        },
      },
    );
    expect(imported).toEqual([
      pathToFileURL(join(project, 'connectors/local-feed.mjs')).href,
      pathToFileURL(join(project, 'bridge.yaml')).href,
    ]);
    expect(failures.map((f) => [f.index, f.message.split(':')[0]])).toEqual([
      [
        0,
        `plugin "./connectors/local-feed.mjs" (${join(project, 'connectors/local-feed.mjs')}) exports no connector definition (use defineConnector)`,
      ],
      [1, 'cannot load plugin "absent-pkg"'],
      [2, `cannot load plugin "./bridge.yaml" (${join(project, 'bridge.yaml')})`],
    ]);
  });
});

// The bridge run from the repository (a global install or a link), the config and its packages
// in the operator's project, the command started from yet another folder.
describe.concurrent('commands that take a config find its plugins the same way', () => {
  it('validate', async () => {
    const result = await run(['validate', '--config', join(project, 'bridge.yaml')], elsewhere);
    expect(result.stderr).toBe('');
    expect(result.stdout).toContain('valid (2 inbound, 1 outbound instances)');
    expect(result.code).toBe(0);
  }, 60_000);

  it('connectors list --config', async () => {
    const result = await run(['connectors', 'list', '--config', join(project, 'bridge.yaml')], elsewhere);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^acme-signals\s+inbound\s+1\.0\.0/m);
    expect(result.stdout).toMatch(/^local-feed\s+inbound/m);
    expect(result.stdout).toMatch(/^log\s+outbound/m);
  }, 60_000);

  it('simulate --config', async () => {
    const result = await run(
      [
        'simulate',
        '--config',
        join(project, 'bridge.yaml'),
        '--connector',
        'acme-signals',
        join(project, 'payload.json'),
      ],
      elsewhere,
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('https://schemas.openid.net/secevent/caep/event-type/session-revoked');
    expect(result.stdout).toContain('ana.lima@example.com');
  }, 60_000);

  it('run refuses a config whose plugin is missing, saying where it looked', async () => {
    const result = await run(['run', '--config', join(project, 'missing.yaml')], elsewhere);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(
      `plugins[0]: cannot load plugin "ssf-bridge-connector-absent": no package "ssf-bridge-connector-absent" in the node_modules folders of ${project} (the config file's folder), ${elsewhere} (the working directory), ${join(REPO, 'core/runtime')} (the bridge's own location)`,
    );
    expect(result.stderr).toContain(`cd ${project} && npm install ssf-bridge-connector-absent`);
    expect(result.stderr).toContain(
      `plugins[1]: cannot load plugin "./connectors/nope.mjs": ${join(project, 'connectors/nope.mjs')} does not exist`,
    );
  }, 60_000);
});
