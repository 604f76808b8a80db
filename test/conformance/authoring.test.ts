/**
 * Connector authoring end to end, in a temporary copy of the repository (its node_modules linked):
 * scaffolded first-party connectors pass the repository's checks, a scaffolded package passes its
 * own tests and is loaded through `plugins:` by a running bridge that delivers through it, and
 * docs/connector-authoring.md is followed step by step, exactly as written.
 */
import { spawn } from 'node:child_process';
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorDefinition } from '../../core/plugin-api/index.ts';
import type * as docsModule from '../../core/plugin-api/testing/docs.ts';
import { MockServer } from '../../core/plugin-api/testing/index.ts';

/** The generator as the copy has it (loaded from the copy, typed from here). */
type DocsModule = typeof docsModule;

const MAIN = fileURLToPath(new URL('../../', import.meta.url));
const MAIN_MODULES = join(MAIN, 'node_modules');
/** Top-level entries never copied: installed modules, history, local data. */
const NOT_COPIED = new Set(['node_modules', '.git', '.tmp', 'data', 'coverage', 'dist']);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Each test's child processes run in process groups of their own; whatever a test leaves running
 * (it timed out, say) is stopped before its files are removed.
 */
const running = new Set<number>();

function stopGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** Runs a command without blocking this process (the mock servers answer meanwhile). */
function run(command: string, cwd: string, env: NodeJS.ProcessEnv = process.env): Promise<Run> {
  return new Promise((done) => {
    const child = spawn('sh', ['-c', command], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = child.pid;
    if (pid !== undefined) running.add(pid);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => {
      if (pid !== undefined) running.delete(pid);
      done({ code, stdout, stderr });
    });
  });
}

