import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { capturingIo } from '../../../test/helpers/capture.ts';
import { EXIT } from '../io.ts';
import { main } from '../main.ts';
import {
  connectorNames,
  firstPartyReadme,
  registerInIndex,
  scaffoldConnector,
  substituteNames,
  toPackageImports,
} from './new.ts';

/** A display name with everything that breaks code when pasted unescaped. */
const AWKWARD_NAME = `Acme's "EDR" */ \\ \${x}`;

/** The string value of `displayName: …` in TypeScript source; fails on any syntax error. */
function displayNameIn(source: string, file = 'index.ts'): string | undefined {
  const check = ts.transpileModule(source, { fileName: file, reportDiagnostics: true });
  expect(check.diagnostics?.map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'))).toEqual([]);
  let value: string | undefined;
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAssignment(node) && node.name.getText() === 'displayName') {
      if (ts.isStringLiteralLike(node.initializer)) value = node.initializer.text;
    }
    node.forEachChild(visit);
  };
  visit(ts.createSourceFile(file, source, ts.ScriptTarget.Latest, true));
  return value;
}

describe('names', () => {
  it('spells an id every way the template does', () => {
    expect(connectorNames('acme-edr-2')).toEqual({
      id: 'acme-edr-2',
      camel: 'acmeEdr2',
      pascal: 'AcmeEdr2',
      constant: 'ACME_EDR_2',
      display: 'Acme Edr 2',
    });
  });

  it('replaces each spelling of the template name', () => {
    const from = connectorNames('example-inbound', 'Example Inbound');
    const to = connectorNames('acme-edr', 'Acme EDR');
    const text =
      "export const exampleInboundConnector = createExampleInbound(); // Example Inbound, 'example-inbound', SSF_ERR_EXAMPLE_INBOUND_X";
    expect(substituteNames(text, from, to)).toBe(
      "export const acmeEdrConnector = createAcmeEdr(); // Acme EDR, 'acme-edr', SSF_ERR_ACME_EDR_X",
    );
  });

  it('writes a display name into TypeScript as an escaped literal, and into comments without closing them', () => {
    const from = connectorNames('example-inbound', 'Example Inbound');
    const to = connectorNames('acme-edr', AWKWARD_NAME);
    const source =
      '/** Example Inbound: polls. */\nexport const m = { displayName: \'Example Inbound\', other: "Example Inbound" }; // Example Inbound\n';
    const out = substituteNames(source, from, to, 'index.ts');
    expect(displayNameIn(out)).toBe(AWKWARD_NAME);
    expect(out).toContain(`/** Acme's "EDR" *\\/ \\ \${x}: polls. */`);
    expect(substituteNames('{"title": "Example Inbound"}', from, to, 'x.json')).toBe(
      JSON.stringify({ title: AWKWARD_NAME }).replace(':', ': '),
    );
    expect(substituteNames('# Example Inbound', from, to, 'README.md')).toBe(`# ${AWKWARD_NAME}`);
  });

  it('writes a display name that holds the template name (Example Inbound Pro) once, escaped', () => {
    const from = connectorNames('example-inbound', 'Example Inbound');
    const source =
      "/** Example Inbound: polls. */\nexport const m = { displayName: 'Example Inbound' }; // Example Inbound\n";
    for (const [id, display] of [
      ['example-inbound-pro', 'Example Inbound Pro'],
      ['example-inbound-v2', undefined],
      ['acme-fork', "Example Inbound's fork"],
    ] as const) {
      const to = connectorNames(id, display);
      const out = substituteNames(source, from, to, 'index.ts');
      expect(displayNameIn(out)).toBe(to.display);
      expect(out).toContain(`/** ${to.display}: polls. */`);
      expect(out).toContain(`// ${to.display}\n`);
    }
  });

  it('points a package at the plugin API by package name', () => {
    const text = [
      "import { z } from '../../core/plugin-api/index.ts';",
      "import { runConnectorConformance } from '../../core/plugin-api/testing/index.ts';",
    ].join('\n');
    expect(toPackageImports(text)).toBe(
      "import { z } from 'ssf-bridge/plugin-api';\nimport { runConnectorConformance } from 'ssf-bridge/plugin-api/testing';",
    );
  });
});

