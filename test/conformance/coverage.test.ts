import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { firstPartyConnectors } from '../../connectors/index.ts';
import type { ConnectorDefinition } from '../../core/plugin-api/index.ts';

const connectorsDir = fileURLToPath(new URL('../../connectors/', import.meta.url));

/** Names imported by a test file, with the module each comes from: `{ eventsApi: './index.ts' }`. */
function importedNames(source: string): Map<string, string> {
  const names = new Map<string, string>();
  for (const m of source.matchAll(/import\s*\{([^}]*)\}\s*from\s*'(\.[^']+)'/g)) {
    for (const part of (m[1] ?? '').split(',')) {
      const local = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)
        .at(-1)
        ?.trim();
      if (local) names.set(local, m[2] ?? '');
    }
  }
  return names;
}

/** The definitions a test file hands to runConnectorConformance(). */
async function definitionsUnderTest(file: string): Promise<unknown[]> {
  const source = readFileSync(file, 'utf8');
  const imports = importedNames(source);
  const found: unknown[] = [];
  for (const call of source.matchAll(/runConnectorConformance\(\s*([A-Za-z_$][\w$]*)/g)) {
    const name = call[1] ?? '';
    const from = imports.get(name);
    if (!from) continue;
    const mod = (await import(new URL(from, pathToFileURL(file)).href)) as Record<string, unknown>;
    found.push(mod[name]);
  }
  return found;
}

/** Undefined when a test file in `<base>/<id>/` runs the kit on the definition; else why not. */
async function runsTheKit(
  definition: ConnectorDefinition,
  base = connectorsDir,
): Promise<string | undefined> {
  const dir = join(base, definition.manifest.id);
  if (!existsSync(dir)) return `connectors/${definition.manifest.id}/ does not exist`;
  const tests = readdirSync(dir).filter((f) => f.endsWith('.test.ts'));
  for (const test of tests) {
    if ((await definitionsUnderTest(join(dir, test))).includes(definition)) return undefined;
  }
  return `no test file in connectors/${definition.manifest.id}/ calls runConnectorConformance() with its definition`;
}

describe('every first-party connector runs the conformance kit', () => {
  for (const definition of firstPartyConnectors) {
    it(definition.manifest.id, async () => {
      expect(await runsTheKit(definition)).toBeUndefined();
    });
  }
});

describe('the kit-coverage check', () => {
  const [first] = firstPartyConnectors;
  if (!first) throw new Error('connectors/index.ts lists no connector');

  it('fails for a connector without tests that run the kit on its own definition', async () => {
    const base = mkdtempSync(join(tmpdir(), 'ssf-bridge-coverage-'));
    try {
      const dir = join(base, first.manifest.id);
      mkdirSync(dir);
      expect(await runsTheKit(first, base)).toMatch(/no test file .* calls runConnectorConformance\(\)/);
      const specimen = fileURLToPath(new URL('./specimens/specimen-pusher/index.ts', import.meta.url));
      writeFileSync(
        join(dir, 'index.ts'),
        `import { specimenPusher } from '${specimen}';\nexport const impostor = specimenPusher();\n`,
      );
      writeFileSync(
        join(dir, 'conformance.test.ts'),
        `import { impostor } from './index.ts';\nrunConnectorConformance(impostor, {});\n`,
      );
      expect(await runsTheKit(first, base)).toMatch(/no test file/);
      rmSync(join(base, first.manifest.id), { recursive: true });
      expect(await runsTheKit(first, base)).toMatch(/does not exist/);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });
});
