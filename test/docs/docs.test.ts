import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { firstPartyConnectors } from '../../connectors/index.ts';
import {
  GENERATED_END,
  GENERATED_START,
  repositoryDocs,
  withGeneratedSection,
} from '../../core/plugin-api/testing/docs.ts';
import { docSources, repoRoot } from './generate.ts';

const read = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : undefined);

describe('generated connector docs', () => {
  it('are current: `npm run docs` would change nothing', async () => {
    const files = await repositoryDocs(repoRoot, docSources);
    const stale = files.filter((f) => read(f.file) !== f.content).map((f) => relative(repoRoot, f.file));
    expect(stale, 'these files are stale or missing; run `npm run docs`').toEqual([]);
  });

  it('exist only for registered connectors', () => {
    const ids = new Set(firstPartyConnectors.map((d) => d.manifest.id));
    const pages = readdirSync(join(repoRoot, 'docs/connectors'))
      .filter((f) => f.endsWith('.md') && f !== 'index.md')
      .map((f) => f.slice(0, -'.md'.length));
    const schemas = readdirSync(join(repoRoot, 'docs/schemas'))
      .filter((f) => f.endsWith('.config.schema.json'))
      .map((f) => f.slice(0, -'.config.schema.json'.length));
    const orphans = [...pages, ...schemas].filter((id) => !ids.has(id));
    expect(orphans, 'docs of connectors that connectors/index.ts no longer lists').toEqual([]);
  });
});

describe('generated sections', () => {
  it('replace only the text between the markers, keeping hand-written prose', () => {
    const page = `# Acme\n\nIntro by hand.\n\n${GENERATED_START}\nold\n${GENERATED_END}\n\n## Notes\n\nAlso by hand.\n`;
    expect(withGeneratedSection(page, 'new', 'ignored')).toBe(
      `# Acme\n\nIntro by hand.\n\n${GENERATED_START}\n\nnew\n\n${GENERATED_END}\n\n## Notes\n\nAlso by hand.\n`,
    );
  });

  it('start a missing page with its title, and append the section to a page without markers', () => {
    expect(withGeneratedSection(undefined, 'ref', 'Acme EDR')).toBe(
      `# Acme EDR\n\n${GENERATED_START}\n\nref\n\n${GENERATED_END}\n`,
    );
    expect(withGeneratedSection('# Acme\n\nProse.\n', 'ref', 'x')).toBe(
      `# Acme\n\nProse.\n\n${GENERATED_START}\n\nref\n\n${GENERATED_END}\n`,
    );
  });
});