describe('registering a first-party connector', () => {
  it('adds one import and one list entry, on one line or many', () => {
    const oneLine = [
      "import type { ConnectorDefinition } from '../core/plugin-api/index.ts';",
      "import { eventsApi } from './events-api/index.ts';",
      '',
      'export const firstPartyConnectors: readonly ConnectorDefinition[] = [eventsApi];',
      '',
    ].join('\n');
    const once = registerInIndex(oneLine, 'acmeEdrConnector', 'acme-edr');
    expect(once).toContain(
      "import { eventsApi } from './events-api/index.ts';\nimport { acmeEdrConnector } from './acme-edr/index.ts';",
    );
    expect(once).toContain('= [eventsApi, acmeEdrConnector];');
    const many = once.replace('[eventsApi, acmeEdrConnector]', '[\n  eventsApi,\n  acmeEdrConnector,\n]');
    expect(registerInIndex(many, 'acmePushConnector', 'acme-push')).toContain(
      'eventsApi,\n  acmeEdrConnector, acmePushConnector];',
    );
  });

  it("keeps the template README's introduction and links the generated reference", () => {
    const readme = '# Acme EDR\n\nPolls alerts.\n\n## Use it\n\nplugins: …\n';
    expect(firstPartyReadme(readme, 'acme-edr')).toBe(
      '# Acme EDR\n\nPolls alerts.\n\nReference — configuration, events, mapping and conformance, generated by `npm run docs`:\n[docs/connectors/acme-edr.md](../../docs/connectors/acme-edr.md).\n',
    );
  });
});

describe('ssf-bridge new connector', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'ssf-bridge-new-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a package with the plugin API imported by name, its own package.json and the template version', async () => {
    const io = capturingIo();
    const out = join(dir, 'acme-edr');
    const code = await main(
      ['node', 'ssf-bridge', 'new', 'connector', 'acme-edr', '--kind', 'inbound', '--out', out],
      io,
    );
    expect(code).toBe(EXIT.ok);
    expect(io.stdout.join('\n')).toMatch(
      /created inbound connector acme-edr from plugin-template \d+\.\d+\.\d+/,
    );
    const pkg = JSON.parse(readFileSync(join(out, 'package.json'), 'utf8')) as Record<string, unknown>;
    expect(pkg).toMatchObject({
      name: 'ssf-bridge-connector-acme-edr',
      version: '0.1.0',
      peerDependencies: { 'ssf-bridge': expect.stringMatching(/^\^\d+\.\d+\.\d+$/) },
    });
    expect(pkg.private).toBeUndefined();
    // Its tests start with a type check (vitest alone only strips the types).
    expect(pkg.scripts).toMatchObject({
      test: expect.stringMatching(/^npm run typecheck && /),
      typecheck: 'tsc --noEmit',
    });
    expect(existsSync(join(out, 'tsconfig.json'))).toBe(true);
    expect(readFileSync(join(out, 'index.ts'), 'utf8')).toContain(
      "import { defineConnector } from 'ssf-bridge/plugin-api';",
    );
    expect(readFileSync(join(out, 'index.ts'), 'utf8')).toContain("id: 'acme-edr'");
    expect(JSON.parse(readFileSync(join(out, 'template.json'), 'utf8'))).toMatchObject({
      template: 'inbound',
    });
    expect(existsSync(join(out, 'fixtures', 'session-terminated.json'))).toBe(true);
  });

  it('refuses an id that is not kebab-case, an unknown kind and a folder that is not empty', async () => {
    const io = capturingIo();
    expect(
      await main(
        ['node', 'ssf-bridge', 'new', 'connector', 'Acme_EDR', '--kind', 'inbound', '--out', join(dir, 'x')],
        io,
      ),
    ).toBe(EXIT.invalid);
    expect(io.stderr.join('\n')).toMatch(/"Acme_EDR" is not a connector id/);
    expect(await main(['node', 'ssf-bridge', 'new', 'connector', 'acme-edr', '--kind', 'sideways'], io)).toBe(
      EXIT.invalid,
    );
    mkdirSync(join(dir, 'taken'));
    writeFileSync(join(dir, 'taken', 'keep.txt'), 'mine');
    expect(
      await main(
        [
          'node',
          'ssf-bridge',
          'new',
          'connector',
          'acme-edr',
          '--kind',
          'outbound',
          '--out',
          join(dir, 'taken'),
        ],
        io,
      ),
    ).toBe(EXIT.invalid);
    expect(io.stderr.join('\n')).toMatch(/is not empty/);
  });

  it('writes a package whose code parses whatever the display name holds', async () => {
    const io = capturingIo();
    const out = join(dir, 'acme-edr');
    const args = ['new', 'connector', 'acme-edr', '--kind', 'outbound', '--out', out, '--name', AWKWARD_NAME];
    expect(await main(['node', 'ssf-bridge', ...args], io)).toBe(EXIT.ok);
    const sources = readdirSync(out, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
    for (const file of sources) displayNameIn(readFileSync(join(out, file), 'utf8'), file);
    expect(displayNameIn(readFileSync(join(out, 'index.ts'), 'utf8'))).toBe(AWKWARD_NAME);
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toMatch(/^# Acme's "EDR" \*\/ /);
  });

  it('refuses a display name that is not one line of text (exit 2), writing nothing', async () => {
    const io = capturingIo();
    const out = join(dir, 'acme-edr');
    const args = ['new', 'connector', 'acme-edr', '--kind', 'inbound', '--out', out, '--name', 'Acme\nEDR'];
    expect(await main(['node', 'ssf-bridge', ...args], io)).toBe(EXIT.invalid);
    expect(io.stderr.join('\n')).toContain('--name must be one line of text');
    expect(existsSync(out)).toBe(false);
    args[args.length - 1] = 'Acme\u2028EDR';
    expect(await main(['node', 'ssf-bridge', ...args], io)).toBe(EXIT.invalid);
  });

  it('refuses to create a first-party connector whose folder exists', async () => {
    const io = capturingIo();
    expect(
      await main(['node', 'ssf-bridge', 'new', 'connector', 'events-api', '--kind', 'inbound'], io),
    ).toBe(EXIT.invalid);
    expect(io.stderr.join('\n')).toMatch(/connectors\/events-api\/ already exists/);
  });
});

