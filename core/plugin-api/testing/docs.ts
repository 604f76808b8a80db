/**
 * Reference docs generated from what a connector declares: manifest, config schema (zod's JSON
 * Schema export in input mode, so defaulted fields are optional) and fixtures. Generated text
 * sits between two marker comments; everything outside them is hand-written and kept.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type * as Prettiers from 'prettier';
import { stringify } from 'yaml';
import { z } from 'zod';
import type { ConnectorDefinition } from '../types.ts';
import { eventCatalog } from '../../ssf/index.ts';
import { expectsEvents, expectsIgnored, expectsRejected, loadFixtures, type Fixture } from './fixtures.ts';
import {
  fieldDefaults,
  fieldDescription,
  fieldType,
  isSecretField,
  schemaFields,
  type JsonSchema,
} from './schema-walk.ts';

export const GENERATED_START = '<!-- generated:start (npm run docs rewrites this section) -->';
export const GENERATED_END = '<!-- generated:end -->';

export interface ReferenceOptions {
  fixtures?: readonly Fixture[];
  /** Link to the config JSON Schema file, relative to the page. */
  schemaLink?: string;
}

/** Text for a Markdown table cell: one line, pipes escaped. */
function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

/**
 * Prose from a manifest or fixture: angle brackets outside code spans would read as HTML tags in
 * Markdown (inside code spans they are literal, and entities would not be).
 */
function prose(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part) => (part.startsWith('`') ? part : part.replace(/</g, '&lt;').replace(/>/g, '&gt;')))
    .join('');
}

function code(text: string): string {
  return `\`${text.replace(/`/g, "'")}\``;
}

function table(header: string[], rows: string[][]): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.map(cell).join(' | ')} |`),
  ].join('\n');
}

export function configJsonSchema(definition: ConnectorDefinition): JsonSchema {
  const schema = z.toJSONSchema(definition.configSchema, { io: 'input' }) as JsonSchema;
  const { $schema, ...rest } = schema;
  return {
    $schema,
    title: `${definition.manifest.displayName} (${definition.manifest.id}) config`,
    description: definition.manifest.description,
    ...rest,
  };
}

function summaryLine(definition: ConnectorDefinition): string {
  const m = definition.manifest;
  const caps = Object.entries(m.capabilities)
    .filter(([, on]) => on)
    .map(([name]) => name);
  return [
    code(m.id),
    m.kind,
    `version ${m.version}`,
    m.stability,
    ...(caps.length ? [caps.join(', ')] : []),
  ].join(' · ');
}

function configSection(definition: ConnectorDefinition, options: ReferenceOptions): string {
  const fields = schemaFields(configJsonSchema(definition));
  const defaults = fieldDefaults(definition.configSchema);
  const rows = fields.map((f) => [
    code(f.path),
    `${fieldType(f.schema)}${isSecretField(f.schema) ? ', **secret**' : ''}`,
    f.required ? 'yes' : 'no',
    defaults.has(f.path) ? code(JSON.stringify(defaults.get(f.path))) : '',
    `${f.when ? `With ${code(f.when)}: ` : ''}${prose(fieldDescription(f.schema) ?? '')}`,
  ]);
  const parts = ['## Configuration', ''];
  parts.push(
    rows.length > 0
      ? table(['key', 'type', 'required', 'default', 'description'], rows)
      : 'This connector takes no settings.',
  );
  if (options.schemaLink)
    parts.push('', `JSON Schema: [${options.schemaLink.split('/').at(-1)}](${options.schemaLink})`);
  for (const example of definition.examples ?? []) {
    parts.push(
      '',
      `### Example: ${example.title}`,
      '',
      '```yaml',
      stringify({ config: example.config }).trimEnd(),
      '```',
    );
  }
  return parts.join('\n');
}

function eventsSection(definition: ConnectorDefinition): string {
  const inbound = definition.kind === 'inbound';
  const list = (inbound ? definition.manifest.emits : definition.manifest.accepts) ?? [];
  const heading = inbound ? '## Events emitted' : '## Events accepted';
  if (list.includes('*')) {
    return `${heading}\n\n${inbound ? 'Any' : 'Every'} event type of the catalog (${code('ssf-bridge events list')}).`;
  }
  const rows = list.map((entry) => {
    const found = eventCatalog.find(entry);
    return found ? [code(found.shortName), code(found.uri), found.spec] : [code(entry), '', ''];
  });
  return `${heading}\n\n${table(['event type', 'URI', 'defined by'], rows)}`;
}

function subjectSummary(subject: Record<string, unknown>): string {
  const format = String(subject.format);
  const value = Object.entries(subject).find(([k, v]) => k !== 'format' && typeof v === 'string')?.[1];
  if (value !== undefined) return `${format} ${code(String(value))}`;
  const members = Object.keys(subject).filter((k) => k !== 'format');
  return members.length ? `${format} (${members.join(', ')})` : format;
}

function fixtureResult(fixture: Fixture): string {
  if (expectsEvents(fixture)) {
    return fixture.expect.events
      .map((e) => `${code(eventCatalog.find(e.type)?.shortName ?? e.type)} for ${subjectSummary(e.subject)}`)
      .join('; ');
  }
  if (expectsIgnored(fixture)) return `ignored: ${prose(fixture.expect.ignored)}`;
  return expectsRejected(fixture) ? `rejected: ${code(fixture.expect.rejected)}` : '';
}

function mappingSection(fixtures: readonly Fixture[]): string {
  const rows = fixtures.map((f) => [code(f.name), prose(f.description), fixtureResult(f)]);
  return `## Mapping\n\nWhat each recorded payload in ${code('fixtures/')} becomes (checked by the conformance kit):\n\n${table(['fixture', 'payload', 'result'], rows)}`;
}

