import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { testInbound, testOutbound } from '../../test/helpers/fake-connectors.ts';
import { ConnectorRegistry } from '../runtime/registry.ts';
import { loadConfigFile, loadConfigText, type LoadResult } from './index.ts';

const registry = new ConnectorRegistry([testInbound, testOutbound]);
const dir = mkdtempSync(join(tmpdir(), 'ssf-config-guards-'));

const load = (yaml: string, env: Record<string, string> = {}) => loadConfigText(yaml, { registry, env });

function problemsOf(result: LoadResult) {
  if (result.ok) throw new Error('expected the config to be refused');
  return result.problems;
}

const withToken = (value: string) =>
  `outbound:\n  - id: o\n    connector: test-outbound\n    config:\n      token: ${value}\n`;

describe('YAML tags', () => {
  it('refuses !env and !secret, pointing to ${env:NAME}', async () => {
    for (const tag of ['!env', '!secret', '!ENV']) {
      const problems = problemsOf(await load(withToken(`${tag} INGEST_TOKEN`)));
      expect(problems, tag).toEqual([
        { path: 'line 5, column 14', message: expect.stringMatching(/\$\{env:NAME\}/) },
      ]);
    }
  });

  it.each([
    ['!!binary', 'b: !!binary aGVsbG8=\n', /!!binary is not supported/],
    ['!!set', 's: !!set {a, b}\n', /!!set is not supported/],
    ['!!omap', 'o: !!omap [a: 1]\n', /!!omap is not supported/],
    ['!!timestamp', 't: !!timestamp 2020-01-01\n', /!!timestamp is not supported/],
    ['!!binary under %YAML 1.1', '%YAML 1.1\n---\nb: !!binary aGVsbG8=\n', /!!binary is not supported/],
    ['a custom tag', 'c: !acme/Thing x\n', /unknown tag/],
    ['a %TAG-named tag', '%TAG !e! tag:example.com,2000:\n---\nc: !e!thing x\n', /unknown tag/],
    ['a value its core tag does not fit', 'f: !!int abc\n', /does not fit its tag !!int/],
  ])('refuses %s', async (_what, yaml, message) => {
    const problems = problemsOf(await load(yaml));
    expect(problems).toEqual([
      { path: expect.stringMatching(/^line \d+, column \d+$/), message: expect.stringMatching(message) },
    ]);
  });

  it('never echoes the text of an unknown tag', async () => {
    const problems = problemsOf(await load('token: !Zq9SECRETvalue4217 x\n'));
    expect(JSON.stringify(problems)).not.toContain('Zq9SECRET');
  });

  it('keeps the core tags working', async () => {
    const result = await load(
      'server: !!map {port: !!int "9090", host: !!str 127.0.0.1}\ndata_dir: ! ./d\ninbound: !!seq []\n',
    );
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.root.server).toMatchObject({ port: 9090, host: '127.0.0.1' });
    expect(result.config.root.data_dir).toBe('./d');
  });

  it('names a merge key (<<) as unsupported, with what to write instead', async () => {
    const problems = problemsOf(
      await load('defaults: &base {host: 127.0.0.1}\nserver:\n  <<: *base\n  port: 9090\n'),
    );
    expect(problems).toContainEqual({
      path: 'server.<<',
      message: expect.stringMatching(/^YAML merge keys \(<<\) are not supported .*anchor/),
    });
  });

  it('reads YAML 1.2 core types whatever %YAML line the file has', async () => {
    const result = await load('%YAML 1.1\n---\nserver: {host: yes}\n');
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.root.server.host).toBe('yes');
  });
});

describe('resource limits', () => {
  it('refuses aliases whose expansion would exceed the value budget, quickly', async () => {
    // 20,000 scalars under one anchor, used 990 times: within yaml's alias limit, yet ~20M values.
    const anchor = `a: &a [${Array(20_000).fill('x').join(',')}]`;
    const uses = Array.from({ length: 990 }, (_, i) => `k${i}: *a`).join('\n');
    const started = Date.now();
    const problems = problemsOf(await load(`${anchor}\n${uses}\n`));
    expect(problems).toEqual([
      { path: '(file)', message: expect.stringMatching(/more than 1,000,000 values/) },
    ]);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('refuses an alias used inside the value its anchor names, instead of overflowing the stack', async () => {
    const problems = problemsOf(await load('server: &s {host: *s}\n'));
    expect(problems).toEqual([
      { path: 'server.host', message: expect.stringMatching(/inside the value its anchor/) },
    ]);
  });

  it('refuses a config file larger than 10 MB without parsing it', async () => {
    const file = join(dir, 'huge.yaml');
    writeFileSync(file, `# ${'x'.repeat(10 * 1024 * 1024)}\n`);
    expect(problemsOf(await loadConfigFile(file, { registry, env: {} }))).toEqual([
      { path: '(file)', message: expect.stringMatching(/larger than 10 MB/) },
    ]);
    expect(problemsOf(await load(`# ${'x'.repeat(10 * 1024 * 1024)}\n`))).toEqual([
      { path: '(file)', message: expect.stringMatching(/larger than 10 MB/) },
    ]);
  });
});

describe('a value that is exactly one reference, in a field of several types', () => {
  it.each([
    ['true', true],
    ['false', false],
    ['2', 2],
    ['10.0.0.0/8, 192.168.1.1', ['10.0.0.0/8', '192.168.1.1']],
  ])('server.trust_proxy: ${env:TP} with TP=%s', async (tp, expected) => {
    const result = await load('server:\n  trust_proxy: ${env:TP}\n', { TP: tp });
    if (!result.ok) throw new Error(JSON.stringify(result.problems));
    expect(result.config.root.server.trust_proxy).toEqual(expected);
  });

  it('reports a converted value the field refuses, at its path', async () => {
    const problems = problemsOf(await load('server:\n  trust_proxy: ${env:TP}\n', { TP: 'every-hop' }));
    expect(problems).toEqual([
      { path: 'server.trust_proxy[0]', message: expect.stringMatching(/IP address or a CIDR block/) },
    ]);
  });

  it('leaves text written in the file as YAML typed it', async () => {
    const problems = problemsOf(await load('server:\n  trust_proxy: "true"\n'));
    expect(problems.map((p) => p.path)).toEqual(['server.trust_proxy']);
  });
});
