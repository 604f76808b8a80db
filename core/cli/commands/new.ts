import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Option, type Command } from 'commander';
import {
  CONNECTOR_ID_PATTERN,
  isConnectorDefinition,
  type ConnectorDefinition,
} from '../../plugin-api/index.ts';
import { formatFor, repositoryDocs, writeDocFiles } from '../../plugin-api/testing/docs.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';

/** The checkout (or installed package) this command belongs to; plugin-template/ lives here. */
const OWN_ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Template files that make a standalone package; a first-party connector lives in the repository's. */
const PACKAGE_ONLY = new Set(['package.json', 'tsconfig.json', 'vitest.config.ts', 'tools.ts']);

/** In-repository import paths of the plugin API, and what a package imports instead. */
const PACKAGE_IMPORTS: ReadonlyArray<[string, string]> = [
  ['../../core/plugin-api/testing/index.ts', 'ssf-bridge/plugin-api/testing'],
  ['../../core/plugin-api/index.ts', 'ssf-bridge/plugin-api'],
];

export type ConnectorKind = 'inbound' | 'outbound';

/** The spellings of a connector's name the template uses. */
export interface ConnectorNames {
  id: string;
  camel: string;
  pascal: string;
  constant: string;
  display: string;
}

export function connectorNames(id: string, display?: string): ConnectorNames {
  const words = id.split('-');
  const cap = (w: string) => w.charAt(0).toUpperCase() + w.slice(1);
  return {
    id,
    camel: words[0] + words.slice(1).map(cap).join(''),
    pascal: words.map(cap).join(''),
    constant: words.map((w) => w.toUpperCase()).join('_'),
    display: display ?? words.map(cap).join(' '),
  };
}

/** `text` as a single-quoted TypeScript string literal. */
export function tsString(text: string): string {
  return `'${text.replace(/[\\']/g, '\\$&')}'`;
}

/**
 * The display name is free text: in TypeScript it goes into string literals, escaped, and into
 * comments, where it must not close a block comment; in JSON into strings, escaped.
 */
function substituteDisplay(text: string, from: string, to: string, file: string): string {
  if (file.endsWith('.ts')) {
    // One pass, literals first: a second pass would find the old name again inside the new one
    // ("Example Inbound Pro" holds "Example Inbound") and undo its escaping.
    return replaceEach(text, [
      [tsString(from), tsString(to)],
      [JSON.stringify(from), JSON.stringify(to)],
      [from, to.replaceAll('*/', '*\\/')],
    ]);
  }
  if (file.endsWith('.json')) return replaceEach(text, [[from, JSON.stringify(to).slice(1, -1)]]);
  return replaceEach(text, [[from, to]]);
}

