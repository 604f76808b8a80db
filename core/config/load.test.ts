import { mkdtempSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConnectorRegistry } from '../runtime/registry.ts';
import { testInbound, testOutbound } from '../../test/helpers/fake-connectors.ts';
import { loadConfigFile, loadConfigText } from './index.ts';
import { interpolateString } from './interpolate.ts';

const registry = new ConnectorRegistry([testInbound, testOutbound]);
const dir = mkdtempSync(join(tmpdir(), 'ssf-config-'));

async function problemsOf(yaml: string, env: Record<string, string> = {}) {
  const result = await loadConfigText(yaml, { registry, env, file: join(dir, 'bridge.yaml') });
  if (result.ok) throw new Error('expected the config to be refused');
  return result.problems;
}

describe('config loading', () => {
  it('reports every mistake at once, each with its path', async () => {
    const problems = await problemsOf(`
servr: {}
server:
  port: "eighty"
outbound:
  - id: out-1
    connector: test-outbound
    config:
      fail_strat: true
inbound:
  - id: in-1
    connector: test-inbund
telemetry:
  log_level: \${env:MISSING_LEVEL}
`);
    const byPath = Object.fromEntries(problems.map((p) => [p.path, p.message]));
    expect(byPath['servr']).toMatch(/unknown key "servr"; did you mean "server"/);
    expect(byPath['server.port']).toMatch(/expected number/);
    expect(byPath['outbound[0].config.fail_strat']).toMatch(/did you mean "fail_start"/);
    expect(byPath['inbound[0].connector']).toMatch(
      /unknown connector "test-inbund"; did you mean "test-inbound"/,
    );
    expect(byPath['telemetry.log_level']).toMatch(/MISSING_LEVEL is not set/);
    expect(problems.length).toBeGreaterThanOrEqual(5);
  });

  it('reports an unreadable ${file:} reference and an unreadable config file', async () => {
    const problems = await problemsOf(
      'outbound:\n  - id: o\n    connector: test-outbound\n    config: {token: "${file:./nope.txt}"}\n',
    );
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'outbound[0].config.token',
        message: expect.stringMatching(/cannot read .*nope\.txt \(ENOENT\)/),
      }),
    ]);
    const missing = await loadConfigFile(join(dir, 'absent.yaml'), { registry });
    expect(missing.ok).toBe(false);
    if (!missing.ok) expect(missing.problems[0]?.message).toMatch(/ENOENT/);
  });

  it('reads ${file:} relative to the config file and drops one trailing newline', async () => {
    writeFileSync(join(dir, 'token.txt'), 's3cr3t-value\n');
    chmodSync(join(dir, 'token.txt'), 0o600);
    const result = await loadConfigText(
      'outbound:\n  - id: o\n    connector: test-outbound\n    config: {token: "${file:token.txt}"}\n',
      { registry, file: join(dir, 'bridge.yaml'), env: {} },
    );
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const config = result.config.instances[0]?.config as { token: { reveal(): string } };
    expect(config.token.reveal()).toBe('s3cr3t-value');
  });

  it('$${ writes a literal ${, $ elsewhere is text, and a stray ${ is an error rather than kept silently', async () => {
    const ok = await loadConfigText('data_dir: "/srv/$${HOME}/$$x$/data"\n', { registry, env: {} });
    expect(ok.ok && ok.config.root.data_dir).toBe('/srv/${HOME}/$$x$/data');
    const problems = await problemsOf('data_dir: "/srv/${HOME}/x"\nissuer: "https://a.example/${"\n');
    expect(problems.map((p) => p.path).sort()).toEqual(['data_dir', 'issuer']);
    expect(problems.find((p) => p.path === 'data_dir')?.message).toMatch(/unknown reference "\$\{HOME\}"/);
    expect(problems.find((p) => p.path === 'issuer')?.message).toMatch(/unterminated/);
  });

  it('refuses a file whose aliases would expand without bound, as a problem of the file', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x]'];
    for (const [name, prev] of [
      ['b', 'a'],
      ['c', 'b'],
      ['d', 'c'],
      ['e', 'd'],
      ['f', 'e'],
      ['g', 'f'],
    ]) {
      levels.push(`${name}: &${name} [${Array(9).fill(`*${prev}`).join(', ')}]`);
    }
    expect(await problemsOf(`${levels.join('\n')}\n`)).toEqual([
      { path: '(file)', message: 'Excessive alias count indicates a resource exhaustion attack' },
    ]);
  });

  it('reports a __proto__ key as unknown rather than reading settings through it', async () => {
    const problems = await problemsOf('__proto__: {data_dir: /srv/elsewhere}\n');
    expect(problems).toEqual([expect.objectContaining({ path: '__proto__' })]);
  });

  it('refuses a data_dir under /proc or /sys, where creating it would never return', async () => {
    for (const dataDir of ['/proc/bridge', '/sys', '/proc/../proc/x']) {
      const problems = await problemsOf(`data_dir: ${dataDir}\n`);
      expect(problems, dataDir).toEqual([
        expect.objectContaining({ path: 'data_dir', message: 'must not be under /proc or /sys' }),
      ]);
    }
    expect((await loadConfigText('data_dir: /srv/processes\n', { registry, env: {} })).ok).toBe(true);
  });

  it('expands exactly once: a value that itself contains ${…} or $$ arrives intact', () => {
    const problems: { path: string; message: string }[] = [];
    const env = { env: { PASSWORD: 'p$$w${env:OTHER}rd', OTHER: 'x' }, baseDir: dir };
    expect(interpolateString('${env:PASSWORD}', 'p', env, problems)).toBe('p$$w${env:OTHER}rd');
    expect(interpolateString('${env:UNSET:-fallback}', 'p', env, problems)).toBe('fallback');
    expect(problems).toEqual([]);
  });

  it('never echoes secret values in problems', async () => {
    const problems = await problemsOf(
      'outbound:\n  - id: o\n    connector: test-outbound\n    config: {token: 12345678, fail_start: "Sup3rSecretValue"}\n',
    );
    expect(problems.length).toBe(2);
    expect(JSON.stringify(problems)).not.toMatch(/12345678|Sup3rSecretValue/);
  });

  it('refuses one value as both an admin token and an SSF receiver token, naming paths, not the value', async () => {
    const shared = 'shared-token-0123456789abcdef';
    const problems = await problemsOf(`
transmitter:
  receivers:
    - client_id: okta
      token: other-receiver-token-0001
    - client_id: apple
      token: ${shared}
admin:
  tokens:
    - name: ops
      role: write
      token: ${shared}
`);
    expect(problems).toEqual([
      {
        path: 'admin.tokens[0].token',
        message: expect.stringMatching(/same value as transmitter\.receivers\[1\]\.token/),
      },
    ]);
    expect(JSON.stringify(problems)).not.toContain(shared);
  });

  it('refuses a connector listed under the wrong kind and duplicate ids', async () => {
    const problems = await problemsOf(
      'inbound:\n  - {id: x, connector: test-outbound}\noutbound:\n  - {id: x, connector: test-outbound}\n',
    );
    expect(problems).toEqual(
      expect.arrayContaining([
        { path: 'inbound[0].connector', message: expect.stringMatching(/is an outbound connector/) },
        { path: 'outbound[0].id', message: 'id "x" is already used by inbound[0]' },
      ]),
    );
  });

  it('returns a frozen, typed config with defaults applied', async () => {
    const result = await loadConfigText(
      'server: {port: 9090}\noutbound:\n  - {id: o, connector: test-outbound}\n',
      {
        registry,
        env: {},
      },
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.root.server).toMatchObject({
      port: 9090,
      host: '127.0.0.1',
      request_timeout: 30_000,
    });
    expect(Object.isFrozen(result.config.root.server)).toBe(true);
    expect(() => {
      (result.config.root.server as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(result.config.instances[0]).toMatchObject({ id: 'o', kind: 'outbound', enabled: true });
  });

  it('reports YAML syntax errors with a line and without echoing the file', async () => {
    const problems = await problemsOf('server:\n  port: 1\n token: "AbcSecretToken\n');
    expect(problems[0]?.path).toMatch(/^line \d+, column \d+$/);
    expect(JSON.stringify(problems)).not.toContain('AbcSecretToken');
  });

  // Typos a person makes in a config, each next to a secret: yaml's own messages quote tokens and
  // scalars of the file (`Unexpected scalar token in YAML stream: "<text>"`).
  const SECRET = 'Zq9SECRETvalue4217';
  it.each([
    ['a stray }', `server:\n  port: 8080\n  tls: {cert: a}}\n  token: ${SECRET}\n`, 3],
    ['a stray } in a nested mapping', `a:\n  b: {c: 1}}\n  d: ${SECRET}\n`, 2],
    ['a key indented too little', `server:\n  port: 8080\n token: ${SECRET}\n`, 3],
    [
      'a key indented one space short',
      `inbound:\n  - id: a\n    config:\n      t: x\n     s: ${SECRET}\n`,
      5,
    ],
    ['an unclosed double quote', `server:\n  port: 1\ntoken: "${SECRET}\nother: 1\n`, 5],
    ['an unclosed single quote', `server:\n  port: 1\ntoken: '${SECRET}\n`, 4],
    ['a tab as indentation', `server:\n\ttoken: ${SECRET}\n`, 2],
    ['a duplicate key', `token: ${SECRET}\ntoken: ${SECRET}\n`, 2],
    ['": " inside a plain value', `server:\n  token: ab: ${SECRET}\n`, 2],
    ['": " inside a plain key', `token: ${SECRET}: x\n`, 1],
    ['text after a closing quote', `token: "abc" ${SECRET}\n`, 1],
    ['an unclosed [', `hosts: [a, ${SECRET}\nport: 1\n`, 2],
    ['a bad escape in double quotes', `token: "\\q${SECRET}"\n`, 1],
    ['a reserved first character', `token: @${SECRET}\n`, 1],
    ['text after a block scalar indicator', `token: |x${SECRET}\n  y\n`, 1],
    ['an alias to no anchor', `a: 1\ntoken: *${SECRET}\n`, 2],
    ['a second document', `a: 1\n---\ntoken: ${SECRET}\n`, 2],
  ])('never echoes file text in a YAML syntax problem: %s', async (_typo, yaml, line) => {
    const problems = await problemsOf(yaml);
    expect(JSON.stringify(problems)).not.toContain(SECRET);
    expect(problems[0]?.path).toMatch(new RegExp(`^line ${line}, column \\d+$`));
    for (const p of problems) expect(p.message).not.toMatch(/token in YAML/);
  });
});