async function succeed(command: string, cwd: string, env?: NodeJS.ProcessEnv): Promise<Run> {
  const result = await run(command, cwd, env);
  if (result.code !== 0) {
    throw new Error(`${command} (in ${cwd}) exited ${result.code}\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

/** A process left running (a bridge), stopped by signalling its process group. */
class Service {
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;
  readonly #child;

  constructor(command: string, cwd: string, env: NodeJS.ProcessEnv) {
    this.#child = spawn('sh', ['-c', `exec ${command}`], {
      cwd,
      env,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const pid = this.#child.pid;
    if (pid !== undefined) running.add(pid);
    this.#child.stdout.on('data', (c: Buffer) => (this.stdout += c.toString()));
    this.#child.stderr.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((done) =>
      this.#child.on('close', (code) => {
        if (pid !== undefined) running.delete(pid);
        done(code);
      }),
    );
  }

  /** Long enough for a bridge to start on a slow, busy machine (start-up alone took 15 s on one). */
  async waitFor(test: (stdout: string) => boolean, timeoutMs = 120_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!test(this.stdout)) {
      if (Date.now() > until) throw new Error(`timed out; stdout:\n${this.stdout}\nstderr:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async stop(): Promise<void> {
    if (this.#child.pid !== undefined && this.#child.exitCode === null)
      process.kill(-this.#child.pid, 'SIGTERM');
    await this.exited;
  }
}

/** A node_modules folder of links to the repository's modules, plus `extra` links. */
function linkModules(
  dir: string,
  extra: Record<string, string> = {},
  bins: Record<string, string> = {},
): void {
  mkdirSync(join(dir, '.bin'), { recursive: true });
  for (const name of readdirSync(MAIN_MODULES)) {
    if (name === '.bin' || existsSync(join(dir, name))) continue;
    symlinkSync(join(MAIN_MODULES, name), join(dir, name));
  }
  for (const name of readdirSync(join(MAIN_MODULES, '.bin'))) {
    if (!existsSync(join(dir, '.bin', name))) {
      symlinkSync(realpathSync(join(MAIN_MODULES, '.bin', name)), join(dir, '.bin', name));
    }
  }
  for (const [name, target] of Object.entries(extra)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    if (!existsSync(join(dir, name))) symlinkSync(target, join(dir, name));
  }
  for (const [name, target] of Object.entries(bins)) {
    if (!existsSync(join(dir, '.bin', name))) symlinkSync(target, join(dir, '.bin', name));
  }
}

/** The vendor alerts API every scaffolded inbound connector polls (see plugin-template). */
function serveAlerts(server: MockServer, alerts: Array<{ id: string }>): void {
  server.on('GET', '/v1/alerts', (req) => {
    const start = req.query.after ? alerts.findIndex((a) => a.id === req.query.after) + 1 : 0;
    const limit = Number(req.query.limit ?? 100);
    return { body: { alerts: alerts.slice(start, start + limit), has_more: start + limit < alerts.length } };
  });
}

let work: string;
const servers: MockServer[] = [];

async function mockServer(): Promise<MockServer> {
  const server = await new MockServer().start();
  servers.push(server);
  return server;
}

interface Checkout {
  repo: string;
  /** PATH with `ssf-bridge` on it, as `npm install --global ssf-bridge` provides it. */
  path: string;
}

/** A copy of the repository for one test, so tests that change it can run side by side. */
function checkout(name: string): Checkout {
  const repo = join(work, name, 'repo');
  cpSync(MAIN, repo, {
    recursive: true,
    filter: (src) => !NOT_COPIED.has(relative(MAIN, src).split('/')[0] ?? ''),
  });
  linkModules(join(repo, 'node_modules'));
  const bin = join(work, name, 'bin');
  mkdirSync(bin);
  writeFileSync(join(bin, 'ssf-bridge'), `#!/bin/sh\nexec node "${repo}/core/cli/bin.cjs" "$@"\n`);
  chmodSync(join(bin, 'ssf-bridge'), 0o755);
  return { repo, path: `${bin}:${process.env.PATH ?? ''}` };
}

beforeAll(() => {
  work = realpathSync(mkdtempSync(join(tmpdir(), 'ssf-bridge-authoring-')));
});

afterAll(async () => {
  for (const pid of running) stopGroup(pid);
  for (const server of servers) await server.close();
  if (work) rmSync(work, { recursive: true, force: true, maxRetries: 10 });
});

interface Step {
  kind: 'sh' | 'server' | 'file';
  text: string;
  file?: string;
}

/** The tutorial's steps: `sh` blocks run line by line, `sh server` blocks keep running, `file=` blocks are written. */
function tutorialSteps(markdown: string): Step[] {
  const steps: Step[] = [];
  for (const m of markdown.matchAll(/^```(\w+)([^\n]*)\n([\s\S]*?)^```$/gm)) {
    const [, lang, info = '', text = ''] = m;
    const file = /file=(\S+)/.exec(info)?.[1];
    if (file) steps.push({ kind: 'file', file, text });
    else if (lang === 'sh') steps.push({ kind: info.trim() === 'server' ? 'server' : 'sh', text });
  }
  return steps;
}

/**
 * `npm install` without a registry: the same layout npm would make, from the repository's
 * modules. A tarball is unpacked into node_modules; ssf-bridge is linked to the checkout, as
 * `npm install <folder>` links it.
 */
async function offlineInstall(repo: string, cwd: string, args: string[]): Promise<void> {
  const extra: Record<string, string> = { 'ssf-bridge': repo };
  const bins = { 'ssf-bridge': join(repo, 'core/cli/bin.cjs') };
  for (const arg of args.filter((a) => a.endsWith('.tgz'))) {
    const unpacked = join(work, `unpacked-${Date.now()}`);
    mkdirSync(unpacked);
    await succeed(`tar -xzf ${resolve(cwd, arg)} -C ${unpacked}`, cwd);
    const name = (
      JSON.parse(readFileSync(join(unpacked, 'package/package.json'), 'utf8')) as { name: string }
    ).name;
    mkdirSync(join(cwd, 'node_modules'), { recursive: true });
    renameSync(join(unpacked, 'package'), join(cwd, 'node_modules', name));
  }
  linkModules(join(cwd, 'node_modules'), extra, bins);
}

/** Inputs of the fixtures a vendor API would serve (not the malformed ones). */
function fixtureRecords(dir: string): Array<{ id: string }> {
  return readdirSync(dir)
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as { input: { id: string }; expect: object })
    .filter((f) => !('rejected' in f.expect))
    .map((f) => f.input);
}

/**
 * What plugin-template/inbound/README.md has a connector that only polls delete, done to the
 * connector in `dir`: webhook.ts and everything that uses it. Each cut must find its text, so a
 * template that moves on fails here until the README (and this list) follow it.
 */
function removeWebhooks(dir: string): void {
  const cut = (file: string, ...parts: RegExp[]) => {
    let text = readFileSync(join(dir, file), 'utf8');
    for (const part of parts) {
      expect(text, `${file} has ${part}`).toMatch(part);
      text = text.replace(part, '');
    }
    writeFileSync(join(dir, file), text);
  };
  rmSync(join(dir, 'webhook.ts'));
  cut(
    'connector.ts',
    /^import \{ createWebhookHandler \} from '\.\/webhook\.ts';\n/m,
    /^ *handleWebhook: .*\n/m,
  );
  cut(
    'fake-api.ts',
    /^import \{[^}]*\} from '\.\/webhook\.ts';\n/m,
    /^const WEBHOOK_SECRET = .*\n/m,
    /^ *webhook_secret: WEBHOOK_SECRET,\n/m,
    /^ {2}webhook: \{\n[\s\S]*?^ {2}\},\n/m,
  );
  cut('config.ts', /^ {2}webhook_secret: secret\([\s\S]*?\)\.optional\(\),\n/m);
  cut('index.ts', /webhook: true, /);
}

// Each test has its own checkout; they run side by side, since most of their time is spent
// waiting on child processes. Each runs a whole toolchain (vitest, tsc, eslint, bridges): on a
// slow machine busy with the rest of the suite that took over three minutes, hence ten.
describe.concurrent('connector authoring', () => {
  it('scaffolds first-party connectors that pass the kit, lint, format and type checks, with docs', async () => {
    const { repo } = checkout('first-party');
    await succeed('node core/cli/bin.cjs new connector acme-edr --kind inbound --name "Acme EDR"', repo);
    await succeed('node core/cli/bin.cjs new connector acme-push --kind outbound', repo);
    // A connector that only polls, as the template's README says to make one: then `npm run docs`.
    await succeed('node core/cli/bin.cjs new connector acme-poll --kind inbound', repo);
    removeWebhooks(join(repo, 'connectors/acme-poll'));
    await succeed('npm run docs', repo);
    expect(readFileSync(join(repo, 'connectors/index.ts'), 'utf8')).toMatch(
      /import \{ acmeEdrConnector \} from '\.\/acme-edr\/index\.ts';[\s\S]*acmeEdrConnector,\s*acmePushConnector,\s*acmePollConnector,?\s*\]/,
    );
    expect(JSON.parse(readFileSync(join(repo, 'connectors/acme-edr/template.json'), 'utf8'))).toEqual({
      template: 'inbound',
      version: JSON.parse(readFileSync(join(MAIN, 'plugin-template/template.json'), 'utf8')).version,
    });
    // The scaffold wrote the new connectors' docs: regenerating them (with the copy's own
    // generator and definitions) changes nothing.
    const load = (file: string) =>
      import(pathToFileURL(join(repo, file)).href) as Promise<Record<string, unknown>>;
    const { repositoryDocs } = (await load('core/plugin-api/testing/docs.ts')) as unknown as DocsModule;
    const connectors = [
      (await load('connectors/acme-edr/index.ts')).acmeEdrConnector,
      (await load('connectors/acme-push/index.ts')).acmePushConnector,
      (await load('connectors/acme-poll/index.ts')).acmePollConnector,
    ] as ConnectorDefinition[];
    expect(connectors[2]?.manifest.capabilities).toEqual({ poll: true, check: true });
    const generated = await repositoryDocs(repo, { connectors });
    const pages = generated.filter((f) => f.file.includes('acme-'));
    expect(pages.map((f) => relative(repo, f.file)).sort()).toEqual([
      'docs/connectors/acme-edr.md',
      'docs/connectors/acme-poll.md',
      'docs/connectors/acme-push.md',
      'docs/schemas/acme-edr.config.schema.json',
      'docs/schemas/acme-poll.config.schema.json',
      'docs/schemas/acme-push.config.schema.json',
    ]);
    for (const page of pages) expect(readFileSync(page.file, 'utf8')).toBe(page.content);
    expect(readFileSync(join(repo, 'docs/connectors/index.md'), 'utf8')).toMatch(
      /\[Acme EDR\]\(acme-edr\.md\)[\s\S]*\[Acme Push\]\(acme-push\.md\)/,
    );
    // Type-checked with the project's settings, from the new connectors and the registry down.
    const project = { extends: './tsconfig.json', include: ['connectors/acme-*', 'connectors/index.ts'] };
    writeFileSync(join(repo, 'tsconfig.scaffolded.json'), JSON.stringify(project));
    const paths = 'connectors/acme-edr connectors/acme-push connectors/acme-poll connectors/index.ts';
    const [tests, types] = await Promise.all([
      succeed(
        'npx vitest run connectors/acme-edr connectors/acme-push connectors/acme-poll test/conformance/coverage.test.ts',
        repo,
      ),
      run('npx tsc --noEmit -p tsconfig.scaffolded.json', repo),
      succeed(`npx eslint --max-warnings 0 ${paths}`, repo),
      succeed(`npx prettier --check ${paths} docs/schemas/acme-*.json`, repo),
    ]);
    expect(tests.stdout).toMatch(/acme-edr\/conformance\.test\.ts/);
    expect(tests.stdout).toMatch(/acme-poll\/conformance\.test\.ts/);
    expect(types.stdout.split('\n').filter((l) => /connectors\/(acme-|index\.ts)/.test(l))).toEqual([]);
  }, 600_000);

  it('scaffolds a package that passes its tests, loads through plugins: and delivers an event', async () => {
    const { repo } = checkout('third-party');
    const pkg = join(work, 'third-party', 'acme-signals');
    await succeed(`node core/cli/bin.cjs new connector acme-signals --kind outbound --out ${pkg}`, repo);
    linkModules(join(pkg, 'node_modules'), { 'ssf-bridge': repo });
    // `npm test` type-checks the package before running its tests.
    const tested = await succeed('npm test', pkg);
    expect(tested.stdout).toContain('tsc --noEmit');
    // So does an inbound package, as scaffolded and with only polling left (its README's steps).
    const inbound = join(work, 'third-party', 'acme-alerts');
    await succeed(`node core/cli/bin.cjs new connector acme-alerts --kind inbound --out ${inbound}`, repo);
    linkModules(join(inbound, 'node_modules'), { 'ssf-bridge': repo });
    await succeed('npm run typecheck', inbound);
    removeWebhooks(inbound);
    await succeed('npm run typecheck', inbound);

    const vendor = await mockServer();
    const actions: unknown[] = [];
    vendor.on('POST', '/v1/actions', (req) => {
      actions.push(req.json);
      return { status: 202, body: { status: 'queued' } };
    });
    // Installed in the operator's own folder, beside the config; the bridge runs from the checkout.
    const dir = join(work, 'third-party', 'bridge');
    mkdirSync(join(dir, 'node_modules'), { recursive: true });
    symlinkSync(pkg, join(dir, 'node_modules', 'ssf-bridge-connector-acme-signals'));
    writeFileSync(
      join(dir, 'bridge.yaml'),
      [
        'data_dir: ./data',
        'server: { host: 127.0.0.1, port: 0 }',
        'plugins: [ssf-bridge-connector-acme-signals]',
        'inbound:',
        '  - { id: playbooks, connector: events-api, config: { token: playbook-token-4411 } }',
        'outbound:',
        `  - { id: acme, connector: acme-signals, config: { base_url: '${vendor.url}', api_token: vendor-token-8812 } }`,
        'routes:',
        '  - { from: [playbooks], to: [acme] }',
        '',
      ].join('\n'),
    );
    const bridge = new Service(`node ${repo}/core/cli/bin.cjs run --config bridge.yaml`, dir, process.env);
    try {
      await bridge.waitFor((out) => out.includes('ssf-bridge listening'));
      const url = /"url":"(http:\/\/[^"]+)"/.exec(bridge.stdout)?.[1];
      const response = await fetch(`${url}/ingest/playbooks`, {
        method: 'POST',
        headers: { authorization: 'Bearer playbook-token-4411', 'content-type': 'application/json' },
        body: JSON.stringify({
          type: 'caep.session-revoked',
          subject: { format: 'email', email: 'ana.lima@example.com' },
          id: 'case-5150',
        }),
      });
      expect(response.status).toBe(202);
      const until = Date.now() + 20_000;
      while (actions.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(actions).toEqual([
        { action: 'revoke_sessions', user: 'ana.lima@example.com', reference: expect.any(String) },
      ]);
    } finally {
      await bridge.stop();
    }
  }, 600_000);

  it('follows docs/connector-authoring.md step by step, exactly as written', async () => {
    const { repo, path } = checkout('tutorial');
    const steps = tutorialSteps(readFileSync(join(MAIN, 'docs/connector-authoring.md'), 'utf8'));
    expect(steps.map((s) => s.kind)).toContain('server');
    const vendor = await mockServer();
    const env = {
      ...process.env,
      PATH: path,
      ACME_API_URL: vendor.url,
      ACME_API_TOKEN: 'acme-token-6d02',
      BRIDGE_PORT: '0',
    };
    const home = join(work, 'tutorial', 'work');
    mkdirSync(home);
    let cwd = home;
    const outputs: string[] = [];
    for (const step of steps) {
      if (step.kind === 'file') {
        mkdirSync(dirname(join(cwd, step.file ?? '')), { recursive: true });
        writeFileSync(join(cwd, step.file ?? ''), step.text);
        continue;
      }
      for (const line of step.text.split('\n').filter((l) => l.trim())) {
        if (line.startsWith('cd ')) cwd = resolve(cwd, line.slice(3).trim());
        else if (/^npm install\b/.test(line)) await offlineInstall(repo, cwd, line.split(/\s+/).slice(2));
        else if (step.kind === 'sh') outputs.push((await succeed(line, cwd, env)).stdout);
        else {
          // The bridge polls the fake vendor API, which serves the package's own fixtures.
          serveAlerts(vendor, fixtureRecords(join(home, 'acme-edr', 'fixtures')));
          const bridge = new Service(line, cwd, env);
          try {
            await bridge.waitFor(
              (out) => out.includes('"delivered_set"') && out.includes('li.wei@example.com'),
            );
          } finally {
            await bridge.stop();
          }
        }
      }
    }
    // The simulate step shows the event the tutorial's new mapping produces.
    expect(outputs.join('\n')).toContain(
      'https://schemas.openid.net/secevent/caep/event-type/credential-change',
    );
  }, 600_000);
});