/** Replaces each `[from, to]` pair in one pass over `text`, the first pair that matches winning. */
function replaceEach(text: string, pairs: Array<[string, string]>): string {
  const escaped = pairs.map(([from]) => from.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  const to = new Map(pairs);
  return text.replace(new RegExp(escaped.join('|'), 'g'), (match) => to.get(match) ?? match);
}

/** Replaces every spelling of the template's name with the new connector's, as fits `file`. */
export function substituteNames(text: string, from: ConnectorNames, to: ConnectorNames, file = ''): string {
  const keys: Array<keyof ConnectorNames> = ['id', 'pascal', 'camel', 'constant'];
  const renamed = keys.reduce((out, key) => out.split(from[key]).join(to[key]), text);
  return substituteDisplay(renamed, from.display, to.display, file);
}

/** A package imports the plugin API by its package name rather than a path into the repository. */
export function toPackageImports(text: string): string {
  return PACKAGE_IMPORTS.reduce(
    (out, [path, specifier]) => out.split(`'${path}'`).join(`'${specifier}'`),
    text,
  );
}

/** connectors/index.ts with one more connector imported and listed. */
export function registerInIndex(source: string, exportName: string, id: string): string {
  const importLine = `import { ${exportName} } from './${id}/index.ts';`;
  const imports = [...source.matchAll(/^import .* from '\.\/[^']+';$/gm)];
  const last = imports.at(-1);
  if (!last || last.index === undefined) throw new Error('connectors/index.ts imports no connector');
  const at = last.index + last[0].length;
  const withImport = `${source.slice(0, at)}\n${importLine}${source.slice(at)}`;
  const list = /(firstPartyConnectors[^=]*=\s*\[)([\s\S]*?)(\]\s*;)/.exec(withImport);
  if (!list || list.index === undefined)
    throw new Error('connectors/index.ts has no firstPartyConnectors list');
  const entries = list[2]?.trim().replace(/,$/, '') ?? '';
  const replaced = `${list[1]}${entries ? `${entries}, ` : ''}${exportName}${list[3]}`;
  return withImport.slice(0, list.index) + replaced + withImport.slice(list.index + list[0].length);
}

/** The README of a first-party connector: the template's prose, and a link to its generated page. */
export function firstPartyReadme(readme: string, id: string): string {
  const intro = readme.split(/^## /m)[0]?.trimEnd() ?? '';
  return `${intro}\n\nReference — configuration, events, mapping and conformance, generated by \`npm run docs\`:\n[docs/connectors/${id}.md](../../docs/connectors/${id}.md).\n`;
}

function templateFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

export interface ScaffoldRequest {
  /** Repository (or installed package) holding plugin-template/. */
  root: string;
  id: string;
  kind: ConnectorKind;
  /** A new package folder; without it the connector is first-party, in connectors/<id>/. */
  out?: string;
  name?: string;
}

export interface ScaffoldResult {
  dir: string;
  files: string[];
  templateVersion: string;
  /** First-party: the docs written for it. */
  docs: string[];
}

function checkRequest(req: ScaffoldRequest): void {
  if (req.id.length < 2 || req.id.length > 63 || !CONNECTOR_ID_PATTERN.test(req.id)) {
    throw new CliExit(
      EXIT.invalid,
      `"${req.id}" is not a connector id: 2–63 characters, kebab-case (e.g. acme-edr)`,
    );
  }
  if (req.id === `example-${req.kind}`) {
    throw new CliExit(EXIT.invalid, `"${req.id}" is the template's own id; choose the connector's id`);
  }
  // It becomes a heading and comment text too: a line break (U+2028 included) would end those early.
  if (req.name !== undefined && (req.name.trim() === '' || /[\p{Cc}\p{Zl}\p{Zp}]/u.test(req.name))) {
    throw new CliExit(EXIT.invalid, '--name must be one line of text');
  }
}

function targetDir(req: ScaffoldRequest): string {
  if (req.out !== undefined) {
    const dir = resolve(req.out);
    if (existsSync(dir) && readdirSync(dir).length > 0) {
      throw new CliExit(EXIT.invalid, `${dir} is not empty; name a new folder for the package`);
    }
    return dir;
  }
  if (!existsSync(join(req.root, 'connectors', 'index.ts')) || req.root.split(sep).includes('node_modules')) {
    throw new CliExit(
      EXIT.invalid,
      'first-party connectors are created in a checkout of ssf-bridge; for a package use --out DIR',
    );
  }
  const dir = join(req.root, 'connectors', req.id);
  if (existsSync(dir)) throw new CliExit(EXIT.invalid, `connectors/${req.id}/ already exists`);
  return dir;
}

/** The content of one template file in the new connector, or undefined to leave it out. */
function render(
  file: string,
  text: string,
  req: ScaffoldRequest,
  from: ConnectorNames,
  to: ConnectorNames,
): string | undefined {
  const thirdParty = req.out !== undefined;
  if (!thirdParty && PACKAGE_ONLY.has(file)) return undefined;
  let out = substituteNames(text, from, to, file);
  if (thirdParty) out = toPackageImports(out);
  else if (file === 'README.md') out = firstPartyReadme(out, req.id);
  return out;
}

function packageJson(text: string, bridgeVersion: string): string {
  const pkg = JSON.parse(text) as Record<string, unknown> & {
    peerDependencies?: Record<string, string>;
    devDependencies?: Record<string, string>;
  };
  delete pkg.private;
  pkg.version = '0.1.0';
  const range = `^${bridgeVersion}`;
  pkg.peerDependencies = { ...pkg.peerDependencies, 'ssf-bridge': range };
  pkg.devDependencies = { ...pkg.devDependencies, 'ssf-bridge': range };
  return `${JSON.stringify(pkg, null, 2)}\n`;
}

async function definitionIn(dir: string, exportName: string): Promise<ConnectorDefinition> {
  const mod = (await import(pathToFileURL(join(dir, 'index.ts')).href)) as Record<string, unknown>;
  const definition = mod[exportName];
  if (!isConnectorDefinition(definition)) throw new Error(`${dir}/index.ts does not export ${exportName}`);
  return definition;
}

/** A file to write: its path and full content. */
interface Rendered {
  path: string;
  text: string;
}

/**
 * Every file of the new connector, renamed and (first-party) formatted: all of it is rendered
 * before anything is written, so a template that does not render leaves nothing behind.
 */
async function renderConnector(
  req: ScaffoldRequest,
  dir: string,
  to: ConnectorNames,
): Promise<{ files: Rendered[]; templateVersion: string }> {
  const templateDir = join(req.root, 'plugin-template', req.kind);
  const templateVersion = readJson<{ version: string }>(
    join(req.root, 'plugin-template', 'template.json'),
  ).version;
  const bridgeVersion = readJson<{ version: string }>(join(req.root, 'package.json')).version;
  const from = connectorNames(
    `example-${req.kind}`,
    `Example ${req.kind === 'inbound' ? 'Inbound' : 'Outbound'}`,
  );
  const files: Rendered[] = [];
  const add = async (file: string, text: string) => {
    const path = join(dir, file);
    // A package is formatted by its author's tools; a first-party connector by the repository's.
    files.push({ path, text: req.out === undefined ? await formatFor(path, text) : text });
  };
  for (const file of templateFiles(templateDir)) {
    const rendered = render(file, readFileSync(join(templateDir, file), 'utf8'), req, from, to);
    if (rendered === undefined) continue;
    await add(file, file === 'package.json' ? packageJson(rendered, bridgeVersion) : rendered);
  }
  await add('template.json', `${JSON.stringify({ template: req.kind, version: templateVersion })}\n`);
  return { files, templateVersion };
}

function readJson<T>(file: string): T {
  return JSON.parse(readFileSync(file, 'utf8')) as T;
}

/** connectors/index.ts as it is, and formatted with the new connector registered. */
async function indexUpdate(root: string, to: ConnectorNames): Promise<Rendered & { before: string }> {
  const path = join(root, 'connectors', 'index.ts');
  const before = readFileSync(path, 'utf8');
  return {
    path,
    before,
    text: await formatFor(path, registerInIndex(before, `${to.camel}Connector`, to.id)),
  };
}

/** Registers a first-party connector written to `dir`, and writes its docs. */
async function addFirstParty(
  root: string,
  dir: string,
  to: ConnectorNames,
  index: Rendered,
): Promise<string[]> {
  // The connectors registered so far, read before the index names the new one.
  const registered = (await import(pathToFileURL(index.path).href)) as {
    firstPartyConnectors: ConnectorDefinition[];
  };
  writeFileSync(index.path, index.text);
  const definition = await definitionIn(dir, `${to.camel}Connector`);
  const docs = await repositoryDocs(root, { connectors: [...registered.firstPartyConnectors, definition] });
  return writeDocFiles(docs);
}

/** Undoes a scaffold that failed midway, so that a retry does not find the connector "already there". */
function rollBack(dir: string, existed: boolean, index: (Rendered & { before: string }) | undefined): void {
  if (index !== undefined && readFileSync(index.path, 'utf8') !== index.before)
    writeFileSync(index.path, index.before);
  if (!existed) rmSync(dir, { recursive: true, force: true });
  // An empty --out folder given by the user stays, emptied again.
  else for (const entry of readdirSync(dir)) rmSync(join(dir, entry), { recursive: true, force: true });
}

/** Copies the template for `req.kind`, renamed, into a first-party folder or a new package. */
export async function scaffoldConnector(req: ScaffoldRequest): Promise<ScaffoldResult> {
  checkRequest(req);
  const dir = targetDir(req);
  const to = connectorNames(req.id, req.name);
  const { files, templateVersion } = await renderConnector(req, dir, to);
  const index = req.out === undefined ? await indexUpdate(req.root, to) : undefined;
  const existed = existsSync(dir);
  try {
    for (const { path, text } of files) {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    }
    const docs = index === undefined ? [] : await addFirstParty(req.root, dir, to, index);
    return { dir, files: files.map((f) => f.path), templateVersion, docs };
  } catch (err) {
    rollBack(dir, existed, index);
    throw err;
  }
}

/** `ssf-bridge new connector <id> --kind inbound|outbound [--out DIR] [--name NAME]`. */
export function registerNew(program: Command, io: CliIo): void {
  const create = program.command('new').description('Create a connector from the plugin template');
  create
    .command('connector')
    .description('Scaffold a connector: first-party into connectors/<id>/, or a package with --out')
    .argument('<id>', 'connector id, kebab-case (e.g. acme-edr); never renamed later')
    .addOption(
      new Option('--kind <kind>', 'what the connector does')
        .choices(['inbound', 'outbound'])
        .makeOptionMandatory(),
    )
    .option('--out <dir>', 'create a standalone npm package in this (new or empty) folder')
    .option('--name <display name>', 'display name (default: the id in title case)')
    .action(async (id: string, options: { kind: ConnectorKind; out?: string; name?: string }) => {
      const result = await scaffoldConnector({
        root: OWN_ROOT,
        id,
        kind: options.kind,
        ...(options.out === undefined ? {} : { out: options.out }),
        ...(options.name === undefined ? {} : { name: options.name }),
      });
      const shown = (path: string) => relative(process.cwd(), path) || '.';
      io.out(
        `created ${options.kind} connector ${id} from plugin-template ${result.templateVersion} in ${shown(result.dir)}`,
      );
      for (const file of result.files) io.out(`  ${shown(file)}`);
      if (options.out === undefined) {
        io.out(`registered in ${shown(join(OWN_ROOT, 'connectors', 'index.ts'))}`);
        for (const file of result.docs) io.out(`  ${shown(file)}`);
        const edit = options.kind === 'inbound' ? 'mapping.ts and fixtures/' : 'mapping.ts and connector.ts';
        io.out(
          `next: edit ${edit}, then run: npx vitest run ${shown(result.dir)}, and npm run docs when the config changes`,
        );
      } else {
        io.out(`next: cd ${shown(result.dir)} && npm install && npm test`);
      }
    });
}