/**
 * A stand-in checkout for first-party scaffolding (which writes into connectors/ and docs/): the
 * real template and core, and a connectors/index.ts listing the log destination only.
 */
function fakeCheckout(): string {
  const root = mkdtempSync(join(tmpdir(), 'ssf-bridge-new-root-'));
  const repo = resolve(import.meta.dirname, '../../..');
  cpSync(join(repo, 'plugin-template'), join(root, 'plugin-template'), { recursive: true });
  cpSync(join(repo, 'package.json'), join(root, 'package.json'));
  symlinkSync(join(repo, 'core'), join(root, 'core'));
  mkdirSync(join(root, 'connectors'));
  symlinkSync(join(repo, 'connectors', 'log'), join(root, 'connectors', 'log'));
  writeFileSync(
    join(root, 'connectors', 'index.ts'),
    [
      "import type { ConnectorDefinition } from '../core/plugin-api/index.ts';",
      "import { logDestination } from './log/index.ts';",
      '',
      'export const firstPartyConnectors: readonly ConnectorDefinition[] = [logDestination];',
      '',
    ].join('\n'),
  );
  return root;
}

describe('ssf-bridge new connector, first-party', () => {
  let root: string;
  beforeEach(() => {
    root = fakeCheckout();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('creates and registers a connector whatever the display name holds', async () => {
    const result = await scaffoldConnector({ root, id: 'acme-edr', kind: 'inbound', name: AWKWARD_NAME });
    expect(result.dir).toBe(join(root, 'connectors', 'acme-edr'));
    const mod = (await import(pathToFileURL(join(result.dir, 'index.ts')).href)) as {
      acmeEdrConnector: { manifest: { displayName: string } };
    };
    expect(mod.acmeEdrConnector.manifest.displayName).toBe(AWKWARD_NAME);
    expect(readFileSync(join(root, 'connectors', 'index.ts'), 'utf8')).toContain('acmeEdrConnector');
  }, 60_000);

  it('a scaffold that fails midway leaves no folder and the index as it was, so a retry works', async () => {
    const indexBefore = readFileSync(join(root, 'connectors', 'index.ts'), 'utf8');
    // The docs come last, after the connector is written and registered: make them fail.
    writeFileSync(join(root, 'docs'), 'a file where the docs folder belongs');
    await expect(scaffoldConnector({ root, id: 'acme-push', kind: 'outbound' })).rejects.toThrow(
      /ENOTDIR|EEXIST/,
    );
    expect(existsSync(join(root, 'connectors', 'acme-push'))).toBe(false);
    expect(readFileSync(join(root, 'connectors', 'index.ts'), 'utf8')).toBe(indexBefore);

    rmSync(join(root, 'docs'));
    const retry = await scaffoldConnector({ root, id: 'acme-push', kind: 'outbound' });
    expect(retry.files).toContain(join(root, 'connectors', 'acme-push', 'index.ts'));
    expect(retry.docs).toContain(join(root, 'docs', 'connectors', 'acme-push.md'));
  }, 60_000);
});