function conformanceSection(definition: ConnectorDefinition): string {
  const skips = Object.entries(definition.manifest.conformance?.skip ?? {});
  if (skips.length === 0) return '## Conformance\n\nPasses every conformance case that applies to it.';
  return `## Conformance\n\nSkipped cases:\n\n${table(
    ['case', 'reason'],
    skips.map(([id, reason]) => [code(id), prose(reason)]),
  )}`;
}

/** The generated reference: summary, configuration, events, mapping and conformance. */
export function renderReference(definition: ConnectorDefinition, options: ReferenceOptions = {}): string {
  const sections = [
    summaryLine(definition),
    prose(definition.manifest.description),
    configSection(definition, options),
  ];
  sections.push(eventsSection(definition));
  const fixtures = options.fixtures ?? [];
  if (definition.kind === 'inbound' && fixtures.length > 0) sections.push(mappingSection(fixtures));
  sections.push(conformanceSection(definition));
  return sections.join('\n\n');
}

/** The generated section of a page, or undefined when it has no markers. */
export function generatedSection(text: string): string | undefined {
  const start = text.indexOf(GENERATED_START);
  const end = text.indexOf(GENERATED_END);
  if (start < 0 || end < start) return undefined;
  return text.slice(start + GENERATED_START.length, end).trim();
}

/** A page with its generated section replaced (or added), hand-written text kept. */
export function withGeneratedSection(existing: string | undefined, generated: string, title: string): string {
  const block = `${GENERATED_START}\n\n${generated}\n\n${GENERATED_END}`;
  if (existing === undefined) return `# ${title}\n\n${block}\n`;
  const start = existing.indexOf(GENERATED_START);
  const end = existing.indexOf(GENERATED_END);
  if (start < 0 || end < start) return `${existing.trimEnd()}\n\n${block}\n`;
  return `${existing.slice(0, start)}${block}${existing.slice(end + GENERATED_END.length)}`;
}

/** The catalog page's generated table. */
export function renderIndex(definitions: readonly ConnectorDefinition[]): string {
  // Code-point order: localeCompare would follow the locale of whoever runs `npm run docs`.
  const sorted = [...definitions].sort((a, b) =>
    a.manifest.id < b.manifest.id ? -1 : a.manifest.id > b.manifest.id ? 1 : 0,
  );
  const rows = sorted.map((d) => [
    `[${d.manifest.displayName}](${d.manifest.id}.md)`,
    code(d.manifest.id),
    d.manifest.kind,
    d.manifest.stability,
    d.manifest.version,
    prose(d.manifest.description),
  ]);
  return table(['connector', 'id', 'kind', 'stability', 'version', 'description'], rows);
}

type Prettier = typeof Prettiers;
let prettierModule: Promise<Prettier | undefined> | undefined;

/** prettier when it is installed (development checkouts); generated files are then stable under it. */
function loadPrettier(): Promise<Prettier | undefined> {
  prettierModule ??= import('prettier').catch(() => undefined);
  return prettierModule;
}

/** Formats text as prettier would for `file` (using the project's config), or leaves it as is. */
export async function formatFor(file: string, text: string): Promise<string> {
  const prettier = await loadPrettier();
  if (!prettier) return text;
  const config = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(text, { ...config, filepath: file });
}

/**
 * A generated section with table padding collapsed, so a section formatted by prettier and one
 * written without it compare equal.
 */
export function normalizeGenerated(text: string): string {
  return text
    .split('\n')
    .map((line) =>
      line.startsWith('|') ? line.replace(/ {2,}/g, ' ').replace(/-{3,}/g, '---') : line.trimEnd(),
    )
    .join('\n')
    .trim();
}

export interface DocFile {
  file: string;
  content: string;
}

export interface DocSources {
  /** First-party connectors: docs/connectors/<id>.md and docs/schemas/<id>.config.schema.json. */
  connectors: readonly ConnectorDefinition[];
  /** Connector packages whose README.md carries a generated section (the template's variants). */
  packages?: ReadonlyArray<{ definition: ConnectorDefinition; dir: string }>;
}

function readIfExists(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
}

/** Every generated file of the repository at `root`, with the content it must have. */
export async function repositoryDocs(root: string, sources: DocSources): Promise<DocFile[]> {
  const files: DocFile[] = [];
  const page = async (file: string, generated: string, title: string) => {
    files.push({
      file,
      content: await formatFor(file, withGeneratedSection(readIfExists(file), generated, title)),
    });
  };
  for (const definition of sources.connectors) {
    const { id, displayName } = definition.manifest;
    const schemaFile = join(root, 'docs', 'schemas', `${id}.config.schema.json`);
    files.push({
      file: schemaFile,
      content: await formatFor(schemaFile, JSON.stringify(configJsonSchema(definition))),
    });
    const fixtures = loadFixtures(join(root, 'connectors', id, 'fixtures')).fixtures;
    const reference = renderReference(definition, {
      fixtures,
      schemaLink: `../schemas/${id}.config.schema.json`,
    });
    await page(join(root, 'docs', 'connectors', `${id}.md`), reference, displayName);
  }
  await page(join(root, 'docs', 'connectors', 'index.md'), renderIndex(sources.connectors), 'Connectors');
  for (const { definition, dir } of sources.packages ?? []) {
    const fixtures = loadFixtures(join(dir, 'fixtures')).fixtures;
    await page(
      join(dir, 'README.md'),
      renderReference(definition, { fixtures }),
      definition.manifest.displayName,
    );
  }
  return files;
}

/** Writes the files whose content differs; returns those written. */
export function writeDocFiles(files: readonly DocFile[]): string[] {
  const written: string[] = [];
  for (const { file, content } of files) {
    if (readIfExists(file) === content) continue;
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, content);
    written.push(file);
  }
  return written;
}
