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
import { schemaFields } from '../../core/plugin-api/testing/schema-walk.ts';
import { z } from '../../core/plugin-api/index.ts';
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

describe('config fields of a discriminated union', () => {
  it('list the discriminator once with every value, and say which variant each other field belongs to', () => {
    const auth = z.discriminatedUnion('type', [
      z.strictObject({
        type: z.literal('basic').meta({ description: 'A password.' }),
        password: z.string().meta({ description: 'The password.' }),
        timeout: z.number().optional().meta({ description: 'Seconds.' }),
      }),
      z.strictObject({
        type: z.literal('token').meta({ description: 'A token.' }),
        token: z.string().meta({ description: 'The token.' }),
        timeout: z.number().optional().meta({ description: 'Seconds.' }),
      }),
    ]);
    const json = z.toJSONSchema(z.strictObject({ auth }), { io: 'input' }) as Record<string, unknown>;
    const fields = schemaFields(json).map(({ path, required, when, schema }) => ({
      path,
      required,
      when,
      description: schema.description,
      ...(schema.enum ? { values: schema.enum } : {}),
    }));
    expect(fields).toEqual([
      { path: 'auth', required: true, when: undefined, description: undefined },
      {
        path: 'auth.type',
        required: true,
        when: undefined,
        description: '`basic`: A password. `token`: A token.',
        values: ['basic', 'token'],
      },
      { path: 'auth.password', required: true, when: 'type: basic', description: 'The password.' },
      { path: 'auth.timeout', required: false, when: undefined, description: 'Seconds.' },
      { path: 'auth.token', required: true, when: 'type: token', description: 'The token.' },
    ]);
  });
});
